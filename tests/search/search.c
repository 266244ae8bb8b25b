/* The search: the space's keys, the supernet's children (gradients, fairness, no weight copies,
 * exact inheritance), the three steps on the synthetic teacher, checkpoints and resume. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"
#include "core/search/search_int.h"
#include "../model/synth.h"

#ifndef SN_H
#define SN_H 0.3   /* step scale: the GRU and attention children curve enough that h = 1e-2 is too coarse */
#endif
static ameir_context *new_ctx(int threads) {
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  T_OK(ameir_context_set_int(ctx, "threads", threads));
  return ctx;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  T_ASSERT(f);
  fputs(text, f);
  fclose(f);
}

void test_search_search__space_keys(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_space *sp = NULL;
  T_OK(ameir_space_create(&sp, ctx));
  char buf[512];
  T_OK(ameir_space_get(sp, "samples", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "2000"));
  T_OK(ameir_space_get(sp, "mlp_ratios", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"));
  T_OK(ameir_space_get(sp, "mlp_acts", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "relu,swish,identity,dice"));
  T_OK(ameir_space_get(sp, "block_acts", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "relu,gelu,swish,identity"));
  T_OK(ameir_space_set(sp, "layers", "conv3, gru,zero"));
  T_OK(ameir_space_get(sp, "layers", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "conv3,gru,zero"));
  T_ASSERT_EQ_INT(ameir_space_set(sp, "layers", "conv4"), AMEIR_ECONFIG);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "conv4"));
  T_ASSERT_EQ_INT(ameir_space_set(sp, "layers", "gru,gru"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "samples", "0"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "samples", "12x"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "mlp_ratios", "0.5,0.2"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "mlp_ratios", "1.5"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "predefined_mlp", "200:relu,x"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "readout", "sum mean"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_space_set(sp, "no_such_key", "1"), AMEIR_ENOTFOUND);
  T_ASSERT_EQ_INT(ameir_space_get(sp, "no_such_key", buf, sizeof buf), AMEIR_ENOTFOUND);
  T_OK(ameir_space_set(sp, "search.topk", "3"));
  T_OK(ameir_space_get(sp, "topk", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "3"));
  T_OK(ameir_space_set(sp, "train.lr", "0.01"));   /* every model of the search */
  ameir_space_free(sp);

  /* from YAML: search: keys, train: options; errors name file, line and key */
  char path[600];
  snprintf(path, sizeof path, "%s/s.yaml", t_tmpdir());
  write_file(path, "dataset: {name: x}\ntrain: {emb: 8, model: deepfm}\nsearch:\n  samples: 50\n  cycles: 2\n");
  T_OK(ameir_space_load(&sp, ctx, path, NULL));
  T_OK(ameir_space_get(sp, "cycles", buf, sizeof buf));
  T_ASSERT(!strcmp(buf, "2"));
  T_ASSERT_EQ_INT(sp->n_train, 1);   /* emb; the program's key `model` is left out */
  T_ASSERT(!strcmp(sp->train[0], "emb=8"));
  ameir_space_free(sp);
  write_file(path, "search:\n  samples: 50\n  cyclez: 2\n");
  T_ASSERT_EQ_INT(ameir_space_load(&sp, ctx, path, NULL), AMEIR_ECONFIG);
  const char *e = ameir_context_last_error(ctx);
  T_ASSERT_MSG(strstr(e, "s.yaml:3") && strstr(e, "cyclez"), "%s", e);
  write_file(path, "search:\n  blocks: 99\n");
  T_ASSERT_EQ_INT(ameir_space_load(&sp, ctx, path, NULL), AMEIR_ECONFIG);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "s.yaml:2"));
  ameir_context_free(ctx);
}

/* A supernet child's analytic gradients (only the child's parameters) against central
 * differences of the batch loss; prepare() puts the child in place and stages the batch. */
static void sn_grad_check(ameir_supernet *sn, const ameir_dataset *ds, int grouped) {
  ameir_model *m = sn->m;
  const int64_t B = 24;
  int64_t rows[24];
  for (int i = 0; i < B; i++) rows[i] = i;
  T_OK(ameir_model_set_option(m, "lr", "0"));
  T_OK(ameir__model_alloc_workspace(m, 64));
  T_OK(ameir__model_stage(m, ds, rows, B));
  if (grouped) {
    /* three row groups with three different interactions and projections */
    T_ASSERT(sn->n_cand >= 3);
    int64_t K = m->opt.emb, len = sn->out1 * K;
    for (int g = 0; g < 3; g++) {
      const sn_inter *it = &sn->cand[g * (sn->n_cand / 3)];
      for (int32_t j = 0; j < m->max_order; j++) m->inter_fields[g * m->max_order + j] = j < it->order ? it->f[j] : -1;
      m->inter_order[g] = it->order;
      sn->groups[3 * g] = g * 8;
      sn->groups[3 * g + 1] = 8;
      sn->groups[3 * g + 2] = sn->pj0 + (int64_t)it->slot * len;
      sn->seg[2 + 2 * g] = sn->groups[3 * g + 2];
      sn->seg[3 + 2 * g] = len;
    }
    sn->seg[0] = 0;
    sn->seg[1] = sn->base_params;
    T_OK(m->ops->upload(m->bs, m->inter_f_dev, m->inter_fields, sizeof(int32_t) * (size_t)(3 * m->max_order)));
    T_OK(m->ops->upload(m->bs, m->inter_o_dev, m->inter_order, sizeof(int32_t) * 3));
    m->sn_ngroup = 3;
    m->sn_group = sn->groups;
    m->sn_pj = sn->groups[2];
    m->sn_nseg = 4;
  }
  double loss0;
  T_OK(ameir__model_forward(m, B, 1, &loss0));
  T_OK(ameir__model_backward_step(m, B, 0.0));
  const ameir_ops *o = m->ops;
  int64_t np = m->n_params;
  float *P = malloc(4 * (size_t)np), *G = malloc(4 * (size_t)np);
  T_OK(o->download(m->bs, P, m->P, 4 * (size_t)np));
  T_OK(o->download(m->bs, G, m->G, 4 * (size_t)np));
  int bad = 0, checked = 0;
  double worst = 0;
  for (int32_t sgi = 0; sgi < m->sn_nseg || (m->sn_nseg == 0 && sgi == 0); sgi++) {
    int64_t off = m->sn_nseg ? m->sn_seg[2 * sgi] : 0, len = m->sn_nseg ? m->sn_seg[2 * sgi + 1] : np;
    int64_t stride = len <= 300 ? 1 : (len / 300) | 1;
    for (int64_t i = off; i < off + len; i += stride) {
      float keep = P[i];
      double d[2];
      for (int pass = 0; pass < 2; pass++) {
        double hh = (pass ? 5e-3 : 1e-2) * SN_H, lp, lm;
        P[i] = (float)(keep + hh);
        T_OK(o->upload(m->bs, m->P + i, P + i, 4));
        T_OK(ameir__model_forward(m, B, 1, &lp));
        P[i] = (float)(keep - hh);
        T_OK(o->upload(m->bs, m->P + i, P + i, 4));
        T_OK(ameir__model_forward(m, B, 1, &lm));
        P[i] = keep;
        T_OK(o->upload(m->bs, m->P + i, P + i, 4));
        d[pass] = (lp - lm) / (2 * hh);
      }
      double num = (4 * d[1] - d[0]) / 3, an = G[i];
      double err = fabs(num - an) / (1e-3 + fabs(num) + fabs(an));
      if (err > worst) worst = err;
      if (err > 0.05) { if (bad < 5) printf("     param %lld (segment at %lld): numeric %.6g analytic %.6g\n", (long long)i, (long long)off, num, an); bad++; }
      checked++;
    }
  }
  printf("     checked %d gradients of the child, worst relative error %.2g\n", checked, worst);
  T_ASSERT_MSG(bad == 0, "%d gradients off (worst %.3g)", bad, worst);
  free(P);
  free(G);
  m->sn_ngroup = 0;
}

static ameir_space *small_space(ameir_context *ctx) {
  ameir_space *sp = NULL;
  T_OK(ameir_space_create(&sp, ctx));
  T_OK(ameir_space_set(sp, "train.emb", "4"));
  T_OK(ameir_space_set(sp, "train.init", "normal"));
  T_OK(ameir_space_set(sp, "train.init_std", "0.5"));
  T_OK(ameir_space_set(sp, "predefined_mlp", "6:relu,4:swish"));
  T_OK(ameir_space_set(sp, "cycles", "2"));
  return sp;
}

void test_search_search__supernet_gradients(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_seq_dataset(ctx, 200, 3, 6, 5, 0, 3);
  ameir_space *sp = small_space(ctx);
  T_OK(ameir_space_set(sp, "predefined_mlp", "6:swish,4:swish"));   /* smooth: no ReLU kinks */
  /* step 1: a child with LN, attention, GRU and a zero block */
  T_OK(ameir_space_set(sp, "layers", "sa2,gru,zero,conv3,target_att"));
  T_OK(ameir_space_set(sp, "norms", "ln"));
  T_OK(ameir_space_set(sp, "block_acts", "swish"));
  ameir_supernet *sn = NULL;
  T_OK(ameir_supernet_create(&sn, sp, ds, 1, NULL));
  sn_child c;
  memset(&c, 0, sizeof c);
  c.layer[0] = 0; c.layer[1] = 1; c.layer[2] = 2;   /* sa2, gru, zero */
  T_OK(ameir__sn_set_child(sn, &c));
  sn_grad_check(sn, ds, 0);
  c.layer[0] = 3; c.layer[1] = 4; c.layer[2] = 0;   /* conv3, target_att, sa2 */
  T_OK(ameir__sn_set_child(sn, &c));
  sn_grad_check(sn, ds, 0);
  ameir_supernet_free(sn);
  /* step 2: row groups, each with its own interaction and projection */
  T_OK(ameir_supernet_create(&sn, sp, ds, 2, NULL));
  T_OK(ameir_supernet_train(sn, 1));
  sn_grad_check(sn, ds, 1);
  memset(&c, 0, sizeof c);
  c.inter = sn->n_cand - 1;   /* a single interaction (scoring's path) */
  T_OK(ameir__sn_set_child(sn, &c));
  sn_grad_check(sn, ds, 0);
  /* the next cycle: a kept candidate keeps its projection (slot and weights), a new one gets
   * a fresh slot */
  {
    ameir_model *m = sn->m;
    int64_t len = sn->out1 * m->opt.emb;
    sn_inter next[2] = {sn->cand[1], sn->cand[0]};
    next[1].order = 3;
    next[1].f[0] = sn->eligible[2]; next[1].f[1] = sn->eligible[1]; next[1].f[2] = sn->eligible[0];
    int32_t kept_slot = sn->cand[1].slot;
    float *before = malloc(sizeof(float) * (size_t)len), *after = malloc(sizeof(float) * (size_t)len);
    T_OK(m->ops->download(m->bs, before, m->P + sn->pj0 + kept_slot * len, sizeof(float) * (size_t)len));
    T_OK(ameir__sn_set_candidates(sn, next, 2));
    T_ASSERT_EQ_INT(sn->n_cand, 2);
    T_ASSERT_EQ_INT(sn->cand[0].slot, kept_slot);
    T_ASSERT(sn->cand[1].slot != kept_slot);
    T_OK(m->ops->download(m->bs, after, m->P + sn->pj0 + kept_slot * len, sizeof(float) * (size_t)len));
    T_ASSERT(!memcmp(before, after, sizeof(float) * (size_t)len));
    free(before);
    free(after);
  }
  ameir_supernet_free(sn);
  /* step 3: sliced widths with Dice and identity */
  T_OK(ameir_space_set(sp, "mlp_ratios", "0.3,0.6,1.0"));
  T_OK(ameir_space_set(sp, "mlp_acts", "dice,identity,swish"));
  T_OK(ameir_supernet_create(&sn, sp, ds, 3, NULL));
  memset(&c, 0, sizeof c);
  c.width[0] = 1; c.width[1] = 0; c.mact[0] = 0; c.mact[1] = 1;
  T_OK(ameir__sn_set_child(sn, &c));
  T_ASSERT(sn->m->mlp[0].out < sn->K0 && sn->m->mlp[1].ldw == sn->K0);
  sn_grad_check(sn, ds, 0);
  ameir_supernet_free(sn);
  ameir_space_free(sp);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* Scoring a child runs the supernet in place (no weight copy), and a model derived from it
 * with the inherited weights predicts exactly what the child does. */
static void check_inherit(ameir_context *ctx, ameir_supernet *sn, ameir_dataset *ds, const sn_child *c) {
  T_OK(ameir__sn_set_child(sn, c));
  ameir_arch *a = NULL;
  T_OK(ameir__sn_child_to_arch(sn, c, &a));
  char *txt = NULL;
  T_OK(ameir_arch_to_string(a, &txt));
  int64_t n = ds->split_n[AMEIR_SPLIT_VALID];
  if (n > 64) n = 64;
  float *p1 = malloc(4 * (size_t)n), *p2 = malloc(4 * (size_t)n);
  const float *P0 = sn->m->P;
  T_OK(ameir_model_predict_split(sn->m, ds, AMEIR_SPLIT_VALID, 0, n, p1));
  T_ASSERT(sn->m->P == P0);
  ameir_model *d = NULL;
  char *opts = ameir__space_opts(sn->sp);
  T_OK(ameir__model_create_ex(&d, ctx, a, ds, opts, NULL, NULL));
  free(opts);
  T_OK(ameir__model_inherit(d, sn->m));
  T_OK(ameir_model_predict_split(d, ds, AMEIR_SPLIT_VALID, 0, n, p2));
  double worst = 0;
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)p1[i] - p2[i]));
  T_ASSERT_MSG(worst < 1e-5, "derived %s differs from its supernet child by %.3g", txt, worst);
  /* the score of the public API is the same child's metric */
  double s1, s2;
  T_OK(ameir_supernet_score(sn, a, 0, &s1));
  int32_t id = AMEIR_METRIC_AUC;
  T_OK(ameir_model_evaluate(d, ds, AMEIR_SPLIT_VALID, 1, &id, &s2));
  T_ASSERT_NEAR(s1, s2, 1e-6);
  ameir_model_free(d);
  ameir_arch_free(a);
  free(txt);
  free(p1);
  free(p2);
}

void test_search_search__children_share_weights_and_derive_exactly(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = synth_seq_dataset(ctx, 1200, 3, 8, 6, 0, 5);
  ameir_space *sp = small_space(ctx);
  T_OK(ameir_space_set(sp, "epochs1", "1"));
  T_OK(ameir_space_set(sp, "epochs3", "1"));
  T_OK(ameir_space_set(sp, "mlp_acts", "relu,dice,identity"));
  ameir_supernet *sn = NULL;
  T_OK(ameir_supernet_create(&sn, sp, ds, 1, NULL));
  T_OK(ameir_supernet_train(sn, 1));
  ameir__rng r;
  ameir__rng_seed(&r, 1, 2);
  for (int i = 0; i < 3; i++) {
    sn_child c;
    ameir__sn_random_child(sn, &r, &c);
    check_inherit(ctx, sn, ds, &c);
  }
  /* a child outside the subspace is refused with the reason */
  ameir_arch *bad = NULL;
  T_OK(ameir_arch_parse(&bad, ctx, "blocks: zero zero\nmlp: (6, relu)\n"));
  double v;
  T_ASSERT_EQ_INT(ameir_supernet_score(sn, bad, 0, &v), AMEIR_EINVAL);
  ameir_arch_free(bad);
  ameir_supernet_free(sn);
  /* step 3 over fixed blocks: sliced MLPs derive exactly too */
  ameir_arch *fixed = NULL;
  T_OK(ameir_arch_parse(&fixed, ctx, "blocks: (conv3, relu, ln)\nreadout: sum last att\ninteractions: (C0, C1)\nmlp: (6, relu)\nshortcut: se\n"));
  T_OK(ameir_supernet_create(&sn, sp, ds, 3, fixed));
  T_OK(ameir_supernet_train(sn, 1));
  for (int i = 0; i < 4; i++) {
    sn_child c;
    ameir__sn_random_child(sn, &r, &c);
    check_inherit(ctx, sn, ds, &c);
  }
  ameir_supernet_free(sn);
  ameir_arch_free(fixed);
  ameir_space_free(sp);
  synth_free(ds);
  ameir_context_free(ctx);
}

void test_search_search__fair_sampling(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_seq_dataset(ctx, 200, 3, 6, 5, 0, 3);
  ameir_space *sp = small_space(ctx);
  ameir_supernet *sn = NULL;
  T_OK(ameir_supernet_create(&sn, sp, ds, 1, NULL));
  ameir__rng_seed(&sn->fair_rng, 7, 7);
  int32_t nk = sn->n_kinds, count[SN_MAX_BLOCKS][SN_MAX_CHOICES] = {{0}}, acts[SN_MAX_CHOICES] = {0};
  T_ASSERT(nk >= 10);   /* every layer kind fits this data */
  for (int s = 0; s < 3 * nk; s++) {
    sn_child c;
    ameir__sn_fair_child(sn, &c);
    for (int l = 0; l < sn->L; l++) count[l][c.layer[l]]++;
    acts[c.act[0]]++;
  }
  for (int l = 0; l < sn->L; l++)
    for (int k = 0; k < nk; k++) T_ASSERT_MSG(count[l][k] == 3, "block %d kind %d drawn %d times in 3 rounds", l, k, count[l][k]);
  for (int k = 0; k < sp->n_bacts; k++) T_ASSERT(acts[k] > 0);
  ameir_supernet_free(sn);
  ameir_space_free(sp);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* the generated dataset with its planted answers, and a small search over it */
static ameir_dataset *gen_ds(ameir_context *ctx, int64_t rows) {
  char d[600], y[700];
  snprintf(d, sizeof d, "%s/gen", t_tmpdir());
  T_OK(ameir_dataset_generate(ctx, d, rows, 2021));
  snprintf(y, sizeof y, "%s/synthetic.yaml", d);
  ameir_dataset *ds = NULL;
  T_OK(ameir_dataset_open(&ds, ctx, y));
  return ds;
}

static int has_inter(const ameir_arch *a, const char *x, const char *y, const char *z) {
  for (int32_t i = 0; i < a->n_inter; i++) {
    const ameir__inter *it = &a->inter[i];
    if (it->order != (z ? 3 : 2)) continue;
    int ok = 1;
    const char *want[3] = {x, y, z};
    for (int j = 0; j < it->order; j++) {
      int f = 0;
      for (int q = 0; q < it->order; q++) f |= !strcmp(it->fields[q], want[j]);
      ok &= f;
    }
    if (ok) return 1;
  }
  return 0;
}

void test_search_search__step2_recovers_planted_interactions(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = gen_ds(ctx, 100000);
  ameir_space *sp = NULL;
  T_OK(ameir_space_create(&sp, ctx));
  T_OK(ameir_space_set(sp, "train.emb", "8"));
  T_OK(ameir_space_set(sp, "cycles", "2"));
  ameir_searcher *s = NULL;
  T_OK(ameir_searcher_create(&s, sp, ds));
  T_OK(ameir_searcher_set(s, "steps", "2"));
  T_OK(ameir_searcher_run(s, AMEIR_STEP_INTERACTIONS));
  ameir_arch *a = NULL;
  double v;
  T_OK(ameir_searcher_result(s, 2, &a, &v));
  char *txt = NULL;
  T_OK(ameir_arch_to_string(a, &txt));
  int found = has_inter(a, "c0", "c1", NULL) + has_inter(a, "c2", "c3", NULL) + has_inter(a, "c4", "c5", "c6");
  printf("     step 2 found %d of 3 planted interactions (validation AUC %.4f):\n%s", found, v, txt);
  T_ASSERT_MSG(found >= 2, "only %d of the 3 planted interactions among the top M", found);
  T_ASSERT_EQ_INT(a->n_inter, 5);
  free(txt);
  ameir_arch_free(a);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
}

void test_search_search__step1_beats_zero_child(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = gen_ds(ctx, 30000);
  ameir_space *sp = NULL;
  T_OK(ameir_space_create(&sp, ctx));
  T_OK(ameir_space_set(sp, "train.emb", "8"));
  T_OK(ameir_space_set(sp, "samples", "40"));
  T_OK(ameir_space_set(sp, "blocks", "2"));
  T_OK(ameir_space_set(sp, "epochs1", "3"));
  ameir_searcher *s = NULL;
  T_OK(ameir_searcher_create(&s, sp, ds));
  T_OK(ameir_searcher_run(s, AMEIR_STEP_BLOCKS));
  ameir_arch *a = NULL;
  double best;
  T_OK(ameir_searcher_result(s, 1, &a, &best));
  /* the zero-only child, scored by the same trained supernet on the whole validation split */
  ameir_arch *z = NULL;
  T_OK(ameir__arch_copy(ctx, a, &z));
  for (int32_t l = 0; l < z->n_blocks; l++) z->blocks[l].layer = AMEIR_LAYER_ZERO;
  double zero;
  T_OK(ameir_supernet_score(ameir__searcher_supernet(s, 1), z, 0, &zero));
  printf("     step 1: best child %.4f, zero-only child %.4f\n", best, zero);
  T_ASSERT_MSG(best > zero, "best child %.4f does not beat the zero-only child %.4f", best, zero);
  ameir_arch_free(z);
  ameir_arch_free(a);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
}

static int32_t cancel_in_step3(const char *stage, int64_t done, int64_t total, double metric, void *user) {
  (void)done; (void)total; (void)metric; (void)user;
  return !strncmp(stage, "step3/score", 11);
}

static ameir_searcher *small_search(ameir_context *ctx, ameir_space **sp, ameir_dataset *ds, const char *out, int resume) {
  T_OK(ameir_space_create(sp, ctx));
  T_OK(ameir_space_set(*sp, "train.emb", "4"));
  T_OK(ameir_space_set(*sp, "samples", "12"));
  T_OK(ameir_space_set(*sp, "topk", "2"));
  T_OK(ameir_space_set(*sp, "blocks", "2"));
  T_OK(ameir_space_set(*sp, "cycles", "2"));
  T_OK(ameir_space_set(*sp, "epochs1", "2"));
  T_OK(ameir_space_set(*sp, "epochs2", "2"));
  T_OK(ameir_space_set(*sp, "epochs3", "2"));
  T_OK(ameir_space_set(*sp, "finetune_epochs", "2"));
  T_OK(ameir_space_set(*sp, "predefined_mlp", "16:relu"));
  ameir_searcher *s = NULL;
  T_OK(ameir_searcher_create(&s, *sp, ds));
  if (out) T_OK(ameir_searcher_set(s, "out", out));
  if (resume) T_OK(ameir_searcher_set(s, "resume", "1"));
  return s;
}

void test_search_search__resume_matches_uninterrupted(void) {
  ameir_context *ctx = new_ctx(2);
  ameir_dataset *ds = gen_ds(ctx, 6000);
  char o1[700], o2[700], path[800];
  snprintf(o1, sizeof o1, "%s/full", t_tmpdir());
  snprintf(o2, sizeof o2, "%s/cut", t_tmpdir());
  ameir_space *sp = NULL;
  /* uninterrupted */
  ameir_searcher *s = small_search(ctx, &sp, ds, o1, 0);
  T_OK(ameir_searcher_run(s, 0));
  ameir_arch *a1 = NULL;
  double auc1, t1;
  T_OK(ameir_searcher_result(s, 4, &a1, NULL));
  T_OK(ameir_searcher_get_stat(s, "test_auc", &auc1));
  T_OK(ameir_searcher_get_stat(s, "test_logloss", &t1));
  ameir_searcher_free(s);
  ameir_space_free(sp);
  static const char *files[] = {"report.yaml", "report.html", "model.ameir", "search.log", "state.txt"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", o1, files[i]);
    FILE *f = fopen(path, "rb");
    T_ASSERT_MSG(f, "%s missing", path);
    fclose(f);
  }
  /* interrupted in step 3, then resumed */
  s = small_search(ctx, &sp, ds, o2, 0);
  ameir_context_set_progress_callback(ctx, cancel_in_step3, NULL);
  T_ASSERT_EQ_INT(ameir_searcher_run(s, 0), AMEIR_ECANCELLED);
  ameir_context_set_progress_callback(ctx, NULL, NULL);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  s = small_search(ctx, &sp, ds, o2, 1);
  T_OK(ameir_searcher_run(s, 0));
  ameir_arch *a2 = NULL;
  double auc2, t2;
  T_OK(ameir_searcher_result(s, 4, &a2, NULL));
  T_OK(ameir_searcher_get_stat(s, "test_auc", &auc2));
  T_OK(ameir_searcher_get_stat(s, "test_logloss", &t2));
  char *x1 = NULL, *x2 = NULL;
  T_OK(ameir_arch_to_string(a1, &x1));
  T_OK(ameir_arch_to_string(a2, &x2));
  T_ASSERT_MSG(!strcmp(x1, x2), "resumed search found\n%s\nthe uninterrupted one\n%s", x2, x1);
  T_ASSERT_MSG(auc1 == auc2 && t1 == t2, "test AUC %.9g vs %.9g, log loss %.9g vs %.9g", auc2, auc1, t2, t1);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  /* a damaged checkpoint is refused with its name */
  snprintf(path, sizeof path, "%s/step3.ckpt", o2);
  write_file(path, "AMEIRCKPT 1 3 0 0\ngarbage");
  snprintf(path, sizeof path, "%s/state.txt", o2);
  write_file(path, "ameir-search-state 1\nseed 42\ndone 6\nstep 1\nbogus\n");
  s = small_search(ctx, &sp, ds, o2, 1);
  ameir_status st = ameir_searcher_run(s, 0);
  T_ASSERT_MSG(st == AMEIR_EFORMAT || st == AMEIR_ECONFIG, "status %d: %s", (int)st, ameir_context_last_error(ctx));
  T_ASSERT(strstr(ameir_context_last_error(ctx), "state.txt"));
  ameir_searcher_free(s);
  ameir_space_free(sp);
  free(x1);
  free(x2);
  ameir_arch_free(a1);
  ameir_arch_free(a2);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
}

void test_search_search__scenarios_and_errors(void) {
  ameir_context *ctx = new_ctx(1);
  ameir_dataset *ds = synth_dataset(ctx, 300, 3, 5, 0, 1, 4);   /* no behaviours */
  ameir_space *sp = small_space(ctx);
  ameir_supernet *sn = NULL;
  T_ASSERT_EQ_INT(ameir_supernet_create(&sn, sp, ds, 1, NULL), AMEIR_EUNSUPPORTED);
  T_ASSERT_EQ_INT(ameir_supernet_create(&sn, sp, ds, 4, NULL), AMEIR_EINVAL);
  ameir_searcher *s = NULL;
  T_OK(ameir_searcher_create(&s, sp, ds));
  T_ASSERT_EQ_INT(ameir_searcher_set(s, "steps", "1,x"), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir_searcher_set(s, "bogus", "1"), AMEIR_ENOTFOUND);
  T_ASSERT_EQ_INT(ameir_searcher_run(s, 7), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(ameir_searcher_result(s, 1, NULL, NULL), AMEIR_ENOTFOUND);
  double v;
  T_ASSERT_EQ_INT(ameir_searcher_get_stat(s, "test_auc", &v), AMEIR_ENOTFOUND);
  T_ASSERT(ameir_searcher_model(s) == NULL);
  ameir_searcher_free(s);
  ameir_space_free(sp);
  synth_free(ds);
  ameir_dataset *rt = synth_retrieval(ctx, 60, 30, 6, 2);
  sp = small_space(ctx);
  T_ASSERT_EQ_INT(ameir_supernet_create(&sn, sp, rt, 2, NULL), AMEIR_EUNSUPPORTED);
  T_ASSERT_EQ_INT(ameir_supernet_create(&sn, sp, rt, 3, NULL), AMEIR_EUNSUPPORTED);
  ameir_space_free(sp);
  synth_free(rt);
  ameir_context_free(ctx);
}
