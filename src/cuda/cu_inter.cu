// CUDA backend: Stage 2 interactions (Hadamard products of field embeddings), the FM
// second-order term and the SE shortcut of eq. (5). Reference: src/cpu/cpu_inter.c and
// src/cpu/cpu_se.c.
//
// Choices that matter
// - Gradients that several terms add into (de of hadamard_bwd/fm_bwd, dq of se_bwd) are
//   written by exactly one thread per element, which adds the terms in the CPU's order: no
//   atomics, and the same sequence of roundings as the CPU. hadamard_bwd runs one thread per
//   (sample, column) that walks every interaction in order, as the CPU's loop does.
// - The interaction lists (fields, order) are device memory. The CPU refuses a bad list with
//   AMEIR_EINVAL; here checking it would cost a synchronisation per call, which the forward
//   must not take. So the kernels check each interaction instead and treat a bad one (order
//   outside [1, max_order], a negative field) as absent: zeros out, no gradient, nothing read
//   out of bounds. The list is the model's own, checked when it is built.
// - Reductions over k (FM, SE's q v and dout . q) use a team of lanes per item and a fixed xor
//   butterfly; dv of se_bwd is a column sum over B*S rows cut into a number of chunks that
//   depends on the shape only, partials summed in chunk order: bits depend on the shape only.
// - SE's two small dense layers go through cu_gemm and the bias gradients through
//   cu_bias_grad, as the CPU uses sgemm and its column sums; the rest are fused kernels.
// - save keeps the CPU layout (z [B,S], hid [B,R], a [B,S]).
#include <cmath>
#include <type_traits>

#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

// the CPU's check_inter for one interaction: order in [1, max_order], its fields >= 0
__device__ __forceinline__ bool inter_ok(const int32_t *fs, int32_t ord, int64_t max_order) {
  if (ord < 1 || ord > max_order) return false;
  for (int32_t t = 0; t < ord; t++)
    if (fs[t] < 0) return false;
  return true;
}

// ---- Hadamard products ----
// One thread per output element (sample, interaction, column), columns fastest.
__global__ void hadamard_fwd_kernel(const float *e, int64_t lde, int64_t b, int64_t k,
                                    const int32_t *fields, const int32_t *order, int64_t n_inter,
                                    int64_t max_order, float *out, int64_t ldo) {
  CU_GRID_STRIDE(idx, b * n_inter * k) {
    const int64_t j = idx % k, rest = idx / k;
    const int64_t i = rest % n_inter, bb = rest / n_inter;
    const int32_t *fs = fields + i * max_order;
    const int32_t ord = order[i];
    const float *eb = e + bb * lde + j;
    float p = 0.0f;
    if (inter_ok(fs, ord, max_order)) {
      p = eb[(int64_t)fs[0] * k];
      for (int32_t t = 1; t < ord; t++) p *= eb[(int64_t)fs[t] * k];
    }
    out[bb * ldo + i * k + j] = p;
  }
}

// One thread per (sample, column): every interaction in order, every position t in order,
// de[f_t] += dout * prod_{u != t} e[f_u] (u ascending), as the CPU. A field repeated within or
// across interactions is updated by this thread only.
__global__ void hadamard_bwd_kernel(const float *e, int64_t lde, int64_t b, int64_t k,
                                    const int32_t *fields, const int32_t *order, int64_t n_inter,
                                    int64_t max_order, const float *dout, int64_t lddo,
                                    float *de) {
  CU_GRID_STRIDE(idx, b * k) {
    const int64_t bb = idx / k, j = idx - bb * k;
    const float *eb = e + bb * lde + j;
    float *deb = de + bb * lde + j;
    const float *db = dout + bb * lddo + j;
    for (int64_t i = 0; i < n_inter; i++) {
      const int32_t *fs = fields + i * max_order;
      const int32_t ord = order[i];
      if (!inter_ok(fs, ord, max_order)) continue;
      const float d = db[i * k];
      for (int32_t t = 0; t < ord; t++) {
        float tmp = d;
        for (int32_t u = 0; u < ord; u++)
          if (u != t) tmp *= eb[(int64_t)fs[u] * k];
        deb[(int64_t)fs[t] * k] += tmp;
      }
    }
  }
}

// ---- FM ----
// One team per sample: out[b] (+)= 0.5 sum_k ((sum_f e)^2 - sum_f e^2)
template <int T>
__global__ void fm_fwd_kernel(const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                              float *out, int32_t accumulate) {
  team_loop<T>(b, [&](int64_t bb, int lane, bool ok) {
    float tot = 0.0f;
    if (ok) {
      const float *eb = e + bb * lde;
      for (int64_t j = lane; j < k; j += T) {
        float sum = 0.0f, sq = 0.0f;
        for (int64_t ff = 0; ff < f; ff++) {
          const float x = eb[ff * k + j];
          sum += x;
          sq += __fmul_rn(x, x);   // rounded product, then the add: as the CPU
        }
        tot += __fmul_rn(sum, sum) - sq;   // no FMA: the CPU rounds the square first
      }
    }
    tot = team_sum<T>(tot);
    if (ok && lane == 0) out[bb] = accumulate ? out[bb] + 0.5f * tot : 0.5f * tot;
  });
}

// One thread per (sample, column): de[b,f,k] += dout[b] (sum_f' e[b,f',k] - e[b,f,k])
__global__ void fm_bwd_kernel(const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                              const float *dout, float *de) {
  CU_GRID_STRIDE(idx, b * k) {
    const int64_t bb = idx / k, j = idx - bb * k;
    const float *eb = e + bb * lde + j;
    float *deb = de + bb * lde + j;
    const float g = dout[bb];
    float sum = 0.0f;
    for (int64_t ff = 0; ff < f; ff++) sum += eb[ff * k];
    for (int64_t ff = 0; ff < f; ff++) deb[ff * k] += g * (sum - eb[ff * k]);
  }
}

// ---- SE shortcut ----
// One team per (sample, feature): z[b, j] = q[b, j, :] . v
template <int T>
__global__ void se_z_kernel(const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                            const float *v, float *z) {
  team_loop<T>(b * sn, [&](int64_t it, int lane, bool ok) {
    float acc = 0.0f;
    if (ok) {
      const int64_t bb = it / sn, j = it - bb * sn;
      const float *qs = q + bb * ldq + j * k;
      for (int64_t t = lane; t < k; t += T) acc += qs[t] * v[t];
    }
    acc = team_sum<T>(acc);
    if (ok && lane == 0) z[it] = acc;
  });
}

// hid = relu(hid + b1) over [B, R] (NaN -> 0, as the CPU's h > 0 ? h : 0)
__global__ void se_bias_relu_kernel(float *hid, const float *b1, int64_t n, int64_t r) {
  CU_GRID_STRIDE(i, n) {
    const float h = hid[i] + b1[i % r];
    hid[i] = h > 0.0f ? h : 0.0f;
  }
}

// a = sigmoid(a + b2) over [B, S]
__global__ void se_bias_sigmoid_kernel(float *a, const float *b2, int64_t n, int64_t sn) {
  CU_GRID_STRIDE(i, n) { a[i] = sigmoidf_(a[i] + b2[i % sn]); }
}

// One thread per (sample, column): out[b, t] = sum_j a[b, j] q[b, j, t] in j order (overwrite)
__global__ void se_out_kernel(const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                              const float *a, float *out, int64_t ldo) {
  CU_GRID_STRIDE(idx, b * k) {
    const int64_t bb = idx / k, t = idx - bb * k;
    const float *ab = a + bb * sn;
    const float *qb = q + bb * ldq + t;
    float o = 0.0f;
    for (int64_t j = 0; j < sn; j++) o += ab[j] * qb[j * k];
    out[bb * ldo + t] = o;
  }
}

// One team per (sample, feature): dq[b, j, :] += a[b,j] dout[b, :];
// da[b, j] = (dout[b] . q[b, j]) a (1 - a)
template <int T>
__global__ void se_da_kernel(const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                             const float *dout, int64_t lddo, const float *a, float *dq,
                             float *da) {
  team_loop<T>(b * sn, [&](int64_t it, int lane, bool ok) {
    float acc = 0.0f, aj = 0.0f;
    if (ok) {
      const int64_t bb = it / sn, j = it - bb * sn;
      const float *d = dout + bb * lddo;
      const float *qs = q + bb * ldq + j * k;
      float *g = dq + bb * ldq + j * k;
      aj = a[it];
      for (int64_t t = lane; t < k; t += T) {
        const float dt = d[t];
        g[t] += aj * dt;
        acc += dt * qs[t];
      }
    }
    acc = team_sum<T>(acc);
    if (ok && lane == 0) da[it] = acc * aj * (1.0f - aj);
  });
}

// dh = 0 where the relu was off (hid is post-relu)
__global__ void se_relu_mask_kernel(float *dh, const float *hid, int64_t n) {
  CU_GRID_STRIDE(i, n) {
    if (!(hid[i] > 0.0f)) dh[i] = 0.0f;
  }
}

// dq[b, j, t] += dz[b, j] v[t]
__global__ void se_dq_kernel(float *dq, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                             const float *dz, const float *v) {
  CU_GRID_STRIDE(idx, b * sn * k) {
    const int64_t t = idx % k, row = idx / k;   // row = b * sn + j
    const int64_t bb = row / sn, j = row - bb * sn;
    dq[bb * ldq + j * k + t] += dz[row] * v[t];
  }
}

// Partials of dv[t] = sum over rows (b, j) of dz[b, j] q[b, j, t]: chunk c of nc over the
// b*sn rows, one thread per (chunk, column), rows in order.
__global__ void se_dv_part_kernel(const float *q, int64_t ldq, int64_t sn, int64_t k,
                                  int64_t rows, int64_t nc, const float *dz, float *part) {
  CU_GRID_STRIDE(idx, nc * k) {
    const int64_t c = idx / k, t = idx - c * k;
    const int64_t lo = rows * c / nc, hi = rows * (c + 1) / nc;
    float acc = 0.0f;
    for (int64_t row = lo; row < hi; row++) {
      const int64_t bb = row / sn, j = row - bb * sn;
      acc += dz[row] * q[bb * ldq + j * k + t];
    }
    part[c * k + t] = acc;
  }
}

// One warp per column: dv[t] += sum_c part[c, t] (lanes strided over c, then a fixed butterfly)
__global__ void se_dv_final_kernel(const float *part, int64_t nc, int64_t k, float *dv) {
  team_loop<32>(k, [&](int64_t t, int lane, bool ok) {
    float acc = 0.0f;
    if (ok)
      for (int64_t c = lane; c < nc; c += 32) acc += part[c * k + t];
    acc = team_sum<32>(acc);
    if (ok && lane == 0) dv[t] += acc;
  });
}

// chunks of se_bwd's dv reduction: about 64 rows each, at most 1024 (shape only)
int64_t dv_chunks(int64_t rows) {
  int64_t c = (rows + 63) / 64;
  if (c > 1024) c = 1024;
  return c < 1 ? 1 : c;
}

// The part of the CPU's check_inter the host can see: with max_order < 1 no order[i] can lie
// in [1, max_order], so the CPU refuses any non-empty list.
int32_t check_max_order(cuda_state *s, const char *op, int64_t max_order) {
  if (max_order < 1)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: max_order %lld < 1: no order[i] fits", op,
                   (long long)max_order);
  return AMEIR_OK;
}

}  // namespace

int32_t cu_hadamard_fwd(void *state, const float *e, int64_t lde, int64_t b, int64_t k,
                        const int32_t *fields, const int32_t *order, int64_t n_inter,
                        int64_t max_order, float *out, int64_t ldo) {
  CU_ENTER(state);
  if (n_inter <= 0) return AMEIR_OK;
  CU_TRY(check_max_order(s, "hadamard_fwd", max_order));
  if (b <= 0 || k <= 0) return AMEIR_OK;
  hadamard_fwd_kernel<<<cu_blocks(b * n_inter * k), CU_THREADS, 0, s->stream>>>(
      e, lde, b, k, fields, order, n_inter, max_order, out, ldo);
  CU_LAUNCHED("hadamard_fwd kernel");
  return AMEIR_OK;
}

int32_t cu_hadamard_bwd(void *state, const float *e, int64_t lde, int64_t b, int64_t k,
                        const int32_t *fields, const int32_t *order, int64_t n_inter,
                        int64_t max_order, const float *dout, int64_t lddo, float *de) {
  CU_ENTER(state);
  if (n_inter <= 0) return AMEIR_OK;
  CU_TRY(check_max_order(s, "hadamard_bwd", max_order));
  if (b <= 0 || k <= 0) return AMEIR_OK;
  hadamard_bwd_kernel<<<cu_blocks(b * k), CU_THREADS, 0, s->stream>>>(
      e, lde, b, k, fields, order, n_inter, max_order, dout, lddo, de);
  CU_LAUNCHED("hadamard_bwd kernel");
  return AMEIR_OK;
}

int32_t cu_fm_fwd(void *state, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                  float *out, int32_t accumulate) {
  CU_ENTER(state);
  if (b <= 0) return AMEIR_OK;
  with_team(team_width(k), [&](auto tc) {
    constexpr int T = decltype(tc)::value;
    fm_fwd_kernel<T><<<cu_blocks(b * T), CU_THREADS, 0, s->stream>>>(e, lde, b, f, k, out,
                                                                      accumulate);
  });
  CU_LAUNCHED("fm_fwd kernel");
  return AMEIR_OK;
}

int32_t cu_fm_bwd(void *state, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                  const float *dout, float *de) {
  CU_ENTER(state);
  if (b <= 0 || f <= 0 || k <= 0) return AMEIR_OK;
  fm_bwd_kernel<<<cu_blocks(b * k), CU_THREADS, 0, s->stream>>>(e, lde, b, f, k, dout, de);
  CU_LAUNCHED("fm_bwd kernel");
  return AMEIR_OK;
}

int32_t cu_se_fwd(void *state, const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                  const float *v, const float *w1, const float *b1, int64_t r, const float *w2,
                  const float *b2, float *out, int64_t ldo, float *save) {
  CU_ENTER(state);
  if (b <= 0) return AMEIR_OK;
  cu_scratch_scope sc(s);
  if (!save) {   // inference: z, hid, a in scratch
    save = static_cast<float *>(sc.get((size_t)(b * (2 * sn + r)) * sizeof(float)));
    if (!save) return sc.status();
  }
  float *z = save, *hid = save + b * sn, *a = save + b * (sn + r);
  with_team(team_width(k), [&](auto tc) {
    constexpr int T = decltype(tc)::value;
    se_z_kernel<T><<<cu_blocks(b * sn * T), CU_THREADS, 0, s->stream>>>(q, ldq, b, sn, k, v, z);
  });
  CU_LAUNCHED("se_fwd z kernel");
  // hid = relu(z W1^T + b1); a = sigmoid(hid W2^T + b2)
  CU_TRY(cu_gemm(s, 0, 1, b, r, sn, 1.0f, z, sn, w1, sn, 0.0f, hid, r));
  se_bias_relu_kernel<<<cu_blocks(b * r), CU_THREADS, 0, s->stream>>>(hid, b1, b * r, r);
  CU_LAUNCHED("se_fwd bias relu kernel");
  CU_TRY(cu_gemm(s, 0, 1, b, sn, r, 1.0f, hid, r, w2, r, 0.0f, a, sn));
  se_bias_sigmoid_kernel<<<cu_blocks(b * sn), CU_THREADS, 0, s->stream>>>(a, b2, b * sn, sn);
  CU_LAUNCHED("se_fwd bias sigmoid kernel");
  se_out_kernel<<<cu_blocks(b * k), CU_THREADS, 0, s->stream>>>(q, ldq, b, sn, k, a, out, ldo);
  CU_LAUNCHED("se_fwd output kernel");
  return AMEIR_OK;
}

int32_t cu_se_bwd(void *state, const float *q, int64_t ldq, int64_t b, int64_t sn, int64_t k,
                  const float *v, const float *w1, const float *b1, int64_t r, const float *w2,
                  const float *b2, const float *dout, int64_t lddo, const float *save, float *dq,
                  float *dv, float *dw1, float *db1, float *dw2, float *db2) {
  CU_ENTER(state);
  (void)b1;
  (void)b2;
  if (b <= 0) return AMEIR_OK;
  const float *z = save, *hid = save + b * sn, *a = save + b * (sn + r);
  const int64_t rows = b * sn, nc = dv_chunks(rows);
  cu_scratch_scope sc(s);
  auto *da = static_cast<float *>(sc.get((size_t)(b * sn) * sizeof(float)));
  auto *dh = static_cast<float *>(sc.get((size_t)(b * r) * sizeof(float)));
  auto *dz = static_cast<float *>(sc.get((size_t)(b * sn) * sizeof(float)));
  auto *part = static_cast<float *>(sc.get((size_t)(nc * k) * sizeof(float)));
  if (!da || !dh || !dz || !part) return sc.status();

  // da = dout . q_s; dq += a dout; then through the sigmoid
  with_team(team_width(k), [&](auto tc) {
    constexpr int T = decltype(tc)::value;
    se_da_kernel<T><<<cu_blocks(b * sn * T), CU_THREADS, 0, s->stream>>>(q, ldq, b, sn, k, dout,
                                                                          lddo, a, dq, da);
  });
  CU_LAUNCHED("se_bwd da kernel");
  // second layer: db2, dw2 += da^T hid, dh = da W2 through the relu
  CU_TRY(cu_bias_grad(s, da, sn, db2, b, sn));
  CU_TRY(cu_gemm(s, 1, 0, sn, r, b, 1.0f, da, sn, hid, r, 1.0f, dw2, r));
  CU_TRY(cu_gemm(s, 0, 0, b, r, sn, 1.0f, da, sn, w2, r, 0.0f, dh, r));
  se_relu_mask_kernel<<<cu_blocks(b * r), CU_THREADS, 0, s->stream>>>(dh, hid, b * r);
  CU_LAUNCHED("se_bwd relu mask kernel");
  // first layer: db1, dw1 += dh^T z, dz = dh W1
  CU_TRY(cu_bias_grad(s, dh, r, db1, b, r));
  CU_TRY(cu_gemm(s, 1, 0, r, sn, b, 1.0f, dh, r, z, sn, 1.0f, dw1, sn));
  CU_TRY(cu_gemm(s, 0, 0, b, sn, r, 1.0f, dh, r, w1, sn, 0.0f, dz, sn));
  // z = q v: dq += dz v, dv += sum_{b,j} dz q (fixed chunks, partials summed in order)
  if (k <= 0 || sn <= 0) return AMEIR_OK;
  se_dq_kernel<<<cu_blocks(rows * k), CU_THREADS, 0, s->stream>>>(dq, ldq, b, sn, k, dz, v);
  CU_LAUNCHED("se_bwd dq kernel");
  se_dv_part_kernel<<<cu_blocks(nc * k), CU_THREADS, 0, s->stream>>>(q, ldq, sn, k, rows, nc, dz,
                                                                     part);
  CU_LAUNCHED("se_bwd dv partials kernel");
  se_dv_final_kernel<<<cu_blocks(k * 32), CU_THREADS, 0, s->stream>>>(part, nc, k, dv);
  CU_LAUNCHED("se_bwd dv kernel");
  return AMEIR_OK;
}
