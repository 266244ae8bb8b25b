/* The CPU backend: LayerNorm (Ba et al. 2016) over the last dimension.
 * save = [mean[M], rstd[M]]. */
#include "cpu.h"

int32_t ameir__cpu_layernorm_fwd(void *s, const float *x, float *y, int64_t m, int64_t n,
                                 const float *gamma, const float *beta, float eps, float *save) {
  cpu_state *st = s;
  if (m <= 0 || n <= 0) return 0;
  int nt = cpu_nt(st, m * n);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < m; i++) {
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
