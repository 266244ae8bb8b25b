/* The three-step search and the derivation (paper section 2.3), with checkpoints and a report.
 *
 *   step 1  one-shot training of the block supernet; N random children scored on a validation
 *           subset with the inherited weights, the top k re-scored on the whole split.
 *   step 2  SMBO: from the first-order fields, each cycle crosses the kept interactions with
 *           every field, trains the one-shot model on the expanded set (weights inherited from
 *           cycle to cycle), scores each candidate and keeps the top k; at the end the top M.
 *   step 3  as step 1 over the MLP's widths and activations.
 *   derive  the found architecture initialised from the last supernet's weights, fine-tuned
 *           with early stopping, evaluated on test.
 *
 * Checkpoints (in the output directory): state.txt (the finished steps' results) after each
 * step, stepN.ckpt (the supernet's weights, optimiser state and the epoch reached) after each
 * epoch. Everything random is drawn from (seed, step, cycle, epoch), so a resumed search ends
 * where an uninterrupted one does. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "search_int.h"
#include "../model/arch.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

double ameir__now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void ameir__search_log(ameir_searcher *s, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ameir__log(s->ctx, AMEIR_LOG_INFO, "%s", msg);
  if (s->log) { fprintf(s->log, "%s\n", msg); fflush(s->log); }
}

static int has_seq(const ameir_dataset *ds) {
  for (int32_t i = 0; i < ds->n_fields; i++) if (ds->fields[i].kind == AMEIR_FIELD_SEQUENCE) return 1;
  return 0;
}

/* Steps that apply to the data (section 3.2). */
static int32_t applicable(const ameir_dataset *ds) {
  if (ds->task == AMEIR_TASK_RETRIEVAL) return 1 << 1;
  int32_t cat = 0;
  for (int32_t i = 0; i < ds->n_fields; i++) cat += ds->fields[i].kind == AMEIR_FIELD_CATEGORICAL || ds->fields[i].kind == AMEIR_FIELD_MULTI;
  int32_t m = 1 << 3;
  if (has_seq(ds)) m |= 1 << 1;
  if (cat >= 2) m |= 1 << 2;
  return m;
}

AMEIR_API ameir_status ameir_searcher_create(ameir_searcher **out, const ameir_space *sp, const ameir_dataset *ds) {
  if (!out || !sp || !ds) return ameir__error(sp ? sp->ctx : NULL, AMEIR_EINVAL, "ameir_searcher_create: NULL argument");
  ameir_searcher *s = calloc(1, sizeof *s);
  if (!s) return ameir__error(sp->ctx, AMEIR_ENOMEM, "out of memory");
  s->ctx = sp->ctx;
  s->sp = sp;
  s->ds = ds;
  s->steps_mask = applicable(ds) | (1 << 4);
  for (int i = 0; i < 5; i++) s->metric[i] = NAN;
  for (int i = 0; i < 4; i++) s->test[i] = NAN;
  s->budget = INFINITY;
  *out = s;
  return AMEIR_OK;
}

static void free_step_report(ameir__step_report *r) {
  free(r->arch);
  free(r->sample_metric);
  for (int32_t i = 0; i < r->n_top; i++) free(r->top_arch[i]);
  free(r->top_arch);
  free(r->top_metric);
  memset(r, 0, sizeof *r);
}

AMEIR_API void ameir_searcher_free(ameir_searcher *s) {
  if (!s) return;
  for (int i = 0; i < 5; i++) { ameir_arch_free(s->result[i]); free_step_report(&s->rep.step[i]); }
  for (int i = 0; i < 4; i++) ameir_supernet_free(s->sn[i]);
  ameir_model_free(s->model);
  if (s->log) fclose(s->log);
  free(s);
}

AMEIR_API ameir_status ameir_searcher_set(ameir_searcher *s, const char *key, const char *v) {
  if (!s || !key || !v) return ameir__error(s ? s->ctx : NULL, AMEIR_EINVAL, "ameir_searcher_set: NULL argument");
  if (!strcmp(key, "out") || !strcmp(key, "config")) {
    char *dst = key[0] == 'o' ? s->out : s->config;
    if (strlen(v) >= sizeof s->out) return ameir__error(s->ctx, AMEIR_ECONFIG, "searcher '%s': path too long", key);
    snprintf(dst, sizeof s->out, "%s", v);
    return AMEIR_OK;
  }
  if (!strcmp(key, "resume") || !strcmp(key, "from_scratch")) {
    if (strcmp(v, "0") && strcmp(v, "1")) return ameir__error(s->ctx, AMEIR_ECONFIG, "searcher '%s': '%s' is not 0 or 1", key, v);
    *(key[0] == 'r' ? &s->resume : &s->from_scratch) = v[0] == '1';
    return AMEIR_OK;
  }
  if (!strcmp(key, "steps")) {
    int32_t m = 1 << 4;
    for (const char *p = v; *p; p++) {
      if (*p >= '1' && *p <= '4') m |= 1 << (*p - '0');
      else if (*p != ',' && *p != ' ') return ameir__error(s->ctx, AMEIR_ECONFIG, "searcher 'steps': '%s' is not a list of 1, 2, 3", v);
    }
    s->steps_mask = m & (applicable(s->ds) | (1 << 4));
    s->redo_derive = strchr(v, '4') != NULL;
    return AMEIR_OK;
  }
  return ameir__error(s->ctx, AMEIR_ENOTFOUND, "unknown searcher option '%s' (out, config, resume, steps, from_scratch)", key);
}

/* ---------------- files ---------------- */

static void out_path(const ameir_searcher *s, char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", s->out, name);
}

/* state.txt: one "key value" line per fact; architecture texts with \n escaped */
static void put_text(FILE *f, const char *key, const char *t) {
  fprintf(f, "%s ", key);
  for (const char *p = t ? t : ""; *p; p++) {
    if (*p == '\n') fputs("\\n", f);
    else if (*p == '\\') fputs("\\\\", f);
    else fputc(*p, f);
  }
  fputc('\n', f);
}

static void unescape(char *t) {
  char *w = t;
  for (char *p = t; *p; p++) {
    if (*p == '\\' && p[1] == 'n') { *w++ = '\n'; p++; }
    else if (*p == '\\' && p[1] == '\\') { *w++ = '\\'; p++; }
    else *w++ = *p;
  }
  *w = 0;
}

static ameir_status write_atomic(ameir_searcher *s, const char *name, ameir_status (*fill)(ameir_searcher *, FILE *, void *), void *u) {
  char path[1100], tmp[1200];
  out_path(s, path, sizeof path, name);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) return ameir__error(s->ctx, AMEIR_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  ameir_status st = fill(s, f, u);
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) st = st ? st : ameir__error(s->ctx, AMEIR_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  if (fclose(f) != 0 && !st) st = ameir__error(s->ctx, AMEIR_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  if (!st && rename(tmp, path) != 0) st = ameir__error(s->ctx, AMEIR_EIO, "%s: cannot rename: %s", path, strerror(errno));
  if (st) remove(tmp);
  return st;
}

static ameir_status fill_state(ameir_searcher *s, FILE *f, void *u) {
  (void)u;
  fprintf(f, "ameir-search-state 1\nseed %llu\ndone %d\n", (unsigned long long)s->ctx->seed, (int)s->done_mask);
  if (s->sp->method != AMEIR__METHOD_AMEIR) {   /* the other methods' facts (old files lack them: ameir) */
    fprintf(f, "method %s\nbudget %.17g\nevocycles %d\n", ameir__method_name(s->sp->method), s->budget, (int)s->evo_cycles);
    put_text(f, "stop", s->stop);
  }
  for (int i = 1; i <= 4; i++) {
    if (!(s->done_mask & (1 << i))) continue;
    const ameir__step_report *r = &s->rep.step[i];
    char *t = NULL;
    if (s->result[i] && ameir_arch_to_string(s->result[i], &t)) return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
    fprintf(f, "step %d\n", i);
    put_text(f, "arch", t);
    free(t);
    fprintf(f, "metric %.17g\nseconds %.17g\nparams %lld\nflops %lld\n", s->metric[i], r->seconds, (long long)r->params, (long long)r->flops);
    if (i == 1 || i == 3) {
      const sn_child *c = &s->best[i];
      fprintf(f, "child");
      for (int j = 0; j < SN_MAX_BLOCKS; j++) fprintf(f, " %d %d %d", c->layer[j], c->act[j], c->norm[j]);
      for (int j = 0; j < SN_MAX_MLP; j++) fprintf(f, " %d %d", c->width[j], c->mact[j]);
      fprintf(f, "\n");
    }
    fprintf(f, "samples %d", (int)r->n_samples);
    for (int32_t j = 0; j < r->n_samples; j++) fprintf(f, " %.9g", r->sample_metric[j]);
    fprintf(f, "\ncycles %d", (int)r->cycles);
    for (int32_t j = 0; j < r->cycles; j++) fprintf(f, " %d", (int)r->cycle_candidates[j]);
    fprintf(f, "\ntop %d\n", (int)r->n_top);
    for (int32_t j = 0; j < r->n_top; j++) {
      fprintf(f, "topm %.17g\n", r->top_metric[j]);
      put_text(f, "topa", r->top_arch[j]);
    }
  }
  if (s->done_mask & (1 << 4)) fprintf(f, "test %.17g %.17g %.17g %.17g\n", s->test[0], s->test[1], s->test[2], s->test[3]);
  fprintf(f, "end\n");
  return ferror(f) ? ameir__error(s->ctx, AMEIR_EIO, "state write failed") : AMEIR_OK;
}

static ameir_status read_state(ameir_searcher *s) {
  char path[1100];
  out_path(s, path, sizeof path, "state.txt");
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? AMEIR_OK : ameir__error(s->ctx, AMEIR_EIO, "%s: %s", path, strerror(errno));
  size_t cap = 1 << 20;
  char *line = malloc(cap);
  if (!line) { fclose(f); return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); }
  ameir_status st = AMEIR_OK;
  int step = 0, lineno = 0, ended = 0, method_seen = 0;
  int32_t done = 0;
  while (!st && fgets(line, (int)cap, f)) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    char *sp = strchr(line, ' ');
    char *val = sp ? sp + 1 : line + strlen(line);
    if (sp) *sp = 0;
    ameir__step_report *r = &s->rep.step[step];
    if (lineno == 1) { if (strcmp(line, "ameir-search-state") || strcmp(val, "1")) st = AMEIR_EFORMAT; continue; }
    if (!strcmp(line, "seed")) { if (strtoull(val, NULL, 10) != s->ctx->seed) st = ameir__error(s->ctx, AMEIR_ECONFIG, "%s: written with seed %s, this run has %llu", path, val, (unsigned long long)s->ctx->seed); }
    else if (!strcmp(line, "done")) done = (int32_t)atoi(val);
    else if (!strcmp(line, "method")) {
      if (strcmp(val, ameir__method_name(s->sp->method)))
        st = ameir__error(s->ctx, AMEIR_ECONFIG, "%s: written by a search of method %s, this one is %s", path, val, ameir__method_name(s->sp->method));
      method_seen = 1;
    } else if (!strcmp(line, "budget")) s->budget = strtod(val, NULL);
    else if (!strcmp(line, "evocycles")) s->evo_cycles = (int32_t)atoi(val);
    else if (!strcmp(line, "stop")) { unescape(val); snprintf(s->stop, sizeof s->stop, "%s", val); }
    else if (!strcmp(line, "step")) { step = atoi(val); if (step < 1 || step > 4) st = AMEIR_EFORMAT; else free_step_report(&s->rep.step[step]); }
    else if (!step) st = strcmp(line, "end") ? AMEIR_EFORMAT : AMEIR_OK, ended = !strcmp(line, "end");
    else if (!strcmp(line, "arch")) {
      unescape(val);
      ameir_arch_free(s->result[step]);
      s->result[step] = NULL;
      if (*val) st = ameir_arch_parse(&s->result[step], s->ctx, val);
      r->arch = strdup(val);
    } else if (!strcmp(line, "metric")) s->metric[step] = r->valid_metric = strtod(val, NULL);
    else if (!strcmp(line, "seconds")) r->seconds = strtod(val, NULL);
    else if (!strcmp(line, "params")) r->params = strtoll(val, NULL, 10);
    else if (!strcmp(line, "flops")) r->flops = strtoll(val, NULL, 10);
    else if (!strcmp(line, "child")) {
      sn_child *c = &s->best[step < 4 ? step : 0];
      char *p = val;
      for (int j = 0; j < SN_MAX_BLOCKS; j++) { c->layer[j] = (int32_t)strtol(p, &p, 10); c->act[j] = (int32_t)strtol(p, &p, 10); c->norm[j] = (int32_t)strtol(p, &p, 10); }
      for (int j = 0; j < SN_MAX_MLP; j++) { c->width[j] = (int32_t)strtol(p, &p, 10); c->mact[j] = (int32_t)strtol(p, &p, 10); }
    } else if (!strcmp(line, "samples")) {
      char *p = val;
      long n = strtol(p, &p, 10);
      if (n < 0 || n > 100000000) { st = AMEIR_EFORMAT; break; }
      r->sample_metric = malloc(sizeof(double) * (size_t)(n + 1));
      if (!r->sample_metric) { st = AMEIR_ENOMEM; break; }
      r->n_samples = (int32_t)n;
      for (long j = 0; j < n; j++) r->sample_metric[j] = strtod(p, &p);
    } else if (!strcmp(line, "cycles")) {
      char *p = val;
      r->cycles = (int32_t)strtol(p, &p, 10);
      if (r->cycles < 0 || r->cycles > 16) { st = AMEIR_EFORMAT; break; }
      for (int32_t j = 0; j < r->cycles; j++) r->cycle_candidates[j] = (int32_t)strtol(p, &p, 10);
    } else if (!strcmp(line, "top")) {
      long n = atol(val);
      if (n < 0 || n > 100000) { st = AMEIR_EFORMAT; break; }
      r->top_arch = calloc((size_t)n + 1, sizeof(char *));
      r->top_metric = calloc((size_t)n + 1, sizeof(double));
      if (!r->top_arch || !r->top_metric) { st = AMEIR_ENOMEM; break; }
    } else if (!strcmp(line, "topm")) {
      if (r->top_metric) r->top_metric[r->n_top] = strtod(val, NULL);
    } else if (!strcmp(line, "topa")) {
      unescape(val);
      if (r->top_arch) r->top_arch[r->n_top++] = strdup(val);
    } else if (!strcmp(line, "test")) {
      char *p = val;
      for (int j = 0; j < 4; j++) s->test[j] = strtod(p, &p);
    } else if (!strcmp(line, "end")) ended = 1;
    else st = AMEIR_EFORMAT;
  }
  free(line);
  fclose(f);
  if (!st && ended && !method_seen && s->sp->method != AMEIR__METHOD_AMEIR)
    st = ameir__error(s->ctx, AMEIR_ECONFIG, "%s: written by a search of method ameir, this one is %s", path, ameir__method_name(s->sp->method));
  if (st == AMEIR_EFORMAT || (!st && !ended)) return ameir__error(s->ctx, AMEIR_EFORMAT, "%s:%d: not a search state this version wrote (or damaged)", path, lineno);
  if (st == AMEIR_ENOMEM) return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
  CK(st);
  s->done_mask = done;
  for (int i = 1; i <= 4; i++) if (done & (1 << i)) s->rep.step[i].ran = 1;
  return AMEIR_OK;
}

typedef struct { ameir_supernet *sn; int32_t cycle, epoch; } ckpt_u;

static ameir_status fill_ckpt(ameir_searcher *s, FILE *f, void *u) {
  ckpt_u *c = u;
  fprintf(f, "AMEIRCKPT 1 %d %d %d\n", (int)c->sn->step, (int)c->cycle, (int)c->epoch);
  CK(ameir__sn_save_state(c->sn, f));
  CK(ameir__sn_save_best(c->sn, f));
  fprintf(f, "END\n");
  return ferror(f) ? ameir__error(s->ctx, AMEIR_EIO, "checkpoint write failed") : AMEIR_OK;
}

static void ckpt_name(const ameir_supernet *sn, char *name, size_t n) {
  if (sn->step == SN_JOINT) snprintf(name, n, "joint.ckpt");
  else snprintf(name, n, "step%d.ckpt", (int)sn->step);
}

static ameir_status save_ckpt(ameir_searcher *s, ameir_supernet *sn, int32_t cycle, int32_t epoch) {
  if (!s->out[0]) return AMEIR_OK;
  char name[32];
  ckpt_name(sn, name, sizeof name);
  ckpt_u u = {sn, cycle, epoch};
  return write_atomic(s, name, fill_ckpt, &u);
}

/* Loads stepN.ckpt into sn; *cycle and *epoch receive the point it reached (-1: none). */
static ameir_status load_ckpt(ameir_searcher *s, ameir_supernet *sn, int32_t *cycle, int32_t *epoch) {
  *cycle = *epoch = -1;
  if (!s->out[0]) return AMEIR_OK;
  char path[1100], name[32];
  ckpt_name(sn, name, sizeof name);
  out_path(s, path, sizeof path, name);
  FILE *f = fopen(path, "rb");
  if (!f) return AMEIR_OK;
  int st_, cy, ep;
  ameir_status st = AMEIR_OK;
  if (fscanf(f, "AMEIRCKPT 1 %d %d %d", &st_, &cy, &ep) != 3 || fgetc(f) != '\n' || st_ != sn->step)
    st = ameir__error(s->ctx, AMEIR_EFORMAT, "%s: not a checkpoint of step %d", path, (int)sn->step);
  if (!st) st = ameir__sn_load_state(sn, f);
  if (!st) st = ameir__sn_load_best(sn, f);
  char end[8] = "";
  if (!st && (!fgets(end, sizeof end, f) || strcmp(end, "END\n")))
    st = ameir__error(s->ctx, AMEIR_EFORMAT, "%s: truncated checkpoint", path);
  if (st) ameir__error_prefix(s->ctx, "%s", path);
  fclose(f);
  CK(st);
  *cycle = cy;
  *epoch = ep;
  return AMEIR_OK;
}

/* ---------------- reporting helpers ---------------- */

static ameir_status arch_cost(ameir_searcher *s, const ameir_arch *a, int64_t *params, int64_t *flops) {
  ameir_model *m = NULL;
  char *opts = ameir__space_opts(s->sp);
  if (!opts) return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
  ameir_status st = ameir__model_create_ex(&m, s->ctx, a, s->ds, opts, NULL, NULL);
  free(opts);
  CK(st);
  *params = ameir_model_params(m, NULL);
  *flops = ameir_model_flops(m);
  ameir_model_free(m);
  return AMEIR_OK;
}

static ameir_status set_result(ameir_searcher *s, int step, ameir_arch *a, double metric, double t0) {
  ameir__step_report *r = &s->rep.step[step];
  ameir_arch_free(s->result[step]);
  s->result[step] = a;
  s->metric[step] = r->valid_metric = metric;
  free(r->arch);
  r->arch = NULL;
  CK(ameir_arch_to_string(a, &r->arch));
  CK(arch_cost(s, a, &r->params, &r->flops));
  r->seconds = ameir__now_s() - t0;
  r->ran = 1;
  s->done_mask |= 1 << step;
  ameir__search_log(s, "step %d: done in %.1f s, validation %s %.5f, %lld parameters, %lld FLOPs/sample", step, r->seconds,
       s->ds->task == AMEIR_TASK_RETRIEVAL ? "HR@10" : "AUC", metric, (long long)r->params, (long long)r->flops);
  ameir__search_log(s, "%s", r->arch);
  return AMEIR_OK;
}

static ameir_status write_reports(ameir_searcher *s) {
  if (!s->out[0]) return AMEIR_OK;
  ameir__search_report *r = &s->rep;
  r->dataset = s->ds->name ? s->ds->name : "";
  r->config = s->config;
  r->task = s->ds->task;
  r->metric_name = s->ds->task == AMEIR_TASK_RETRIEVAL ? "hr10" : "auc";
  r->seed = s->ctx->seed;
  r->threads = s->ctx->threads;
  r->from_scratch = s->from_scratch || s->sp->method == AMEIR__METHOD_RANDOM || s->sp->method == AMEIR__METHOD_EVOLUTION;
  r->final_arch = s->result[4];
  static const char *ctr[] = {"auc", "logloss", NULL}, *ret[] = {"hr10", "ndcg10", NULL};
  const char **names = s->ds->task == AMEIR_TASK_RETRIEVAL ? ret : ctr;
  for (int i = 0; i < 4; i++) { r->test_names[i] = i < 2 ? names[i] : NULL; r->test_metric[i] = s->test[i]; }
  char path[1100], note[256] = "";
  int32_t method = s->sp->method;
  r->method = ameir__method_name(method);
  if (method != AMEIR__METHOD_AMEIR && (s->done_mask & (1 << 3))) {
    if (method == AMEIR__METHOD_JOINT) snprintf(note, sizeof note, "%s", s->stop);
    else {
      snprintf(note, sizeof note, "%d children trained %d epoch%s each", (int)r->step[3].n_samples, (int)s->sp->child_epochs,
               s->sp->child_epochs == 1 ? "" : "s");
      if (method == AMEIR__METHOD_EVOLUTION) snprintf(note + strlen(note), sizeof note - strlen(note), ", %d cycles", (int)s->evo_cycles);
      if (isfinite(s->budget)) snprintf(note + strlen(note), sizeof note - strlen(note), ", budget %.1f s", s->budget);
      snprintf(note + strlen(note), sizeof note - strlen(note), "; stopped: %s", s->stop);
    }
  }
  r->method_note = note[0] ? note : NULL;
  out_path(s, path, sizeof path, "report.yaml");
  ameir_status st = ameir__report_write_yaml(s->ctx, r, path);
  out_path(s, path, sizeof path, "report.html");
  if (!st) st = ameir__report_write_html(s->ctx, r, path);
  r->method_note = NULL;
  return st;
}

static ameir_status checkpoint_step(ameir_searcher *s) {
  if (!s->out[0]) return AMEIR_OK;
  CK(write_atomic(s, "state.txt", fill_state, NULL));
  return write_reports(s);
}

ameir_status ameir__search_set_result(ameir_searcher *s, int step, ameir_arch *a, double metric, double t0) {
  return set_result(s, step, a, metric, t0);
}

ameir_status ameir__search_checkpoint(ameir_searcher *s) { return checkpoint_step(s); }

ameir_status ameir__search_write_atomic(ameir_searcher *s, const char *name,
                                        ameir_status (*fill)(ameir_searcher *, FILE *, void *), void *u) {
  if (!s->out[0]) return AMEIR_OK;
  return write_atomic(s, name, fill, u);
}

/* ---------------- steps 1 and 3: sample, score, re-score the top k ---------------- */

static int cmp_scored(const void *a, const void *b) {
  const scored_child *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;   /* NaN sorts last via the != */
  return 0;
}

static uint64_t child_hash(const ameir_supernet *sn, const sn_child *c) {
  if (sn->step == SN_JOINT) return ameir__joint_hash(sn, c);
  uint64_t h = 1469598103934665603ull;
  if (sn->step == 1)
    for (int32_t l = 0; l < sn->L; l++) {
      int zero = sn->kinds[c->layer[l]] == AMEIR_LAYER_ZERO;
      h = (h ^ (uint64_t)c->layer[l]) * 1099511628211ull;
      h = (h ^ (uint64_t)(zero ? 0 : c->act[l] * 4 + c->norm[l])) * 1099511628211ull;
    }
  else
    for (int32_t l = 0; l < sn->n_mlp; l++) h = (h ^ (uint64_t)(c->width[l] * 64 + c->mact[l])) * 1099511628211ull;
  return h;
}

/* N children of the supernet scored on the validation subset, the top k on the whole split;
 * the report goes to step rstep. */
static ameir_status sample_and_pick(ameir_searcher *s, ameir_supernet *sn, int32_t N, int32_t rstep, sn_child *best,
                                    double *best_metric) {
  const ameir_space *sp = s->sp;
  const ameir_dataset *ds = s->ds;
  int64_t nv = ds->split_n[AMEIR_SPLIT_VALID];
  if (nv < 1) return ameir__error(s->ctx, AMEIR_ESTATE, "the validation split is empty: the search scores children on it");
  int64_t sub = sp->score_rows > 0 && sp->score_rows < nv ? sp->score_rows : nv;
  scored_child *sc = calloc((size_t)N, sizeof *sc);
  int64_t hcap = 1;
  while (hcap < 4 * (int64_t)N) hcap <<= 1;
  uint64_t *seen = calloc((size_t)hcap, sizeof *seen);
  if (!sc || !seen) { free(sc); free(seen); return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); }
  ameir__rng r;
  ameir__rng_seed(&r, s->ctx->seed, 0x5c0e0000u + (uint64_t)sn->step);
  char stage[32];
  if (sn->step == SN_JOINT) snprintf(stage, sizeof stage, "joint/score");
  else snprintf(stage, sizeof stage, "step%d/score", (int)sn->step);
  /* the subset is the first rows of the validation split (fixed, as the paper's) */
  const int64_t *vrows = ds->split_rows[AMEIR_SPLIT_VALID];
  int32_t n = 0;
  ameir_status st = AMEIR_OK;
  for (int64_t tries = 0; n < N && tries < 20 * (int64_t)N && !st; tries++) {
    sn_child c;
    ameir__sn_random_child(sn, &r, &c);
    uint64_t h = child_hash(sn, &c) | 1;   /* distinct children only: small spaces run out */
    int64_t i = (int64_t)(h & (uint64_t)(hcap - 1));
    int dup = 0;
    while (seen[i]) { if (seen[i] == h) { dup = 1; break; } i = (i + 1) & (hcap - 1); }
    if (dup) continue;
    seen[i] = h;
    sc[n].c = c;
    st = ameir__sn_score(sn, &c, vrows, sub, &sc[n].score);
    if (st) break;
    if (!isfinite(sc[n].score)) sc[n].score = -INFINITY;
    n++;
    if ((n % 20 == 0 || n == N) && ameir__progress(s->ctx, stage, n, N, sc[n - 1].score))
      st = ameir__error(s->ctx, AMEIR_ECANCELLED, "%s cancelled", stage);
  }
  free(seen);
  if (sn->step == SN_JOINT) s->children = n;
  ameir__step_report *rep = &s->rep.step[rstep];
  if (!st) {
    free(rep->sample_metric);
    rep->sample_metric = malloc(sizeof(double) * (size_t)(n + 1));
    if (!rep->sample_metric) st = ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
    else for (int32_t i = 0; i < n; i++) rep->sample_metric[i] = sc[i].score;
    rep->n_samples = n;
  }
  if (!st) {
    qsort(sc, (size_t)n, sizeof *sc, cmp_scored);
    int32_t k = sp->topk < n ? sp->topk : n;
    for (int32_t i = 0; i < k && !st; i++) st = ameir__sn_score(sn, &sc[i].c, vrows, nv, &sc[i].full);
    int32_t bi = 0;
    for (int32_t i = 1; i < k; i++) if (sc[i].full > sc[bi].full) bi = i;
    if (!st && k > 0) {
      *best = sc[bi].c;
      *best_metric = sc[bi].full;
      rep->top_arch = calloc((size_t)k + 1, sizeof(char *));
      rep->top_metric = calloc((size_t)k + 1, sizeof(double));
      if (!rep->top_arch || !rep->top_metric) st = ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
      /* the top k by their whole-split metric */
      for (int32_t i = 0; i < k && !st; i++) {
        int32_t j = i;
        for (int32_t q = i + 1; q < k; q++) if (sc[q].full > sc[j].full) j = q;
        scored_child t = sc[i]; sc[i] = sc[j]; sc[j] = t;
        ameir_arch *a = NULL;
        st = ameir__sn_child_to_arch(sn, &sc[i].c, &a);
        if (!st) st = ameir_arch_to_string(a, &rep->top_arch[i]);
        ameir_arch_free(a);
        rep->top_metric[i] = sc[i].full;
        rep->n_top = i + 1;
      }
    }
    if (!st && k == 0) st = ameir__error(s->ctx, AMEIR_ESTATE, "no child was scored");
  }
  free(sc);
  return st;
}

typedef struct { ameir_searcher *s; ameir_supernet *sn; int32_t cycle; } epoch_u;

static ameir_status on_epoch(void *u, int32_t epoch) {
  epoch_u *e = u;
  if (e->sn->step == SN_JOINT) ameir__search_log(e->s, "joint: epoch %d trained", (int)epoch + 1);
  else ameir__search_log(e->s, "step %d%s: epoch %d trained", (int)e->sn->step, e->sn->step == 2 ? " cycle" : "", (int)epoch + 1);
  return save_ckpt(e->s, e->sn, e->cycle, epoch);
}

/* Builds (or reloads) the supernet of a step and trains it to the end of its epochs. */
static ameir_status trained_supernet(ameir_searcher *s, int32_t step, const ameir_arch *fixed, ameir_supernet **out) {
  if (s->sn[step]) { *out = s->sn[step]; return AMEIR_OK; }
  ameir_supernet *sn = NULL;
  if (step == SN_JOINT) CK(ameir__sn_create_joint(&sn, s->sp, s->ds, 0));
  else CK(ameir_supernet_create(&sn, s->sp, s->ds, step, fixed));
  s->sn[step] = sn;
  int32_t cycle = -1, epoch = -1;
  if (s->resume) CK(load_ckpt(s, sn, &cycle, &epoch));
  if (epoch < 0 && step == 3 && s->sn[1] && s->sp->inherit3) {
    /* step 3 may start from step 1's embeddings and chosen blocks; by default it starts from
     * random weights: on small data the extra epochs of step 1 overfit (docs/search.md) */
    CK(ameir__sn_set_child(s->sn[1], &s->best[1]));
    CK(ameir__model_inherit(sn->m, s->sn[1]->m));
  }
  int32_t E = s->sp->epochs[step];
  int64_t B = sn->m->opt.batch, n = s->ds->split_n[AMEIR_SPLIT_TRAIN];
  sn->sched_total = (int64_t)E * ((n + B - 1) / B);
  if (epoch + 1 < E && !(epoch >= 0 && sn->es_stopped)) {
    if (epoch >= 0 && step == SN_JOINT) ameir__search_log(s, "joint: resuming after epoch %d", (int)epoch + 1);
    else if (epoch >= 0) ameir__search_log(s, "step %d: resuming after epoch %d", (int)step, (int)epoch + 1);
    epoch_u u = {s, sn, 0};
    CK(ameir__sn_train(sn, E, 0, epoch + 1, on_epoch, &u));
  }
  *out = sn;
  return AMEIR_OK;
}

static ameir_status run_block_or_mlp(ameir_searcher *s, int32_t step, const ameir_arch *fixed) {
  double t0 = ameir__now_s();
  ameir__search_log(s, "step %d: %s", (int)step, step == 1 ? "behaviour blocks" : "MLP widths and activations");
  ameir_supernet *sn = NULL;
  CK(trained_supernet(s, step, fixed, &sn));
  sn_child best;
  double metric = NAN;
  CK(sample_and_pick(s, sn, s->sp->samples, step, &best, &metric));
  s->best[step] = best;
  ameir_arch *a = NULL;
  CK(ameir__sn_child_to_arch(sn, &best, &a));
  if (step == 1) {   /* AMEIR-A: the blocks with the space's shortcut */
    a->shortcut = s->sp->shortcut;
  }
  ameir_status st = set_result(s, step, a, metric, t0);
  if (st) return st;
  return checkpoint_step(s);
}

/* Method joint (appendix C.4's "One-shot Random Search"): one one-shot model over the three
 * subspaces at once, trained with fairly sampled children, then joint_samples random children
 * scored with the inherited weights as in steps 1 and 3; reported as step 3. */
static ameir_status run_joint(ameir_searcher *s) {
  double t0 = ameir__now_s();
  ameir__search_log(s, "joint one-shot random search over every subspace at once: %d children", (int)s->sp->joint_samples);
  ameir_supernet *sn = NULL;
  CK(trained_supernet(s, SN_JOINT, NULL, &sn));
  sn_child best;
  double metric = NAN;
  CK(sample_and_pick(s, sn, s->sp->joint_samples, 3, &best, &metric));
  s->best[3] = best;
  snprintf(s->stop, sizeof s->stop, "%d children scored", (int)s->children);
  ameir_arch *a = NULL;
  CK(ameir__sn_child_to_arch(sn, &best, &a));
  CK(set_result(s, 3, a, metric, t0));
  return checkpoint_step(s);
}

/* ---------------- step 2: SMBO over interactions ---------------- */

static int cmp_inter(const void *a, const void *b) {
  const sn_inter *x = a, *y = b;
  if (x->score != y->score) return x->score > y->score ? -1 : 1;
  if (x->order != y->order) return x->order - y->order;
  for (int32_t i = 0; i < x->order; i++) if (x->f[i] != y->f[i]) return x->f[i] - y->f[i];
  return 0;
}

static int inter_eq(const sn_inter *a, const sn_inter *b) {
  if (a->order != b->order) return 0;
  for (int32_t i = 0; i < a->order; i++) if (a->f[i] != b->f[i]) return 0;
  return 1;
}

/* kept ones plus each kept one crossed with every field it lacks (sorted, deduplicated) */
static int32_t expand(const ameir_supernet *sn, const sn_inter *kept, int32_t nk, sn_inter *out, int32_t cap) {
  int32_t n = 0;
  for (int32_t i = 0; i < nk && n < cap; i++) { out[n] = kept[i]; out[n].score = 0; n++; }
  for (int32_t i = 0; i < nk; i++)
    for (int32_t e = 0; e < sn->n_eligible; e++) {
      int32_t f = sn->eligible[e];
      const sn_inter *k = &kept[i];
      if (k->order >= sn->m->max_order) continue;
      int has = 0;
      for (int32_t q = 0; q < k->order; q++) has |= k->f[q] == f;
      if (has) continue;
      sn_inter c = {0};
      c.order = k->order + 1;
      memcpy(c.f, k->f, sizeof(int32_t) * (size_t)k->order);
      c.f[k->order] = f;
      for (int32_t a = 1; a < c.order; a++)   /* descending, as the supernet keeps them */
        for (int32_t b = a; b > 0 && c.f[b] > c.f[b - 1]; b--) { int32_t t = c.f[b]; c.f[b] = c.f[b - 1]; c.f[b - 1] = t; }
      int dup = 0;
      for (int32_t q = 0; q < n && !dup; q++) dup = inter_eq(&out[q], &c);
      if (!dup && n < cap) out[n++] = c;
    }
  return n;
}

static ameir_status run_interactions(ameir_searcher *s, const ameir_arch *fixed) {
  double t0 = ameir__now_s();
  const ameir_space *sp = s->sp;
  ameir__search_log(s, "step 2: interactions (%d cycles, top %d, M = %d)", (int)sp->cycles, (int)sp->inter_topk, (int)sp->inter_m);
  ameir_supernet *sn = s->sn[2];
  if (!sn) { CK(ameir_supernet_create(&sn, sp, s->ds, 2, fixed)); s->sn[2] = sn; }
  int32_t cycle0 = 0, epoch0 = -1;
  if (s->resume) CK(load_ckpt(s, sn, &cycle0, &epoch0));
  if (cycle0 < 0) cycle0 = 0;
  int64_t B = sn->m->opt.batch, n = s->ds->split_n[AMEIR_SPLIT_TRAIN], nv = s->ds->split_n[AMEIR_SPLIT_VALID];
  if (nv < 1) return ameir__error(s->ctx, AMEIR_ESTATE, "the validation split is empty: the search scores candidates on it");
  int32_t E = sp->epochs[2];
  sn->sched_total = (int64_t)sp->cycles * E * ((n + B - 1) / B);
  int32_t cap = sn->n_slots;
  sn_inter *cand = calloc((size_t)cap + 1, sizeof *cand);
  if (!cand) return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
  ameir__step_report *rep = &s->rep.step[2];
  ameir_status st = AMEIR_OK;
  if (cycle0 == 0) {   /* cycle 1: the fields and their pairs (fields crossed with every field) */
    sn_inter *first = calloc((size_t)sn->n_eligible + 1, sizeof *first);
    if (!first) { free(cand); return ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); }
    for (int32_t i = 0; i < sn->n_eligible; i++) { first[i].order = 1; first[i].f[0] = sn->eligible[i]; }
    int32_t nc = expand(sn, first, sn->n_eligible, cand, cap);
    free(first);
    st = ameir__sn_set_candidates(sn, cand, nc);
    cycle0 = 1;
    epoch0 = -1;
  }
  /* a checkpoint of cycle c holds that cycle's candidates with the epochs trained so far */
  rep->cycles = 0;
  double *all_s = NULL;
  int32_t n_all = 0;
  for (int32_t c = cycle0; c <= sp->cycles && !st; c++) {
    rep->cycles = c;
    if (c - 1 < 16) rep->cycle_candidates[c - 1] = sn->n_cand;
    if (epoch0 + 1 < E && !(epoch0 >= 0 && sn->es_stopped)) {
      epoch_u u = {s, sn, c};
      st = ameir__sn_train(sn, E, c, epoch0 + 1, on_epoch, &u);
    }
    epoch0 = -1;
    if (st) break;
    char stage[32];
    snprintf(stage, sizeof stage, "step2/score%d", (int)c);
    for (int32_t i = 0; i < sn->n_cand && !st; i++) {
      sn_child ch;
      memset(&ch, 0, sizeof ch);
      ch.inter = i;
      st = ameir__sn_score(sn, &ch, s->ds->split_rows[AMEIR_SPLIT_VALID], nv, &sn->cand[i].score);   /* "evaluated on the validation set" */
      if (!st && !isfinite(sn->cand[i].score)) sn->cand[i].score = -INFINITY;
      if (!st && (i % 20 == 19 || i == sn->n_cand - 1) && ameir__progress(s->ctx, stage, i + 1, sn->n_cand, sn->cand[i].score))
        st = ameir__error(s->ctx, AMEIR_ECANCELLED, "%s cancelled", stage);
    }
    if (st) break;
    /* the report's distribution: every candidate scored in every cycle */
    double *ns = realloc(all_s, sizeof(double) * (size_t)(n_all + sn->n_cand + 1));
    if (!ns) { st = ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); break; }
    all_s = ns;
    for (int32_t i = 0; i < sn->n_cand; i++) all_s[n_all++] = sn->cand[i].score;
    memcpy(cand, sn->cand, sizeof *cand * (size_t)sn->n_cand);
    int32_t nc = sn->n_cand;
    qsort(cand, (size_t)nc, sizeof *cand, cmp_inter);
    int32_t keep = sp->inter_topk < nc ? sp->inter_topk : nc;
    ameir__search_log(s, "step 2: cycle %d: %d candidates, best %.5f", (int)c, (int)nc, nc ? cand[0].score : NAN);
    if (c == sp->cycles) {
      /* the top M of order >= 2 (an order-1 "interaction" repeats a field already in e) */
      ameir_arch *a = NULL;
      st = ameir__arch_copy(s->ctx, fixed ? fixed : sn->fixed, &a);
      if (st) break;
      /* without step 1 the template keeps step 2's read-out (behaviours as pooled fields) */
      a->shortcut = sp->shortcut;
      for (int32_t i = 0; i < a->n_inter; i++)
        for (int32_t j = 0; j < a->inter[i].order; j++) free(a->inter[i].fields[j]);
      free(a->inter);
      a->inter = calloc((size_t)sp->inter_m + 1, sizeof *a->inter);
      a->n_inter = 0;
      if (!a->inter) { ameir_arch_free(a); st = ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); break; }
      rep->top_arch = calloc((size_t)sp->inter_m + 1, sizeof(char *));
      rep->top_metric = calloc((size_t)sp->inter_m + 1, sizeof(double));
      if (!rep->top_arch || !rep->top_metric) { ameir_arch_free(a); st = ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory"); break; }
      double best = NAN;
      for (int32_t i = 0; i < nc && a->n_inter < sp->inter_m && !st; i++) {
        if (cand[i].order < 2) continue;
        ameir__inter *it = &a->inter[a->n_inter];
        char txt[1024] = "";
        for (int32_t j = 0; j < cand[i].order && !st; j++) {
          /* field names in schema order, as a person writes them */
          int32_t f = cand[i].f[cand[i].order - 1 - j];
          const char *nm = s->ds->fields[sn->m->cat_field[f]].name;
          it->fields[j] = strdup(nm);
          if (!it->fields[j]) st = ameir__error(s->ctx, AMEIR_ENOMEM, "out of memory");
          it->order = j + 1;
          snprintf(txt + strlen(txt), sizeof txt - strlen(txt), "%s%s", j ? ", " : "(", nm);
        }
        snprintf(txt + strlen(txt), sizeof txt - strlen(txt), ")");
        a->n_inter++;
        if (isnan(best)) best = cand[i].score;
        rep->top_arch[rep->n_top] = strdup(txt);
        rep->top_metric[rep->n_top++] = cand[i].score;
      }
      free(rep->sample_metric);
      rep->sample_metric = all_s;
      rep->n_samples = n_all;
      all_s = NULL;
      if (!st) st = set_result(s, 2, a, best, t0);
      else ameir_arch_free(a);
      if (!st) st = checkpoint_step(s);
      break;
    }
    int32_t nn = expand(sn, cand, keep, cand + 0, cap);   /* in place: kept ones lead the list */
    st = ameir__sn_set_candidates(sn, cand, nn);
    if (!st) st = save_ckpt(s, sn, c + 1, -1);
  }
  free(all_s);
  free(cand);
  return st;
}

/* ---------------- derivation ---------------- */

static ameir_status derive(ameir_searcher *s) {
  double t0 = ameir__now_s();
  ameir_context *ctx = s->ctx;
  const ameir_arch *fin = s->result[3] ? s->result[3] : s->result[2] ? s->result[2] : s->result[1];
  int32_t epochs = s->sp->finetune_epochs ? s->sp->finetune_epochs : s->sp->train_epochs ? s->sp->train_epochs : 10;
  if (!fin) return ameir__error(ctx, AMEIR_ESTATE, "nothing to derive: no step has run");
  int32_t method = s->sp->method;
  /* random search and evolution train every child on its own: their best is trained fully
   * from random weights, "like any model" (appendix C.4) */
  int scratch = s->from_scratch || method == AMEIR__METHOD_RANDOM || method == AMEIR__METHOD_EVOLUTION;
  ameir__search_log(s, "derivation: %s, %d epochs at most, patience %d", scratch ? "from random weights" : "from the one-shot weights",
       (int)epochs, (int)s->sp->patience);
  char *base = ameir__space_opts(s->sp);
  if (!base) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  size_t n = strlen(base) + 128;
  char *opts = malloc(n);
  if (!opts) { free(base); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
  snprintf(opts, n, "%sepochs=%d\npatience=%d\nrestore_best=1\n", base, (int)epochs, (int)s->sp->patience);
  free(base);
  ameir_model_free(s->model);
  s->model = NULL;
  ameir_status st = ameir__model_create_ex(&s->model, ctx, fin, s->ds, opts, NULL, NULL);
  free(opts);
  CK(st);
  ameir_supernet *inherited = NULL;
  if (!scratch) {
    /* the last supernet with the chosen child in place holds exactly the derived parameters */
    ameir_supernet *src = NULL;
    if (method == AMEIR__METHOD_JOINT) {
      sn_child c;
      CK(trained_supernet(s, SN_JOINT, NULL, &src));
      CK(ameir__sn_child_from_arch(src, fin, &c));
      CK(ameir__sn_set_child(src, &c));
    } else if (s->result[3]) { CK(trained_supernet(s, 3, s->result[2] ? s->result[2] : s->result[1], &src)); CK(ameir__sn_set_child(src, &s->best[3])); }
    else if (s->result[1] && !s->result[2]) { CK(trained_supernet(s, 1, NULL, &src)); CK(ameir__sn_set_child(src, &s->best[1])); }
    if (src) CK(ameir__model_inherit(s->model, src->m));
    else ameir__search_log(s, "derivation: no supernet holds this architecture's weights; starting from random weights");
    inherited = src;
  }
  /* early stopping counts the inherited weights as epoch 0: on small data one more epoch on
   * top of the one-shot training can only overfit, and then the inherited model is the answer */
  double v0 = NAN, v1 = NAN;
  const int64_t *vr = s->ds->split_rows[AMEIR_SPLIT_VALID];
  int64_t nv = s->ds->split_n[AMEIR_SPLIT_VALID];
  if (inherited && nv > 0) CK(ameir__model_metric_rows(s->model, s->ds, vr, nv, &v0));
  CK(ameir_model_train(s->model, s->ds));
  if (inherited && nv > 0) {
    CK(ameir__model_metric_rows(s->model, s->ds, vr, nv, &v1));
    if (v0 >= v1) {
      ameir__search_log(s, "derivation: the inherited weights (validation %.5f) beat every fine-tuned epoch (%.5f): kept", v0, v1);
      CK(ameir__model_inherit(s->model, inherited->m));
    }
  }
  ameir__step_report *r = &s->rep.step[4];
  r->seconds = ameir__now_s() - t0;
  if (s->ds->task == AMEIR_TASK_RETRIEVAL) {
    int32_t ids[2] = {AMEIR_METRIC_HR10, AMEIR_METRIC_NDCG10};
    CK(ameir_model_evaluate(s->model, s->ds, AMEIR_SPLIT_TEST, 2, ids, s->test));
  } else {
    int32_t ids[2] = {AMEIR_METRIC_AUC, AMEIR_METRIC_LOGLOSS};
    CK(ameir_model_evaluate(s->model, s->ds, AMEIR_SPLIT_TEST, 2, ids, s->test));
  }
  ameir_arch *a = NULL;
  CK(ameir__arch_copy(ctx, fin, &a));
  ameir_arch_free(s->result[4]);
  s->result[4] = a;
  free(r->arch);
  r->arch = NULL;
  CK(ameir_arch_to_string(a, &r->arch));
  r->params = ameir_model_params(s->model, NULL);
  r->flops = ameir_model_flops(s->model);
  r->valid_metric = s->test[0];
  s->metric[4] = s->test[0];
  r->ran = 1;
  s->done_mask |= 1 << 4;
  ameir__search_log(s, "derivation: done in %.1f s; test %s %.5f, %s %.5f", r->seconds, s->ds->task == AMEIR_TASK_RETRIEVAL ? "HR@10" : "AUC",
       s->test[0], s->ds->task == AMEIR_TASK_RETRIEVAL ? "NDCG@10" : "log loss", s->test[1]);
  if (s->out[0]) {
    char path[1100];
    out_path(s, path, sizeof path, "model.ameir");
    CK(ameir_model_save(s->model, path));
  }
  return checkpoint_step(s);
}

/* ---------------- driver ---------------- */

static ameir_status open_out(ameir_searcher *s) {
  if (!s->out[0] || s->log) return AMEIR_OK;
  if (mkdir(s->out, 0777) != 0 && errno != EEXIST) return ameir__error(s->ctx, AMEIR_EIO, "%s: cannot create: %s", s->out, strerror(errno));
  char path[1100];
  out_path(s, path, sizeof path, "search.log");
  s->log = fopen(path, s->resume ? "a" : "w");
  if (!s->log) return ameir__error(s->ctx, AMEIR_EIO, "%s: cannot write: %s", path, strerror(errno));
  if (s->resume) {
    CK(read_state(s));
    /* a finished step's supernet is rebuilt from its checkpoint when a later step needs it */
  } else {
    for (int i = 0; i <= 4; i++) {   /* a fresh search: stale checkpoints would mislead --resume */
      char name[32];
      snprintf(name, sizeof name, i == 0 ? "joint.ckpt" : i == 4 ? "baseline.txt" : "step%d.ckpt", i);
      out_path(s, path, sizeof path, name);
      remove(path);
    }
    out_path(s, path, sizeof path, "state.txt");
    remove(path);
  }
  return AMEIR_OK;
}

static ameir_status run_one(ameir_searcher *s, int32_t step) {
  if ((s->done_mask & (1 << step)) && !(step == 4 && s->redo_derive)) return AMEIR_OK;
  int32_t method = s->sp->method;
  if (method != AMEIR__METHOD_AMEIR) {   /* one search over every subspace (step 3), then step 4 */
    if (step == 4) return derive(s);
    if (s->done_mask & (1 << 3)) return AMEIR_OK;
    return method == AMEIR__METHOD_JOINT ? run_joint(s) : ameir__search_baseline(s);
  }
  if (!(s->steps_mask & (1 << step))) return AMEIR_OK;
  if (step == 1) return run_block_or_mlp(s, 1, NULL);
  if (step == 2) return run_interactions(s, s->result[1]);
  if (step == 3) return run_block_or_mlp(s, 3, s->result[2] ? s->result[2] : s->result[1]);
  return derive(s);
}

AMEIR_API ameir_status ameir_searcher_run(ameir_searcher *s, int32_t step) {
  if (!s) return ameir__error(NULL, AMEIR_EINVAL, "ameir_searcher_run: NULL argument");
  if (step < 0 || step > 4) return ameir__error(s->ctx, AMEIR_EINVAL, "step %d: the steps are 1, 2, 3 and 4 (derivation), or 0 for all", (int)step);
  CK(open_out(s));
  if (step) return run_one(s, step);
  for (int32_t i = 1; i <= 4; i++) CK(run_one(s, i));
  return AMEIR_OK;
}

AMEIR_API ameir_status ameir_searcher_result(const ameir_searcher *s, int32_t step, ameir_arch **arch, double *metric) {
  if (!s) return ameir__error(NULL, AMEIR_EINVAL, "ameir_searcher_result: NULL argument");
  if (arch) *arch = NULL;
  if (step < 1 || step > 4 || !s->result[step])
    return ameir__error(s->ctx, AMEIR_ENOTFOUND, "step %d has no result", (int)step);
  if (arch) CK(ameir__arch_copy(s->ctx, s->result[step], arch));
  if (metric) *metric = s->metric[step];
  return AMEIR_OK;
}

ameir_supernet *ameir__searcher_supernet(ameir_searcher *s, int32_t step) {
  return s && step >= 1 && step <= 3 ? s->sn[step] : NULL;
}

AMEIR_API ameir_model *ameir_searcher_model(const ameir_searcher *s) { return s ? s->model : NULL; }

AMEIR_API ameir_status ameir_searcher_get_stat(const ameir_searcher *s, const char *key, double *v) {
  if (!s || !key || !v) return ameir__error(s ? s->ctx : NULL, AMEIR_EINVAL, "ameir_searcher_get_stat: NULL argument");
  int ret = s->ds->task == AMEIR_TASK_RETRIEVAL, dv = (s->done_mask >> 4) & 1;
  double x = NAN;
  if (!strncmp(key, "step", 4) && key[4] >= '1' && key[4] <= '4' && !strcmp(key + 5, "_seconds")) {
    int i = key[4] - '0';
    if (s->done_mask & (1 << i)) x = s->rep.step[i].seconds;
  } else if (!strcmp(key, "test_auc") && !ret && dv) x = s->test[0];
  else if (!strcmp(key, "test_logloss") && !ret && dv) x = s->test[1];
  else if (!strcmp(key, "test_hr10") && ret && dv) x = s->test[0];
  else if (!strcmp(key, "test_ndcg10") && ret && dv) x = s->test[1];
  else if (!strcmp(key, "params") && dv) x = (double)s->rep.step[4].params;
  else if (!strcmp(key, "flops") && dv) x = (double)s->rep.step[4].flops;
  else if (!strcmp(key, "search_seconds")) {   /* every step before the derivation */
    for (int i = 1; i <= 3; i++)
      if (s->done_mask & (1 << i)) x = (isnan(x) ? 0 : x) + s->rep.step[i].seconds;
  } else if (!strcmp(key, "children")) {
    if (s->sp->method != AMEIR__METHOD_AMEIR && (s->done_mask & (1 << 3))) x = s->rep.step[3].n_samples;
    else if (s->sp->method == AMEIR__METHOD_AMEIR)
      for (int i = 1; i <= 3; i++)
        if (s->done_mask & (1 << i)) x = (isnan(x) ? 0 : x) + s->rep.step[i].n_samples;
  } else if (!strcmp(key, "budget_seconds") && (s->done_mask & (1 << 3)) && isfinite(s->budget) &&
             (s->sp->method == AMEIR__METHOD_RANDOM || s->sp->method == AMEIR__METHOD_EVOLUTION)) x = s->budget;
  else if (!strcmp(key, "evolution_cycles") && (s->done_mask & (1 << 3)) && s->sp->method == AMEIR__METHOD_EVOLUTION) x = s->evo_cycles;
  if (isnan(x)) return ameir__error(s->ctx, AMEIR_ENOTFOUND, "search statistic '%s' is unknown or not measured yet", key);
  *v = x;
  return AMEIR_OK;
}
