/* The CPU backend: dense linear algebra (OpenBLAS sgemm, a small-matrix batched kernel) and the
 * simple dense helpers (bias, copies, axpby, sum of squares). */
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cpu.h"

/* Batched GEMMs whose matrices have at most this many multiply-adds run one batch per thread
 * (single-threaded sgemm, or the own kernel where sgemm cannot nest); larger ones call the
 * (threaded) sgemm once per batch. */
#define GEMM_SMALL_MNK (1 << 18)
/* column block of the small kernel (accumulators live on the stack) */
#define GEMM_NB 64
/* Matrix-vector products (m == 1 or n == 1) of at most this many multiply-adds run in the own
 * kernels below (single-threaded, fixed order): OpenBLAS's sgemv spends more on its call than
 * on them, and above 9216 multiply-adds it starts its threads (an OpenMP region that wakes
 * the other threads), which dominates a single-row prediction at 2 threads. */
#define GEMV_OWN_MAX (1 << 17)
/* stack floats of the kernels (a strided vector copied, the accumulators of the axpy form) */
#define GEMV_BUF 2048

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

/* rows [lo, hi) of C = alpha * a b^T + beta * C (k == 1) */
static void gemm_rank1_rows(const float *a, int64_t sa, const float *b, int64_t sb, float alpha,
                            float beta, float *c, int64_t ldc, int64_t n, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
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
}

/* ---- matrix-vector kernels ----
 * dot form: y[j] = alpha * (x . R_j) (+ beta * y[j]) over rows R_j = r + j * ldr, x and the rows
 * contiguous. Each dot keeps 16 lanes, lane q summing the products of p = q mod 16 in
 * ascending p (the last block padded with zero products), and adds them as a tree: lane q and
 * q + 8, then q and q + 4, q and q + 2, 0 and 1 (a few shuffles with wide registers instead of
 * a chain of 16 scalar adds per output).
 * axpy form: y[j] = alpha * sum_p x[p * sx] R[p * ldr + j] (+ beta * y[j]) with the sum over p
 * in ascending order for every j (one lane per column). */
static float gemv_lanes_dot(const float *x, const float *y, int64_t k) {
  float l[16] = {0};
  int64_t p = 0;
  for (; p + 16 <= k; p += 16)
    for (int q = 0; q < 16; q++) l[q] += x[p + q] * y[p + q];
  if (p < k)
    for (int q = 0; q < 16; q++) l[q] += p + q < k ? x[p + q] * y[p + q] : 0.0f;
  for (int q = 0; q < 8; q++) l[q] += l[q + 8];
  for (int q = 0; q < 4; q++) l[q] += l[q + 4];
  for (int q = 0; q < 2; q++) l[q] += l[q + 2];
  return l[0] + l[1];
}

static void gemv_dot_def(int64_t n, int64_t k, float alpha, const float *x, const float *r,
                         int64_t ldr, float beta, float *y, int64_t incy) {
  for (int64_t j = 0; j < n; j++) {
    float dj = gemv_lanes_dot(x, r + j * ldr, k);
    y[j * incy] = beta == 0.0f ? alpha * dj : alpha * dj + beta * y[j * incy];
  }
}

CPU_ALWAYS_INLINE void gemv_axpy_body(int64_t n, int64_t k, float alpha, const float *x,
                                      int64_t sx, const float *r, int64_t ldr, float beta,
                                      float *y, int64_t incy, float *acc) {
  for (int64_t j0 = 0; j0 < n; j0 += GEMV_BUF) {
    int64_t nb = n - j0 < GEMV_BUF ? n - j0 : GEMV_BUF;
    for (int64_t j = 0; j < nb; j++) acc[j] = 0.0f;
    for (int64_t p = 0; p < k; p++) {
      float xp = x[p * sx];
      const float *rp = r + p * ldr + j0;
#pragma omp simd
      for (int64_t j = 0; j < nb; j++) acc[j] += xp * rp[j];
    }
    float *yb = y + j0 * incy;
    if (beta == 0.0f) {
      for (int64_t j = 0; j < nb; j++) yb[j * incy] = alpha * acc[j];
    } else {
      for (int64_t j = 0; j < nb; j++) yb[j * incy] = alpha * acc[j] + beta * yb[j * incy];
    }
  }
}

static void gemv_axpy_def(int64_t n, int64_t k, float alpha, const float *x, int64_t sx,
                          const float *r, int64_t ldr, float beta, float *y, int64_t incy,
                          float *acc) {
  gemv_axpy_body(n, k, alpha, x, sx, r, ldr, beta, y, incy, acc);
}

#if CPU_X86_AVX512
typedef float gemv_v16 __attribute__((vector_size(64)));
typedef float gemv_v8 __attribute__((vector_size(32)));
typedef float gemv_v4 __attribute__((vector_size(16)));
typedef float gemv_v2 __attribute__((vector_size(8)));

/* the 16 lanes of x . y over k = 16 nb + rem (rem < 16 zero-padded) */
CPU_AVX512_FN static inline __attribute__((always_inline)) float gemv_tree_512(gemv_v16 l) {
  gemv_v8 h8 = __builtin_shufflevector(l, l, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(l, l, 8, 9, 10, 11, 12, 13, 14, 15);
  gemv_v4 h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) +
               __builtin_shufflevector(h8, h8, 4, 5, 6, 7);
  gemv_v2 h2 = __builtin_shufflevector(h4, h4, 0, 1) + __builtin_shufflevector(h4, h4, 2, 3);
  return h2[0] + h2[1];
}

CPU_AVX512_FN static void gemv_dot_512(int64_t n, int64_t k, float alpha, const float *x,
                                       const float *r, int64_t ldr, float beta, float *y,
                                       int64_t incy) {
  int64_t kb = k & ~(int64_t)15, rem = k - kb;
  gemv_v16 xt = {0};   /* x's last partial block, zero-padded */
  if (rem) memcpy(&xt, x + kb, (size_t)rem * sizeof(float));
  int64_t j = 0;
  for (; j < n; j += 4) {
    int64_t nj = n - j < 4 ? n - j : 4;
    gemv_v16 l[4] = {{0}, {0}, {0}, {0}};
    const float *rj[4];
    for (int u = 0; u < 4; u++) rj[u] = r + (j + (u < nj ? u : 0)) * ldr;
    for (int64_t p = 0; p < kb; p += 16) {
      gemv_v16 xv;
      memcpy(&xv, x + p, sizeof xv);
#pragma GCC unroll 4
      for (int u = 0; u < 4; u++) {
        gemv_v16 rv;
        memcpy(&rv, rj[u] + p, sizeof rv);
        l[u] += xv * rv;
      }
    }
    if (rem) {   /* a masked load: the zero-padded block without a call (short rows: k = 26) */
      __mmask16 mk = (__mmask16)((1u << rem) - 1u);
      for (int u = 0; u < 4; u++) {
        gemv_v16 rv = (gemv_v16)_mm512_maskz_loadu_ps(mk, rj[u] + kb);
        l[u] += xt * rv;
      }
    }
    for (int u = 0; u < nj; u++) {
      float dj = gemv_tree_512(l[u]);
      float *yj = y + (j + u) * incy;
      *yj = beta == 0.0f ? alpha * dj : alpha * dj + beta * *yj;
    }
  }
}

CPU_AVX512_FN static void gemv_axpy_512(int64_t n, int64_t k, float alpha, const float *x,
                                        int64_t sx, const float *r, int64_t ldr, float beta,
                                        float *y, int64_t incy, float *acc) {
  gemv_axpy_body(n, k, alpha, x, sx, r, ldr, beta, y, incy, acc);
}
#endif

/* The dot form with x at stride sx (copied when not contiguous): 0, or -1 when x does not fit
 * the stack buffer (the caller takes sgemv). */
static int gemv_dot(int64_t n, int64_t k, float alpha, const float *x, int64_t sx,
                    const float *r, int64_t ldr, float beta, float *y, int64_t incy) {
  float xb[GEMV_BUF];
  if (sx != 1) {
    if (k > GEMV_BUF) return -1;
    for (int64_t p = 0; p < k; p++) xb[p] = x[p * sx];
    x = xb;
  }
#if CPU_X86_AVX512
  if (k >= 1 && cpu_avx512()) {   /* short rows too: one masked block (same lanes, same bits) */
    gemv_dot_512(n, k, alpha, x, r, ldr, beta, y, incy);
    return 0;
  }
#endif
  gemv_dot_def(n, k, alpha, x, r, ldr, beta, y, incy);
  return 0;
}

static void gemv_axpy(int64_t n, int64_t k, float alpha, const float *x, int64_t sx,
                      const float *r, int64_t ldr, float beta, float *y, int64_t incy) {
  float acc[GEMV_BUF];
#if CPU_X86_AVX512
  if (n >= 16 && cpu_avx512()) {
    gemv_axpy_512(n, k, alpha, x, sx, r, ldr, beta, y, incy, acc);
    return;
  }
#endif
  gemv_axpy_def(n, k, alpha, x, sx, r, ldr, beta, y, incy, acc);
}

/* ---- skinny GEMM: A row-major with many rows, op(B) narrow ----
 * C[m, n] = alpha A op(B) + beta C with A not transposed and n <= SKINNY_NMAX: the per-row
 * projections of the attention units (DIN's local activation unit: rows = batch x history,
 * n = 80 then 40, k = 32 then 80) and narrow layers. OpenBLAS's sgemm copies all of A into its
 * panels for these (its copy routine took 18 % of DIN's inference, its kernel 39 %) and its
 * threads split them poorly; here only op(B) is packed, by each thread into a buffer on its
 * own stack ([kc, np]: np = n rounded up to 16 with zero columns, kc rows of p at a time), and
 * A is read in place, R rows at a time with all their outputs in registers.
 * Every output is one FMA chain in ascending p: between two chunks of p the partial sum is
 * parked in C as a float and reloaded, which is exact, so the result does not depend on the
 * chunking, the blocking or the thread count (like sgemm's, it is not the bits of a build or a
 * machine without AVX-512, which take sgemm). No heap: a prediction from a caller's workspace
 * stays allocation-free, and a kernel that holds the backend's scratch can call it. */
#define SKINNY_NMAX 128
#define SKINNY_MMIN 128   /* fewer rows: packing op(B) costs more than sgemm (DIN single row, m = history length) */
#define SKINNY_PACK 8192   /* floats of a thread's packed op(B) chunk: 32 KB of stack (16 KB
                              cost 10-25 % on 2-chunk shapes such as 8100 x 80 x 200) */

#if CPU_X86_AVX512
/* rows [0, rows) (rows <= R) of C over the chunk p0 .. p0 + kk of the sum (a and bp start at
 * p0): R * NV accumulators, NV B vectors and one broadcast live in the 32 registers. The first
 * chunk starts from 0, a later one from the partial sum in C; the last applies alpha and beta
 * (beta != 0 only with a single chunk: the caller sees to it). A short block repeats its last
 * row (computed, not stored). */
CPU_AVX512_FN static inline __attribute__((always_inline)) void
skinny_block(const int NV, const int R, int64_t rows, int64_t kk, const float *a, int64_t lda,
             const float *bp, int64_t np, int first, int last, float alpha, float beta, float *c,
             int64_t ldc, int64_t n) {
  __m512 acc[8][8];
  const float *ar[8];
  __mmask16 mk[8];
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) {
    int64_t left = n - 16 * v;
    mk[v] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
  }
#pragma GCC unroll 8
  for (int u = 0; u < R; u++) {
    int64_t uu = u < rows ? u : rows - 1;
    ar[u] = a + uu * lda;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      acc[u][v] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mk[v], c + uu * ldc + 16 * v);
  }
  for (int64_t p = 0; p < kk; p++) {
    const float *bq = bp + p * np;
    __m512 bv[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) bv[v] = _mm512_load_ps(bq + 16 * v);
#pragma GCC unroll 8
    for (int u = 0; u < R; u++) {
      __m512 av = _mm512_set1_ps(ar[u][p]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[u][v] = _mm512_fmadd_ps(av, bv[v], acc[u][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
  for (int u = 0; u < R; u++) {
    if (u >= rows) break;
    float *cr = c + u * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      __m512 r = acc[u][v];
      if (last && alpha != 1.0f) r = _mm512_mul_ps(va, r);
      if (last && beta != 0.0f) r = _mm512_add_ps(r, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(mk[v], cr + 16 * v)));
      _mm512_mask_storeu_ps(cr + 16 * v, mk[v], r);
    }
  }
}

/* the register blocking per width: R NV accumulators + NV B vectors + 1 broadcast <= 32
 * registers, R <= 8 */
#define SKINNY_R(NV) ((NV) <= 3 ? 8 : (31 - (NV)) / (NV))

/* row blocks [lo, hi) of R(nv) rows each, the whole sum in chunks of kc rows of op(B) */
CPU_AVX512_FN static void skinny_blocks(int64_t nv, int64_t lo, int64_t hi, int64_t m, int64_t n,
                                        int64_t k, int64_t kc, float alpha, const float *a,
                                        int64_t lda, int32_t tb, const float *b, int64_t ldb,
                                        float beta, float *c, int64_t ldc) {
  float pack[SKINNY_PACK] __attribute__((aligned(64)));
  int64_t np = 16 * nv;
  for (int64_t p0 = 0; p0 < k; p0 += kc) {
    int64_t kk = k - p0 < kc ? k - p0 : kc;
    for (int64_t p = 0; p < kk; p++) {   /* op(B)[p0 + p, :] */
      float *d = pack + p * np;
      if (tb)
        for (int64_t j = 0; j < n; j++) d[j] = b[j * ldb + p0 + p];
      else
        memcpy(d, b + (p0 + p) * ldb, (size_t)n * sizeof(float));
      for (int64_t j = n; j < np; j++) d[j] = 0.0f;
    }
    int first = p0 == 0, last = p0 + kk == k;
#define SKINNY_CASE(NV)                                                                          \
  case NV:                                                                                       \
    for (int64_t blk = lo; blk < hi; blk++) {                                                    \
      int64_t i0 = blk * SKINNY_R(NV), rows = m - i0 < SKINNY_R(NV) ? m - i0 : SKINNY_R(NV);    \
      skinny_block(NV, SKINNY_R(NV), rows, kk, a + i0 * lda + p0, lda, pack, np, first, last,    \
                   alpha, beta, c + i0 * ldc, ldc, n);                                           \
    }                                                                                            \
    break;
    switch (nv) {
      SKINNY_CASE(1) SKINNY_CASE(2) SKINNY_CASE(3) SKINNY_CASE(4)
      SKINNY_CASE(5) SKINNY_CASE(6) SKINNY_CASE(7) SKINNY_CASE(8)
      default: break;
    }
#undef SKINNY_CASE
  }
}

/* 0 done; -1 not taken (the caller takes sgemm): no AVX-512, a shape it does not serve,
 * beta != 0 with a sum longer than one chunk (C would have to hold the partial sums and the
 * old values at once), or a sum of more than 4 chunks. */
static int gemm_skinny(cpu_state *st, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                       float beta, float *c, int64_t ldc) {
  if (ta || n > SKINNY_NMAX || m < SKINNY_MMIN || !cpu_avx512()) return -1;
  int64_t nv = (n + 15) / 16, kc = SKINNY_PACK / (16 * nv);
  int64_t chunks = (k + kc - 1) / kc;
  /* a long sum re-reads C once a chunk: beyond 4 chunks sgemm is ahead (7680 x 128 x 640:
   * 79 against 57 GFLOP/s on one thread, 141 against 102 on two) */
  if (chunks > 4 || (beta != 0.0f && chunks > 1)) return -1;
  int64_t r = SKINNY_R(nv), nblk = (m + r - 1) / r;
  /* a second thread from 4 x CPU_PAR_MIN multiply-adds: below, waking it costs more */
  int nt = cpu_nt_items(st, m * n * k / 4, nblk);
  CPU_PAR_RANGE(nt, nblk, lo, hi, tid,
                skinny_blocks(nv, lo, hi, m, n, k, kc, alpha, a, lda, tb, b, ldb, beta, c, ldc));
  return 0;
}
#endif

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
    int nt = m * n > 32768 ? st->threads : 1;
    CPU_PAR_RANGE(nt, m, lo, hi, tid,
                  gemm_rank1_rows(a, sa, b, sb, alpha, beta, c, ldc, n, lo, hi));
    return 0;
  }
  if (n == 1 && !ta && (tb || ldb == 1 || k <= GEMV_BUF)) {
    /* c[:, 0] = alpha * A b + beta * c (the output layer, the first-order term's sum over the
     * fields): rows of A against b (stride tb ? 1 : ldb), row-parallel above GEMV_OWN_MAX, each
     * output computed by one thread in a fixed order, so the bits do not depend on the thread
     * count (sgemv's do) */
    int nt = m * k > GEMV_OWN_MAX ? cpu_nt_items(st, m * k, m) : 1;
    CPU_PAR_RANGE(nt, m, lo, hi, tid,
                  gemv_dot(hi - lo, k, alpha, b, tb ? 1 : ldb, a + lo * lda, lda, beta, c + lo * ldc, ldc));
    return 0;
  }
  if (n == 1 && ta && m * k <= GEMV_OWN_MAX) {   /* op(A)[i, p] = A[p, i]: columns of A weighted by b */
    gemv_axpy(m, k, alpha, b, tb ? 1 : ldb, a, lda, beta, c, ldc);
    return 0;
  }
  if (m == 1 && n * k <= GEMV_OWN_MAX) {   /* c[0, :] = alpha * a op(B) + beta * c */
    if (tb) {   /* rows of B against a (stride ta ? lda : 1) */
      if (!gemv_dot(n, k, alpha, a, ta ? lda : 1, b, ldb, beta, c, 1)) return 0;
    } else {    /* rows of B weighted by a */
      gemv_axpy(n, k, alpha, a, ta ? lda : 1, b, ldb, beta, c, 1);
      return 0;
    }
  }
  if (n == 1) {   /* c[:, 0] = alpha * op(A) b + beta * c: what the own kernels above leave */
    cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? (int)k : (int)m, ta ? (int)m : (int)k,
                alpha, a, (int)lda, b, tb ? 1 : (int)ldb, beta, c, (int)ldc);
    return 0;
  }
  if (m == 1) {   /* c[0, :] = alpha * op(B)^T a + beta * c */
    cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? (int)n : (int)k, tb ? (int)k : (int)n,
                alpha, b, (int)ldb, a, ta ? (int)lda : 1, beta, c, 1);
    return 0;
  }
#if CPU_X86_AVX512
  if (!gemm_skinny(st, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return 0;
#endif
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
    int nt = cpu_nt_items(st, m * n * batch, batch);
    CPU_PAR_RANGE(nt, batch, lo, hi, tid,
                  for (int64_t i = lo; i < hi; i++) scale_c(c + i * sc, ldc, m, n, beta));
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
    CPU_PAR_RANGE(nt, batch, lo, hi, tid,
                  for (int64_t i = lo; i < hi; i++) cblas_sgemm(
                      CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                      (int)m, (int)n, (int)k, alpha, a + i * sa, (int)lda, b + i * sb, (int)ldb,
                      beta, c + i * sc, (int)ldc));
    return 0;
  }
  float *pack = NULL;
  if (tb) {
    pack = cpu_scratch_get(st, (size_t)nt * (size_t)(k * n) * sizeof(float));
    if (!pack) return cpu_scratch_status();
  }
  CPU_PAR_RANGE(nt, batch, lo, hi, tid,
                for (int64_t i = lo; i < hi; i++) gemm_small(
                    ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc,
                    pack ? pack + (size_t)tid * (size_t)(k * n) : NULL));
  cpu_scratch_put(st, pack);
  return 0;
}

static void add_bias_rows(float *y, int64_t ldy, const float *bias, int64_t n, int64_t lo,
                          int64_t hi) {
  if (n == 1) {   /* a column (the output logit) */
    float b0 = bias[0];
    for (int64_t i = lo; i < hi; i++) y[i * ldy] += b0;
    return;
  }
  for (int64_t i = lo; i < hi; i++) {
    float *r = y + i * ldy;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) r[j] += bias[j];
  }
}

int32_t ameir__cpu_add_bias(void *s, float *y, int64_t ldy, const float *bias, int64_t m,
                            int64_t n) {
  cpu_state *st = s;
  int nt = cpu_nt(st, m * n);
  CPU_PAR_RANGE(nt, m, lo, hi, tid, add_bias_rows(y, ldy, bias, n, lo, hi));
  return 0;
}

int32_t ameir__cpu_bias_grad(void *s, const float *dy, int64_t lddy, float *dbias, int64_t m,
                             int64_t n) {
  return cpu_colsum_acc(s, dy, lddy, m, n, dbias);
}

static void copy2d_rows(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t n,
                        int32_t accumulate, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float *d = dst + i * ldd;
    const float *x = src + i * lds;
    if (accumulate) {
#pragma omp simd
      for (int64_t j = 0; j < n; j++) d[j] += x[j];
    } else {
      memcpy(d, x, (size_t)n * sizeof(float));
    }
  }
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
  CPU_PAR_RANGE(nt, m, lo, hi, tid, copy2d_rows(dst, ldd, src, lds, n, accumulate, lo, hi));
  return 0;
}

static void axpby_range(float alpha, const float *x, float beta, float *y, int64_t lo,
                        int64_t hi) {
  if (beta == 0.0f) {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) y[i] = alpha * x[i];
  } else if (alpha == 1.0f && beta == 1.0f) {   /* the residual adds: same result, no products */
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) y[i] = x[i] + y[i];
  } else {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) y[i] = alpha * x[i] + beta * y[i];
  }
}

/* beta == 0 overwrites y without reading it (BLAS convention: y may be uninitialised). */
int32_t ameir__cpu_axpby(void *s, int64_t n, float alpha, const float *x, float beta, float *y) {
  cpu_state *st = s;
  int nt = cpu_nt(st, n);
  CPU_PAR_RANGE(nt, n, lo, hi, tid, axpby_range(alpha, x, beta, y, lo, hi));
  return 0;
}

static void sumsq_chunks(const float *x, int64_t n, int64_t nc, int64_t c0, int64_t c1,
                         double *part) {
  for (int64_t c = c0; c < c1; c++) {
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
}

/* Fixed chunks (a function of n only) summed in order: independent of the thread count. */
int32_t ameir__cpu_sumsq(void *s, const float *x, int64_t n, double *out) {
  cpu_state *st = s;
  enum { MAXC = 64 };
  double part[MAXC];
  int64_t nc = (n + 8191) / 8192;
  if (nc > MAXC) nc = MAXC;
  if (nc < 1) nc = 1;
  int nt = cpu_nt_items(st, n, nc);
  CPU_PAR_RANGE(nt, nc, c0, c1, tid, sumsq_chunks(x, n, nc, c0, c1, part));
  double tot = 0.0;
  for (int64_t c = 0; c < nc; c++) tot += part[c];
  *out = tot;
  return 0;
}
