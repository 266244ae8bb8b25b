/* Architectures, metrics, and the backbone trained end to end on a planted-signal dataset. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"
#include "core/model/model.h"
#include "core/train/metrics.h"
#include "synth.h"

static ameir_context *new_ctx(int threads) {
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cpu")) t__fail(__FILE__, __LINE__, "context: %s", ameir_last_error());
  ameir_context_set_int(ctx, "threads", threads);
  return ctx;
}

void test_model_model__arch_roundtrip(void) {
  const char *txt =
      "# a comment\n"
      "blocks: (conv3, relu, ln) zero (sa2, gelu, none)\n"
      "readout: sum last\n"
      "interactions: (C1, C2) (C3, C5, C7)\n"
      "mlp: (200, relu) (80, dice)\n"
      "shortcut: se\n"
      "extras: linear fm\n";
  ameir_arch *a = NULL, *b = NULL;
  T_OK(ameir_arch_parse(&a, NULL, txt));
  char *s1 = NULL, *s2 = NULL;
  T_OK(ameir_arch_to_string(a, &s1));
  T_OK(ameir_arch_parse(&b, NULL, s1));
  T_OK(ameir_arch_to_string(b, &s2));
  T_ASSERT_MSG(!strcmp(s1, s2), "roundtrip differs:\n%s\n---\n%s", s1, s2);
  T_ASSERT(strstr(s1, "blocks: (conv3, relu, ln) zero (sa2, gelu, none)"));
  T_ASSERT(strstr(s1, "interactions: (C1, C2) (C3, C5, C7)"));
  T_ASSERT(strstr(s1, "mlp: (200, relu) (80, dice)"));
  ameir_free(s1);
  ameir_free(s2);
  ameir_arch_free(a);
  ameir_arch_free(b);
}

void test_model_model__arch_errors(void) {
  struct { const char *text; const char *expect; } cases[] = {
      {"mlp: (200, relu\n", "line 1"},
      {"mlp: (abc, relu)\n", "bad MLP width"},
      {"mlp: (200, tanh)\n", "unknown activation"},
      {"blocks: (conv9, relu, ln)\n", "unknown layer"},
      {"\n\nblocks: (conv3, dice, ln)\n", "line 3"},
      {"shortcut: maybe\n", "se or none"},
      {"colour: blue\n", "unknown key"},
      {"no colon here\n", "key: value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ameir_arch *a = NULL;
    ameir_status st = ameir_arch_parse(&a, NULL, cases[i].text);
    T_ASSERT_EQ_INT(st, AMEIR_EFORMAT);
    T_ASSERT(a == NULL);
    T_ASSERT_MSG(strstr(ameir_last_error(), cases[i].expect), "case %zu: '%s' lacks '%s'", i, ameir_last_error(), cases[i].expect);
  }
  ameir_arch *a = NULL;
  T_ASSERT_EQ_INT(ameir_arch_preset(&a, NULL, "nosuch", NULL), AMEIR_ENOTFOUND);
  T_ASSERT_EQ_INT(ameir_arch_preset(&a, NULL, "dnn", "400:relu,zz"), AMEIR_EFORMAT);
  T_OK(ameir_arch_preset(&a, NULL, "deepfm", "200x3"));
  char *s = NULL;
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT(strstr(s, "mlp: (200, relu) (200, relu) (200, relu)"));
  T_ASSERT(strstr(s, "extras: linear fm"));
  ameir_free(s);
  ameir_arch_free(a);
  T_ASSERT_EQ_INT(ameir_arch_load(&a, NULL, "/nonexistent/arch.txt"), AMEIR_EIO);
}

/* The baselines named by presets: their architecture text, and each trains and learns on data
 * with behaviours (the CTR ones read the behaviours as sum-pooled fields). */
void test_model_model__baseline_presets(void) {
  static const struct { const char *name, *expect; } cases[] = {
      {"lr", "readout: field\n"},
      {"fm", "extras: fm"},
      {"dien", "blocks: (gru, identity, none) (target_att, identity, none) (gru, identity, none)"},
      {"dsin", "blocks: (sa2, identity, ln) (conv1, relu, ln) (gru, identity, none)"},
  };
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 3000, 3, 20, 8, 0, 15);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ameir_arch *a = NULL;
    T_OK(ameir_arch_preset(&a, ctx, cases[i].name, NULL));
    char *s = NULL;
    T_OK(ameir_arch_to_string(a, &s));
    T_ASSERT_MSG(strstr(s, cases[i].expect), "%s: %s", cases[i].name, s);
    if (i < 2) T_ASSERT_MSG(strstr(s, "mlp:\n"), "%s has hidden layers: %s", cases[i].name, s);
    ameir_free(s);
    ameir_model *m = NULL;
    T_OK(ameir_model_create(&m, ctx, a, ds));
    ameir_arch_free(a);
    T_OK(ameir_model_set_option(m, "emb", "8"));
    T_OK(ameir_model_set_option(m, "epochs", "4"));
    T_OK(ameir_model_set_option(m, "batch", "128"));
    T_OK(ameir_model_set_option(m, "lr", "3e-3"));
    T_OK(ameir_model_train(m, ds));
    int32_t id = AMEIR_METRIC_AUC;
    double auc;
    T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 1, &id, &auc));
    printf("     %s: test AUC %.4f\n", cases[i].name, auc);
    /* LR and FM see no history match (the only signal): better than chance through how the
     * history correlates with it, no more (the history shares the target's rows); the behaviour
     * models must find the match */
    T_ASSERT_MSG(auc > (i < 2 ? 0.505 : 0.65), "%s: test AUC %.4f", cases[i].name, auc);
    ameir_model_free(m);
  }
  /* --mlp none: no hidden layer */
  ameir_arch *a = NULL;
  T_OK(ameir_arch_preset(&a, ctx, "deepfm", "none"));
  T_ASSERT_EQ_INT(a->n_mlp, 0);
  ameir_arch_free(a);
  synth_free(ds);
  ameir_context_free(ctx);
}

static double brute_auc(const float *y, const float *p, int n) {
  double num = 0, den = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (y[i] > 0.5f && y[j] < 0.5f) { den += 1; num += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0; }
  return num / den;
}

void test_model_model__auc_ties(void) {
  ameir__rng r;
  ameir__rng_seed(&r, 5, 0);
  float y[300], p[300];
  for (int i = 0; i < 300; i++) {
    y[i] = ameir__rng_uniform(&r) < 0.3 ? 1.f : 0.f;
    p[i] = (float)(int)(ameir__rng_uniform(&r) * 10 + y[i] * 3) / 13.f;   /* many ties */
  }
  T_ASSERT_NEAR(ameir__auc(y, p, 300), brute_auc(y, p, 300), 1e-12);
  float y1[3] = {1, 1, 1}, p1[3] = {0.1f, 0.2f, 0.3f};
  T_ASSERT(isnan(ameir__auc(y1, p1, 3)));
  float y2[4] = {0, 1, 0, 1}, p2[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  T_ASSERT_NEAR(ameir__auc(y2, p2, 4), 0.5, 1e-12);
  T_ASSERT_NEAR(ameir__logloss(y2, p2, 4), log(2.0), 1e-9);
}

static ameir_model *make_model(ameir_context *ctx, ameir_dataset *ds, const char *arch_text, const char *emb) {
  ameir_arch *a = NULL;
  if (ameir_arch_parse(&a, ctx, arch_text)) t__fail(__FILE__, __LINE__, "arch: %s", ameir_context_last_error(ctx));
  ameir_model *m = NULL;
  ameir_status st = ameir_model_create(&m, ctx, a, ds);
  ameir_arch_free(a);
  if (st) t__fail(__FILE__, __LINE__, "create: %s", ameir_context_last_error(ctx));
  if (emb && ameir_model_set_option(m, "emb", emb)) t__fail(__FILE__, __LINE__, "emb: %s", ameir_context_last_error(ctx));
  return m;
}

/* Whole-model gradient check: analytic gradients of every dense parameter and of touched
 * embedding rows against central differences of the batch loss. */
static void grad_check_opt(ameir_context *ctx, ameir_dataset *ds, const char *arch, const char *emb, const char *key,
                           const char *value);
static void grad_check(ameir_context *ctx, ameir_dataset *ds, const char *arch, const char *emb) {
  grad_check_opt(ctx, ds, arch, emb, NULL, NULL);
}

/* opts: NULL-terminated "key=value" model options set before the check */
static void grad_check_opts(ameir_context *ctx, ameir_dataset *ds, const char *arch, const char *emb,
                            const char *const *opts);
/* with one more model option (key NULL: none) */
static void grad_check_opt(ameir_context *ctx, ameir_dataset *ds, const char *arch, const char *emb, const char *key,
                           const char *value) {
  char kv[128];
  snprintf(kv, sizeof kv, "%s=%s", key ? key : "", value ? value : "");
  const char *opts[] = {kv, NULL};
  grad_check_opts(ctx, ds, arch, emb, key ? opts : NULL);
}

static void grad_check_opts(ameir_context *ctx, ameir_dataset *ds, const char *arch, const char *emb,
                            const char *const *opts) {
  ameir_model *m = make_model(ctx, ds, arch, emb);
  T_OK(ameir_model_set_option(m, "lr", "0"));
  for (int i = 0; opts && opts[i]; i++) {
    char k[64];
    const char *eq = strchr(opts[i], '=');
    T_ASSERT(eq && (size_t)(eq - opts[i]) < sizeof k);
    memcpy(k, opts[i], (size_t)(eq - opts[i]));
    k[eq - opts[i]] = 0;
    T_OK(ameir_model_set_option(m, k, eq + 1));
  }
  T_OK(ameir_model_set_option(m, "init", "normal"));
  T_OK(ameir_model_set_option(m, "init_std", "0.5"));
  const int64_t B = 24;
  T_OK(ameir__model_alloc_workspace(m, B));
  int64_t rows[24];
  for (int i = 0; i < B; i++) rows[i] = i;
  T_OK(ameir__model_stage(m, ds, rows, B));
  double loss0;
  T_OK(ameir__model_forward(m, B, 1, &loss0));
  T_OK(ameir__model_backward_step(m, B, 0.0));
  m->step--;   /* dropout masks are drawn from the step: the checks below must see the same ones */
  const ameir_ops *o = m->ops;
  int64_t np = m->n_params;
  float *P = malloc(4 * (size_t)np), *G = malloc(4 * (size_t)np);
  T_OK(o->download(m->bs, P, m->P, 4 * (size_t)np));
  T_OK(o->download(m->bs, G, m->G, 4 * (size_t)np));
  int bad = 0;
  double worst = 0;
  /* every parameter of small models; an evenly spread sample of about 600 of larger ones
   * (the stride is odd so it walks through weights, biases and every block) */
  int64_t stride = np <= 800 ? 1 : (np / 600) | 1, checked = 0, kinks = 0;
  for (int64_t i = 0; i < np; i += stride) {
    checked++;
    float keep = P[i];
    double h = 1e-2 * (fabs(keep) > 1 ? fabs(keep) : 1.0), d1 = 0, d2 = 0;
    for (int pass = 0; pass < 2; pass++) {   /* central differences at h and h/2 */
      double hh = pass ? h / 2 : h, lp, lm;
      P[i] = (float)(keep + hh);
      T_OK(o->upload(m->bs, m->P, P, 4 * (size_t)np));
      T_OK(ameir__model_forward(m, B, 1, &lp));
      P[i] = (float)(keep - hh);
      T_OK(o->upload(m->bs, m->P, P, 4 * (size_t)np));
      T_OK(ameir__model_forward(m, B, 1, &lm));
      P[i] = keep;
      if (pass) d2 = (lp - lm) / (2 * hh); else d1 = (lp - lm) / (2 * hh);
    }
    double num = (4 * d2 - d1) / 3, an = G[i];   /* Richardson: error O(h^4) */
    double err = fabs(num - an) / (1e-3 + fabs(num) + fabs(an));
    /* A ReLU kink inside [p - h, p + h] makes the two step sizes disagree: the loss is not
     * smooth there, so finite differences say nothing; such parameters are counted, not
     * checked, and must stay rare. */
    if (err > 0.05 && fabs(d1 - d2) > 0.1 * (fabs(d1) + fabs(d2)) + 1e-5) { kinks++; continue; }
    if (err > worst) worst = err;
    if (err > 0.05) { if (bad < 5) printf("     param %lld: numeric %.6g analytic %.6g (d1 %.6g d2 %.6g)\n", (long long)i, num, an, d1, d2); bad++; }
  }
  T_OK(o->upload(m->bs, m->P, P, 4 * (size_t)np));
  printf("     checked %lld of %lld dense gradients, worst relative error %.2g (%lld across a kink, not checked)\n",
         (long long)checked, (long long)np, worst, (long long)kinks);
  T_ASSERT_MSG(bad == 0, "%d of %lld dense gradients off (worst rel %.3g)", bad, (long long)np, worst);
  T_ASSERT_MSG(kinks * 20 <= checked, "%lld of %lld parameters across a kink: too many to trust the check",
               (long long)kinks, (long long)checked);
  /* embedding rows: gradrows[u] is d loss / d E[uniq[u]] */
  int64_t nu = m->last_nu, K = m->opt.emb;
  T_ASSERT(nu > 0);
  int32_t *uniq = malloc(4 * (size_t)nu);
  float *gr = malloc(4 * (size_t)(nu * K));
  T_OK(o->download(m->bs, uniq, m->uniq, 4 * (size_t)nu));
  T_OK(o->download(m->bs, gr, m->gradrows, 4 * (size_t)(nu * K)));
  for (int64_t u = 0; u < nu; u += 3) {
    for (int64_t k = 0; k < K; k++) {
      float v, vp, vm;
      float *addr = m->E + (int64_t)uniq[u] * K + k;
      T_OK(o->download(m->bs, &v, addr, 4));
      double d1 = 0, d2 = 0;
      for (int pass = 0; pass < 2; pass++) {
        double h = pass ? 5e-3 : 1e-2, lp, lm;
        vp = (float)(v + h); vm = (float)(v - h);
        T_OK(o->upload(m->bs, addr, &vp, 4));
        T_OK(ameir__model_forward(m, B, 1, &lp));
        T_OK(o->upload(m->bs, addr, &vm, 4));
        T_OK(ameir__model_forward(m, B, 1, &lm));
        T_OK(o->upload(m->bs, addr, &v, 4));
        if (pass) d2 = (lp - lm) / (2 * h); else d1 = (lp - lm) / (2 * h);
      }
      double num = (4 * d2 - d1) / 3, an = gr[u * K + k];
      double err = fabs(num - an) / (1e-3 + fabs(num) + fabs(an));
      T_ASSERT_MSG(err < 0.05, "emb row %d dim %lld: numeric %.6g analytic %.6g", uniq[u], (long long)k, num, an);
    }
  }
  free(uniq); free(gr); free(P); free(G);
  /* first-order rows (extras linear: a CTR model's per-id weights, a retrieval model's item
   * biases): gradrows_l[u] is d loss / d L[uniq_l[u]] */
  if (m->L) {
    int64_t nl = m->last_nl;
    T_ASSERT(nl > 0);
    int32_t *ul = malloc(4 * (size_t)nl);
    float *gl = malloc(4 * (size_t)nl);
    T_OK(o->download(m->bs, ul, m->uniq_l, 4 * (size_t)nl));
    T_OK(o->download(m->bs, gl, m->gradrows_l, 4 * (size_t)nl));
    for (int64_t u = 0; u < nl; u++) {
      float v, vp, vm;
      float *addr = m->L + ul[u];
      T_OK(o->download(m->bs, &v, addr, 4));
      double h = 1e-2, lp, lm;
      vp = (float)(v + h); vm = (float)(v - h);
      T_OK(o->upload(m->bs, addr, &vp, 4));
      T_OK(ameir__model_forward(m, B, 1, &lp));
      T_OK(o->upload(m->bs, addr, &vm, 4));
      T_OK(ameir__model_forward(m, B, 1, &lm));
      T_OK(o->upload(m->bs, addr, &v, 4));
      double num = (lp - lm) / (2 * h), an = gl[u];
      double err = fabs(num - an) / (1e-3 + fabs(num) + fabs(an));
      T_ASSERT_MSG(err < 0.02, "first-order row %d: numeric %.6g analytic %.6g", ul[u], num, an);
    }
    free(ul); free(gl);
  }
  ameir_model_free(m);
}

void test_model_model__gradient_check(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_dataset(ctx, 64, 3, 5, 1, 2, 11);
  grad_check(ctx, ds, "interactions: (C0, C1) (C0, C1, C2)\nmlp: (7, swish) (5, dice) (4, gelu)\nshortcut: se\nextras: linear fm\n", "4");
  /* the masks depend on (seed, step, layer) only, so finite differences see the same ones */
  grad_check_opt(ctx, ds, "mlp: (9, swish) (6, gelu)\nshortcut: se\n", "4", "dropout", "0.3");
  synth_free(ds);
  ameir_context_free(ctx);
}

/* A behaviour field sum-pooled into one more field (readout `field`) with `share:` reads the
 * shared field's embedding rows (torch_ref, the paper): no rows of its own, in the first-order
 * table either; without the share it has its own. */
void test_model_model__pooled_history_shares_the_target_table(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 300, 3, 20, 6, 0, 17);
  ameir_model *shared = make_model(ctx, ds, "readout: field\nmlp: (8, relu)\nextras: linear fm\n", "4");
  int64_t rows_shared = shared->emb_rows;
  int32_t slots = shared->n_cat;
  T_ASSERT_EQ_INT(slots, 5);   /* C0..C2, then the two pooled histories */
  for (int32_t s = 3; s < 5; s++) {
    int32_t t = s - 3;   /* hist_c0 shares C0, hist_c1 shares C1 */
    T_ASSERT_EQ_INT(shared->cat_base[s], shared->cat_base[t]);
    T_ASSERT_EQ_INT(shared->cat_vocab[s], shared->cat_vocab[t]);
  }
  ameir_model_free(shared);
  for (int k = 0; k < 2; k++) ((ameir__field *)&ds->fields[3 + k])->share[0] = 0;
  ameir_model *own = make_model(ctx, ds, "readout: field\nmlp: (8, relu)\n", "4");
  T_ASSERT_MSG(own->emb_rows == rows_shared + ds->fields[3].vocab + ds->fields[4].vocab,
               "own rows %lld, shared %lld", (long long)own->emb_rows, (long long)rows_shared);
  ameir_model_free(own);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* A large batch is gathered by the context's threads (one field each): the staging block is
 * the same bytes as one thread's, for every mode, with the linear term and a multi field. */
void test_model_model__parallel_gather_matches_serial(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_dataset(ctx, 9000, 6, 50, 1, 2, 16);
  ameir_model *m = make_model(ctx, ds, "mlp: (8, relu)\nextras: linear fm\n", "4");
  const int64_t B = 8192;   /* 8192 x (6 + 3 ids + 2 dense): far above the parallel threshold */
  T_OK(ameir__model_alloc_workspace(m, B));
  int64_t *rows = malloc(sizeof(int64_t) * (size_t)B);
  for (int64_t i = 0; i < B; i++) rows[i] = (i * 7919) % 9000;   /* scattered, as a split's rows */
  size_t bytes = m->stage_bytes;
  char *one = malloc(bytes);
  for (int32_t mode = AMEIR__STAGE_TRAIN; mode <= AMEIR__STAGE_SCORE_LOSS; mode++) {
    T_OK(ameir_context_set_int(ctx, "threads", 1));
    memset(m->host_stage, 0xAB, bytes);
    T_OK(ameir__model_stage_async(m, ds, rows, B, mode, m->host_stage));
    T_OK(m->ops->sync(m->bs));
    memcpy(one, m->host_stage, bytes);
    T_OK(ameir_context_set_int(ctx, "threads", 2));
    memset(m->host_stage, 0xAB, bytes);
    T_OK(ameir__model_stage_async(m, ds, rows, B, mode, m->host_stage));
    T_OK(m->ops->sync(m->bs));
    T_ASSERT_MSG(!memcmp(one, m->host_stage, bytes), "mode %d: the parallel gather differs", (int)mode);
  }
  free(one);
  free(rows);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* The towers of the DCN and xDeepFM baselines (src/core/model/tower.c): parameters of every
 * cross and CIN layer and the embeddings they reach, alone and next to an MLP, SE and FM. */
void test_model_model__gradient_check_towers(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_dataset(ctx, 64, 3, 5, 1, 2, 14);
  grad_check(ctx, ds, "cross: 3\n", "4");
  grad_check(ctx, ds, "mlp: (6, swish) (4, gelu)\ncross: 2\n", "4");   /* smooth: no ReLU kink under FD */
  grad_check(ctx, ds, "cin: 3 2 4\nextras: linear\n", "4");
  grad_check(ctx, ds, "interactions: (C0, C1)\nmlp: (5, swish)\nshortcut: se\nextras: fm\ncross: 1\ncin: 2\n", "3");
  /* AutoInt's ReLU (its paper's) on one layer; a smooth activation where finite differences
   * would cross the kinks of two stacked layers */
  grad_check(ctx, ds, "autoint: 1\n", "4");
  grad_check(ctx, ds, "mlp: (6, swish)\nproducts: inner\n", "4");   /* IPNN */
  grad_check(ctx, ds, "interactions: (C0, C1)\nmlp: (5, gelu)\nshortcut: se\nproducts: inner\ncross: 1\n", "3");
  grad_check(ctx, ds, "autoint: 2 swish\n", "4");
  grad_check(ctx, ds, "mlp: (5, gelu)\ncin: 3\nautoint: 2 gelu\nextras: linear\n", "4");
  synth_free(ds);
  ameir_context_free(ctx);
}

/* FiBiNET (src/core/model/fibinet.c): the SENET's two layers, both bilinear matrices and the
 * embeddings through the squeeze, the re-weighting and the pair products; with an MLP, with
 * none (the output layer reads [dense, p, q] itself), next to IPNN's products, SE, FM and a
 * cross network over the whole x0. */
void test_model_model__gradient_check_fibinet(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_dataset(ctx, 64, 4, 5, 1, 2, 18);
  grad_check(ctx, ds, "mlp: (6, swish)\nfibinet: 2\n", "4");
  grad_check(ctx, ds, "fibinet: 3\nextras: linear\n", "3");
  grad_check(ctx, ds, "fibinet: 1\n", "3");   /* R = F hidden units */
  grad_check(ctx, ds, "mlp: (5, gelu)\nshortcut: se\nproducts: inner\nfibinet: 2\nextras: linear fm\ncross: 1\n", "3");
  synth_free(ds);
  ameir_context_free(ctx);
}

/* Towers only where they fit, and an arch with them prints and parses back to itself. */
void test_model_model__tower_arch(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_arch *a = NULL;
  char *s = NULL;
  T_OK(ameir_arch_parse(&a, ctx, "mlp: (8, relu)\ncin: 16, 8\ncross: 2\nautoint: 3 gelu\nproducts: inner\nfibinet: 4\n"));
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT_MSG(strstr(s, "cross: 2\n") && strstr(s, "cin: 16 8\n") && strstr(s, "autoint: 3 gelu\n") &&
               strstr(s, "products: inner\n") && strstr(s, "fibinet: 4\n"), "printed: %s", s);
  ameir_arch *b = NULL;
  T_OK(ameir_arch_parse(&b, ctx, s));
  char *s2 = NULL;
  T_OK(ameir_arch_to_string(b, &s2));
  T_ASSERT_MSG(!strcmp(s, s2), "reprinted: %s", s2);
  ameir_free(s);
  ameir_free(s2);
  ameir_arch_free(a);
  ameir_arch_free(b);
  /* no tower lines unless present: existing architectures print as before */
  T_OK(ameir_arch_parse(&a, ctx, "mlp: (8, relu)\n"));
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT_MSG(!strstr(s, "cross") && !strstr(s, "cin") && !strstr(s, "autoint") && !strstr(s, "products") &&
               !strstr(s, "fibinet"), "printed: %s", s);
  ameir_free(s);
  ameir_arch_free(a);
  const char *bad[] = {"cross: -1\n", "cross: 17\n", "cross: two\n", "cross: 2 3\n", "cin: 0\n",
                       "cin: (4)\n", "cin: 5000\n", "autoint: x\n", "autoint: 99\n",
                       "autoint: 2 dice\n", "autoint: 2 relu relu\n", "products: outer\n", "products:\n",
                       "fibinet: -1\n", "fibinet: 65\n", "fibinet: x\n", "fibinet: 3 4\n", "fibinet:\n",
                       "fibinet: (3)\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    T_ASSERT_MSG(ameir_arch_parse(&a, ctx, bad[i]) == AMEIR_EFORMAT, "accepted '%s'", bad[i]);
    T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "arch line 1"), "message: %s", ameir_context_last_error(ctx));
  }
  /* the presets */
  T_OK(ameir_arch_preset(&a, ctx, "dcn", NULL));
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT_MSG(strstr(s, "cross: 3\n") && strstr(s, "readout: field"), "dcn: %s", s);
  ameir_free(s);
  ameir_arch_free(a);
  T_OK(ameir_arch_preset(&a, ctx, "xdeepfm", "64:relu"));
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT_MSG(strstr(s, "cin: 128 128\n") && strstr(s, "extras: linear") && strstr(s, "(64, relu)"), "xdeepfm: %s", s);
  ameir_free(s);
  ameir_arch_free(a);
  T_OK(ameir_arch_preset(&a, ctx, "fibinet", NULL));
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT_MSG(strstr(s, "fibinet: 3\n") && strstr(s, "extras: linear\n") && strstr(s, "readout: field") &&
               strstr(s, "mlp: (400, relu) (400, relu) (400, relu)\n"), "fibinet: %s", s);
  ameir_free(s);
  ameir_arch_free(a);
  /* a retrieval model has no logit for a tower */
  ameir_dataset *ds = synth_retrieval(ctx, 30, 20, 5, 15);
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (conv1, relu, none)\nreadout: sum\ncross: 1\n"));
  ameir_model *m = NULL;
  T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "CTR baselines"), "message: %s", ameir_context_last_error(ctx));
  ameir_arch_free(a);
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (conv1, relu, none)\nreadout: sum\nfibinet: 3\n"));
  T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "fibinet"), "message: %s", ameir_context_last_error(ctx));
  ameir_arch_free(a);
  synth_free(ds);
  /* FiBiNET's MLP reads its own interactions: not a behaviour read-out, not Stage 2's, and
   * it needs two fields */
  static const struct { const char *arch, *expect; } fb_bad[] = {
      {"readout: sum\nfibinet: 3\n", "readout: field"},
      {"readout: field\ninteractions: (C0, C1)\nfibinet: 3\n", "interactions"},
  };
  ds = synth_seq_dataset(ctx, 200, 3, 20, 6, 0, 19);
  for (size_t i = 0; i < sizeof fb_bad / sizeof fb_bad[0]; i++) {
    T_OK(ameir_arch_parse(&a, ctx, fb_bad[i].arch));
    T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
    T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), fb_bad[i].expect), "%s: %s", fb_bad[i].arch,
                 ameir_context_last_error(ctx));
    ameir_arch_free(a);
  }
  synth_free(ds);
  ds = synth_dataset(ctx, 200, 1, 20, 0, 2, 20);   /* one embedded field: no pair */
  T_OK(ameir_arch_parse(&a, ctx, "fibinet: 3\n"));
  T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "two or more"), "%s", ameir_context_last_error(ctx));
  ameir_arch_free(a);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* Stage 1: every layer kind, with and without LayerNorm, all three read-outs. Histories are
 * non-empty here: the special tag of an empty history is an all-zero row, where LayerNorm's
 * derivative (1/sqrt(eps)) is far too steep for finite differences. */
void test_model_model__gradient_check_stage1(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 64, 3, 5, 6, 1, 12);
  const char *archs[] = {
      "blocks: (conv3, swish, ln) (sa2, gelu, none) (gru, identity, ln)\nreadout: sum last att\nmlp: (6, swish)\nshortcut: se\n",
      "blocks: (dconv5, swish, none) (avgpool3, identity, ln) (avgpool3, gelu, none) zero\nreadout: sum last\nmlp: (5, gelu)\n",
      "blocks: (conv1, identity, none) (target_att, swish, ln) (sa4, identity, ln) (dconv3, gelu, ln) (dconv7, swish, none)\nreadout: att\nmlp: (4, dice)\n",
      /* the linear term next to Stage 1: its row gradients cover the univalent fields only
       * (it once read as many entries as the FM rows, sequences included: past its buffer) */
      "blocks: (conv1, relu, none)\nreadout: sum\nmlp: (5, relu)\nextras: linear fm\n",
  };
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) grad_check(ctx, ds, archs[i], "4");
  synth_free(ds);
  ameir_context_free(ctx);
}

/* A CTR model whose only embedded input is a behaviour sequence with its own table (no field
 * ids) and the first-order term, which then has only its dense part: training must leave the
 * field ids' part alone (it once ran a [B, 0] broadcast there and failed). */
void test_model_model__linear_term_without_field_ids(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_dataset(ctx, 400, 0, 5, 0, 1, 31);   /* one dense field */
  ds->fields = realloc(ds->fields, sizeof *ds->fields * 2);
  ds->n_fields = 2;
  ameir__field *f = &ds->fields[1];
  memset(f, 0, sizeof *f);
  f->name = strdup("hist");
  f->kind = AMEIR_FIELD_SEQUENCE;
  f->vocab = 6;
  f->max_len = 4;
  int32_t *h = malloc(sizeof(int32_t) * 400 * 4);
  for (int i = 0; i < 400 * 4; i++) h[i] = i % 4 < 1 + i / 4 % 4 ? 1 + (i * 7 + i / 4) % 5 : -1;
  f->ids = h;
  ameir_model *m = make_model(ctx, ds, "blocks: (conv1, relu, none)\nreadout: sum\nmlp: (4, relu)\nextras: linear\n", "4");
  T_OK(ameir_model_set_option(m, "epochs", "1"));
  T_OK(ameir_model_train(m, ds));
  float p[10];
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, 10, p));
  for (int i = 0; i < 10; i++) T_ASSERT(isfinite(p[i]) && p[i] > 0.f && p[i] < 1.f);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* The same rows stored with more padding give the same predictions. */
void test_model_model__stage1_padding_invariance(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *a = synth_seq_dataset(ctx, 300, 3, 7, 5, 0, 13);
  ameir_dataset *b = synth_seq_dataset(ctx, 300, 3, 7, 9, 0, 13);
  /* copy a's histories into b with 4 more padding positions */
  for (int k = 0; k < 2; k++) {
    const int32_t *src = a->fields[3 + k].ids;
    int32_t *dst = (int32_t *)b->fields[3 + k].ids;
    for (int64_t i = 0; i < 300; i++)
      for (int t = 0; t < 9; t++) dst[i * 9 + t] = t < 5 ? src[i * 5 + t] : -1;
  }
  const char *arch = "blocks: (conv3, relu, ln) (sa2, gelu, none) (gru, identity, ln) (maxpool3, swish, none) (dconv7, relu, ln) (target_att, identity, none)\n"
                     "readout: sum last att\nmlp: (8, relu)\nshortcut: se\n";
  ameir_model *ma = make_model(ctx, a, arch, "4"), *mb = make_model(ctx, b, arch, "4");
  float pa[30], pb[30];
  T_OK(ameir_model_predict_split(ma, a, AMEIR_SPLIT_TEST, 0, 30, pa));
  T_OK(ameir_model_predict_split(mb, b, AMEIR_SPLIT_TEST, 0, 30, pb));
  for (int i = 0; i < 30; i++) T_ASSERT_CLOSE(pa[i], pb[i], 1e-5, 1e-6);
  ameir_model_free(ma);
  ameir_model_free(mb);
  synth_free(a);
  synth_free(b);
  ameir_context_free(ctx);
}

void test_model_model__stage1_learns(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 6000, 3, 20, 8, 0, 14);
  ameir_model *m = make_model(ctx, ds, "blocks: (conv1, relu, ln)\nreadout: sum last att\nmlp: (16, relu)\nshortcut: se\n", "8");
  T_OK(ameir_model_set_option(m, "epochs", "15"));
  T_OK(ameir_model_set_option(m, "batch", "128"));
  T_OK(ameir_model_set_option(m, "lr", "3e-3"));
  T_OK(ameir_model_train(m, ds));
  int32_t id = AMEIR_METRIC_AUC;
  double auc;
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 1, &id, &auc));
  T_ASSERT_MSG(auc > 0.70, "test AUC %.4f: the behaviour signal was not learnt", auc);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

static void train_and_predict(int threads, const char *arch, float *out, int64_t n_out, double *auc) {
  ameir_context *ctx = new_ctx(threads);
  ameir_dataset *ds = synth_dataset(ctx, 6000, 4, 30, 1, 2, 3);
  ameir_model *m = make_model(ctx, ds, arch, "8");
  T_OK(ameir_model_set_option(m, "epochs", "3"));
  T_OK(ameir_model_set_option(m, "batch", "128"));
  T_OK(ameir_model_set_option(m, "lr", "3e-3"));
  T_OK(ameir_model_train(m, ds));
  int32_t ids[2] = {AMEIR_METRIC_AUC, AMEIR_METRIC_LOGLOSS};
  double v[2];
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 2, ids, v));
  *auc = v[0];
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n_out, out));
  double lf, ll;
  T_OK(ameir_model_get_stat(m, "train_loss_first", &lf));
  T_OK(ameir_model_get_stat(m, "train_loss_last", &ll));
  T_ASSERT_MSG(ll < lf, "loss did not fall: %.4f -> %.4f", lf, ll);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* arch learns (test AUC above 0.70), and the same seed and threads give the same bits */
static void learns_and_is_deterministic(const char *name, const char *arch) {
  float p1[100], p2[100];
  double a1, a2;
  train_and_predict(2, arch, p1, 100, &a1);
  train_and_predict(2, arch, p2, 100, &a2);
  printf("     %s: test AUC %.4f\n", name, a1);
  T_ASSERT_MSG(a1 > 0.70, "%s: test AUC %.4f too low", name, a1);
  T_ASSERT_MSG(memcmp(p1, p2, sizeof p1) == 0, "%s: same seed and threads gave different predictions", name);
  T_ASSERT_EQ_INT(a1 == a2, 1);
}

void test_model_model__deepfm_learns_and_is_deterministic(void) {
  learns_and_is_deterministic("deepfm", "mlp: (32, relu) (16, relu)\nextras: linear fm\n");
}

/* The FiBiNET preset (its 400x3 MLP made small) learns, and the same seed gives the same bits. */
void test_model_model__fibinet_learns_and_is_deterministic(void) {
  learns_and_is_deterministic("fibinet", "readout: field\nfibinet: 3\nextras: linear\nmlp: (32, relu) (16, relu)\n");
}

void test_model_model__backbone_se_interactions_learn(void) {
  float p[10];
  double auc;
  train_and_predict(2, "interactions: (C0, C1)\nmlp: (32, relu) (16, dice)\nshortcut: se\n", p, 10, &auc);
  T_ASSERT_MSG(auc > 0.70, "test AUC %.4f too low", auc);
}

void test_model_model__save_load_roundtrip_and_damage(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_dataset(ctx, 2000, 3, 10, 1, 1, 4);
  ameir_model *m = make_model(ctx, ds, "interactions: (C0, C1)\nmlp: (16, dice)\nshortcut: se\nextras: linear fm\n", "6");
  T_OK(ameir_model_set_option(m, "epochs", "1"));
  T_OK(ameir_model_train(m, ds));
  char path[600];
  snprintf(path, sizeof path, "%s/m.ameir", t_tmpdir());
  T_OK(ameir_model_save(m, path));
  ameir_model *m2 = NULL;
  T_OK(ameir_model_load(&m2, ctx, path));
  float a[50], b[50];
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, 50, a));
  T_OK(ameir_model_predict_split(m2, ds, AMEIR_SPLIT_TEST, 0, 50, b));
  T_ASSERT(memcmp(a, b, sizeof a) == 0);
  char e1[32], e2[32];
  T_OK(ameir_model_get_option(m2, "emb", e2, sizeof e2));
  T_OK(ameir_model_get_option(m, "emb", e1, sizeof e1));
  T_ASSERT(!strcmp(e1, e2));
  /* a loaded model keeps its weights: shape options are refused, init options change nothing */
  T_ASSERT_EQ_INT(ameir_model_set_option(m2, "emb", "9"), AMEIR_ESTATE);
  T_OK(ameir_model_set_option(m2, "init_std", "0.5"));
  T_OK(ameir_model_predict_split(m2, ds, AMEIR_SPLIT_TEST, 0, 50, b));
  T_ASSERT(memcmp(a, b, sizeof a) == 0);
  ameir_model_free(m2);
  /* damage: flip a byte in the middle, truncate, bump the version, wrong magic */
  FILE *f = fopen(path, "rb");
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)sz);
  T_ASSERT(fread(buf, 1, (size_t)sz, f) == (size_t)sz);
  fclose(f);
  char bad[640];
  snprintf(bad, sizeof bad, "%s/bad.ameir", t_tmpdir());
  struct { long at; int truncate; unsigned char val; ameir_status expect; } cases[] = {
      {sz / 2, 0, 0x5a, AMEIR_EFORMAT}, {0, 0, 'X', AMEIR_EFORMAT}, {8, 0, 99, AMEIR_EVERSION},
      {12, 0, 0x04, AMEIR_EFORMAT}, {sz - 100, 1, 0, AMEIR_EFORMAT}, {10, 1, 0, AMEIR_EFORMAT}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    unsigned char keep = buf[cases[c].at];
    if (!cases[c].truncate) buf[cases[c].at] = (unsigned char)(buf[cases[c].at] == cases[c].val ? cases[c].val ^ 1 : cases[c].val);
    FILE *g = fopen(bad, "wb");
    fwrite(buf, 1, cases[c].truncate ? (size_t)cases[c].at : (size_t)sz, g);
    fclose(g);
    buf[cases[c].at] = keep;
    ameir_model *x = NULL;
    ameir_status st = ameir_model_load(&x, ctx, bad);
    T_ASSERT_MSG(st == cases[c].expect, "case %zu: got %d (%s)", c, (int)st, ameir_context_last_error(ctx));
    T_ASSERT(x == NULL);
  }
  T_ASSERT_EQ_INT(ameir_model_load(&m2, ctx, "/nonexistent/m.ameir"), AMEIR_EIO);
  free(buf);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

void test_model_model__options(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_dataset(ctx, 200, 2, 4, 0, 0, 1);
  ameir_model *m = make_model(ctx, ds, "mlp: (8, relu)\n", NULL);
  char buf[64];
  T_OK(ameir_model_set_option(m, "lr", "0.01"));
  T_OK(ameir_model_get_option(m, "lr", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "0.01"));
  T_ASSERT_EQ_INT(ameir_model_set_option(m, "lr", "fast"), AMEIR_EINVAL);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "lr"));
  T_ASSERT_EQ_INT(ameir_model_set_option(m, "batch", "0"), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(ameir_model_set_option(m, "nosuch", "1"), AMEIR_ENOTFOUND);
  T_ASSERT_EQ_INT(ameir_model_set_option(m, "optimizer", "sgd"), AMEIR_EINVAL);
  T_OK(ameir_model_set_option(m, "optimizer", "sparse_adam"));
  T_OK(ameir_model_set_option(m, "emb", "5"));
  T_OK(ameir_model_train(m, ds));
  T_ASSERT_EQ_INT(ameir_model_set_option(m, "emb", "6"), AMEIR_ESTATE);
  int64_t pe = 0;
  T_ASSERT(ameir_model_params(m, &pe) > pe);
  T_ASSERT_EQ_INT(pe, (1 + 5 + 5) * 5);
  T_ASSERT_EQ_INT(ameir_model_flops(m), 2 * 10 * 8 + 2 * 8);   /* x0 = 2 fields x emb 5; MLP 8; output */
  ameir_model_free(m);
  synth_free(ds);
  /* Stage 1 counts too, at the full history length: T = 5, d = emb 4 */
  ds = synth_retrieval(ctx, 20, 12, 5, 21);
  m = make_model(ctx, ds, "blocks: (conv1, relu, ln) (sa2, identity, none)\nreadout: sum\n", "4");
  int64_t T = 5, d = 4;
  int64_t blocks = (2 * T * d * d + 5 * T * d + T * d) + (8 * T * d * d + 4 * T * T * d + T * d);
  T_ASSERT_EQ_INT(ameir_model_flops(m), blocks + T * d + 2 * d * d);   /* + the sum read-out, u = W h */
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

static int32_t cancel_at_3(const char *stage, int64_t done, int64_t total, double metric, void *user) {
  (void)stage; (void)total; (void)metric;
  *(int *)user += 1;
  return done >= 3;
}

void test_model_model__cancel_and_early_stop(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_dataset(ctx, 2000, 3, 10, 0, 0, 2);
  ameir_model *m = make_model(ctx, ds, "mlp: (8, relu)\n", "4");
  int calls = 0;
  ameir_context_set_progress_callback(ctx, cancel_at_3, &calls);
  T_ASSERT_EQ_INT(ameir_model_train(m, ds), AMEIR_ECANCELLED);
  T_ASSERT_EQ_INT(calls, 3);
  ameir_context_set_progress_callback(ctx, NULL, NULL);
  T_OK(ameir_model_set_option(m, "epochs", "30"));
  T_OK(ameir_model_set_option(m, "patience", "2"));
  T_OK(ameir_model_set_option(m, "lr", "0.05"));
  T_OK(ameir_model_train(m, ds));
  double ep, best;
  T_OK(ameir_model_get_stat(m, "epochs", &ep));
  T_OK(ameir_model_get_stat(m, "best_epoch", &best));
  T_ASSERT(best >= 1 && best <= ep);
  T_ASSERT_MSG(ep < 30, "no early stop in 30 epochs at lr 0.05 (epochs %.0f)", ep);
  /* best weights restored: validation AUC equals the best one recorded */
  int32_t id = AMEIR_METRIC_AUC;
  double v, bv;
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_VALID, 1, &id, &v));
  T_OK(ameir_model_get_stat(m, "best_valid", &bv));
  T_ASSERT_NEAR(v, bv, 1e-12);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

void test_model_model__gradient_check_retrieval(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_retrieval(ctx, 20, 12, 5, 29);
  grad_check(ctx, ds, "blocks: (sa2, identity, ln) (conv1, swish, none)\nreadout: sum last\nmlp: (6, gelu)\n", "4");
  grad_check(ctx, ds, "blocks: (gru, identity, ln)\nreadout: last\n", "4");
  synth_free(ds);
  ameir_context_free(ctx);
}

/* Caser's read-out (ops.h caser_fwd) in the whole model: alone (rows shorter than L see zero
 * slots), L = the history length, beside other read-outs after a block, and on CTR data with
 * the SE shortcut. Smooth MLPs: the ReLU and max-pool kinks are the read-out's own. Biases
 * drawn as PyTorch does (mlp_init torch): with the paper's zero biases a window of zero slots
 * sits exactly on the ReLU's kink, where finite differences see half a slope. The data seed
 * is one whose batch has no horizontal output within the step (1e-2) of the kink: seeds 24,
 * 29 and 31 each have a row at 0.017 or so, which both step sizes cross (tests/ops/caser.c
 * checks the op itself with steps of 1e-5 in double). */
void test_model_model__gradient_check_caser(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_retrieval(ctx, 20, 12, 5, 30);
  grad_check_opt(ctx, ds, "readout: caser\ncaser: 3 2 2\nmlp: (6, gelu)\n", "4", "mlp_init", "torch");
  grad_check_opt(ctx, ds, "blocks: (conv1, swish, none)\nreadout: last caser\ncaser: 5 1 3\nmlp: (5, swish)\n", "4",
                 "mlp_init", "torch");
  synth_free(ds);
  ds = synth_seq_dataset(ctx, 64, 3, 5, 6, 1, 25);
  grad_check_opt(ctx, ds, "readout: sum caser\ncaser: 4 2 1\nmlp: (5, gelu)\nshortcut: se\n", "3", "mlp_init", "torch");
  synth_free(ds);
  ameir_context_free(ctx);
}

/* cloze (BERT4Rec): the masked positions' read-out, the sum over the window, the [mask] row's
 * embedding gradient (the staged masks stay fixed across the finite differences). The worst
 * relative errors (0.02-0.045 over dataset seeds 20-25, as for this arch without cloze) are LN
 * parameters whose gradients are ~1e-5: float32 noise in the loss, not the gradient. */
void test_model_model__gradient_check_cloze(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_retrieval(ctx, 20, 12, 5, 20);
  grad_check(ctx, ds, "blocks: (sa2, gelu, ln) (conv1, gelu, ln)\nreadout: sum last\nmlp: (6, gelu)\ncloze: 0.4\n", "4");
  synth_free(ds);
  ameir_context_free(ctx);
}

void test_model_model__retrieval_learns(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_retrieval(ctx, 1500, 200, 8, 22);
  ameir_model *m = make_model(ctx, ds, "blocks: (sa2, identity, ln) (conv1, relu, ln)\nreadout: last\n", "32");
  T_OK(ameir_model_set_option(m, "epochs", "6"));
  T_OK(ameir_model_set_option(m, "batch", "128"));
  T_OK(ameir_model_set_option(m, "lr", "3e-3"));
  T_OK(ameir_model_set_option(m, "neg", "5"));
  T_OK(ameir_model_train(m, ds));
  int32_t ids[3] = {AMEIR_METRIC_HR10, AMEIR_METRIC_NDCG10, AMEIR_METRIC_MRR};
  double full[3], sampled[3];
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 3, ids, full));
  T_OK(ameir_model_set_option(m, "eval_protocol", "sampled"));
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 3, ids, sampled));
  printf("     HR@10 full %.4f sampled %.4f, NDCG@10 full %.4f\n", full[0], sampled[0], full[1]);
  /* random ranking: HR@10 = 10/199 over all items, 10/101 against 100 negatives */
  T_ASSERT_MSG(full[0] > 0.30, "full-ranking HR@10 %.4f", full[0]);
  T_ASSERT_MSG(sampled[0] >= full[0], "sampled HR@10 %.4f below full %.4f", sampled[0], full[0]);
  T_ASSERT(full[1] <= full[0] && full[2] > 0);
  float p;
  T_ASSERT_EQ_INT(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, 1, &p), AMEIR_EUNSUPPORTED);
  /* top-k agrees with the ranking metrics: the full protocol keeps a target the user saw before
   * while top-k excludes every seen item, so the hits may differ by exactly those rows */
  {
    int64_t nt = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
    int32_t *top = malloc(sizeof(int32_t) * (size_t)(nt * 10));
    float *tsc = malloc(sizeof(float) * (size_t)(nt * 10));
    T_OK(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, nt, 10, 1, top, tsc));
    int64_t hits = 0, seen_target = 0;
    for (int64_t r = 0; r < nt; r++) {
      int64_t row = ds->split_rows[AMEIR_SPLIT_TEST][r];
      int32_t t = ds->fields[1].ids[row];
      const int32_t *h = ds->items + ds->user_off[ds->row_user[row]];
      int seen = 0;
      for (int32_t i = 0; i < ds->row_pos[row]; i++) seen |= h[i] == t;
      seen_target += seen;
      for (int j = 0; j < 10; j++) hits += top[r * 10 + j] == t;
      for (int j = 1; j < 10; j++) T_ASSERT(tsc[r * 10 + j - 1] >= tsc[r * 10 + j]);
    }
    double hr = full[0] * (double)nt;
    T_ASSERT_MSG((double)hits <= hr + 1e-6 && (double)hits >= hr - (double)seen_target - 1e-6,
                 "top-10 hits %lld, HR@10 x rows %.1f, rows whose target was seen %lld", (long long)hits, hr, (long long)seen_target);
    T_ASSERT_EQ_INT(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, 1, 100000, 1, top, tsc), AMEIR_EINVAL);
    free(top);
    free(tsc);
  }
  /* appendix D.2's recipe: 5 positives (the next items), 5 negatives the user never touched */
  ameir_model *m2 = make_model(ctx, ds, "blocks: (sa2, identity, ln) (conv1, relu, ln)\nreadout: last\n", "32");
  T_OK(ameir_model_set_option(m2, "epochs", "6"));
  T_OK(ameir_model_set_option(m2, "batch", "128"));
  T_OK(ameir_model_set_option(m2, "lr", "3e-3"));
  T_OK(ameir_model_set_option(m2, "positives", "5"));
  T_OK(ameir_model_set_option(m2, "neg_sampling", "unseen"));
  T_OK(ameir_model_train(m2, ds));
  double d2[3];
  T_OK(ameir_model_set_option(m2, "eval_protocol", "full"));
  T_OK(ameir_model_evaluate(m2, ds, AMEIR_SPLIT_TEST, 3, ids, d2));
  printf("     D.2 recipe: HR@10 full %.4f\n", d2[0]);
  T_ASSERT_MSG(d2[0] > 0.30, "D.2 recipe: full-ranking HR@10 %.4f", d2[0]);
  ameir_model_free(m2);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* GAUC: the AUC of each user's rows, weighted by their count, users with one class left out;
 * recomputed here from the predictions, grouping by the C0 field. */
void test_model_model__gauc(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_dataset(ctx, 3000, 3, 6, 0, 1, 8);
  ameir_model *m = make_model(ctx, ds, "mlp: (8, relu)\nextras: fm\n", "4");
  T_OK(ameir_model_train(m, ds));
  int32_t id = AMEIR_METRIC_GAUC;
  double g;
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 1, &id, &g));
  T_ASSERT(isnan(g));   /* no user_id field */
  T_OK(ameir_model_set_option(m, "gauc_field", "C0"));
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 1, &id, &g));
  int64_t n = ds->split_n[AMEIR_SPLIT_TEST];
  float *p = malloc(sizeof(float) * (size_t)n), *yy = malloc(sizeof(float) * (size_t)n), *pp = malloc(sizeof(float) * (size_t)n);
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n, p));
  const int32_t *u = ds->fields[0].ids;
  double num = 0, den = 0;
  for (int32_t user = 1; user < ds->fields[0].vocab; user++) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t row = ds->split_rows[AMEIR_SPLIT_TEST][i];
      if (u[row] == user) { yy[k] = ds->label[row]; pp[k] = p[i]; k++; }
    }
    double a = ameir__auc(yy, pp, k);
    if (!isnan(a)) { num += a * (double)k; den += (double)k; }
  }
  T_ASSERT(den > 0);
  T_ASSERT_NEAR(g, num / den, 1e-12);
  free(p); free(yy); free(pp);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* Two retrieval models give the same top-5 items and scores for every test row. */
static void same_topk(ameir_model *m, ameir_model *l, ameir_dataset *ds) {
  int64_t n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  int32_t k = 5, *a = malloc(sizeof(int32_t) * (size_t)(n * k)), *b = malloc(sizeof(int32_t) * (size_t)(n * k));
  float *sa = malloc(sizeof(float) * (size_t)(n * k)), *sb = malloc(sizeof(float) * (size_t)(n * k));
  T_OK(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, n, k, 1, a, sa));
  T_OK(ameir_model_topk(l, ds, AMEIR_SPLIT_TEST, 0, n, k, 1, b, sb));
  for (int64_t i = 0; i < n * k; i++) T_ASSERT(a[i] == b[i] && sa[i] == sb[i]);
  free(a); free(b); free(sa); free(sb);
}

/* A retrieval model saved and loaded back ranks exactly as before (the file records the task). */
void test_model_model__retrieval_save_load(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_retrieval(ctx, 80, 30, 6, 23);
  ameir_model *m = make_model(ctx, ds, "blocks: (sa2, identity, ln)\nreadout: last\n", "8");
  T_OK(ameir_model_set_option(m, "epochs", "1"));
  T_OK(ameir_model_train(m, ds));
  char path[600];
  snprintf(path, sizeof path, "%s/r.ameir", t_tmpdir());
  T_OK(ameir_model_save(m, path));
  ameir_model *l = NULL;
  T_OK(ameir_model_load(&l, ctx, path));
  same_topk(m, l, ds);
  ameir_model_free(l);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* ---- POP, BPR-MF: item biases, a user field, the BPR loss ---- */

/* synth_retrieval with the `user_field` a loader adds: field 2 "user", id = user index + 1 */
static ameir_dataset *synth_retrieval_users(ameir_context *ctx, int64_t n_users, int V, int T, uint64_t seed) {
  ameir_dataset *ds = synth_retrieval(ctx, n_users, V, T, seed);
  ameir__field *f = realloc(ds->fields, 3 * sizeof *f);
  T_ASSERT(f != NULL);
  ds->fields = f;
  memset(&f[2], 0, sizeof f[2]);
  f[2].name = strdup("user");
  f[2].kind = AMEIR_FIELD_CATEGORICAL;
  f[2].vocab = n_users + 1;
  f[2].max_len = 1;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)ds->n_rows);
  for (int64_t r = 0; r < ds->n_rows; r++) ids[r] = ds->row_user[r] + 1;
  f[2].ids = ids;
  ds->n_fields = 3;
  return ds;
}

void test_model_model__gradient_check_item_bias_and_bpr(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_retrieval_users(ctx, 20, 12, 5, 31);
  /* item biases beside a Stage-1 model (and the user's embedding in the MLP input), sampled BCE */
  const char *bce[] = {"neg=3", NULL};
  grad_check_opts(ctx, ds, "blocks: (conv1, relu, ln)\nreadout: sum\nmlp: (5, gelu)\nextras: linear\n", "4", bce);
  /* BPR-MF: the user field alone through the head, the BPR loss over 3 negatives per row;
   * once with item biases, once without */
  const char *bpr[] = {"neg=3", "loss=bpr", NULL};
  grad_check_opts(ctx, ds, "readout: none\nextras: linear\n", "4", bpr);
  grad_check_opts(ctx, ds, "readout: sum\nshortcut: se\n", "4", bpr);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* The BPR loss of a batch is the mean over (positive, negative) pairs of -log sigmoid(s+ - s-),
 * recomputed here from the candidates' scores. */
void test_model_model__bpr_loss_value(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_retrieval_users(ctx, 20, 12, 5, 32);
  ameir_model *m = make_model(ctx, ds, "readout: none\nextras: linear\n", "4");
  T_OK(ameir_model_set_option(m, "neg", "3"));
  T_OK(ameir_model_set_option(m, "loss", "bpr"));
  const int64_t B = 16;
  T_OK(ameir__model_alloc_workspace(m, B));
  int64_t rows[16];
  for (int i = 0; i < B; i++) rows[i] = i;
  T_OK(ameir__model_stage(m, ds, rows, B));
  double loss;
  T_OK(ameir__model_forward(m, B, 1, &loss));
  float sc[16 * 4];
  T_OK(m->ops->download(m->bs, sc, m->cscore, sizeof sc));
  double want = 0;
  for (int64_t b = 0; b < B; b++)
    for (int j = 1; j < 4; j++) want += log1p(exp(-(double)(sc[b * 4] - sc[b * 4 + j])));
  want /= (double)(B * 3);
  T_ASSERT_NEAR(loss, want, 1e-5);
  /* the option travels with the model file */
  char path[600], val[16];
  snprintf(path, sizeof path, "%s/bpr.ameir", t_tmpdir());
  T_OK(ameir_model_save(m, path));
  ameir_model *l = NULL;
  T_OK(ameir_model_load(&l, ctx, path));
  T_OK(ameir_model_get_option(l, "loss", val, sizeof val));
  T_ASSERT(!strcmp(val, "bpr"));
  ameir_model_free(l);
  /* loss bpr is for retrieval, with one positive */
  T_ASSERT_EQ_INT(ameir_model_set_option(m, "positives", "2"), AMEIR_OK);
  T_ASSERT_EQ_INT(ameir__model_alloc_workspace(m, B), AMEIR_ECONFIG);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "positives must be 1") != NULL);
  ameir_model_free(m);
  ameir_dataset *ctr = synth_dataset(ctx, 64, 3, 5, 1, 2, 11);
  ameir_model *c = make_model(ctx, ctr, "mlp: (4, relu)\n", "4");
  T_OK(ameir_model_set_option(c, "loss", "bpr"));   /* refused when it trains */
  T_ASSERT_EQ_INT(ameir_model_train(c, ctr), AMEIR_ECONFIG);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "a CTR model trains with bce") != NULL);
  T_ASSERT_EQ_INT(ameir_model_set_option(c, "loss", "hinge"), AMEIR_EINVAL);
  T_OK(ameir_model_set_option(c, "loss", "bce"));
  ameir_model_free(c);
  synth_free(ctr);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* POP: untrained (epochs 0), the `pop` preset ranks every user's unseen items by their count as
 * training targets; a retrieval model with no input and no biases is refused with a message. */
void test_model_model__pop_ranks_by_training_count(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_retrieval(ctx, 300, 40, 6, 33);
  ameir_arch *a = NULL;
  T_OK(ameir_arch_preset(&a, ctx, "pop", NULL));
  ameir_model *m = NULL;
  T_OK(ameir_model_create(&m, ctx, a, ds));
  ameir_arch_free(a);
  T_OK(ameir_model_set_option(m, "epochs", "0"));
  T_OK(ameir_model_train(m, ds));
  double cnt[41] = {0};
  for (int64_t i = 0; i < ds->split_n[AMEIR_SPLIT_TRAIN]; i++) cnt[ds->fields[1].ids[ds->split_rows[AMEIR_SPLIT_TRAIN][i]]] += 1;
  int64_t nt = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  int32_t top[5 * 400];
  float sc[5 * 400];
  T_ASSERT(nt <= 400);
  T_OK(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, nt, 5, 1, top, sc));
  for (int64_t r = 0; r < nt; r++) {
    int64_t row = ds->split_rows[AMEIR_SPLIT_TEST][r];
    const int32_t *h = ds->items + ds->user_off[ds->row_user[row]];
    for (int j = 0; j < 5; j++) {
      int32_t it = top[r * 5 + j];
      T_ASSERT(it >= 1 && it <= 40);
      T_ASSERT_NEAR(sc[r * 5 + j], log1p(cnt[it]), 1e-6);
      for (int32_t i = 0; i < ds->row_pos[row]; i++) T_ASSERT(h[i] != it);   /* seen items excluded */
    }
    /* no unseen item is more popular than the fifth */
    for (int32_t it = 1; it <= 40; it++) {
      int seen = 0, in = 0;
      for (int32_t i = 0; i < ds->row_pos[row]; i++) seen |= h[i] == it;
      for (int j = 0; j < 5; j++) in |= top[r * 5 + j] == it;
      if (!seen && !in) T_ASSERT(log1p(cnt[it]) <= sc[r * 5 + 4] + 1e-6);
    }
  }
  /* ties are broken uniformly in expectation: with every bias 0 all items tie, and a user with
   * n candidates (the items outside the history before the target) has HR@10 = min(10, n) / n and
   * MRR = H(n) / n */
  {
    float zero[41] = {0};
    T_OK(m->ops->upload(m->bs, m->L + m->item_base, zero, sizeof zero));
    int32_t ids[2] = {AMEIR_METRIC_HR10, AMEIR_METRIC_MRR};
    double got[2], want[2] = {0, 0};
    T_OK(ameir_model_set_option(m, "eval_protocol", "full"));
    T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 2, ids, got));
    for (int64_t r = 0; r < nt; r++) {
      int64_t row = ds->split_rows[AMEIR_SPLIT_TEST][r];
      const int32_t *h = ds->items + ds->user_off[ds->row_user[row]];
      int32_t t = ds->fields[1].ids[row], seen[41] = {0};
      int n = 40;
      for (int32_t i = 0; i < ds->row_pos[row]; i++)
        if (h[i] != t && !seen[h[i]]) { seen[h[i]] = 1; n--; }
      double hn = 0;
      for (int i = 1; i <= n; i++) hn += 1.0 / i;
      want[0] += (n < 10 ? n : 10) / (double)n;
      want[1] += hn / n;
    }
    T_ASSERT_NEAR(got[0], want[0] / (double)nt, 1e-9);
    T_ASSERT_NEAR(got[1], want[1] / (double)nt, 1e-9);
    float lp[41];
    for (int i = 0; i < 41; i++) lp[i] = (float)log1p(cnt[i]);
    lp[0] = 0;
    T_OK(m->ops->upload(m->bs, m->L + m->item_base, lp, sizeof lp));
  }
  /* the biases travel with the model file */
  char path[600];
  snprintf(path, sizeof path, "%s/pop.ameir", t_tmpdir());
  T_OK(ameir_model_save(m, path));
  ameir_model *l = NULL;
  T_OK(ameir_model_load(&l, ctx, path));
  same_topk(m, l, ds);
  ameir_model_free(l);
  ameir_model_free(m);
  /* nothing to score with */
  T_OK(ameir_arch_parse(&a, ctx, "readout: none\n"));
  T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "nothing to score items with") != NULL);
  /* the FM term stays a CTR part */
  ameir_arch_free(a);
  T_OK(ameir_arch_parse(&a, ctx, "readout: sum\nextras: fm\n"));
  T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
  ameir_arch_free(a);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* `positions: learned`: a position table added to Stage 1's input; its gradient, the arch text,
 * and a bad value. */
void test_model_model__positions_learned(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_retrieval(ctx, 20, 12, 5, 21);
  grad_check(ctx, ds, "blocks: (sa2, identity, ln)\nreadout: last\npositions: learned\n", "4");
  grad_check(ctx, ds, "readout: sum last\nmlp: (5, gelu)\npositions: learned\n", "4");
  ameir_arch *a = NULL;
  char *txt = NULL;
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (conv1, relu, none)\nreadout: last\npositions: learned\n"));
  T_OK(ameir_arch_to_string(a, &txt));
  T_ASSERT(strstr(txt, "positions: learned\n") != NULL);
  ameir_arch_free(a);
  T_OK(ameir_arch_parse(&a, ctx, txt));
  ameir_free(txt);
  ameir_model *m = NULL, *plain = NULL;
  T_OK(ameir_model_create(&m, ctx, a, ds));
  ameir_arch_free(a);
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (conv1, relu, none)\nreadout: last\n"));
  T_OK(ameir_arch_to_string(a, &txt));
  T_ASSERT(strstr(txt, "positions") == NULL);   /* printed only when present */
  ameir_free(txt);
  T_OK(ameir_model_create(&plain, ctx, a, ds));
  ameir_arch_free(a);
  T_ASSERT_EQ_INT(ameir_model_params(m, NULL) - ameir_model_params(plain, NULL), 5 * 16);   /* T x d, emb 16 */
  ameir_model_free(m);
  ameir_model_free(plain);
  T_ASSERT_EQ_INT(ameir_arch_parse(&a, ctx, "positions: sinusoid\n"), AMEIR_EFORMAT);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "positions takes 'learned'") != NULL);
  synth_free(ds);
  ameir_context_free(ctx);
}
