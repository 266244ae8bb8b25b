// The CUDA backend: element-wise activations, Dice, LayerNorm, dropout, the BCE loss, Adam in
// its three forms and the sum of squares. References: src/cpu/cpu_act.c, cpu_norm.c,
// cpu_optim.c and cpu_blas.c (sumsq).
//
// Choices that matter
// - Column statistics (Dice, LayerNorm's dgamma/dbeta) are fixed-shape reductions: tiles of cw
//   columns (a power of two <= 32) x ry = 256/cw row lanes, over a fixed number of row chunks
//   (a function of m only); each chunk is reduced by a fixed tree in shared memory into a
//   partial, and a second kernel adds the partials in chunk order. No atomics anywhere, so the
//   bits depend on the shape only. Dice's statistics are in double like the CPU's: each chunk
//   gives a two-pass (mean, M2) and the chunks are merged in order with Chan's formula, which
//   is as robust as the CPU's whole-column two-pass.
// - Row statistics (LayerNorm) take one group of G lanes (4..32, from n) per row, reduced with
//   xor shuffles: every lane ends with the same bits (float addition commutes), and the loop
//   over row groups is uniform per block so full-mask shuffles are legal.
// - Backward ops that also reduce columns (LayerNorm, Dice) run the column reduction BEFORE
//   writing dx, so dx may alias dy as on the CPU.
// - Adam is bit-identical to the CPU: the constants are computed on the host with the CPU's
//   formula (double pow, rounded to float) and the update uses __f*_rn intrinsics, which keep
//   nvcc from contracting into FMAs, in the CPU's operation order. adam_table_dense leaves row
//   0 (the padding row) alone and takes the first of duplicated rows, as the CPU does.
// - Dropout's mask is the CPU's counter-based hash (ameir__hash2 / ameir__u01f, base.h) ported
//   verbatim: the same (seed, offset + i) gives the same mask on both backends.
// - The loss and sumsq are reduced in double: per block a tree over a grid-stride slice (the
//   grid depends on n only), then one block adds the partials by a tree, and cu_fetch_small
//   hands the double to the host.
// - Transcendentals are CUDA's accurate expf/erfcf (no fast-math intrinsics); they differ from
//   the CPU's polynomial versions by a few ulp, far inside the parity tolerance.
#include <cmath>
#include <type_traits>

#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

// ---------------------------------------------------------------------------------------------
// shared helpers

// Phi(x) = erfc(-x / sqrt 2) / 2: keeps its relative accuracy in the left tail
__device__ __forceinline__ float phif_(float x) {
  return 0.5f * erfcf(-x * 0.70710678118654752440f);
}

// base.h's counter-based RNG, verbatim
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
__device__ __forceinline__ float u01f(uint64_t key, uint64_t counter) {
  uint64_t h = mix64(key ^ mix64(counter + 0x632be59bd9b4e019ull));
  return (float)(h >> 40) * (1.0f / 16777216.0f);
}

// sh[threadIdx.x] = v, then a fixed tree over the blockDim.x (a power of two) values of sh;
// the sum lands in sh[0]. Every thread of the block must call it.
template <typename T>
__device__ __forceinline__ void block_tree(T *sh, T v) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int st = blockDim.x / 2; st > 0; st >>= 1) {
    if ((int)threadIdx.x < st) sh[threadIdx.x] += sh[threadIdx.x + st];
    __syncthreads();
  }
}

// Column reductions use the tiling of cu_dev.cuh (make_tiling, chunk_lo, col_tree).

// Generic column reduction of NQ quantities of type T: block (tile, chunk), thread (tx, ty)
// adds f(i, j, acc) for rows lo+ty, lo+ty+ry, ... (ascending), then a fixed tree over ty.
// part[(q * nchunks + c) * n + j] receives chunk c's sum of quantity q in column j.
template <typename T, int NQ, class F>
__global__ void k_colred(F f, int64_t m, int64_t n, int cw, int64_t ntiles, int64_t nchunks,
                         T *part) {
  __shared__ T sh[NQ][COL_THREADS];
  const int ry = COL_THREADS / cw;
  const int tx = threadIdx.x % cw, ty = threadIdx.x / cw;
  for (int64_t blk = blockIdx.x; blk < ntiles * nchunks; blk += gridDim.x) {
    int64_t tile = blk % ntiles, c = blk / ntiles;
    int64_t lo = chunk_lo(m, nchunks, c), hi = chunk_lo(m, nchunks, c + 1);
    int64_t j = tile * cw + tx;
    T acc[NQ];
#pragma unroll
    for (int q = 0; q < NQ; q++) acc[q] = T(0);
    if (j < n)
      for (int64_t i = lo + ty; i < hi; i += ry) f(i, j, acc);
#pragma unroll
    for (int q = 0; q < NQ; q++) sh[q][threadIdx.x] = acc[q];
    __syncthreads();
    col_tree<NQ>(&sh[0][0], cw, ry, ty);
    if (ty == 0 && j < n) {
#pragma unroll
      for (int q = 0; q < NQ; q++) part[(q * nchunks + c) * n + j] = sh[q][tx];
    }
    __syncthreads();  // sh is reused by the next tile
  }
}

// ---------------------------------------------------------------------------------------------
// element-wise activations

template <int ACT>
__global__ void k_act_fwd(const float *x, float *y, int64_t n) {
  CU_GRID_STRIDE(i, n) {
    float v = x[i];
    if (ACT == AMEIR_ACT_RELU) y[i] = v > 0.0f ? v : 0.0f;
    else if (ACT == AMEIR_ACT_GELU) y[i] = v * phif_(v);
    else if (ACT == AMEIR_ACT_SWISH) y[i] = v * sigmoidf_(v);
    else y[i] = sigmoidf_(v);  // AMEIR_ACT_SIGMOID
  }
}

// dx may alias dy; y may be NULL (sigmoid then recomputes it)
template <int ACT>
__global__ void k_act_bwd(const float *x, const float *y, const float *dy, float *dx,
                          int64_t n) {
  CU_GRID_STRIDE(i, n) {
    float d = dy[i];
    if (ACT == AMEIR_ACT_RELU) {
      dx[i] = x[i] > 0.0f ? d : 0.0f;  // relu'(0) = 0
    } else if (ACT == AMEIR_ACT_GELU) {  // Phi(x) + x phi(x)
      float xi = x[i];
      float pdf = 0.39894228040143267794f * expf(-0.5f * xi * xi);
      dx[i] = d * (phif_(xi) + xi * pdf);
    } else if (ACT == AMEIR_ACT_SWISH) {  // s + x s (1 - s)
      float xi = x[i];
      float sg = sigmoidf_(xi);
      dx[i] = d * (sg * (1.0f + xi * (1.0f - sg)));
    } else {  // AMEIR_ACT_SIGMOID
      float sg = y ? y[i] : sigmoidf_(x[i]);
      dx[i] = d * (sg * (1.0f - sg));
    }
  }
}

int32_t act_check(cuda_state *s, const char *op, int32_t act) {
  if (act < AMEIR_ACT_IDENTITY || act > AMEIR_ACT_SIGMOID)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: bad activation kind %d (Dice has its own op)", op,
                   (int)act);
  return 0;
}

// the identity: dst = src (nothing to do in place)
int32_t act_identity(cuda_state *s, float *dst, const float *src, int64_t n, const char *what) {
  if (dst != src)
    CU_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice,
                             s->stream),
             what);
  return 0;
}

// Calls f(std::integral_constant<int, ACT>) for an activation other than the identity.
template <class F>
void with_act(int32_t act, F &&f) {
  switch (act) {
    case AMEIR_ACT_RELU: f(std::integral_constant<int, AMEIR_ACT_RELU>{}); break;
    case AMEIR_ACT_GELU: f(std::integral_constant<int, AMEIR_ACT_GELU>{}); break;
    case AMEIR_ACT_SWISH: f(std::integral_constant<int, AMEIR_ACT_SWISH>{}); break;
    default: f(std::integral_constant<int, AMEIR_ACT_SIGMOID>{}); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Dice

// chunk statistics: pmean[c * n + j] = mean of chunk c's rows of column j, pm2[...] = the sum
// of squared deviations from it (two passes over the chunk, in double)
__global__ void k_dice_stats_part(const float *x, int64_t m, int64_t n, int cw, int64_t ntiles,
                                  int64_t nchunks, double *pmean, double *pm2) {
  __shared__ double sh[COL_THREADS];
  const int ry = COL_THREADS / cw;
  const int tx = threadIdx.x % cw, ty = threadIdx.x / cw;
  for (int64_t blk = blockIdx.x; blk < ntiles * nchunks; blk += gridDim.x) {
    int64_t tile = blk % ntiles, c = blk / ntiles;
    int64_t lo = chunk_lo(m, nchunks, c), hi = chunk_lo(m, nchunks, c + 1);
    int64_t j = tile * cw + tx;
    double acc = 0.0;
    if (j < n)
      for (int64_t i = lo + ty; i < hi; i += ry) acc += (double)x[i * n + j];
    sh[threadIdx.x] = acc;
    __syncthreads();
    col_tree<1>(sh, cw, ry, ty);
    double mu = hi > lo ? sh[tx] / (double)(hi - lo) : 0.0;
    __syncthreads();  // everyone has read sh[tx] before it is overwritten
    acc = 0.0;
    if (j < n)
      for (int64_t i = lo + ty; i < hi; i += ry) {
        double d = (double)x[i * n + j] - mu;
        acc += d * d;
      }
    sh[threadIdx.x] = acc;
    __syncthreads();
    col_tree<1>(sh, cw, ry, ty);
    if (ty == 0 && j < n) {
      pmean[c * n + j] = mu;
      pm2[c * n + j] = sh[tx];
    }
    __syncthreads();
  }
}

// merges the chunks in order (Chan et al.), writes mean / inv_std and the running statistics
// (momentum 0.1, unbiased variance; m == 1 keeps the biased 0), as the CPU
__global__ void k_dice_stats_combine(const double *pmean, const double *pm2, int64_t m,
                                     int64_t n, int64_t nchunks, float eps, float *running_mean,
                                     float *running_var, float *mean, float *inv) {
  CU_GRID_STRIDE(j, n) {
    double na = 0.0, mu = 0.0, m2 = 0.0;
    for (int64_t c = 0; c < nchunks; c++) {
      double nb = (double)(chunk_lo(m, nchunks, c + 1) - chunk_lo(m, nchunks, c));
      if (nb == 0.0) continue;
      double mb = pmean[c * n + j], m2b = pm2[c * n + j];
      if (na == 0.0) {
        na = nb;
        mu = mb;
        m2 = m2b;
        continue;
      }
      double nab = na + nb, delta = mb - mu;
      mu += delta * (nb / nab);
      m2 += m2b + delta * delta * (na * nb / nab);
      na = nab;
    }
    double var = m2 / (double)m;  // biased, for normalisation
    mean[j] = (float)mu;
    inv[j] = (float)(1.0 / sqrt(var + (double)eps));
    double unb = m > 1 ? m2 / (double)(m - 1) : var;
    if (running_mean) running_mean[j] = (float)(0.9 * (double)running_mean[j] + 0.1 * mu);
    if (running_var) running_var[j] = (float)(0.9 * (double)running_var[j] + 0.1 * unb);
  }
}

// y = p x + (1-p) alpha x with p = sigmoid((x - mean) inv). Inference (rm != NULL): mean and
// inv from the running statistics (inv in float, as the CPU), written to save when given.
template <typename I>
__global__ void k_dice_y(const float *x, float *y, I total, I n, const float *alpha,
                         const float *mean, const float *inv, const float *rm, const float *rv,
                         float eps, float *save) {
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (I)blockDim.x * gridDim.x) {
    I j = idx % n;
    float mu, iv;
    if (rm) {
      mu = rm[j];
      iv = 1.0f / sqrtf(rv[j] + eps);
      if (save && idx < n) {  // row 0: each column once
        save[j] = mu;
        save[n + j] = iv;
      }
    } else {
      mu = mean[j];
      iv = inv[j];
    }
    float xv = x[idx];
    float p = sigmoidf_((xv - mu) * iv);
    y[idx] = p * xv + (1.0f - p) * alpha[j] * xv;
  }
}

// Dice backward, per element: xh, p and g = dy (1-alpha) x p (1-p) in the CPU's order
struct dice_bwd_terms {
  const float *x, *dy, *alpha, *mean, *inv;
  int64_t n;
  __device__ __forceinline__ void operator()(int64_t i, int64_t j, double *acc) const {
    float xv = x[i * n + j], d = dy[i * n + j];
    float xh = (xv - mean[j]) * inv[j];
    float p = sigmoidf_(xh);
    float g = d * (1.0f - alpha[j]) * xv * p * (1.0f - p);
    acc[0] += (double)g;
    acc[1] += (double)g * (double)xh;
    acc[2] += (double)(d * xv * (1.0f - p));
  }
};

// part: [3][nchunks][n] (sum g, sum g xh, dalpha) -> mg, mgx (float) and dalpha +=
__global__ void k_dice_bwd_combine(const double *part, int64_t m, int64_t n, int64_t nchunks,
                                   float *dalpha, float *mg, float *mgx) {
  CU_GRID_STRIDE(j, n) {
    double sg = 0.0, sgx = 0.0, da = 0.0;
    for (int64_t c = 0; c < nchunks; c++) {
      sg += part[(0 * nchunks + c) * n + j];
      sgx += part[(1 * nchunks + c) * n + j];
      da += part[(2 * nchunks + c) * n + j];
    }
    mg[j] = (float)(sg / (double)m);
    mgx[j] = (float)(sgx / (double)m);
    if (dalpha) dalpha[j] += (float)da;
  }
}

template <typename I>
__global__ void k_dice_bwd_dx(const float *x, const float *dy, float *dx, I total, I n,
                              const float *alpha, const float *mean, const float *inv,
                              const float *mg, const float *mgx) {
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (I)blockDim.x * gridDim.x) {
    I j = idx % n;
    float xv = x[idx], d = dy[idx];
    float a = alpha[j], iv = inv[j];
    float xh = (xv - mean[j]) * iv;
    float p = sigmoidf_(xh);
    float g = d * (1.0f - a) * xv * p * (1.0f - p);
    dx[idx] = d * (p + (1.0f - p) * a) + iv * (g - mg[j] - xh * mgx[j]);
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

// Calls f(std::integral_constant<int, G>) for LayerNorm's group width G (4, 8, 16, 32) from n.
template <class F>
void with_ln_group(int64_t n, F &&f) {
  if (n <= 4) f(std::integral_constant<int, 4>{});
  else if (n <= 8) f(std::integral_constant<int, 8>{});
  else if (n <= 16) f(std::integral_constant<int, 16>{});
  else f(std::integral_constant<int, 32>{});
}

// One group of G lanes per row, the blockDim.x / G groups of a block on consecutive rows; the
// loop over row groups is uniform over the block (every lane reaches the shuffles):
// body(row, lane, valid).
template <int G, class B>
__device__ __forceinline__ void ln_rows(int64_t m, B &&body) {
  const int64_t rpb = blockDim.x / G;
  const int lane = threadIdx.x % G;
  const int64_t grp = threadIdx.x / G;
  for (int64_t base = (int64_t)blockIdx.x * rpb; base < m; base += (int64_t)gridDim.x * rpb) {
    const int64_t i = base + grp;
    body(i, lane, i < m);
  }
}

template <int G>
__global__ void k_ln_fwd(const float *x, float *y, int64_t m, int64_t n, const float *gamma,
                         const float *beta, float eps, float *save) {
  ln_rows<G>(m, [&](int64_t i, int lane, bool ok) {
    const float *xr = x + (ok ? i : 0) * n;
    float sum = 0.0f;
    if (ok)
      for (int64_t j = lane; j < n; j += G) sum += xr[j];
    sum = team_sum<G, 32>(sum);
    const float mu = sum / (float)n;
    float var = 0.0f;
    if (ok)
      for (int64_t j = lane; j < n; j += G) {
        float d = xr[j] - mu;
        var += d * d;
      }
    var = team_sum<G, 32>(var) / (float)n;
    const float rs = 1.0f / sqrtf(var + eps);
    if (ok) {
      float *yr = y + i * n;
      for (int64_t j = lane; j < n; j += G) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
      if (save && lane == 0) {
        save[i] = mu;
        save[m + i] = rs;
      }
    }
  });
}

// dx = rstd (dy gamma - mean(dy gamma) - xh mean(dy gamma xh)), per row
template <int G>
__global__ void k_ln_bwd_dx(const float *x, const float *dy, float *dx, int64_t m, int64_t n,
                            const float *gamma, const float *save) {
  ln_rows<G>(m, [&](int64_t i, int lane, bool ok) {
    const int64_t r = ok ? i : 0;
    const float *xr = x + r * n, *dr = dy + r * n;
    const float mu = save[r], rs = save[m + r];
    float s1 = 0.0f, s2 = 0.0f;
    if (ok)
      for (int64_t j = lane; j < n; j += G) {
        // products rounded on their own (no FMA contraction), as in the dx line below, so
        // that dy*gamma - mean(dy*gamma) is exactly 0 where it must be (n = 1)
        float xh = (xr[j] - mu) * rs, g = __fmul_rn(dr[j], gamma[j]);
        s1 += g;
        s2 += g * xh;
      }
    s1 = team_sum<G, 32>(s1);
    s2 = team_sum<G, 32>(s2);
    const float m1 = s1 / (float)n, m2 = s2 / (float)n;
    if (ok) {
      float *dxr = dx + i * n;
      for (int64_t j = lane; j < n; j += G) {
        float xh = (xr[j] - mu) * rs;
        dxr[j] = rs * (__fsub_rn(__fmul_rn(dr[j], gamma[j]), m1) - xh * m2);
      }
    }
  });
}

// column terms of LayerNorm backward: dy xh (dgamma) and dy (dbeta)
struct ln_bwd_terms {
  const float *x, *dy, *mean, *rstd;
  int64_t n;
  __device__ __forceinline__ void operator()(int64_t i, int64_t j, float *acc) const {
    float d = dy[i * n + j];
    float xh = (x[i * n + j] - mean[i]) * rstd[i];
    acc[0] += d * xh;
    acc[1] += d;
  }
};

// part: [2][nchunks][n] -> dgamma +=, dbeta += (chunks in order)
__global__ void k_ln_bwd_combine(const float *part, int64_t n, int64_t nchunks, float *dgamma,
                                 float *dbeta) {
  CU_GRID_STRIDE(j, n) {
    float sg = 0.0f, sb = 0.0f;
    for (int64_t c = 0; c < nchunks; c++) {
      sg += part[c * n + j];
      sb += part[(nchunks + c) * n + j];
    }
    dgamma[j] += sg;
    dbeta[j] += sb;
  }
}

// ---------------------------------------------------------------------------------------------
// dropout

__global__ void k_dropout_fwd(const float *x, float *y, uint8_t *mask, int64_t n, float p,
                              float scale, uint64_t seed, uint64_t offset) {
  CU_GRID_STRIDE(i, n) {
    uint8_t keep = u01f(seed, offset + (uint64_t)i) >= p;
    mask[i] = keep;
    y[i] = x[i] * (keep ? scale : 0.0f);
  }
}

__global__ void k_dropout_bwd(const float *dy, float *dx, const uint8_t *mask, int64_t n,
                              float scale) {
  CU_GRID_STRIDE(i, n) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
}

// ---------------------------------------------------------------------------------------------
// loss and sum of squares: per-block double partials, then one block

constexpr int RED_THREADS = 256;
constexpr unsigned RED_MAX_BLOCKS = 1024;  // partials; the final block has this many threads

unsigned red_blocks(int64_t n) {
  unsigned b = cu_blocks(n, RED_THREADS);
  return b > RED_MAX_BLOCKS ? RED_MAX_BLOCKS : b;
}

// loss term max(x,0) - x y + log1p(exp(-|x|)) in double (the CPU's stable form); prob and
// dlogit = (sigmoid(x) - y) * scale in float, each optional
__global__ void k_bce(const float *logit, const float *y, int64_t n, float scale, float *dlogit,
                      float *prob, double *part) {
  __shared__ double sh[RED_THREADS];
  double acc = 0.0;
  CU_GRID_STRIDE(i, n) {
    float x = logit[i];
    double xd = x, yd = y[i];
    acc += (xd > 0.0 ? xd : 0.0) - xd * yd + log1p(exp(-fabs(xd)));
    if (dlogit || prob) {
      float p = sigmoidf_(x);
      if (prob) prob[i] = p;
      if (dlogit) dlogit[i] = (p - y[i]) * scale;
    }
  }
  block_tree(sh, acc);
  if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

__global__ void k_sumsq(const float *x, int64_t n, double *part) {
  __shared__ double sh[RED_THREADS];
  double acc = 0.0;
  CU_GRID_STRIDE(i, n) {
    double v = (double)x[i];
    acc += v * v;
  }
  block_tree(sh, acc);
  if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

// *out = sum of part[0..cnt) by a fixed tree (one block of RED_MAX_BLOCKS threads)
__global__ void k_reduce_final(const double *part, int64_t cnt, double *out) {
  __shared__ double sh[RED_MAX_BLOCKS];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < cnt; i += blockDim.x) acc += part[i];
  block_tree(sh, acc);
  if (threadIdx.x == 0) *out = sh[0];
}

// The sum of a double term over n elements, handed to the host in *tot: launch(nb, part)
// queues the per-block kernel (nb = red_blocks(n) blocks of RED_THREADS threads, partials into
// part[0..nb)), `what` names it; one block then adds the partials into part[nb].
template <class L>
int32_t reduce_to_host(cuda_state *s, int64_t n, const char *what, double *tot, L &&launch) {
  const unsigned nb = red_blocks(n);
  cu_scratch_scope sc(s);
  double *part;
  if (!take(sc, part, nb + 1)) return sc.status();
  launch(nb, part);
  CU_LAUNCHED(what);
  k_reduce_final<<<1, RED_MAX_BLOCKS, 0, s->stream>>>(part, (int64_t)nb, part + nb);
  CU_LAUNCHED("cuda reduction: final kernel");
  return cu_fetch_small(s, tot, part + nb, sizeof *tot);
}

// ---------------------------------------------------------------------------------------------
// Adam

using adam_k = ameir__adam_k;   // ops.h: the constants every backend shares

// the CPU's adam_scalar for one element, same operations in the same order, no contraction
__device__ __forceinline__ void adam1(const adam_k &k, float *p, float g, float *m, float *v) {
  float pi = *p;
  float gi = __fadd_rn(g, __fmul_rn(k.l2, pi));
  float mi = __fadd_rn(__fmul_rn(k.b1, *m), __fmul_rn(k.c1, gi));
  float vi = __fadd_rn(__fmul_rn(k.b2, *v), __fmul_rn(__fmul_rn(k.c2, gi), gi));
  *m = mi;
  *v = vi;
  float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bc2s), k.eps);
  *p = __fsub_rn(pi, __fmul_rn(k.step, __fdiv_rn(mi, den)));
}

__global__ void k_adam_dense(adam_k k, float *p, const float *g, float *m, float *v, int64_t n) {
  CU_GRID_STRIDE(i, n) adam1(k, p + i, g[i], m + i, v + i);
}

template <typename I>
__global__ void k_adam_rows(adam_k k, float *table, I dim, const int32_t *rows,
                            const float *grad, I total, float *m, float *v) {
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (I)blockDim.x * gridDim.x) {
    I r = idx / dim, j = idx - r * dim;
    int64_t o = (int64_t)rows[r] * (int64_t)dim + (int64_t)j;
    adam1(k, table + o, grad[idx], m + o, v + o);
  }
}

// first index in rows[lo..hi) with rows[i] >= r (rows ascending)
__device__ __forceinline__ int64_t lower_bound(const int32_t *rows, int64_t lo, int64_t hi,
                                               int64_t r) {
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if ((int64_t)rows[mid] < r) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Tiles of rpb table rows (from row 1: row 0 is the padding row and is never touched). Per
// tile one thread finds the listed rows' range [lo, hi); every element then searches that
// small range for its row (the first of duplicates wins) and takes g = 0 when it is absent.
// Elements of a tile are contiguous in the table: coalesced.
template <typename I>
__global__ void k_adam_table_dense(adam_k k, float *table, int64_t n_table_rows, I dim,
                                   const int32_t *rows, const float *grad, int64_t n_rows,
                                   float *m, float *v, int64_t rpb, int64_t ntiles) {
  __shared__ int64_t sh_lo, sh_hi;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const int64_t r0 = 1 + tile * rpb;
    const int64_t r1 = r0 + rpb < n_table_rows ? r0 + rpb : n_table_rows;
    if (threadIdx.x == 0) {
      sh_lo = lower_bound(rows, 0, n_rows, r0);
      sh_hi = lower_bound(rows, sh_lo, n_rows, r1);
    }
    __syncthreads();
    const int64_t lo = sh_lo, hi = sh_hi;
    const I cnt = (I)(r1 - r0) * dim;
    float *tp = table + r0 * (int64_t)dim, *mp = m + r0 * (int64_t)dim,
          *vp = v + r0 * (int64_t)dim;
    for (I e = threadIdx.x; e < cnt; e += blockDim.x) {
      I rr = e / dim, j = e - rr * dim;
      float g = 0.0f;
      if (lo < hi) {
        int64_t r = r0 + (int64_t)rr;
        int64_t pos = lower_bound(rows, lo, hi, r);
        if (pos < hi && (int64_t)rows[pos] == r) g = grad[pos * (int64_t)dim + (int64_t)j];
      }
      adam1(k, tp + e, g, mp + e, vp + e);
    }
    __syncthreads();  // sh_lo/sh_hi are rewritten by the next tile
  }
}

}  // namespace

// =============================================================================================
// ops

int32_t cu_act_fwd(void *state, int32_t act, const float *x, float *y, int64_t n) {
  CU_ENTER(state);
  CU_TRY(act_check(s, "act_fwd", act));
  if (n <= 0) return 0;
  if (act == AMEIR_ACT_IDENTITY)
    return act_identity(s, y, x, n, "cudaMemcpyAsync (act_fwd identity)");
  with_act(act, [&](auto ac) {
    k_act_fwd<decltype(ac)::value><<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(x, y, n);
  });
  CU_LAUNCHED("cuda act_fwd kernel");
  return 0;
}

int32_t cu_act_bwd(void *state, int32_t act, const float *x, const float *y, const float *dy,
                   float *dx, int64_t n) {
  CU_ENTER(state);
  CU_TRY(act_check(s, "act_bwd", act));
  if (n <= 0) return 0;
  if (act == AMEIR_ACT_IDENTITY)
    return act_identity(s, dx, dy, n, "cudaMemcpyAsync (act_bwd identity)");
  with_act(act, [&](auto ac) {
    k_act_bwd<decltype(ac)::value><<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(x, y, dy, dx, n);
  });
  CU_LAUNCHED("cuda act_bwd kernel");
  return 0;
}

int32_t cu_dice_fwd(void *state, const float *x, float *y, int64_t m, int64_t n,
                    const float *alpha, float *running_mean, float *running_var, float eps,
                    int32_t training, float *save) {
  CU_ENTER(state);
  if (m <= 0 || n <= 0) return 0;
  const int64_t total = m * n;
  const bool small = total <= (int64_t)UINT32_MAX;
  if (!training) {
    if (small)
      k_dice_y<uint32_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
          x, y, (uint32_t)total, (uint32_t)n, alpha, nullptr, nullptr, running_mean,
          running_var, eps, save);
    else
      k_dice_y<int64_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
          x, y, total, n, alpha, nullptr, nullptr, running_mean, running_var, eps, save);
    CU_LAUNCHED("cuda dice_fwd: output kernel");
    return 0;
  }
  cu_scratch_scope sc(s);
  col_tiling t = make_tiling(m, n);
  double *part = static_cast<double *>(sc.get((size_t)(2 * t.nchunks * n) * sizeof(double)));
  if (!part) return sc.status();
  float *stats = save;
  if (!stats) {
    stats = static_cast<float *>(sc.get((size_t)(2 * n) * sizeof(float)));
    if (!stats) return sc.status();
  }
  k_dice_stats_part<<<cu_blocks(t.ntiles * t.nchunks, 1), COL_THREADS, 0, s->stream>>>(
      x, m, n, t.cw, t.ntiles, t.nchunks, part, part + t.nchunks * n);
  CU_LAUNCHED("cuda dice_fwd: statistics kernel");
  k_dice_stats_combine<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(
      part, part + t.nchunks * n, m, n, t.nchunks, eps, running_mean, running_var, stats,
      stats + n);
  CU_LAUNCHED("cuda dice_fwd: combine kernel");
  if (small)
    k_dice_y<uint32_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        x, y, (uint32_t)total, (uint32_t)n, alpha, stats, stats + n, nullptr, nullptr, eps,
        nullptr);
  else
    k_dice_y<int64_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        x, y, total, n, alpha, stats, stats + n, nullptr, nullptr, eps, nullptr);
  CU_LAUNCHED("cuda dice_fwd: output kernel");
  return 0;
}

int32_t cu_dice_bwd(void *state, const float *x, const float *dy, float *dx, int64_t m, int64_t n,
                    const float *alpha, float *dalpha, float eps, const float *save) {
  CU_ENTER(state);
  (void)eps;  // inv_std is in save
  if (m <= 0 || n <= 0) return 0;
  const float *mean = save, *inv = save + n;
  cu_scratch_scope sc(s);
  col_tiling t = make_tiling(m, n);
  double *part = static_cast<double *>(sc.get((size_t)(3 * t.nchunks * n) * sizeof(double)));
  if (!part) return sc.status();
  float *mg = static_cast<float *>(sc.get((size_t)(2 * n) * sizeof(float)));
  if (!mg) return sc.status();
  float *mgx = mg + n;
  dice_bwd_terms f{x, dy, alpha, mean, inv, n};
  k_colred<double, 3><<<cu_blocks(t.ntiles * t.nchunks, 1), COL_THREADS, 0, s->stream>>>(
      f, m, n, t.cw, t.ntiles, t.nchunks, part);
  CU_LAUNCHED("cuda dice_bwd: column kernel");
  k_dice_bwd_combine<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(part, m, n, t.nchunks, dalpha,
                                                                mg, mgx);
  CU_LAUNCHED("cuda dice_bwd: combine kernel");
  const int64_t total = m * n;
  if (total <= (int64_t)UINT32_MAX)
    k_dice_bwd_dx<uint32_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        x, dy, dx, (uint32_t)total, (uint32_t)n, alpha, mean, inv, mg, mgx);
  else
    k_dice_bwd_dx<int64_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        x, dy, dx, total, n, alpha, mean, inv, mg, mgx);
  CU_LAUNCHED("cuda dice_bwd: dx kernel");
  return 0;
}

int32_t cu_layernorm_fwd(void *state, const float *x, float *y, int64_t m, int64_t n,
                         const float *gamma, const float *beta, float eps, float *save) {
  CU_ENTER(state);
  if (m <= 0 || n <= 0) return 0;
  with_ln_group(n, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    k_ln_fwd<G><<<cu_blocks(m, CU_THREADS / G), CU_THREADS, 0, s->stream>>>(x, y, m, n, gamma,
                                                                            beta, eps, save);
  });
  CU_LAUNCHED("cuda layernorm_fwd kernel");
  return 0;
}

int32_t cu_layernorm_bwd(void *state, const float *x, const float *dy, float *dx, int64_t m,
                         int64_t n, const float *gamma, float *dgamma, float *dbeta,
                         const float *save) {
  CU_ENTER(state);
  if (m <= 0 || n <= 0) return 0;
  // column sums first: they read dy, which dx may overwrite
  cu_scratch_scope sc(s);
  col_tiling t = make_tiling(m, n);
  float *part = static_cast<float *>(sc.get((size_t)(2 * t.nchunks * n) * sizeof(float)));
  if (!part) return sc.status();
  ln_bwd_terms f{x, dy, save, save + m, n};
  k_colred<float, 2><<<cu_blocks(t.ntiles * t.nchunks, 1), COL_THREADS, 0, s->stream>>>(
      f, m, n, t.cw, t.ntiles, t.nchunks, part);
  CU_LAUNCHED("cuda layernorm_bwd: column kernel");
  k_ln_bwd_combine<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(part, n, t.nchunks, dgamma,
                                                              dbeta);
  CU_LAUNCHED("cuda layernorm_bwd: combine kernel");
  with_ln_group(n, [&](auto gc) {
    constexpr int G = decltype(gc)::value;
    k_ln_bwd_dx<G><<<cu_blocks(m, CU_THREADS / G), CU_THREADS, 0, s->stream>>>(x, dy, dx, m, n,
                                                                               gamma, save);
  });
  CU_LAUNCHED("cuda layernorm_bwd: dx kernel");
  return 0;
}

int32_t cu_dropout_fwd(void *state, const float *x, float *y, uint8_t *mask, int64_t n, float p,
                       uint64_t seed, uint64_t offset) {
  CU_ENTER(state);
  if (!(p >= 0.0f && p <= 1.0f))
    return cu_fail(s, AMEIR_EINVAL, "cuda dropout_fwd: p = %g not in [0, 1]", (double)p);
  if (n <= 0) return 0;
  float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  k_dropout_fwd<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(x, y, mask, n, p, scale, seed,
                                                            offset);
  CU_LAUNCHED("cuda dropout_fwd kernel");
  return 0;
}

int32_t cu_dropout_bwd(void *state, const float *dy, float *dx, const uint8_t *mask, int64_t n,
                       float p) {
  CU_ENTER(state);
  if (n <= 0) return 0;
  float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  k_dropout_bwd<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(dy, dx, mask, n, scale);
  CU_LAUNCHED("cuda dropout_bwd kernel");
  return 0;
}

int32_t cu_bce_logits(void *state, const float *logit, const float *y, int64_t n, float scale,
                      double *loss, float *dlogit, float *prob) {
  CU_ENTER(state);
  if (n <= 0) {
    *loss = 0.0;
    return 0;
  }
  double tot = 0.0;
  CU_TRY(reduce_to_host(s, n, "cuda bce_logits kernel", &tot, [&](unsigned nb, double *part) {
    k_bce<<<nb, RED_THREADS, 0, s->stream>>>(logit, y, n, scale, dlogit, prob, part);
  }));
  *loss = tot / (double)n;
  return 0;
}

int32_t cu_sumsq(void *state, const float *x, int64_t n, double *out) {
  CU_ENTER(state);
  if (n <= 0) {
    *out = 0.0;
    return 0;
  }
  double tot = 0.0;
  CU_TRY(reduce_to_host(s, n, "cuda sumsq kernel", &tot, [&](unsigned nb, double *part) {
    k_sumsq<<<nb, RED_THREADS, 0, s->stream>>>(x, n, part);
  }));
  *out = tot;
  return 0;
}

int32_t cu_adam_dense(void *state, float *p, const float *g, float *m, float *v, int64_t n,
                      float lr, float b1, float b2, float eps, float l2, int64_t t) {
  CU_ENTER(state);
  if (n <= 0) return 0;
  adam_k k = ameir__adam_consts(lr, b1, b2, eps, l2, t);
  k_adam_dense<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(k, p, g, m, v, n);
  CU_LAUNCHED("cuda adam_dense kernel");
  return 0;
}

int32_t cu_adam_rows(void *state, float *table, int64_t dim, const int32_t *rows,
                     const float *grad, int64_t n_rows, float *m, float *v, float lr, float b1,
                     float b2, float eps, float l2, int64_t t) {
  CU_ENTER(state);
  if (n_rows <= 0 || dim <= 0) return 0;
  adam_k k = ameir__adam_consts(lr, b1, b2, eps, l2, t);
  const int64_t total = n_rows * dim;
  if (total <= (int64_t)UINT32_MAX)
    k_adam_rows<uint32_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        k, table, (uint32_t)dim, rows, grad, (uint32_t)total, m, v);
  else
    k_adam_rows<int64_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(k, table, dim, rows,
                                                                         grad, total, m, v);
  CU_LAUNCHED("cuda adam_rows kernel");
  return 0;
}

int32_t cu_adam_table_dense(void *state, float *table, int64_t n_table_rows, int64_t dim,
                            const int32_t *rows, const float *grad, int64_t n_rows, float *m,
                            float *v, float lr, float b1, float b2, float eps, float l2,
                            int64_t t) {
  CU_ENTER(state);
  if (n_table_rows <= 1 || dim <= 0) return 0;
  if (n_rows < 0) n_rows = 0;
  adam_k k = ameir__adam_consts(lr, b1, b2, eps, l2, t);
  const int64_t rpb = dim >= 1024 ? 1 : 1024 / dim;  // about 1024 elements per tile
  const int64_t ntiles = (n_table_rows - 1 + rpb - 1) / rpb;
  const unsigned grid = cu_blocks(ntiles, 1);
  if (rpb * dim <= (int64_t)UINT32_MAX)
    k_adam_table_dense<uint32_t><<<grid, CU_THREADS, 0, s->stream>>>(
        k, table, n_table_rows, (uint32_t)dim, rows, grad, n_rows, m, v, rpb, ntiles);
  else
    k_adam_table_dense<int64_t><<<grid, CU_THREADS, 0, s->stream>>>(
        k, table, n_table_rows, dim, rows, grad, n_rows, m, v, rpb, ntiles);
  CU_LAUNCHED("cuda adam_table_dense kernel");
  return 0;
}
