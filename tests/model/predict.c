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
