/* Scoring raw files with a saved model: the model carries the dataset config and vocabularies. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  T_ASSERT(f != NULL);
  fputs(text, f);
  fclose(f);
}

void test_model_predict__file_matches_split_and_handles_unseen(void) {
  const char *dir = t_tmpdir();
  char csv[600], yaml[600], mpath[600], raw[600];
  snprintf(csv, sizeof csv, "%s/train.csv", dir);
  snprintf(yaml, sizeof yaml, "%s/c.yaml", dir);
  snprintf(mpath, sizeof mpath, "%s/m.ameir", dir);
  snprintf(raw, sizeof raw, "%s/new.csv", dir);
  FILE *f = fopen(csv, "w");
  T_ASSERT(f != NULL);
  fprintf(f, "label,a,b,x\n");
  for (int i = 0; i < 400; i++) fprintf(f, "%d,a%d,b%d,%d\n", (i % 3 == 0) ^ (i % 7 == 0), i % 5, i % 3, i % 11);
  fclose(f);
  char y[1200];
  snprintf(y, sizeof y,
           "dataset:\n  files: [%s]\n  format: csv\n  header: true\n  label: label\n"
           "  features:\n    - {name: a, type: categorical}\n    - {name: b, type: categorical}\n"
           "    - {name: x, type: numeric, transform: log}\n  split: {method: modulo}\n  cache: false\n", csv);
  write_file(yaml, y);
  /* rows 9 and 19 of the file are the first two test rows; then an unseen value */
  write_file(raw, "label,a,b,x\n0,a4,b0,9\n1,a4,b1,8\n0,zz,b1,3\n");
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  ameir_dataset *ds = NULL;
  T_OK(ameir_dataset_open(&ds, ctx, yaml));
  ameir_arch *a = NULL;
  T_OK(ameir_arch_preset(&a, ctx, "deepfm", "16:relu"));
  ameir_model *m = NULL;
  T_OK(ameir_model_create(&m, ctx, a, ds));
  T_OK(ameir_model_set_option(m, "epochs", "2"));
  T_OK(ameir_model_train(m, ds));
  T_OK(ameir_model_save(m, mpath));
  float want[2];
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, 2, want));
  ameir_model *m2 = NULL;
  T_OK(ameir_model_load(&m2, ctx, mpath));
  float *got = NULL;
  int64_t n = 0;
  T_OK(ameir_model_predict_file(m2, raw, &got, &n));
  T_ASSERT_EQ_INT(n, 3);
  T_ASSERT_NEAR(got[0], want[0], 1e-6);
  T_ASSERT_NEAR(got[1], want[1], 1e-6);
  T_ASSERT(got[2] > 0 && got[2] < 1);   /* 'zz' was never seen: the OOV row scores it */
  ameir_free(got);
  T_ASSERT_EQ_INT(ameir_model_predict_file(m2, "/nonexistent.csv", &got, &n), AMEIR_EIO);
  T_ASSERT(got == NULL);
  write_file(raw, "label,a,b,x\n0,a1,b1,notanumber\n");
  T_ASSERT_EQ_INT(ameir_model_predict_file(m2, raw, &got, &n), AMEIR_EFORMAT);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "new.csv"), "message: %s", ameir_context_last_error(ctx));
  ameir_model_free(m2);
  ameir_model_free(m);
  ameir_arch_free(a);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
}

/* Concurrent predictions on one model give the serial results (each call has its own
 * workspace; the parameters are shared read-only). */
#include <pthread.h>
#include "../model/synth.h"

typedef struct { const ameir_model *m; const ameir_dataset *ds; int64_t first, n; float *out; int rc; } job;

static void *run_job(void *arg) {
  job *j = arg;
  for (int rep = 0; rep < 20 && !j->rc; rep++)
    for (int64_t i = 0; i < j->n && !j->rc; i += 7) {
      int64_t k = j->n - i < 7 ? j->n - i : 7;
      j->rc = ameir_model_predict_split(j->m, j->ds, AMEIR_SPLIT_TEST, j->first + i, k, j->out + i);
    }
  return NULL;
}

static void concurrent(int threads) {
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  ameir_context_set_int(ctx, "threads", threads);
  ameir_dataset *ds = synth_seq_dataset(ctx, 2000, 3, 20, 6, 0, 5);
  ameir_arch *a = NULL;
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (conv3, relu, ln) (sa2, gelu, none)\nreadout: sum last att\ninteractions: (C0, C1)\nmlp: (16, dice)\nshortcut: se\n"));
  ameir_model *m = NULL;
  T_OK(ameir_model_create(&m, ctx, a, ds));
  T_OK(ameir_model_set_option(m, "emb", "4"));
  T_OK(ameir_model_train(m, ds));
  int64_t n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  float *want = malloc(sizeof(float) * (size_t)n), *got = malloc(sizeof(float) * (size_t)n);
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n, want));
  pthread_t th[4];
  job jobs[4];
  for (int t = 0; t < 4; t++) {
    int64_t lo = n * t / 4, hi = n * (t + 1) / 4;
    jobs[t] = (job){m, ds, lo, hi - lo, got + lo, 0};
    T_ASSERT(pthread_create(&th[t], NULL, run_job, &jobs[t]) == 0);
  }
  for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < 4; t++) T_ASSERT_EQ_INT(jobs[t].rc, 0);
  for (int64_t i = 0; i < n; i++) T_ASSERT_NEAR(got[i], want[i], 1e-5);
  free(want);
  free(got);
  ameir_model_free(m);
  ameir_arch_free(a);
  synth_free(ds);
  ameir_context_free(ctx);
}

void test_model_predict__concurrent_calls_match_serial(void) {
  concurrent(1);
  concurrent(2);   /* each call's OpenMP team and BLAS calls run side by side */
}
