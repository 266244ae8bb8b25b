/* The CPU backend: the SE shortcut of AMEIR eq. (5) (squeeze-excitation over the S features
 * of the MLP input, FiBiNET style): z = q v, a = sigmoid(W2 relu(W1 z + b1) + b2),
 * out = sum_s a_s q_s. The two small dense layers go through sgemm (called outside any
 * parallel region); the per-sample parts are parallel over fixed sample chunks. */
#include "cpu.h"

/* z[bb, j] = q_j . v for samples [lo, hi) */
static void se_squeeze_range(const float *q, int64_t ldq, int64_t sn, int64_t k, const float *v,
                             float *z, int64_t lo, int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++)
    for (int64_t j = 0; j < sn; j++) z[bb * sn + j] = cpu_dot(q + bb * ldq + j * k, v, k);
}

/* out[bb] = sum_j a[bb, j] q_j for samples [lo, hi) */
static void se_excite_range(const float *q, int64_t ldq, int64_t sn, int64_t k, const float *a,
                            float *out, int64_t ldo, int64_t lo, int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++) {
    float *o = out + bb * ldo;
    const float *ab = a + bb * sn;
    for (int64_t t = 0; t < k; t++) o[t] = 0.0f;
    for (int64_t j = 0; j < sn; j++) {
      const float *qs = q + bb * ldq + j * k;
      float w = ab[j];
#pragma omp simd
      for (int64_t t = 0; t < k; t++) o[t] += w * qs[t];
    }
  }
}

int32_t ameir__cpu_se_fwd(void *s, const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                          const float *v, const float *w1, const float *b1, int64_t r,
                          const float *w2, const float *b2, float *out, int64_t ldo, float *save) {
  cpu_state *st = s;
  if (b <= 0) return 0;
  float *tmp = NULL;
  if (!save) {
    tmp = cpu_scratch_get(st, (size_t)(b * (2 * sn + r)) * sizeof(float));
    if (!tmp) return cpu_scratch_status();
    save = tmp;
  }
  float *z = save, *hid = save + b * sn, *a = save + b * (sn + r);
  int nt = cpu_nt_items(st, b * sn * k, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, se_squeeze_range(q, ldq, sn, k, v, z, lo, hi));
  int32_t rc = ameir__cpu_gemm(s, 0, 1, b, r, sn, 1.0f, z, sn, w1, sn, 0.0f, hid, r);
  if (rc) goto done;
  for (int64_t i = 0; i < b * r; i++) {
    float h = hid[i] + b1[i % r];
    hid[i] = h > 0.0f ? h : 0.0f;
  }
  rc = ameir__cpu_gemm(s, 0, 1, b, sn, r, 1.0f, hid, r, w2, r, 0.0f, a, sn);
  if (rc) goto done;
  for (int64_t i = 0; i < b * sn; i++) a[i] = cpu_sigmoid(a[i] + b2[i % sn]);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, se_excite_range(q, ldq, sn, k, a, out, ldo, lo, hi));
done:
  if (tmp) cpu_scratch_put(st, tmp);
  return rc;
}

int32_t ameir__cpu_se_bwd(void *s, const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                          const float *v, const float *w1, const float *b1, int64_t r,
                          const float *w2, const float *b2, const float *dout, int64_t lddo,
                          const float *save, float *dq, float *dv, float *dw1, float *db1,
                          float *dw2, float *db2) {
  cpu_state *st = s;
  AMEIR_UNUSED(b1);
  AMEIR_UNUSED(b2);
  if (b <= 0) return 0;
  const float *z = save, *hid = save + b * sn, *a = save + b * (sn + r);
  int64_t nc = cpu_chunks(b);
  int64_t wmax = sn > r ? sn : r;
  if (k > wmax) wmax = k;
  size_t nfl = (size_t)(b * sn + b * r + b * sn + nc * wmax);
  float *buf = cpu_scratch_get(st, nfl * sizeof(float));
  if (!buf) return cpu_scratch_status();
  float *da = buf, *dh = da + b * sn, *dz = dh + b * r, *part = dz + b * sn;
  int nt = cpu_nt(st, b * sn * k);
  int32_t rc = 0;

  /* da = dout . q_s; dq += a dout; then through the sigmoid */
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t bb = 0; bb < b; bb++) {
    const float *d = dout + bb * lddo;
    for (int64_t j = 0; j < sn; j++) {
      const float *qs = q + bb * ldq + j * k;
      float *g = dq + bb * ldq + j * k;
      float aj = a[bb * sn + j];
#pragma omp simd
      for (int64_t t = 0; t < k; t++) g[t] += aj * d[t];
      da[bb * sn + j] = cpu_dot(d, qs, k) * aj * (1.0f - aj);
    }
  }
  /* second layer: db2, dw2 += da^T hid, dh = da W2 through the relu */
  cpu_colsum_acc_buf(st, da, sn, b, sn, db2, part);
  rc = ameir__cpu_gemm(s, 1, 0, sn, r, b, 1.0f, da, sn, hid, r, 1.0f, dw2, r);
  if (rc) goto done;
  rc = ameir__cpu_gemm(s, 0, 0, b, r, sn, 1.0f, da, sn, w2, r, 0.0f, dh, r);
  if (rc) goto done;
  for (int64_t i = 0; i < b * r; i++)
    if (!(hid[i] > 0.0f)) dh[i] = 0.0f;
  /* first layer: db1, dw1 += dh^T z, dz = dh W1 */
  cpu_colsum_acc_buf(st, dh, r, b, r, db1, part);
  rc = ameir__cpu_gemm(s, 1, 0, r, sn, b, 1.0f, dh, r, z, sn, 1.0f, dw1, sn);
  if (rc) goto done;
  rc = ameir__cpu_gemm(s, 0, 0, b, sn, r, 1.0f, dh, r, w1, sn, 0.0f, dz, sn);
  if (rc) goto done;
  /* z = q v: dq += dz v, dv += sum dz q (fixed sample chunks, partials summed in order) */
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < nc; c++) {
    int64_t lo, hi;
    cpu_chunk_range(b, nc, c, &lo, &hi);
    float *pv = part + c * k;
    for (int64_t t = 0; t < k; t++) pv[t] = 0.0f;
    for (int64_t bb = lo; bb < hi; bb++)
      for (int64_t j = 0; j < sn; j++) {
        const float *qs = q + bb * ldq + j * k;
        float *g = dq + bb * ldq + j * k;
        float w = dz[bb * sn + j];
#pragma omp simd
        for (int64_t t = 0; t < k; t++) {
          g[t] += w * v[t];
          pv[t] += w * qs[t];
        }
      }
  }
  for (int64_t c = 1; c < nc; c++)
    for (int64_t t = 0; t < k; t++) part[t] += part[c * k + t];
  for (int64_t t = 0; t < k; t++) dv[t] += part[t];
done:
  cpu_scratch_put(st, buf);
  return rc;
}
