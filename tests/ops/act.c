/* CPU backend: element-wise activations, Dice, dropout. */
#include <math.h>
#include <string.h>

#include "cpu/cpu.h"
#include "util.h"

static double ref_act(int act, double x) {
  switch (act) {
    case AMEIR_ACT_IDENTITY: return x;
    case AMEIR_ACT_RELU: return x > 0 ? x : 0;
    case AMEIR_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case AMEIR_ACT_SWISH: return x / (1.0 + exp(-x));
    case AMEIR_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    default: return NAN;
  }
}

typedef struct { int act; int64_t n; const double *w; double *x; } act_u;
static double act_loss(void *p) {
  act_u *u = p;
  double l = 0.0;
  for (int64_t i = 0; i < u->n; i++) l += u->w[i] * ref_act(u->act, u->x[i]);
  return l;
}

void test_ops_act__fwd_bwd(void) {
  static const int64_t ns[] = {1, 17, 300, 50000};
  for (int act = 0; act < AMEIR_ACT_COUNT_; act++) {
    if (act == AMEIR_ACT_DICE) continue;
    for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
      int64_t n = ns[s];
      float *x = tops_randf(act * 10 + s, n, -5, 5), *y = malloc((size_t)n * sizeof(float));
      for (int64_t i = 0; i < n; i++)
        if (fabsf(x[i]) < 1e-3f) x[i] = 0.5f;   /* away from the ReLU kink */
      x[0] = n > 1 ? -30.0f : x[0];               /* saturation */
      double *ref = malloc((size_t)n * sizeof(double));
      for (int64_t i = 0; i < n; i++) ref[i] = ref_act(act, x[i]);
      T_OK(tops_ops()->act_fwd(tops_st(), act, x, y, n));
      char what[64];
      snprintf(what, sizeof what, "act_fwd %d n=%lld", act, (long long)n);
      tops_check_close(what, y, ref, n, 2e-6, 1e-7);
      /* backward: against finite differences of the double reference, dy = w */
      float *w = tops_randf(act * 10 + s + 5, n, -1, 1), *dx = malloc((size_t)n * sizeof(float));
      T_OK(tops_ops()->act_bwd(tops_st(), act, x, y, w, dx, n));
      double *wd = tops_tod(w, n), *xd = tops_tod(x, n);
      act_u u = {act, n, wd, xd};
      snprintf(what, sizeof what, "act_bwd %d n=%lld", act, (long long)n);
      if (n <= 300) tops_fd_check(what, act_loss, &u, xd, n, dx, 1e-4, 1e-6, 100);
      /* y may be NULL, dx may alias dy */
      float *dx2 = tops_dupf(w, n);
      T_OK(tops_ops()->act_bwd(tops_st(), act, x, NULL, dx2, dx2, n));
      for (int64_t i = 0; i < n; i++) T_ASSERT_CLOSE(dx2[i], dx[i], 1e-6, 1e-7);
      free(x), free(y), free(ref), free(w), free(dx), free(wd), free(xd), free(dx2);
    }
  }
}

void test_ops_act__bad_kind(void) {
  float x = 1, y;
  T_ASSERT_EQ_INT(tops_ops()->act_fwd(tops_st(), AMEIR_ACT_DICE, &x, &y, 1), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(tops_ops()->act_fwd(tops_st(), 99, &x, &y, 1), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(tops_ops()->act_bwd(tops_st(), -1, &x, &y, &x, &y, 1), AMEIR_EINVAL);
}

/* ---- Dice ---- */

/* training-mode forward in double: batch statistics (biased variance) */
static void ref_dice(const double *x, const double *alpha, int64_t m, int64_t n, double eps,
                     double *y, double *mean, double *var) {
  for (int64_t j = 0; j < n; j++) {
    double mu = 0.0, v = 0.0;
    for (int64_t i = 0; i < m; i++) mu += x[i * n + j];
    mu /= (double)m;
    for (int64_t i = 0; i < m; i++) v += (x[i * n + j] - mu) * (x[i * n + j] - mu);
    v /= (double)m;
    if (mean) mean[j] = mu;
    if (var) var[j] = v;
    for (int64_t i = 0; i < m; i++) {
      double xi = x[i * n + j], p = 1.0 / (1.0 + exp(-(xi - mu) / sqrt(v + eps)));
      y[i * n + j] = p * xi + (1.0 - p) * alpha[j] * xi;
    }
  }
}

typedef struct { int64_t m, n; double eps; const double *w; double *x, *alpha, *y; } dice_u;
static double dice_loss(void *p) {
  dice_u *u = p;
  ref_dice(u->x, u->alpha, u->m, u->n, u->eps, u->y, NULL, NULL);
  double l = 0.0;
  for (int64_t i = 0; i < u->m * u->n; i++) l += u->w[i] * u->y[i];
  return l;
}

void test_ops_act__dice(void) {
  static const int64_t shapes[][2] = {{1, 4}, {2, 3}, {7, 5}, {64, 33}, {300, 20}};
  const float eps = 1e-8f;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t m = shapes[s][0], n = shapes[s][1], mn = m * n;
    float *x = tops_randf(40 + s, mn, -2, 3), *alpha = tops_randf(50 + s, n, -0.5f, 0.5f);
    float *rm = tops_randf(60 + s, n, -1, 1), *rv = tops_randf(70 + s, n, 0.5f, 2);
    float *rm0 = tops_dupf(rm, n), *rv0 = tops_dupf(rv, n);
    float *y = malloc((size_t)mn * sizeof(float)), *save = malloc((size_t)(2 * n) * sizeof(float));
    double *xd = tops_tod(x, mn), *ad = tops_tod(alpha, n);
    double *yd = malloc((size_t)mn * sizeof(double)), *mean = malloc((size_t)n * sizeof(double));
    double *var = malloc((size_t)n * sizeof(double));
    ref_dice(xd, ad, m, n, eps, yd, mean, var);
    T_OK(tops_ops()->dice_fwd(tops_st(), x, y, m, n, alpha, rm, rv, eps, 1, save));
    tops_check_close("dice_fwd train", y, yd, mn, 1e-4, 1e-5);
    double *rref = malloc((size_t)n * sizeof(double));
    for (int64_t j = 0; j < n; j++) rref[j] = 0.9 * rm0[j] + 0.1 * mean[j];
    tops_check_close("dice running_mean", rm, rref, n, 1e-5, 1e-6);
    for (int64_t j = 0; j < n; j++)
      rref[j] = 0.9 * rv0[j] + 0.1 * (m > 1 ? var[j] * (double)m / (double)(m - 1) : var[j]);
    tops_check_close("dice running_var", rv, rref, n, 1e-5, 1e-6);

    /* backward: dx against finite differences through the batch statistics; dalpha too */
    float *w = tops_randf(80 + s, mn, -1, 1), *dx = malloc((size_t)mn * sizeof(float));
    float *dalpha = tops_randf(90 + s, n, -1, 1), *da0 = tops_dupf(dalpha, n);
    T_OK(tops_ops()->dice_bwd(tops_st(), x, w, dx, m, n, alpha, dalpha, eps, save));
    for (int64_t j = 0; j < n; j++) dalpha[j] -= da0[j];   /* accumulated */
    double *wd = tops_tod(w, mn);
    dice_u u = {m, n, eps, wd, xd, ad, yd};
    tops_fd_check("dice dx", dice_loss, &u, xd, mn, dx, 2e-3, 2e-4, 60);
    tops_fd_check("dice dalpha", dice_loss, &u, ad, n, dalpha, 2e-3, 2e-4, 60);

    /* inference: running statistics */
    T_OK(tops_ops()->dice_fwd(tops_st(), x, y, m, n, alpha, rm, rv, eps, 0, NULL));
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double xi = x[i * n + j], p = 1.0 / (1.0 + exp(-(xi - rm[j]) / sqrt(rv[j] + eps)));
        yd[i * n + j] = p * xi + (1.0 - p) * alpha[j] * xi;
      }
    tops_check_close("dice_fwd infer", y, yd, mn, 1e-5, 1e-6);
    free(x), free(alpha), free(rm), free(rv), free(rm0), free(rv0), free(y), free(save);
    free(xd), free(ad), free(yd), free(mean), free(var), free(rref), free(w), free(dx);
    free(dalpha), free(da0), free(wd);
  }
}

/* ---- dropout ---- */

void test_ops_act__dropout(void) {
  const int64_t n = 100000;
  const float p = 0.3f;
  float *x = tops_randf(1, n, -1, 1), *y = malloc((size_t)n * sizeof(float));
  float *y2 = malloc((size_t)n * sizeof(float));
  uint8_t *mask = malloc((size_t)n), *mask2 = malloc((size_t)n);
  T_OK(tops_ops()->dropout_fwd(tops_st(), x, y, mask, n, p, 42, 0));
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; i++) {
    T_ASSERT(mask[i] == 0 || mask[i] == 1);
    T_ASSERT(mask[i] == (ameir__u01f(42, (uint64_t)i) >= p));
    dropped += !mask[i];
    T_ASSERT(y[i] == (mask[i] ? x[i] * (1.0f / (1.0f - p)) : 0.0f));
  }
  T_ASSERT_NEAR((double)dropped / (double)n, p, 0.01);
  /* deterministic for (seed, offset); the offset shifts the stream */
  T_OK(tops_ops()->dropout_fwd(tops_st(), x, y2, mask2, n, p, 42, 0));
  T_ASSERT(memcmp(mask, mask2, (size_t)n) == 0 && memcmp(y, y2, (size_t)n * sizeof(float)) == 0);
  T_OK(tops_ops()->dropout_fwd(tops_st(), x, y2, mask2, n - 5, p, 42, 5));
  T_ASSERT(memcmp(mask + 5, mask2, (size_t)(n - 5)) == 0);
  T_OK(tops_ops()->dropout_fwd(tops_st(), x, y2, mask2, n, p, 43, 0));
  T_ASSERT(memcmp(mask, mask2, (size_t)n) != 0);
  /* backward: the same mask and scale */
  float *dy = tops_randf(2, n, -1, 1), *dx = malloc((size_t)n * sizeof(float));
  T_OK(tops_ops()->dropout_bwd(tops_st(), dy, dx, mask, n, p));
  for (int64_t i = 0; i < n; i++)
    T_ASSERT(dx[i] == (mask[i] ? dy[i] * (1.0f / (1.0f - p)) : 0.0f));
  /* p = 0: identity; p = 1: everything dropped */
  T_OK(tops_ops()->dropout_fwd(tops_st(), x, y, mask, n, 0.0f, 7, 0));
  T_ASSERT(memcmp(x, y, (size_t)n * sizeof(float)) == 0);
  T_OK(tops_ops()->dropout_fwd(tops_st(), x, y, mask, n, 1.0f, 7, 0));
  for (int64_t i = 0; i < n; i++) T_ASSERT(y[i] == 0.0f && mask[i] == 0);
  T_ASSERT_EQ_INT(tops_ops()->dropout_fwd(tops_st(), x, y, mask, n, 1.5f, 7, 0), AMEIR_EINVAL);
  free(x), free(y), free(y2), free(mask), free(mask2), free(dy), free(dx);
}

/* the vectorisable exp and Phi behind sigmoid, swish, GELU and Dice */
void test_ops_act__expf_phi_accuracy(void) {
  const int64_t n = 200001;
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    float x = -87.0f + 175.0f * (float)i / (float)(n - 1);
    double r = exp((double)x), y = cpu_expf(x);
    double ulp = nextafterf((float)r, INFINITY) - (float)r;
    double e = fabs(y - r) / ulp;
    if (e > worst) worst = e;
  }
  T_ASSERT_MSG(worst <= 1.5, "cpu_expf: %.3f ulp", worst);
  T_ASSERT(cpu_expf(0.0f) == 1.0f);
  T_ASSERT(cpu_expf(-100.0f) == 0.0f && cpu_expf(-INFINITY) == 0.0f);
  T_ASSERT(isinf(cpu_expf(89.0f)) && isinf(cpu_expf(INFINITY)));
  T_ASSERT(isnan(cpu_expf(NAN)));
  /* Phi: relative accuracy, also in the left tail (where 0.5 (1 + erff(x / sqrt 2)), torch's
   * float formula, loses everything: 7% at x = -5); exp(-x^2/2) there amplifies the float
   * rounding of x^2 / 2, hence the looser bound below -4 */
  double worst_rel = 0.0, worst_tail = 0.0;
  for (int64_t i = 0; i < n; i++) {
    float x = -12.0f + 24.0f * (float)i / (float)(n - 1);
    double r = 0.5 * erfc(-(double)x / sqrt(2.0)), y = cpu_phi(x);
    double e = fabs(y - r) / r;
    if (x >= -4.0f && e > worst_rel) worst_rel = e;
    if (e > worst_tail) worst_tail = e;
  }
  T_ASSERT_MSG(worst_rel < 3e-6, "cpu_phi: relative error %.3g on [-4, 12]", worst_rel);
  T_ASSERT_MSG(worst_tail < 3e-5, "cpu_phi: relative error %.3g on [-12, -4]", worst_tail);
  T_ASSERT(cpu_phi(0.0f) == 0.5f);
}
