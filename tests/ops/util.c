/* Shared helpers of the ops tests. */
#include "util.h"

#include <math.h>
#include <string.h>

static struct ameir_context tops_ctx_;
static void *tops_st_;

static void tops_init(void) {
  if (tops_st_) return;
  memset(&tops_ctx_, 0, sizeof tops_ctx_);
  tops_ctx_.threads = 2;
  tops_ctx_.ops = ameir__cpu_ops();
  T_OK(tops_ctx_.ops->init(&tops_ctx_, 2, &tops_st_));
  tops_ctx_.bstate = tops_st_;
}

const ameir_ops *tops_ops(void) {
  tops_init();
  return tops_ctx_.ops;
}

void *tops_st(void) {
  tops_init();
  return tops_st_;
}

struct ameir_context *tops_ctx(void) {
  tops_init();
  return &tops_ctx_;
}

double tops_u01(uint64_t seed, uint64_t i) {
  return (double)(ameir__hash2(seed * 0x9e3779b97f4a7c15ull + 12345u, i) >> 11) * 0x1p-53;
}

float *tops_randf(uint64_t seed, int64_t n, float lo, float hi) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  T_ASSERT(x != NULL);
  for (int64_t i = 0; i < n; i++)
    x[i] = (float)(lo + (hi - lo) * tops_u01(seed, (uint64_t)i));
  return x;
}

double *tops_dense_d(const float *x, int64_t rows, int64_t cols, int64_t ld) {
  double *d = malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof(double));
  T_ASSERT(d != NULL);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) d[i * cols + j] = x[i * ld + j];
  return d;
}

float *tops_constf(int64_t n, float v) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  T_ASSERT(x != NULL);
  for (int64_t i = 0; i < n; i++) x[i] = v;
  return x;
}

double *tops_tod(const float *x, int64_t n) {
  double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  T_ASSERT(d != NULL);
  for (int64_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

float *tops_dupf(const float *x, int64_t n) {
  float *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  T_ASSERT(d != NULL);
  if (n > 0) memcpy(d, x, (size_t)n * sizeof(float));
  return d;
}

int32_t *tops_randi(uint64_t seed, int64_t n, int32_t lo, int32_t hi) {
  int32_t *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
  T_ASSERT(x != NULL);
  for (int64_t i = 0; i < n; i++)
    x[i] = lo + (int32_t)(tops_u01(seed, (uint64_t)i) * (double)(hi - lo));
  return x;
}

void tops_check_close(const char *what, const float *got, const double *ref, int64_t n,
                      double rtol, double atol) {
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], r = ref[i];
    double m = fabs(g) > fabs(r) ? fabs(g) : fabs(r);
    if (!(fabs(g - r) <= atol + rtol * m))
      t__fail(__FILE__, __LINE__, "%s[%lld]: got %.9g, want %.9g (rtol %g, atol %g)", what,
              (long long)i, g, r, rtol, atol);
  }
}

void tops_check_same(const char *what, const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
      t__fail(__FILE__, __LINE__, "%s[%lld]: %.9g vs %.9g not bit-identical", what, (long long)i,
              (double)a[i], (double)b[i]);
}

void tops_fd_check(const char *what, tops_loss_fn loss, void *u, double *x, int64_t n,
                   const float *grad, double rtol, double atol, int64_t max_checks) {
  int64_t step = n > max_checks ? (n + max_checks - 1) / max_checks : 1;
  for (int64_t i = 0; i < n; i += step) {
    double x0 = x[i];
    double h = 1e-5 * (fabs(x0) > 1.0 ? fabs(x0) : 1.0);
    x[i] = x0 + h;
    double lp = loss(u);
    x[i] = x0 - h;
    double lm = loss(u);
    x[i] = x0;
    double fd = (lp - lm) / (2.0 * h), g = grad[i];
    double m = fabs(g) > fabs(fd) ? fabs(g) : fabs(fd);
    if (!(fabs(g - fd) <= atol + rtol * m))
      t__fail(__FILE__, __LINE__, "%s: d/dx[%lld]: analytic %.9g, finite difference %.9g", what,
              (long long)i, g, fd);
  }
}

int32_t *tops_lens(uint64_t seed, int64_t b, int64_t t) {
  int32_t *l = tops_randi(seed, b, 0, (int32_t)t + 1);
  static const int pick[4] = {2, 0, 1, 2};   /* 2 = t */
  for (int64_t i = 0; i < b && i < 4; i++) l[i] = pick[i] == 2 ? (int32_t)t : pick[i];
  return l;
}

float *tops_repad(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t t2, int64_t d) {
  float *y = tops_constf(b * t2 * d, NAN);
  for (int64_t i = 0; i < b; i++)
    if (len[i] > 0) memcpy(y + i * t2 * d, x + i * t * d, (size_t)(len[i] * d) * sizeof(float));
  return y;
}

float *tops_seq_randf(uint64_t seed, const int32_t *len, int64_t b, int64_t t, int64_t d, float lo,
                      float hi) {
  float *x = tops_randf(seed, b * t * d, lo, hi);
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = (int64_t)len[i] * d; j < t * d; j++) x[i * t * d + j] = NAN;
  return x;
}

void tops_check_repad(const char *what, const float *y, const float *y2, const int32_t *len,
                      int64_t b, int64_t t, int64_t t2, int64_t d) {
  for (int64_t i = 0; i < b; i++) {
    tops_check_same(what, y + i * t * d, y2 + i * t2 * d, len[i] * d);
    for (int64_t j = (int64_t)len[i] * d; j < t * d; j++)
      T_ASSERT_MSG(y[i * t * d + j] == 0.0f,
                   "%s: sample %lld, padding element %lld is %g, not 0", what, (long long)i,
                   (long long)j, (double)y[i * t * d + j]);
    for (int64_t j = (int64_t)len[i] * d; j < t2 * d; j++)
      T_ASSERT_MSG(y2[i * t2 * d + j] == 0.0f,
                   "%s (padded to %lld): sample %lld, padding element %lld is %g, not 0", what,
                   (long long)t2, (long long)i, (long long)j, (double)y2[i * t2 * d + j]);
  }
}
