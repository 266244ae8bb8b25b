/* BERT4Rec's masked-item (Cloze) training, `cloze: P`: the staged windows, masks and read-out
 * positions, the [mask] row kept out of the ranking, the preset learning, save and load. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"
#include "core/model/model.h"
#include "synth.h"

static ameir_context *new_ctx(int threads, int64_t seed) {
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cpu")) t__fail(__FILE__, __LINE__, "context: %s", ameir_last_error());
  ameir_context_set_int(ctx, "threads", threads);
  ameir_context_set_int(ctx, "seed", seed);
  return ctx;
}

/* Two users, items 1..9 (vocab 10), T = 3, the userseq protocol:
 *   user 0: 3 5 7 2 9 -> rows 0 (hist 3, target 5), 1 (3 5 -> 7) train, 2 (3 5 7 -> 2) valid,
 *                        4 (5 7 2 -> 9) test
 *   user 1: 4 6 8     -> rows 3 (4 -> 6) valid, 5 (4 6 -> 8) test
 * (the tests stage rows 0 1 2 4 3 5: user 0's, then user 1's) */
static ameir_dataset *tiny_ds(ameir_context *ctx) {
  static const int32_t seqs[] = {3, 5, 7, 2, 9, 4, 6, 8};
  int32_t *items = malloc(sizeof seqs);
  int64_t *off = malloc(3 * sizeof *off);
  memcpy(items, seqs, sizeof seqs);
  off[0] = 0; off[1] = 5; off[2] = 8;
  return synth_retrieval_seqs(ctx, items, off, 2, 9, 3);
}

static ameir_model *make(ameir_context *ctx, ameir_dataset *ds, const char *text, const char *emb) {
  ameir_arch *a = NULL;
  T_OK(ameir_arch_parse(&a, ctx, text));
  ameir_model *m = NULL;
  ameir_status st = ameir_model_create(&m, ctx, a, ds);
  ameir_arch_free(a);
  T_ASSERT_MSG(st == AMEIR_OK, "create: %s", ameir_context_last_error(ctx));
  if (emb) T_OK(ameir_model_set_option(m, "emb", emb));
  return m;
}

#define ARCH "blocks: (sa2, gelu, ln) (conv1, gelu, ln)\nreadout: last\nmlp: (8, relu)\n"

/* Stages all six rows (mode TRAIN or SCORE) and copies out the window rows [6 * 3], the
 * lengths [6], the read-out positions + 1 [6] and (training) the candidates [6 * C]. */
static void stage_rows(ameir_model *m, const ameir_dataset *ds, int train, int32_t *win, int32_t *len, int32_t *ro,
                       int32_t *cand) {
  const int64_t nb = 6, rows[6] = {0, 1, 2, 4, 3, 5};
  T_OK(ameir__model_alloc_workspace(m, nb));
  if (train) T_OK(ameir__model_stage(m, ds, rows, nb));
  else {
    T_OK(ameir__model_stage_async(m, ds, rows, nb, AMEIR__STAGE_SCORE, m->host_stage));
    T_OK(m->ops->sync(m->bs));
  }
  const int32_t *h = m->host_stage;
  int64_t T = m->seq_t, C = m->n_cand, off_len = nb * T + nb * C;   /* no other fields, no dense */
  memcpy(win, h, sizeof(int32_t) * (size_t)(nb * T));
  if (cand) memcpy(cand, h + nb * T, sizeof(int32_t) * (size_t)(nb * C));
  memcpy(len, h + off_len, sizeof(int32_t) * (size_t)nb);
  memcpy(ro, h + off_len + nb, sizeof(int32_t) * (size_t)nb);
}

/* A scored row: the history's last T-1 items, then [mask], read out at the mask (no draws). */
void test_model_cloze__scoring_window(void) {
  ameir_context *ctx = new_ctx(1, 7);
  ameir_dataset *ds = tiny_ds(ctx);
  ameir_model *m = make(ctx, ds, ARCH "cloze: 0.2\n", "4");
  /* rows: 0 padding, item k at 1 + k (k = 0..9), [mask] 11 */
  T_ASSERT_EQ_INT(m->item_base, 1);
  T_ASSERT_EQ_INT(m->mask_row, 11);
  T_ASSERT_EQ_INT(m->emb_rows, 12);
  int32_t win[18], len[6], ro[6];
  stage_rows(m, ds, 0, win, len, ro, NULL);
  static const int32_t ew[18] = {4, 11, 0, /**/ 4, 6, 11, /**/ 6, 8, 11, /**/ 8, 3, 11, /**/ 5, 11, 0, /**/ 5, 7, 11};
  static const int32_t el[6] = {2, 3, 3, 3, 2, 3};
  for (int i = 0; i < 18; i++) T_ASSERT_MSG(win[i] == ew[i], "window slot %d: %d, expected %d", i, win[i], ew[i]);
  for (int b = 0; b < 6; b++) {
    T_ASSERT_EQ_INT(len[b], el[b]);
    T_ASSERT_EQ_INT(ro[b], el[b]);   /* the read-out is the last position, the mask */
  }
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* A training row for a fixed seed and step: the window with the target, the masks drawn, the
 * read-out position and the positive, exactly; other steps draw other masks. */
void test_model_cloze__training_window_exact(void) {
  ameir_context *ctx = new_ctx(1, 7);
  ameir_dataset *ds = tiny_ds(ctx);
  ameir_model *m = make(ctx, ds, ARCH "cloze: 0.5 0\n", "4");
  T_OK(ameir_model_set_option(m, "neg", "2"));
  int32_t win[18], len[6], ro[6], cand[18];
  stage_rows(m, ds, 1, win, len, ro, cand);
  /* unmasked windows (rows 0..5): 4 6 . | 4 6 8 | 6 8 3 | 8 3 10 | 5 7 . | 5 7 9 */
  /* seed 7, step 0, P = 0.5: [mask] (row 11) drawn at 0 1 | 2 | 1 2 | 0 1 | 1 | 1, read out at
   * positions 1, 2, 1, 0, 1, 1 */
  static const int32_t ew[18] = {11, 11, 0, /**/ 4, 6, 11, /**/ 6, 11, 11, /**/ 11, 11, 10, /**/ 5, 11, 0, /**/ 5, 11, 9};
  static const int32_t ero[6] = {2, 3, 2, 1, 2, 2};
  static const int32_t el[6] = {2, 3, 3, 3, 2, 3};
  for (int i = 0; i < 18; i++) T_ASSERT_MSG(win[i] == ew[i], "window slot %d: %d, expected %d", i, win[i], ew[i]);
  for (int b = 0; b < 6; b++) {
    T_ASSERT_EQ_INT(len[b], el[b]);
    T_ASSERT_EQ_INT(ro[b], ero[b]);
  }
  /* the positives, the items under the read-out masks: 5 7 7 7 6 6 (row = 1 + item) */
  static const int32_t epos[6] = {6, 8, 8, 8, 7, 7};
  for (int b = 0; b < 6; b++) T_ASSERT_EQ_INT(cand[b * 3], epos[b]);
  /* the same step again gives the same draws; another step others */
  int32_t w2[18], l2[6], r2[6], c2[18];
  stage_rows(m, ds, 1, w2, l2, r2, c2);
  T_ASSERT(!memcmp(w2, win, sizeof win) && !memcmp(r2, ro, sizeof ro) && !memcmp(c2, cand, sizeof cand));
  m->step = 1;
  stage_rows(m, ds, 1, w2, l2, r2, c2);
  T_ASSERT(memcmp(w2, win, sizeof win) || memcmp(r2, ro, sizeof ro));
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* Over many rows, seeds and steps: unmasked positions hold the window's items, masked ones the
 * [mask] row, the read-out position is masked, and the positive is the item under it (it never
 * shows in the input at its own position); at least one position is masked per row. */
void test_model_cloze__masks_never_leak_the_positive(void) {
  for (int64_t seed = 1; seed <= 3; seed++) {
    ameir_context *ctx = new_ctx(1, seed);
    ameir_dataset *ds = synth_retrieval(ctx, 40, 30, 5, 30 + (uint64_t)seed);
    ameir_model *m = make(ctx, ds, ARCH "cloze: 0.3 0\n", "4");
    const int64_t nb = 64;
    T_OK(ameir__model_alloc_workspace(m, nb));
    int64_t T = m->seq_t, C = m->n_cand, masked = 0, slots = 0;
    for (int64_t step = 0; step < 4; step++) {
      m->step = step;
      const int64_t *rows = ds->split_rows[AMEIR_SPLIT_TRAIN] + step * 8;
      T_OK(ameir__model_stage(m, ds, rows, nb));
      const int32_t *h = m->host_stage, *len = h + nb * T + nb * C, *ro = len + nb;
      for (int64_t b = 0; b < nb; b++) {
        const int32_t *w = h + b * T, *hist = ds->fields[0].ids + rows[b] * T;
        int32_t L = 0;
        while (L < T && hist[L] >= 0) L++;
        int32_t keep = L < T - 1 ? L : (int32_t)T - 1, pos = ro[b] - 1;
        T_ASSERT_EQ_INT(len[b], keep + 1);
        T_ASSERT(pos >= 0 && pos < len[b]);
        T_ASSERT_MSG(w[pos] == m->mask_row, "row %lld: read-out position %d is not masked", (long long)rows[b], pos);
        int32_t n_masked = 0;
        for (int32_t j = 0; j < len[b]; j++) {
          int32_t item = j < keep ? hist[L - keep + j] : ds->fields[1].ids[rows[b]];
          T_ASSERT(w[j] == m->mask_row || w[j] == m->item_base + item);
          n_masked += w[j] == m->mask_row;
          if (j == pos) T_ASSERT_EQ_INT(h[nb * T + b * C], m->item_base + item);   /* the positive */
        }
        for (int64_t j = len[b]; j < T; j++) T_ASSERT_EQ_INT(w[j], 0);
        T_ASSERT(n_masked >= 1);
        masked += n_masked;
        slots += len[b];
      }
    }
    /* P = 0.3 plus the forced mask of rows that drew none: a little above 0.3 */
    double rate = (double)masked / (double)slots;
    T_ASSERT_MSG(rate > 0.25 && rate < 0.5, "mask rate %.3f", rate);
    ameir_model_free(m);
    synth_free(ds);
    ameir_context_free(ctx);
  }
}

/* `cloze: P L`: a share L of the training rows masks only its last item (the target), as the
 * scoring windows do; L = 1 makes every row one, and the default L = 0.1 about one row in ten. */
void test_model_cloze__last_item_only_rows(void) {
  ameir_context *ctx = new_ctx(1, 3);
  ameir_dataset *ds = synth_retrieval(ctx, 40, 30, 5, 41);
  const int64_t nb = 64;
  for (int variant = 0; variant < 2; variant++) {
    ameir_model *m = make(ctx, ds, variant ? ARCH "cloze: 0.5\n" : ARCH "cloze: 0.5 1\n", "4");
    T_OK(ameir__model_alloc_workspace(m, nb));
    int64_t T = m->seq_t, C = m->n_cand, only_last = 0, n = 0;
    for (int64_t step = 0; step < 8; step++) {
      m->step = step;
      const int64_t *rows = ds->split_rows[AMEIR_SPLIT_TRAIN] + (step % 4) * 8;
      T_OK(ameir__model_stage(m, ds, rows, nb));
      const int32_t *h = m->host_stage, *len = h + nb * T + nb * C, *ro = len + nb;
      for (int64_t b = 0; b < nb; b++, n++) {
        const int32_t *w = h + b * T;
        int32_t masked = 0;
        for (int32_t j = 0; j < len[b]; j++) masked += w[j] == m->mask_row;
        int last = masked == 1 && w[len[b] - 1] == m->mask_row && ro[b] == len[b];
        only_last += last;
        if (!variant) T_ASSERT_MSG(last, "row %lld: not a last-item-only row", (long long)rows[b]);
      }
    }
    /* default: the tenth that asks for it, plus rows of P = 0.5 that drew only the last mask */
    if (variant) T_ASSERT_MSG(only_last > n / 20 && only_last < n / 2, "%lld of %lld rows", (long long)only_last, (long long)n);
    ameir_model_free(m);
  }
  ameir_arch *a = NULL;
  char *txt = NULL;
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (sa2, gelu, ln)\nreadout: last\ncloze: 0.2, 0.25\n"));
  T_OK(ameir_arch_to_string(a, &txt));
  T_ASSERT_MSG(strstr(txt, "\ncloze: 0.2 0.25\n") != NULL, "%s", txt);
  ameir_free(txt);
  ameir_arch_free(a);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* The [mask] row is no candidate: it lies after the items' rows, top-k over every item returns
 * each item id once and never the mask's, and asking for one more is refused. */
void test_model_cloze__mask_row_is_never_ranked(void) {
  ameir_context *ctx = new_ctx(1, 5);
  ameir_dataset *ds = synth_retrieval(ctx, 30, 20, 5, 41);
  ameir_model *m = make(ctx, ds, ARCH "cloze: 0.2\n", "8");
  T_ASSERT_EQ_INT(m->mask_row, m->item_base + m->item_vocab);
  int64_t V = m->item_vocab - 1, n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  int32_t *top = malloc(sizeof(int32_t) * (size_t)(n * V));
  float *sc = malloc(sizeof(float) * (size_t)(n * V));
  T_OK(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, n, (int32_t)V, 0, top, sc));
  for (int64_t r = 0; r < n; r++) {
    int seen[64] = {0};
    for (int64_t j = 0; j < V; j++) {
      int32_t id = top[r * V + j];
      T_ASSERT_MSG(id >= 1 && id <= V, "row %lld ranks id %d (items 1..%lld)", (long long)r, id, (long long)V);
      T_ASSERT(!seen[id]);
      seen[id] = 1;
    }
  }
  T_ASSERT_EQ_INT(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, 1, (int32_t)V + 1, 0, top, sc), AMEIR_EINVAL);
  free(top);
  free(sc);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* The preset: its arch prints and parses back, it trains on a small retrieval set and ranks far
 * above chance, and saved and loaded it ranks with identical scores. */
void test_model_cloze__bert4rec_preset_learns_and_round_trips(void) {
  ameir_context *ctx = new_ctx(2, 2021);
  ameir_arch *a = NULL, *b = NULL;
  T_OK(ameir_arch_preset(&a, ctx, "bert4rec", NULL));
  char *s1 = NULL, *s2 = NULL;
  T_OK(ameir_arch_to_string(a, &s1));
  T_ASSERT_MSG(strstr(s1, "blocks: (sa4, gelu, ln) (conv1, gelu, ln) (sa4, gelu, ln) (conv1, gelu, ln)\n"), "%s", s1);
  T_ASSERT_MSG(strstr(s1, "readout: last\n") && strstr(s1, "cloze: 0.2\n"), "%s", s1);
  T_OK(ameir_arch_parse(&b, ctx, s1));
  T_OK(ameir_arch_to_string(b, &s2));
  T_ASSERT(!strcmp(s1, s2));
  ameir_free(s1);
  ameir_free(s2);
  ameir_arch_free(b);
  ameir_dataset *ds = synth_retrieval(ctx, 1000, 200, 8, 22);
  ameir_model *m = NULL;
  T_OK(ameir_model_create(&m, ctx, a, ds));
  ameir_arch_free(a);
  const char *opts[][2] = {{"emb", "32"}, {"epochs", "5"}, {"batch", "128"}, {"lr", "3e-3"}, {"neg", "5"}};
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) T_OK(ameir_model_set_option(m, opts[i][0], opts[i][1]));
  T_OK(ameir_model_train(m, ds));
  int32_t ids[2] = {AMEIR_METRIC_HR10, AMEIR_METRIC_NDCG10};
  double full[2], sampled[2];
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 2, ids, full));
  T_OK(ameir_model_set_option(m, "eval_protocol", "sampled"));
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 2, ids, sampled));
  printf("     bert4rec: HR@10 full %.4f sampled %.4f, NDCG@10 full %.4f\n", full[0], sampled[0], full[1]);
  /* random ranking: HR@10 = 10/199 over all items, 10/101 against 100 negatives */
  T_ASSERT_MSG(full[0] > 4 * 10.0 / 199, "full-ranking HR@10 %.4f", full[0]);
  T_ASSERT_MSG(sampled[0] > 3 * 10.0 / 101, "sampled HR@10 %.4f", sampled[0]);
  char path[600];
  snprintf(path, sizeof path, "%s/bert4rec.ameir", t_tmpdir());
  T_OK(ameir_model_save(m, path));
  ameir_model *l = NULL;
  T_OK(ameir_model_load(&l, ctx, path));
  T_ASSERT_EQ_INT(l->mask_row, m->mask_row);
  int64_t n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  int32_t k = 10, *ta = malloc(sizeof(int32_t) * (size_t)(n * k)), *tb = malloc(sizeof(int32_t) * (size_t)(n * k));
  float *sa = malloc(sizeof(float) * (size_t)(n * k)), *sb = malloc(sizeof(float) * (size_t)(n * k));
  T_OK(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, n, k, 1, ta, sa));
  T_OK(ameir_model_topk(l, ds, AMEIR_SPLIT_TEST, 0, n, k, 1, tb, sb));
  for (int64_t i = 0; i < n * k; i++) T_ASSERT_MSG(ta[i] == tb[i] && sa[i] == sb[i], "top-k entry %lld differs", (long long)i);
  double again[2];
  T_OK(ameir_model_set_option(l, "eval_protocol", "sampled"));
  T_OK(ameir_model_evaluate(l, ds, AMEIR_SPLIT_TEST, 2, ids, again));
  T_ASSERT(again[0] == sampled[0] && again[1] == sampled[1]);
  free(ta); free(tb); free(sa); free(sb);
  ameir_model_free(l);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* Clear errors: the key's value, a CTR dataset, a read-out without `last`, a history not sharing
 * the item table, more than one positive. */
void test_model_cloze__errors(void) {
  const char *bad[] = {"cloze: 0\n", "cloze: 1.5\n", "cloze: often\n", "cloze: 0.2 1.5\n", "cloze: 0.2 0.1 3\n", "cloze:\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ameir_arch *a = NULL;
    T_ASSERT_EQ_INT(ameir_arch_parse(&a, NULL, bad[i]), AMEIR_EFORMAT);
    T_ASSERT_MSG(strstr(ameir_last_error(), "cloze"), "'%s': %s", bad[i], ameir_last_error());
    T_ASSERT(a == NULL);
  }
  ameir_context *ctx = new_ctx(1, 3);
  /* architectures without the key print as before; cloze prints exactly */
  ameir_arch *a = NULL;
  char *s = NULL;
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (sa2, gelu, ln)\nreadout: last\ncloze: 0.15\n"));
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT_MSG(strstr(s, "\ncloze: 0.15\n"), "%s", s);
  ameir_free(s);
  ameir_arch_free(a);
  T_OK(ameir_arch_preset(&a, ctx, "sasrec", NULL));
  T_OK(ameir_arch_to_string(a, &s));
  T_ASSERT(!strstr(s, "cloze"));
  ameir_free(s);
  ameir_arch_free(a);
  struct { const char *arch; int ctr; const char *expect; } cases[] = {
      {"blocks: (sa2, gelu, ln)\nreadout: field\nmlp: (8, relu)\ncloze: 0.2\n", 1, "retrieval"},
      {"blocks: (sa2, gelu, ln)\nreadout: sum\ncloze: 0.2\n", 0, "'last'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ameir_dataset *ds = cases[i].ctr ? synth_dataset(ctx, 100, 3, 10, 0, 0, 3) : synth_retrieval(ctx, 20, 12, 5, 3);
    T_OK(ameir_arch_parse(&a, ctx, cases[i].arch));
    ameir_model *m = NULL;
    T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
    T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), cases[i].expect), "%s", ameir_context_last_error(ctx));
    T_ASSERT(m == NULL);
    ameir_arch_free(a);
    synth_free(ds);
  }
  ameir_dataset *ds = synth_retrieval(ctx, 20, 12, 5, 3);
  ameir_model *m = make(ctx, ds, ARCH "cloze: 0.2\n", "4");
  T_OK(ameir_model_set_option(m, "positives", "2"));
  T_ASSERT_EQ_INT(ameir_model_train(m, ds), AMEIR_EINVAL);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "positives"), "%s", ameir_context_last_error(ctx));
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}
