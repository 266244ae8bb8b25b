/* CPU backend: the baseline models' layers, DCN's cross layer and xDeepFM's CIN (cpu_zoo.c):
 * forward against double references, every gradient against central finite differences (or,
 * for shapes too large for them, against double references of the gradient formulas), the
 * accumulate/overwrite rules of ops.h, strided rows whose gaps are neither read nor written,
 * the first layer's aliasing (xl == x0, x == x0), refused arguments, and determinism. */
#include <math.h>
#include <string.h>

#include "util.h"

#define GAP 7.0f   /* the gaps of strided outputs must keep it */

/* rows x cols (row stride ld) in [lo, hi), the gaps NaN (an op that reads them shows it) */
static float *mat(uint64_t seed, int64_t rows, int64_t cols, int64_t ld, float lo, float hi) {
  float *x = tops_randf(seed, rows * ld, lo, hi);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = cols; j < ld; j++) x[i * ld + j] = NAN;
  return x;
}

/* an output: NaN where the op must write without reading (overwrite), or random where it adds
 * (accumulate); the gaps GAP */
static float *out_mat(uint64_t seed, int64_t rows, int64_t cols, int64_t ld, int accumulate) {
  float *x = tops_randf(seed, rows * ld, -1, 1);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < ld; j++)
      if (j >= cols) x[i * ld + j] = GAP;
      else if (!accumulate) x[i * ld + j] = NAN;
  return x;
}

static void check_gaps(const char *what, const float *x, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = cols; j < ld; j++)
      T_ASSERT_MSG(x[i * ld + j] == GAP, "%s: row %lld, gap column %lld written (%g)", what,
                   (long long)i, (long long)j, (double)x[i * ld + j]);
}

/* the valid part of a - a0 (a0 NULL: of a) as a dense float array */
static float *dense_delta(const float *a, const float *a0, int64_t rows, int64_t cols,
                          int64_t ld) {
  float *d = malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof(float));
  T_ASSERT(d != NULL);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++)
      d[i * cols + j] = a[i * ld + j] - (a0 ? a0[i * ld + j] : 0.0f);
  return d;
}

static void check_rows_close(const char *what, const float *got, int64_t ld, const double *ref,
                             int64_t rows, int64_t cols, double rtol, double atol) {
  float *g = dense_delta(got, NULL, rows, cols, ld);
  tops_check_close(what, g, ref, rows * cols, rtol, atol);
  free(g);
}

/* ================================================================ DCN cross layer ========== */

typedef struct {
  int64_t b, d;
  double *x0, *xl, *w, *bias;   /* dense; xl == x0 for the first layer */
  const double *wy;             /* loss weights [b, d] */
} cross_u;

/* y = x0 * (xl . w) + bias + xl, [b, d] dense */
static void cross_ref(const cross_u *u, double *y) {
  for (int64_t r = 0; r < u->b; r++) {
    const double *a = u->x0 + r * u->d, *l = u->xl + r * u->d;
    double s = 0.0;
    for (int64_t j = 0; j < u->d; j++) s += l[j] * u->w[j];
    for (int64_t j = 0; j < u->d; j++) y[r * u->d + j] = a[j] * s + u->bias[j] + l[j];
  }
}

static double cross_loss(void *p) {
  const cross_u *u = p;
  double *y = malloc((size_t)(u->b * u->d) * sizeof(double)), l = 0.0;
  cross_ref(u, y);
  for (int64_t i = 0; i < u->b * u->d; i++) l += u->wy[i] * y[i];
  free(y);
  return l;
}

static void check_cross(int64_t b, int64_t d, int same, uint64_t seed) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t ld0 = d + 3, ldl = same ? ld0 : d + 1, ldy = d + 2, lddy = d + 4;
  const int64_t lddx0 = d + 1, lddxl = d + 5;
  float *x0 = mat(seed, b, d, ld0, -1, 1);
  float *xl = same ? x0 : mat(seed + 1, b, d, ldl, -1, 1);
  float *w = tops_randf(seed + 2, d, -0.5f, 0.5f), *bias = tops_randf(seed + 3, d, -1, 1);
  float *y = out_mat(seed + 4, b, d, ldy, 0);
  T_OK(o->cross_fwd(st, x0, ld0, xl, ldl, w, bias, b, d, y, ldy));
  double *x0d = tops_dense_d(x0, b, d, ld0), *xld = same ? x0d : tops_dense_d(xl, b, d, ldl);
  double *wd = tops_tod(w, d), *bd = tops_tod(bias, d);
  float *dy = mat(seed + 5, b, d, lddy, -1, 1);
  double *wy = tops_dense_d(dy, b, d, lddy), *ref = malloc((size_t)(b * d) * sizeof(double));
  cross_u u = {b, d, x0d, xld, wd, bd, wy};
  cross_ref(&u, ref);
  check_rows_close("cross y", y, ldy, ref, b, d, 1e-5, 1e-6);
  check_gaps("cross y", y, b, d, ldy);

  /* backward: dx0, dw, dbias accumulate; dxl is overwritten (NaN before: never read) */
  float *dx0 = out_mat(seed + 6, b, d, lddx0, 1), *dx00 = tops_dupf(dx0, b * lddx0);
  float *dxl = out_mat(seed + 7, b, d, lddxl, 0);
  float *dw = tops_randf(seed + 8, d, -1, 1), *dw0 = tops_dupf(dw, d);
  float *db = tops_randf(seed + 9, d, -1, 1), *db0 = tops_dupf(db, d);
  T_OK(o->cross_bwd(st, x0, ld0, xl, ldl, w, b, d, dy, lddy, dx0, lddx0, dxl, lddxl, dw, db));
  check_gaps("cross dx0", dx0, b, d, lddx0);
  check_gaps("cross dxl", dxl, b, d, lddxl);
  float *g0 = dense_delta(dx0, dx00, b, d, lddx0), *gl = dense_delta(dxl, NULL, b, d, lddxl);
  float *gw = dense_delta(dw, dw0, 1, d, d), *gb = dense_delta(db, db0, 1, d, d);
  const double rt = 1e-3, at = 1e-4;
  if (same) {   /* one tensor in both places: its gradient is dx0 + dxl */
    for (int64_t i = 0; i < b * d; i++) g0[i] += gl[i];
    tops_fd_check("cross d(x0 = xl)", cross_loss, &u, x0d, b * d, g0, rt, at, 200);
  } else {
    tops_fd_check("cross dx0", cross_loss, &u, x0d, b * d, g0, rt, at, 200);
    tops_fd_check("cross dxl", cross_loss, &u, xld, b * d, gl, rt, at, 200);
  }
  tops_fd_check("cross dw", cross_loss, &u, wd, d, gw, rt, at, 200);
  tops_fd_check("cross dbias", cross_loss, &u, bd, d, gb, rt, at, 200);
  if (!same) free(xl), free(xld);
  free(x0), free(w), free(bias), free(y), free(x0d), free(wd), free(bd), free(dy), free(wy);
  free(ref), free(dx0), free(dx00), free(dxl), free(dw), free(dw0), free(db), free(db0);
  free(g0), free(gl), free(gw), free(gb);
}

void test_ops_zoo__cross(void) {
  check_cross(1, 1, 0, 1);
  check_cross(1, 7, 0, 2);     /* one row: no OpenMP team */
  check_cross(3, 13, 0, 3);
  check_cross(300, 37, 0, 4);  /* three row chunks for dw, dbias */
  check_cross(5, 9, 1, 5);     /* the first layer: xl == x0 */
  check_cross(260, 17, 1, 6);
}

/* the gradient formulas of ops.h in double, on a shape with several chunks, 2 threads */
void test_ops_zoo__cross_large(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t b = 2000, d = 101;
  float *x0 = tops_randf(20, b * d, -1, 1), *xl = tops_randf(21, b * d, -1, 1);
  float *w = tops_randf(22, d, -0.3f, 0.3f), *dy = tops_randf(23, b * d, -1, 1);
  float *dx0 = tops_constf(b * d, 0.0f), *dxl = tops_constf(b * d, NAN);
  float *dw = tops_constf(d, 0.0f), *db = tops_constf(d, 0.0f);
  T_OK(o->cross_bwd(st, x0, d, xl, d, w, b, d, dy, d, dx0, d, dxl, d, dw, db));
  double *r0 = calloc((size_t)(b * d), sizeof(double));
  double *rl = calloc((size_t)(b * d), sizeof(double));
  double *rw = calloc((size_t)d, sizeof(double)), *rb = calloc((size_t)d, sizeof(double));
  for (int64_t r = 0; r < b; r++) {
    double s = 0.0, ds = 0.0;
    for (int64_t j = 0; j < d; j++) {
      s += (double)xl[r * d + j] * w[j];
      ds += (double)dy[r * d + j] * x0[r * d + j];
    }
    for (int64_t j = 0; j < d; j++) {
      r0[r * d + j] = dy[r * d + j] * s;
      rl[r * d + j] = dy[r * d + j] + ds * w[j];
      rw[j] += ds * xl[r * d + j];
      rb[j] += dy[r * d + j];
    }
  }
  tops_check_close("cross dx0", dx0, r0, b * d, 1e-4, 1e-5);
  tops_check_close("cross dxl", dxl, rl, b * d, 1e-4, 1e-5);
  tops_check_close("cross dw", dw, rw, d, 1e-4, 1e-3);
  tops_check_close("cross dbias", db, rb, d, 1e-4, 1e-3);
  free(x0), free(xl), free(w), free(dy), free(dx0), free(dxl), free(dw), free(db);
  free(r0), free(rl), free(rw), free(rb);
}

/* forward and backward outputs of one cross layer, concatenated (caller frees) */
static float *cross_run(int64_t b, int64_t d, int64_t *len) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  float *x0 = tops_randf(30, b * d, -1, 1), *xl = tops_randf(31, b * d, -1, 1);
  float *w = tops_randf(32, d, -0.3f, 0.3f), *bias = tops_randf(33, d, -1, 1);
  float *dy = tops_randf(34, b * d, -1, 1);
  *len = 3 * b * d + 2 * d;
  float *out = tops_constf(*len, 0.0f);
  float *y = out, *dx0 = y + b * d, *dxl = dx0 + b * d, *dw = dxl + b * d, *db = dw + d;
  T_OK(o->cross_fwd(st, x0, d, xl, d, w, bias, b, d, y, d));
  T_OK(o->cross_bwd(st, x0, d, xl, d, w, b, d, dy, d, dx0, d, dxl, d, dw, db));
  free(x0), free(xl), free(w), free(bias), free(dy);
  return out;
}

/* no reduction depends on the thread count (fixed row chunks): 1, 2 and 3 threads agree */
void test_ops_zoo__cross_deterministic(void) {
  const int64_t b = 1500, d = 64;   /* 12 chunks, b * d above the parallel threshold */
  int64_t n1, n2, n3, n4;
  T_OK(tops_ops()->set_threads(tops_st(), 1));
  float *a = cross_run(b, d, &n1);
  T_OK(tops_ops()->set_threads(tops_st(), 3));
  float *c = cross_run(b, d, &n3);
  T_OK(tops_ops()->set_threads(tops_st(), 2));
  float *e = cross_run(b, d, &n2), *g = cross_run(b, d, &n4);
  T_ASSERT(n1 == n2 && n2 == n3 && n3 == n4);
  tops_check_same("cross, 2 threads twice", e, g, n2);
  tops_check_same("cross, 1 vs 2 threads", a, e, n1);
  tops_check_same("cross, 1 vs 3 threads", a, c, n1);
  free(a), free(c), free(e), free(g);
}

void test_ops_zoo__cross_bad_args(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  float x[8] = {0}, y[8], w[4] = {0}, g[8] = {0};
  T_ASSERT_EQ_INT(o->cross_fwd(st, x, 4, x, 4, w, w, 1, -1, y, 4), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->cross_fwd(st, x, 4, x, 3, w, w, 2, 4, y, 4), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->cross_fwd(st, x, 4, x, 4, w, w, 2, 4, y, 2), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->cross_bwd(st, x, 4, x, 4, w, -2, 4, g, 4, y, 4, y, 4, w, w), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->cross_bwd(st, x, 4, x, 4, w, 2, 4, g, 4, y, 1, y, 4, w, w), AMEIR_EINVAL);
  /* nothing to do: nothing read or written */
  T_OK(o->cross_fwd(st, NULL, 4, NULL, 4, NULL, NULL, 0, 4, NULL, 4));
  T_OK(o->cross_bwd(st, NULL, 0, NULL, 0, NULL, 3, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL));
}

/* ================================================================ xDeepFM CIN ============== */

typedef struct {
  int64_t b, h, f, k, h_out;
  double *x, *x0, *w;   /* dense [b, h*k], [b, f*k], [h_out, h*f]; x == x0 for the first layer */
  const double *wy;     /* loss weights [b, h_out*k] */
} cin_u;

/* eq. (6): y[r, o, t] = sum_{i,j} w[o, i*f + j] x[r, i, t] x0[r, j, t], dense [b, h_out*k] */
static void cin_ref(const cin_u *u, double *y) {
  const int64_t h = u->h, f = u->f, k = u->k, hf = h * f;
  for (int64_t r = 0; r < u->b; r++)
    for (int64_t o = 0; o < u->h_out; o++)
      for (int64_t t = 0; t < k; t++) {
        double acc = 0.0;
        for (int64_t i = 0; i < h; i++)
          for (int64_t j = 0; j < f; j++)
            acc += u->w[o * hf + i * f + j] * u->x[(r * h + i) * k + t] *
                   u->x0[(r * f + j) * k + t];
        y[(r * u->h_out + o) * k + t] = acc;
      }
}

static double cin_loss(void *p) {
  const cin_u *u = p;
  int64_t n = u->b * u->h_out * u->k;
  double *y = malloc((size_t)(n > 0 ? n : 1) * sizeof(double)), l = 0.0;
  cin_ref(u, y);
  for (int64_t i = 0; i < n; i++) l += u->wy[i] * y[i];
  free(y);
  return l;
}

/* the gradients of sum(wy * y) by the formulas (dense): dx [b, h*k], dx0 [b, f*k], dw */
static void cin_grad_ref(const cin_u *u, double *dx, double *dx0, double *dw) {
  const int64_t h = u->h, f = u->f, k = u->k, hf = h * f, ho = u->h_out;
  memset(dx, 0, (size_t)(u->b * h * k) * sizeof(double));
  memset(dx0, 0, (size_t)(u->b * f * k) * sizeof(double));
  memset(dw, 0, (size_t)(ho * hf) * sizeof(double));
  for (int64_t r = 0; r < u->b; r++)
    for (int64_t o = 0; o < ho; o++)
      for (int64_t i = 0; i < h; i++)
        for (int64_t j = 0; j < f; j++) {
          const double wv = u->w[o * hf + i * f + j];
          double sw = 0.0;
          for (int64_t t = 0; t < k; t++) {
            const double g = u->wy[(r * ho + o) * k + t], xi = u->x[(r * h + i) * k + t];
            const double xj = u->x0[(r * f + j) * k + t];
            dx[(r * h + i) * k + t] += wv * g * xj;
            dx0[(r * f + j) * k + t] += wv * g * xi;
            sw += g * xi * xj;
          }
          dw[o * hf + i * f + j] += sw;
        }
}

typedef struct {
  int64_t b, h, f, k, h_out;
  int same;     /* x == x0 (then f == h) */
  int fd;       /* finite differences (small shapes) or the double formulas */
} cin_shape;

static void check_cin(cin_shape s, uint64_t seed) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t b = s.b, h = s.h, f = s.f, k = s.k, ho = s.h_out, hf = h * f;
  T_ASSERT(!s.same || h == f);
  const int64_t ldx = h * k + 3, ld0 = s.same ? ldx : f * k + 1, ldy = ho * k + 2;
  const int64_t lddy = ho * k + 5, lddx = h * k + 1, lddx0 = f * k + 4;
  float *x = mat(seed, b, h * k, ldx, -1, 1);
  float *x0 = s.same ? x : mat(seed + 1, b, f * k, ld0, -1, 1);
  float *w = tops_randf(seed + 2, ho * hf, -0.5f, 0.5f);
  float *y = out_mat(seed + 3, b, ho * k, ldy, 0);
  T_OK(o->cin_fwd(st, x, ldx, h, x0, ld0, f, b, k, w, ho, y, ldy));
  double *xd = tops_dense_d(x, b, h * k, ldx), *x0d = s.same ? xd : tops_dense_d(x0, b, f * k, ld0);
  double *wd = tops_tod(w, ho * hf);
  float *dy = mat(seed + 4, b, ho * k, lddy, -1, 1);
  double *wy = tops_dense_d(dy, b, ho * k, lddy);
  cin_u u = {b, h, f, k, ho, xd, x0d, wd, wy};
  double *ref = malloc((size_t)(b * ho * k) * sizeof(double));
  cin_ref(&u, ref);
  check_rows_close("cin y", y, ldy, ref, b, ho * k, 1e-5, 1e-5);
  check_gaps("cin y", y, b, ho * k, ldy);

  /* backward: dx overwritten (NaN before), dx0 and dw accumulate */
  float *dx = out_mat(seed + 5, b, h * k, lddx, 0);
  float *dx0 = out_mat(seed + 6, b, f * k, lddx0, 1), *dx00 = tops_dupf(dx0, b * lddx0);
  float *dw = tops_randf(seed + 7, ho * hf, -1, 1), *dw0 = tops_dupf(dw, ho * hf);
  T_OK(o->cin_bwd(st, x, ldx, h, x0, ld0, f, b, k, w, ho, dy, lddy, dx, lddx, dx0, lddx0, dw));
  check_gaps("cin dx", dx, b, h * k, lddx);
  check_gaps("cin dx0", dx0, b, f * k, lddx0);
  float *gx = dense_delta(dx, NULL, b, h * k, lddx), *g0 = dense_delta(dx0, dx00, b, f * k, lddx0);
  float *gw = dense_delta(dw, dw0, 1, ho * hf, ho * hf);
  if (s.fd) {
    const double rt = 1e-3, at = 1e-4;
    if (s.same) {   /* one tensor in both places: its gradient is dx + dx0 */
      for (int64_t i = 0; i < b * h * k; i++) g0[i] += gx[i];
      tops_fd_check("cin d(x = x0)", cin_loss, &u, xd, b * h * k, g0, rt, at, 200);
    } else {
      tops_fd_check("cin dx", cin_loss, &u, xd, b * h * k, gx, rt, at, 200);
      tops_fd_check("cin dx0", cin_loss, &u, x0d, b * f * k, g0, rt, at, 200);
    }
    tops_fd_check("cin dw", cin_loss, &u, wd, ho * hf, gw, rt, at, 200);
  } else {
    double *rx = malloc((size_t)(b * h * k) * sizeof(double));
    double *r0 = malloc((size_t)(b * f * k) * sizeof(double));
    double *rw = malloc((size_t)(ho * hf) * sizeof(double));
    T_ASSERT(!s.same);
    cin_grad_ref(&u, rx, r0, rw);
    tops_check_close("cin dx", gx, rx, b * h * k, 1e-4, 1e-4);
    tops_check_close("cin dx0", g0, r0, b * f * k, 1e-4, 1e-4);
    tops_check_close("cin dw", gw, rw, ho * hf, 1e-4, 1e-3);
    free(rx), free(r0), free(rw);
  }
  if (!s.same) free(x0), free(x0d);
  free(x), free(w), free(y), free(xd), free(wd), free(dy), free(wy), free(ref), free(dx);
  free(dx0), free(dx00), free(dw), free(dw0), free(gx), free(g0), free(gw);
}

void test_ops_zoo__cin(void) {
  /* b, h, f, k, h_out, same, fd */
  check_cin((cin_shape){1, 1, 1, 1, 1, 0, 1}, 100);
  check_cin((cin_shape){1, 3, 4, 5, 2, 0, 1}, 200);   /* one row: no OpenMP team */
  check_cin((cin_shape){5, 4, 3, 7, 6, 0, 1}, 300);
  check_cin((cin_shape){4, 5, 5, 3, 3, 1, 1}, 400);   /* the first layer: x == x0 */
  check_cin((cin_shape){40, 8, 8, 3, 5, 1, 1}, 500);
}

/* shapes whose outer products do not fit one block: several blocks of rows (the last one
 * shorter), and blocks of a single row */
void test_ops_zoo__cin_blocks(void) {
  check_cin((cin_shape){120, 64, 40, 16, 4, 0, 0}, 600);    /* blocks of 51 rows */
  check_cin((cin_shape){3, 128, 128, 131, 2, 0, 0}, 700);   /* z of one row > the block */
}

/* an empty sum still writes its zeros; nothing else moves */
void test_ops_zoo__cin_empty(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t b = 3, h = 2, k = 4, ho = 3;
  float *x = tops_randf(800, b * h * k, -1, 1), *x0 = tops_randf(801, 1, -1, 1);
  float *y = out_mat(802, b, ho * k, ho * k + 1, 0), *dy = tops_randf(803, b * ho * k, -1, 1);
  float *dx = out_mat(804, b, h * k, h * k, 0), *dx0 = tops_constf(1, 5.0f);
  float wv = 3.0f, dw = 9.0f;
  /* f = 0: y = 0; dx = 0 */
  T_OK(o->cin_fwd(st, x, h * k, h, x0, 0, 0, b, k, &wv, ho, y, ho * k + 1));
  for (int64_t r = 0; r < b; r++)
    for (int64_t j = 0; j < ho * k; j++) T_ASSERT(y[r * (ho * k + 1) + j] == 0.0f);
  check_gaps("cin y (f = 0)", y, b, ho * k, ho * k + 1);
  T_OK(o->cin_bwd(st, x, h * k, h, x0, 0, 0, b, k, &wv, ho, dy, ho * k, dx, h * k, dx0, 0, &dw));
  for (int64_t i = 0; i < b * h * k; i++) T_ASSERT(dx[i] == 0.0f);
  T_ASSERT(dx0[0] == 5.0f && dw == 9.0f && wv == 3.0f);
  /* h_out = 0: dx = 0 */
  for (int64_t i = 0; i < b * h * k; i++) dx[i] = NAN;
  T_OK(o->cin_bwd(st, x, h * k, h, x, h * k, h, b, k, &wv, 0, dy, 0, dx, h * k, dx0, h * k,
                  &dw));
  for (int64_t i = 0; i < b * h * k; i++) T_ASSERT(dx[i] == 0.0f);
  /* b = 0 or k = 0: nothing read or written */
  T_OK(o->cin_fwd(st, NULL, h * k, h, NULL, h * k, h, 0, k, NULL, ho, NULL, ho * k));
  T_OK(o->cin_bwd(st, NULL, 0, h, NULL, 0, h, b, 0, NULL, ho, NULL, 0, NULL, 0, NULL, 0, NULL));
  free(x), free(x0), free(y), free(dy), free(dx), free(dx0);
}

void test_ops_zoo__cin_bad_args(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  float x[32] = {0}, w[16] = {0}, y[32], g[32] = {0};
  T_ASSERT_EQ_INT(o->cin_fwd(st, x, 4, -1, x, 4, 2, 1, 2, w, 2, y, 4), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->cin_fwd(st, x, 3, 2, x, 4, 2, 2, 2, w, 2, y, 4), AMEIR_EINVAL);   /* ldx */
  T_ASSERT_EQ_INT(o->cin_fwd(st, x, 4, 2, x, 4, 2, 2, 2, w, 2, y, 3), AMEIR_EINVAL);   /* ldy */
  T_ASSERT_EQ_INT(o->cin_bwd(st, x, 4, 2, x, 4, 2, 2, 2, w, 2, g, 3, y, 4, y + 8, 4, w),
                  AMEIR_EINVAL);   /* lddy */
  T_ASSERT_EQ_INT(o->cin_bwd(st, x, 4, 2, x, 4, 2, 2, 2, w, 2, g, 4, y, 4, y + 8, 3, w),
                  AMEIR_EINVAL);   /* lddx0 */
  T_ASSERT_EQ_INT(o->cin_bwd(st, x, 4, 2, x, 4, 2, 2, 2, w, -2, g, 4, y, 4, y + 8, 4, w),
                  AMEIR_EINVAL);
}

/* forward and backward outputs of one CIN layer over several blocks, concatenated */
static float *cin_run(int64_t *len) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t b = 150, h = 32, f = 39, k = 16, ho = 24, hf = h * f;   /* blocks of 105 rows */
  float *x = tops_randf(40, b * h * k, -1, 1), *x0 = tops_randf(41, b * f * k, -1, 1);
  float *w = tops_randf(42, ho * hf, -0.3f, 0.3f), *dy = tops_randf(43, b * ho * k, -1, 1);
  *len = b * ho * k + b * h * k + b * f * k + ho * hf;
  float *out = tops_constf(*len, 0.0f);
  float *y = out, *dx = y + b * ho * k, *dx0 = dx + b * h * k, *dw = dx0 + b * f * k;
  T_OK(o->cin_fwd(st, x, h * k, h, x0, f * k, f, b, k, w, ho, y, ho * k));
  T_OK(o->cin_bwd(st, x, h * k, h, x0, f * k, f, b, k, w, ho, dy, ho * k, dx, h * k, dx0, f * k,
                  dw));
  free(x), free(x0), free(w), free(dy);
  return out;
}

/* through sgemm: bit-identical for the same thread count (ops.h promises no more) */
void test_ops_zoo__cin_deterministic(void) {
  int64_t n1, n2;
  float *a = cin_run(&n1), *b = cin_run(&n2);
  T_ASSERT_EQ_INT(n1, n2);
  tops_check_same("cin run twice", a, b, n1);
  free(a), free(b);
}
