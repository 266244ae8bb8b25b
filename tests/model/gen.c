/* The synthetic dataset with known answers. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"

static char *slurp(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)*n + 1);
  if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) { free(b); b = NULL; }
  fclose(f);
  return b;
}

void test_model_gen__deterministic_loads_and_learns(void) {
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  char d1[600], d2[600], p1[700], p2[700], y[700];
  snprintf(d1, sizeof d1, "%s/a", t_tmpdir());
  snprintf(d2, sizeof d2, "%s/b", t_tmpdir());
  T_OK(ameir_dataset_generate(ctx, d1, 20000, 9));
  T_OK(ameir_dataset_generate(ctx, d2, 20000, 9));
  snprintf(p1, sizeof p1, "%s/synthetic.csv", d1);
  snprintf(p2, sizeof p2, "%s/synthetic.csv", d2);
  long n1 = 0, n2 = 0;
  char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
  T_ASSERT(a && b && n1 == n2 && memcmp(a, b, (size_t)n1) == 0);
  free(a);
  free(b);
  T_ASSERT_EQ_INT(ameir_dataset_generate(ctx, d1, 10, 9), AMEIR_EINVAL);
  snprintf(y, sizeof y, "%s/synthetic.yaml", d1);
  ameir_dataset *ds = NULL;
  T_OK(ameir_dataset_open(&ds, ctx, y));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 20000);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 2000);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 10);
  ameir_arch *arch = NULL;
  T_OK(ameir_arch_preset(&arch, ctx, "deepfm", "32:relu"));
  ameir_model *m = NULL;
  T_OK(ameir_model_create(&m, ctx, arch, ds));
  T_OK(ameir_model_set_option(m, "emb", "8"));
  T_OK(ameir_model_set_option(m, "epochs", "3"));
  T_OK(ameir_model_train(m, ds));
  int32_t id = AMEIR_METRIC_AUC;
  double auc;
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 1, &id, &auc));
  T_ASSERT_MSG(auc > 0.6, "test AUC %.4f on the planted teacher", auc);
  ameir_model_free(m);
  ameir_arch_free(arch);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
}
