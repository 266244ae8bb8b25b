// The CUDA backend: attention over a behaviour sequence: multi-head self-attention (mha_fwd,
// mha_bwd) and DIN's local activation unit (din_fwd, din_bwd). Reference: src/cpu/cpu_attn.c.
//
// Choices that matter
// - save is laid out exactly as the CPU lays it out: qkv [B*T, 3d], the context [B*T, d] and
//   DIN's hidden1 [B*T, a1], hidden2 [B*T, a2], weights [B*T] by PACKED row (row base[b] + i
//   holds position i < len[b]; base = prefix sums of len), P [B, heads, T, T] by position. Like
//   the CPU, only what the CPU writes is written: save rows >= N = base[B], and P rows and
//   columns >= len, are left untouched, and backward never reads them.
// - len[] stays on the device, clamped to [0, t] (the CPU refuses a bad len with AMEIR_EINVAL;
//   checking it here would take a download and a sync). base is a one-block scan on the device,
//   so N is unknown to the host: every GEMM runs over all B*T rows of an UNPACKED scratch layout
//   (row b*T + i). Padding rows there are zero wherever a GEMM sums over rows (weight gradients,
//   bias gradients) or its output is kept; a forward GEMM may read padding garbage (NaN in the
//   tests) only where the output row is thrown away (GEMM rows are independent).
// - MHA per (sample, head): one block, one warp per query row: scores with lanes over keys, max,
//   exp and sum through warp shuffles (an xor butterfly: every lane gets the same bits), then
//   the context with lanes over the head's dims, each a sequential sum over keys. The row of P
//   is its own work buffer (each lane rereads only what it wrote until a __syncwarp). Backward
//   keeps dS in scratch [B, heads, T, T]: a row phase (dP, dS, dq) and, after __syncthreads, a
//   column phase (dk, dv). Chosen over batched GEMMs plus a softmax kernel because head dims
//   are small (2..128) and T short, and because it writes P only at rows and columns < len (the
//   CPU's save content) and needs no constant per-sample stride. Speed not measured yet.
// - DIN's first layer is regrouped as the CPU's: W1 u = (W1a + W1c) h + W1d (h*q) +
//   (W1b - W1c) q, a GEMM over 2d inputs per position plus one over the samples for the q term.
//   The per-sample sums over positions (pooled, dq's h*dz term, the q-term gradient) run
//   sequentially in position order, like the CPU's loops.
// - No atomics; every reduction has a fixed order (warp trees, sequential loops, cu_bias_grad).
#include <cmath>

#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

constexpr int WARP = 32;
constexpr unsigned FULL_MASK = 0xffffffffu;
constexpr int SCAN_THREADS = 1024;
constexpr int ATT_THREADS = 128;  // 4 warps per (sample, head)

// the xor butterfly over the whole warp: every lane gets the same bits
__device__ __forceinline__ float warp_sum(float v) { return team_sum<WARP>(v); }

__device__ __forceinline__ float warp_max(float v) {
  for (int o = WARP / 2; o > 0; o >>= 1) {
    float w = __shfl_xor_sync(FULL_MASK, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// ---- dst[base[b] + i, :w] = src[b*t + i, :w] (+ bias) for i < len[b]; nothing else written ----
__global__ void k_pack_rows(const float *src, int64_t lds, const float *bias, const int32_t *len,
                            const int64_t *base, int64_t b, int64_t t, int64_t w, float *dst,
                            int64_t ldd) {
  CU_GRID_STRIDE(e, b * t * w) {
    int64_t row = e / w, c = e - row * w, bb = row / t, i = row - bb * t;
    if (i < seq_len(len, bb, t)) {
      float v = src[row * lds + c];
      if (bias) v += bias[c];
      dst[(base[bb] + i) * ldd + c] = v;
    }
  }
}

// ---- dst[b*t + i, :w] = src row of (b, i) for i < len[b], 0 on padding rows. The source row
// is base[b] + i (packed) when base is given, b*t + i (unpacked) when it is NULL ----
__global__ void k_gather_rows(const float *src, int64_t lds, const int64_t *base,
                              const int32_t *len, int64_t b, int64_t t, int64_t w, float *dst,
                              int64_t ldd) {
  CU_GRID_STRIDE(e, b * t * w) {
    int64_t row = e / w, c = e - row * w, bb = row / t, i = row - bb * t;
    float v = 0.0f;
    if (i < seq_len(len, bb, t)) v = src[(base ? base[bb] + i : row) * lds + c];
    dst[row * ldd + c] = v;
  }
}

// ---- y = y + bias on valid rows, 0 on padding rows (y [b*t, d] contiguous) ----
__global__ void k_bias_mask(float *y, const float *bias, const int32_t *len, int64_t b, int64_t t,
                            int64_t d) {
  CU_GRID_STRIDE(e, b * t * d) {
    int64_t row = e / d, c = e - row * d, bb = row / t, i = row - bb * t;
    y[e] = i < seq_len(len, bb, t) ? y[e] + bias[c] : 0.0f;
  }
}

// ---- MHA forward, one block per (sample, head), one warp per query row ----
// qkv: packed [N, 3d] (biases added); prob: [b, heads, t, t] (rows and columns < len written);
// ctx: packed [N, d] (valid rows); ctx_u: unpacked [b*t, d] (padding rows 0), the GEMM's input.
__global__ void k_mha_fwd(const float *qkv, const int32_t *len, const int64_t *base, int64_t b,
                          int64_t t, int64_t d, int64_t heads, float scale, float *prob,
                          float *ctx, float *ctx_u) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  const int nwarp = blockDim.x / WARP;
  const int64_t dh = d / heads, d3 = 3 * d;
  for (int64_t bh = blockIdx.x; bh < b * heads; bh += gridDim.x) {
    const int64_t bb = bh / heads, hh = bh - bb * heads, off = hh * dh;
    const int64_t l = seq_len(len, bb, t), r0 = base[bb];
    const float *rows = qkv + r0 * d3;  // the sample's packed rows
    float *pb = prob + bh * t * t;
    for (int64_t i = warp; i < l; i += nwarp) {
      const float *qi = rows + i * d3 + off;
      float *pr = pb + i * t;
      // scores (q scaled first, as the CPU), then the row max
      float mx = -__int_as_float(0x7f800000);
      for (int64_t j = lane; j < l; j += WARP) {
        const float *kj = rows + j * d3 + d + off;
        float sc = 0.0f;
        for (int64_t c = 0; c < dh; c++) sc += (qi[c] * scale) * kj[c];
        pr[j] = sc;
        mx = sc > mx ? sc : mx;
      }
      mx = warp_max(mx);
      float sum = 0.0f;
      for (int64_t j = lane; j < l; j += WARP) {
        float ev = expf(pr[j] - mx);
        pr[j] = ev;
        sum += ev;
      }
      const float inv = 1.0f / warp_sum(sum);
      for (int64_t j = lane; j < l; j += WARP) pr[j] *= inv;
      __syncwarp();  // every lane reads the whole row below
      for (int64_t c = lane; c < dh; c += WARP) {
        const float *vc = rows + 2 * d + off + c;
        float acc = 0.0f;
        for (int64_t j = 0; j < l; j++) acc += pr[j] * vc[j * d3];
        ctx[(r0 + i) * d + off + c] = acc;
        ctx_u[(bb * t + i) * d + off + c] = acc;
      }
    }
    for (int64_t e = threadIdx.x; e < (t - l) * dh; e += blockDim.x) {
      int64_t i = l + e / dh, c = e % dh;
      ctx_u[(bb * t + i) * d + off + c] = 0.0f;
    }
  }
}

// ---- MHA backward, one block per (sample, head) ----
// Row phase (warp per query row i): dP = dctx_i v^T, dS = P (dP - P.dP) scale into dsb, dq_i =
// dS_i k. Column phase (warp per key j): dk_j = sum_i dS_ij q_i, dv_j = sum_i P_ij dctx_i.
// dqkv_u: unpacked [b*t, 3d]; this head's columns of padding rows are written 0.
__global__ void k_mha_bwd(const float *qkv, const float *prob, const float *dctx_u,
                          const int32_t *len, const int64_t *base, int64_t b, int64_t t,
                          int64_t d, int64_t heads, float scale, float *dsb, float *dqkv_u) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  const int nwarp = blockDim.x / WARP;
  const int64_t dh = d / heads, d3 = 3 * d;
  for (int64_t bh = blockIdx.x; bh < b * heads; bh += gridDim.x) {
    const int64_t bb = bh / heads, hh = bh - bb * heads, off = hh * dh;
    const int64_t l = seq_len(len, bb, t);
    const float *rows = qkv + base[bb] * d3 + off;  // + 0 / d / 2d: q / k / v of this head
    const float *pb = prob + bh * t * t;
    float *sb = dsb + bh * t * t;
    const float *g = dctx_u + bb * t * d + off;  // dctx row i: g + i * d
    float *dr = dqkv_u + bb * t * d3 + off;      // dqkv row i: dr + i * d3 (+ d, + 2d)
    for (int64_t i = warp; i < l; i += nwarp) {
      const float *gi = g + i * d, *pr = pb + i * t;
      float *sr = sb + i * t;
      float rs = 0.0f;
      for (int64_t j = lane; j < l; j += WARP) {
        const float *vj = rows + j * d3 + 2 * d;
        float dpv = 0.0f;
        for (int64_t c = 0; c < dh; c++) dpv += gi[c] * vj[c];
        sr[j] = dpv;
        rs += pr[j] * dpv;
      }
      rs = warp_sum(rs);
      for (int64_t j = lane; j < l; j += WARP) sr[j] = pr[j] * (sr[j] - rs) * scale;
      __syncwarp();  // every lane reads the whole dS row below
      for (int64_t c = lane; c < dh; c += WARP) {
        const float *kc = rows + d + c;
        float acc = 0.0f;
        for (int64_t j = 0; j < l; j++) acc += sr[j] * kc[j * d3];
        dr[i * d3 + c] = acc;
      }
    }
    __syncthreads();  // the column phase reads dS rows of every warp
    for (int64_t j = warp; j < l; j += nwarp) {
      for (int64_t c = lane; c < dh; c += WARP) {
        float dk = 0.0f, dv = 0.0f;
        for (int64_t i = 0; i < l; i++) {
          dk += sb[i * t + j] * rows[i * d3 + c];
          dv += pb[i * t + j] * g[i * d + c];
        }
        dr[j * d3 + d + c] = dk;
        dr[j * d3 + 2 * d + c] = dv;
      }
    }
    for (int64_t e = threadIdx.x; e < (t - l) * dh; e += blockDim.x) {
      int64_t i = l + e / dh, c = e % dh;
      dr[i * d3 + c] = 0.0f;
      dr[i * d3 + d + c] = 0.0f;
      dr[i * d3 + 2 * d + c] = 0.0f;
    }
  }
}

// ---- DIN: wp [a1, 2d] = [W1a + W1c, W1d]; wq [a1, d] = W1b - W1c ----
__global__ void k_din_regroup(const float *w1, int64_t d, int64_t a1, float *wp, float *wq) {
  CU_GRID_STRIDE(e, a1 * d) {
    int64_t u = e / d, c = e - u * d;
    const float *r = w1 + u * 4 * d;
    wp[u * 2 * d + c] = r[c] + r[2 * d + c];
    wp[u * 2 * d + d + c] = r[3 * d + c];
    wq[u * d + c] = r[d + c] - r[2 * d + c];
  }
}

// ---- z[b*t + i] = [h, h * q_b] for i < len[b], zeros on padding rows ----
__global__ void k_din_z(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                        const float *q, int64_t ldq, float *z) {
  CU_GRID_STRIDE(e, b * t * d) {
    int64_t row = e / d, c = e - row * d, bb = row / t, i = row - bb * t;
    float h = 0.0f, hq = 0.0f;
    if (i < seq_len(len, bb, t)) {
      h = x[e];
      hq = h * q[bb * ldq + c];
    }
    z[row * 2 * d + c] = h;
    z[row * 2 * d + d + c] = hq;
  }
}

// ---- first sigmoid layer: h1 = s(pre + cq_b + b1) in place (0 on padding rows) and into the
// packed rows of save ----
__global__ void k_din_sig1(float *h1, const float *cq, const float *b1, const int32_t *len,
                           const int64_t *base, int64_t b, int64_t t, int64_t a1, float *save_h1) {
  CU_GRID_STRIDE(e, b * t * a1) {
    int64_t row = e / a1, u = e - row * a1, bb = row / t, i = row - bb * t;
    float v = 0.0f;
    if (i < seq_len(len, bb, t)) {
      v = sigmoidf_(h1[e] + cq[bb * a1 + u] + b1[u]);
      save_h1[(base[bb] + i) * a1 + u] = v;
    }
    h1[e] = v;
  }
}

// ---- second sigmoid layer and the output unit, one warp per valid row: hidden2 = s(pre + b2)
// and a = hidden2 . w3 + b3 into the packed rows of save ----
__global__ void k_din_out(const float *h2, const float *b2, const float *w3, const float *b3,
                          const int32_t *len, const int64_t *base, int64_t b, int64_t t,
                          int64_t a2, float *save_h2, float *save_att) {
  const int lane = threadIdx.x % WARP;
  const int64_t nw = (int64_t)gridDim.x * blockDim.x / WARP;
  for (int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / WARP; row < b * t;
       row += nw) {
    const int64_t bb = row / t, i = row - bb * t;
    if (i >= seq_len(len, bb, t)) continue;  // uniform over the warp
    const int64_t r = base[bb] + i;
    float acc = 0.0f;
    for (int64_t v = lane; v < a2; v += WARP) {
      float hv = sigmoidf_(h2[row * a2 + v] + b2[v]);
      save_h2[r * a2 + v] = hv;
      acc += hv * w3[v];
    }
    const float a = warp_sum(acc) + b3[0];
    if (lane == 0) save_att[r] = a;
  }
}

// ---- read-out, one thread per (sample, column): pooled = sum_i a_i h_i in position order,
// scaled = a_i h_i (0 on padding rows); either may be NULL ----
__global__ void k_din_pool(const float *x, const int32_t *len, const int64_t *base, int64_t b,
                           int64_t t, int64_t d, const float *att, float *pooled, int64_t ldp,
                           float *scaled) {
  CU_GRID_STRIDE(e, b * d) {
    const int64_t bb = e / d, c = e - bb * d;
    const int64_t l = seq_len(len, bb, t);
    float acc = 0.0f;
    for (int64_t i = 0; i < t; i++) {
      float v = 0.0f;
      if (i < l) {
        // a rounded product, never fused into the sum: pooled gets the same bits whether or
        // not scaled is asked for, and the CPU's rounding (product, then sum)
        v = __fmul_rn(att[base[bb] + i], x[(bb * t + i) * d + c]);
        acc += v;
      }
      if (scaled) scaled[(bb * t + i) * d + c] = v;
    }
    if (pooled) pooled[bb * ldp + c] = acc;
  }
}

// ---- DIN backward through the weighted rows, one warp per row: g = dpooled_b + dscaled_{b,i},
// da = g . h, dx = a g, then g2 = da w3 h2 (1 - h2); h2_u, datt, g2_u unpacked. Padding rows:
// everything 0 ----
__global__ void k_din_bwd_rows(const float *x, const int32_t *len, const int64_t *base, int64_t b,
                               int64_t t, int64_t d, int64_t a2, const float *dpooled,
                               int64_t lddp, const float *dscaled, const float *w3,
                               const float *save_h2, const float *save_att, float *dx,
                               float *datt, float *h2_u, float *g2_u) {
  const int lane = threadIdx.x % WARP;
  const int64_t nw = (int64_t)gridDim.x * blockDim.x / WARP;
  for (int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / WARP; row < b * t;
       row += nw) {
    const int64_t bb = row / t, i = row - bb * t;
    float *dxr = dx + row * d;
    if (i >= seq_len(len, bb, t)) {  // uniform over the warp
      for (int64_t c = lane; c < d; c += WARP) dxr[c] = 0.0f;
      for (int64_t v = lane; v < a2; v += WARP) {
        h2_u[row * a2 + v] = 0.0f;
        g2_u[row * a2 + v] = 0.0f;
      }
      if (lane == 0) datt[row] = 0.0f;
      continue;
    }
    const int64_t r = base[bb] + i;
    const float *h = x + row * d;
    const float *gp = dpooled ? dpooled + bb * lddp : nullptr;
    const float *gs = dscaled ? dscaled + row * d : nullptr;
    float part = 0.0f;
    for (int64_t c = lane; c < d; c += WARP) {
      float gv = (gp ? gp[c] : 0.0f) + (gs ? gs[c] : 0.0f);
      dxr[c] = gv;
      part += gv * h[c];
    }
    const float da = warp_sum(part), a = save_att[r];
    for (int64_t c = lane; c < d; c += WARP) dxr[c] *= a;  // each lane its own columns
    if (lane == 0) datt[row] = da;
    for (int64_t v = lane; v < a2; v += WARP) {
      float hv = save_h2[r * a2 + v];
      h2_u[row * a2 + v] = hv;
      g2_u[row * a2 + v] = da * w3[v] * hv * (1.0f - hv);
    }
  }
}

// ---- through the first sigmoid, one thread per (sample, unit): g1 = dpre1 h1 (1 - h1) in
// place (0 on padding rows); dsum[b, u] = sum of g1 over the sample's positions in order ----
__global__ void k_din_g1(float *g1, const float *h1_u, const int32_t *len, int64_t b, int64_t t,
                         int64_t a1, float *dsum) {
  CU_GRID_STRIDE(e, b * a1) {
    const int64_t bb = e / a1, u = e - bb * a1;
    const int64_t l = seq_len(len, bb, t);
    float acc = 0.0f;
    for (int64_t i = 0; i < t; i++) {
      const int64_t idx = (bb * t + i) * a1 + u;
      float gv = 0.0f;
      if (i < l) {
        float hv = h1_u[idx];
        gv = g1[idx] * (hv * (1.0f - hv));
        acc += gv;
      }
      g1[idx] = gv;
    }
    dsum[e] = acc;
  }
}

// ---- dW1 += [G_h, G_q, G_h - G_q, G_hq] (gz [a1, 2d] = [G_h, G_hq], gq [a1, d]) ----
__global__ void k_din_dw1(const float *gz, const float *gq, int64_t d, int64_t a1, float *dw1) {
  CU_GRID_STRIDE(e, a1 * d) {
    const int64_t u = e / d, c = e - u * d;
    float *r = dw1 + u * 4 * d;
    const float gh = gz[u * 2 * d + c], ghq = gz[u * 2 * d + d + c], gqv = gq[e];
    r[c] += gh;
    r[d + c] += gqv;
    r[2 * d + c] += gh - gqv;
    r[3 * d + c] += ghq;
  }
}

// ---- one thread per (sample, column): dx += dz_h + q dz_hq on valid rows; dq += sum_i h_i
// dz_hq,i in position order ----
__global__ void k_din_dxdq(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                           const float *q, int64_t ldq, const float *dz, float *dx, float *dq) {
  CU_GRID_STRIDE(e, b * d) {
    const int64_t bb = e / d, c = e - bb * d;
    const int64_t l = seq_len(len, bb, t);
    const float qc = q[bb * ldq + c];
    float acc = dq[bb * ldq + c];
    for (int64_t i = 0; i < l; i++) {
      const int64_t row = bb * t + i;
      const float gh = dz[row * 2 * d + c], ghq = dz[row * 2 * d + d + c];
      dx[row * d + c] += gh + qc * ghq;
      acc += x[row * d + c] * ghq;
    }
    dq[bb * ldq + c] = acc;
  }
}

// ---- host helpers ----

int32_t shape_check(cuda_state *s, const char *op, int64_t b, int64_t t) {
  if (b < 0 || t < 0)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: bad shape b=%lld t=%lld", op, (long long)b,
                   (long long)t);
  return 0;
}

// the heads, then the shape
int32_t mha_check(cuda_state *s, const char *op, int64_t b, int64_t t, int64_t d, int32_t heads) {
  if (d < 1 || heads < 1 || d % heads)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: d = %lld not divisible into %d heads", op,
                   (long long)d, (int)heads);
  return shape_check(s, op, b, t);
}

// the layer sizes, then the shape
int32_t din_check(cuda_state *s, const char *op, int64_t b, int64_t t, int64_t d, int32_t a1,
                  int32_t a2) {
  if (d < 1 || a1 < 1 || a2 < 1)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: d = %lld, hidden %d, %d must be >= 1", op,
                   (long long)d, (int)a1, (int)a2);
  return shape_check(s, op, b, t);
}

// base[0..b] on the device
int32_t seq_base(cuda_state *s, const int32_t *len, int64_t b, int64_t t, int64_t *base) {
  return launch_seq_base<SCAN_THREADS>(s, len, b, t, base, "cuda attention: length scan kernel");
}

// warp-per-row kernels: 8 warps a block, enough blocks for one warp per row (capped)
constexpr int ROW_THREADS = 256;
unsigned row_blocks(int64_t rows) { return cu_blocks(rows * WARP, ROW_THREADS); }

}  // namespace

int32_t cu_mha_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                   int64_t d, int32_t heads, const float *p, float *y, float *save) {
  CU_ENTER(state);
  CU_TRY(mha_check(s, "mha_fwd", b, t, d, heads));
  if (b == 0 || t == 0) return 0;
  const int64_t cap = b * t, d3 = 3 * d, dh = d / heads;
  const float scale = 1.0f / sqrtf((float)dh);
  const float *wqkv = p, *bqkv = p + d3 * d, *wo = bqkv + d3, *bo = wo + d * d;

  cu_scratch_scope sc(s);
  int64_t *base;
  float *qkv_u, *ctx_u;
  if (!take(sc, base, b + 1) || !take(sc, qkv_u, cap * d3) || !take(sc, ctx_u, cap * d) ||
      (!save && !take(sc, save, ameir__mha_save(b, t, d, heads))))
    return sc.status();
  float *qkv = save, *prob = save + cap * d3, *ctx = prob + b * heads * t * t;

  CU_TRY(seq_base(s, len, b, t, base));
  // qkv over every row (padding rows' results are never packed), packed with the bias
  CU_TRY(cu_gemm(s, 0, 1, cap, d3, d, 1.0f, x, d, wqkv, d, 0.0f, qkv_u, d3));
  k_pack_rows<<<cu_blocks(cap * d3), CU_THREADS, 0, s->stream>>>(qkv_u, d3, bqkv, len, base, b,
                                                                 t, d3, qkv, d3);
  CU_LAUNCHED("cuda mha_fwd: pack kernel");
  k_mha_fwd<<<cu_blocks(b * heads, 1), ATT_THREADS, 0, s->stream>>>(
      qkv, len, base, b, t, d, heads, scale, prob, ctx, ctx_u);
  CU_LAUNCHED("cuda mha_fwd: attention kernel");
  CU_TRY(cu_gemm(s, 0, 1, cap, d, d, 1.0f, ctx_u, d, wo, d, 0.0f, y, d));
  k_bias_mask<<<cu_blocks(cap * d), CU_THREADS, 0, s->stream>>>(y, bo, len, b, t, d);
  CU_LAUNCHED("cuda mha_fwd: output bias kernel");
  return 0;
}

int32_t cu_mha_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                   int64_t d, int32_t heads, const float *p, const float *dy, const float *save,
                   float *dx, float *dp) {
  CU_ENTER(state);
  CU_TRY(mha_check(s, "mha_bwd", b, t, d, heads));
  if (b == 0 || t == 0) return 0;
  const int64_t cap = b * t, d3 = 3 * d, dh = d / heads;
  const float scale = 1.0f / sqrtf((float)dh);
  const float *qkv = save, *prob = save + cap * d3, *ctx = prob + b * heads * t * t;
  const float *wqkv = p, *wo = p + d3 * d + d3;
  float *dwqkv = dp, *dbqkv = dp + d3 * d, *dwo = dbqkv + d3, *dbo = dwo + d * d;

  cu_scratch_scope sc(s);
  int64_t *base;
  float *x_u, *dy_u, *ctx_u, *dctx_u, *dqkv_u, *dsb;
  if (!take(sc, base, b + 1) || !take(sc, x_u, cap * d) || !take(sc, dy_u, cap * d) ||
      !take(sc, ctx_u, cap * d) || !take(sc, dctx_u, cap * d) || !take(sc, dqkv_u, cap * d3) ||
      !take(sc, dsb, b * heads * t * t))
    return sc.status();

  CU_TRY(seq_base(s, len, b, t, base));
  // zero-padded copies of x, dy and the saved context: every GEMM below sums over rows
  const unsigned gd = cu_blocks(cap * d);
  k_gather_rows<<<gd, CU_THREADS, 0, s->stream>>>(x, d, nullptr, len, b, t, d, x_u, d);
  CU_LAUNCHED("cuda mha_bwd: mask kernel (x)");
  k_gather_rows<<<gd, CU_THREADS, 0, s->stream>>>(dy, d, nullptr, len, b, t, d, dy_u, d);
  CU_LAUNCHED("cuda mha_bwd: mask kernel (dy)");
  k_gather_rows<<<gd, CU_THREADS, 0, s->stream>>>(ctx, d, base, len, b, t, d, ctx_u, d);
  CU_LAUNCHED("cuda mha_bwd: unpack kernel (context)");
  // output projection
  CU_TRY(cu_bias_grad(s, dy_u, d, dbo, cap, d));
  CU_TRY(cu_gemm(s, 1, 0, d, d, cap, 1.0f, dy_u, d, ctx_u, d, 1.0f, dwo, d));
  CU_TRY(cu_gemm(s, 0, 0, cap, d, d, 1.0f, dy_u, d, wo, d, 0.0f, dctx_u, d));
  // per (sample, head)
  k_mha_bwd<<<cu_blocks(b * heads, 1), ATT_THREADS, 0, s->stream>>>(
      qkv, prob, dctx_u, len, base, b, t, d, heads, scale, dsb, dqkv_u);
  CU_LAUNCHED("cuda mha_bwd: attention kernel");
  // input projection (dqkv_u padding rows are 0, so dx's padding rows come out 0)
  CU_TRY(cu_bias_grad(s, dqkv_u, d3, dbqkv, cap, d3));
  CU_TRY(cu_gemm(s, 1, 0, d3, d, cap, 1.0f, dqkv_u, d3, x_u, d, 1.0f, dwqkv, d));
  CU_TRY(cu_gemm(s, 0, 0, cap, d, d3, 1.0f, dqkv_u, d3, wqkv, d, 0.0f, dx, d));
  return 0;
}

int32_t cu_din_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                   int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                   const float *p, float *pooled, int64_t ldp, float *scaled, float *save) {
  CU_ENTER(state);
  CU_TRY(din_check(s, "din_fwd", b, t, d, a1, a2));
  if (b == 0) return 0;
  if (t == 0) {  // no positions: pooled is 0 (the CPU's result too)
    if (pooled) {
      k_din_pool<<<cu_blocks(b * d), CU_THREADS, 0, s->stream>>>(x, len, nullptr, b, 0, d, nullptr,
                                                                pooled, ldp, nullptr);
      CU_LAUNCHED("cuda din_fwd: read-out kernel");
    }
    return 0;
  }
  const int64_t cap = b * t;
  const float *w1 = p, *b1 = w1 + (int64_t)a1 * 4 * d, *w2 = b1 + a1, *b2 = w2 + (int64_t)a2 * a1;
  const float *w3 = b2 + a2, *b3 = w3 + a2;

  cu_scratch_scope sc(s);
  int64_t *base;
  float *wp, *cq, *z, *h1, *h2;
  if (!take(sc, base, b + 1) || !take(sc, wp, (int64_t)a1 * 3 * d) || !take(sc, cq, b * a1) ||
      !take(sc, z, cap * 2 * d) || !take(sc, h1, cap * a1) || !take(sc, h2, cap * a2) ||
      (!save && !take(sc, save, ameir__din_save(b, t, d, a1, a2))))
    return sc.status();
  float *wq = wp + (int64_t)a1 * 2 * d;
  float *hid1 = save, *hid2 = save + cap * a1, *att = hid2 + cap * a2;

  CU_TRY(seq_base(s, len, b, t, base));
  k_din_regroup<<<cu_blocks((int64_t)a1 * d), CU_THREADS, 0, s->stream>>>(w1, d, a1, wp, wq);
  CU_LAUNCHED("cuda din_fwd: regroup kernel");
  k_din_z<<<cu_blocks(cap * d), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, q, ldq, z);
  CU_LAUNCHED("cuda din_fwd: input kernel");
  // layer 1: s(z wp^T + q wq^T + b1)
  CU_TRY(cu_gemm(s, 0, 1, b, a1, d, 1.0f, q, ldq, wq, d, 0.0f, cq, a1));
  CU_TRY(cu_gemm(s, 0, 1, cap, a1, 2 * d, 1.0f, z, 2 * d, wp, 2 * d, 0.0f, h1, a1));
  k_din_sig1<<<cu_blocks(cap * a1), CU_THREADS, 0, s->stream>>>(h1, cq, b1, len, base, b, t, a1,
                                                                hid1);
  CU_LAUNCHED("cuda din_fwd: layer-1 kernel");
  // layer 2 and the output unit
  CU_TRY(cu_gemm(s, 0, 1, cap, a2, a1, 1.0f, h1, a1, w2, a1, 0.0f, h2, a2));
  k_din_out<<<row_blocks(cap), ROW_THREADS, 0, s->stream>>>(h2, b2, w3, b3, len, base, b, t, a2,
                                                            hid2, att);
  CU_LAUNCHED("cuda din_fwd: output-unit kernel");
  if (pooled || scaled) {
    k_din_pool<<<cu_blocks(b * d), CU_THREADS, 0, s->stream>>>(x, len, base, b, t, d, att, pooled,
                                                              ldp, scaled);
    CU_LAUNCHED("cuda din_fwd: read-out kernel");
  }
  return 0;
}

int32_t cu_din_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                   int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                   const float *p, const float *dpooled, int64_t lddp, const float *dscaled,
                   const float *save, float *dx, float *dq, float *dp) {
  CU_ENTER(state);
  CU_TRY(din_check(s, "din_bwd", b, t, d, a1, a2));
  if (b == 0 || t == 0) return 0;
  const int64_t cap = b * t;
  const float *hid1 = save, *hid2 = save + cap * a1, *att = hid2 + cap * a2;
  const float *w1 = p, *w2 = w1 + (int64_t)a1 * 4 * d + a1, *w3 = w2 + (int64_t)a2 * a1 + a2;
  float *dw1 = dp, *db1 = dw1 + (int64_t)a1 * 4 * d, *dw2 = db1 + a1,
        *db2 = dw2 + (int64_t)a2 * a1, *dw3 = db2 + a2, *db3 = dw3 + a2;

  cu_scratch_scope sc(s);
  int64_t *base;
  float *wp, *gz, *z, *datt, *h2_u, *g2_u, *h1_u, *g1_u, *dsum;  // z, then (once gz is taken) dz
  if (!take(sc, base, b + 1) || !take(sc, wp, (int64_t)a1 * 3 * d) ||
      !take(sc, gz, (int64_t)a1 * 3 * d) || !take(sc, z, cap * 2 * d) || !take(sc, datt, cap) ||
      !take(sc, h2_u, cap * a2) || !take(sc, g2_u, cap * a2) || !take(sc, h1_u, cap * a1) ||
      !take(sc, g1_u, cap * a1) || !take(sc, dsum, b * a1))
    return sc.status();
  float *wq = wp + (int64_t)a1 * 2 * d, *gq = gz + (int64_t)a1 * 2 * d;

  CU_TRY(seq_base(s, len, b, t, base));
  k_din_regroup<<<cu_blocks((int64_t)a1 * d), CU_THREADS, 0, s->stream>>>(w1, d, a1, wp, wq);
  CU_LAUNCHED("cuda din_bwd: regroup kernel");
  k_din_z<<<cu_blocks(cap * d), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, q, ldq, z);
  CU_LAUNCHED("cuda din_bwd: input kernel");
  k_gather_rows<<<cu_blocks(cap * a1), CU_THREADS, 0, s->stream>>>(hid1, a1, base, len, b, t, a1,
                                                                   h1_u, a1);
  CU_LAUNCHED("cuda din_bwd: unpack kernel (hidden1)");
  // the weighted rows, the output unit and the second sigmoid
  k_din_bwd_rows<<<row_blocks(cap), ROW_THREADS, 0, s->stream>>>(
      x, len, base, b, t, d, a2, dpooled, lddp, dscaled, w3, hid2, att, dx, datt, h2_u, g2_u);
  CU_LAUNCHED("cuda din_bwd: row kernel");
  CU_TRY(cu_bias_grad(s, datt, 1, db3, cap, 1));
  CU_TRY(cu_gemm(s, 1, 0, a2, 1, cap, 1.0f, h2_u, a2, datt, 1, 1.0f, dw3, 1));
  CU_TRY(cu_bias_grad(s, g2_u, a2, db2, cap, a2));
  CU_TRY(cu_gemm(s, 1, 0, a2, a1, cap, 1.0f, g2_u, a2, h1_u, a1, 1.0f, dw2, a1));
  CU_TRY(cu_gemm(s, 0, 0, cap, a1, a2, 1.0f, g2_u, a2, w2, a1, 0.0f, g1_u, a1));
  // the first sigmoid; per-sample sums for the q term
  k_din_g1<<<cu_blocks(b * a1), CU_THREADS, 0, s->stream>>>(g1_u, h1_u, len, b, t, a1, dsum);
  CU_LAUNCHED("cuda din_bwd: layer-1 kernel");
  CU_TRY(cu_bias_grad(s, g1_u, a1, db1, cap, a1));
  CU_TRY(cu_gemm(s, 1, 0, a1, 2 * d, cap, 1.0f, g1_u, a1, z, 2 * d, 0.0f, gz, 2 * d));
  CU_TRY(cu_gemm(s, 1, 0, a1, d, b, 1.0f, dsum, a1, q, ldq, 0.0f, gq, d));
  k_din_dw1<<<cu_blocks((int64_t)a1 * d), CU_THREADS, 0, s->stream>>>(gz, gq, d, a1, dw1);
  CU_LAUNCHED("cuda din_bwd: dW1 kernel");
  float *dz = z;  // z is dead once gz is queued (one stream: the GEMM above has read it)
  CU_TRY(cu_gemm(s, 0, 0, cap, 2 * d, a1, 1.0f, g1_u, a1, wp, 2 * d, 0.0f, dz, 2 * d));
  CU_TRY(cu_gemm(s, 0, 0, b, d, a1, 1.0f, dsum, a1, wq, d, 1.0f, dq, ldq));
  k_din_dxdq<<<cu_blocks(b * d), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, q, ldq, dz, dx, dq);
  CU_LAUNCHED("cuda din_bwd: input-gradient kernel");
  return 0;
}
