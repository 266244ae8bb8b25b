/* CPU backend: multi-head self-attention with a key padding mask and DIN's local activation
 * unit, against double references (DIN's written with the plain [h, q, h-q, h*q] input, so the
 * op's regrouped first layer is checked too), by finite differences of them, and for padding
 * invariance. */
#include <math.h>
#include <string.h>

#include "util.h"

static double sig(double v) { return 1.0 / (1.0 + exp(-v)); }

static double *dclean(const float *x, int64_t n) {
  double *d = tops_tod(x, n);
  for (int64_t i = 0; i < n; i++)
    if (isnan(d[i])) d[i] = 0.0;
  return d;
}

/* ---- multi-head self-attention ---- */

typedef struct {
  int64_t b, t, d, h;
  const int32_t *len;
  double *x, *p, *y;
  const double *wy;
} mha_u;

static void ref_mha(mha_u *u) {
  int64_t t = u->t, d = u->d, dh = d / u->h;
  const double *wqkv = u->p, *bqkv = wqkv + 3 * d * d, *wo = bqkv + 3 * d, *bo = wo + d * d;
  double *qkv = malloc((size_t)(t * 3 * d) * sizeof(double));
  double *ctx = malloc((size_t)(t * d) * sizeof(double)), sc[256];
  memset(u->y, 0, (size_t)(u->b * t * d) * sizeof(double));
  for (int64_t s = 0; s < u->b; s++) {
    int64_t l = u->len[s];
    const double *xs = u->x + s * t * d;
    for (int64_t i = 0; i < l; i++)
      for (int64_t m = 0; m < 3 * d; m++) {
        double a = bqkv[m];
        for (int64_t c = 0; c < d; c++) a += wqkv[m * d + c] * xs[i * d + c];
        qkv[i * 3 * d + m] = a;
      }
    for (int64_t hh = 0; hh < u->h; hh++)
      for (int64_t i = 0; i < l; i++) {
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < l; j++) {
          double a = 0.0;
          for (int64_t c = 0; c < dh; c++)
            a += qkv[i * 3 * d + hh * dh + c] * qkv[j * 3 * d + d + hh * dh + c];
          sc[j] = a / sqrt((double)dh);
          mx = sc[j] > mx ? sc[j] : mx;
        }
        for (int64_t j = 0; j < l; j++) sum += sc[j] = exp(sc[j] - mx);
        for (int64_t c = 0; c < dh; c++) {
          double a = 0.0;
          for (int64_t j = 0; j < l; j++) a += sc[j] / sum * qkv[j * 3 * d + 2 * d + hh * dh + c];
          ctx[i * d + hh * dh + c] = a;
        }
      }
    for (int64_t i = 0; i < l; i++)
      for (int64_t o = 0; o < d; o++) {
        double a = bo[o];
        for (int64_t c = 0; c < d; c++) a += wo[o * d + c] * ctx[i * d + c];
        u->y[(s * t + i) * d + o] = a;
      }
  }
  free(qkv), free(ctx);
}

static double mha_loss(void *p) {
  mha_u *u = p;
  ref_mha(u);
  double l = 0.0;
  for (int64_t s = 0; s < u->b; s++)
    for (int64_t j = 0; j < u->len[s] * u->d; j++)
      l += u->wy[s * u->t * u->d + j] * u->y[s * u->t * u->d + j];
  return l;
}

static void check_mha(int64_t b, int64_t t, int64_t d, int32_t h, uint64_t seed, int full) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  int64_t n = b * t * d, np = ameir__mha_params(d), t2 = t + 5;
  int32_t *len = tops_lens(seed, b, t);
  if (full)
    for (int64_t i = 0; i < b; i++) len[i] = (int32_t)t;
  float sc = 1.0f / sqrtf((float)d);
  float *x = tops_seq_randf(seed + 1, len, b, t, d, -1.5f, 1.5f);
  float *p = tops_randf(seed + 2, np, -2 * sc, 2 * sc), *y = tops_constf(n, NAN);
  float *save = tops_constf(ameir__mha_save(b, t, d, h), NAN);
  T_OK(o->mha_fwd(st, x, len, b, t, d, h, p, y, save));
  float *dy = tops_seq_randf(seed + 3, len, b, t, d, -1, 1);
  double *wy = dclean(dy, n), *yd = malloc((size_t)n * sizeof(double));
  mha_u u = {b, t, d, h, len, dclean(x, n), tops_tod(p, np), yd, wy};
  ref_mha(&u);
  tops_check_close("mha_fwd", y, yd, n, 1e-5, 2e-6);
  float *y0 = tops_constf(n, NAN);
  T_OK(o->mha_fwd(st, x, len, b, t, d, h, p, y0, NULL));
  tops_check_same("mha_fwd without save", y0, y, n);

  float *dx = tops_constf(n, NAN), *dp = tops_randf(seed + 4, np, -1, 1), *dp0 = tops_dupf(dp, np);
  T_OK(o->mha_bwd(st, x, len, b, t, d, h, p, dy, save, dx, dp));
  for (int64_t i = 0; i < np; i++) dp[i] -= dp0[i];
  tops_fd_check("mha dx", mha_loss, &u, u.x, n, dx, 2e-3, 1e-4, 150);
  tops_fd_check("mha dp", mha_loss, &u, u.p, np, dp, 2e-3, 1e-4, 200);

  int64_t n2 = b * t2 * d;
  float *x2 = tops_repad(x, len, b, t, t2, d), *y2 = tops_constf(n2, NAN);
  float *save2 = tops_constf(ameir__mha_save(b, t2, d, h), NAN);
  T_OK(o->mha_fwd(st, x2, len, b, t2, d, h, p, y2, save2));
  tops_check_repad("mha_fwd repad", y, y2, len, b, t, t2, d);
  float *dy2 = tops_repad(dy, len, b, t, t2, d), *dx2 = tops_constf(n2, NAN);
  float *dpa = tops_constf(np, 0), *dpb = tops_constf(np, 0);
  T_OK(o->mha_bwd(st, x, len, b, t, d, h, p, dy, save, dx, dpa));
  T_OK(o->mha_bwd(st, x2, len, b, t2, d, h, p, dy2, save2, dx2, dpb));
  tops_check_repad("mha_bwd dx repad", dx, dx2, len, b, t, t2, d);
  tops_check_same("mha_bwd dp repad", dpa, dpb, np);

  free(len), free(x), free(p), free(y), free(save), free(dy), free(wy), free(yd), free(u.x);
  free(u.p), free(y0), free(dx), free(dp), free(dp0), free(x2), free(y2), free(save2), free(dy2);
  free(dx2), free(dpa), free(dpb);
}

void test_ops_attn__mha_2heads(void) {
  check_mha(6, 7, 4, 2, 10, 0);   /* dh 2 */
  check_mha(4, 6, 8, 2, 20, 0);
  check_mha(3, 5, 4, 2, 25, 1);   /* every len = t */
}

void test_ops_attn__mha_4heads(void) {
  check_mha(5, 9, 8, 4, 30, 0);   /* dh 2 */
  check_mha(3, 11, 16, 4, 40, 0);
}

/* dh 20 (two column blocks, padded) and t 19 (keys in two blocks) */
void test_ops_attn__mha_wide_heads(void) { check_mha(3, 19, 40, 2, 50, 0); }

void test_ops_attn__mha_bad_args(void) {
  int32_t len[1] = {1};
  float x[6] = {0}, p[128] = {0}, y[6];
  T_ASSERT_EQ_INT(tops_ops()->mha_fwd(tops_st(), x, len, 1, 1, 6, 4, p, y, NULL), AMEIR_EINVAL);
}

/* ---- DIN local activation unit ---- */

typedef struct {
  int64_t b, t, d, ldq, a1, a2;
  const int32_t *len;
  double *x, *q, *p, *pooled, *scaled;
  const double *wp, *ws;   /* loss weights of pooled [b, d] and scaled [b, t, d] */
} din_u;

static void ref_din(din_u *u) {
  int64_t t = u->t, d = u->d, a1 = u->a1, a2 = u->a2;
  const double *w1 = u->p, *b1 = w1 + a1 * 4 * d, *w2 = b1 + a1, *b2 = w2 + a2 * a1;
  const double *w3 = b2 + a2, *b3 = w3 + a2;
  double in[4 * 64], h1[128], h2[64];
  memset(u->pooled, 0, (size_t)(u->b * d) * sizeof(double));
  memset(u->scaled, 0, (size_t)(u->b * t * d) * sizeof(double));
  for (int64_t s = 0; s < u->b; s++)
    for (int64_t i = 0; i < u->len[s]; i++) {
      const double *h = u->x + (s * t + i) * d, *q = u->q + s * u->ldq;
      for (int64_t c = 0; c < d; c++) {
        in[c] = h[c];
        in[d + c] = q[c];
        in[2 * d + c] = h[c] - q[c];
        in[3 * d + c] = h[c] * q[c];
      }
      for (int64_t k = 0; k < a1; k++) {
        double a = b1[k];
        for (int64_t c = 0; c < 4 * d; c++) a += w1[k * 4 * d + c] * in[c];
        h1[k] = sig(a);
      }
      double a = b3[0];
      for (int64_t k = 0; k < a2; k++) {
        double v = b2[k];
        for (int64_t c = 0; c < a1; c++) v += w2[k * a1 + c] * h1[c];
        h2[k] = sig(v);
        a += w3[k] * h2[k];
      }
      for (int64_t c = 0; c < d; c++) {
        u->pooled[s * d + c] += a * h[c];
        u->scaled[(s * t + i) * d + c] = a * h[c];
      }
    }
}

static double din_loss(void *p) {
  din_u *u = p;
  ref_din(u);
  double l = 0.0;
  for (int64_t i = 0; i < u->b * u->d; i++) l += u->wp[i] * u->pooled[i];
  for (int64_t s = 0; s < u->b; s++)
    for (int64_t j = 0; j < u->len[s] * u->d; j++)
      l += u->ws[s * u->t * u->d + j] * u->scaled[s * u->t * u->d + j];
  return l;
}

static void check_din(int64_t b, int64_t t, int64_t d, int32_t a1, int32_t a2, uint64_t seed,
                      int64_t checks) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  int64_t n = b * t * d, np = ameir__din_params(d, a1, a2), t2 = t + 5;
  int64_t ldq = d + 3, ldp = d + 2, lddp = d + 1, nsave = ameir__din_save(b, t, d, a1, a2);
  int32_t *len = tops_lens(seed, b, t);
  float *x = tops_seq_randf(seed + 1, len, b, t, d, -1, 1);
  float *q = tops_randf(seed + 2, b * ldq, -1, 1);
  float *p = tops_randf(seed + 3, np, -0.5f, 0.5f);
  float *pooled = tops_constf(b * ldp, NAN), *scaled = tops_constf(n, NAN);
  float *save = tops_constf(nsave, NAN);
  T_OK(o->din_fwd(st, x, len, b, t, d, q, ldq, a1, a2, p, pooled, ldp, scaled, save));
  float *dpo = tops_randf(seed + 4, b * lddp, -1, 1);
  float *dsc = tops_seq_randf(seed + 5, len, b, t, d, -1, 1);
  double *wp = calloc((size_t)(b * d), sizeof(double)), *ws = dclean(dsc, n);
  for (int64_t s = 0; s < b; s++)
    for (int64_t c = 0; c < d; c++) wp[s * d + c] = dpo[s * lddp + c];
  din_u u = {b, t, d, ldq, a1, a2, len, dclean(x, n), tops_tod(q, b * ldq), tops_tod(p, np),
             malloc((size_t)(b * d) * sizeof(double)), malloc((size_t)n * sizeof(double)), wp, ws};
  ref_din(&u);
  for (int64_t s = 0; s < b; s++) {
    tops_check_close("din pooled", pooled + s * ldp, u.pooled + s * d, d, 1e-5, 2e-6);
    T_ASSERT(isnan(pooled[s * ldp + d]));   /* the row stride's gap is left alone */
  }
  tops_check_close("din scaled", scaled, u.scaled, n, 1e-5, 2e-6);
  /* either output alone, and inference without save, give the same values */
  float *pooled1 = tops_constf(b * ldp, NAN), *scaled1 = tops_constf(n, NAN);
  T_OK(o->din_fwd(st, x, len, b, t, d, q, ldq, a1, a2, p, pooled1, ldp, NULL, NULL));
  T_OK(o->din_fwd(st, x, len, b, t, d, q, ldq, a1, a2, p, NULL, 0, scaled1, NULL));
  tops_check_same("din pooled alone", pooled1, pooled, b * ldp);
  tops_check_same("din scaled alone", scaled1, scaled, n);

  /* backward with both output gradients: dx overwritten, dq and dp accumulated */
  float *dx = tops_constf(n, NAN), *dq = tops_randf(seed + 6, b * ldq, -1, 1);
  float *dp = tops_randf(seed + 7, np, -1, 1), *dq0 = tops_dupf(dq, b * ldq);
  float *dp0 = tops_dupf(dp, np);
  T_OK(o->din_bwd(st, x, len, b, t, d, q, ldq, a1, a2, p, dpo, lddp, dsc, save, dx, dq, dp));
  for (int64_t i = 0; i < b * ldq; i++) dq[i] -= dq0[i];
  for (int64_t i = 0; i < np; i++) dp[i] -= dp0[i];
  for (int64_t s = 0; s < b; s++)
    for (int64_t c = d; c < ldq; c++) T_ASSERT(dq[s * ldq + c] == 0.0f);
  tops_fd_check("din dx", din_loss, &u, u.x, n, dx, 2e-3, 1e-4, checks);
  tops_fd_check("din dq", din_loss, &u, u.q, b * ldq, dq, 2e-3, 1e-4, checks);
  tops_fd_check("din dp", din_loss, &u, u.p, np, dp, 2e-3, 1e-4, checks);

  /* one output gradient at a time (the other NULL): the two add up to the whole */
  float *dxa = tops_constf(n, NAN), *dxb = tops_constf(n, NAN);
  float *dqa = tops_constf(b * ldq, 0), *dqb = tops_constf(b * ldq, 0);
  float *dpa = tops_constf(np, 0), *dpb = tops_constf(np, 0);
  T_OK(o->din_bwd(st, x, len, b, t, d, q, ldq, a1, a2, p, dpo, lddp, NULL, save, dxa, dqa, dpa));
  T_OK(o->din_bwd(st, x, len, b, t, d, q, ldq, a1, a2, p, NULL, 0, dsc, save, dxb, dqb, dpb));
  int64_t nmax = np > n ? np : n;
  if (b * ldq > nmax) nmax = b * ldq;
  double *sum = malloc((size_t)nmax * sizeof(double));
  for (int64_t i = 0; i < n; i++) sum[i] = (double)dxa[i] + dxb[i];
  tops_check_close("din dx split", dx, sum, n, 1e-4, 1e-5);
  for (int64_t i = 0; i < b * ldq; i++) sum[i] = (double)dqa[i] + dqb[i];
  tops_check_close("din dq split", dq, sum, b * ldq, 1e-4, 1e-5);
  for (int64_t i = 0; i < np; i++) sum[i] = (double)dpa[i] + dpb[i];
  tops_check_close("din dp split", dp, sum, np, 1e-4, 1e-5);

  /* padding invariance */
  int64_t n2 = b * t2 * d;
  float *x2 = tops_repad(x, len, b, t, t2, d), *sc2 = tops_constf(n2, NAN);
  float *po2 = tops_constf(b * ldp, NAN);
  float *save2 = tops_constf(ameir__din_save(b, t2, d, a1, a2), NAN);
  T_OK(o->din_fwd(st, x2, len, b, t2, d, q, ldq, a1, a2, p, po2, ldp, sc2, save2));
  tops_check_repad("din scaled repad", scaled, sc2, len, b, t, t2, d);
  tops_check_same("din pooled repad", pooled, po2, b * ldp);
  float *dsc2 = tops_repad(dsc, len, b, t, t2, d), *dx2 = tops_constf(n2, NAN);
  memset(dqa, 0, (size_t)(b * ldq) * sizeof(float));
  memset(dqb, 0, (size_t)(b * ldq) * sizeof(float));
  memset(dpa, 0, (size_t)np * sizeof(float)), memset(dpb, 0, (size_t)np * sizeof(float));
  T_OK(o->din_bwd(st, x, len, b, t, d, q, ldq, a1, a2, p, dpo, lddp, dsc, save, dx, dqa, dpa));
  T_OK(o->din_bwd(st, x2, len, b, t2, d, q, ldq, a1, a2, p, dpo, lddp, dsc2, save2, dx2, dqb, dpb));
  tops_check_repad("din dx repad", dx, dx2, len, b, t, t2, d);
  tops_check_same("din dq repad", dqa, dqb, b * ldq);
  tops_check_same("din dp repad", dpa, dpb, np);

  free(len), free(x), free(q), free(p), free(pooled), free(scaled), free(save), free(dpo);
  free(dsc), free(wp), free(ws), free(u.x), free(u.q), free(u.p), free(u.pooled), free(u.scaled);
  free(pooled1), free(scaled1), free(dx), free(dq), free(dp), free(dq0), free(dp0), free(dxa);
  free(dxb), free(dqa), free(dqb), free(dpa), free(dpb), free(sum), free(x2), free(sc2), free(po2);
  free(save2), free(dsc2), free(dx2);
}

void test_ops_attn__din(void) {
  check_din(6, 7, 4, 5, 3, 100, 150);
  check_din(5, 9, 8, 16, 8, 110, 150);
}

/* the default hidden sizes 80, 40 */
void test_ops_attn__din_default_sizes(void) { check_din(3, 4, 8, 80, 40, 120, 60); }

void test_ops_attn__din_bad_args(void) {
  int32_t len[1] = {1};
  float x[2] = {0}, q[2] = {0}, p[64] = {0}, y[2];
  T_ASSERT_EQ_INT(tops_ops()->din_fwd(tops_st(), x, len, 1, 1, 2, q, 2, 0, 3, p, y, 2, NULL, NULL),
                  AMEIR_EINVAL);
}
