// CUDA backend: Caser's convolutional read-out (Tang and Wang, WSDM 2018, section 3.2) over the
// last l positions of the history; ops.h "Caser read-out" has the semantics, src/cpu/cpu_caser.c
// is the reference.
//
// Choices that matter
// - The argument checks are the CPU's except len[] (device memory: lengths are clamped to
//   [0, t], as every sequence kernel here does).
// - Forward: one thread per (row, horizontal filter) walks its windows (the first maximum wins,
//   as on the CPU) and writes the output and the argmax; one thread per (row, vertical filter,
//   column) the vertical outputs.
// - Backward without atomics: one thread per (row, window slot, column) adds that position's
//   whole input gradient (each position of dx has one writer); one thread per horizontal weight
//   or bias sums over the rows in order; each vertical weight and bias is one block's sum over
//   (row, column) with a fixed tree. The bits depend on the shape only.
#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

constexpr int RED = 256;   // threads of a vertical-gradient block (a power of two)

// slot j of row r: its row of x, or nullptr for a zero slot
__device__ __forceinline__ const float *slot(const float *x, const int32_t *len, int64_t t,
                                             int64_t d, int32_t l, int64_t r, int64_t j) {
  int64_t pos = seq_len(len, r, t) - l + j;
  return pos >= 0 ? x + (r * t + pos) * d : nullptr;
}

// weights of the horizontal filters of height h start at nh d h (h - 1) / 2
__device__ __forceinline__ int64_t hoff(int64_t nh, int64_t d, int64_t h) {
  return nh * d * h * (h - 1) / 2;
}

__global__ void k_caser_h(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                          int32_t l, int32_t nh, const float *p, float *out, int64_t ldo,
                          int32_t *save) {
  const int64_t nk = (int64_t)l * nh;
  const float *bh = p + hoff(nh, d, l + 1);
  CU_GRID_STRIDE(i, b * nk) {
    const int64_t r = i / nk, k = i - r * nk, h = k / nh + 1, n = k - (h - 1) * nh;
    const float *w = p + hoff(nh, d, h) + n * h * d;
    float best = 0.0f;
    int32_t arg = 0;
    for (int64_t s0 = 0; s0 + h <= l; s0++) {
      float z = 0.0f;
      for (int64_t j = 0; j < h; j++) {
        const float *e = slot(x, len, t, d, l, r, s0 + j);
        if (e)
          for (int64_t c = 0; c < d; c++) z += w[j * d + c] * e[c];
      }
      z += bh[k];
      if (s0 == 0 || z > best) { best = z; arg = (int32_t)s0; }   // ties: the first maximum
    }
    out[r * ldo + k] = best > 0.0f ? best : 0.0f;
    if (save) save[r * nk + k] = best > 0.0f ? arg : -1;
  }
}

__global__ void k_caser_v(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                          int32_t l, int32_t nv, int32_t nh, const float *p, float *out,
                          int64_t ldo) {
  const float *wv = p + hoff(nh, d, l + 1) + (int64_t)l * nh, *bv = wv + (int64_t)nv * l;
  CU_GRID_STRIDE(i, b * nv * d) {
    const int64_t r = i / (nv * d), rem = i - r * nv * d, n = rem / d, c = rem - n * d;
    float v = bv[n];
    for (int64_t j = 0; j < l; j++) {
      const float *e = slot(x, len, t, d, l, r, j);
      if (e) v += wv[n * l + j] * e[c];
    }
    out[r * ldo + (int64_t)l * nh + n * d + c] = v;
  }
}

// dx at (row r, slot j, column c): every horizontal filter whose argmax window covers j, then
// the vertical filters
__global__ void k_caser_dx(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                           int32_t l, int32_t nv, int32_t nh, const float *p, const float *dout,
                           int64_t lddo, const int32_t *save, float *dx) {
  const int64_t nk = (int64_t)l * nh;
  const float *wv = p + hoff(nh, d, l + 1) + nk;
  CU_GRID_STRIDE(i, b * l * d) {
    const int64_t r = i / (l * d), rem = i - r * l * d, j = rem / d, c = rem - j * d;
    const int64_t pos = seq_len(len, r, t) - l + j;
    if (pos < 0) continue;
    const float *g = dout + r * lddo;
    float v = 0.0f;
    for (int64_t k = 0; k < nk; k++) {
      const int64_t a = save[r * nk + k], h = k / nh + 1, n = k - (h - 1) * nh;
      if (a < 0 || j < a || j >= a + h) continue;
      v += g[k] * p[hoff(nh, d, h) + (n * h + (j - a)) * d + c];
    }
    for (int64_t n = 0; n < nv; n++) v += wv[n * l + j] * g[nk + n * d + c];
    dx[(r * t + pos) * d + c] += v;
  }
}

// one thread per horizontal weight (h, n, j, c) or bias (h, n): rows in order
__global__ void k_caser_dh(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                           int32_t l, int32_t nh, const float *dout, int64_t lddo,
                           const int32_t *save, float *dp) {
  const int64_t nk = (int64_t)l * nh, nw = hoff(nh, d, l + 1);
  CU_GRID_STRIDE(i, nw + nk) {
    float acc = 0.0f;
    if (i >= nw) {   // bias k
      const int64_t k = i - nw;
      for (int64_t r = 0; r < b; r++)
        if (save[r * nk + k] >= 0) acc += dout[r * lddo + k];
    } else {
      int64_t h = 1;
      while (hoff(nh, d, h + 1) <= i) h++;
      const int64_t q = i - hoff(nh, d, h), n = q / (h * d), j = (q - n * h * d) / d, c = q % d;
      const int64_t k = (h - 1) * nh + n;
      for (int64_t r = 0; r < b; r++) {
        const int64_t a = save[r * nk + k];
        if (a < 0) continue;
        const float *e = slot(x, len, t, d, l, r, a + j);
        if (e) acc += dout[r * lddo + k] * e[c];
      }
    }
    dp[i] += acc;
  }
}

// one block per vertical weight (n, j) (j = l: the bias of n): a fixed tree over (row, column)
__global__ void k_caser_dv(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                           int32_t l, int32_t nv, int32_t nh, const float *dout, int64_t lddo,
                           float *dp) {
  __shared__ float red[RED];
  const int64_t n = blockIdx.x / (l + 1), j = blockIdx.x - n * (l + 1), nk = (int64_t)l * nh;
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < b * d; i += RED) {
    const int64_t r = i / d, c = i - r * d;
    const float g = dout[r * lddo + nk + n * d + c];
    if (j == l) acc += g;
    else {
      const float *e = slot(x, len, t, d, l, r, j);
      if (e) acc += g * e[c];
    }
  }
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int w = RED / 2; w > 0; w /= 2) {
    if ((int)threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    float *wv = dp + hoff(nh, d, l + 1) + nk;
    if (j == l) wv[(int64_t)nv * l + n] += red[0];
    else wv[n * l + j] += red[0];
  }
}

int32_t caser_check(cuda_state *s, const char *op, int64_t b, int64_t t, int64_t d, int32_t l,
                    int32_t nv, int32_t nh, int64_t ldo) {
  if (b < 0 || t < 0 || d < 0 || l < 1 || l > t || nv < 0 || nh < 0)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: bad shape b=%lld d=%lld l=%d (1 to t=%lld) nv=%d nh=%d",
                   op, (long long)b, (long long)d, (int)l, (long long)t, (int)nv, (int)nh);
  if (ldo < ameir__caser_width(l, d, nv, nh))
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: row stride %lld < the row width %lld", op,
                   (long long)ldo, (long long)ameir__caser_width(l, d, nv, nh));
  return 0;
}

}  // namespace

int32_t cu_caser_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p, float *out,
                     int64_t ldo, int32_t *save) {
  CU_ENTER(state);
  CU_TRY(caser_check(s, "caser_fwd", b, t, d, l, nv, nh, ldo));
  if (b == 0) return AMEIR_OK;
  if (nh > 0) {
    k_caser_h<<<cu_blocks(b * l * nh), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, l, nh, p, out,
                                                                    ldo, save);
    CU_LAUNCHED("caser_fwd horizontal kernel");
  }
  if (nv > 0 && d > 0) {
    k_caser_v<<<cu_blocks(b * nv * d), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, l, nv, nh, p,
                                                                    out, ldo);
    CU_LAUNCHED("caser_fwd vertical kernel");
  }
  return AMEIR_OK;
}

int32_t cu_caser_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p,
                     const float *dout, int64_t lddo, const int32_t *save, float *dx, float *dp) {
  CU_ENTER(state);
  CU_TRY(caser_check(s, "caser_bwd", b, t, d, l, nv, nh, lddo));
  if (b == 0) return AMEIR_OK;
  if (!save) return cu_fail(s, AMEIR_EINVAL, "cuda caser_bwd: no save buffer (the forward's argmaxes)");
  if (d > 0) {
    k_caser_dx<<<cu_blocks(b * l * d), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, l, nv, nh, p,
                                                                    dout, lddo, save, dx);
    CU_LAUNCHED("caser_bwd dx kernel");
  }
  const int64_t nhp = (int64_t)nh * d * l * (l + 1) / 2 + (int64_t)l * nh;
  if (nhp > 0) {
    k_caser_dh<<<cu_blocks(nhp), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, l, nh, dout, lddo,
                                                              save, dp);
    CU_LAUNCHED("caser_bwd horizontal-parameter kernel");
  }
  if (nv > 0) {
    k_caser_dv<<<(unsigned)(nv * (l + 1)), RED, 0, s->stream>>>(x, len, b, t, d, l, nv, nh, dout,
                                                                  lddo, dp);
    CU_LAUNCHED("caser_bwd vertical-parameter kernel");
  }
  return AMEIR_OK;
}
