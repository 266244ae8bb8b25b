/* The CPU backend: the loss (binary cross-entropy with logits) and Adam in its three forms.
 * All element-wise and parallel with static schedules; the loss is summed in double over fixed
 * chunks (a function of n only), so nothing depends on the thread count. */
#include <omp.h>

#include "cpu.h"

static void bce_chunks(const float *logit, const float *y, int64_t n, int64_t nc, float scale,
                       float *dlogit, float *prob, double *part, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; c++) {
    int64_t lo, hi;
    cpu_chunk_range(n, nc, c, &lo, &hi);
    double acc = 0.0;
    for (int64_t i = lo; i < hi; i++) {
      float x = logit[i];
      /* stable: max(x,0) - x y + log1p(exp(-|x|)) */
      double xd = x, yd = y[i];
      acc += (xd > 0.0 ? xd : 0.0) - xd * yd + log1p(exp(-fabs(xd)));
      if (dlogit || prob) {
        float p = cpu_sigmoid(x);
        if (prob) prob[i] = p;
        if (dlogit) dlogit[i] = (p - y[i]) * scale;
      }
    }
    part[c] = acc;
  }
}

int32_t ameir__cpu_bce_logits(void *s, const float *logit, const float *y, int64_t n, float scale,
                              double *loss, float *dlogit, float *prob) {
  cpu_state *st = s;
  enum { MAXC = 64 };
  double part[MAXC];
  int64_t nc = (n + 4095) / 4096;
  if (nc > MAXC) nc = MAXC;
  if (nc < 1) nc = 1;
  int nt = cpu_nt_items(st, n * 8, nc);
  CPU_PAR_RANGE(nt, nc, c0, c1, tid,
                bce_chunks(logit, y, n, nc, scale, dlogit, prob, part, c0, c1));
  double tot = 0.0;
  for (int64_t c = 0; c < nc; c++) tot += part[c];
  *loss = n > 0 ? tot / (double)n : 0.0;
  return 0;
}

/* ---- Adam ---- */

typedef ameir__adam_k adam_k;   /* ops.h: the constants every backend shares */

/* The one update every Adam op uses, so that adam_table_dense on a row without gradient is
 * bit-identical to adam_dense with g = 0 there. g == NULL means a zero gradient.
 * Three versions with the same operations in the same order (IEEE mul/add/div/sqrt are exact
 * roundings, and -std=c11 keeps contraction into FMA off), so every path gives the same bits:
 * scalar C, SSE2 (the x86-64 baseline) and AVX-512F (runtime check). The compiler cannot
 * vectorise sqrtf itself while errno is kept (no -ffast-math, no -fno-math-errno here). */
static inline void adam_scalar(const adam_k *k, float *p, const float *g, float *m, float *v,
                               int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float gi = (g ? g[i] : 0.0f) + k->l2 * p[i];
    float mi = k->b1 * m[i] + k->c1 * gi;
    float vi = k->b2 * v[i] + k->c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] - k->step * (mi / (sqrtf(vi) / k->bc2s + k->eps));
  }
}

#if defined(__x86_64__) && defined(__SSE2__)
#include <immintrin.h>
#define CPU_ADAM_X86 1

static inline __attribute__((always_inline)) void adam_sse2_body(const adam_k *k, float *p,
                                                                 const float *g, float *m,
                                                                 float *v, int64_t n, int has_g) {
  const __m128 b1 = _mm_set1_ps(k->b1), c1 = _mm_set1_ps(k->c1), b2 = _mm_set1_ps(k->b2);
  const __m128 c2 = _mm_set1_ps(k->c2), l2 = _mm_set1_ps(k->l2), st = _mm_set1_ps(k->step);
  const __m128 bc = _mm_set1_ps(k->bc2s), eps = _mm_set1_ps(k->eps);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m128 pi = _mm_loadu_ps(p + i);
    __m128 gi = _mm_add_ps(has_g ? _mm_loadu_ps(g + i) : _mm_setzero_ps(), _mm_mul_ps(l2, pi));
    __m128 mi = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + i)), _mm_mul_ps(c1, gi));
    __m128 vi = _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(c2, gi), gi));
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
    __m128 den = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), bc), eps);
    _mm_storeu_ps(p + i, _mm_sub_ps(pi, _mm_mul_ps(st, _mm_div_ps(mi, den))));
  }
  adam_scalar(k, p + i, has_g ? g + i : NULL, m + i, v + i, n - i);
}

__attribute__((target("avx512f"))) static void adam_avx512(const adam_k *k, float *p,
                                                          const float *g, float *m, float *v,
                                                          int64_t n) {
  const __m512 b1 = _mm512_set1_ps(k->b1), c1 = _mm512_set1_ps(k->c1);
  const __m512 b2 = _mm512_set1_ps(k->b2), c2 = _mm512_set1_ps(k->c2);
  const __m512 l2 = _mm512_set1_ps(k->l2), st = _mm512_set1_ps(k->step);
  const __m512 bc = _mm512_set1_ps(k->bc2s), eps = _mm512_set1_ps(k->eps);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 pi = _mm512_loadu_ps(p + i);
    __m512 gi = _mm512_add_ps(g ? _mm512_loadu_ps(g + i) : _mm512_setzero_ps(),
                              _mm512_mul_ps(l2, pi));
    __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(c1, gi));
    __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)),
                              _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc), eps);
    _mm512_storeu_ps(p + i, _mm512_sub_ps(pi, _mm512_mul_ps(st, _mm512_div_ps(mi, den))));
  }
  if (i < n) {
    if (g) adam_sse2_body(k, p + i, g + i, m + i, v + i, n - i, 1);
    else adam_sse2_body(k, p + i, NULL, m + i, v + i, n - i, 0);
  }
}
#endif

static void adam_update(const adam_k *k, float *p, const float *g, float *m, float *v,
                        int64_t n) {
#if defined(CPU_ADAM_X86)
  if (n >= 16 && cpu_avx512()) adam_avx512(k, p, g, m, v, n);
  else if (g) adam_sse2_body(k, p, g, m, v, n, 1);
  else adam_sse2_body(k, p, NULL, m, v, n, 0);
#else
  adam_scalar(k, p, g, m, v, n);
#endif
}

int32_t ameir__cpu_adam_dense(void *s, float *p, const float *g, float *m, float *v, int64_t n,
                              float lr, float b1, float b2, float eps, float l2, int64_t t) {
  cpu_state *st = s;
  adam_k k = ameir__adam_consts(lr, b1, b2, eps, l2, t);
  enum { CH = 4096 };
  int64_t nch = (n + CH - 1) / CH;
  int nt = cpu_nt(st, n * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < nch; c++) {
    int64_t lo = c * CH, len = n - lo < CH ? n - lo : CH;
    adam_update(&k, p + lo, g + lo, m + lo, v + lo, len);
  }
  return 0;
}

int32_t ameir__cpu_adam_rows(void *s, float *table, int64_t dim, const int32_t *rows,
                             const float *grad, int64_t n_rows, float *m, float *v, float lr,
                             float b1, float b2, float eps, float l2, int64_t t) {
  cpu_state *st = s;
  adam_k k = ameir__adam_consts(lr, b1, b2, eps, l2, t);
  int nt = cpu_nt(st, n_rows * dim * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n_rows; i++) {
    int64_t o = (int64_t)rows[i] * dim;
    adam_update(&k, table + o, grad + i * dim, m + o, v + o, dim);
  }
  return 0;
}

/* first index in rows[0..n) with rows[i] >= r (rows ascending) */
static int64_t lower_bound(const int32_t *rows, int64_t n, int64_t r) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (rows[mid] < r) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* One pass over rows 1..n_table_rows-1 (row 0, the padding row, is never touched), cut into
 * one contiguous range per thread. Runs of rows without gradient are updated as one flat
 * vector; listed rows take their gradient row. */
int32_t ameir__cpu_adam_table_dense(void *s, float *table, int64_t n_table_rows, int64_t dim,
                                    const int32_t *rows, const float *grad, int64_t n_rows,
                                    float *m, float *v, float lr, float b1, float b2, float eps,
                                    float l2, int64_t t) {
  cpu_state *st = s;
  if (n_table_rows <= 1 || dim <= 0) return 0;
  adam_k k = ameir__adam_consts(lr, b1, b2, eps, l2, t);
  int64_t total = n_table_rows - 1;
  int nt = cpu_nt(st, total * dim * 4);
#pragma omp parallel num_threads(nt)
  {
    int nth = omp_get_num_threads(), me = omp_get_thread_num();
    int64_t r0 = 1 + total * me / nth, r1 = 1 + total * (me + 1) / nth;
    int64_t pos = lower_bound(rows, n_rows, r0);
    int64_t r = r0;
    while (r < r1) {
      int64_t next = pos < n_rows && rows[pos] < r1 ? rows[pos] : r1;
      if (next > r) {
        adam_update(&k, table + r * dim, NULL, m + r * dim, v + r * dim, (next - r) * dim);
        r = next;
      }
      if (r < r1 && pos < n_rows && rows[pos] == r) {
        adam_update(&k, table + r * dim, grad + pos * dim, m + r * dim, v + r * dim, dim);
        r++;
        pos++;
      }
      while (pos < n_rows && rows[pos] < r) pos++;   /* duplicates: first one wins */
    }
  }
  return 0;
}
