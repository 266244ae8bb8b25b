/* CPU backend: FiBiNET's SENET re-weighting, field_scale_fwd/bwd (cpu_fibinet.c): the forward
 * against a double reference, dx and ds against central finite differences, the
 * accumulate/overwrite rules of ops.h (dx adds, ds overwrites, dx NULL skips it), strided rows
 * whose gaps are neither read nor written, in-place forward, refused arguments, and the same
 * bits for 1, 2 and 3 threads. */
#include <math.h>
#include <string.h>

#include "util.h"

#define GAP 7.0f

typedef struct {
  int64_t b, f, k;
  double *x, *s;        /* dense [b, f*k], [b, f] */
  const double *wy;     /* loss weights [b, f*k] */
} fs_u;

static double fs_loss(void *p) {
  const fs_u *u = p;
  double l = 0.0;
  for (int64_t r = 0; r < u->b; r++)
    for (int64_t j = 0; j < u->f; j++)
      for (int64_t t = 0; t < u->k; t++) {
        int64_t i = r * u->f * u->k + j * u->k + t;
        l += u->wy[i] * u->s[r * u->f + j] * u->x[i];
      }
  return l;
}

/* rows x cols (stride ld): values in [lo, hi), gaps `gap` */
static float *fs_mat(uint64_t seed, int64_t rows, int64_t cols, int64_t ld, float lo, float hi, float gap) {
  float *x = tops_randf(seed, rows * ld > 0 ? rows * ld : 1, lo, hi);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = cols; j < ld; j++) x[i * ld + j] = gap;
  return x;
}

static void check_gaps(const char *what, const float *x, int64_t rows, int64_t cols, int64_t ld) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = cols; j < ld; j++)
      T_ASSERT_MSG(x[i * ld + j] == GAP, "%s: row %lld, gap column %lld written (%g)", what, (long long)i,
                   (long long)j, (double)x[i * ld + j]);
}

static void check_fs(int64_t b, int64_t f, int64_t k, int pad, uint64_t seed) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t w = f * k, ldx = w + (pad ? 3 : 0), ldy = w + (pad ? 1 : 0), lddy = w + (pad ? 2 : 0),
                lddx = w + (pad ? 5 : 0);
  float *x = fs_mat(seed, b, w, ldx, -1, 1, NAN), *s = tops_randf(seed + 1, b * f, -1, 2);
  float *y = fs_mat(seed + 2, b, w, ldy, 0, 0, GAP);
  for (int64_t r = 0; r < b; r++)
    for (int64_t c = 0; c < w; c++) y[r * ldy + c] = NAN;   /* overwritten, never read */
  T_OK(o->field_scale_fwd(st, x, ldx, s, b, f, k, y, ldy));
  check_gaps("field_scale y", y, b, w, ldy);
  double *xd = tops_dense_d(x, b, w, ldx), *sd = tops_tod(s, b * f);
  double *ref = malloc((size_t)(b * w + 1) * sizeof(double));
  for (int64_t r = 0; r < b; r++)
    for (int64_t c = 0; c < w; c++) ref[r * w + c] = sd[r * f + c / k] * xd[r * w + c];
  float *yd = malloc((size_t)(b * w + 1) * sizeof(float));
  for (int64_t r = 0; r < b; r++) memcpy(yd + r * w, y + r * ldy, (size_t)w * sizeof(float));
  tops_check_close("field_scale y", yd, ref, b * w, 1e-6, 1e-7);

  /* backward: dx accumulates onto random values, ds is overwritten (NaN before) */
  float *dy = fs_mat(seed + 3, b, w, lddy, -1, 1, NAN);
  float *dx = fs_mat(seed + 4, b, w, lddx, -1, 1, GAP), *dx0 = tops_dupf(dx, b * lddx > 0 ? b * lddx : 1);
  float *ds = tops_constf(b * f > 0 ? b * f : 1, NAN);
  T_OK(o->field_scale_bwd(st, x, ldx, s, b, f, k, dy, lddy, dx, lddx, ds));
  check_gaps("field_scale dx", dx, b, w, lddx);
  double *wy = tops_dense_d(dy, b, w, lddy);
  float *gx = malloc((size_t)(b * w + 1) * sizeof(float));
  for (int64_t r = 0; r < b; r++)
    for (int64_t c = 0; c < w; c++) gx[r * w + c] = dx[r * lddx + c] - dx0[r * lddx + c];
  fs_u u = {b, f, k, xd, sd, wy};
  tops_fd_check("field_scale dx", fs_loss, &u, xd, b * w, gx, 1e-4, 1e-5, 300);
  tops_fd_check("field_scale ds", fs_loss, &u, sd, b * f, ds, 1e-4, 1e-5, 300);
  /* dx NULL: ds alone, the same bits */
  float *ds2 = tops_constf(b * f > 0 ? b * f : 1, NAN);
  T_OK(o->field_scale_bwd(st, x, ldx, s, b, f, k, dy, lddy, NULL, 0, ds2));
  tops_check_same("field_scale ds without dx", ds, ds2, b * f);
  free(x), free(s), free(y), free(xd), free(sd), free(ref), free(yd), free(dy), free(dx), free(dx0);
  free(ds), free(wy), free(gx), free(ds2);
}

void test_ops_fibinet__field_scale(void) {
  check_fs(1, 1, 1, 0, 1);
  check_fs(1, 5, 3, 1, 2);     /* one row: no OpenMP team */
  check_fs(7, 3, 8, 1, 3);
  check_fs(300, 10, 4, 0, 4);
  check_fs(64, 39, 16, 1, 5);  /* the Criteo shape */
}

/* y may be x (in place, same stride) */
void test_ops_fibinet__field_scale_in_place(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t b = 9, f = 4, k = 5, ld = f * k + 2;
  float *x = tops_randf(40, b * ld, -1, 1), *s = tops_randf(41, b * f, -1, 1), *y = tops_constf(b * ld, GAP);
  T_OK(o->field_scale_fwd(st, x, ld, s, b, f, k, y, ld));
  T_OK(o->field_scale_fwd(st, x, ld, s, b, f, k, x, ld));
  for (int64_t r = 0; r < b; r++) tops_check_same("field_scale in place", x + r * ld, y + r * ld, f * k);
  free(x), free(s), free(y);
}

static float *fs_run(int64_t b, int64_t f, int64_t k, int64_t *len) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t w = f * k;
  float *x = tops_randf(50, b * w, -1, 1), *s = tops_randf(51, b * f, -1, 1), *dy = tops_randf(52, b * w, -1, 1);
  *len = 2 * b * w + b * f;
  float *out = tops_constf(*len, 0.0f), *y = out, *dx = y + b * w, *ds = dx + b * w;
  T_OK(o->field_scale_fwd(st, x, w, s, b, f, k, y, w));
  T_OK(o->field_scale_bwd(st, x, w, s, b, f, k, dy, w, dx, w, ds));
  free(x), free(s), free(dy);
  return out;
}

void test_ops_fibinet__field_scale_deterministic(void) {
  const int64_t b = 2000, f = 10, k = 16;
  int64_t n1, n2, n3;
  T_OK(tops_ops()->set_threads(tops_st(), 1));
  float *a = fs_run(b, f, k, &n1);
  T_OK(tops_ops()->set_threads(tops_st(), 3));
  float *c = fs_run(b, f, k, &n3);
  T_OK(tops_ops()->set_threads(tops_st(), 2));
  float *e = fs_run(b, f, k, &n2);
  T_ASSERT(n1 == n2 && n2 == n3);
  tops_check_same("field_scale, 1 vs 2 threads", a, e, n1);
  tops_check_same("field_scale, 1 vs 3 threads", a, c, n1);
  free(a), free(c), free(e);
}

void test_ops_fibinet__field_scale_bad_args(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  float x[8] = {0}, y[8], s[4] = {0}, g[8] = {0};
  T_ASSERT_EQ_INT(o->field_scale_fwd(st, x, 4, s, -1, 2, 2, y, 4), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->field_scale_fwd(st, x, 4, s, 1, 2, -2, y, 4), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->field_scale_fwd(st, x, 3, s, 2, 2, 2, y, 4), AMEIR_EINVAL);   /* ldx */
  T_ASSERT_EQ_INT(o->field_scale_fwd(st, x, 4, s, 2, 2, 2, y, 3), AMEIR_EINVAL);   /* ldy */
  T_ASSERT(strstr(tops_ctx()->msg, "ldy") != NULL);
  T_ASSERT_EQ_INT(o->field_scale_bwd(st, x, 4, s, 2, -1, 2, g, 4, y, 4, s), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->field_scale_bwd(st, x, 4, s, 2, 2, 2, g, 3, y, 4, s), AMEIR_EINVAL);   /* lddy */
  T_ASSERT_EQ_INT(o->field_scale_bwd(st, x, 4, s, 2, 2, 2, g, 4, y, 1, s), AMEIR_EINVAL);   /* lddx */
  /* nothing to do: nothing read or written */
  T_OK(o->field_scale_fwd(st, NULL, 4, NULL, 0, 2, 2, NULL, 4));
  T_OK(o->field_scale_bwd(st, NULL, 0, NULL, 3, 0, 2, NULL, 0, NULL, 0, NULL));
}
