/* CPU backend: Hadamard interactions, FM, SE shortcut. */
#include <math.h>
#include <string.h>

#include "util.h"

/* ---- Hadamard ---- */

typedef struct {
  int64_t b, k, lde, n_inter, max_order;
  const int32_t *fields, *order;
  const double *w;   /* [b, n_inter, k] */
  double *e;
} had_u;

static double had_out(const had_u *u, int64_t bb, int64_t i, int64_t j) {
  double p = 1.0;
  for (int32_t t = 0; t < u->order[i]; t++)
    p *= u->e[bb * u->lde + (int64_t)u->fields[i * u->max_order + t] * u->k + j];
  return p;
}

static double had_loss(void *p) {
  had_u *u = p;
  double l = 0.0;
  for (int64_t bb = 0; bb < u->b; bb++)
    for (int64_t i = 0; i < u->n_inter; i++)
      for (int64_t j = 0; j < u->k; j++)
        l += u->w[(bb * u->n_inter + i) * u->k + j] * had_out(u, bb, i, j);
  return l;
}

static void check_hadamard(int64_t b, int64_t f, int64_t k, uint64_t seed) {
  /* orders 1, 2, 3, a repeated field, -1 padding */
  static const int32_t fields[] = {0, 1, -1, 2, 2, -1, 0, 3, 4, 4, -1, -1, 1, 2, 3};
  static const int32_t order[] = {2, 2, 3, 1, 3};
  const int64_t n_inter = 5, max_order = 3;
  T_ASSERT(f >= 5);
  int64_t lde = f * k + 2, ldo = n_inter * k + 3;
  float *e = tops_randf(seed, b * lde, -1.5f, 1.5f);
  float *out = tops_randf(seed + 1, b * ldo, -1, 1), *out0 = tops_dupf(out, b * ldo);
  T_OK(tops_ops()->hadamard_fwd(tops_st(), e, lde, b, k, fields, order, n_inter, max_order, out,
                                ldo));
  double *ed = tops_tod(e, b * lde);
  had_u u = {b, k, lde, n_inter, max_order, fields, order, NULL, ed};
  for (int64_t bb = 0; bb < b; bb++)
    for (int64_t i = 0; i < n_inter; i++)
      for (int64_t j = 0; j < k; j++)
        T_ASSERT_CLOSE(out[bb * ldo + i * k + j], had_out(&u, bb, i, j), 1e-6, 1e-7);
  for (int64_t bb = 0; bb < b; bb++)
    for (int64_t j = n_inter * k; j < ldo; j++) T_ASSERT(out[bb * ldo + j] == out0[bb * ldo + j]);
  /* backward, accumulated into de */
  int64_t lddo = n_inter * k + 1;
  float *dout = tops_randf(seed + 2, b * lddo, -1, 1);
  double *wd = calloc((size_t)(b * n_inter * k), sizeof(double));
  for (int64_t bb = 0; bb < b; bb++)
    for (int64_t j = 0; j < n_inter * k; j++) wd[bb * n_inter * k + j] = dout[bb * lddo + j];
  u.w = wd;
  float *de = tops_randf(seed + 3, b * lde, -1, 1), *de0 = tops_dupf(de, b * lde);
  T_OK(tops_ops()->hadamard_bwd(tops_st(), e, lde, b, k, fields, order, n_inter, max_order, dout,
                                lddo, de));
  for (int64_t i = 0; i < b * lde; i++) de[i] -= de0[i];
  tops_fd_check("hadamard de", had_loss, &u, ed, b * lde, de, 1e-4, 1e-5, 200);
  free(e), free(out), free(out0), free(ed), free(dout), free(wd), free(de), free(de0);
}

void test_ops_inter__hadamard(void) {
  check_hadamard(1, 5, 1, 1);
  check_hadamard(3, 6, 7, 2);
  check_hadamard(200, 5, 16, 3);
}

void test_ops_inter__hadamard_bad_order(void) {
  int32_t fields[2] = {0, 1}, order[1] = {3};
  float e[4] = {0}, out[2];
  T_ASSERT_EQ_INT(tops_ops()->hadamard_fwd(tops_st(), e, 4, 1, 2, fields, order, 1, 2, out, 2),
                  AMEIR_EINVAL);
}

/* ---- FM ---- */

typedef struct { int64_t b, f, k, lde; const double *w; double *e; } fm_u;
static double fm_out(const fm_u *u, int64_t bb) {
  double tot = 0.0;
  for (int64_t j = 0; j < u->k; j++) {
    double s = 0.0, s2 = 0.0;
    for (int64_t ff = 0; ff < u->f; ff++) {
      double x = u->e[bb * u->lde + ff * u->k + j];
      s += x;
      s2 += x * x;
    }
    tot += s * s - s2;
  }
  return 0.5 * tot;
}
static double fm_loss(void *p) {
  fm_u *u = p;
  double l = 0.0;
  for (int64_t bb = 0; bb < u->b; bb++) l += u->w[bb] * fm_out(u, bb);
  return l;
}

void test_ops_inter__fm(void) {
  static const int64_t shapes[][3] = {{1, 1, 1}, {1, 2, 3}, {5, 7, 9}, {300, 10, 300}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t b = shapes[s][0], f = shapes[s][1], k = shapes[s][2], lde = f * k + 3;
    float *e = tops_randf(10 + s, b * lde, -1, 1), *out = tops_randf(20 + s, b, -1, 1);
    float *out0 = tops_dupf(out, b);
    double *ed = tops_tod(e, b * lde);
    fm_u u = {b, f, k, lde, NULL, ed};
    T_OK(tops_ops()->fm_fwd(tops_st(), e, lde, b, f, k, out, 0));
    for (int64_t bb = 0; bb < b; bb++) T_ASSERT_CLOSE(out[bb], fm_out(&u, bb), 1e-5, 1e-5);
    memcpy(out, out0, (size_t)b * sizeof(float));
    T_OK(tops_ops()->fm_fwd(tops_st(), e, lde, b, f, k, out, 1));
    for (int64_t bb = 0; bb < b; bb++)
      T_ASSERT_CLOSE(out[bb], out0[bb] + fm_out(&u, bb), 1e-5, 1e-5);
    float *dout = tops_randf(30 + s, b, -1, 1);
    float *de = tops_randf(40 + s, b * lde, -1, 1), *de0 = tops_dupf(de, b * lde);
    T_OK(tops_ops()->fm_bwd(tops_st(), e, lde, b, f, k, dout, de));
    for (int64_t i = 0; i < b * lde; i++) de[i] -= de0[i];
    double *wd = tops_tod(dout, b);
    u.w = wd;
    tops_fd_check("fm de", fm_loss, &u, ed, b * lde, de, 1e-4, 1e-5, b > 10 ? 20 : 100);
    free(e), free(out), free(out0), free(ed), free(dout), free(de), free(de0), free(wd);
  }
}

/* ---- SE, eq. (5) ---- */

typedef struct {
  int64_t b, s, k, r, ldq;
  double *q, *v, *w1, *b1, *w2, *b2;
  const double *w;   /* [b, k] */
} se_u;

static void se_ref(const se_u *u, double *out /* [b, k] */) {
  int64_t S = u->s, R = u->r, K = u->k;
  double z[64], h[64], a[64];
  for (int64_t bb = 0; bb < u->b; bb++) {
    const double *q = u->q + bb * u->ldq;
    for (int64_t s = 0; s < S; s++) {
      z[s] = 0.0;
      for (int64_t t = 0; t < K; t++) z[s] += q[s * K + t] * u->v[t];
    }
    for (int64_t r = 0; r < R; r++) {
      double acc = u->b1[r];
      for (int64_t s = 0; s < S; s++) acc += u->w1[r * S + s] * z[s];
      h[r] = acc > 0 ? acc : 0;
    }
    for (int64_t s = 0; s < S; s++) {
      double acc = u->b2[s];
      for (int64_t r = 0; r < R; r++) acc += u->w2[s * R + r] * h[r];
      a[s] = 1.0 / (1.0 + exp(-acc));
    }
    for (int64_t t = 0; t < K; t++) {
      double acc = 0.0;
      for (int64_t s = 0; s < S; s++) acc += a[s] * q[s * K + t];
      out[bb * K + t] = acc;
    }
  }
}

static double se_loss(void *p) {
  se_u *u = p;
  double out[4096];
  se_ref(u, out);
  double l = 0.0;
  for (int64_t i = 0; i < u->b * u->k; i++) l += u->w[i] * out[i];
  return l;
}

/* accumulated gradient: got - before */
static float *delta(const float *got, const float *before, int64_t n) {
  float *d = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) d[i] = got[i] - before[i];
  return d;
}

static void check_se(int64_t b, int64_t s, int64_t k, int64_t r, uint64_t seed) {
  int64_t ldq = s * k + 1, ldo = k + 2, lddo = k + 1;
  float *q = tops_randf(seed, b * ldq, -1, 1), *v = tops_randf(seed + 1, k, -1, 1);
  float *w1 = tops_randf(seed + 2, r * s, -1, 1), *b1 = tops_randf(seed + 3, r, -0.2f, 0.5f);
  float *w2 = tops_randf(seed + 4, s * r, -1, 1), *b2 = tops_randf(seed + 5, s, -0.5f, 0.5f);
  float *out = tops_randf(seed + 6, b * ldo, -1, 1);
  float *save = malloc((size_t)(b * (2 * s + r)) * sizeof(float));
  T_OK(tops_ops()->se_fwd(tops_st(), q, ldq, b, s, k, v, w1, b1, r, w2, b2, out, ldo, save));
  double *qd = tops_tod(q, b * ldq), *vd = tops_tod(v, k), *w1d = tops_tod(w1, r * s);
  double *b1d = tops_tod(b1, r), *w2d = tops_tod(w2, s * r), *b2d = tops_tod(b2, s);
  float *dout = tops_randf(seed + 7, b * lddo, -1, 1);
  double *wd = malloc((size_t)(b * k) * sizeof(double));
  double *ref = malloc((size_t)(b * k) * sizeof(double));
  for (int64_t bb = 0; bb < b; bb++)
    for (int64_t t = 0; t < k; t++) wd[bb * k + t] = dout[bb * lddo + t];
  se_u u = {b, s, k, r, ldq, qd, vd, w1d, b1d, w2d, b2d, wd};
  se_ref(&u, ref);
  for (int64_t bb = 0; bb < b; bb++)
    for (int64_t t = 0; t < k; t++) T_ASSERT_CLOSE(out[bb * ldo + t], ref[bb * k + t], 1e-4, 1e-5);
  /* inference without save */
  float *out2 = tops_dupf(out, b * ldo);
  T_OK(tops_ops()->se_fwd(tops_st(), q, ldq, b, s, k, v, w1, b1, r, w2, b2, out2, ldo, NULL));
  tops_check_same("se_fwd without save", out2, out, b * ldo);
  /* backward: all seven gradients accumulate */
  float *dq = tops_randf(seed + 8, b * ldq, -1, 1), *dv = tops_randf(seed + 9, k, -1, 1);
  float *dw1 = tops_randf(seed + 10, r * s, -1, 1), *db1 = tops_randf(seed + 11, r, -1, 1);
  float *dw2 = tops_randf(seed + 12, s * r, -1, 1), *db2 = tops_randf(seed + 13, s, -1, 1);
  float *g0[6] = {tops_dupf(dq, b * ldq), tops_dupf(dv, k), tops_dupf(dw1, r * s),
                  tops_dupf(db1, r), tops_dupf(dw2, s * r), tops_dupf(db2, s)};
  T_OK(tops_ops()->se_bwd(tops_st(), q, ldq, b, s, k, v, w1, b1, r, w2, b2, dout, lddo, save, dq,
                          dv, dw1, db1, dw2, db2));
  float *g[6] = {delta(dq, g0[0], b * ldq), delta(dv, g0[1], k), delta(dw1, g0[2], r * s),
                 delta(db1, g0[3], r), delta(dw2, g0[4], s * r), delta(db2, g0[5], s)};
  const double rt = 2e-3, at = 1e-4;
  tops_fd_check("se dq", se_loss, &u, qd, b * ldq, g[0], rt, at, 150);
  tops_fd_check("se dv", se_loss, &u, vd, k, g[1], rt, at, 150);
  tops_fd_check("se dw1", se_loss, &u, w1d, r * s, g[2], rt, at, 150);
  tops_fd_check("se db1", se_loss, &u, b1d, r, g[3], rt, at, 150);
  tops_fd_check("se dw2", se_loss, &u, w2d, s * r, g[4], rt, at, 150);
  tops_fd_check("se db2", se_loss, &u, b2d, s, g[5], rt, at, 150);
  for (int i = 0; i < 6; i++) free(g0[i]), free(g[i]);
  free(q), free(v), free(w1), free(b1), free(w2), free(b2), free(out), free(out2), free(save);
  free(qd), free(vd), free(w1d), free(b1d), free(w2d), free(b2d), free(dout), free(wd), free(ref);
  free(dq), free(dv), free(dw1), free(db1), free(dw2), free(db2);
}

void test_ops_inter__se(void) {
  check_se(1, 1, 1, 1, 100);
  check_se(4, 5, 6, 3, 200);
  check_se(300, 7, 4, 2, 300);   /* several sample chunks */
}
