/* CPU backend: the bidirectional GRU on packed lengths (torch.nn.GRU semantics), against a
 * double reference, by finite differences of it, and for padding invariance. */
#include <math.h>
#include <string.h>

#include "util.h"

typedef struct {
  int64_t b, t, d;
  const int32_t *len;
  double *x, *p, *y;
  const double *wy;
} gru_u;

static double sig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* One GRU step of direction dir from h (hd values) on input row xr; h is updated. */
static void ref_cell(const double *pd, int64_t d, const double *xr, double *h) {
  int64_t hd = d / 2, g3 = 3 * hd;
  const double *wih = pd, *whh = pd + g3 * d, *bih = whh + g3 * hd, *bhh = bih + g3;
  double gi[3 * 64], gh[3 * 64];
  for (int64_t g = 0; g < g3; g++) {
    gi[g] = bih[g];
    gh[g] = bhh[g];
    for (int64_t c = 0; c < d; c++) gi[g] += wih[g * d + c] * xr[c];
    for (int64_t u = 0; u < hd; u++) gh[g] += whh[g * hd + u] * h[u];
  }
  for (int64_t u = 0; u < hd; u++) {
    double r = sig(gi[u] + gh[u]), z = sig(gi[hd + u] + gh[hd + u]);
    double n = tanh(gi[2 * hd + u] + r * gh[2 * hd + u]);
    h[u] = (1.0 - z) * n + z * h[u];
  }
}

static void ref_gru(gru_u *u) {
  int64_t b = u->b, t = u->t, d = u->d, hd = d / 2, np = ameir__gru_params(d);
  memset(u->y, 0, (size_t)(b * t * d) * sizeof(double));
  for (int dir = 0; dir < 2; dir++)
    for (int64_t s = 0; s < b; s++) {
      double h[64] = {0};
      int64_t l = u->len[s];
      for (int64_t step = 0; step < l; step++) {
        int64_t pos = dir ? l - 1 - step : step;
        ref_cell(u->p + dir * np, d, u->x + (s * t + pos) * d, h);
        for (int64_t k = 0; k < hd; k++) u->y[(s * t + pos) * d + dir * hd + k] = h[k];
      }
    }
}

static double gru_loss(void *p) {
  gru_u *u = p;
  ref_gru(u);
  double l = 0.0;
  for (int64_t s = 0; s < u->b; s++)
    for (int64_t j = 0; j < u->len[s] * u->d; j++)
      l += u->wy[s * u->t * u->d + j] * u->y[s * u->t * u->d + j];
  return l;
}

static double *dclean(const float *x, int64_t n) {
  double *d = tops_tod(x, n);
  for (int64_t i = 0; i < n; i++)
    if (isnan(d[i])) d[i] = 0.0;
  return d;
}

static void check_gru(int64_t b, int64_t t, int64_t d, uint64_t seed, int full) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  int64_t n = b * t * d, np = 2 * ameir__gru_params(d), hd = d / 2, t2 = t + 5;
  int32_t *len = tops_lens(seed, b, t);
  if (full)
    for (int64_t i = 0; i < b; i++) len[i] = (int32_t)t;
  float sc = 1.0f / sqrtf((float)hd);   /* torch's init range */
  float *x = tops_seq_randf(seed + 1, len, b, t, d, -1.5f, 1.5f);
  float *p = tops_randf(seed + 2, np, -sc, sc), *y = tops_constf(n, NAN);
  float *save = tops_constf(ameir__gru_save(b, t, d), NAN);
  T_OK(o->gru_fwd(st, x, len, b, t, d, p, y, save));
  float *dy = tops_seq_randf(seed + 3, len, b, t, d, -1, 1);
  double *wy = dclean(dy, n), *yd = malloc((size_t)n * sizeof(double));
  gru_u u = {b, t, d, len, dclean(x, n), tops_tod(p, np), yd, wy};
  ref_gru(&u);
  tops_check_close("gru_fwd", y, yd, n, 1e-5, 2e-6);

  /* packed semantics: the backward direction starts at len-1 from h = 0, so its output there
   * is one cell step on x[len-1] alone; the forward direction's at 0 one step on x[0] */
  for (int64_t s = 0; s < b; s++) {
    int64_t l = len[s];
    if (l == 0) continue;
    double hb[64] = {0}, hf[64] = {0};
    ref_cell(u.p + np / 2, d, u.x + (s * t + l - 1) * d, hb);
    ref_cell(u.p, d, u.x + s * t * d, hf);
    for (int64_t k = 0; k < hd; k++) {
      T_ASSERT_CLOSE(y[(s * t + l - 1) * d + hd + k], hb[k], 1e-5, 2e-6);
      T_ASSERT_CLOSE(y[(s * t) * d + k], hf[k], 1e-5, 2e-6);
    }
  }

  /* inference without save gives the same output */
  float *y0 = tops_constf(n, NAN);
  T_OK(o->gru_fwd(st, x, len, b, t, d, p, y0, NULL));
  tops_check_same("gru_fwd without save", y0, y, n);

  /* backward: dx overwritten, dp accumulated */
  float *dx = tops_constf(n, NAN), *dp = tops_randf(seed + 4, np, -1, 1), *dp0 = tops_dupf(dp, np);
  T_OK(o->gru_bwd(st, x, len, b, t, d, p, dy, save, dx, dp));
  for (int64_t i = 0; i < np; i++) dp[i] -= dp0[i];
  tops_fd_check("gru dx", gru_loss, &u, u.x, n, dx, 2e-3, 1e-4, 150);
  tops_fd_check("gru dp", gru_loss, &u, u.p, np, dp, 2e-3, 1e-4, 200);

  /* padding invariance */
  int64_t n2 = b * t2 * d;
  float *x2 = tops_repad(x, len, b, t, t2, d), *y2 = tops_constf(n2, NAN);
  float *save2 = tops_constf(ameir__gru_save(b, t2, d), NAN);
  T_OK(o->gru_fwd(st, x2, len, b, t2, d, p, y2, save2));
  tops_check_repad("gru_fwd repad", y, y2, len, b, t, t2, d);
  float *dy2 = tops_repad(dy, len, b, t, t2, d), *dx2 = tops_constf(n2, NAN);
  float *dpa = tops_constf(np, 0), *dpb = tops_constf(np, 0);
  T_OK(o->gru_bwd(st, x, len, b, t, d, p, dy, save, dx, dpa));
  T_OK(o->gru_bwd(st, x2, len, b, t2, d, p, dy2, save2, dx2, dpb));
  tops_check_repad("gru_bwd dx repad", dx, dx2, len, b, t, t2, d);
  tops_check_same("gru_bwd dp repad", dpa, dpb, np);

  free(len), free(x), free(p), free(y), free(save), free(dy), free(wy), free(yd), free(u.x);
  free(u.p), free(y0), free(dx), free(dp), free(dp0), free(x2), free(y2), free(save2), free(dy2);
  free(dx2), free(dpa), free(dpb);
}

void test_ops_gru__small(void) {
  check_gru(6, 7, 4, 10, 0);   /* hd 2 */
  check_gru(3, 1, 2, 20, 0);   /* hd 1, t 1 */
  check_gru(4, 5, 4, 30, 1);   /* every len = t */
}

void test_ops_gru__d8(void) { check_gru(7, 9, 8, 40, 0); }

/* hd 16: the per-step GEMMs go through sgemm, the samples in two groups */
void test_ops_gru__d32(void) { check_gru(7, 6, 32, 50, 0); }

void test_ops_gru__bad_args(void) {
  int32_t len[1] = {1};
  float x[3] = {0}, p[64] = {0}, y[3];
  T_ASSERT_EQ_INT(tops_ops()->gru_fwd(tops_st(), x, len, 1, 1, 3, p, y, NULL), AMEIR_EINVAL);
}

/* the same call twice gives bit-identical results */
void test_ops_gru__deterministic(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t b = 40, t = 12, d = 16, n = b * t * d, np = 2 * ameir__gru_params(d);
  int32_t *len = tops_lens(60, b, t);
  float *x = tops_seq_randf(61, len, b, t, d, -1, 1), *p = tops_randf(62, np, -0.3f, 0.3f);
  float *dy = tops_seq_randf(63, len, b, t, d, -1, 1);
  float *out[2][3];
  for (int r = 0; r < 2; r++) {
    float *y = tops_constf(n, NAN), *sv = tops_constf(ameir__gru_save(b, t, d), NAN);
    float *dx = tops_constf(n, NAN), *dp = tops_constf(np, 0);
    T_OK(o->gru_fwd(st, x, len, b, t, d, p, y, sv));
    T_OK(o->gru_bwd(st, x, len, b, t, d, p, dy, sv, dx, dp));
    out[r][0] = y, out[r][1] = dx, out[r][2] = dp;
    free(sv);
  }
  tops_check_same("gru y", out[0][0], out[1][0], n);
  tops_check_same("gru dx", out[0][1], out[1][1], n);
  tops_check_same("gru dp", out[0][2], out[1][2], np);
  for (int r = 0; r < 2; r++) free(out[r][0]), free(out[r][1]), free(out[r][2]);
  free(len), free(x), free(p), free(dy);
}
