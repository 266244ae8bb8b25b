/* CPU backend: Stage 1 sequence ops without recurrence: mask, conv1d, pool3, read-outs,
 * dot_rows. Each is checked against a double reference on ragged lengths (0, 1, t and random),
 * by finite differences of that reference for every input and parameter, and for padding
 * invariance (the same samples padded to t + 5 with NaN give bit-identical results). */
#include <math.h>
#include <string.h>

#include "util.h"

/* double copy of x with the (NaN) padding set to 0, for references and finite differences */
static double *dclean(const float *x, int64_t n) {
  double *d = tops_tod(x, n);
  for (int64_t i = 0; i < n; i++)
    if (isnan(d[i])) d[i] = 0.0;
  return d;
}

static float *nanf_(int64_t n) { return tops_constf(n, NAN); }

/* sum of w * y over the valid rows */
static double seq_dot(const double *w, const double *y, const int32_t *len, int64_t b, int64_t t,
                      int64_t d) {
  double l = 0.0;
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = 0; j < len[i] * d; j++) l += w[i * t * d + j] * y[i * t * d + j];
  return l;
}

/* ---- seq_mask ---- */

void test_ops_seq__mask(void) {
  const int64_t b = 6, t = 5, d = 3;
  int32_t *len = tops_lens(1, b, t);
  float *x = tops_randf(2, b * t * d, -1, 1), *y = nanf_(b * t * d);
  T_OK(tops_ops()->seq_mask(tops_st(), y, x, len, b, t, d));
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = 0; j < t * d; j++)
      T_ASSERT(y[i * t * d + j] == (j < len[i] * d ? x[i * t * d + j] : 0.0f));
  float *z = tops_dupf(x, b * t * d);
  T_OK(tops_ops()->seq_mask(tops_st(), z, z, len, b, t, d));   /* in place */
  tops_check_same("seq_mask in place", z, y, b * t * d);
  len[1] = (int32_t)t + 1;
  T_ASSERT_EQ_INT(tops_ops()->seq_mask(tops_st(), z, z, len, b, t, d), AMEIR_EINVAL);
  T_ASSERT(strstr(tops_ctx()->msg, "len[1]") != NULL);
  len[1] = -1;
  T_ASSERT_EQ_INT(tops_ops()->seq_mask(tops_st(), z, z, len, b, t, d), AMEIR_EINVAL);
  free(len), free(x), free(y), free(z);
}

/* ---- conv1d ---- */

typedef struct {
  int64_t b, t, d;
  int32_t k, dil;
  const int32_t *len;
  double *x, *w, *bias, *y;
  const double *wy;
} conv_u;

static void ref_conv(conv_u *u) {
  int64_t b = u->b, t = u->t, d = u->d, k = u->k;
  for (int64_t s = 0; s < b; s++)
    for (int64_t i = 0; i < t; i++)
      for (int64_t o = 0; o < d; o++) {
        double acc = 0.0;
        if (i < u->len[s]) {
          acc = u->bias[o];
          for (int64_t j = 0; j < k; j++) {
            int64_t pos = i + (j - (k - 1) / 2) * u->dil;
            if (pos < 0 || pos >= u->len[s]) continue;
            for (int64_t c = 0; c < d; c++)
              acc += u->w[(o * d + c) * k + j] * u->x[(s * t + pos) * d + c];
          }
        }
        u->y[(s * t + i) * d + o] = acc;
      }
}

static double conv_loss(void *p) {
  conv_u *u = p;
  ref_conv(u);
  return seq_dot(u->wy, u->y, u->len, u->b, u->t, u->d);
}

static void check_conv(int64_t b, int64_t t, int64_t d, int32_t k, int32_t dil, uint64_t seed,
                       int full) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  int64_t n = b * t * d, nw = d * d * k, t2 = t + 5;
  int32_t *len = tops_lens(seed, b, t);
  if (full)
    for (int64_t i = 0; i < b; i++) len[i] = (int32_t)t;
  float *x = tops_seq_randf(seed + 1, len, b, t, d, -1, 1);
  float *w = tops_randf(seed + 2, nw, -0.5f, 0.5f), *bias = tops_randf(seed + 3, d, -0.5f, 0.5f);
  float *y = nanf_(n);
  T_OK(o->conv1d_fwd(st, x, len, b, t, d, w, bias, k, dil, y));
  double *yd = calloc((size_t)n, sizeof(double)), *wy = NULL;
  float *dy = tops_seq_randf(seed + 4, len, b, t, d, -1, 1);
  wy = dclean(dy, n);
  conv_u u = {b, t, d, k, dil, len, dclean(x, n), tops_tod(w, nw), tops_tod(bias, d), yd, wy};
  ref_conv(&u);
  tops_check_close("conv1d_fwd", y, yd, n, 1e-5, 1e-5);
  /* backward: dx overwritten, dw and dbias accumulated */
  float *dx = nanf_(n), *dw = tops_randf(seed + 5, nw, -1, 1), *db = tops_randf(seed + 6, d, -1, 1);
  float *dw0 = tops_dupf(dw, nw), *db0 = tops_dupf(db, d);
  T_OK(o->conv1d_bwd(st, x, len, b, t, d, w, k, dil, dy, dx, dw, db));
  for (int64_t i = 0; i < nw; i++) dw[i] -= dw0[i];
  for (int64_t i = 0; i < d; i++) db[i] -= db0[i];
  tops_fd_check("conv1d dx", conv_loss, &u, u.x, n, dx, 1e-3, 1e-4, 150);
  tops_fd_check("conv1d dw", conv_loss, &u, u.w, nw, dw, 1e-3, 1e-4, 150);
  tops_fd_check("conv1d dbias", conv_loss, &u, u.bias, d, db, 1e-3, 1e-4, 50);
  /* padding invariance, forward and backward */
  float *x2 = tops_repad(x, len, b, t, t2, d), *y2 = nanf_(b * t2 * d);
  T_OK(o->conv1d_fwd(st, x2, len, b, t2, d, w, bias, k, dil, y2));
  tops_check_repad("conv1d_fwd repad", y, y2, len, b, t, t2, d);
  float *dy2 = tops_repad(dy, len, b, t, t2, d), *dx2 = nanf_(b * t2 * d);
  float *dwa = tops_constf(nw, 0), *dwb = tops_constf(nw, 0);
  float *dba = tops_constf(d, 0), *dbb = tops_constf(d, 0);
  T_OK(o->conv1d_bwd(st, x, len, b, t, d, w, k, dil, dy, dx, dwa, dba));
  T_OK(o->conv1d_bwd(st, x2, len, b, t2, d, w, k, dil, dy2, dx2, dwb, dbb));
  tops_check_repad("conv1d_bwd dx repad", dx, dx2, len, b, t, t2, d);
  tops_check_same("conv1d_bwd dw repad", dwa, dwb, nw);
  tops_check_same("conv1d_bwd dbias repad", dba, dbb, d);
  free(len), free(x), free(w), free(bias), free(y), free(yd), free(wy), free(dy);
  free(u.x), free(u.w), free(u.bias), free(dx), free(dw), free(db), free(dw0), free(db0);
  free(x2), free(y2), free(dy2), free(dx2), free(dwa), free(dwb), free(dba), free(dbb);
}

void test_ops_seq__conv_k1(void) {
  check_conv(6, 7, 4, 1, 1, 10, 0);
  check_conv(3, 5, 3, 1, 1, 20, 1);   /* every len = t: the layout is x itself */
}

void test_ops_seq__conv_k3(void) {
  check_conv(6, 7, 4, 3, 1, 30, 0);
  check_conv(5, 9, 5, 3, 1, 40, 0);
  check_conv(2, 4, 3, 3, 1, 45, 1);
}

void test_ops_seq__conv_dilated(void) {
  check_conv(6, 7, 4, 3, 2, 50, 0);
  check_conv(6, 9, 3, 5, 2, 60, 0);
  check_conv(5, 11, 4, 7, 2, 70, 0);
  check_conv(2, 3, 2, 7, 2, 80, 1);   /* the kernel is wider than the sequence */
}

void test_ops_seq__conv_bad_args(void) {
  int32_t len[1] = {1};
  float x[4] = {0}, w[4] = {0}, bias[2] = {0}, y[4];
  T_ASSERT_EQ_INT(tops_ops()->conv1d_fwd(tops_st(), x, len, 1, 2, 2, w, bias, 2, 1, y),
                  AMEIR_EINVAL);
  T_ASSERT_EQ_INT(tops_ops()->conv1d_fwd(tops_st(), x, len, 1, 2, 2, w, bias, 1, 0, y),
                  AMEIR_EINVAL);
}

/* ---- pool3 ---- */

typedef struct {
  int64_t b, t, d;
  int kind;
  const int32_t *len;
  double *x, *y;
  const double *wy;
} pool_u;

static void ref_pool(pool_u *u) {
  int64_t t = u->t, d = u->d;
  for (int64_t s = 0; s < u->b; s++)
    for (int64_t i = 0; i < t; i++)
      for (int64_t c = 0; c < d; c++) {
        double v = 0.0;
        int64_t l = u->len[s];
        if (i < l) {
          int64_t lo = i > 0 ? i - 1 : 0, hi = i + 1 < l ? i + 1 : l - 1;
          v = u->kind ? -INFINITY : 0.0;
          for (int64_t p = lo; p <= hi; p++) {
            double e = u->x[(s * t + p) * d + c];
            v = u->kind ? (e > v ? e : v) : v + e;
          }
          if (!u->kind) v /= (double)(hi - lo + 1);
        }
        u->y[(s * t + i) * d + c] = v;
      }
}

static double pool_loss(void *p) {
  pool_u *u = p;
  ref_pool(u);
  return seq_dot(u->wy, u->y, u->len, u->b, u->t, u->d);
}

static void check_pool(int kind, int64_t b, int64_t t, int64_t d, uint64_t seed) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  int64_t n = b * t * d, t2 = t + 5;
  int32_t *len = tops_lens(seed, b, t);
  float *x = tops_seq_randf(seed + 1, len, b, t, d, -1, 1), *y = nanf_(n);
  int32_t *sv = kind ? malloc((size_t)n * sizeof(int32_t)) : NULL;
  T_OK(o->pool3_fwd(st, kind, x, len, b, t, d, y, sv));
  float *dy = tops_seq_randf(seed + 2, len, b, t, d, -1, 1);
  double *yd = calloc((size_t)n, sizeof(double));
  double *wy = dclean(dy, n);
  pool_u u = {b, t, d, kind, len, dclean(x, n), yd, wy};
  ref_pool(&u);
  tops_check_close(kind ? "maxpool3" : "avgpool3", y, yd, n, 1e-6, 1e-7);
  float *dx = nanf_(n);
  T_OK(o->pool3_bwd(st, kind, len, b, t, d, dy, sv, dx));
  tops_fd_check(kind ? "maxpool3 dx" : "avgpool3 dx", pool_loss, &u, u.x, n, dx, 1e-3, 1e-5, 400);
  /* padding invariance */
  int64_t n2 = b * t2 * d;
  float *x2 = tops_repad(x, len, b, t, t2, d), *y2 = nanf_(n2), *dx2 = nanf_(n2);
  float *dy2 = tops_repad(dy, len, b, t, t2, d);
  int32_t *sv2 = kind ? malloc((size_t)n2 * sizeof(int32_t)) : NULL;
  T_OK(o->pool3_fwd(st, kind, x2, len, b, t2, d, y2, sv2));
  tops_check_repad("pool3_fwd repad", y, y2, len, b, t, t2, d);
  T_OK(o->pool3_bwd(st, kind, len, b, t2, d, dy2, sv2, dx2));
  tops_check_repad("pool3_bwd repad", dx, dx2, len, b, t, t2, d);
  free(len), free(x), free(y), free(sv), free(dy), free(yd), free(u.x), free(wy), free(dx);
  free(x2), free(y2), free(dx2), free(dy2), free(sv2);
}

void test_ops_seq__avgpool(void) {
  check_pool(0, 7, 6, 4, 100);
  check_pool(0, 5, 9, 3, 110);
}

void test_ops_seq__maxpool(void) {
  check_pool(1, 7, 6, 4, 120);
  check_pool(1, 5, 9, 3, 130);
  /* ties keep the first position of the window; gradients go there */
  int32_t len[1] = {3};
  float x[3] = {2, 2, 1}, y[3], dy[3] = {1, 10, 100}, dx[3];
  int32_t sv[3];
  T_OK(tops_ops()->pool3_fwd(tops_st(), 1, x, len, 1, 3, 1, y, sv));
  T_ASSERT(y[0] == 2 && y[1] == 2 && y[2] == 2);
  T_ASSERT(sv[0] == 0 && sv[1] == 0 && sv[2] == 1);
  T_OK(tops_ops()->pool3_bwd(tops_st(), 1, len, 1, 3, 1, dy, sv, dx));
  T_ASSERT(dx[0] == 11 && dx[1] == 100 && dx[2] == 0);
}

/* ---- read-outs ---- */

void test_ops_seq__readout(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t b = 7, t = 5, d = 3, lds = 5, ldl = 4;
  int32_t *len = tops_lens(200, b, t);
  float *x = tops_seq_randf(201, len, b, t, d, -1, 1);
  float *sum = nanf_(b * lds), *last = nanf_(b * ldl);
  T_OK(o->readout_fwd(st, x, len, b, t, d, sum, lds, last, ldl));
  for (int64_t s = 0; s < b; s++)
    for (int64_t c = 0; c < d; c++) {
      double ref = 0.0;
      for (int64_t i = 0; i < len[s]; i++) ref += x[(s * t + i) * d + c];
      T_ASSERT_CLOSE(sum[s * lds + c], ref, 1e-6, 1e-7);
      T_ASSERT(last[s * ldl + c] == (len[s] ? x[(s * t + len[s] - 1) * d + c] : 0.0f));
    }
  for (int64_t s = 0; s < b; s++) T_ASSERT(isnan(sum[s * lds + d]) && isnan(last[s * ldl + d]));
  float *sum2 = nanf_(b * lds);
  T_OK(o->readout_fwd(st, x, len, b, t, d, sum2, lds, NULL, 0));   /* one output */
  tops_check_same("readout sum alone", sum, sum2, b * lds);
  /* backward accumulates; the padding keeps its value */
  float *dsum = tops_randf(202, b * lds, -1, 1), *dlast = tops_randf(203, b * ldl, -1, 1);
  float *dx = tops_randf(204, b * t * d, -1, 1), *dx0 = tops_dupf(dx, b * t * d);
  T_OK(o->readout_bwd(st, len, b, t, d, dsum, lds, dlast, ldl, dx));
  for (int64_t s = 0; s < b; s++)
    for (int64_t i = 0; i < t; i++)
      for (int64_t c = 0; c < d; c++) {
        double g = dx0[(s * t + i) * d + c];
        if (i < len[s]) g += dsum[s * lds + c];
        if (i == len[s] - 1) g += dlast[s * ldl + c];
        T_ASSERT_CLOSE(dx[(s * t + i) * d + c], g, 1e-6, 1e-7);
      }
  memcpy(dx, dx0, (size_t)(b * t * d) * sizeof(float));
  T_OK(o->readout_bwd(st, len, b, t, d, NULL, 0, dlast, ldl, dx));
  for (int64_t s = 0; s < b; s++)
    for (int64_t i = 0; i < t; i++)
      for (int64_t c = 0; c < d; c++) {
        float g = dx0[(s * t + i) * d + c];
        if (i == len[s] - 1) g += dlast[s * ldl + c];
        T_ASSERT(dx[(s * t + i) * d + c] == g);
      }
  free(len), free(x), free(sum), free(last), free(sum2), free(dsum), free(dlast), free(dx);
  free(dx0);
}

/* ---- dot_rows ---- */

void test_ops_seq__dot_rows(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t v = 30, k = 19, b = 9, c = 4;
  float *e = tops_randf(300, v * k, -1, 1), *u = tops_randf(301, b * k, -1, 1);
  int32_t *rows = tops_randi(302, b * c, 0, (int32_t)v);
  float *s = nanf_(b * c);
  T_OK(o->dot_rows_fwd(st, e, k, rows, b, c, u, s));
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = 0; j < c; j++) {
      double ref = 0.0;
      for (int64_t q = 0; q < k; q++) ref += (double)e[rows[i * c + j] * k + q] * u[i * k + q];
      T_ASSERT_CLOSE(s[i * c + j], ref, 1e-5, 1e-6);
    }
  float *ds = tops_randf(303, b * c, -1, 1), *du = nanf_(b * k), *g = nanf_(b * c * k);
  T_OK(o->dot_rows_bwd(st, e, k, rows, b, c, u, ds, du, g));
  for (int64_t i = 0; i < b; i++)
    for (int64_t q = 0; q < k; q++) {
      double ref = 0.0;
      for (int64_t j = 0; j < c; j++) ref += (double)ds[i * c + j] * e[rows[i * c + j] * k + q];
      T_ASSERT_CLOSE(du[i * k + q], ref, 1e-5, 1e-6);
      for (int64_t j = 0; j < c; j++)
        T_ASSERT_CLOSE(g[(i * c + j) * k + q], (double)ds[i * c + j] * u[i * k + q], 1e-6, 0);
    }
  free(e), free(u), free(rows), free(s), free(ds), free(du), free(g);
}
