/* The smallest complete program over libameir's public API: open a dataset, train the DeepFM
 * baseline on its train split, print the AUC on its test split.
 *
 *   cc predict.c $(pkg-config --cflags --libs ameir) -o predict
 *   ./predict examples/configs/frappe.yaml
 */
#include <stdio.h>

#include <ameir/ameir.h>

static int fail(const char *what, ameir_status st, const ameir_context *ctx) {
  fprintf(stderr, "%s: %s: %s\n", what, ameir_status_str(st),
          ctx ? ameir_context_last_error(ctx) : ameir_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DATASET.yaml\n", argv[0]);
    return 2;
  }
  ameir_context *ctx = NULL;
  ameir_dataset *ds = NULL;
  ameir_arch *arch = NULL;
  ameir_model *model = NULL;
  int rc = 1;
  ameir_status st = ameir_context_create(&ctx, NULL); /* NULL: $AMEIR_BACKEND, else auto */
  if (st != AMEIR_OK) return fail("context", st, NULL);

  if ((st = ameir_dataset_open(&ds, ctx, argv[1])) != AMEIR_OK) {
    rc = fail(argv[1], st, ctx);
  } else if ((st = ameir_arch_preset(&arch, ctx, "deepfm", NULL)) != AMEIR_OK) {
    rc = fail("deepfm", st, ctx);
  } else if ((st = ameir_model_create(&model, ctx, arch, ds)) != AMEIR_OK) {
    rc = fail("model", st, ctx);
  } else if ((st = ameir_model_train(model, ds)) != AMEIR_OK) {
    rc = fail("train", st, ctx);
  } else {
    int32_t ids[1] = {AMEIR_METRIC_AUC};
    double auc = 0;
    st = ameir_model_evaluate(model, ds, AMEIR_SPLIT_TEST, 1, ids, &auc);
    if (st != AMEIR_OK) {
      rc = fail("evaluate", st, ctx);
    } else {
      printf("test AUC %.4f (%lld test rows, backend %s)\n", auc,
             (long long)ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), ameir_context_backend(ctx));
      rc = 0;
    }
  }
  ameir_model_free(model);
  ameir_arch_free(arch);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
  return rc;
}
