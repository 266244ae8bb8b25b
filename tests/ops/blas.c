/* CPU backend: GEMM, batched GEMM, bias, copies, axpby, sum of squares. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"
#include "util.h"

/* C = alpha op(A) op(B) + beta C0 in double */
static void ref_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, double beta,
                     const float *c0, int64_t ldc, double *out /* [m*n] */) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; p++) {
        double av = ta ? a[p * lda + i] : a[i * lda + p];
        double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      out[i * n + j] = alpha * acc + (beta != 0.0 ? beta * c0[i * ldc + j] : 0.0);
    }
}

/* one GEMM (batch == 0) or a strided batch, checked against ref_gemm */
static void run_gemm_case(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t batch,
                          float alpha, float beta, uint64_t seed) {
  int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
  int64_t ra = ta ? k : m, rb = tb ? n : k;
  int64_t nb = batch > 0 ? batch : 1;
  int64_t sa = ra * lda + 5, sb = rb * ldb + 7, sc = m * ldc + 3;
  float *a = tops_randf(seed, sa * nb, -1, 1), *b = tops_randf(seed + 1, sb * nb, -1, 1);
  float *c = tops_randf(seed + 2, sc * nb, -1, 1);
  if (beta == 0.0f)   /* beta = 0 must not read C */
    for (int64_t i = 0; i < sc * nb; i++) c[i] = NAN;
  float *c0 = tops_dupf(c, sc * nb);
  double *ref = malloc((size_t)(m * n) * sizeof(double));
  float *got = malloc((size_t)(m * n) * sizeof(float));
  if (batch == 0)
    T_OK(tops_ops()->gemm(tops_st(), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
  else
    T_OK(tops_ops()->gemm_strided_batched(tops_st(), ta, tb, m, n, k, alpha, a, lda, sa, b, ldb,
                                          sb, beta, c, ldc, sc, batch));
  char what[128];
  for (int64_t q = 0; q < nb; q++) {
    ref_gemm(ta, tb, m, n, k, alpha, a + q * sa, lda, b + q * sb, ldb, beta, c0 + q * sc, ldc,
             ref);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) got[i * n + j] = c[q * sc + i * ldc + j];
    snprintf(what, sizeof what, "gemm ta=%d tb=%d m=%lld n=%lld k=%lld batch %lld/%lld", ta, tb,
             (long long)m, (long long)n, (long long)k, (long long)q, (long long)batch);
    tops_check_close(what, got, ref, m * n, 1e-5, 2e-6 * (double)(k + 1));
    /* padding between rows untouched */
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = n; j < ldc && i * ldc + j < sc; j++) {
        float x = c[q * sc + i * ldc + j], y = c0[q * sc + i * ldc + j];
        T_ASSERT(memcmp(&x, &y, sizeof x) == 0);
      }
  }
  free(a), free(b), free(c), free(c0), free(ref), free(got);
}

void test_ops_blas__gemm_transposes(void) {
  static const int64_t shapes[][3] = {{1, 1, 1}, {1, 7, 5}, {13, 1, 9}, {17, 23, 31},
                                      {64, 65, 3}, {5, 3, 0}};
  for (int t = 0; t < 4; t++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      run_gemm_case(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 0, 1.0f, 0.0f,
                    10 + s);
      run_gemm_case(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 0, -0.75f, 0.5f,
                    20 + s);
    }
}

void test_ops_blas__gemm_batched(void) {
  /* small matrices take the own kernel (batch-parallel), large ones sgemm per batch */
  static const int64_t shapes[][4] = {{50, 50, 4, 8}, {50, 4, 50, 5}, {1, 1, 1, 3}, {3, 5, 7, 1},
                                      {7, 70, 3, 9},  {2, 130, 5, 4}, {70, 80, 90, 2}};
  for (int t = 0; t < 4; t++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      run_gemm_case(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 1.0f,
                    0.0f, 30 + s);
      run_gemm_case(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 0.5f,
                    1.0f, 40 + s);
    }
}

/* A not transposed, at least 128 rows, op(B) at most 128 wide, a sum of at most 4 chunks: the
 * CPU backend's own register-blocked kernel on AVX-512 machines (sgemm elsewhere, and beyond 4
 * chunks). Every width class (1 to 8 vectors of 16, a partial last vector), row counts that
 * leave a short last block, sums of 1, 2, 4 and 5 chunks (kc = 8192 / (16 vectors) rows of
 * op(B) per chunk), both layouts of B, alpha/beta (beta != 0 with several chunks takes sgemm),
 * strided C with its padding untouched; and, where the kernel runs, the same bits at 1, 2 and
 * 3 threads. */
void test_ops_blas__gemm_skinny(void) {
  static const int64_t shapes[][3] = {
      {128, 2, 5},    {133, 16, 32},  {200, 17, 3},   {257, 40, 80},  {130, 50, 7},
      {1003, 80, 32}, {150, 95, 7},   {140, 113, 64}, {129, 128, 9},  {300, 48, 200},
      {131, 65, 3},   {137, 128, 511}, {129, 16, 2048}, {129, 16, 2049}, {160, 70, 1024},
      {128, 128, 256}, {135, 128, 257}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int tb = 0; tb < 2; tb++) {
      run_gemm_case(0, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0, 1.0f, 0.0f, 50 + s);
      run_gemm_case(0, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0, -0.75f, 0.5f, 60 + s);
      run_gemm_case(0, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0, 2.0f, 1.0f, 70 + s);
    }
  /* thread-count independence, with the sum in one chunk and in three; only where the own
   * kernel runs (sgemm's bits change with its thread count) */
  if (!cpu_avx512()) return;
  for (int64_t k = 32; k <= 300; k += 268) {
    int64_t m = 1003, n = 80;
    float *a = tops_randf(81, m * k, -1, 1), *b = tops_randf(82, n * k, -1, 1);
    float *c[3];
    for (int t = 0; t < 3; t++) {
      c[t] = tops_constf(m * n, 0.0f);
      T_OK(tops_ops()->set_threads(tops_st(), t + 1));
      T_OK(tops_ops()->gemm(tops_st(), 0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c[t], n));
    }
    T_OK(tops_ops()->set_threads(tops_st(), 2));
    tops_check_same("skinny gemm 1 vs 2 threads", c[0], c[1], m * n);
    tops_check_same("skinny gemm 1 vs 3 threads", c[0], c[2], m * n);
    free(a), free(b), free(c[0]), free(c[1]), free(c[2]);
  }
}

/* A long column (n == 1, A not transposed): the own row-parallel matrix-vector kernel, whose
 * bits do not depend on the thread count (the output layer, the first-order term's sum over
 * the fields); short rows (k < 16) included. */
void test_ops_blas__gemm_column_any_threads(void) {
  static const int64_t shapes[][2] = {{40000, 3}, {20000, 10}, {16384, 26}, {3000, 400}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t m = shapes[s][0], k = shapes[s][1];
    run_gemm_case(0, 0, m, 1, k, 0, 1.0f, 0.0f, 90 + s);
    run_gemm_case(0, 1, m, 1, k, 0, -0.5f, 1.0f, 95 + s);
    float *a = tops_randf(83 + s, m * k, -1, 1), *b = tops_randf(84 + s, k, -1, 1);
    float *c[2];
    for (int t = 0; t < 2; t++) {
      c[t] = tops_constf(m, 0.0f);
      T_OK(tops_ops()->set_threads(tops_st(), 1 + 2 * t));
      T_OK(tops_ops()->gemm(tops_st(), 0, 0, m, 1, k, 1.0f, a, k, b, 1, 0.0f, c[t], 1));
    }
    T_OK(tops_ops()->set_threads(tops_st(), 2));
    tops_check_same("column gemm 1 vs 3 threads", c[0], c[1], m);
    free(a), free(b), free(c[0]), free(c[1]);
  }
}

void test_ops_blas__gemm_bad_args(void) {
  float x[4] = {0};
  T_ASSERT_EQ_INT(tops_ops()->gemm(tops_st(), 0, 0, 2, 2, 2, 1, x, 1, x, 2, 0, x, 2),
                  AMEIR_EINVAL);
  T_ASSERT(strstr(tops_ctx()->msg, "leading dimension") != NULL);
  T_ASSERT_EQ_INT(tops_ops()->gemm_strided_batched(tops_st(), 0, 0, 2, 2, 2, 1, x, 2, 0, x, 2, 0,
                                                   0, x, 2, 0, -1),
                  AMEIR_EINVAL);
}

/* L = sum w * (y + b): dL/db = column sums of w; the check also covers the accumulation */
typedef struct { int64_t m, n; const double *w; double *b; } bias_u;
static double bias_loss(void *p) {
  bias_u *u = p;
  double l = 0.0;
  for (int64_t i = 0; i < u->m; i++)
    for (int64_t j = 0; j < u->n; j++) l += u->w[i * u->n + j] * u->b[j];
  return l;
}

void test_ops_blas__bias(void) {
  static const int64_t shapes[][2] = {{1, 1}, {1, 9}, {7, 3}, {300, 17}, {1000, 2}, {129, 300}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t m = shapes[s][0], n = shapes[s][1], ld = n + 3;
    float *y = tops_randf(100 + s, m * ld, -1, 1), *y0 = tops_dupf(y, m * ld);
    float *bias = tops_randf(200 + s, n, -1, 1);
    T_OK(tops_ops()->add_bias(tops_st(), y, ld, bias, m, n));
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < ld; j++) {
        float want = j < n ? y0[i * ld + j] + bias[j] : y0[i * ld + j];
        T_ASSERT(y[i * ld + j] == want);
      }
    /* bias_grad accumulates */
    float *db = tops_randf(300 + s, n, -1, 1);
    double *ref = tops_tod(db, n);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) ref[j] += y[i * ld + j];
    T_OK(tops_ops()->bias_grad(tops_st(), y, ld, db, m, n));
    tops_check_close("bias_grad", db, ref, n, 1e-5, 1e-5 * (double)m);
    /* as a gradient: dL/db for L = sum w (y + b), w = the dy */
    float *g = calloc((size_t)n, sizeof(float));
    T_OK(tops_ops()->bias_grad(tops_st(), y, ld, g, m, n));
    double *w = malloc((size_t)(m * n) * sizeof(double));
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) w[i * n + j] = y[i * ld + j];
    double *bd = tops_tod(bias, n);
    bias_u u = {m, n, w, bd};
    tops_fd_check("bias_grad", bias_loss, &u, bd, n, g, 1e-4, 1e-4 * (double)m, 50);
    free(y), free(y0), free(bias), free(db), free(ref), free(g), free(w), free(bd);
  }
}

void test_ops_blas__copy2d(void) {
  static const int64_t shapes[][2] = {{1, 1}, {5, 7}, {300, 64}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t m = shapes[s][0], n = shapes[s][1], ldd = n + 5, lds = n + 2;
    float *src = tops_randf(1 + s, m * lds, -1, 1);
    float *dst = tops_randf(2 + s, m * ldd, -1, 1), *d0 = tops_dupf(dst, m * ldd);
    T_OK(tops_ops()->copy2d(tops_st(), dst, ldd, src, lds, m, n, 0));
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < ldd; j++)
        T_ASSERT(dst[i * ldd + j] == (j < n ? src[i * lds + j] : d0[i * ldd + j]));
    memcpy(d0, dst, (size_t)(m * ldd) * sizeof(float));
    T_OK(tops_ops()->copy2d(tops_st(), dst, ldd, src, lds, m, n, 1));
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < ldd; j++)
        T_ASSERT(dst[i * ldd + j] == (j < n ? d0[i * ldd + j] + src[i * lds + j]
                                            : d0[i * ldd + j]));
    /* contiguous fast path */
    float *dc = calloc((size_t)(m * n), sizeof(float));
    T_OK(tops_ops()->copy2d(tops_st(), dc, n, src, n, m, n, 0));
    T_ASSERT(memcmp(dc, src, (size_t)(m * n) * sizeof(float)) == 0);
    free(src), free(dst), free(d0), free(dc);
  }
}

void test_ops_blas__axpby(void) {
  static const int64_t ns[] = {1, 13, 100000};
  for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
    int64_t n = ns[s];
    float *x = tops_randf(5 + s, n, -2, 2), *y = tops_randf(6 + s, n, -2, 2);
    double *ref = malloc((size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; i++) ref[i] = 0.5 * x[i] - 1.5 * (double)y[i];
    T_OK(tops_ops()->axpby(tops_st(), n, 0.5f, x, -1.5f, y));
    tops_check_close("axpby", y, ref, n, 1e-6, 1e-6);
    for (int64_t i = 0; i < n; i++) {
      y[i] = NAN;   /* beta = 0 overwrites */
      ref[i] = 3.0 * x[i];
    }
    T_OK(tops_ops()->axpby(tops_st(), n, 3.0f, x, 0.0f, y));
    tops_check_close("axpby beta=0", y, ref, n, 1e-6, 1e-6);
    free(x), free(y), free(ref);
  }
}

void test_ops_blas__sumsq(void) {
  static const int64_t ns[] = {0, 1, 17, 300001};
  for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
    int64_t n = ns[s];
    float *x = tops_randf(7 + s, n, -3, 3);
    double ref = 0.0, got = -1.0;
    for (int64_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
    T_OK(tops_ops()->sumsq(tops_st(), x, n, &got));
    T_ASSERT_CLOSE(got, ref, 1e-12, 1e-12);
    free(x);
  }
}

/* the own small-matrix kernel (used where OpenBLAS cannot be called inside a parallel region) */
void test_ops_blas__gemm_batched_own_kernel(void) {
  cpu_state *st = tops_st();
  int saved = st->blas_nested;
  st->blas_nested = 0;
  static const int64_t shapes[][4] = {{50, 50, 4, 8}, {50, 4, 50, 5}, {1, 1, 1, 3},
                                      {7, 70, 3, 9},  {2, 130, 5, 4}, {6, 9, 1, 2}};
  for (int t = 0; t < 4; t++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      run_gemm_case(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 1.0f,
                    0.0f, 50 + s);
      run_gemm_case(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 0.5f,
                    1.0f, 60 + s);
    }
  st->blas_nested = saved;
}
