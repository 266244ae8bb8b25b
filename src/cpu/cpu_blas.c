/* The CPU backend: dense linear algebra (OpenBLAS sgemm, a small-matrix batched kernel) and the
 * simple dense helpers (bias, copies, axpby, sum of squares). */
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <string.h>

#include "cpu.h"

/* Batched GEMMs whose matrices have at most this many multiply-adds run one batch per thread
 * (single-threaded sgemm, or the own kernel where sgemm cannot nest); larger ones call the
 * (threaded) sgemm once per batch. */
#define GEMM_SMALL_MNK (1 << 18)
/* column block of the small kernel (accumulators live on the stack) */
#define GEMM_NB 64

static int32_t gemm_check(cpu_state *st, const char *op, int32_t ta, int32_t tb, int64_t m,
                          int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  int64_t acols = ta ? m : k, bcols = tb ? k : n;
  if (m < 0 || n < 0 || k < 0 || m > INT_MAX || n > INT_MAX || k > INT_MAX)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: bad shape m=%lld n=%lld k=%lld", op,
                        (long long)m, (long long)n, (long long)k);
  if (lda < (acols > 1 ? acols : 1) || ldb < (bcols > 1 ? bcols : 1) || ldc < (n > 1 ? n : 1) ||
      lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
    return ameir__error(st->ctx, AMEIR_EINVAL,
                        "cpu %s: bad leading dimension lda=%lld ldb=%lld ldc=%lld for "
                        "m=%lld n=%lld k=%lld trans=%d,%d",
                        op, (long long)lda, (long long)ldb, (long long)ldc, (long long)m,
                        (long long)n, (long long)k, (int)ta, (int)tb);
  return 0;
}

/* C = beta * C (k == 0 or alpha == 0 without reading A, B); beta == 0 writes zeros. */
static void scale_c(float *c, int64_t ldc, int64_t m, int64_t n, float beta) {
  for (int64_t i = 0; i < m; i++) {
    float *r = c + i * ldc;
    if (beta == 0.0f) memset(r, 0, (size_t)n * sizeof(float));
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; j++) r[j] *= beta;
  }
}

int32_t ameir__cpu_gemm(void *s, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float beta, float *c, int64_t ldc) {
  cpu_state *st = s;
  int32_t rc = gemm_check(st, "gemm", ta, tb, m, n, k, lda, ldb, ldc);
  if (rc) return rc;
  if (m == 0 || n == 0) return 0;
  if (k == 0 || alpha == 0.0f) {
    scale_c(c, ldc, m, n, beta);
    return 0;
  }
  /* Degenerate shapes the model uses every step (the output layer): OpenBLAS's sgemm spends
   * far more on packing than on arithmetic there, so they get their own paths. */
  if (k == 1) {   /* rank-1 update: C = alpha * a b^T + beta * C */
    const int64_t sa = ta ? 1 : lda, sb = tb ? ldb : 1;
#pragma omp parallel for num_threads(st->threads) schedule(static) if (m * n > 32768)
    for (int64_t i = 0; i < m; i++) {
      float ai = alpha * a[i * sa];
      float *ci = c + i * ldc;
      if (beta == 0.0f) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) ci[j] = ai * b[j * sb];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) ci[j] = ai * b[j * sb] + beta * ci[j];
      }
    }
    return 0;
  }
  if (n == 1) {   /* c[:, 0] = alpha * op(A) b + beta * c */
    if (ldc == 1)
      cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? (int)k : (int)m, ta ? (int)m : (int)k,
                  alpha, a, (int)lda, b, tb ? 1 : (int)ldb, beta, c, 1);
    else
      cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? (int)k : (int)m, ta ? (int)m : (int)k,
                  alpha, a, (int)lda, b, tb ? 1 : (int)ldb, beta, c, (int)ldc);
    return 0;
  }
  if (m == 1) {   /* c[0, :] = alpha * op(B)^T a + beta * c */
    cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? (int)n : (int)k, tb ? (int)k : (int)n,
                alpha, b, (int)ldb, a, ta ? (int)lda : 1, beta, c, 1);
    return 0;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
  return 0;
}

/* One C row block: rows i0..i0+R-1 (R <= 4) of C[:, j0:j0+nb] = alpha * opA * Bp + beta * C,
 * where Bp is op(B) stored row-major [k, *] with stride ldbp. The k loop is outermost per row
 * so each accumulator is summed in ascending p: the result is independent of blocking. */
static void gemm_small_rows(int32_t ta, int64_t i0, int64_t rows, int64_t j0, int64_t nb,
                            int64_t k, float alpha, const float *a, int64_t lda, const float *bp,
                            int64_t ldbp, float beta, float *c, int64_t ldc) {
  float acc[4][GEMM_NB];
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < nb; j++) acc[r][j] = 0.0f;
  for (int64_t p = 0; p < k; p++) {
    const float *br = bp + p * ldbp + j0;
    for (int64_t r = 0; r < rows; r++) {
      float av = ta ? a[p * lda + i0 + r] : a[(i0 + r) * lda + p];
#pragma omp simd
      for (int64_t j = 0; j < nb; j++) acc[r][j] += av * br[j];
    }
  }
  for (int64_t r = 0; r < rows; r++) {
    float *cr = c + (i0 + r) * ldc + j0;
    if (beta == 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < nb; j++) cr[j] = alpha * acc[r][j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < nb; j++) cr[j] = alpha * acc[r][j] + beta * cr[j];
    }
  }
}

/* Single-threaded GEMM for small matrices; pack: k*n floats when tb. */
static void gemm_small(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                       float *c, int64_t ldc, float *pack) {
  const float *bp = b;
  int64_t ldbp = ldb;
  if (tb) {   /* op(B)[p, j] = B[j, p]: transpose into a contiguous [k, n] */
    for (int64_t j = 0; j < n; j++)
      for (int64_t p = 0; p < k; p++) pack[p * n + j] = b[j * ldb + p];
    bp = pack;
    ldbp = n;
  }
  for (int64_t j0 = 0; j0 < n; j0 += GEMM_NB) {
    int64_t nb = n - j0 < GEMM_NB ? n - j0 : GEMM_NB;
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
      int64_t rows = m - i0 < 4 ? m - i0 : 4;
      gemm_small_rows(ta, i0, rows, j0, nb, k, alpha, a, lda, bp, ldbp, beta, c, ldc);
    }
  }
}

int32_t ameir__cpu_gemm_strided_batched(void *s, int32_t ta, int32_t tb, int64_t m, int64_t n,
                                        int64_t k, float alpha, const float *a, int64_t lda,
                                        int64_t sa, const float *b, int64_t ldb, int64_t sb,
                                        float beta, float *c, int64_t ldc, int64_t sc,
                                        int64_t batch) {
  cpu_state *st = s;
  int32_t rc = gemm_check(st, "gemm_strided_batched", ta, tb, m, n, k, lda, ldb, ldc);
  if (rc) return rc;
  if (batch < 0)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu gemm_strided_batched: batch_count %lld < 0",
                        (long long)batch);
  if (m == 0 || n == 0 || batch == 0) return 0;
  if (k == 0 || alpha == 0.0f) {
    int nt = cpu_nt(st, m * n * batch);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < batch; i++) scale_c(c + i * sc, ldc, m, n, beta);
    return 0;
  }
  if (batch == 1 || m * n * k > GEMM_SMALL_MNK) {
    /* sequential over batches, each sgemm threaded by OpenBLAS */
    for (int64_t i = 0; i < batch; i++)
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                  (int)m, (int)n, (int)k, alpha, a + i * sa, (int)lda, b + i * sb, (int)ldb, beta,
                  c + i * sc, (int)ldc);
    return 0;
  }
  /* small matrices: one batch per iteration of a parallel loop, single-threaded kernel */
  int nt = cpu_nt(st, m * n * k * batch / 8);
  if (nt > batch) nt = (int)batch;
  if (st->blas_nested) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < batch; i++)
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                  (int)m, (int)n, (int)k, alpha, a + i * sa, (int)lda, b + i * sb, (int)ldb, beta,
                  c + i * sc, (int)ldc);
    return 0;
  }
  float *pack = NULL;
  if (tb) {
    pack = cpu_scratch_get(st, (size_t)nt * (size_t)(k * n) * sizeof(float));
    if (!pack) return cpu_scratch_status();
  }
#pragma omp parallel num_threads(nt)
  {
    float *mypack = pack ? pack + (size_t)omp_get_thread_num() * (size_t)(k * n) : NULL;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < batch; i++)
      gemm_small(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc,
                 mypack);
  }
  cpu_scratch_put(st, pack);
  return 0;
}

int32_t ameir__cpu_add_bias(void *s, float *y, int64_t ldy, const float *bias, int64_t m,
                            int64_t n) {
  cpu_state *st = s;
  int nt = cpu_nt(st, m * n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < m; i++) {
    float *r = y + i * ldy;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) r[j] += bias[j];
  }
  return 0;
}

int32_t ameir__cpu_bias_grad(void *s, const float *dy, int64_t lddy, float *dbias, int64_t m,
                             int64_t n) {
  return cpu_colsum_acc(s, dy, lddy, m, n, dbias);
}

int32_t ameir__cpu_copy2d(void *s, float *dst, int64_t ldd, const float *src, int64_t lds,
                          int64_t m, int64_t n, int32_t accumulate) {
  cpu_state *st = s;
  if (m <= 0 || n <= 0) return 0;
  if (!accumulate && ldd == n && lds == n) {
    if (dst != src) memmove(dst, src, (size_t)(m * n) * sizeof(float));
    return 0;
  }
  int nt = cpu_nt(st, m * n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < m; i++) {
    float *d = dst + i * ldd;
    const float *x = src + i * lds;
    if (accumulate) {
#pragma omp simd
      for (int64_t j = 0; j < n; j++) d[j] += x[j];
    } else {
      memcpy(d, x, (size_t)n * sizeof(float));
    }
  }
  return 0;
}

/* beta == 0 overwrites y without reading it (BLAS convention: y may be uninitialised). */
int32_t ameir__cpu_axpby(void *s, int64_t n, float alpha, const float *x, float beta, float *y) {
  cpu_state *st = s;
  int nt = cpu_nt(st, n);
  if (beta == 0.0f) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i];
  } else {
#pragma omp parallel for simd num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];
  }
  return 0;
}

/* Fixed chunks (a function of n only) summed in order: independent of the thread count. */
int32_t ameir__cpu_sumsq(void *s, const float *x, int64_t n, double *out) {
  cpu_state *st = s;
  enum { MAXC = 64 };
  double part[MAXC];
  int64_t nc = (n + 8191) / 8192;
  if (nc > MAXC) nc = MAXC;
  if (nc < 1) nc = 1;
  int nt = cpu_nt(st, n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < nc; c++) {
    int64_t lo, hi;
    cpu_chunk_range(n, nc, c, &lo, &hi);
    double l[8] = {0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
      for (int j = 0; j < 8; j++) l[j] += (double)x[i + j] * (double)x[i + j];
    double acc = 0.0;
    for (; i < hi; i++) acc += (double)x[i] * (double)x[i];
    for (int j = 0; j < 8; j++) acc += l[j];
    part[c] = acc;
  }
  double tot = 0.0;
  for (int64_t c = 0; c < nc; c++) tot += part[c];
  *out = tot;
  return 0;
}
