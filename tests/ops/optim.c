/* CPU backend: BCE with logits and the three Adam ops. */
#include <math.h>
#include <string.h>

#include "util.h"

typedef struct { int64_t n; double *x; const double *y; } bce_u;
static double bce_loss(void *p) {
  bce_u *u = p;
  double l = 0.0;
  for (int64_t i = 0; i < u->n; i++) {
    double x = u->x[i], y = u->y[i];
    l += (x > 0 ? x : 0) - x * y + log1p(exp(-fabs(x)));
  }
  return l / (double)u->n;
}

void test_ops_optim__bce_logits(void) {
  static const int64_t ns[] = {1, 7, 1000, 70000};
  for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
    int64_t n = ns[s];
    float *x = tops_randf(1 + s, n, -6, 6), *y = tops_randf(2 + s, n, 0, 1);
    for (int64_t i = 0; i < n; i++)
      if (i % 3) y[i] = y[i] < 0.5f ? 0.0f : 1.0f;   /* mostly hard labels, some soft */
    if (n > 4) x[0] = 100.0f, x[1] = -100.0f, x[2] = 30.0f, x[3] = -30.0f;   /* stability */
    double *xd = tops_tod(x, n), *yd = tops_tod(y, n);
    bce_u u = {n, xd, yd};
    double loss = -1.0;
    float *dl = malloc((size_t)n * sizeof(float)), *prob = malloc((size_t)n * sizeof(float));
    T_OK(tops_ops()->bce_logits(tops_st(), x, y, n, 1.0f / (float)n, &loss, dl, prob));
    T_ASSERT(isfinite(loss));
    T_ASSERT_CLOSE(loss, bce_loss(&u), 1e-12, 1e-12);
    for (int64_t i = 0; i < n; i++)
      T_ASSERT_CLOSE(prob[i], 1.0 / (1.0 + exp(-xd[i])), 1e-6, 1e-7);
    double at = 1e-7 / (double)n;
    if (n <= 1000) tops_fd_check("bce dlogit", bce_loss, &u, xd, n, dl, 1e-4, at, 100);
    for (int64_t i = 0; i < n; i++)
      T_ASSERT_CLOSE(dl[i], (1.0 / (1.0 + exp(-xd[i])) - yd[i]) / (double)n, 1e-5, at);
    /* evaluation: no gradient, no probabilities */
    double loss2 = -1.0;
    T_OK(tops_ops()->bce_logits(tops_st(), x, y, n, 1.0f, &loss2, NULL, NULL));
    T_ASSERT(loss2 == loss);
    free(x), free(y), free(xd), free(yd), free(dl), free(prob);
  }
}

/* ---- Adam ---- */

static void ref_adam(double *p, const double *g, double *m, double *v, int64_t n, double lr,
                     double b1, double b2, double eps, double l2, int64_t t) {
  for (int64_t i = 0; i < n; i++) {
    double gi = g[i] + l2 * p[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    double mh = m[i] / (1 - pow(b1, (double)t)), vh = v[i] / (1 - pow(b2, (double)t));
    p[i] -= lr * mh / (sqrt(vh) + eps);
  }
}

void test_ops_optim__adam_dense(void) {
  static const int64_t ns[] = {1, 33, 20000};
  for (int wd = 0; wd < 2; wd++)
    for (size_t s = 0; s < sizeof ns / sizeof ns[0]; s++) {
      int64_t n = ns[s];
      const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, l2 = wd ? 0.05f : 0.0f;
      float *p = tops_randf(1 + s, n, -1, 1), *m = calloc((size_t)n, sizeof(float));
      float *v = calloc((size_t)n, sizeof(float));
      double *pd = tops_tod(p, n), *md = calloc((size_t)n, sizeof(double));
      double *vd = calloc((size_t)n, sizeof(double));
      for (int64_t t = 1; t <= 2; t++) {
        float *g = tops_randf(10 * t + s, n, -1, 1);
        double *gd = tops_tod(g, n);
        T_OK(tops_ops()->adam_dense(tops_st(), p, g, m, v, n, lr, b1, b2, eps, l2, t));
        ref_adam(pd, gd, md, vd, n, lr, b1, b2, eps, l2, t);
        free(g), free(gd);
      }
      tops_check_close("adam p", p, pd, n, 1e-5, 1e-6);
      tops_check_close("adam m", m, md, n, 1e-5, 1e-7);
      tops_check_close("adam v", v, vd, n, 1e-5, 1e-8);
      free(p), free(m), free(v), free(pd), free(md), free(vd);
    }
  /* hand-computed, one element, two steps: g = 1 then g = -1, lr 0.1, no decay.
   * t=1: m = 0.1, v = 0.001, mh = 1, vh = 1 -> p = 0.5 - 0.1 / (1 + 1e-8)
   * t=2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999,
   *      mh = -0.01 / 0.19, vh = 0.001999 / 0.001999 = 1 -> p += 0.1 * 0.01 / 0.19 / (1 + 1e-8) */
  float p = 0.5f, m = 0, v = 0, g1 = 1.0f, g2 = -1.0f;
  T_OK(tops_ops()->adam_dense(tops_st(), &p, &g1, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0, 1));
  T_ASSERT_NEAR(p, 0.5 - 0.1 / (1 + 1e-8), 1e-7);
  T_OK(tops_ops()->adam_dense(tops_st(), &p, &g2, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0, 2));
  T_ASSERT_NEAR(m, -0.01, 1e-8);
  /* (1 - b2) is formed from the float 0.999f: 1.3e-5 relative off the decimal value */
  T_ASSERT_CLOSE(v, 0.001999, 2e-5, 0);
  T_ASSERT_NEAR(p, 0.5 - 0.1 / (1 + 1e-8) + 0.1 * (0.01 / 0.19) / (1 + 1e-8), 2e-7);
}

void test_ops_optim__adam_rows(void) {
  const int64_t rows_n = 10, dim = 3, n_rows = 3;
  const int32_t rows[3] = {2, 5, 7};
  float *tab = tops_randf(1, rows_n * dim, -1, 1), *m = tops_randf(2, rows_n * dim, -1, 1);
  float *v = tops_randf(3, rows_n * dim, 0, 1);
  float *t0 = tops_dupf(tab, rows_n * dim), *m0 = tops_dupf(m, rows_n * dim);
  float *v0 = tops_dupf(v, rows_n * dim);
  float *grad = tops_randf(4, n_rows * dim, -1, 1);
  T_OK(tops_ops()->adam_rows(tops_st(), tab, dim, rows, grad, n_rows, m, v, 0.01f, 0.9f, 0.999f,
                             1e-8f, 0.01f, 3));
  for (int64_t r = 0, k = 0; r < rows_n; r++) {
    float *tr = t0 + r * dim, *mr = m0 + r * dim, *vr = v0 + r * dim;
    if (k < n_rows && rows[k] == r) {   /* listed: adam_dense on that row, bit for bit */
      T_OK(tops_ops()->adam_dense(tops_st(), tr, grad + k * dim, mr, vr, dim, 0.01f, 0.9f, 0.999f,
                                  1e-8f, 0.01f, 3));
      k++;
    }
    tops_check_same("adam_rows table", tab + r * dim, tr, dim);
    tops_check_same("adam_rows m", m + r * dim, mr, dim);
    tops_check_same("adam_rows v", v + r * dim, vr, dim);
  }
  free(tab), free(m), free(v), free(t0), free(m0), free(v0), free(grad);
}

/* adam_table_dense == adam_dense over the densified gradient (rows >= 1), row 0 untouched */
void test_ops_optim__adam_table_dense(void) {
  static const int64_t shapes[][2] = {{5, 1}, {40, 3}, {2000, 16}};
  for (int wd = 0; wd < 2; wd++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int64_t nr = shapes[s][0], dim = shapes[s][1], n = nr * dim;
      const float l2 = wd ? 1e-3f : 0.0f;
      float *tab = tops_randf(1 + s, n, -1, 1), *m = calloc((size_t)n, sizeof(float));
      float *v = calloc((size_t)n, sizeof(float));
      float *tab2 = tops_dupf(tab, n), *m2 = calloc((size_t)n, sizeof(float));
      float *v2 = calloc((size_t)n, sizeof(float));
      float *row0 = tops_dupf(tab, dim);
      int32_t *rows = malloc((size_t)nr * sizeof(int32_t));
      float *grad = malloc((size_t)n * sizeof(float)), *dense = malloc((size_t)n * sizeof(float));
      for (int64_t t = 1; t <= 3; t++) {
        /* a different subset each step (first and last rows included in some steps) */
        int64_t k = 0;
        memset(dense, 0, (size_t)n * sizeof(float));
        for (int64_t r = 1; r < nr; r++)
          if (tops_u01(100 * t + s, (uint64_t)r) < 0.4 || (t == 2 && (r == 1 || r == nr - 1))) {
            rows[k] = (int32_t)r;
            for (int64_t j = 0; j < dim; j++) {
              float gv = (float)(tops_u01((uint64_t)t, (uint64_t)(r * dim + j)) - 0.5);
              dense[r * dim + j] = grad[k * dim + j] = gv;
            }
            k++;
          }
        T_OK(tops_ops()->adam_table_dense(tops_st(), tab, nr, dim, rows, grad, k, m, v, 0.01f,
                                          0.9f, 0.999f, 1e-8f, l2, t));
        T_OK(tops_ops()->adam_dense(tops_st(), tab2 + dim, dense + dim, m2 + dim, v2 + dim,
                                    n - dim, 0.01f, 0.9f, 0.999f, 1e-8f, l2, t));
      }
      tops_check_same("adam_table_dense table", tab + dim, tab2 + dim, n - dim);
      tops_check_same("adam_table_dense m", m + dim, m2 + dim, n - dim);
      tops_check_same("adam_table_dense v", v + dim, v2 + dim, n - dim);
      tops_check_same("adam_table_dense row 0", tab, row0, dim);
      for (int64_t j = 0; j < dim; j++) T_ASSERT(m[j] == 0.0f && v[j] == 0.0f);
      free(tab), free(m), free(v), free(tab2), free(m2), free(v2), free(row0), free(rows);
      free(grad), free(dense);
    }
}

/* the vector paths (AVX-512 / SSE2 where present) and the scalar tail give the same bits */
void test_ops_optim__adam_paths_agree(void) {
  const int64_t n = 53;
  float *p = tops_randf(1, n, -1, 1), *g = tops_randf(2, n, -1, 1);
  float *m = tops_randf(3, n, -0.1f, 0.1f), *v = tops_randf(4, n, 0, 0.01f);
  float *p2 = tops_dupf(p, n), *m2 = tops_dupf(m, n), *v2 = tops_dupf(v, n);
  T_OK(tops_ops()->adam_dense(tops_st(), p, g, m, v, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 1e-3f, 5));
  for (int64_t i = 0; i < n; i++)   /* one element at a time: the scalar path */
    T_OK(tops_ops()->adam_dense(tops_st(), p2 + i, g + i, m2 + i, v2 + i, 1, 1e-2f, 0.9f,
                                0.999f, 1e-8f, 1e-3f, 5));
  tops_check_same("adam p", p, p2, n);
  tops_check_same("adam m", m, m2, n);
  tops_check_same("adam v", v, v2, n);
  free(p), free(g), free(m), free(v), free(p2), free(m2), free(v2);
}
