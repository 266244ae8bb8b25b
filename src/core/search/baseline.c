/* Two of the search-method baselines of paper appendix C.4 (Table 4), on AMEIR's search space
 * (joint.c: every subspace at once):
 *
 *   random     children drawn uniformly from the space, each trained from scratch for
 *              child_epochs (1) epochs and scored on the validation split, until `children`
 *              (300) have been trained or the budget is spent; the best one is the result.
 *   evolution  regularized evolution (Real et al. 2019): `population` (10) uniform children
 *              first; then each cycle a parent drawn from the population (uniformly, as the
 *              appendix says, or the best of a tournament of `tournament` members, as Real et
 *              al. do), mutated by one simple change, trained and scored the same way, added,
 *              and the oldest member removed; it stops when the population's best has not
 *              changed for `stall_cycles` (5) cycles, the budget is spent, or `children` have
 *              been trained. The best member of the final population is the result.
 *
 * The budget (seconds of wall time, training plus evaluation) is budget_seconds, else
 * budget_factor (10) x reference_seconds (the measured cost of AMEIR's own search on the same
 * data). A child starts only while the time spent plus the longest child so far fits in it (the
 * first always runs). The search is step 3 of the searcher; the derivation then trains the
 * result fully from random weights and evaluates it on test.
 *
 * OUT/baseline.txt records every child (its choices, score, seconds and the clock at its end)
 * after each one: a resumed search replays the same draws with the recorded scores and clock,
 * so it makes the same decisions as an uninterrupted one and goes on where that one stopped. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"
#include "../model/arch.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

typedef struct {
  sn_child c;
  double score;      /* validation metric after child_epochs epochs (-inf: diverged) */
  double seconds;    /* its training and scoring */
  double end;        /* the search's clock when it was done */
  int32_t parent;    /* evolution: the parent's index in the history; -1: drawn uniformly */
} bl_member;

typedef struct {
  ameir_searcher *s;
  ameir_supernet *space;      /* the joint space's description (no weights) */
  const char *name;           /* "random" or "evolution" */
  double budget;              /* seconds; INFINITY: none */
  double t0;                  /* this session's start; the clock is t0-relative plus base */
  double base;                /* the clock at t0 (a resumed search's recorded time) */
  double max_child;           /* the longest child so far */
  bl_member *hist;            /* every child, in order */
  int32_t n, cap;
  bl_member *loaded;          /* baseline.txt of a resumed search */
  int32_t n_loaded;
  char *opts;                 /* the space's train options with the child's epochs */
} bl_run;

static double clock_now(const bl_run *b) { return b->base + ameir__now_s() - b->t0; }

/* ---------------- the state file ---------------- */

static ameir_status fill_baseline(ameir_searcher *s, FILE *f, void *u) {
  bl_run *b = u;
  fprintf(f, "ameir-baseline-state 1\nmethod %s\nseed %llu\n", b->name, (unsigned long long)s->ctx->seed);
  for (int32_t i = 0; i < b->n; i++) {
    const bl_member *m = &b->hist[i];
    fprintf(f, "child %.17g %.17g %.17g %d", m->score, m->seconds, m->end, (int)m->parent);
    ameir__joint_write(f, b->space, &m->c);
    fputc('\n', f);
  }
  fprintf(f, "end\n");
  return ferror(f) ? ameir__error(s->ctx, AMEIR_EIO, "baseline.txt: write failed") : AMEIR_OK;
}

static ameir_status load_baseline(bl_run *b) {
  ameir_searcher *s = b->s;
  if (!s->resume || !s->out[0]) return AMEIR_OK;
  char path[1100];
  snprintf(path, sizeof path, "%s/baseline.txt", s->out);
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? AMEIR_OK : ameir__error(s->ctx, AMEIR_EIO, "%s: %s", path, strerror(errno));
  char line[8192];
  int lineno = 0, ended = 0;
  ameir_status st = AMEIR_OK;
  while (!st && !ended && fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    if (lineno == 1) { if (strcmp(line, "ameir-baseline-state 1")) st = AMEIR_EFORMAT; continue; }
    if (!strncmp(line, "method ", 7)) {
      if (strcmp(line + 7, b->name))
        st = ameir__error(s->ctx, AMEIR_ECONFIG, "%s: written by a %s search, this one is %s", path, line + 7, b->name);
    } else if (!strncmp(line, "seed ", 5)) {
      if (strtoull(line + 5, NULL, 10) != s->ctx->seed)
        st = ameir__error(s->ctx, AMEIR_ECONFIG, "%s: written with seed %s, this run has %llu", path, line + 5, (unsigned long long)s->ctx->seed);
    } else if (!strncmp(line, "child ", 6)) {
      if (b->n_loaded == b->cap) {
        int32_t nc = b->cap ? 2 * b->cap : 64;
        bl_member *t = realloc(b->loaded, sizeof *t * (size_t)nc);
        if (!t) { st = ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); break; }
        b->loaded = t;
        b->cap = nc;
      }
      bl_member *m = &b->loaded[b->n_loaded];
      char *p = line + 6, *e;
      m->score = strtod(p, &e);
      if (e == p) { st = AMEIR_EFORMAT; break; }
      m->seconds = strtod(p = e, &e);
      m->end = strtod(p = e, &e);
      m->parent = (int32_t)strtol(p = e, &e, 10);
      p = e;
      if (e == line + 6 || m->parent < -1 || m->parent >= b->n_loaded || ameir__joint_read(b->space, &p, &m->c)) { st = AMEIR_EFORMAT; break; }
      b->n_loaded++;
    } else if (!strcmp(line, "end")) ended = 1;
    else st = AMEIR_EFORMAT;
  }
  fclose(f);
  b->cap = 0;
  if (st == AMEIR_EFORMAT || (!st && !ended))
    return ameir__error(s->ctx, AMEIR_EFORMAT, "%s:%d: not a baseline search state this version wrote for this space (or damaged)", path, lineno);
  return st;
}

/* ---------------- one child ---------------- */

/* Trains c from scratch for the space's child_epochs and scores it on the validation split. */
static ameir_status train_child(bl_run *b, const sn_child *c, double *score) {
  ameir_searcher *s = b->s;
  ameir_arch *a = NULL;
  ameir_model *m = NULL;
  CK(ameir__joint_to_arch(b->space, c, &a));
  ameir_status st = ameir__model_create_ex(&m, s->ctx, a, s->ds, b->opts, NULL, NULL);
  ameir_arch_free(a);
  CK(st);
  st = ameir_model_train(m, s->ds);
  *score = -INFINITY;
  if (st == AMEIR_ENUMERIC) {   /* a child that diverges is a bad child, not a failed search */
    ameir__search_log(s, "%s: a child diverged (%s): scored -inf", b->name, ameir_context_last_error(s->ctx));
    st = AMEIR_OK;
  } else if (!st) {
    st = ameir__model_metric_rows(m, s->ds, s->ds->split_rows[AMEIR_SPLIT_VALID], s->ds->split_n[AMEIR_SPLIT_VALID], score);
    if (!st && !isfinite(*score)) *score = -INFINITY;
  }
  ameir_model_free(m);
  return st;
}

/* Evaluates the next child (or takes its recorded result when replaying a resumed search) and
 * appends it to the history. */
static ameir_status add_child(bl_run *b, const sn_child *c, int32_t parent) {
  ameir_searcher *s = b->s;
  if (b->n == b->cap) {
    int32_t nc = b->cap ? 2 * b->cap : 64;
    bl_member *t = realloc(b->hist, sizeof *t * (size_t)nc);
    if (!t) return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
    b->hist = t;
    b->cap = nc;
  }
  bl_member *m = &b->hist[b->n];
  m->c = *c;
  m->parent = parent;
  if (b->n < b->n_loaded) {   /* replay */
    const bl_member *l = &b->loaded[b->n];
    if (ameir__joint_distance(b->space, &l->c, c) != 0 || l->parent != parent)
      return ameir__error(s->ctx, AMEIR_EFORMAT, "%s/baseline.txt: child %d differs from this search's (other data, space or options): delete it",
                          s->out, (int)b->n + 1);
    *m = *l;
    b->base = m->end;
    b->t0 = ameir__now_s();
  } else {
    uint64_t h = ameir__joint_hash(b->space, c);
    int32_t seen = -1;   /* training is deterministic for a seed: a child seen before scores the same */
    for (int32_t i = 0; i < b->n && seen < 0; i++)
      if (ameir__joint_hash(b->space, &b->hist[i].c) == h && !ameir__joint_distance(b->space, &b->hist[i].c, c)) seen = i;
    double t = ameir__now_s();
    if (seen >= 0) m->score = b->hist[seen].score;
    else CK(train_child(b, c, &m->score));
    m->seconds = ameir__now_s() - t;
    m->end = clock_now(b);
    b->n++;
    ameir_status st = ameir__search_write_atomic(s, "baseline.txt", fill_baseline, b);
    b->n--;
    CK(st);
  }
  if (m->seconds > b->max_child) b->max_child = m->seconds;
  b->n++;
  char stage[32];
  snprintf(stage, sizeof stage, "%s/score", b->name);   /* a child trained and scored */
  if (ameir__progress(s->ctx, stage, b->n, b->s->sp->children, m->score))
    return ameir__error(s->ctx, AMEIR_ECANCELLED, "%s cancelled", stage);
  return AMEIR_OK;
}

/* A new child may start: the time spent plus the longest child so far fits in the budget (the
 * clock is the one recorded at the previous child's end, so a replay decides the same way). */
static int budget_allows(const bl_run *b) {
  if (b->n == 0 || !isfinite(b->budget)) return 1;
  return b->hist[b->n - 1].end + b->max_child <= b->budget;
}

/* ---------------- the two searches ---------------- */

static int new_child(bl_run *b, ameir__rng *r, sn_child *c) {
  /* distinct children: a small space runs out */
  for (int32_t tries = 0; tries < 1000; tries++) {
    ameir__joint_random_child(b->space, r, c);
    int dup = 0;
    for (int32_t i = 0; i < b->n && !dup; i++) dup = !ameir__joint_distance(b->space, &b->hist[i].c, c);
    if (!dup) return 1;
  }
  return 0;
}

static ameir_status run_random(bl_run *b) {
  ameir_searcher *s = b->s;
  ameir__rng r;
  ameir__rng_seed(&r, s->ctx->seed, 0x7a4d5e00u);
  snprintf(s->stop, sizeof s->stop, "%d children trained (the most asked for)", (int)s->sp->children);
  while (b->n < s->sp->children) {
    if (!budget_allows(b)) { snprintf(s->stop, sizeof s->stop, "budget spent"); break; }
    sn_child c;
    if (!new_child(b, &r, &c)) { snprintf(s->stop, sizeof s->stop, "every child of the space trained"); break; }
    CK(add_child(b, &c, -1));
    const bl_member *m = &b->hist[b->n - 1];
    ameir__search_log(s, "random: child %d: validation %.5f (%.1f s; %.1f s spent)", (int)b->n, m->score, m->seconds, m->end);
  }
  return AMEIR_OK;
}

/* index in the history of the best of the last P members (the earliest of equals) */
static int32_t pop_best(const bl_run *b, int32_t P) {
  int32_t first = b->n > P ? b->n - P : 0, best = first;
  for (int32_t i = first + 1; i < b->n; i++)
    if (b->hist[i].score > b->hist[best].score) best = i;
  return best;
}

static ameir_status run_evolution(bl_run *b) {
  ameir_searcher *s = b->s;
  const ameir_space *sp = s->sp;
  int32_t P = sp->population;
  ameir__rng r;
  ameir__rng_seed(&r, s->ctx->seed, 0xe7010000u);
  s->evo_cycles = 0;
  /* the initial population: P children drawn uniformly */
  while (b->n < P) {
    if (b->n >= sp->children) { snprintf(s->stop, sizeof s->stop, "%d children trained (the most asked for) in the initial population", (int)sp->children); return AMEIR_OK; }
    if (!budget_allows(b)) { snprintf(s->stop, sizeof s->stop, "budget spent in the initial population (%d of %d)", (int)b->n, (int)P); return AMEIR_OK; }
    sn_child c;
    if (!new_child(b, &r, &c)) { snprintf(s->stop, sizeof s->stop, "the space has fewer than %d children", (int)P); return AMEIR_OK; }
    CK(add_child(b, &c, -1));
    const bl_member *m = &b->hist[b->n - 1];
    ameir__search_log(s, "evolution: initial child %d: validation %.5f (%.1f s; %.1f s spent)", (int)b->n, m->score, m->seconds, m->end);
  }
  int32_t best = pop_best(b, P), stall = 0;
  for (int32_t cycle = 0;; cycle++) {
    if (b->n >= sp->children) { snprintf(s->stop, sizeof s->stop, "%d children trained (the most asked for)", (int)sp->children); break; }
    if (!budget_allows(b)) { snprintf(s->stop, sizeof s->stop, "budget spent"); break; }
    ameir__rng_seed(&r, s->ctx->seed, 0xe7c00000u + (uint64_t)cycle);
    /* the parent: one random member (the appendix), or the best of a random tournament */
    int32_t first = b->n - P, parent = first + (int32_t)ameir__rng_below(&r, (uint64_t)P);
    int32_t S = sp->tournament < P ? sp->tournament : P;
    if (S > 1) {
      int32_t pick[SN_MAX_CHOICES * 64], np = P < (int32_t)(sizeof pick / sizeof pick[0]) ? P : (int32_t)(sizeof pick / sizeof pick[0]);
      for (int32_t i = 0; i < np; i++) pick[i] = first + i;
      parent = -1;
      for (int32_t i = 0; i < S && i < np; i++) {   /* S distinct members */
        int32_t j = i + (int32_t)ameir__rng_below(&r, (uint64_t)(np - i)), t = pick[i];
        pick[i] = pick[j];
        pick[j] = t;
        if (parent < 0 || b->hist[pick[i]].score > b->hist[parent].score) parent = pick[i];
      }
    }
    sn_child child;
    const char *what = "";
    sn_child pc = b->hist[parent].c;
    ameir__joint_mutate(b->space, &r, &pc, &child, &what);
    CK(add_child(b, &child, parent));
    s->evo_cycles = cycle + 1;
    int32_t nb = pop_best(b, P);
    stall = nb == best ? stall + 1 : 0;
    best = nb;
    ameir__search_log(s, "evolution: cycle %d: parent %d (%.5f), changed %s: validation %.5f (%.1f s; %.1f s spent); population best %.5f%s",
                      (int)cycle + 1, (int)parent + 1, b->hist[parent].score, what, b->hist[b->n - 1].score, b->hist[b->n - 1].seconds,
                      b->hist[b->n - 1].end, b->hist[best].score, stall ? "" : " (new)");
    if (stall >= sp->stall_cycles) {
      snprintf(s->stop, sizeof s->stop, "the population's best unchanged for %d cycles", (int)stall);
      break;
    }
  }
  return AMEIR_OK;
}

/* The report of the search (step 3): every child's score, the top k of the pool the result
 * comes from (random: every child; evolution: the final population). */
static ameir_status report(bl_run *b, int32_t pool0, int32_t chosen) {
  ameir_searcher *s = b->s;
  ameir__step_report *rep = &s->rep.step[3];
  free(rep->sample_metric);
  for (int32_t i = 0; i < rep->n_top; i++) free(rep->top_arch[i]);
  free(rep->top_arch);
  free(rep->top_metric);
  rep->top_arch = NULL;
  rep->top_metric = NULL;
  rep->n_top = 0;
  rep->n_samples = b->n;
  rep->sample_metric = malloc(sizeof(double) * (size_t)(b->n + 1));
  int32_t k = s->sp->topk < b->n - pool0 ? s->sp->topk : b->n - pool0;
  rep->top_arch = calloc((size_t)k + 1, sizeof(char *));
  rep->top_metric = calloc((size_t)k + 1, sizeof(double));
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)(b->n + 1));
  if (!rep->sample_metric || !rep->top_arch || !rep->top_metric || !idx) { free(idx); return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); }
  for (int32_t i = 0; i < b->n; i++) rep->sample_metric[i] = b->hist[i].score;
  int32_t n = 0;
  idx[n++] = chosen;
  for (int32_t i = pool0; i < b->n; i++) if (i != chosen) idx[n++] = i;
  for (int32_t i = 1; i < n; i++)   /* the chosen one first, then by score */
    for (int32_t j = i; j > 1 && b->hist[idx[j]].score > b->hist[idx[j - 1]].score; j--) { int32_t t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t; }
  ameir_status st = AMEIR_OK;
  for (int32_t i = 0; i < k && !st; i++) {
    ameir_arch *a = NULL;
    st = ameir__joint_to_arch(b->space, &b->hist[idx[i]].c, &a);
    if (!st) st = ameir_arch_to_string(a, &rep->top_arch[i]);
    ameir_arch_free(a);
    rep->top_metric[i] = b->hist[idx[i]].score;
    rep->n_top = i + 1;
  }
  free(idx);
  return st;
}

ameir_status ameir__search_baseline(ameir_searcher *s) {
  const ameir_space *sp = s->sp;
  ameir_context *ctx = s->ctx;
  if (s->ds->split_n[AMEIR_SPLIT_VALID] < 1) return ameir__error(ctx, AMEIR_ESTATE, "the validation split is empty: the search scores children on it");
  bl_run b;
  memset(&b, 0, sizeof b);
  b.s = s;
  b.t0 = ameir__now_s();
  b.name = sp->method == AMEIR__METHOD_EVOLUTION ? "evolution" : "random";
  b.budget = sp->budget_seconds > 0 ? sp->budget_seconds
           : sp->reference_seconds > 0 && sp->budget_factor > 0 ? sp->budget_factor * sp->reference_seconds : INFINITY;
  s->budget = b.budget;
  char *base = ameir__space_opts(sp);
  size_t n = base ? strlen(base) + 64 : 0;
  b.opts = base ? malloc(n) : NULL;
  if (!b.opts) { free(base); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
  snprintf(b.opts, n, "%sepochs=%d\npatience=0\n", base, (int)sp->child_epochs);
  free(base);
  ameir_status st = ameir__sn_create_joint(&b.space, sp, s->ds, 1);
  if (!st) st = load_baseline(&b);
  if (!st) {
    char btxt[64];
    if (isfinite(b.budget)) snprintf(btxt, sizeof btxt, "%.1f s", b.budget);
    else snprintf(btxt, sizeof btxt, "none");
    if (sp->method == AMEIR__METHOD_EVOLUTION)
      ameir__search_log(s, "regularized evolution over every subspace: population %d, parent %s, stop after %d cycles without a new best, "
                        "at most %d children of %d epoch(s), budget %s%s",
                        (int)sp->population, sp->tournament > 1 ? "the best of a tournament" : "uniform", (int)sp->stall_cycles,
                        (int)sp->children, (int)sp->child_epochs, btxt, b.n_loaded ? " (resumed)" : "");
    else
      ameir__search_log(s, "random search over every subspace: at most %d children of %d epoch(s), budget %s%s", (int)sp->children,
                        (int)sp->child_epochs, btxt, b.n_loaded ? " (resumed)" : "");
    st = sp->method == AMEIR__METHOD_EVOLUTION ? run_evolution(&b) : run_random(&b);
  }
  if (!st && b.n == 0) st = ameir__error(ctx, AMEIR_ESTATE, "no child was trained");
  if (!st) {
    int32_t pool0 = sp->method == AMEIR__METHOD_EVOLUTION && b.n > sp->population ? b.n - sp->population : 0;
    int32_t best = pool0;
    for (int32_t i = pool0 + 1; i < b.n; i++) if (b.hist[i].score > b.hist[best].score) best = i;
    s->children = b.n;
    s->best[3] = b.hist[best].c;
    ameir__search_log(s, "%s: %d children, stopped: %s; the best: child %d, validation %.5f", b.name, (int)b.n, s->stop, (int)best + 1,
                      b.hist[best].score);
    st = report(&b, pool0, best);
    ameir_arch *a = NULL;
    if (!st) st = ameir__joint_to_arch(b.space, &b.hist[best].c, &a);
    if (!st) st = ameir__search_set_result(s, 3, a, b.hist[best].score, b.t0);
    if (!st) s->rep.step[3].seconds = clock_now(&b);   /* with a resumed search's earlier time */
    if (!st) st = ameir__search_checkpoint(s);
  }
  ameir_supernet_free(b.space);
  free(b.hist);
  free(b.loaded);
  free(b.opts);
  return st;
}
