// CUDA backend: layers of the baseline models (DCN's cross layer, Wang et al. 2017 eq. (3);
// xDeepFM's CIN, Lian et al. 2018 eq. (6)). Reference: src/cpu/cpu_zoo.c.
//
// Choices that matter
// - The argument checks are the CPU's (sizes >= 0, row strides >= row widths), so both backends
//   refuse the same calls; they need no synchronisation (nothing is read from the device).
// - cross: one team of lanes per row reduces s = xl . w (and ds = dy . x0 in the backward) with
//   a fixed xor butterfly, then writes the row; y's three terms are rounded in the CPU's order
//   (x0 * s, + bias, + xl: no FMA). dw and dbias are column sums over fixed row chunks (a
//   function of b only), one thread per (chunk, column) with rows in order, the chunk partials
//   summed in chunk order: no atomics, the bits depend on the shape only.
// - CIN: a chunk of rows at a time, the outer products z (h*f*k floats a row) live in the
//   scratch stack, the chunk's row count a function of the shape only (about 64 MB of z).
//   Forward: z as [rows, h*f, k] and one strided batched GEMM y_r = W z_r (W shared: stride 0)
//   written straight into y's rows. Backward: z as [h*f, rows*k] and dY gathered as
//   [h_out, rows*k], so that dW += dY z^T (chunk after chunk, in order) and dz = W^T dY are two
//   plain GEMMs (z's buffer reused for dz); then one thread per element folds dz onto dx
//   (j ascending, overwrite) and onto dx0 (i ascending, then added). No atomics.
// - cuBLAS runs in strict fp32 (CUBLAS_PEDANTIC_MATH on the handle, module.cu).
#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

// Floats of z per CIN chunk (64 MB): the chunk holds max(1, CIN_Z_FLOATS / (h*f*k)) rows.
constexpr int64_t CIN_Z_FLOATS = (int64_t)1 << 24;

int32_t bad_dim(cuda_state *s, const char *op, const char *name, int64_t v) {
  return cu_fail(s, AMEIR_EINVAL, "cuda %s: %s = %lld < 0", op, name, (long long)v);
}

int32_t bad_ld(cuda_state *s, const char *op, const char *name, int64_t ld, int64_t width) {
  return cu_fail(s, AMEIR_EINVAL, "cuda %s: row stride %s = %lld < the row width %lld", op, name,
                 (long long)ld, (long long)width);
}

#define CHECK_DIM(op, v) \
  do { if ((v) < 0) return bad_dim(s, op, #v, v); } while (0)
#define CHECK_LD(op, ld, width) \
  do { if ((ld) < (width)) return bad_ld(s, op, #ld, ld, width); } while (0)

// ---- DCN cross layer ----

// One team per row: y_r = x0_r * s + bias + xl_r with s = xl_r . w
template <int T>
__global__ void cross_fwd_kernel(const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                                 const float *w, const float *bias, int64_t b, int64_t d,
                                 float *y, int64_t ldy) {
  team_loop<T>(b, [&](int64_t r, int lane, bool ok) {
    float sr = 0.0f;
    if (ok) {
      const float *l = xl + r * ldl;
      for (int64_t j = lane; j < d; j += T) sr += l[j] * w[j];
    }
    sr = team_sum<T>(sr);
    if (ok) {
      const float *a = x0 + r * ld0, *l = xl + r * ldl;
      float *o = y + r * ldy;
      for (int64_t j = lane; j < d; j += T)
        o[j] = __fadd_rn(__fadd_rn(__fmul_rn(a[j], sr), bias[j]), l[j]);
    }
  });
}

// One team per row: s = xl . w, ds = dy . x0; dx0 += dy s; dxl = dy + ds w; dsv[r] = ds
// (dy read in full before dxl is written)
template <int T>
__global__ void cross_bwd_kernel(const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                                 const float *w, int64_t b, int64_t d, const float *dy,
                                 int64_t lddy, float *dx0, int64_t lddx0, float *dxl,
                                 int64_t lddxl, float *dsv) {
  team_loop<T>(b, [&](int64_t r, int lane, bool ok) {
    float sr = 0.0f, ds = 0.0f;
    if (ok) {
      const float *a = x0 + r * ld0, *l = xl + r * ldl, *g = dy + r * lddy;
      for (int64_t j = lane; j < d; j += T) {
        sr += l[j] * w[j];
        ds += g[j] * a[j];
      }
    }
    sr = team_sum<T>(sr);
    ds = team_sum<T>(ds);
    if (ok) {
      const float *g = dy + r * lddy;
      float *ga = dx0 + r * lddx0, *gl = dxl + r * lddxl;
      for (int64_t j = lane; j < d; j += T) {
        const float gj = g[j];
        ga[j] = __fadd_rn(ga[j], __fmul_rn(gj, sr));
        gl[j] = __fadd_rn(gj, __fmul_rn(ds, w[j]));
      }
      if (lane == 0) dsv[r] = ds;
    }
  });
}

// chunks of cross_bwd's column sums: about 64 rows each, at most 1024 (shape only)
int64_t cross_chunks(int64_t b) {
  int64_t c = (b + 63) / 64;
  if (c > 1024) c = 1024;
  return c < 1 ? 1 : c;
}

// One thread per (chunk, column j): part[c*2d + j] = sum_r ds[r] xl[r, j],
// part[c*2d + d + j] = sum_r dy[r, j], rows of chunk c in order
__global__ void cross_part_kernel(const float *xl, int64_t ldl, const float *dy, int64_t lddy,
                                  const float *dsv, int64_t b, int64_t d, int64_t nc,
                                  float *part) {
  CU_GRID_STRIDE(idx, nc * d) {
    const int64_t c = idx / d, j = idx - c * d;
    const int64_t lo = chunk_lo(b, nc, c), hi = chunk_lo(b, nc, c + 1);
    float aw = 0.0f, ab = 0.0f;
    for (int64_t r = lo; r < hi; r++) {
      aw += dsv[r] * xl[r * ldl + j];
      ab += dy[r * lddy + j];
    }
    part[c * 2 * d + j] = aw;
    part[c * 2 * d + d + j] = ab;
  }
}

// One thread per column: dw[j] += sum_c part[c, j], dbias[j] += sum_c part[c, d + j], in order
__global__ void cross_final_kernel(const float *part, int64_t d, int64_t nc, float *dw,
                                   float *dbias) {
  CU_GRID_STRIDE(j, d) {
    float aw = 0.0f, ab = 0.0f;
    for (int64_t c = 0; c < nc; c++) {
      aw += part[c * 2 * d + j];
      ab += part[c * 2 * d + d + j];
    }
    dw[j] += aw;
    dbias[j] += ab;
  }
}

// ---- xDeepFM CIN layer ----

// rows of a chunk: the most whose z fits CIN_Z_FLOATS, at least 1, at most b
int64_t cin_chunk_rows(int64_t b, int64_t hf, int64_t k) {
  int64_t r = CIN_Z_FLOATS / (hf * k);
  if (r < 1) r = 1;
  return r < b ? r : b;
}

// z for rows [r0, r0 + nr): element (rr, p = i*f + j, t) = x[r0+rr, i, t] * x0[r0+rr, j, t]
// stored at z[idx] where idx = (rr*hf + p)*k + t (ROWS_OUTER: [nr, hf, k], the forward's) or
// idx = (p*nr + rr)*k + t ([hf, nr*k], the backward's): consecutive threads write consecutive
// floats either way.
template <bool ROWS_OUTER>
__global__ void cin_outer_kernel(const float *x, int64_t ldx, const float *x0, int64_t ld0,
                                 int64_t f, int64_t hf, int64_t k, int64_t r0, int64_t nr,
                                 float *z) {
  CU_GRID_STRIDE(idx, nr * hf * k) {
    const int64_t t = idx % k, q = idx / k;
    int64_t rr, p;
    if (ROWS_OUTER) {
      rr = q / hf;
      p = q - rr * hf;
    } else {
      p = q / nr;
      rr = q - p * nr;
    }
    const int64_t i = p / f, j = p - i * f, r = r0 + rr;
    z[idx] = x[r * ldx + i * k + t] * x0[r * ld0 + j * k + t];
  }
}

// dyt[o, rr*k + t] = dy[r0+rr, o*k + t] over [h_out, nr*k]
__global__ void cin_gather_kernel(const float *dy, int64_t lddy, int64_t h_out, int64_t k,
                                  int64_t r0, int64_t nr, float *dyt) {
  CU_GRID_STRIDE(idx, h_out * nr * k) {
    const int64_t t = idx % k, q = idx / k;
    const int64_t o = q / nr, rr = q - o * nr;
    dyt[idx] = dy[(r0 + rr) * lddy + o * k + t];
  }
}

// One thread per (rr, i, t): dx[r, i, t] = sum_j dz[i*f + j, rr*k + t] x0[r, j, t] (overwrite)
__global__ void cin_dx_kernel(const float *dz, const float *x0, int64_t ld0, int64_t h,
                              int64_t f, int64_t k, int64_t r0, int64_t nr, float *dx,
                              int64_t lddx) {
  const int64_t n = nr * k;
  CU_GRID_STRIDE(idx, nr * h * k) {
    const int64_t t = idx % k, q = idx / k;
    const int64_t i = q % h, rr = q / h, r = r0 + rr;
    const float *zc = dz + i * f * n + rr * k + t, *e = x0 + r * ld0 + t;
    float acc = 0.0f;
    for (int64_t j = 0; j < f; j++) acc += zc[j * n] * e[j * k];
    dx[r * lddx + i * k + t] = acc;
  }
}

// One thread per (rr, j, t): dx0[r, j, t] += sum_i dz[i*f + j, rr*k + t] x[r, i, t]
__global__ void cin_dx0_kernel(const float *dz, const float *x, int64_t ldx, int64_t h,
                               int64_t f, int64_t k, int64_t r0, int64_t nr, float *dx0,
                               int64_t lddx0) {
  const int64_t n = nr * k;
  CU_GRID_STRIDE(idx, nr * f * k) {
    const int64_t t = idx % k, q = idx / k;
    const int64_t j = q % f, rr = q / f, r = r0 + rr;
    const float *zc = dz + j * n + rr * k + t, *e = x + r * ldx + t;
    float acc = 0.0f;
    for (int64_t i = 0; i < h; i++) acc += zc[i * f * n] * e[i * k];
    float *g = dx0 + r * lddx0 + j * k + t;
    *g += acc;
  }
}

int32_t cin_check(cuda_state *s, const char *op, int64_t h, int64_t f, int64_t b, int64_t k,
                  int64_t h_out, int64_t ldx, int64_t ld0) {
  CHECK_DIM(op, h);
  CHECK_DIM(op, f);
  CHECK_DIM(op, b);
  CHECK_DIM(op, k);
  CHECK_DIM(op, h_out);
  CHECK_LD(op, ldx, h * k);
  CHECK_LD(op, ld0, f * k);
  return AMEIR_OK;
}

// rows [0, b) of an output [b, width] (row stride ld) set to 0: the empty sums
int32_t zero_rows(cuda_state *s, float *y, int64_t ld, int64_t b, int64_t width) {
  if (b <= 0 || width <= 0) return AMEIR_OK;
  CU_CHECK(cudaMemset2DAsync(y, (size_t)ld * sizeof(float), 0, (size_t)width * sizeof(float),
                             (size_t)b, s->stream),
           "cudaMemset2DAsync (cin)");
  return AMEIR_OK;
}

}  // namespace

int32_t cu_cross_fwd(void *state, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                     const float *w, const float *bias, int64_t b, int64_t d, float *y,
                     int64_t ldy) {
  CU_ENTER(state);
  CHECK_DIM("cross_fwd", b);
  CHECK_DIM("cross_fwd", d);
  CHECK_LD("cross_fwd", ld0, d);
  CHECK_LD("cross_fwd", ldl, d);
  CHECK_LD("cross_fwd", ldy, d);
  if (b == 0 || d == 0) return AMEIR_OK;
  with_team(team_width(d), [&](auto tc) {
    constexpr int T = decltype(tc)::value;
    cross_fwd_kernel<T><<<cu_blocks(b * T), CU_THREADS, 0, s->stream>>>(x0, ld0, xl, ldl, w,
                                                                         bias, b, d, y, ldy);
  });
  CU_LAUNCHED("cross_fwd kernel");
  return AMEIR_OK;
}

int32_t cu_cross_bwd(void *state, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                     const float *w, int64_t b, int64_t d, const float *dy, int64_t lddy,
                     float *dx0, int64_t lddx0, float *dxl, int64_t lddxl, float *dw,
                     float *dbias) {
  CU_ENTER(state);
  CHECK_DIM("cross_bwd", b);
  CHECK_DIM("cross_bwd", d);
  CHECK_LD("cross_bwd", ld0, d);
  CHECK_LD("cross_bwd", ldl, d);
  CHECK_LD("cross_bwd", lddy, d);
  CHECK_LD("cross_bwd", lddx0, d);
  CHECK_LD("cross_bwd", lddxl, d);
  if (b == 0 || d == 0) return AMEIR_OK;
  const int64_t nc = cross_chunks(b);
  cu_scratch_scope sc(s);
  float *dsv, *part;
  if (!take(sc, dsv, b) || !take(sc, part, nc * 2 * d)) return sc.status();
  with_team(team_width(d), [&](auto tc) {
    constexpr int T = decltype(tc)::value;
    cross_bwd_kernel<T><<<cu_blocks(b * T), CU_THREADS, 0, s->stream>>>(
        x0, ld0, xl, ldl, w, b, d, dy, lddy, dx0, lddx0, dxl, lddxl, dsv);
  });
  CU_LAUNCHED("cross_bwd row kernel");
  cross_part_kernel<<<cu_blocks(nc * d), CU_THREADS, 0, s->stream>>>(xl, ldl, dy, lddy, dsv, b,
                                                                    d, nc, part);
  CU_LAUNCHED("cross_bwd partials kernel");
  cross_final_kernel<<<cu_blocks(d), CU_THREADS, 0, s->stream>>>(part, d, nc, dw, dbias);
  CU_LAUNCHED("cross_bwd dw/dbias kernel");
  return AMEIR_OK;
}

// eq. (6): y_r = W z_r, one strided batched GEMM per chunk of rows
int32_t cu_cin_fwd(void *state, const float *x, int64_t ldx, int64_t h, const float *x0,
                   int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w, int64_t h_out,
                   float *y, int64_t ldy) {
  CU_ENTER(state);
  CU_TRY(cin_check(s, "cin_fwd", h, f, b, k, h_out, ldx, ld0));
  CHECK_LD("cin_fwd", ldy, h_out * k);
  if (b == 0 || k == 0 || h_out == 0) return AMEIR_OK;
  const int64_t hf = h * f;
  if (hf == 0) return zero_rows(s, y, ldy, b, h_out * k);
  const int64_t rows = cin_chunk_rows(b, hf, k);
  cu_scratch_scope sc(s);
  float *z;
  if (!take(sc, z, hf * rows * k)) return sc.status();
  for (int64_t r0 = 0; r0 < b; r0 += rows) {
    const int64_t nr = b - r0 < rows ? b - r0 : rows;
    cin_outer_kernel<true><<<cu_blocks(nr * hf * k), CU_THREADS, 0, s->stream>>>(
        x, ldx, x0, ld0, f, hf, k, r0, nr, z);
    CU_LAUNCHED("cin_fwd outer-product kernel");
    // y_r [h_out, k] (ldc k, rows ldy apart) = W [h_out, hf] z_r [hf, k]
    CU_TRY(cu_gemm_strided_batched(s, 0, 0, h_out, k, hf, 1.0f, w, hf, 0, z, k, hf * k, 0.0f,
                                   y + r0 * ldy, k, ldy, nr));
  }
  return AMEIR_OK;
}

int32_t cu_cin_bwd(void *state, const float *x, int64_t ldx, int64_t h, const float *x0,
                   int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w, int64_t h_out,
                   const float *dy, int64_t lddy, float *dx, int64_t lddx, float *dx0,
                   int64_t lddx0, float *dw) {
  CU_ENTER(state);
  CU_TRY(cin_check(s, "cin_bwd", h, f, b, k, h_out, ldx, ld0));
  CHECK_LD("cin_bwd", lddy, h_out * k);
  CHECK_LD("cin_bwd", lddx, h * k);
  CHECK_LD("cin_bwd", lddx0, f * k);
  if (b == 0 || k == 0) return AMEIR_OK;
  const int64_t hf = h * f;
  if (hf == 0 || h_out == 0) return zero_rows(s, dx, lddx, b, h * k);  // y does not depend on x
  const int64_t rows = cin_chunk_rows(b, hf, k);
  cu_scratch_scope sc(s);
  float *z, *dyt;
  if (!take(sc, z, hf * rows * k) || !take(sc, dyt, h_out * rows * k)) return sc.status();
  for (int64_t r0 = 0; r0 < b; r0 += rows) {
    const int64_t nr = b - r0 < rows ? b - r0 : rows, n = nr * k;
    cin_outer_kernel<false><<<cu_blocks(nr * hf * k), CU_THREADS, 0, s->stream>>>(
        x, ldx, x0, ld0, f, hf, k, r0, nr, z);
    CU_LAUNCHED("cin_bwd outer-product kernel");
    cin_gather_kernel<<<cu_blocks(h_out * n), CU_THREADS, 0, s->stream>>>(dy, lddy, h_out, k, r0,
                                                                          nr, dyt);
    CU_LAUNCHED("cin_bwd gather kernel");
    // dW += dY z^T, then z is overwritten by dz = W^T dY
    CU_TRY(cu_gemm(s, 0, 1, h_out, hf, n, 1.0f, dyt, n, z, n, 1.0f, dw, hf));
    CU_TRY(cu_gemm(s, 1, 0, hf, n, h_out, 1.0f, w, hf, dyt, n, 0.0f, z, n));
    cin_dx_kernel<<<cu_blocks(nr * h * k), CU_THREADS, 0, s->stream>>>(z, x0, ld0, h, f, k, r0,
                                                                      nr, dx, lddx);
    CU_LAUNCHED("cin_bwd dx kernel");
    cin_dx0_kernel<<<cu_blocks(nr * f * k), CU_THREADS, 0, s->stream>>>(z, x, ldx, h, f, k, r0,
                                                                       nr, dx0, lddx0);
    CU_LAUNCHED("cin_bwd dx0 kernel");
  }
  return AMEIR_OK;
}
