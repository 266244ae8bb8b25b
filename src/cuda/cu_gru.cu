// The CUDA backend: the bidirectional GRU of Stage 1 (torch.nn.GRU, bidirectional, on packed
// sequences; hidden hd = d/2 per direction, outputs [forward | backward]).
// Reference: src/cpu/cpu_gru.c, whose save layout this file writes and reads bit for bit in
// position: per direction (capacity C = B*T rows, indexed by the PACKED row base[b] + pos)
//   gates [C, 3hd] (r, z, n), hprev [C, hd], ghn [C, hd] (W_hn h + b_hn);
// rows [N, C) (N = sum of len) are left untouched, as the CPU leaves them.
//
// Choices that matter
// - len[] stays on the device, so the host knows neither N nor the longest length: the packed
//   bases come from a one-block scan on the device, every step loop runs t steps (a sample with
//   len <= s just sits the step out), and the dense GEMMs run over all B*T rows in the padded
//   layout (row b*T + pos) where padding rows are zero (masked copies) or thrown away.
// - Forward: the input projections of both directions are two GEMMs over all B*T rows into
//   scratch (padding rows hold garbage that no step reads). Each step is one batched GEMM
//   h W_hh^T covering both directions (skipped at step 0, where h = 0 as in the CPU) and one
//   gate kernel over (direction, sample, unit) that updates h in place, writes y and save. y's
//   padding rows are zeroed by their own kernel.
// - Backward: a reverse loop over steps with the gate-gradient kernel (which treats dh as 0 at a
//   sample's first backward step, as the CPU zeroes it there) and one batched GEMM
//   dh += dG W_hh (skipped at step 0). The gate gradients go to zero-initialised buffers in the
//   padded layout (dG on the input side, dGh on the hidden side, and h_prev copied out of save:
//   save's rows past N may hold anything), so the parameter gradients are plain GEMMs over all
//   B*T rows at the end (dw_ih += dG^T x_masked, dw_hh += dGh^T h_prev, biases through
//   cu_bias_grad's fixed-order column sums): deterministic, no atomics. dx = dG_0 w_ih_0 +
//   dG_1 w_ih_1 (two GEMMs, as the CPU), padding rows zeroed afterwards.
// - Gate arithmetic follows the CPU's expression order (sums then bias, r*(W_hn h + b_hn)),
//   with expf/tanhf: it differs from the CPU's polynomial exp/tanh by an ulp or two.
#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

constexpr int SCAN_THREADS = 512;

// y rows at positions >= len written 0 (the valid rows are left to the step kernels)
__global__ void k_zero_pad(float *y, const int32_t *len, int64_t b, int64_t t, int64_t d) {
  CU_GRID_STRIDE(i, b * t * d) {
    int64_t row = i / d, pos = row % t, bb = row / t;
    if (pos >= seq_len(len, bb, t)) y[i] = 0.0f;
  }
}

struct gru_dims {
  int64_t b, t, d, hd, g, cap, np;  // g = 3 hd, cap = b * t, np = gru_params(d)
};

// One forward step s for every (direction, sample, unit). xp: [2][cap][g] input projections
// (padded rows b*t + pos, no bias); gh: [2][b][g] h W_hh^T (not read at s == 0: h = 0);
// h: [2][b][hd] state, updated in place. save may be NULL (inference).
__global__ void k_gru_fwd_step(gru_dims g, int64_t s, const int32_t *len, const int64_t *base,
                               const float *p, const float *xp, const float *gh, float *h,
                               float *y, float *save) {
  const int64_t hd = g.hd, G = g.g;
  CU_GRID_STRIDE(i, 2 * g.b * hd) {
    int64_t dir = i / (g.b * hd), rem = i - dir * g.b * hd;
    int64_t bb = rem / hd, u = rem - bb * hd;
    int64_t l = seq_len(len, bb, g.t);
    if (s >= l) continue;  // sample over: state unused, its outputs are padding
    int64_t pos = dir == 0 ? s : l - 1 - s;
    const float *pd = p + dir * g.np;
    const float *bih = pd + G * g.d + G * hd, *bhh = bih + G;
    const float *xr = xp + (dir * g.cap + bb * g.t + pos) * G;
    float ghr = 0.0f, ghz = 0.0f, ghn = 0.0f;
    if (s > 0) {
      const float *gr = gh + (dir * g.b + bb) * G;
      ghr = gr[u], ghz = gr[hd + u], ghn = gr[2 * hd + u];
    }
    float bcr = bih[u] + bhh[u], bcz = bih[hd + u] + bhh[hd + u];
    float r = sigmoidf_(xr[u] + ghr + bcr);
    float z = sigmoidf_(xr[hd + u] + ghz + bcz);
    float hn = ghn + bhh[2 * hd + u];
    float nn = tanhf(xr[2 * hd + u] + bih[2 * hd + u] + r * hn);
    float *hq = h + (dir * g.b + bb) * hd + u;
    float hv = *hq;
    float h2 = (1.0f - z) * nn + z * hv;
    if (save) {
      float *sd = save + dir * g.cap * 5 * hd;
      int64_t pr = base[bb] + pos;
      sd[pr * G + u] = r;
      sd[pr * G + hd + u] = z;
      sd[pr * G + 2 * hd + u] = nn;
      sd[g.cap * G + pr * hd + u] = hv;
      sd[g.cap * (G + hd) + pr * hd + u] = hn;
    }
    *hq = h2;
    y[(bb * g.t + pos) * g.d + dir * hd + u] = h2;
  }
}

// One backward step s. dh: [2][b][hd] dL/dh carried from step s+1 (already including
// dG_{s+1} W_hh; read only when the sample ran at s+1); dgc: [2][b][g] this step's hidden-side
// gate gradients for the dh GEMM; dgi/dgh: [2][cap][g] per padded row; hp: [2][cap][hd] h_prev
// per padded row.
__global__ void k_gru_bwd_step(gru_dims g, int64_t s, const int32_t *len, const int64_t *base,
                               const float *save, const float *dy, float *dh, float *dgc,
                               float *dgi, float *dgh, float *hp) {
  const int64_t hd = g.hd, G = g.g;
  CU_GRID_STRIDE(i, 2 * g.b * hd) {
    int64_t dir = i / (g.b * hd), rem = i - dir * g.b * hd;
    int64_t bb = rem / hd, u = rem - bb * hd;
    int64_t l = seq_len(len, bb, g.t);
    if (s >= l) continue;
    int64_t pos = dir == 0 ? s : l - 1 - s;
    int64_t pr = base[bb] + pos, row = bb * g.t + pos;
    const float *sd = save + dir * g.cap * 5 * hd;
    float r = sd[pr * G + u], z = sd[pr * G + hd + u], nn = sd[pr * G + 2 * hd + u];
    float hv = sd[g.cap * G + pr * hd + u], gn = sd[g.cap * (G + hd) + pr * hd + u];
    float *dhq = dh + (dir * g.b + bb) * hd + u;
    float dhv = s + 1 < l ? *dhq : 0.0f;  // the sample's first backward step: dh = 0
    float gsum = dhv + dy[row * g.d + dir * hd + u];
    float dn = gsum * (1.0f - z) * (1.0f - nn * nn);
    float dz = gsum * (hv - nn) * z * (1.0f - z);
    float dr = dn * gn * r * (1.0f - r);
    float dnr = dn * r;
    float *di = dgi + (dir * g.cap + row) * G, *dg = dgh + (dir * g.cap + row) * G;
    float *dc = dgc + (dir * g.b + bb) * G;
    di[u] = dr;
    di[hd + u] = dz;
    di[2 * hd + u] = dn;
    dg[u] = dr;
    dg[hd + u] = dz;
    dg[2 * hd + u] = dnr;
    dc[u] = dr;
    dc[hd + u] = dz;
    dc[2 * hd + u] = dnr;
    hp[(dir * g.cap + row) * hd + u] = hv;
    *dhq = gsum * z;
  }
}

int32_t gru_check(cuda_state *s, const char *op, int64_t b, int64_t t, int64_t d) {
  if (d < 2 || d % 2)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: d = %lld must be even and >= 2", op, (long long)d);
  if (b < 0 || t < 0)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: bad shape b=%lld t=%lld", op, (long long)b,
                   (long long)t);
  return 0;
}

gru_dims make_dims(int64_t b, int64_t t, int64_t d) {
  gru_dims g;
  g.b = b, g.t = t, g.d = d, g.hd = d / 2, g.g = 3 * (d / 2), g.cap = b * t;
  g.np = ameir__gru_params(d);
  return g;
}

int32_t launch_base(cuda_state *s, const int32_t *len, int64_t b, int64_t t, int64_t *base) {
  return launch_seq_base<SCAN_THREADS>(s, len, b, t, base, "cuda gru: length scan kernel");
}

}  // namespace

int32_t cu_gru_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                   int64_t d, const float *p, float *y, float *save) {
  CU_ENTER(state);
  CU_TRY(gru_check(s, "gru_fwd", b, t, d));
  if (b == 0 || t == 0) return 0;
  const gru_dims g = make_dims(b, t, d);
  const int64_t hd = g.hd, G = g.g, cap = g.cap, np = g.np;
  cu_scratch_scope sc(s);
  int64_t *base;
  float *xp, *h, *gh;
  if (!take(sc, base, b + 1) || !take(sc, xp, 2 * cap * G) || !take(sc, h, 2 * b * hd) ||
      !take(sc, gh, 2 * b * G))
    return sc.status();

  if (save) CU_TRY(launch_base(s, len, b, t, base));
  CU_CHECK(cudaMemsetAsync(h, 0, (size_t)(2 * b * hd) * sizeof(float), s->stream),
           "cudaMemsetAsync (gru h)");
  k_zero_pad<<<cu_blocks(cap * d), CU_THREADS, 0, s->stream>>>(y, len, b, t, d);
  CU_LAUNCHED("cuda gru_fwd: padding kernel");
  // input projections W_i* x of every row, both directions (padding rows: never read)
  for (int dir = 0; dir < 2; dir++)
    CU_TRY(cu_gemm(s, 0, 1, cap, G, d, 1.0f, x, d, p + dir * np, d, 0.0f, xp + dir * cap * G, G));
  const float *whh = p + G * d;
  const unsigned blocks = cu_blocks(2 * b * hd);
  for (int64_t st = 0; st < t; st++) {
    if (st > 0)  // gh[dir] = h[dir] W_hh[dir]^T, both directions in one call
      CU_TRY(cu_gemm_strided_batched(s, 0, 1, b, G, hd, 1.0f, h, hd, b * hd, whh, hd, np, 0.0f,
                                     gh, G, b * G, 2));
    k_gru_fwd_step<<<blocks, CU_THREADS, 0, s->stream>>>(g, st, len, base, p, xp, gh, h, y, save);
    CU_LAUNCHED("cuda gru_fwd: step kernel");
  }
  return 0;
}

int32_t cu_gru_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                   int64_t d, const float *p, const float *dy, const float *save, float *dx,
                   float *dp) {
  CU_ENTER(state);
  CU_TRY(gru_check(s, "gru_bwd", b, t, d));
  if (b == 0 || t == 0) return 0;
  const gru_dims g = make_dims(b, t, d);
  const int64_t hd = g.hd, G = g.g, cap = g.cap, np = g.np;
  // one zeroed block: dh [2][b][hd], dgc [2][b][G], dgi [2][cap][G], dgh [2][cap][G],
  // hp [2][cap][hd]
  const int64_t n_dh = 2 * b * hd, n_dgc = 2 * b * G, n_dg = 2 * cap * G, n_hp = 2 * cap * hd;
  const int64_t n_zero = n_dh + n_dgc + 2 * n_dg + n_hp;
  cu_scratch_scope sc(s);
  int64_t *base;
  float *zb, *xm;
  if (!take(sc, base, b + 1) || !take(sc, zb, n_zero) || !take(sc, xm, cap * d))
    return sc.status();
  float *dh = zb, *dgc = dh + n_dh, *dgi = dgc + n_dgc, *dgh = dgi + n_dg, *hp = dgh + n_dg;

  CU_TRY(launch_base(s, len, b, t, base));
  CU_CHECK(cudaMemsetAsync(zb, 0, (size_t)n_zero * sizeof(float), s->stream),
           "cudaMemsetAsync (gru grads)");
  k_seq_mask<<<cu_blocks(cap * d), CU_THREADS, 0, s->stream>>>(xm, x, len, b, t, d);
  CU_LAUNCHED("cuda gru_bwd: mask kernel");

  const float *whh = p + G * d;
  const unsigned blocks = cu_blocks(2 * b * hd);
  for (int64_t st = t - 1; st >= 0; st--) {
    k_gru_bwd_step<<<blocks, CU_THREADS, 0, s->stream>>>(g, st, len, base, save, dy, dh, dgc, dgi,
                                                         dgh, hp);
    CU_LAUNCHED("cuda gru_bwd: step kernel");
    if (st == 0) break;  // h before the first step is the constant 0
    // dh[dir] += dgc[dir] W_hh[dir]; rows of samples that did not run hold dgc = 0
    CU_TRY(cu_gemm_strided_batched(s, 0, 0, b, hd, G, 1.0f, dgc, G, b * G, whh, hd, np, 1.0f, dh,
                                   hd, b * hd, 2));
  }

  for (int dir = 0; dir < 2; dir++) {
    const float *wih = p + dir * np;
    float *gd = dp + dir * np;
    float *dwih = gd, *dwhh = gd + G * d, *dbih = dwhh + G * hd, *dbhh = dbih + G;
    const float *gi = dgi + dir * cap * G, *gh = dgh + dir * cap * G, *hpd = hp + dir * cap * hd;
    CU_TRY(cu_bias_grad(s, gi, G, dbih, cap, G));
    CU_TRY(cu_bias_grad(s, gh, G, dbhh, cap, G));
    CU_TRY(cu_gemm(s, 1, 0, G, d, cap, 1.0f, gi, G, xm, d, 1.0f, dwih, d));
    CU_TRY(cu_gemm(s, 1, 0, G, hd, cap, 1.0f, gh, G, hpd, hd, 1.0f, dwhh, hd));
    CU_TRY(cu_gemm(s, 0, 0, cap, d, G, 1.0f, gi, G, wih, d, dir ? 1.0f : 0.0f, dx, d));
  }
  // padding rows of dx: exactly 0 (the GEMM gives +-0 from the zero rows of dgi)
  k_seq_mask<<<cu_blocks(cap * d), CU_THREADS, 0, s->stream>>>(dx, dx, len, b, t, d);
  CU_LAUNCHED("cuda gru_bwd: mask kernel");
  return 0;
}
