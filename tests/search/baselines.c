/* The search-method baselines of paper Table 4 (appendix C.4) on AMEIR's search space: the
 * joint space's children and mutations, random search, regularized evolution and the joint
 * one-shot random search, each run tiny on synthetic data. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"
#include "core/search/search_int.h"
#include "../model/synth.h"

static ameir_context *new_ctx(int threads) {
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  T_OK(ameir_context_set_int(ctx, "threads", threads));
  return ctx;
}

/* a small space: 2 blocks, M = 2 interactions of order 2..3, a 2-layer MLP */
static ameir_space *tiny_space(ameir_context *ctx, const char *method) {
  ameir_space *sp = NULL;
  T_OK(ameir_space_create(&sp, ctx));
  T_OK(ameir_space_set(sp, "train.emb", "4"));
  T_OK(ameir_space_set(sp, "train.batch", "128"));
  T_OK(ameir_space_set(sp, "blocks", "2"));
  T_OK(ameir_space_set(sp, "layers", "zero,conv3,gru,sa2,maxpool3"));
  T_OK(ameir_space_set(sp, "cycles", "2"));
  T_OK(ameir_space_set(sp, "interactions", "2"));
  T_OK(ameir_space_set(sp, "predefined_mlp", "8:relu"));
  T_OK(ameir_space_set(sp, "mlp_ratios", "0.25,0.5,1.0"));
  T_OK(ameir_space_set(sp, "finetune_epochs", "1"));
  T_OK(ameir_space_set(sp, "topk", "2"));
  if (method) T_OK(ameir_space_set(sp, "method", method));
  return sp;
}

static char *arch_text(const ameir_arch *a) {
  char *t = NULL;
  T_OK(ameir_arch_to_string(a, &t));
  return t;
}

void test_search_baselines__space_keys(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_space *sp = NULL;
  T_OK(ameir_space_create(&sp, ctx));
  char buf[128];
  static const char *const defaults[][2] = {{"method", "ameir"}, {"budget_factor", "10"}, {"budget_seconds", "0"}, {"children", "300"},
                                            {"population", "10"}, {"tournament", "1"}, {"stall_cycles", "5"}, {"child_epochs", "1"},
                                            {"joint_samples", "6000"}, {"epochs_joint", "10"}, {"reference_seconds", "0"}};
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
    T_OK(ameir_space_get(sp, defaults[i][0], buf, sizeof buf));
    T_ASSERT_MSG(!strcmp(buf, defaults[i][1]), "%s = %s, expected %s", defaults[i][0], buf, defaults[i][1]);
  }
  T_OK(ameir_space_set(sp, "search.method", "evolution"));
  T_OK(ameir_space_get(sp, "method", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "evolution"));
  T_OK(ameir_space_set(sp, "reference_seconds", "78.5"));
  T_OK(ameir_space_get(sp, "reference_seconds", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "78.5"));
  T_ASSERT_EQ_INT(ameir_space_set(sp, "method", "darts"), AMEIR_ECONFIG);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "random, evolution or joint"));
  T_ASSERT_EQ_INT(ameir_space_set(sp, "budget_seconds", "-1"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "budget_factor", "ten"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "population", "1"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "children", "0"), AMEIR_ECONFIG);
  ameir_space_free(sp);
  ameir_context_free(ctx);
}

/* The joint space: uniform children are valid, read back from their architecture, and a
 * mutation changes exactly one decision, on data with and without behaviours. */
static void check_children(ameir_context *ctx, ameir_dataset *ds, int want_blocks, int want_inter, int want_mlp) {
  ameir_space *sp = tiny_space(ctx, NULL);
  ameir_supernet *j = NULL;
  T_OK(ameir__sn_create_joint(&j, sp, ds, 1));
  T_ASSERT(j->m == NULL);   /* the description only */
  T_ASSERT_EQ_INT(j->j_blocks, want_blocks);
  T_ASSERT_EQ_INT(j->j_inter, want_inter);
  T_ASSERT_EQ_INT(j->j_mlp, want_mlp);
  ameir__rng r;
  ameir__rng_seed(&r, 5, 6);
  int changed[3] = {0, 0, 0};
  for (int i = 0; i < 150; i++) {
    sn_child c, back, m;
    ameir__joint_random_child(j, &r, &c);
    if (want_inter) {
      T_ASSERT_EQ_INT(c.n_ji, j->j_m);
      for (int32_t q = 0; q < c.n_ji; q++) T_ASSERT(c.ji_order[q] >= 2 && c.ji_order[q] <= j->j_order);
    }
    for (int32_t l = 1; l < j->n_mlp; l++) T_ASSERT(c.width[l] <= c.width[l - 1]);
    ameir_arch *a = NULL;
    T_OK(ameir__joint_to_arch(j, &c, &a));
    T_OK(ameir__joint_from_arch(j, a, &back));
    T_ASSERT_EQ_INT(ameir__joint_distance(j, &c, &back), 0);
    const char *what = NULL;
    ameir__joint_mutate(j, &r, &c, &m, &what);
    int32_t d = ameir__joint_distance(j, &c, &m);
    T_ASSERT_MSG(d == 1, "mutation (%s) changed %d decisions", what, (int)d);
    if (strstr(what, "block")) changed[0]++;
    else if (strstr(what, "interaction")) changed[1]++;
    else if (strstr(what, "MLP")) changed[2]++;
    for (int32_t l = 1; l < j->n_mlp; l++) T_ASSERT(m.width[l] <= m.width[l - 1]);
    /* the architecture changes too, except a block's act/norm never mutates on a zero block */
    ameir_arch *b = NULL;
    T_OK(ameir__joint_to_arch(j, &m, &b));
    char *ta = arch_text(a), *tb = arch_text(b);
    T_ASSERT_MSG(strcmp(ta, tb), "mutation (%s) left the architecture\n%s", what, ta);
    if (i == 0) {   /* a child is an ordinary model */
      ameir_model *mod = NULL;
      T_OK(ameir_model_create(&mod, ctx, b, ds));
      ameir_model_free(mod);
    }
    ameir_free(ta);
    ameir_free(tb);
    ameir_arch_free(a);
    ameir_arch_free(b);
  }
  T_ASSERT(!want_blocks || changed[0] > 20);
  T_ASSERT(!want_inter || changed[1] > 20);
  T_ASSERT(!want_mlp || changed[2] > 20);
  ameir_supernet_free(j);
  ameir_space_free(sp);
}

void test_search_baselines__joint_children_and_mutation(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_seq_dataset(ctx, 200, 3, 6, 5, 0, 3);   /* behaviours and 3 fields */
  check_children(ctx, ds, 1, 1, 1);
  synth_free(ds);
  ds = synth_dataset(ctx, 200, 4, 5, 0, 1, 4);   /* no behaviours: stages 2 and 3 */
  check_children(ctx, ds, 0, 1, 1);
  synth_free(ds);
  ds = synth_retrieval(ctx, 40, 30, 6, 2);   /* retrieval: stage 1 only */
  check_children(ctx, ds, 1, 0, 0);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* the children a baseline search recorded in OUT/baseline.txt */
typedef struct { double score, seconds, end; int32_t parent; sn_child c; } rec;

static int read_children(const char *out, ameir_supernet *j, rec *r, int max) {
  char path[800], line[8192];
  snprintf(path, sizeof path, "%s/baseline.txt", out);
  FILE *f = fopen(path, "r");
  T_ASSERT_MSG(f, "%s missing", path);
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "child ", 6)) continue;
    T_ASSERT(n < max);
    char *p = line + 6;
    r[n].score = strtod(p, &p);
    r[n].seconds = strtod(p, &p);
    r[n].end = strtod(p, &p);
    r[n].parent = (int32_t)strtol(p, &p, 10);
    T_ASSERT_EQ_INT(ameir__joint_read(j, &p, &r[n].c), 0);
    n++;
  }
  fclose(f);
  return n;
}

/* a child starts only while the time spent plus the longest child so far fits in the budget */
static void check_budget_rule(const rec *r, int n, double budget, const char *stop) {
  double mx = 0;
  for (int i = 0; i < n; i++) {
    if (i > 0) T_ASSERT_MSG(r[i - 1].end + mx <= budget, "child %d started at %.3f s with %.3f s left to a %.3f s budget", i + 1, r[i - 1].end, mx, budget);
    if (r[i].seconds > mx) mx = r[i].seconds;
  }
  if (strstr(stop, "budget")) T_ASSERT(r[n - 1].end + mx > budget);
}

static ameir_searcher *run_method(ameir_context *ctx, ameir_space *sp, ameir_dataset *ds, const char *out) {
  ameir_searcher *s = NULL;
  T_OK(ameir_searcher_create(&s, sp, ds));
  T_OK(ameir_searcher_set(s, "out", out));
  T_OK(ameir_searcher_run(s, 0));
  return s;
}

static void check_result(ameir_searcher *s, ameir_dataset *ds) {
  /* the result is a valid architecture of the space, trained and tested like any model */
  ameir_arch *a = NULL, *d = NULL;
  double v, auc;
  T_OK(ameir_searcher_result(s, 3, &a, &v));
  T_OK(ameir_searcher_result(s, 4, &d, NULL));
  T_ASSERT_EQ_INT(ameir_searcher_result(s, 1, NULL, NULL), AMEIR_ENOTFOUND);   /* one search, reported as step 3 */
  char *ta = arch_text(a), *td = arch_text(d);
  T_ASSERT(!strcmp(ta, td));
  T_ASSERT(isfinite(v));
  T_OK(ameir_searcher_get_stat(s, "test_auc", &auc));
  T_ASSERT(auc > 0 && auc < 1);
  ameir_model *m = ameir_searcher_model(s);
  T_ASSERT(m != NULL);
  double steps;
  T_OK(ameir_model_get_stat(m, "train_steps", &steps));
  T_ASSERT(steps > 0);
  int32_t id = AMEIR_METRIC_AUC;
  double again;
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 1, &id, &again));
  T_ASSERT_NEAR(again, auc, 1e-9);
  ameir_free(ta);
  ameir_free(td);
  ameir_arch_free(a);
  ameir_arch_free(d);
}

void test_search_baselines__random_search(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 800, 3, 8, 6, 0, 5);
  char o1[700], o2[700], o3[700];
  snprintf(o1, sizeof o1, "%s/rs1", t_tmpdir());
  snprintf(o2, sizeof o2, "%s/rs2", t_tmpdir());
  snprintf(o3, sizeof o3, "%s/rs3", t_tmpdir());
  /* no budget: `children` children, each distinct */
  ameir_space *sp = tiny_space(ctx, "random");
  T_OK(ameir_space_set(sp, "children", "5"));
  ameir_searcher *s = run_method(ctx, sp, ds, o1);
  double n, secs, v;
  T_OK(ameir_searcher_get_stat(s, "children", &n));
  T_ASSERT_EQ_INT((int)n, 5);
  T_OK(ameir_searcher_get_stat(s, "search_seconds", &secs));
  T_ASSERT(secs > 0);
  T_ASSERT_EQ_INT(ameir_searcher_get_stat(s, "budget_seconds", &v), AMEIR_ENOTFOUND);
  check_result(s, ds);
  ameir_supernet *j = NULL;
  T_OK(ameir__sn_create_joint(&j, sp, ds, 1));
  rec r[64];
  int k = read_children(o1, j, r, 64);
  T_ASSERT_EQ_INT(k, 5);
  double best = -INFINITY, got;
  for (int i = 0; i < k; i++) {
    T_ASSERT(r[i].parent == -1);
    for (int q = 0; q < i; q++) T_ASSERT(ameir__joint_distance(j, &r[i].c, &r[q].c) > 0);
    if (r[i].score > best) best = r[i].score;
  }
  T_OK(ameir_searcher_result(s, 3, NULL, &got));
  T_ASSERT(got == best);   /* the best child by its validation metric */
  /* determinism: the same seed and threads give the same children and result */
  ameir_searcher *s2 = run_method(ctx, sp, ds, o2);
  rec r2[64];
  T_ASSERT_EQ_INT(read_children(o2, j, r2, 64), 5);
  for (int i = 0; i < k; i++) {
    T_ASSERT(ameir__joint_distance(j, &r[i].c, &r2[i].c) == 0);
    T_ASSERT_MSG(r[i].score == r2[i].score, "child %d: %.9g vs %.9g", i + 1, r[i].score, r2[i].score);
  }
  double a1, a2;
  T_OK(ameir_searcher_get_stat(s, "test_auc", &a1));
  T_OK(ameir_searcher_get_stat(s2, "test_auc", &a2));
  T_ASSERT(a1 == a2);
  ameir_searcher_free(s2);
  /* a budget of 10 x a reference time: the children fit in it by the rule above */
  double per = secs / 5;
  char txt[64];
  snprintf(txt, sizeof txt, "%.6f", per * 0.25);   /* 10 x that = about 2.5 children */
  T_OK(ameir_space_set(sp, "reference_seconds", txt));
  T_OK(ameir_space_set(sp, "children", "50"));
  s2 = run_method(ctx, sp, ds, o3);
  T_OK(ameir_searcher_get_stat(s2, "budget_seconds", &v));
  T_ASSERT_NEAR(v, 10 * per * 0.25, 1e-5);
  T_OK(ameir_searcher_get_stat(s2, "children", &n));
  k = read_children(o3, j, r2, 64);
  T_ASSERT_EQ_INT(k, (int)n);
  T_ASSERT(k >= 1 && k < 50);
  check_budget_rule(r2, k, v, s2->stop);
  T_ASSERT_MSG(strstr(s2->stop, "budget"), "stopped: %s", s2->stop);
  printf("     random search: %d children in %.2f s; with a %.2f s budget %d children (%s)\n", 5, secs, v, k, s2->stop);
  ameir_searcher_free(s2);
  /* a budget too small for two children: the first always runs */
  T_OK(ameir_space_set(sp, "budget_seconds", "1e-9"));
  s2 = run_method(ctx, sp, ds, o3);
  T_OK(ameir_searcher_get_stat(s2, "children", &n));
  T_ASSERT_EQ_INT((int)n, 1);
  ameir_searcher_free(s2);
  ameir_supernet_free(j);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  synth_free(ds);
  ameir_context_free(ctx);
}

static int32_t cancel_at_child(const char *stage, int64_t done, int64_t total, double metric, void *user) {
  (void)total; (void)metric;
  return !strcmp(stage, "evolution/score") && done == *(int *)user;
}

void test_search_baselines__regularized_evolution(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 800, 3, 8, 6, 0, 7);
  char o1[700], o2[700];
  snprintf(o1, sizeof o1, "%s/ev1", t_tmpdir());
  snprintf(o2, sizeof o2, "%s/ev2", t_tmpdir());
  ameir_space *sp = tiny_space(ctx, "evolution");
  const int P = 4, STALL = 3, CAP = 14;
  T_OK(ameir_space_set(sp, "population", "4"));
  T_OK(ameir_space_set(sp, "stall_cycles", "3"));
  T_OK(ameir_space_set(sp, "children", "14"));
  ameir_searcher *s = run_method(ctx, sp, ds, o1);
  ameir_supernet *j = NULL;
  T_OK(ameir__sn_create_joint(&j, sp, ds, 1));
  rec r[64];
  int n = read_children(o1, j, r, 64);
  double cycles, children;
  T_OK(ameir_searcher_get_stat(s, "evolution_cycles", &cycles));
  T_OK(ameir_searcher_get_stat(s, "children", &children));
  T_ASSERT_EQ_INT((int)children, n);
  T_ASSERT_EQ_INT((int)cycles, n - P);   /* one child per cycle after the initial population */
  T_ASSERT(n > P && n <= CAP);
  /* the population: the last P children; a parent is one of them, the child one change away */
  int best = 0, stall = 0;
  for (int i = 0; i < n; i++) {
    if (i < P) { T_ASSERT_EQ_INT(r[i].parent, -1); }
    else {
      T_ASSERT_MSG(r[i].parent >= i - P && r[i].parent < i, "child %d's parent %d is not in the population", i + 1, (int)r[i].parent + 1);
      T_ASSERT_EQ_INT(ameir__joint_distance(j, &r[r[i].parent].c, &r[i].c), 1);
    }
    if (i >= P - 1) {   /* the population's best after this child: the stall count */
      int nb = i + 1 - P;
      for (int q = i + 2 - P; q <= i; q++) if (r[q].score > r[nb].score) nb = q;
      if (i >= P) stall = nb == best ? stall + 1 : 0;
      best = nb;
    }
  }
  if (n < CAP) T_ASSERT_MSG(stall == STALL, "stopped at %d children with the best unchanged for %d cycles (%s)", n, stall, s->stop);
  else T_ASSERT(stall <= STALL);
  /* the result: the best of the final population */
  double got;
  T_OK(ameir_searcher_result(s, 3, NULL, &got));
  T_ASSERT(got == r[best].score);
  check_result(s, ds);
  printf("     evolution: %d children, %d cycles, stopped: %s\n", n, (int)cycles, s->stop);
  /* interrupted after child 6, then resumed: the same children and result */
  int at = 6;
  ameir_searcher *c = NULL;
  T_OK(ameir_searcher_create(&c, sp, ds));
  T_OK(ameir_searcher_set(c, "out", o2));
  ameir_context_set_progress_callback(ctx, cancel_at_child, &at);
  T_ASSERT_EQ_INT(ameir_searcher_run(c, 0), AMEIR_ECANCELLED);
  ameir_context_set_progress_callback(ctx, NULL, NULL);
  ameir_searcher_free(c);
  T_OK(ameir_searcher_create(&c, sp, ds));
  T_OK(ameir_searcher_set(c, "out", o2));
  T_OK(ameir_searcher_set(c, "resume", "1"));
  T_OK(ameir_searcher_run(c, 0));
  rec r2[64];
  T_ASSERT_EQ_INT(read_children(o2, j, r2, 64), n);
  for (int i = 0; i < n; i++) {
    T_ASSERT(ameir__joint_distance(j, &r[i].c, &r2[i].c) == 0 && r[i].parent == r2[i].parent);
    T_ASSERT(r[i].score == r2[i].score);
  }
  double a1, a2;
  T_OK(ameir_searcher_get_stat(s, "test_auc", &a1));
  T_OK(ameir_searcher_get_stat(c, "test_auc", &a2));
  T_ASSERT(a1 == a2);
  ameir_searcher_free(c);
  /* Real et al.'s tournament: the parent is the best of S random members */
  T_OK(ameir_space_set(sp, "tournament", "4"));   /* = P: always the population's best */
  T_OK(ameir_space_set(sp, "children", "7"));
  c = run_method(ctx, sp, ds, o2);
  int m = read_children(o2, j, r2, 64);
  for (int i = P; i < m; i++) {
    int b = i - P;
    for (int q = i - P + 1; q < i; q++) if (r2[q].score > r2[b].score) b = q;
    T_ASSERT_MSG(r2[r2[i].parent].score == r2[b].score, "child %d: parent %.5f, population best %.5f", i + 1, r2[r2[i].parent].score, r2[b].score);
  }
  ameir_searcher_free(c);
  ameir_supernet_free(j);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* The joint one-shot model: a child's derived model with the inherited weights predicts what
 * the child does in the supernet; the method runs end to end. */
void test_search_baselines__joint_one_shot(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 1200, 3, 8, 6, 0, 5);
  ameir_space *sp = tiny_space(ctx, "joint");
  T_OK(ameir_space_set(sp, "mlp_acts", "relu,dice,identity"));
  T_OK(ameir_space_set(sp, "epochs_joint", "1"));
  T_OK(ameir_space_set(sp, "joint_samples", "12"));
  ameir_supernet *sn = NULL;
  T_OK(ameir__sn_create_joint(&sn, sp, ds, 0));
  T_OK(ameir_supernet_train(sn, 1));
  ameir__rng r;
  ameir__rng_seed(&r, 3, 4);
  char *opts = ameir__space_opts(sp);
  for (int i = 0; i < 4; i++) {
    sn_child c;
    ameir__sn_random_child(sn, &r, &c);
    T_OK(ameir__sn_set_child(sn, &c));
    ameir_arch *a = NULL;
    T_OK(ameir__sn_child_to_arch(sn, &c, &a));
    int64_t n = 64;
    float p1[64], p2[64];
    T_OK(ameir_model_predict_split(sn->m, ds, AMEIR_SPLIT_VALID, 0, n, p1));
    ameir_model *d = NULL;
    T_OK(ameir__model_create_ex(&d, ctx, a, ds, opts, NULL, NULL));
    T_OK(ameir__model_inherit(d, sn->m));
    T_OK(ameir_model_predict_split(d, ds, AMEIR_SPLIT_VALID, 0, n, p2));
    double worst = 0;
    for (int64_t q = 0; q < n; q++) worst = fmax(worst, fabs((double)p1[q] - p2[q]));
    char *t = arch_text(a);
    T_ASSERT_MSG(worst < 1e-5, "derived %s differs from its joint child by %.3g", t, worst);
    double s1;
    T_OK(ameir_supernet_score(sn, a, 0, &s1));
    T_ASSERT(isfinite(s1));
    ameir_free(t);
    ameir_model_free(d);
    ameir_arch_free(a);
  }
  free(opts);
  ameir_supernet_free(sn);
  char out[700];
  snprintf(out, sizeof out, "%s/joint", t_tmpdir());
  ameir_searcher *s = run_method(ctx, sp, ds, out);
  double n;
  T_OK(ameir_searcher_get_stat(s, "children", &n));
  T_ASSERT_EQ_INT((int)n, 12);
  check_result(s, ds);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  synth_free(ds);
  ameir_context_free(ctx);
}
