/* Device check: one model on the CUDA backend serves predictions from several host threads at
 * once (the module's lock and per-call workspaces, src/cuda/cu.h), with the same scores as one
 * thread, and the pipelined scoring (src/core/train/trainer.c) gives the same scores as batch
 * by batch. Run where a GPU is (tests/gpu/run.sh); not part of `make test`:
 *
 *   build/gpu/threads [MODULE_PATH]     (default lib/libameir_cuda.so)
 *
 * With build/shadow/libameir_cuda.so it rehearses on any machine. Prints one line per check and
 * "N passed, N failed" last; exit 0 when all passed, 77 when no device answers (skip). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ameir/ameir.h"
#include "../model/synth.h"

enum { THREADS = 4, ROUNDS = 3 };

static int g_pass, g_fail;

static void check(int ok, const char *what, const char *detail) {
  if (ok) g_pass++;
  else g_fail++;
  printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail && *detail ? ": " : "", detail ? detail : "");
}

typedef struct {
  const ameir_model *m;
  const ameir_dataset *ds;
  int64_t n;
  float *const *ref;   /* per round: one thread's scores for the same calls */
  int mismatches, errors;
  char err[256];
} worker;

/* Round r scores the split in calls of one size (the whole split, 777 rows, single rows for the
 * first 64): the same call on one thread is the reference (a different batch size may round
 * differently, the same call must not). */
static int64_t round_piece(int r, int64_t n) { return r == 0 ? n : r == 1 ? 777 : 1; }
static int64_t round_rows(int r, int64_t n) { return r == 2 && n > 64 ? 64 : n; }

static int score_round(const ameir_model *m, const ameir_dataset *ds, int r, int64_t n, float *out, char *err,
                       size_t err_size) {
  int64_t piece = round_piece(r, n), rows = round_rows(r, n);
  int errors = 0;
  for (int64_t s = 0; s < rows; s += piece) {
    int64_t k = rows - s < piece ? rows - s : piece;
    if (ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, s, k, out + s) && !errors++ && err)
      snprintf(err, err_size, "%s", ameir_last_error());
  }
  return errors;
}

static void *work(void *p) {
  worker *w = p;
  float *out = malloc(sizeof(float) * (size_t)w->n);
  if (!out) {
    w->errors++;
    return NULL;
  }
  for (int r = 0; r < ROUNDS; r++) {   /* the threads' calls of different sizes overlap */
    w->errors += score_round(w->m, w->ds, r, w->n, out, w->errors ? NULL : w->err, sizeof w->err);
    for (int64_t i = 0; i < round_rows(r, w->n); i++) w->mismatches += out[i] != w->ref[r][i];
  }
  free(out);
  return NULL;
}

/* Trains `arch` on ds for one epoch and checks concurrent predictions against serial ones. */
static void run_model(ameir_context *ctx, ameir_dataset *ds, const char *name, const char *arch_text) {
  char what[128], detail[512];
  ameir_arch *a = NULL;
  ameir_model *m = NULL;
  if (ameir_arch_parse(&a, ctx, arch_text) || ameir_model_create(&m, ctx, a, ds)) {
    snprintf(what, sizeof what, "%s: create", name);
    check(0, what, ameir_context_last_error(ctx));
    ameir_arch_free(a);
    return;
  }
  ameir_arch_free(a);
  const char *opts[][2] = {{"emb", "16"}, {"epochs", "1"}, {"batch", "256"}, {"eval_batch", "512"}};
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) ameir_model_set_option(m, opts[i][0], opts[i][1]);
  snprintf(what, sizeof what, "%s: train one epoch", name);
  if (ameir_model_train(m, ds)) {
    check(0, what, ameir_context_last_error(ctx));
    ameir_model_free(m);
    return;
  }
  check(1, what, NULL);
  int64_t n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  float *ref = malloc(sizeof(float) * (size_t)n), *one = malloc(sizeof(float) * (size_t)n);
  /* pipelined (eval_batch 512: several batches in one call) against batch by batch */
  int st = ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n, ref);
  for (int64_t s = 0; !st && s < n; s += 512)
    st = ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, s, n - s < 512 ? n - s : 512, one + s);
  int64_t diff = 0;
  for (int64_t i = 0; !st && i < n; i++) diff += ref[i] != one[i];
  snprintf(what, sizeof what, "%s: pipelined scores equal batch by batch", name);
  snprintf(detail, sizeof detail, "%lld rows, %lld differ%s%s", (long long)n, (long long)diff, st ? "; " : "",
           st ? ameir_context_last_error(ctx) : "");
  check(!st && diff == 0, what, detail);
  float *refs[ROUNDS] = {ref, NULL, NULL};
  for (int r = 1; r < ROUNDS; r++) {
    refs[r] = malloc(sizeof(float) * (size_t)n);
    st |= score_round(m, ds, r, n, refs[r], NULL, 0);
  }
  snprintf(what, sizeof what, "%s: one thread, calls of 777 rows and of one row", name);
  check(!st, what, st ? ameir_context_last_error(ctx) : NULL);
  worker w[THREADS];
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) {
    w[t] = (worker){m, ds, n, refs, 0, 0, ""};
    pthread_create(&th[t], NULL, work, &w[t]);
  }
  int mism = 0, errs = 0;
  const char *first = "";
  for (int t = 0; t < THREADS; t++) {
    pthread_join(th[t], NULL);
    mism += w[t].mismatches;
    errs += w[t].errors;
    if (w[t].errors && !*first) first = w[t].err;
  }
  snprintf(what, sizeof what, "%s: %d threads x %d rounds of predict_split match one thread", name, THREADS, ROUNDS);
  snprintf(detail, sizeof detail, "%d scores differ, %d calls failed%s%s", mism, errs, *first ? ": " : "", first);
  check(mism == 0 && errs == 0, what, detail);
  for (int r = 0; r < ROUNDS; r++) free(refs[r]);
  free(one);
  ameir_model_free(m);
}

int main(int argc, char **argv) {
  const char *module = argc > 1 ? argv[1] : "lib/libameir_cuda.so";
  setenv("AMEIR_BACKEND_PATH", module, 1);
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cuda")) {
    printf("skip: no CUDA backend here (%s)\n0 passed, 0 failed\n", ameir_last_error());
    return 77;
  }
  ameir_context_set_int(ctx, "threads", 2);
  ameir_dataset *ds = synth_dataset(ctx, 20000, 6, 200, 1, 2, 41);
  run_model(ctx, ds, "deepfm", "mlp: (64, relu) (32, relu)\nextras: linear fm\n");
  run_model(ctx, ds, "backbone", "interactions: (C0, C1) (C1, C2, C3)\nmlp: (32, dice) (16, swish)\nshortcut: se\n");
  run_model(ctx, ds, "towers", "mlp: (32, relu)\ncross: 2\ncin: 16 8\nextras: linear\n");
  synth_free(ds);
  ameir_dataset *sq = synth_seq_dataset(ctx, 8000, 3, 50, 12, 0, 42);
  run_model(ctx, sq, "blocks", "blocks: (conv3, relu, ln) (sa2, gelu, none) (gru, identity, ln)\n"
                               "readout: sum last att\nmlp: (32, relu)\nshortcut: se\n");
  synth_free(sq);
  ameir_context_free(ctx);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
