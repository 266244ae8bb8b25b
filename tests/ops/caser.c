/* CPU backend: Caser's read-out (cpu_caser.c, ops.h "Caser read-out"): the forward and its
 * argmaxes against a double reference, every gradient against central finite differences, the
 * accumulate rule (dx and dp add), rows shorter than L (zero slots), a strided output whose
 * gaps stay untouched, padding never read, first-maximum ties, determinism over thread counts
 * and refused arguments. */
#include <math.h>
#include <string.h>

#include "util.h"

#define GAP 7.0f

typedef struct {
  int64_t b, t, d;
  int32_t l, nv, nh;
  const int32_t *len;
  double *x, *p;        /* [b, t, d] (padding never read), parameters */
  const double *wy;     /* loss weights [b, width] */
  double *out;          /* [b, width] */
  int32_t *arg;         /* [b, l*nh]: argmax, -1 when the max is <= 0 */
} caser_u;

static int64_t width(const caser_u *u) { return ameir__caser_width(u->l, u->d, u->nv, u->nh); }

/* slot j of row r, NULL for a zero slot */
static const double *slot_d(const caser_u *u, int64_t r, int64_t j) {
  int64_t pos = u->len[r] - u->l + j;
  return pos >= 0 ? u->x + (r * u->t + pos) * u->d : NULL;
}

static void caser_ref(caser_u *u) {
  const int64_t L = u->l, d = u->d, W = width(u);
  const double *bh = u->p + u->nh * d * L * (L + 1) / 2, *wv = bh + L * u->nh, *bv = wv + u->nv * L;
  for (int64_t r = 0; r < u->b; r++) {
    double *o = u->out + r * W;
    const double *w = u->p;
    for (int64_t h = 1; h <= L; h++)
      for (int64_t n = 0; n < u->nh; n++, w += h * d) {
        int64_t k = (h - 1) * u->nh + n, arg = 0;
        double best = -INFINITY;
        for (int64_t i = 0; i + h <= L; i++) {
          double z = bh[k];
          for (int64_t j = 0; j < h; j++) {
            const double *e = slot_d(u, r, i + j);
            if (e)
              for (int64_t c = 0; c < d; c++) z += w[j * d + c] * e[c];
          }
          if (z > best) { best = z; arg = i; }
        }
        o[k] = best > 0 ? best : 0;
        u->arg[r * L * u->nh + k] = best > 0 ? (int32_t)arg : -1;
      }
    for (int64_t n = 0; n < u->nv; n++)
      for (int64_t c = 0; c < d; c++) {
        double v = bv[n];
        for (int64_t j = 0; j < L; j++) {
          const double *e = slot_d(u, r, j);
          if (e) v += wv[n * L + j] * e[c];
        }
        o[L * u->nh + n * d + c] = v;
      }
  }
}

static double caser_loss(void *p) {
  caser_u *u = p;
  caser_ref(u);
  double s = 0;
  for (int64_t i = 0; i < u->b * width(u); i++) s += u->out[i] * u->wy[i];
  return s;
}

static double *dclean(const float *x, int64_t n) {
  double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  T_ASSERT(d != NULL);
  for (int64_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

static void check_caser(int64_t b, int64_t t, int64_t d, int32_t l, int32_t nv, int32_t nh, int64_t ldo,
                        uint64_t seed) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  const int64_t n = b * t * d, np = ameir__caser_params(l, d, nv, nh), W = ameir__caser_width(l, d, nv, nh);
  int32_t *len = tops_lens(seed, b, t);
  float *x = tops_seq_randf(seed + 1, len, b, t, d, -1, 1);
  float *p = tops_randf(seed + 2, np, -0.5f, 0.5f);
  float *out = tops_constf(b * ldo, GAP);
  for (int64_t r = 0; r < b; r++)
    for (int64_t j = 0; j < W; j++) out[r * ldo + j] = NAN;   /* overwritten, never read */
  int32_t *sv = malloc(sizeof(int32_t) * (size_t)(b * l * nh + 1));
  T_OK(o->caser_fwd(st, x, len, b, t, d, l, nv, nh, p, out, ldo, sv));
  float *dout = tops_randf(seed + 3, b * ldo, -1, 1);
  double *wy = malloc(sizeof(double) * (size_t)(b * W + 1));
  for (int64_t r = 0; r < b; r++)
    for (int64_t j = 0; j < W; j++) wy[r * W + j] = dout[r * ldo + j];
  caser_u u = {b, t, d, l, nv, nh, len, dclean(x, n), dclean(p, np), wy,
               malloc(sizeof(double) * (size_t)(b * W + 1)), malloc(sizeof(int32_t) * (size_t)(b * l * nh + 1))};
  caser_ref(&u);
  for (int64_t r = 0; r < b; r++) {
    for (int64_t j = 0; j < W; j++)
      T_ASSERT_CLOSE(out[r * ldo + j], u.out[r * W + j], 1e-5, 1e-6);
    for (int64_t j = W; j < ldo; j++) T_ASSERT(out[r * ldo + j] == GAP);
  }
  T_ASSERT(memcmp(sv, u.arg, sizeof(int32_t) * (size_t)(b * l * nh)) == 0);
  /* backward: both gradients accumulate onto what is there */
  float *dx0 = tops_randf(seed + 4, n, -1, 1), *dx = tops_dupf(dx0, n);
  float *dp0 = tops_randf(seed + 5, np, -1, 1), *dp = tops_dupf(dp0, np);
  T_OK(o->caser_bwd(st, x, len, b, t, d, l, nv, nh, p, dout, ldo, sv, dx, dp));
  float *gx = malloc(sizeof(float) * (size_t)n), *gp = malloc(sizeof(float) * (size_t)np);
  for (int64_t i = 0; i < n; i++) gx[i] = dx[i] - dx0[i];
  for (int64_t i = 0; i < np; i++) gp[i] = dp[i] - dp0[i];
  for (int64_t r = 0; r < b; r++)   /* padding rows untouched */
    for (int64_t i = len[r] * d; i < t * d; i++) T_ASSERT(dx[r * t * d + i] == dx0[r * t * d + i]);
  tops_fd_check("caser dx", caser_loss, &u, u.x, n, gx, 1e-3, 1e-4, 600);
  tops_fd_check("caser dp", caser_loss, &u, u.p, np, gp, 1e-3, 1e-4, 600);
  /* the same bits with one thread */
  o->set_threads(st, 1);
  float *out1 = tops_constf(b * ldo, GAP), *dx1 = tops_dupf(dx0, n), *dp1 = tops_dupf(dp0, np);
  int32_t *sv1 = malloc(sizeof(int32_t) * (size_t)(b * l * nh + 1));
  T_OK(o->caser_fwd(st, x, len, b, t, d, l, nv, nh, p, out1, ldo, sv1));
  T_OK(o->caser_bwd(st, x, len, b, t, d, l, nv, nh, p, dout, ldo, sv1, dx1, dp1));
  o->set_threads(st, 2);
  for (int64_t r = 0; r < b; r++) tops_check_same("caser_fwd 1 thread", out1 + r * ldo, out + r * ldo, W);
  tops_check_same("caser_bwd dx 1 thread", dx1, dx, n);
  tops_check_same("caser_bwd dp 1 thread", dp1, dp, np);
  free(len), free(x), free(p), free(out), free(sv), free(dout), free(wy), free(u.x), free(u.p);
  free(u.out), free(u.arg), free(dx0), free(dx), free(dp0), free(dp), free(gx), free(gp);
  free(out1), free(dx1), free(dp1), free(sv1);
}

void test_ops_caser__gradients(void) {
  check_caser(7, 6, 4, 3, 2, 3, 3 * 3 + 2 * 4, 10);     /* rows of length 0, 1 < L */
  check_caser(9, 5, 3, 5, 5, 2, 5 * 2 + 5 * 3 + 4, 20);  /* L = t, a strided output */
  check_caser(5, 4, 2, 1, 0, 2, 2, 30);                  /* L = 1, no vertical filter */
  check_caser(6, 7, 3, 4, 3, 0, 9, 40);                  /* no horizontal filter */
  check_caser(300, 9, 5, 5, 4, 3, 5 * 3 + 4 * 5, 50);    /* several row chunks and threads */
}

/* ties keep the first maximum and only it gets the gradient; a maximum <= 0 gets none */
void test_ops_caser__ties(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  /* one row, t = 3, d = 1, L = 3, one horizontal filter per height, no vertical one:
   * x = [2, 2, 1]; h = 1: w = 1, bias 0: windows 2, 2, 1 -> first maximum at 0 */
  int32_t len[1] = {3};
  float x[3] = {2, 2, 1};
  /* Wh_1 [1,1,1], Wh_2 [1,2,1], Wh_3 [1,3,1], bh [3], no Wv, bv */
  float p[9] = {1, /* h2 */ 1, 0, /* h3 */ -1, 0, 0, /* bh */ 0, 0, 0};
  float out[3], dout[3] = {1, 10, 100}, dx[3] = {0, 0, 0}, dp[9] = {0};
  int32_t sv[3];
  T_ASSERT_EQ_INT((int)ameir__caser_params(3, 1, 0, 1), 9);
  T_OK(o->caser_fwd(st, x, len, 1, 3, 1, 3, 0, 1, p, out, 3, sv));
  T_ASSERT(out[0] == 2 && out[1] == 2 && out[2] == 0);
  T_ASSERT(sv[0] == 0 && sv[1] == 0 && sv[2] == -1);   /* h = 2: windows 2, 2 tie; h = 3: -2 */
  T_OK(o->caser_bwd(st, x, len, 1, 3, 1, 3, 0, 1, p, dout, 3, sv, dx, dp));
  T_ASSERT(dx[0] == 1 + 10 && dx[1] == 0 && dx[2] == 0);
  T_ASSERT(dp[0] == 2 && dp[1] == 20 && dp[2] == 20 && dp[3] == 0 && dp[6] == 1 && dp[7] == 10 && dp[8] == 0);
}

void test_ops_caser__bad_args(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  int32_t len[2] = {2, 3}, bad_len[2] = {2, 4}, sv[16];
  float x[2 * 3 * 2] = {0}, p[64] = {0}, out[64], dx[12], dp[64];
  /* t = 3, d = 2: width(L=2, nv=1, nh=1) = 2 + 2 = 4 */
  T_OK(o->caser_fwd(st, x, len, 2, 3, 2, 2, 1, 1, p, out, 4, sv));
  T_ASSERT_EQ_INT(o->caser_fwd(st, x, len, 2, 3, 2, 0, 1, 1, p, out, 4, sv), AMEIR_EINVAL);   /* L < 1 */
  T_ASSERT_EQ_INT(o->caser_fwd(st, x, len, 2, 3, 2, 4, 1, 1, p, out, 16, sv), AMEIR_EINVAL);  /* L > t */
  T_ASSERT_EQ_INT(o->caser_fwd(st, x, len, 2, 3, 2, 2, -1, 1, p, out, 4, sv), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->caser_fwd(st, x, len, 2, 3, 2, 2, 1, -1, p, out, 4, sv), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->caser_fwd(st, x, len, 2, 3, 2, 2, 1, 1, p, out, 3, sv), AMEIR_EINVAL);   /* ldo */
  T_ASSERT_EQ_INT(o->caser_fwd(st, x, bad_len, 2, 3, 2, 2, 1, 1, p, out, 4, sv), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->caser_bwd(st, x, len, 2, 3, 2, 2, 1, 1, p, out, 4, NULL, dx, dp), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(o->caser_bwd(st, x, len, 2, 3, 2, 2, 1, 1, p, out, 3, sv, dx, dp), AMEIR_EINVAL);
  T_OK(o->caser_fwd(st, x, len, 0, 3, 2, 2, 1, 1, p, out, 4, NULL));   /* no rows, no save */
  T_OK(o->caser_bwd(st, x, len, 0, 3, 2, 2, 1, 1, p, out, 4, NULL, dx, dp));
}
