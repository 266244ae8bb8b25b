/* The CPU backend: layers of the baseline models of the paper's Table 3 that the other ops
 * cannot express: DCN's cross layer (Wang et al. 2017, eq. (3)) and xDeepFM's Compressed
 * Interaction Network (Lian et al. 2018, eq. (6)).
 *
 * cross: every row's outputs are written by one thread; dw and dbias are reduced over fixed row
 * chunks (cpu_chunks), each into its own partial, the partials summed in chunk order. So every
 * result is bit-identical whatever the thread count.
 *
 * CIN: y_r = W z_r with z_r[i*f + j, t] = x[r,i,t] x0[r,j,t] (the outer products, [h*f, k] per
 * row). A block of rows at a time, z is built in scratch as one matrix [h*f, rows*k] (column
 * rr*k + t belongs to row rr of the block), so that the forward is one sgemm W z, and the
 * backward the two sgemms dW += dY z^T and dz = W^T dY over the block. The block's row count
 * depends on the shape only and keeps z at a few MB: the batch's z (h*f*k floats a row,
 * hundreds of MB for a whole batch) never exists at once. dW accumulates block after block, in
 * order, and dz is folded back onto dx and dx0 row by row (one thread a row, fixed order). The
 * results are those of sgemm: bit-identical for the same thread count (cpu.h). */
#include <string.h>

#include "cpu.h"

#define ZOO_KB 256   /* column block of the stack accumulators */
/* Floats of z per block of CIN rows (8 MB): the block holds max(1, CIN_Z_FLOATS / (h*f*k))
 * rows, enough columns (rows * k) for sgemm to run at speed. */
#define CIN_Z_FLOATS ((int64_t)1 << 21)

static int32_t bad_dim(cpu_state *st, const char *op, const char *name, int64_t v) {
  return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: %s = %lld < 0", op, name, (long long)v);
}

static int32_t bad_ld(cpu_state *st, const char *op, const char *name, int64_t ld, int64_t width) {
  return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: row stride %s = %lld < the row width %lld",
                      op, name, (long long)ld, (long long)width);
}

#define CHECK_DIM(op, v) \
  do { if ((v) < 0) return bad_dim(st, op, #v, v); } while (0)
#define CHECK_LD(op, ld, width) \
  do { if ((ld) < (width)) return bad_ld(st, op, #ld, ld, width); } while (0)

/* ---- DCN cross layer ---- */

/* y_r = x0_r * s_r + bias + xl_r with s_r = xl_r . w, rows [lo, hi) */
static void cross_fwd_rows(const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                           const float *w, const float *bias, int64_t d, float *y, int64_t ldy,
                           int64_t lo, int64_t hi) {
  for (int64_t r = lo; r < hi; r++) {
    const float *a = x0 + r * ld0, *l = xl + r * ldl;
    float *o = y + r * ldy;
    const float s = cpu_dot(l, w, d);
#pragma omp simd
    for (int64_t j = 0; j < d; j++) o[j] = a[j] * s + bias[j] + l[j];
  }
}

int32_t ameir__cpu_cross_fwd(void *s, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                             const float *w, const float *bias, int64_t b, int64_t d, float *y,
                             int64_t ldy) {
  cpu_state *st = s;
  CHECK_DIM("cross_fwd", b);
  CHECK_DIM("cross_fwd", d);
  CHECK_LD("cross_fwd", ld0, d);
  CHECK_LD("cross_fwd", ldl, d);
  CHECK_LD("cross_fwd", ldy, d);
  if (b == 0 || d == 0) return 0;
  int nt = cpu_nt_items(st, b * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid,
                cross_fwd_rows(x0, ld0, xl, ldl, w, bias, d, y, ldy, lo, hi));
  return 0;
}

/* Chunks [c0, c1) of nc over the b rows: the row outputs dx0 (+=) and dxl (=), and the chunk's
 * partials of dw (part[c*2d ..]) and dbias (part[c*2d + d ..]), rows in ascending order. dy is
 * read in full before dxl is written. */
static void cross_bwd_chunks(const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                             const float *w, int64_t b, int64_t d, const float *dy, int64_t lddy,
                             float *dx0, int64_t lddx0, float *dxl, int64_t lddxl, int64_t nc,
                             int64_t c0, int64_t c1, float *part) {
  for (int64_t c = c0; c < c1; c++) {
    int64_t lo, hi;
    cpu_chunk_range(b, nc, c, &lo, &hi);
    float *pw = part + c * 2 * d, *pb = pw + d;
    for (int64_t j = 0; j < 2 * d; j++) pw[j] = 0.0f;
    for (int64_t r = lo; r < hi; r++) {
      const float *a = x0 + r * ld0, *l = xl + r * ldl, *g = dy + r * lddy;
      float *ga = dx0 + r * lddx0, *gl = dxl + r * lddxl;
      const float sr = cpu_dot(l, w, d), ds = cpu_dot(g, a, d);
#pragma omp simd
      for (int64_t j = 0; j < d; j++) {
        const float gj = g[j];
        pb[j] += gj;
        pw[j] += ds * l[j];
        ga[j] += gj * sr;
        gl[j] = gj + ds * w[j];
      }
    }
  }
}

int32_t ameir__cpu_cross_bwd(void *s, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                             const float *w, int64_t b, int64_t d, const float *dy, int64_t lddy,
                             float *dx0, int64_t lddx0, float *dxl, int64_t lddxl, float *dw,
                             float *dbias) {
  cpu_state *st = s;
  CHECK_DIM("cross_bwd", b);
  CHECK_DIM("cross_bwd", d);
  CHECK_LD("cross_bwd", ld0, d);
  CHECK_LD("cross_bwd", ldl, d);
  CHECK_LD("cross_bwd", lddy, d);
  CHECK_LD("cross_bwd", lddx0, d);
  CHECK_LD("cross_bwd", lddxl, d);
  if (b == 0 || d == 0) return 0;
  const int64_t nc = cpu_chunks(b);
  float *part = cpu_scratch_get(st, (size_t)(nc * 2 * d) * sizeof(float));
  if (!part) return cpu_scratch_status();
  int nt = cpu_nt_items(st, b * d, nc);
  CPU_PAR_RANGE(nt, nc, c0, c1, tid,
                cross_bwd_chunks(x0, ld0, xl, ldl, w, b, d, dy, lddy, dx0, lddx0, dxl, lddxl, nc,
                                 c0, c1, part));
  for (int64_t c = 1; c < nc; c++) {
    const float *pc = part + c * 2 * d;
#pragma omp simd
    for (int64_t j = 0; j < 2 * d; j++) part[j] += pc[j];
  }
  for (int64_t j = 0; j < d; j++) {
    dw[j] += part[j];
    dbias[j] += part[d + j];
  }
  cpu_scratch_put(st, part);
  return 0;
}

/* ---- xDeepFM CIN layer ---- */

static int32_t cin_check(cpu_state *st, const char *op, int64_t h, int64_t f, int64_t b,
                         int64_t k, int64_t h_out, int64_t ldx, int64_t ld0) {
  CHECK_DIM(op, h);
  CHECK_DIM(op, f);
  CHECK_DIM(op, b);
  CHECK_DIM(op, k);
  CHECK_DIM(op, h_out);
  CHECK_LD(op, ldx, h * k);
  CHECK_LD(op, ld0, f * k);
  return 0;
}

/* rows of a block: the most whose z fits CIN_Z_FLOATS, at least 1, at most b */
static int64_t cin_block_rows(int64_t b, int64_t hf, int64_t k) {
  int64_t r = CIN_Z_FLOATS / (hf * k);
  if (r < 1) r = 1;
  return r < b ? r : b;
}

/* zero rows [0, b) of an output [b, width] (row stride ld): the empty sums */
static void zero_rows(cpu_state *st, float *y, int64_t ld, int64_t b, int64_t width) {
  int nt = cpu_nt_items(st, b * width, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, for (int64_t r = lo; r < hi; r++)
                memset(y + r * ld, 0, (size_t)width * sizeof(float)));
}

/* z[p, rr*k + t] (row stride n = nr*k) = x[r0+rr, i, t] * x0[r0+rr, j, t], p = i*f + j, for the
 * rows [plo, phi) of z */
static void cin_outer(const float *x, int64_t ldx, const float *x0, int64_t ld0, int64_t f,
                      int64_t k, int64_t r0, int64_t nr, float *z, int64_t plo, int64_t phi) {
  const int64_t n = nr * k;
  for (int64_t p = plo; p < phi; p++) {
    const int64_t i = p / f, j = p - i * f;
    float *zp = z + p * n;
    for (int64_t rr = 0; rr < nr; rr++) {
      const float *a = x + (r0 + rr) * ldx + i * k, *c = x0 + (r0 + rr) * ld0 + j * k;
      float *o = zp + rr * k;
#pragma omp simd
      for (int64_t t = 0; t < k; t++) o[t] = a[t] * c[t];
    }
  }
}

/* Rows [lo, hi) of a block: y[r0+rr, o*k + t] = yt[o, rr*k + t], yt: [h_out, nr*k] */
static void cin_scatter(const float *yt, int64_t h_out, int64_t k, int64_t nr, int64_t r0,
                        float *y, int64_t ldy, int64_t lo, int64_t hi) {
  const int64_t n = nr * k;
  for (int64_t rr = lo; rr < hi; rr++)
    for (int64_t o = 0; o < h_out; o++)
      memcpy(y + (r0 + rr) * ldy + o * k, yt + o * n + rr * k, (size_t)k * sizeof(float));
}

/* the other way round: dyt[o, rr*k + t] = dy[r0+rr, o*k + t] */
static void cin_gather(const float *dy, int64_t lddy, int64_t h_out, int64_t k, int64_t nr,
                       int64_t r0, float *dyt, int64_t lo, int64_t hi) {
  const int64_t n = nr * k;
  for (int64_t rr = lo; rr < hi; rr++)
    for (int64_t o = 0; o < h_out; o++)
      memcpy(dyt + o * n + rr * k, dy + (r0 + rr) * lddy + o * k, (size_t)k * sizeof(float));
}

/* Rows [lo, hi) of a block, from dz = W^T dY ([h*f, nr*k], row stride n):
 *   dx[r, i, t]   = sum_j dz[i*f + j, rr*k + t] x0[r, j, t]     (overwritten, j ascending)
 *   dx0[r, j, t] += sum_i dz[i*f + j, rr*k + t] x[r, i, t]      (i ascending, then added) */
static void cin_fold(const float *dz, const float *x, int64_t ldx, int64_t h, const float *x0,
                     int64_t ld0, int64_t f, int64_t k, int64_t nr, int64_t r0, float *dx,
                     int64_t lddx, float *dx0, int64_t lddx0, int64_t lo, int64_t hi) {
  const int64_t n = nr * k;
  float acc[ZOO_KB];
  for (int64_t rr = lo; rr < hi; rr++) {
    const int64_t r = r0 + rr;
    const float *xr = x + r * ldx, *x0r = x0 + r * ld0;
    float *dxr = dx + r * lddx, *dx0r = dx0 + r * lddx0;
    for (int64_t t0 = 0; t0 < k; t0 += ZOO_KB) {
      const int64_t nb = k - t0 < ZOO_KB ? k - t0 : ZOO_KB;
      const float *dzc = dz + rr * k + t0;
      for (int64_t i = 0; i < h; i++) {
        for (int64_t t = 0; t < nb; t++) acc[t] = 0.0f;
        for (int64_t j = 0; j < f; j++) {
          const float *zr = dzc + (i * f + j) * n, *e = x0r + j * k + t0;
#pragma omp simd
          for (int64_t t = 0; t < nb; t++) acc[t] += zr[t] * e[t];
        }
        memcpy(dxr + i * k + t0, acc, (size_t)nb * sizeof(float));
      }
      for (int64_t j = 0; j < f; j++) {
        for (int64_t t = 0; t < nb; t++) acc[t] = 0.0f;
        for (int64_t i = 0; i < h; i++) {
          const float *zr = dzc + (i * f + j) * n, *e = xr + i * k + t0;
#pragma omp simd
          for (int64_t t = 0; t < nb; t++) acc[t] += zr[t] * e[t];
        }
        float *g = dx0r + j * k + t0;
#pragma omp simd
        for (int64_t t = 0; t < nb; t++) g[t] += acc[t];
      }
    }
  }
}

/* eq. (6): y_r = W z_r, a block of rows per sgemm */
int32_t ameir__cpu_cin_fwd(void *s, const float *x, int64_t ldx, int64_t h, const float *x0,
                           int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w,
                           int64_t h_out, float *y, int64_t ldy) {
  cpu_state *st = s;
  int32_t rc = cin_check(st, "cin_fwd", h, f, b, k, h_out, ldx, ld0);
  if (rc) return rc;
  CHECK_LD("cin_fwd", ldy, h_out * k);
  if (b == 0 || k == 0 || h_out == 0) return 0;
  const int64_t hf = h * f;
  if (hf == 0) {
    zero_rows(st, y, ldy, b, h_out * k);
    return 0;
  }
  const int64_t rows = cin_block_rows(b, hf, k);
  const size_t zbytes = cpu_al((size_t)(hf * rows * k) * sizeof(float));
  char *buf = cpu_scratch_get(st, zbytes + (size_t)(h_out * rows * k) * sizeof(float));
  if (!buf) return cpu_scratch_status();
  float *z = (float *)buf, *yt = (float *)(buf + zbytes);
  for (int64_t r0 = 0; r0 < b && !rc; r0 += rows) {
    const int64_t nr = b - r0 < rows ? b - r0 : rows, n = nr * k;
    int nt = cpu_nt_items(st, hf * n, hf);
    CPU_PAR_RANGE(nt, hf, plo, phi, tid, cin_outer(x, ldx, x0, ld0, f, k, r0, nr, z, plo, phi));
    rc = ameir__cpu_gemm(s, 0, 0, h_out, n, hf, 1.0f, w, hf, z, n, 0.0f, yt, n);
    if (rc) break;
    nt = cpu_nt_items(st, h_out * n, nr);
    CPU_PAR_RANGE(nt, nr, lo, hi, tid, cin_scatter(yt, h_out, k, nr, r0, y, ldy, lo, hi));
  }
  cpu_scratch_put(st, buf);
  return rc;
}

int32_t ameir__cpu_cin_bwd(void *s, const float *x, int64_t ldx, int64_t h, const float *x0,
                           int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w,
                           int64_t h_out, const float *dy, int64_t lddy, float *dx, int64_t lddx,
                           float *dx0, int64_t lddx0, float *dw) {
  cpu_state *st = s;
  int32_t rc = cin_check(st, "cin_bwd", h, f, b, k, h_out, ldx, ld0);
  if (rc) return rc;
  CHECK_LD("cin_bwd", lddy, h_out * k);
  CHECK_LD("cin_bwd", lddx, h * k);
  CHECK_LD("cin_bwd", lddx0, f * k);
  if (b == 0 || k == 0) return 0;
  const int64_t hf = h * f;
  if (hf == 0 || h_out == 0) {   /* y does not depend on x: dx = 0; nothing else moves */
    zero_rows(st, dx, lddx, b, h * k);
    return 0;
  }
  const int64_t rows = cin_block_rows(b, hf, k);
  const size_t zbytes = cpu_al((size_t)(hf * rows * k) * sizeof(float));
  char *buf = cpu_scratch_get(st, zbytes + (size_t)(h_out * rows * k) * sizeof(float));
  if (!buf) return cpu_scratch_status();
  float *z = (float *)buf, *dyt = (float *)(buf + zbytes);
  for (int64_t r0 = 0; r0 < b && !rc; r0 += rows) {
    const int64_t nr = b - r0 < rows ? b - r0 : rows, n = nr * k;
    int nt = cpu_nt_items(st, hf * n, hf);
    CPU_PAR_RANGE(nt, hf, plo, phi, tid, cin_outer(x, ldx, x0, ld0, f, k, r0, nr, z, plo, phi));
    nt = cpu_nt_items(st, h_out * n, nr);
    CPU_PAR_RANGE(nt, nr, lo, hi, tid, cin_gather(dy, lddy, h_out, k, nr, r0, dyt, lo, hi));
    /* dW += dY z^T, then z is overwritten by dz = W^T dY */
    rc = ameir__cpu_gemm(s, 0, 1, h_out, hf, n, 1.0f, dyt, n, z, n, 1.0f, dw, hf);
    if (rc) break;
    rc = ameir__cpu_gemm(s, 1, 0, hf, n, h_out, 1.0f, w, hf, dyt, n, 0.0f, z, n);
    if (rc) break;
    nt = cpu_nt_items(st, 2 * hf * n, nr);
    CPU_PAR_RANGE(nt, nr, lo, hi, tid,
                  cin_fold(z, x, ldx, h, x0, ld0, f, k, nr, r0, dx, lddx, dx0, lddx0, lo, hi));
  }
  cpu_scratch_put(st, buf);
  return rc;
}
