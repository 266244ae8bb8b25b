/* The CPU backend: LayerNorm (Ba et al. 2016) over the last dimension.
 * save = [mean[M], rstd[M]]. */
#include <stdint.h>

#include "cpu.h"
#if CPU_X86_AVX512
#include <immintrin.h>
#endif

static void layernorm_rows(const float *x, float *y, int64_t m, int64_t n, const float *gamma,
                           const float *beta, float eps, float *save, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    const float *xr = x + i * n;
    float *yr = y + i * n;
    float mu = cpu_sum(xr, n) / (float)n;
    float l[16] = {0}, var = 0.0f;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
      for (int t = 0; t < 16; t++) {
        float d = xr[j + t] - mu;
        l[t] += d * d;
      }
    for (; j < n; j++) var += (xr[j] - mu) * (xr[j] - mu);
    for (int t = 0; t < 16; t++) var += l[t];
    var /= (float)n;
    float rs = 1.0f / sqrtf(var + eps);
#pragma omp simd
    for (j = 0; j < n; j++) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
    if (save) {
      save[i] = mu;
      save[m + i] = rs;
    }
  }
}

#if CPU_X86_AVX512
/* Rows [lo, hi) as layernorm_rows computes them, 16 rows at a time with one row per lane: lane r
 * of L[q] gathers row r's lane q of cpu_sum (and of the variance's lanes), summed over the
 * 16-column blocks in ascending order, then the tail columns and the lanes are added in
 * cpu_sum's order, so every row gets the same sums as alone (bit for bit) without its chain
 * of 16 dependent scalar adds. For short rows (n <= LN_GATHER_MAX). */
#define LN_GATHER_MAX 32
CPU_AVX512_FN static void layernorm_rows_512(const float *x, float *y, int64_t m, int64_t n,
                                             const float *gamma, const float *beta, float eps,
                                             float *save, int64_t lo, int64_t hi) {
  int64_t nb = n & ~(int64_t)15;
  const __m512i idx = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
      _mm512_set1_epi32((int)n));
  const __m512 fn = _mm512_set1_ps((float)n);
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    const float *x0 = x + i * n;
    __m512 L[16];
    for (int q = 0; q < 16; q++) L[q] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 16)
      for (int q = 0; q < 16; q++)
        L[q] = _mm512_add_ps(L[q], _mm512_i32gather_ps(idx, x0 + b + q, 4));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = nb; j < n; j++) sum = _mm512_add_ps(sum, _mm512_i32gather_ps(idx, x0 + j, 4));
    for (int q = 0; q < 16; q++) sum = _mm512_add_ps(sum, L[q]);
    __m512 mu = _mm512_div_ps(sum, fn);
    for (int q = 0; q < 16; q++) L[q] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 16)
      for (int q = 0; q < 16; q++) {
        __m512 dv = _mm512_sub_ps(_mm512_i32gather_ps(idx, x0 + b + q, 4), mu);
        L[q] = _mm512_add_ps(L[q], _mm512_mul_ps(dv, dv));
      }
    __m512 var = _mm512_setzero_ps();
    for (int64_t j = nb; j < n; j++) {
      __m512 dv = _mm512_sub_ps(_mm512_i32gather_ps(idx, x0 + j, 4), mu);
      var = _mm512_add_ps(var, _mm512_mul_ps(dv, dv));
    }
    for (int q = 0; q < 16; q++) var = _mm512_add_ps(var, L[q]);
    var = _mm512_div_ps(var, fn);
    __m512 rs = _mm512_div_ps(_mm512_set1_ps(1.0f),
                              _mm512_sqrt_ps(_mm512_add_ps(var, _mm512_set1_ps(eps))));
    float mus[16], rss[16];
    _mm512_storeu_ps(mus, mu);
    _mm512_storeu_ps(rss, rs);
    for (int r = 0; r < 16; r++) {
      const float *xr = x0 + r * n;
      float *yr = y + (i + r) * n;
      float mr = mus[r], sr = rss[r];
#pragma omp simd
      for (int64_t j = 0; j < n; j++) yr[j] = (xr[j] - mr) * sr * gamma[j] + beta[j];
      if (save) {
        save[i + r] = mr;
        save[m + i + r] = sr;
      }
    }
  }
  if (i < hi) layernorm_rows(x, y, m, n, gamma, beta, eps, save, i, hi);
}
#endif

static void layernorm_range(const float *x, float *y, int64_t m, int64_t n, const float *gamma,
                            const float *beta, float eps, float *save, int64_t lo, int64_t hi) {
#if CPU_X86_AVX512
  if (n <= LN_GATHER_MAX && hi - lo >= 16 && m * n <= INT32_MAX && cpu_avx512()) {
    layernorm_rows_512(x, y, m, n, gamma, beta, eps, save, lo, hi);
    return;
  }
#endif
  layernorm_rows(x, y, m, n, gamma, beta, eps, save, lo, hi);
}

int32_t ameir__cpu_layernorm_fwd(void *s, const float *x, float *y, int64_t m, int64_t n,
                                 const float *gamma, const float *beta, float eps, float *save) {
  cpu_state *st = s;
  if (m <= 0 || n <= 0) return 0;
  int nt = cpu_nt_items(st, m * n, m);
  CPU_PAR_RANGE(nt, m, lo, hi, tid, layernorm_range(x, y, m, n, gamma, beta, eps, save, lo, hi));
  return 0;
}

/* dxhat = dy gamma; dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat));
 * dgamma += sum_i dy xhat, dbeta += sum_i dy, reduced over fixed row chunks (cpu_chunks). */
int32_t ameir__cpu_layernorm_bwd(void *s, const float *x, const float *dy, float *dx, int64_t m,
                                 int64_t n, const float *gamma, float *dgamma, float *dbeta,
                                 const float *save) {
  cpu_state *st = s;
  if (m <= 0 || n <= 0) return 0;
  int64_t nc = cpu_chunks(m);
  float *part = cpu_scratch_get(st, (size_t)(2 * nc * n) * sizeof(float));
  if (!part) return cpu_scratch_status();
  const float *mean = save, *rstd = save + m;
  int nt = cpu_nt(st, m * n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < nc; c++) {
    int64_t lo, hi;
    cpu_chunk_range(m, nc, c, &lo, &hi);
    float *pg = part + 2 * c * n, *pb = pg + n;
    for (int64_t j = 0; j < n; j++) pg[j] = pb[j] = 0.0f;
    for (int64_t i = lo; i < hi; i++) {
      const float *xr = x + i * n, *dr = dy + i * n;
      float *dxr = dx + i * n;
      float mu = mean[i], rs = rstd[i];
      float l1[16] = {0}, l2[16] = {0}, s1 = 0.0f, s2 = 0.0f;
      int64_t j = 0;
      for (; j + 16 <= n; j += 16)
        for (int t = 0; t < 16; t++) {
          float xh = (xr[j + t] - mu) * rs, g = dr[j + t] * gamma[j + t];
          l1[t] += g;
          l2[t] += g * xh;
        }
      for (; j < n; j++) {
        float xh = (xr[j] - mu) * rs, g = dr[j] * gamma[j];
        s1 += g;
        s2 += g * xh;
      }
      for (int t = 0; t < 16; t++) {
        s1 += l1[t];
        s2 += l2[t];
      }
      float m1 = s1 / (float)n, m2 = s2 / (float)n;
#pragma omp simd
      for (j = 0; j < n; j++) {
        float xh = (xr[j] - mu) * rs;
        pg[j] += dr[j] * xh;
        pb[j] += dr[j];
        dxr[j] = rs * (dr[j] * gamma[j] - m1 - xh * m2);
      }
    }
  }
  for (int64_t c = 1; c < nc; c++) {
    const float *pg = part + 2 * c * n, *pb = pg + n;
    for (int64_t j = 0; j < n; j++) {
      part[j] += pg[j];
      part[n + j] += pb[j];
    }
  }
  for (int64_t j = 0; j < n; j++) {
    dgamma[j] += part[j];
    dbeta[j] += part[n + j];
  }
  cpu_scratch_put(st, part);
  return 0;
}
