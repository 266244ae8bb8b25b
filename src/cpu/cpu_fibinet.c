/* The CPU backend: FiBiNET's SENET re-weighting (Huang et al. 2019, section 3.3): each field's
 * embedding scaled by its own weight, and the backward (the scaled gradient, and each weight's
 * gradient as a dot product over the field's k columns). One thread writes every output of a
 * row, each dot product sums t ascending: the bits do not depend on the thread count. */
#include "cpu.h"

static int32_t fs_check(cpu_state *st, const char *op, int64_t b, int64_t f, int64_t k) {
  if (b < 0 || f < 0 || k < 0)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: negative size (b %lld, f %lld, k %lld)", op,
                        (long long)b, (long long)f, (long long)k);
  return 0;
}

static int32_t fs_ld(cpu_state *st, const char *op, const char *name, int64_t ld, int64_t width) {
  if (ld >= width) return 0;
  return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: row stride %s = %lld < the row width %lld", op,
                      name, (long long)ld, (long long)width);
}

static void fs_fwd_rows(const float *x, int64_t ldx, const float *s, int64_t f, int64_t k, float *y,
                        int64_t ldy, int64_t lo, int64_t hi) {
  for (int64_t r = lo; r < hi; r++)
    for (int64_t j = 0; j < f; j++) {
      const float a = s[r * f + j], *xi = x + r * ldx + j * k;
      float *yo = y + r * ldy + j * k;
#pragma omp simd
      for (int64_t t = 0; t < k; t++) yo[t] = a * xi[t];
    }
}

int32_t ameir__cpu_field_scale_fwd(void *state, const float *x, int64_t ldx, const float *s, int64_t b,
                                   int64_t f, int64_t k, float *y, int64_t ldy) {
  cpu_state *st = state;
  int32_t rc = fs_check(st, "field_scale_fwd", b, f, k);
  if (!rc) rc = fs_ld(st, "field_scale_fwd", "ldx", ldx, f * k);
  if (!rc) rc = fs_ld(st, "field_scale_fwd", "ldy", ldy, f * k);
  if (rc || b == 0 || f == 0 || k == 0) return rc;
  int nt = cpu_nt_items(st, b * f * k, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, fs_fwd_rows(x, ldx, s, f, k, y, ldy, lo, hi));
  return 0;
}

static void fs_bwd_rows(const float *x, int64_t ldx, const float *s, int64_t f, int64_t k,
                        const float *dy, int64_t lddy, float *dx, int64_t lddx, float *ds, int64_t lo,
                        int64_t hi) {
  for (int64_t r = lo; r < hi; r++)
    for (int64_t j = 0; j < f; j++) {
      const float *xi = x + r * ldx + j * k, *g = dy + r * lddy + j * k;
      float acc = 0.0f;
      for (int64_t t = 0; t < k; t++) acc += g[t] * xi[t];
      ds[r * f + j] = acc;
      if (!dx) continue;
      const float a = s[r * f + j];
      float *o = dx + r * lddx + j * k;
#pragma omp simd
      for (int64_t t = 0; t < k; t++) o[t] += a * g[t];
    }
}

int32_t ameir__cpu_field_scale_bwd(void *state, const float *x, int64_t ldx, const float *s, int64_t b,
                                   int64_t f, int64_t k, const float *dy, int64_t lddy, float *dx,
                                   int64_t lddx, float *ds) {
  cpu_state *st = state;
  int32_t rc = fs_check(st, "field_scale_bwd", b, f, k);
  if (!rc) rc = fs_ld(st, "field_scale_bwd", "ldx", ldx, f * k);
  if (!rc) rc = fs_ld(st, "field_scale_bwd", "lddy", lddy, f * k);
  if (!rc && dx) rc = fs_ld(st, "field_scale_bwd", "lddx", lddx, f * k);
  if (rc || b == 0 || f == 0) return rc;
  int nt = cpu_nt_items(st, b * f * k, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, fs_bwd_rows(x, ldx, s, f, k, dy, lddy, dx, lddx, ds, lo, hi));
  return 0;
}
