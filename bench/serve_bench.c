/* Serving figures of a trained model: single-row latency (p50, p99) and batch throughput of
 * ameir_model_predict_split over the test split of a dataset.
 *
 *   cc -O2 bench/serve_bench.c -Iinclude -Llib -lameir -o build/serve_bench
 *   build/serve_bench MODEL CONFIG.yaml [threads]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ameir/ameir.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: serve_bench MODEL CONFIG.yaml [threads]\n"); return 2; }
  ameir_context *ctx = NULL;
  ameir_model *m = NULL;
  ameir_dataset *ds = NULL;
  if (ameir_context_create(&ctx, "cpu") || (argc > 3 && ameir_context_set_int(ctx, "threads", atoi(argv[3]))) ||
      ameir_model_load(&m, ctx, argv[1]) || ameir_dataset_open(&ds, ctx, argv[2])) {
    fprintf(stderr, "serve_bench: %s\n", ctx ? ameir_context_last_error(ctx) : ameir_last_error());
    return 1;
  }
  int64_t n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  int64_t reps = n < 2000 ? n : 2000;
  double *lat = malloc(sizeof(double) * (size_t)reps);
  float *out = malloc(sizeof(float) * (size_t)n);
  float one;
  for (int64_t i = 0; i < 50 && i < n; i++) ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, i, 1, &one);   /* warm-up */
  for (int64_t i = 0; i < reps; i++) {
    double t0 = now();
    if (ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, i, 1, &one)) { fprintf(stderr, "%s\n", ameir_context_last_error(ctx)); return 1; }
    lat[i] = now() - t0;
  }
  qsort(lat, (size_t)reps, sizeof *lat, cmp);
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    if (ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n, out)) { fprintf(stderr, "%s\n", ameir_context_last_error(ctx)); return 1; }
    double t = now() - t0;
    if (t < best) best = t;
  }
  int64_t th = 0;
  ameir_context_get_int(ctx, "threads", &th);
  printf("threads %lld: single row p50 %.1f us, p99 %.1f us (%lld rows); batch %lld rows: %.0f samples/s\n", (long long)th,
         1e6 * lat[reps / 2], 1e6 * lat[reps * 99 / 100], (long long)reps, (long long)n, (double)n / best);
  free(lat);
  free(out);
  ameir_dataset_free(ds);
  ameir_model_free(m);
  ameir_context_free(ctx);
  return 0;
}
