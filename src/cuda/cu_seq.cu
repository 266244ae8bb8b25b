// The CUDA backend: Stage 1 sequence ops without recurrence or attention: the padding mask,
// 1-D convolution, kernel-3 pooling and the sum/last read-outs. Reference: src/cpu/cpu_seq.c.
//
// Choices that matter
// - len[] stays on the device: every kernel reads it there, clamped to [0, t] so that a bad
//   length can never make it read or write outside x. (The CPU refuses such a len with
//   AMEIR_EINVAL; checking it here would mean a download and a stream sync per op.)
// - Padding is never read as data: outputs at positions >= len are written 0 explicitly, and
//   every value a padding position holds (NaN in the tests) is either masked before a GEMM or
//   lives in a GEMM row whose result is thrown away (rows are independent in a GEMM).
// - conv1d is im2col + one cuBLAS GEMM: col[(b,i), c*k + j] = x[b, i + (j-(k-1)/2)*dil, c]
//   (0 outside [0, len) and on rows i >= len), so with torch's w[o, c, j] the forward is
//   y = col w^T and the weight gradient dw += dy^T col, both on w in its own layout (no
//   transposed copy, dw accumulated in place by beta = 1). The input gradient uses the same
//   im2col on dy with a flipped weight wf[c, o*k + j] = w[o, c, k-1-j] (tap j of dy at i + delta_j
//   is tap k-1-j seen from i): dx = col(dy) wf^T, again one GEMM. The column buffer is cut into
//   row chunks of a fixed size (a function of the shape only) to bound the scratch; k == 1
//   forward needs no column buffer at all (x itself, padding rows thrown away).
// - Reductions keep the CPU's order where it is cheap to: pooling sums its window in ascending
//   position, max keeps the first maximum in window order and lets NaN through (torch's rule,
//   `v > max || v != v`), max backward adds the dy of the windows pointing at a position in
//   ascending window order (a gather: no atomics), the sum read-out adds positions ascending.
//   dbias goes through cu_bias_grad (fixed-shape chunked column sums).
#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

// rows of the column buffer per chunk: at most this many floats in it
constexpr int64_t CONV_COL_FLOATS = (int64_t)1 << 23;

// ---- col[rr, c*k + j] = src[b, i + (j-(k-1)/2)*dil, c] for row r0 + rr = b*t + i; 0 where the
// source position is outside [0, len) or the row itself is padding (i >= len) ----
__global__ void k_im2col(const float *src, const int32_t *len, int64_t t, int64_t d, int k,
                         int dil, int64_t r0, int64_t rows, float *col) {
  const int64_t dk = d * k;
  const int64_t half = (k - 1) / 2;
  CU_GRID_STRIDE(i, rows * dk) {
    int64_t rr = i / dk, q = i - rr * dk;
    int64_t c = q / k, j = q - c * k;
    int64_t row = r0 + rr, bb = row / t, pos = row - bb * t;
    int64_t l = seq_len(len, bb, t);
    int64_t sp = pos + (j - half) * dil;
    col[i] = (pos < l && sp >= 0 && sp < l) ? src[(bb * t + sp) * d + c] : 0.0f;
  }
}

// ---- y = y + bias on valid rows, 0 on padding (bias may be NULL) ----
__global__ void k_conv_out(float *y, const float *bias, const int32_t *len, int64_t b, int64_t t,
                           int64_t d) {
  CU_GRID_STRIDE(i, b * t * d) {
    int64_t row = i / d, o = i - row * d, pos = row % t, bb = row / t;
    float v = 0.0f;
    if (pos < seq_len(len, bb, t)) v = bias ? y[i] + bias[o] : y[i];
    y[i] = v;
  }
}

// ---- wf[c, o*k + j] = w[o, c, k-1-j] ----
__global__ void k_conv_flip(const float *w, int64_t d, int k, float *wf) {
  const int64_t dk = d * k;
  CU_GRID_STRIDE(i, d * dk) {
    int64_t c = i / dk, q = i - c * dk;
    int64_t o = q / k, j = q - o * k;
    wf[i] = w[(o * d + c) * k + (k - 1 - j)];
  }
}

// ---- pooling, kernel 3, stride 1: window {i-1, i, i+1} cut to [0, len) ----
__global__ void k_pool3_fwd(int kind, const float *x, const int32_t *len, int64_t b, int64_t t,
                            int64_t d, float *y, int32_t *save) {
  CU_GRID_STRIDE(i, b * t * d) {
    int64_t row = i / d, c = i - row * d, pos = row % t, bb = row / t;
    int64_t l = seq_len(len, bb, t);
    if (pos >= l) {  // padding: y = 0, save left as it is (the CPU does not write it there)
      y[i] = 0.0f;
      continue;
    }
    int64_t lo = pos > 0 ? pos - 1 : 0, hi = pos + 1 < l ? pos + 1 : l - 1;
    const float *xb = x + bb * t * d + c;
    float o = xb[lo * d];
    if (kind == 0) {
      float inv = 1.0f / (float)(hi - lo + 1);
      for (int64_t p = lo + 1; p <= hi; p++) o += xb[p * d];
      y[i] = o * inv;
    } else {
      int32_t a = (int32_t)lo;
      for (int64_t p = lo + 1; p <= hi; p++) {
        float v = xb[p * d];
        if (v > o || v != v) {
          o = v;
          a = (int32_t)p;
        }
      }
      y[i] = o;
      save[i] = a;
    }
  }
}

// dx[i] gathers from the (at most 3) windows that hold i, in ascending window order.
__global__ void k_pool3_bwd(int kind, const int32_t *len, int64_t b, int64_t t, int64_t d,
                            const float *dy, const int32_t *save, float *dx) {
  CU_GRID_STRIDE(i, b * t * d) {
    int64_t row = i / d, c = i - row * d, pos = row % t, bb = row / t;
    int64_t l = seq_len(len, bb, t);
    float o = 0.0f;
    if (pos < l) {
      const int64_t off = bb * t * d + c;
      for (int64_t p = pos > 0 ? pos - 1 : 0; p <= pos + 1 && p < l; p++) {
        if (kind == 0) {
          int64_t lo = p > 0 ? p - 1 : 0, hi = p + 1 < l ? p + 1 : l - 1;
          float inv = 1.0f / (float)(hi - lo + 1);
          o += __fmul_rn(dy[off + p * d], inv);  // no fma: the CPU rounds the product
        } else if (save[off + p * d] == (int32_t)pos) {
          o += dy[off + p * d];
        }
      }
    }
    dx[i] = o;
  }
}

// ---- read-outs ----
__global__ void k_readout_fwd(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                              float *sum, int64_t lds, float *last, int64_t ldl) {
  CU_GRID_STRIDE(i, b * d) {
    int64_t bb = i / d, c = i - bb * d;
    int64_t l = seq_len(len, bb, t);
    const float *xb = x + bb * t * d + c;
    if (sum) {
      float o = 0.0f;
      for (int64_t p = 0; p < l; p++) o += xb[p * d];
      sum[bb * lds + c] = o;
    }
    if (last) last[bb * ldl + c] = l > 0 ? xb[(l - 1) * d] : 0.0f;
  }
}

__global__ void k_readout_bwd(const int32_t *len, int64_t b, int64_t t, int64_t d,
                              const float *dsum, int64_t lds, const float *dlast, int64_t ldl,
                              float *dx) {
  CU_GRID_STRIDE(i, b * t * d) {
    int64_t row = i / d, c = i - row * d, pos = row % t, bb = row / t;
    int64_t l = seq_len(len, bb, t);
    if (pos >= l) continue;  // padding rows of dx are not touched (accumulating op)
    bool ls = dlast && pos == l - 1;
    if (!dsum && !ls) continue;
    float v = dx[i];
    if (dsum) v += dsum[bb * lds + c];
    if (ls) v += dlast[bb * ldl + c];
    dx[i] = v;
  }
}

// ---- host helpers ----

int32_t seq_shape(cuda_state *s, const char *op, int64_t b, int64_t t, int64_t d) {
  if (b < 0 || t < 0 || d < 0)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: bad shape b=%lld t=%lld d=%lld", op, (long long)b,
                   (long long)t, (long long)d);
  return 0;
}

// pooling's kind (0 avg, 1 max); max pooling needs save
int32_t pool3_check(cuda_state *s, const char *op, int32_t kind, const void *save) {
  if (kind != 0 && kind != 1)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: kind %d (0 avg, 1 max)", op, (int)kind);
  if (kind == 1 && !save) return cu_fail(s, AMEIR_EINVAL, "cuda %s: max pooling needs save", op);
  return 0;
}

int32_t conv_check(cuda_state *s, const char *op, int64_t d, int32_t k, int32_t dil) {
  if (k < 1 || k % 2 == 0 || dil < 1 || d < 1)
    return cu_fail(s, AMEIR_EINVAL,
                   "cuda %s: kernel %d (odd, >= 1), dilation %d (>= 1), d %lld (>= 1)", op, (int)k,
                   (int)dil, (long long)d);
  return 0;
}

// rows of one im2col chunk (a function of the shape only)
int64_t conv_chunk_rows(int64_t rows, int64_t dk) {
  int64_t r = CONV_COL_FLOATS / dk;
  if (r < 1) r = 1;
  return r < rows ? r : rows;
}

int32_t launch_im2col(cuda_state *s, const float *src, const int32_t *len, int64_t t, int64_t d,
                      int32_t k, int32_t dil, int64_t r0, int64_t rows, float *col) {
  int64_t n = rows * d * k;
  k_im2col<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(src, len, t, d, k, dil, r0, rows, col);
  CU_LAUNCHED("cuda conv1d: im2col kernel");
  return 0;
}

}  // namespace

// ---- mask ----

int32_t cu_seq_mask(void *state, float *y, const float *x, const int32_t *len, int64_t b,
                    int64_t t, int64_t d) {
  CU_ENTER(state);
  CU_TRY(seq_shape(s, "seq_mask", b, t, d));
  int64_t n = b * t * d;
  if (n == 0) return 0;
  k_seq_mask<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(y, x, len, b, t, d);
  CU_LAUNCHED("cuda seq_mask kernel");
  return 0;
}

// ---- 1-D convolution ----

int32_t cu_conv1d_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                      int64_t d, const float *w, const float *bias, int32_t k, int32_t dil,
                      float *y) {
  CU_ENTER(state);
  CU_TRY(conv_check(s, "conv1d_fwd", d, k, dil));
  CU_TRY(seq_shape(s, "conv1d_fwd", b, t, d));
  if (b == 0 || t == 0) return 0;
  const int64_t rows = b * t, dk = d * k;
  if (k == 1) {
    // y = x w^T over every row; padding rows (whatever x holds there) are overwritten below
    CU_TRY(cu_gemm(s, 0, 1, rows, d, d, 1.0f, x, d, w, d, 0.0f, y, d));
  } else {
    cu_scratch_scope sc(s);
    const int64_t cr = conv_chunk_rows(rows, dk);
    float *col = static_cast<float *>(sc.get((size_t)(cr * dk) * sizeof(float)));
    if (!col) return sc.status();
    for (int64_t r0 = 0; r0 < rows; r0 += cr) {
      int64_t m = rows - r0 < cr ? rows - r0 : cr;
      CU_TRY(launch_im2col(s, x, len, t, d, k, dil, r0, m, col));
      CU_TRY(cu_gemm(s, 0, 1, m, d, dk, 1.0f, col, dk, w, dk, 0.0f, y + r0 * d, d));
    }
  }
  k_conv_out<<<cu_blocks(rows * d), CU_THREADS, 0, s->stream>>>(y, bias, len, b, t, d);
  CU_LAUNCHED("cuda conv1d_fwd: bias kernel");
  return 0;
}

// dbias += colsum(dy masked); dw += dy^T col(x); dx = col(dy) wf^T, then padding rows zeroed.
int32_t cu_conv1d_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                      int64_t d, const float *w, int32_t k, int32_t dil, const float *dy,
                      float *dx, float *dw, float *dbias) {
  CU_ENTER(state);
  CU_TRY(conv_check(s, "conv1d_bwd", d, k, dil));
  CU_TRY(seq_shape(s, "conv1d_bwd", b, t, d));
  if (b == 0 || t == 0) return 0;
  const int64_t rows = b * t, dk = d * k, cr = conv_chunk_rows(rows, dk);
  cu_scratch_scope sc(s);
  float *dym = static_cast<float *>(sc.get((size_t)(rows * d) * sizeof(float)));
  if (!dym) return sc.status();
  float *col = static_cast<float *>(sc.get((size_t)(cr * dk) * sizeof(float)));
  if (!col) return sc.status();
  float *wf = static_cast<float *>(sc.get((size_t)(d * dk) * sizeof(float)));
  if (!wf) return sc.status();

  k_seq_mask<<<cu_blocks(rows * d), CU_THREADS, 0, s->stream>>>(dym, dy, len, b, t, d);
  CU_LAUNCHED("cuda conv1d_bwd: mask kernel");
  k_conv_flip<<<cu_blocks(d * dk), CU_THREADS, 0, s->stream>>>(w, d, k, wf);
  CU_LAUNCHED("cuda conv1d_bwd: flip kernel");
  if (dbias) CU_TRY(cu_bias_grad(s, dym, d, dbias, rows, d));
  for (int64_t r0 = 0; r0 < rows; r0 += cr) {
    int64_t m = rows - r0 < cr ? rows - r0 : cr;
    CU_TRY(launch_im2col(s, x, len, t, d, k, dil, r0, m, col));
    CU_TRY(cu_gemm(s, 1, 0, d, dk, m, 1.0f, dym + r0 * d, d, col, dk, 1.0f, dw, dk));
    // same buffer: the GEMM above is queued before on the one stream
    CU_TRY(launch_im2col(s, dy, len, t, d, k, dil, r0, m, col));
    CU_TRY(cu_gemm(s, 0, 1, m, d, dk, 1.0f, col, dk, wf, dk, 0.0f, dx + r0 * d, d));
  }
  k_seq_mask<<<cu_blocks(rows * d), CU_THREADS, 0, s->stream>>>(dx, dx, len, b, t, d);
  CU_LAUNCHED("cuda conv1d_bwd: mask kernel");
  return 0;
}

// ---- pooling ----

int32_t cu_pool3_fwd(void *state, int32_t kind, const float *x, const int32_t *len, int64_t b,
                     int64_t t, int64_t d, float *y, int32_t *save) {
  CU_ENTER(state);
  CU_TRY(pool3_check(s, "pool3_fwd", kind, save));
  CU_TRY(seq_shape(s, "pool3_fwd", b, t, d));
  int64_t n = b * t * d;
  if (n == 0) return 0;
  k_pool3_fwd<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(kind, x, len, b, t, d, y, save);
  CU_LAUNCHED("cuda pool3_fwd kernel");
  return 0;
}

int32_t cu_pool3_bwd(void *state, int32_t kind, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, const float *dy, const int32_t *save, float *dx) {
  CU_ENTER(state);
  CU_TRY(pool3_check(s, "pool3_bwd", kind, save));
  CU_TRY(seq_shape(s, "pool3_bwd", b, t, d));
  int64_t n = b * t * d;
  if (n == 0) return 0;
  k_pool3_bwd<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(kind, len, b, t, d, dy, save, dx);
  CU_LAUNCHED("cuda pool3_bwd kernel");
  return 0;
}

// ---- read-outs ----

int32_t cu_readout_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                       int64_t d, float *sum, int64_t lds, float *last, int64_t ldl) {
  CU_ENTER(state);
  CU_TRY(seq_shape(s, "readout_fwd", b, t, d));
  int64_t n = b * d;
  if (n == 0 || (!sum && !last)) return 0;
  k_readout_fwd<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(x, len, b, t, d, sum, lds, last, ldl);
  CU_LAUNCHED("cuda readout_fwd kernel");
  return 0;
}

int32_t cu_readout_bwd(void *state, const int32_t *len, int64_t b, int64_t t, int64_t d,
                       const float *dsum, int64_t lds, const float *dlast, int64_t ldl,
                       float *dx) {
  CU_ENTER(state);
  CU_TRY(seq_shape(s, "readout_bwd", b, t, d));
  int64_t n = b * t * d;
  if (n == 0 || (!dsum && !dlast)) return 0;
  k_readout_bwd<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(len, b, t, d, dsum, lds, dlast, ldl,
                                                            dx);
  CU_LAUNCHED("cuda readout_bwd kernel");
  return 0;
}
