/* The CPU backend's GEMM next to OpenBLAS's sgemm on the shapes the models run, in GFLOP/s:
 * C[m, n] = A[m, k] B[n, k]^T (the layers' forward), which the backend sends to its own
 * AVX-512 kernel when op(B) is narrow (src/cpu/cpu_blas.c, "skinny GEMM") and to sgemm
 * otherwise. The figures behind that choice; rerun them on another CPU before moving its
 * thresholds.
 *
 *   make build/gemm_bench && build/gemm_bench [threads] [M N K ...]
 *
 * Without shapes: DIN's local activation unit (n 80 then 40, rows = batch x history), a
 * self-attention block's projections at width 16, narrow MLP layers, and long sums that stay
 * on sgemm. Each figure is the best of 3 timings of at least 0.2 s each. Links
 * the static library (the backend's vtable is internal). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ameir/ameir.h"
#include "core/base/base.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* best GFLOP/s of 3 timings of at least 0.2 s each; own: through the backend (a refused shape
 * is reported and ends the program), else cblas_sgemm */
static double rate(const ameir_context *ctx, int own, long m, long n, long k, const float *a,
                   const float *b, float *c) {
  double flop = 2.0 * (double)m * (double)n * (double)k, best = 0;
  for (int t = 0; t < 3; t++) {
    long reps = 0;
    double t0 = now(), dt;
    do {
      if (own) {
        if (ctx->ops->gemm(ctx->bstate, 0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n)) {
          fprintf(stderr, "gemm_bench: %s\n", ameir_context_last_error(ctx));
          exit(1);
        }
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a,
                    (int)k, b, (int)k, 0.0f, c, (int)n);
      }
      reps++;
      dt = now() - t0;
    } while (dt < 0.2);
    double g = flop * (double)reps / dt / 1e9;
    if (g > best) best = g;
  }
  return best;
}

int main(int argc, char **argv) {
  static const long shapes[][3] = {{405000, 80, 32}, {405000, 40, 80}, {405000, 16, 16},
                                   {405000, 48, 16}, {8100, 80, 200},  {4096, 64, 256},
                                   {50, 80, 32},     {7680, 128, 640}, {4096, 400, 637}};
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cpu") || ameir_context_set_int(ctx, "threads", threads)) {
    fprintf(stderr, "gemm_bench: %s\n", ctx ? ameir_context_last_error(ctx) : ameir_last_error());
    return 1;
  }
  int ns = argc > 2 ? (argc - 2) / 3 : (int)(sizeof shapes / sizeof shapes[0]);
  printf("threads %d\n%9s %5s %5s %12s %12s %7s\n", threads, "m", "n", "k", "backend", "sgemm", "ratio");
  for (int s = 0; s < ns; s++) {
    long m = argc > 2 ? atol(argv[2 + 3 * s]) : shapes[s][0];
    long n = argc > 2 ? atol(argv[3 + 3 * s]) : shapes[s][1];
    long k = argc > 2 ? atol(argv[4 + 3 * s]) : shapes[s][2];
    if (m < 1 || n < 1 || k < 1) { fprintf(stderr, "gemm_bench: bad shape\n"); return 2; }
    float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(n * k));
    float *c = malloc(sizeof(float) * (size_t)(m * n));
    if (!a || !b || !c) { fprintf(stderr, "gemm_bench: out of memory\n"); return 1; }
    for (long i = 0; i < m * k; i++) a[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (long i = 0; i < n * k; i++) b[i] = (float)(i % 5) * 0.1f - 0.2f;
    double own = rate(ctx, 1, m, n, k, a, b, c), ref = rate(ctx, 0, m, n, k, a, b, c);
    printf("%9ld %5ld %5ld %12.1f %12.1f %6.2fx\n", m, n, k, own, ref, own / ref);
    free(a), free(b), free(c);
  }
  ameir_context_free(ctx);
  return 0;
}
