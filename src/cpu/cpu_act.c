/* The CPU backend: element-wise activations, Dice, dropout. All loops are element- or
 * column-parallel with static schedules, so results do not depend on the thread count. */
#include <string.h>

#include "cpu.h"

#define CPU_INV_SQRT_2PI 0.39894228040143267794f

/* y[lo, hi) = act(x[lo, hi)) (identity with x != y, relu, gelu, swish, sigmoid) */
CPU_ALWAYS_INLINE void act_fwd_body(int32_t act, const float *x, float *y, int64_t lo,
                                    int64_t hi) {
  switch (act) {
    case AMEIR_ACT_IDENTITY:
      memmove(y + lo, x + lo, (size_t)(hi - lo) * sizeof(float));
      return;
    case AMEIR_ACT_RELU:
#pragma omp simd
      for (int64_t i = lo; i < hi; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case AMEIR_ACT_GELU:   /* exact (erf) form x * Phi(x), as torch.nn.GELU() */
#pragma omp simd
      for (int64_t i = lo; i < hi; i++) y[i] = x[i] * cpu_phi(x[i]);
      return;
    case AMEIR_ACT_SWISH:
#pragma omp simd
      for (int64_t i = lo; i < hi; i++) y[i] = x[i] * cpu_sigmoid(x[i]);
      return;
    default:   /* AMEIR_ACT_SIGMOID */
#pragma omp simd
      for (int64_t i = lo; i < hi; i++) y[i] = cpu_sigmoid(x[i]);
      return;
  }
}

static void act_fwd_def(int32_t act, const float *x, float *y, int64_t lo, int64_t hi) {
  act_fwd_body(act, x, y, lo, hi);
}

#if CPU_X86_AVX512
CPU_AVX512_FN static void act_fwd_512(int32_t act, const float *x, float *y, int64_t lo,
                                      int64_t hi) {
  act_fwd_body(act, x, y, lo, hi);
}
#endif

static void act_fwd_range(int32_t act, const float *x, float *y, int64_t lo, int64_t hi) {
#if CPU_X86_AVX512
  if (act != AMEIR_ACT_IDENTITY && hi - lo >= 16 && cpu_avx512()) {
    act_fwd_512(act, x, y, lo, hi);
    return;
  }
#endif
  act_fwd_def(act, x, y, lo, hi);
}

int32_t ameir__cpu_act_fwd(void *s, int32_t act, const float *x, float *y, int64_t n) {
  cpu_state *st = s;
  if (act != AMEIR_ACT_IDENTITY && act != AMEIR_ACT_RELU && act != AMEIR_ACT_GELU &&
      act != AMEIR_ACT_SWISH && act != AMEIR_ACT_SIGMOID)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu act_fwd: bad activation kind %d (Dice has "
                        "its own op)", (int)act);
  if (n <= 0 || (act == AMEIR_ACT_IDENTITY && x == y)) return 0;
  int nt = cpu_nt(st, act == AMEIR_ACT_IDENTITY || act == AMEIR_ACT_RELU ? n : n * 8);
  CPU_PAR_RANGE(nt, n, lo, hi, tid, act_fwd_range(act, x, y, lo, hi));
  return 0;
}

/* y may be NULL (it is then recomputed). dx may alias dy. */
int32_t ameir__cpu_act_bwd(void *s, int32_t act, const float *x, const float *y, const float *dy,
                           float *dx, int64_t n) {
  cpu_state *st = s;
  int nt = cpu_nt(st, act == AMEIR_ACT_IDENTITY || act == AMEIR_ACT_RELU ? n : n * 8);
  switch (act) {
    case AMEIR_ACT_IDENTITY:
      if (dx != dy) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i];
      }
      return 0;
    case AMEIR_ACT_RELU:
#pragma omp parallel for simd num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; i++) {
        float d = dy[i], xi = x[i];
        dx[i] = xi > 0.0f ? d : 0.0f;
      }
      return 0;
    case AMEIR_ACT_GELU:   /* d/dx x Phi(x) = Phi(x) + x phi(x) */
#pragma omp parallel for simd num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; i++) {
        float xi = x[i];
        float pdf = CPU_INV_SQRT_2PI * cpu_expf(-0.5f * xi * xi);
        dx[i] = dy[i] * (cpu_phi(xi) + xi * pdf);
      }
      return 0;
    case AMEIR_ACT_SWISH:  /* s + x s (1 - s) */
#pragma omp parallel for simd num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; i++) {
        float sg = cpu_sigmoid(x[i]);
        dx[i] = dy[i] * (sg * (1.0f + x[i] * (1.0f - sg)));
      }
      return 0;
    case AMEIR_ACT_SIGMOID:
      if (y) {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (y[i] * (1.0f - y[i]));
      } else {
#pragma omp parallel for simd num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; i++) {
          float sg = cpu_sigmoid(x[i]);
          dx[i] = dy[i] * (sg * (1.0f - sg));
        }
      }
      return 0;
    default:
      return ameir__error(st->ctx, AMEIR_EINVAL, "cpu act_bwd: bad activation kind %d (Dice has "
                          "its own op)", (int)act);
  }
}

/* ---- Dice (DIN, Zhou et al. 2018, eq. (6)): p = sigmoid(BN(x)), y = p x + (1-p) alpha x, BN
 * as torch BatchNorm1d(affine=False). Column blocks of DICE_CB columns are reduced by one
 * thread each, rows in ascending order, in double. save = [mean[N], inv_std[N]]. ---- */
#define DICE_CB 16

/* rows [lo, hi) of Dice's output, given the statistics */
static void dice_apply_rows(const float *x, float *y, int64_t n, const float *mean, const float *inv,
                            const float *alpha, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    const float *xr = x + i * n;
    float *yr = y + i * n;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
      float p = cpu_sigmoid((xr[j] - mean[j]) * inv[j]);
      yr[j] = p * xr[j] + (1.0f - p) * alpha[j] * xr[j];
    }
  }
}

int32_t ameir__cpu_dice_fwd(void *s, const float *x, float *y, int64_t m, int64_t n,
                            const float *alpha, float *running_mean, float *running_var, float eps,
                            int32_t training, float *save) {
  cpu_state *st = s;
  if (m <= 0 || n <= 0) return 0;
  float *mean = save, *inv = save ? save + n : NULL;
  float *tmp = NULL;
  if (!save) {   /* inference without save: keep the statistics in scratch */
    tmp = cpu_scratch_get(st, (size_t)(2 * n) * sizeof(float));
    if (!tmp) return cpu_scratch_status();
    mean = tmp;
    inv = tmp + n;
  }
  if (training) {
    int64_t nblk = (n + DICE_CB - 1) / DICE_CB;
    int nt = cpu_nt(st, m * n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t blk = 0; blk < nblk; blk++) {
      int64_t j0 = blk * DICE_CB, nb = n - j0 < DICE_CB ? n - j0 : DICE_CB;
      double sum[DICE_CB] = {0}, sq[DICE_CB] = {0}, mu[DICE_CB];
      for (int64_t i = 0; i < m; i++) {
        const float *xr = x + i * n + j0;
#pragma omp simd
        for (int64_t j = 0; j < nb; j++) sum[j] += xr[j];
      }
      for (int64_t j = 0; j < nb; j++) mu[j] = sum[j] / (double)m;
      for (int64_t i = 0; i < m; i++) {
        const float *xr = x + i * n + j0;
#pragma omp simd
        for (int64_t j = 0; j < nb; j++) {
          double d = (double)xr[j] - mu[j];
          sq[j] += d * d;
        }
      }
      for (int64_t j = 0; j < nb; j++) {
        double var = sq[j] / (double)m;   /* biased, for normalisation */
        mean[j0 + j] = (float)mu[j];
        inv[j0 + j] = (float)(1.0 / sqrt(var + (double)eps));
        /* momentum 0.1, unbiased variance (torch; m == 1 keeps the biased 0) */
        double unb = m > 1 ? sq[j] / (double)(m - 1) : var;
        if (running_mean)
          running_mean[j0 + j] = (float)(0.9 * (double)running_mean[j0 + j] + 0.1 * mu[j]);
        if (running_var)
          running_var[j0 + j] = (float)(0.9 * (double)running_var[j0 + j] + 0.1 * unb);
      }
    }
  } else {
    for (int64_t j = 0; j < n; j++) {
      mean[j] = running_mean[j];
      inv[j] = 1.0f / sqrtf(running_var[j] + eps);
    }
  }
  int nt = cpu_nt_items(st, m * n * 8, m);
  CPU_PAR_RANGE(nt, m, lo, hi, tid, dice_apply_rows(x, y, n, mean, inv, alpha, lo, hi));
  if (tmp) cpu_scratch_put(st, tmp);
  return 0;
}

/* dL/dxhat = dy (1-alpha) x p (1-p); BN backward (biased var):
 * dx = dy (p + (1-p) alpha) + inv (g - mean(g) - xhat mean(g xhat)). */
int32_t ameir__cpu_dice_bwd(void *s, const float *x, const float *dy, float *dx, int64_t m,
                            int64_t n, const float *alpha, float *dalpha, float eps,
                            const float *save) {
  cpu_state *st = s;
  AMEIR_UNUSED(eps);   /* inv_std is in save */
  if (m <= 0 || n <= 0) return 0;
  const float *mean = save, *inv = save + n;
  int64_t nblk = (n + DICE_CB - 1) / DICE_CB;
  int nt = cpu_nt(st, m * n * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t blk = 0; blk < nblk; blk++) {
    int64_t j0 = blk * DICE_CB, nb = n - j0 < DICE_CB ? n - j0 : DICE_CB;
    double sg[DICE_CB] = {0}, sgx[DICE_CB] = {0}, da[DICE_CB] = {0};
    for (int64_t i = 0; i < m; i++) {
      const float *xr = x + i * n + j0, *dr = dy + i * n + j0;
#pragma omp simd
      for (int64_t j = 0; j < nb; j++) {
        float xh = (xr[j] - mean[j0 + j]) * inv[j0 + j];
        float p = cpu_sigmoid(xh);
        float g = dr[j] * (1.0f - alpha[j0 + j]) * xr[j] * p * (1.0f - p);
        da[j] += (double)(dr[j] * xr[j] * (1.0f - p));
        sg[j] += g;
        sgx[j] += (double)g * xh;
      }
    }
    float mg[DICE_CB], mgx[DICE_CB];
    for (int64_t j = 0; j < nb; j++) {
      mg[j] = (float)(sg[j] / (double)m);
      mgx[j] = (float)(sgx[j] / (double)m);
      if (dalpha) dalpha[j0 + j] += (float)da[j];
    }
    for (int64_t i = 0; i < m; i++) {
      const float *xr = x + i * n + j0, *dr = dy + i * n + j0;
      float *dxr = dx + i * n + j0;
#pragma omp simd
      for (int64_t j = 0; j < nb; j++) {
        float a = alpha[j0 + j], iv = inv[j0 + j];
        float xh = (xr[j] - mean[j0 + j]) * iv;
        float p = cpu_sigmoid(xh);
        float g = dr[j] * (1.0f - a) * xr[j] * p * (1.0f - p);
        dxr[j] = dr[j] * (p + (1.0f - p) * a) + iv * (g - mg[j] - xh * mgx[j]);
      }
    }
  }
  return 0;
}

/* ---- dropout: mask from the counter-based RNG, keyed by (seed, offset + i) ---- */

int32_t ameir__cpu_dropout_fwd(void *s, const float *x, float *y, uint8_t *mask, int64_t n, float p,
                               uint64_t seed, uint64_t offset) {
  cpu_state *st = s;
  if (!(p >= 0.0f && p <= 1.0f))
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu dropout_fwd: p = %g not in [0, 1]", (double)p);
  float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  int nt = cpu_nt(st, n * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    uint8_t keep = ameir__u01f(seed, offset + (uint64_t)i) >= p;
    mask[i] = keep;
    y[i] = x[i] * (keep ? scale : 0.0f);
  }
  return 0;
}

int32_t ameir__cpu_dropout_bwd(void *s, const float *dy, float *dx, const uint8_t *mask, int64_t n,
                               float p) {
  cpu_state *st = s;
  float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  int nt = cpu_nt(st, n);
#pragma omp parallel for simd num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
  return 0;
}
