// CUDA backend: FiBiNET's SENET re-weighting (Huang et al. 2019, section 3.3). Reference:
// src/cpu/cpu_fibinet.c.
//
// Choices that matter
// - The argument checks are the CPU's (sizes >= 0, row strides >= f*k), so both backends refuse
//   the same calls; nothing is read from the device to check them.
// - Forward and dx: one thread per element (one product, one add: the CPU's bits).
// - ds: one thread per (row, field), t ascending, as the CPU sums it (no FMA contraction:
//   __fmul_rn / __fadd_rn), so its bits are the CPU's too. k is an embedding width (tens), so a
//   thread per dot product is plenty.
#include "cuda/cu.h"

namespace {

int32_t fs_check(cuda_state *s, const char *op, int64_t b, int64_t f, int64_t k) {
  if (b < 0 || f < 0 || k < 0)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: negative size (b %lld, f %lld, k %lld)", op,
                   (long long)b, (long long)f, (long long)k);
  return 0;
}

int32_t fs_ld(cuda_state *s, const char *op, const char *name, int64_t ld, int64_t width) {
  if (ld >= width) return 0;
  return cu_fail(s, AMEIR_EINVAL, "cuda %s: row stride %s = %lld < the row width %lld", op, name,
                 (long long)ld, (long long)width);
}

__global__ void field_scale_fwd_kernel(const float *x, int64_t ldx, const float *sc, int64_t b,
                                       int64_t f, int64_t k, float *y, int64_t ldy) {
  const int64_t w = f * k;
  CU_GRID_STRIDE(i, b * w) {
    const int64_t r = i / w, c = i - r * w, j = c / k;
    y[r * ldy + c] = __fmul_rn(sc[r * f + j], x[r * ldx + c]);
  }
}

__global__ void field_scale_dx_kernel(const float *sc, int64_t b, int64_t f, int64_t k,
                                      const float *dy, int64_t lddy, float *dx, int64_t lddx) {
  const int64_t w = f * k;
  CU_GRID_STRIDE(i, b * w) {
    const int64_t r = i / w, c = i - r * w, j = c / k;
    float *o = dx + r * lddx + c;
    *o = __fadd_rn(*o, __fmul_rn(sc[r * f + j], dy[r * lddy + c]));
  }
}

__global__ void field_scale_ds_kernel(const float *x, int64_t ldx, int64_t b, int64_t f,
                                      int64_t k, const float *dy, int64_t lddy, float *ds) {
  CU_GRID_STRIDE(i, b * f) {
    const int64_t r = i / f, j = i - r * f;
    const float *xi = x + r * ldx + j * k, *g = dy + r * lddy + j * k;
    float acc = 0.0f;
    for (int64_t t = 0; t < k; t++) acc = __fadd_rn(acc, __fmul_rn(g[t], xi[t]));
    ds[i] = acc;
  }
}

}  // namespace

int32_t cu_field_scale_fwd(void *state, const float *x, int64_t ldx, const float *sc, int64_t b,
                           int64_t f, int64_t k, float *y, int64_t ldy) {
  CU_ENTER(state);
  CU_TRY(fs_check(s, "field_scale_fwd", b, f, k));
  CU_TRY(fs_ld(s, "field_scale_fwd", "ldx", ldx, f * k));
  CU_TRY(fs_ld(s, "field_scale_fwd", "ldy", ldy, f * k));
  if (b == 0 || f == 0 || k == 0) return AMEIR_OK;
  field_scale_fwd_kernel<<<cu_blocks(b * f * k), CU_THREADS, 0, s->stream>>>(x, ldx, sc, b, f, k,
                                                                            y, ldy);
  CU_LAUNCHED("field_scale_fwd kernel");
  return AMEIR_OK;
}

int32_t cu_field_scale_bwd(void *state, const float *x, int64_t ldx, const float *sc, int64_t b,
                           int64_t f, int64_t k, const float *dy, int64_t lddy, float *dx,
                           int64_t lddx, float *ds) {
  CU_ENTER(state);
  CU_TRY(fs_check(s, "field_scale_bwd", b, f, k));
  CU_TRY(fs_ld(s, "field_scale_bwd", "ldx", ldx, f * k));
  CU_TRY(fs_ld(s, "field_scale_bwd", "lddy", lddy, f * k));
  if (dx) CU_TRY(fs_ld(s, "field_scale_bwd", "lddx", lddx, f * k));
  if (b == 0 || f == 0) return AMEIR_OK;
  field_scale_ds_kernel<<<cu_blocks(b * f), CU_THREADS, 0, s->stream>>>(x, ldx, b, f, k, dy, lddy,
                                                                       ds);
  CU_LAUNCHED("field_scale_bwd ds kernel");
  if (dx && k > 0) {
    field_scale_dx_kernel<<<cu_blocks(b * f * k), CU_THREADS, 0, s->stream>>>(sc, b, f, k, dy,
                                                                             lddy, dx, lddx);
    CU_LAUNCHED("field_scale_bwd dx kernel");
  }
  return AMEIR_OK;
}
