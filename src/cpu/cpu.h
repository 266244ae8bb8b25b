/* The CPU backend: internal declarations shared by the files of src/cpu.
 *
 * Threading: OpenMP parallel regions with explicit num_threads(st->threads) clauses and static
 * schedules only; the forward ops enter them through CPU_PAR_RANGE, which runs a one-thread
 * loop on the calling thread without entering OpenMP. Reductions never depend on the thread count: either every output is reduced by
 * one thread in a fixed order (row- or column-parallel), or the rows are cut into a fixed number
 * of chunks that depends on the problem size only (cpu_chunks), each chunk reduces into its own
 * partial, and the partials are summed in chunk order. So results are bit-identical for the same
 * inputs whatever the thread count, except where sgemm is involved (gemm, batched gemm, the SE
 * layers: OpenBLAS is bit-identical for the same thread count). gemm's own paths (a column
 * n == 1, narrow products on AVX-512: cpu_blas.c) give each output to one thread in a fixed
 * order, so they are thread-count independent too.
 *
 * Vectorisation: plain C. GCC 12 at -O2 uses its "very cheap" cost model and leaves most loops
 * with a run-time trip count scalar, so hot loops carry `#pragma omp simd` (we compile with
 * -fopenmp anyway). Float reductions use 16 independent lanes (cpu_sum/cpu_dot), a fixed order
 * that needs no reassociation (no -ffast-math). exp and Phi have vectorisable versions below
 * (libm's are opaque calls). Adam needs sqrt, which GCC does not vectorise while errno is kept:
 * it has SSE2 and AVX-512F (run-time check) intrinsics paths, bit-identical to the scalar one. */
#ifndef AMEIR_CPU_H
#define AMEIR_CPU_H

#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend/ops.h"
#include "core/base/base.h"

typedef struct cpu_state {
  ameir_context *ctx;   /* receives error messages */
  int32_t threads;      /* workers of every parallel region (>= 1) */
  /* sgemm may be called inside our parallel regions: true with OpenBLAS's OpenMP or sequential
   * builds, which then run single-threaded there; false with its pthreads build (it would
   * oversubscribe), where batched small GEMMs use the own kernel instead. */
  int blas_nested;
  /* One cached scratch buffer for backward ops (radix sort, per-chunk partials). `busy` makes
   * a concurrent second user fall back to malloc instead of sharing it. */
  void *scratch;
  size_t scratch_size;
  atomic_int scratch_busy;
} cpu_state;

/* AVX-512F copies of hot kernels (x86 with GCC or Clang): one body, always inlined into a
 * default-target function and an AVX-512F one, chosen at run time by cpu_avx512(). The bodies
 * are element-wise or reduce in explicit lanes, and the build does not contract a * b + c into
 * FMA (-std=c11: -ffp-contract=off), so both copies give bit-identical results; only the vector
 * width differs. -DCPU_NO_AVX512 compiles the AVX-512 copies out (to compare the two). */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(CPU_NO_AVX512)
#define CPU_X86_AVX512 1
#define CPU_AVX512_FN __attribute__((target("avx512f")))
#else
#define CPU_X86_AVX512 0
#endif
#define CPU_ALWAYS_INLINE static inline __attribute__((always_inline))
/* 1 when the AVX-512F copies may run on this machine (checked once). */
int cpu_avx512(void);

/* Minimum amount of work (elements) worth a parallel region. */
#define CPU_PAR_MIN 16384

/* Scratch: returns at least `bytes` 64-byte-aligned bytes, or NULL with the error set (its
 * status: cpu_scratch_status()). Release with cpu_scratch_put(st, p). Where the calling thread
 * has a block of its own (set_thread_scratch, cpu_ops.c) for st, that block is the scratch and
 * nothing is allocated: a request larger than it, or a second one while it is taken, fails
 * with AMEIR_EINVAL. Call both from the op's calling thread, outside parallel regions (a
 * region's threads take slices of one block got before it). */
void *cpu_scratch_get(cpu_state *st, size_t bytes);
void cpu_scratch_put(cpu_state *st, void *p);
/* The status of the calling thread's last failed cpu_scratch_get (AMEIR_ENOMEM, AMEIR_EINVAL). */
int32_t cpu_scratch_status(void);

/* Upper bounds of the scratch bytes the forward ops take, for scratch_bytes: the largest over
 * every len[] of b samples of t positions, `save` given, nt threads (mha). Each op computes its
 * request with the same static function of its file as its bound does (one formula per op). */
size_t cpu_conv1d_fwd_bound(int64_t b, int64_t t, int64_t d, int32_t k, int32_t dil);
size_t cpu_mha_fwd_bound(int64_t b, int64_t t, int64_t d, int32_t heads, int nt);
size_t cpu_gru_fwd_bound(int64_t b, int64_t t, int64_t d);
size_t cpu_din_fwd_bound(int64_t b, int64_t t, int64_t d, int32_t a1, int32_t a2);

/* Threads to use for `work` elements: 1 below CPU_PAR_MIN. */
static inline int cpu_nt(const cpu_state *st, int64_t work) {
  return work >= CPU_PAR_MIN ? st->threads : 1;
}

/* The same for a loop of `items` independent iterations (samples, rows): never more threads
 * than iterations (a single-row call would wake a thread that has nothing to do). */
static inline int cpu_nt_items(const cpu_state *st, int64_t work, int64_t items) {
  int nt = cpu_nt(st, work);
  return items < nt ? (items > 1 ? (int)items : 1) : nt;
}

/* Runs `call` over the iterations [lo, hi) of [0, n): with nt > 1 in a parallel region, each
 * thread on its own contiguous block (the blocks of schedule(static)), tid its number; with
 * nt <= 1 (or n <= 1) once, on the calling thread, with lo = 0, hi = n, tid = 0, and without
 * entering OpenMP at all: libgomp builds and tears down a team (an allocation and a futex wake)
 * even for one thread, which costs more than the small ops of a single-row prediction. Loops
 * split this way must give results that do not depend on the blocks (per-iteration outputs,
 * or fixed-chunk partials indexed by iteration). */
#define CPU_PAR_RANGE(nt, n, lo, hi, tid, call)                                   \
  do {                                                                            \
    int cpu_pr_nt_ = (nt);                                                        \
    int64_t cpu_pr_n_ = (n);                                                      \
    if (cpu_pr_nt_ > 1 && cpu_pr_n_ > 1) {                                        \
      _Pragma("omp parallel num_threads(cpu_pr_nt_)")                             \
      {                                                                           \
        int tid = omp_get_thread_num();                                           \
        int64_t cpu_pr_k_ = omp_get_num_threads();                                \
        int64_t lo = cpu_pr_n_ * tid / cpu_pr_k_;                                 \
        int64_t hi = cpu_pr_n_ * (tid + 1) / cpu_pr_k_;                           \
        (void)tid;                                                                \
        call;                                                                     \
      }                                                                           \
    } else {                                                                      \
      int tid = 0;                                                                \
      int64_t lo = 0, hi = cpu_pr_n_;                                             \
      (void)tid;                                                                  \
      call;                                                                       \
    }                                                                             \
  } while (0)

/* Number of row chunks for a fixed-order reduction over m rows: depends on m only. */
static inline int64_t cpu_chunks(int64_t m) {
  int64_t c = (m + 127) / 128;
  if (c > 64) c = 64;
  return c < 1 ? 1 : c;
}

/* Rows [lo, hi) of chunk c of nc over m rows. */
static inline void cpu_chunk_range(int64_t m, int64_t nc, int64_t c, int64_t *lo, int64_t *hi) {
  *lo = m * c / nc;
  *hi = m * (c + 1) / nc;
}

/* Sum and dot product in 16 independent lanes (vectorisable, fixed order). */
static inline float cpu_sum(const float *x, int64_t n) {
  float l[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) l[j] += x[i + j];
  float s = 0.0f;
  for (; i < n; i++) s += x[i];
  for (int j = 0; j < 16; j++) s += l[j];
  return s;
}

static inline float cpu_dot(const float *x, const float *y, int64_t n) {
  float l[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) l[j] += x[i + j] * y[i + j];
  float s = 0.0f;
  for (; i < n; i++) s += x[i] * y[i];
  for (int j = 0; j < 16; j++) s += l[j];
  return s;
}

/* Bit-pattern helpers: selects written with integer masks, so that the vectoriser never sees
 * a float operation that only one branch needs (with -ftrapping-math, the default, GCC refuses
 * to if-convert such a branch and the loop stays scalar). */
typedef union { float f; uint32_t u; } cpu_fbits;

/* mask ? a : b, mask all-ones or zero */
static inline float cpu_blendf(uint32_t mask, float a, float b) {
  cpu_fbits x = {a}, y = {b};
  x.u = (x.u & mask) | (y.u & ~mask);
  return x.f;
}

/* exp(x) in float that the compiler can vectorise (libm's expf is an opaque call without
 * -ffast-math): Cephes' range reduction and degree-6 polynomial, at most 1 ulp off on
 * [-87, 88] (checked against double exp in tests/ops/act.c); 0 below, +inf above, NaN kept.
 * Out of range the arithmetic runs on garbage (unsigned, so defined) and is masked out. */
static inline float cpu_expf(float x) {
  const float magic = 12582912.0f;   /* 1.5 * 2^23: adding it rounds to an integer */
  float t = x * 1.44269504088896341f + magic;
  float n = t - magic;
  cpu_fbits tb = {t};
  float r = x - n * 0.693359375f;   /* ln 2 in two parts */
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  cpu_fbits s;
  s.u = (tb.u - 0x4B400000u + 127u) << 23;   /* 2^n from the integer in t's mantissa */
  cpu_fbits y = {p * s.f};
  uint32_t lo = -(uint32_t)(x < -87.0f), hi = -(uint32_t)(x > 88.0f);
  y.u = (y.u & ~(lo | hi)) | (0x7F800000u & hi);
  return y.f;
}

static inline float cpu_sigmoid(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

/* The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, vectorisable, through Numerical
 * Recipes' erfcc (Chebyshev fit, relative error < 1.2e-7). Unlike 0.5 (1 + erff(x / sqrt 2)) it
 * keeps its relative accuracy in the left tail (about 2e-6 at worst, from exp(-z^2)). */
static inline float cpu_phi(float x) {
  float z = x * 0.70710678118654752440f;
  float az = fabsf(z);
  float t = 1.0f / (1.0f + 0.5f * az);
  float q = 0.17087277f;
  q = q * t - 0.82215223f;
  q = q * t + 1.48851587f;
  q = q * t - 1.13520398f;
  q = q * t + 0.27886807f;
  q = q * t - 0.18628806f;
  q = q * t + 0.09678418f;
  q = q * t + 0.37409196f;
  q = q * t + 1.00002368f;
  q = q * t - 1.26551223f;
  float half_erfc = 0.5f * t * cpu_expf(q - az * az);   /* erfc(|z|) / 2 */
  return cpu_blendf(-(uint32_t)(z < 0.0f), half_erfc, 1.0f - half_erfc);
}

/* Adds the column sums of x[m, n] (row stride ldx) into out[n] (out[j] += sum_i x[i,j]) in a
 * thread-count-independent order. May use the scratch buffer. */
int32_t cpu_colsum_acc(cpu_state *st, const float *x, int64_t ldx, int64_t m, int64_t n,
                       float *out);
/* The same with a caller's buffer part of cpu_chunks(m) * n floats (same result). */
void cpu_colsum_acc_buf(cpu_state *st, const float *x, int64_t ldx, int64_t m, int64_t n,
                        float *out, float *part);

/* ---- Stage 1 sequence helpers (cpu_seq.c) ----
 * The sequence ops work on a "packed" layout: the valid rows of x[B, T, D] stored sample after
 * sample (row base[b] + i holds x[b, i] for i < len[b]; N = base[B] rows in all), so that the
 * dense projections run as one GEMM over the N valid rows only and never read padding. When every
 * len is T the packed layout is x itself and no copy is made. */

/* Bytes rounded up to a 64-byte multiple: pieces carved from one scratch block stay aligned. */
static inline size_t cpu_al(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
/* Takes `bytes` from a scratch block at *cur (advanced by cpu_al(bytes)). */
static inline void *cpu_carve(char **cur, size_t bytes) {
  void *p = *cur;
  *cur += cpu_al(bytes);
  return p;
}

/* Checks 0 <= len[i] <= t for every sample and returns the total N in *n (op names the op in the
 * error message). */
int32_t cpu_seq_total(cpu_state *st, const char *op, const int32_t *len, int64_t b, int64_t t,
                      int64_t *n);
/* base[0..b]: prefix sums of len (base[b] = N). */
void cpu_seq_base(const int32_t *len, int64_t b, int64_t *base);
/* xp[base[b] + i, :d] = x[b, i, :d] for i < len[b]. */
void cpu_seq_pack(cpu_state *st, const float *x, const int32_t *len, const int64_t *base, int64_t b,
                  int64_t t, int64_t d, float *xp);
/* y[b, i, :d] = yp[base[b] + i, :d] for i < len[b], 0 for the padding rows. */
void cpu_seq_unpack(cpu_state *st, const float *yp, const int32_t *len, const int64_t *base,
                    int64_t b, int64_t t, int64_t d, float *y);
/* Sample order by descending len (ties by index): the samples still running at step s of a
 * recurrence are a prefix of it. ord: b ints; cnt: scratch of t + 1 int64. */
void cpu_seq_order(const int32_t *len, int64_t b, int64_t t, int64_t *cnt, int32_t *ord);

/* tanh in float, vectorisable (Cephes' tanhf): an odd polynomial below |x| = 0.625, where
 * 1 - 2 / (e^2x + 1) would cancel, that formula above it (saturating to 1 as e^2x overflows). */
static inline float cpu_tanhf(float x) {
  float ax = fabsf(x), z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (cpu_expf(2.0f * ax) + 1.0f);
  big = cpu_blendf(-(uint32_t)(x < 0.0f), -big, big);
  return cpu_blendf(-(uint32_t)(ax < 0.625f), small, big);
}

/* Ops, one group per file. */
/* cpu_blas.c */
int32_t ameir__cpu_gemm(void *s, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                        float beta, float *c, int64_t ldc);
int32_t ameir__cpu_gemm_strided_batched(void *s, int32_t ta, int32_t tb, int64_t m, int64_t n,
                                        int64_t k, float alpha, const float *a, int64_t lda,
                                        int64_t sa, const float *b, int64_t ldb, int64_t sb,
                                        float beta, float *c, int64_t ldc, int64_t sc,
                                        int64_t batch);
int32_t ameir__cpu_add_bias(void *s, float *y, int64_t ldy, const float *bias, int64_t m,
                            int64_t n);
int32_t ameir__cpu_bias_grad(void *s, const float *dy, int64_t lddy, float *dbias, int64_t m,
                             int64_t n);
int32_t ameir__cpu_copy2d(void *s, float *dst, int64_t ldd, const float *src, int64_t lds,
                          int64_t m, int64_t n, int32_t accumulate);
int32_t ameir__cpu_axpby(void *s, int64_t n, float alpha, const float *x, float beta, float *y);
int32_t ameir__cpu_sumsq(void *s, const float *x, int64_t n, double *out);

/* cpu_emb.c */
int32_t ameir__cpu_emb_sum_fwd(void *s, const float *table, int64_t dim, const int32_t *rows,
                               int64_t n, int64_t len, float *out, int64_t ldo);
int32_t ameir__cpu_emb_fields_fwd(void *s, const float *table, int64_t dim, const int32_t *rows, int64_t n,
                                  int64_t f, float *out, int64_t ldo);
int32_t ameir__cpu_emb_grad_rows(void *s, const int32_t *rows, const int32_t *src_index,
                                 int64_t count, const float *dout, int64_t lddo, int64_t dim,
                                 int32_t *uniq_rows, float *grad, int64_t *n_uniq);

/* cpu_act.c */
int32_t ameir__cpu_act_fwd(void *s, int32_t act, const float *x, float *y, int64_t n);
int32_t ameir__cpu_act_bwd(void *s, int32_t act, const float *x, const float *y, const float *dy,
                           float *dx, int64_t n);
int32_t ameir__cpu_dice_fwd(void *s, const float *x, float *y, int64_t m, int64_t n,
                            const float *alpha, float *running_mean, float *running_var, float eps,
                            int32_t training, float *save);
int32_t ameir__cpu_dice_bwd(void *s, const float *x, const float *dy, float *dx, int64_t m,
                            int64_t n, const float *alpha, float *dalpha, float eps,
                            const float *save);
int32_t ameir__cpu_dropout_fwd(void *s, const float *x, float *y, uint8_t *mask, int64_t n, float p,
                               uint64_t seed, uint64_t offset);
int32_t ameir__cpu_dropout_bwd(void *s, const float *dy, float *dx, const uint8_t *mask, int64_t n,
                               float p);

/* cpu_norm.c */
int32_t ameir__cpu_layernorm_fwd(void *s, const float *x, float *y, int64_t m, int64_t n,
                                 const float *gamma, const float *beta, float eps, float *save);
int32_t ameir__cpu_layernorm_bwd(void *s, const float *x, const float *dy, float *dx, int64_t m,
                                 int64_t n, const float *gamma, float *dgamma, float *dbeta,
                                 const float *save);

/* cpu_inter.c */
int32_t ameir__cpu_hadamard_fwd(void *s, const float *e, int64_t lde, int64_t b, int64_t k,
                                const int32_t *fields, const int32_t *order, int64_t n_inter,
                                int64_t max_order, float *out, int64_t ldo);
int32_t ameir__cpu_hadamard_bwd(void *s, const float *e, int64_t lde, int64_t b, int64_t k,
                                const int32_t *fields, const int32_t *order, int64_t n_inter,
                                int64_t max_order, const float *dout, int64_t lddo, float *de);
int32_t ameir__cpu_fm_fwd(void *s, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                          float *out, int32_t accumulate);
int32_t ameir__cpu_fm_bwd(void *s, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                          const float *dout, float *de);

/* cpu_se.c */
int32_t ameir__cpu_se_fwd(void *s, const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                          const float *v, const float *w1, const float *b1, int64_t r,
                          const float *w2, const float *b2, float *out, int64_t ldo, float *save);
int32_t ameir__cpu_se_bwd(void *s, const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                          const float *v, const float *w1, const float *b1, int64_t r,
                          const float *w2, const float *b2, const float *dout, int64_t lddo,
                          const float *save, float *dq, float *dv, float *dw1, float *db1,
                          float *dw2, float *db2);

/* cpu_optim.c */
int32_t ameir__cpu_bce_logits(void *s, const float *logit, const float *y, int64_t n, float scale,
                              double *loss, float *dlogit, float *prob);
int32_t ameir__cpu_adam_dense(void *s, float *p, const float *g, float *m, float *v, int64_t n,
                              float lr, float b1, float b2, float eps, float l2, int64_t t);
int32_t ameir__cpu_adam_rows(void *s, float *table, int64_t dim, const int32_t *rows,
                             const float *grad, int64_t n_rows, float *m, float *v, float lr,
                             float b1, float b2, float eps, float l2, int64_t t);
int32_t ameir__cpu_adam_table_dense(void *s, float *table, int64_t n_table_rows, int64_t dim,
                                    const int32_t *rows, const float *grad, int64_t n_rows,
                                    float *m, float *v, float lr, float b1, float b2, float eps,
                                    float l2, int64_t t);

/* cpu_seq.c */
int32_t ameir__cpu_seq_mask(void *s, float *y, const float *x, const int32_t *len, int64_t b,
                            int64_t t, int64_t d);
int32_t ameir__cpu_conv1d_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                              int64_t d, const float *w, const float *bias, int32_t k, int32_t dil,
                              float *y);
int32_t ameir__cpu_conv1d_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                              int64_t d, const float *w, int32_t k, int32_t dil, const float *dy,
                              float *dx, float *dw, float *dbias);
int32_t ameir__cpu_pool3_fwd(void *s, int32_t kind, const float *x, const int32_t *len, int64_t b,
                             int64_t t, int64_t d, float *y, int32_t *save);
int32_t ameir__cpu_pool3_bwd(void *s, int32_t kind, const int32_t *len, int64_t b, int64_t t,
                             int64_t d, const float *dy, const int32_t *save, float *dx);
int32_t ameir__cpu_readout_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                               int64_t d, float *sum, int64_t lds, float *last, int64_t ldl);
int32_t ameir__cpu_readout_bwd(void *s, const int32_t *len, int64_t b, int64_t t, int64_t d,
                               const float *dsum, int64_t lds, const float *dlast, int64_t ldl,
                               float *dx);
int32_t ameir__cpu_dot_rows_fwd(void *s, const float *e, int64_t k, const int32_t *rows, int64_t b,
                                int64_t c, const float *u, float *sc);
int32_t ameir__cpu_dot_rows_bwd(void *s, const float *e, int64_t k, const int32_t *rows, int64_t b,
                                int64_t c, const float *u, const float *ds, float *du, float *g);

/* cpu_gru.c */
int32_t ameir__cpu_gru_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *p, float *y, float *save);
int32_t ameir__cpu_gru_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *p, const float *dy, const float *save, float *dx,
                           float *dp);

/* cpu_attn.c */
int32_t ameir__cpu_mha_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, int32_t heads, const float *p, float *y, float *save);
int32_t ameir__cpu_mha_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, int32_t heads, const float *p, const float *dy,
                           const float *save, float *dx, float *dp);
int32_t ameir__cpu_din_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                           const float *p, float *pooled, int64_t ldp, float *scaled, float *save);
int32_t ameir__cpu_din_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                           const float *p, const float *dpooled, int64_t lddp,
                           const float *dscaled, const float *save, float *dx, float *dq,
                           float *dp);

/* cpu_zoo.c */
int32_t ameir__cpu_cross_fwd(void *s, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                             const float *w, const float *bias, int64_t b, int64_t d, float *y,
                             int64_t ldy);
int32_t ameir__cpu_cross_bwd(void *s, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                             const float *w, int64_t b, int64_t d, const float *dy, int64_t lddy,
                             float *dx0, int64_t lddx0, float *dxl, int64_t lddxl, float *dw,
                             float *dbias);
int32_t ameir__cpu_cin_fwd(void *s, const float *x, int64_t ldx, int64_t h, const float *x0,
                           int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w,
                           int64_t h_out, float *y, int64_t ldy);
int32_t ameir__cpu_cin_bwd(void *s, const float *x, int64_t ldx, int64_t h, const float *x0,
                           int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w,
                           int64_t h_out, const float *dy, int64_t lddy, float *dx, int64_t lddx,
                           float *dx0, int64_t lddx0, float *dw);
/* Caser read-out (cpu_caser.c) */
int32_t ameir__cpu_caser_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                             int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p, float *out,
                             int64_t ldo, int32_t *save);
int32_t ameir__cpu_caser_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                             int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p,
                             const float *dout, int64_t lddo, const int32_t *save, float *dx,
                             float *dp);

/* cpu_fibinet.c */
int32_t ameir__cpu_field_scale_fwd(void *s, const float *x, int64_t ldx, const float *sc, int64_t b,
                                   int64_t f, int64_t k, float *y, int64_t ldy);
int32_t ameir__cpu_field_scale_bwd(void *s, const float *x, int64_t ldx, const float *sc, int64_t b,
                                   int64_t f, int64_t k, const float *dy, int64_t lddy, float *dx,
                                   int64_t lddx, float *ds);

#endif
