/* Initialisers of appendix D. */
#include <math.h>
#include <stdlib.h>

#include "test.h"
#include "core/model/init.h"

static void check_orthonormal(const float *w, int64_t rows, int64_t cols) {
  /* rows orthonormal when rows <= cols, else columns */
  int by_rows = rows <= cols;
  int64_t n = by_rows ? rows : cols, len = by_rows ? cols : rows;
  for (int64_t a = 0; a < n; a++)
    for (int64_t b = 0; b < n; b++) {
      double s = 0;
      for (int64_t k = 0; k < len; k++) {
        double x = by_rows ? w[a * cols + k] : w[k * cols + a];
        double y = by_rows ? w[b * cols + k] : w[k * cols + b];
        s += x * y;
      }
      T_ASSERT_NEAR(s, a == b ? 1.0 : 0.0, 1e-5);
    }
}

void test_model_init__orthogonal(void) {
  ameir__rng r;
  ameir__rng_seed(&r, 3, 0);
  int64_t shapes[][2] = {{8, 8}, {12, 4}, {4, 12}, {1, 5}, {96, 32}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int64_t rows = shapes[s][0], cols = shapes[s][1];
    float *w = malloc(sizeof(float) * (size_t)(rows * cols));
    T_OK(ameir__init_orthogonal(&r, w, rows, cols, 1.0));
    check_orthonormal(w, rows, cols);
    free(w);
  }
}

void test_model_init__moments(void) {
  ameir__rng r;
  ameir__rng_seed(&r, 4, 0);
  const int64_t n = 200000;
  float *p = malloc(sizeof(float) * (size_t)n);
  ameir__init_uniform(&r, p, n, 0.05);
  double mx = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) { if (fabs(p[i]) > mx) mx = fabs(p[i]); s2 += (double)p[i] * p[i]; }
  T_ASSERT(mx <= 0.05);
  T_ASSERT_NEAR(s2 / n, 0.05 * 0.05 / 3, 2e-5);
  ameir__init_he_normal(&r, p, 1000, 200);
  s2 = 0;
  for (int64_t i = 0; i < n; i++) s2 += (double)p[i] * p[i];
  T_ASSERT_NEAR(s2 / n, 2.0 / 200, 2e-4);
  free(p);
}
