/* CPU backend: LayerNorm. */
#include <math.h>

#include "util.h"

static void ref_ln(const double *x, const double *g, const double *b, int64_t m, int64_t n,
                   double eps, double *y) {
  for (int64_t i = 0; i < m; i++) {
    double mu = 0.0, v = 0.0;
    for (int64_t j = 0; j < n; j++) mu += x[i * n + j];
    mu /= (double)n;
    for (int64_t j = 0; j < n; j++) v += (x[i * n + j] - mu) * (x[i * n + j] - mu);
    v /= (double)n;
    for (int64_t j = 0; j < n; j++)
      y[i * n + j] = (x[i * n + j] - mu) / sqrt(v + eps) * g[j] + b[j];
  }
}

typedef struct { int64_t m, n; double eps; const double *w; double *x, *g, *b, *y; } ln_u;
static double ln_loss(void *p) {
  ln_u *u = p;
  ref_ln(u->x, u->g, u->b, u->m, u->n, u->eps, u->y);
  double l = 0.0;
  for (int64_t i = 0; i < u->m * u->n; i++) l += u->w[i] * u->y[i];
  return l;
}

void test_ops_norm__layernorm(void) {
  static const int64_t shapes[][2] = {{1, 5}, {3, 1}, {7, 33}, {300, 16}, {2, 100}};
  const float eps = 1e-5f;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t m = shapes[s][0], n = shapes[s][1], mn = m * n;
    float *x = tops_randf(1 + s, mn, -2, 3), *g = tops_randf(2 + s, n, 0.5f, 1.5f);
    float *b = tops_randf(3 + s, n, -1, 1), *y = malloc((size_t)mn * sizeof(float));
    float *save = malloc((size_t)(2 * m) * sizeof(float));
    double *xd = tops_tod(x, mn), *gd = tops_tod(g, n), *bd = tops_tod(b, n);
    double *yd = malloc((size_t)mn * sizeof(double));
    ref_ln(xd, gd, bd, m, n, eps, yd);
    T_OK(tops_ops()->layernorm_fwd(tops_st(), x, y, m, n, g, b, eps, save));
    tops_check_close("layernorm_fwd", y, yd, mn, 1e-4, 1e-5);
    float *w = tops_randf(4 + s, mn, -1, 1), *dx = malloc((size_t)mn * sizeof(float));
    float *dg = tops_randf(5 + s, n, -1, 1), *db = tops_randf(6 + s, n, -1, 1);
    float *dg0 = tops_dupf(dg, n), *db0 = tops_dupf(db, n);
    T_OK(tops_ops()->layernorm_bwd(tops_st(), x, w, dx, m, n, g, dg, db, save));
    for (int64_t j = 0; j < n; j++) dg[j] -= dg0[j], db[j] -= db0[j];   /* accumulated */
    double *wd = tops_tod(w, mn);
    ln_u u = {m, n, eps, wd, xd, gd, bd, yd};
    tops_fd_check("layernorm dx", ln_loss, &u, xd, mn, dx, 2e-3, 2e-4, 80);
    tops_fd_check("layernorm dgamma", ln_loss, &u, gd, n, dg, 1e-3, 1e-4, 80);
    tops_fd_check("layernorm dbeta", ln_loss, &u, bd, n, db, 1e-3, 1e-4, 80);
    free(x), free(g), free(b), free(y), free(save), free(xd), free(gd), free(bd), free(yd);
    free(w), free(dx), free(dg), free(db), free(dg0), free(db0), free(wd);
  }
}
