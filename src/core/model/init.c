#include "init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ameir__init_uniform(ameir__rng *r, float *p, int64_t n, double bound) {
  for (int64_t i = 0; i < n; i++) p[i] = (float)((2.0 * ameir__rng_uniform(r) - 1.0) * bound);
}

void ameir__init_normal(ameir__rng *r, float *p, int64_t n, double std) {
  for (int64_t i = 0; i < n; i++) p[i] = (float)(ameir__rng_normal(r) * std);
}

void ameir__init_he_normal(ameir__rng *r, float *w, int64_t rows, int64_t fan_in) {
  ameir__init_normal(r, w, rows * fan_in, sqrt(2.0 / (double)(fan_in > 0 ? fan_in : 1)));
}

/* Householder QR of a tall m x n (m >= n) matrix a (row-major, double); writes the thin Q
 * (m x n) into q with column signs fixed by sign(diag(R)). */
static void thin_q(double *a, int64_t m, int64_t n, double *q) {
  double *v = malloc(sizeof(double) * (size_t)m), *diag = malloc(sizeof(double) * (size_t)n);
  double *vs = malloc(sizeof(double) * (size_t)(m * n));   /* Householder vectors */
  double *beta = malloc(sizeof(double) * (size_t)n);
  if (!v || !diag || !vs || !beta) { free(v); free(diag); free(vs); free(beta); memset(q, 0, sizeof(double) * (size_t)(m * n)); return; }
  for (int64_t k = 0; k < n; k++) {
    double norm = 0;
    for (int64_t i = k; i < m; i++) norm += a[i * n + k] * a[i * n + k];
    norm = sqrt(norm);
    double alpha = a[k * n + k] > 0 ? -norm : norm;
    for (int64_t i = 0; i < m; i++) v[i] = i < k ? 0 : a[i * n + k];
    v[k] -= alpha;
    double vv = 0;
    for (int64_t i = k; i < m; i++) vv += v[i] * v[i];
    beta[k] = vv > 0 ? 2.0 / vv : 0;
    for (int64_t j = k; j < n; j++) {
      double s = 0;
      for (int64_t i = k; i < m; i++) s += v[i] * a[i * n + j];
      s *= beta[k];
      for (int64_t i = k; i < m; i++) a[i * n + j] -= s * v[i];
    }
    diag[k] = a[k * n + k];
    memcpy(vs + k * m, v, sizeof(double) * (size_t)m);
  }
  /* Q = H_0 H_1 ... H_{n-1} applied to the first n columns of the identity */
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) q[i * n + j] = i == j ? 1.0 : 0.0;
  for (int64_t k = n - 1; k >= 0; k--) {
    const double *vk = vs + k * m;
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t i = k; i < m; i++) s += vk[i] * q[i * n + j];
      s *= beta[k];
      for (int64_t i = k; i < m; i++) q[i * n + j] -= s * vk[i];
    }
  }
  for (int64_t j = 0; j < n; j++)
    if (diag[j] < 0)
      for (int64_t i = 0; i < m; i++) q[i * n + j] = -q[i * n + j];
  free(v); free(diag); free(vs); free(beta);
}

ameir_status ameir__init_orthogonal(ameir__rng *r, float *w, int64_t rows, int64_t cols, double gain) {
  int64_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
  double *a = malloc(sizeof(double) * (size_t)(m * n)), *q = malloc(sizeof(double) * (size_t)(m * n));
  if (!a || !q) { free(a); free(q); return AMEIR_ENOMEM; }
  for (int64_t i = 0; i < m * n; i++) a[i] = ameir__rng_normal(r);
  thin_q(a, m, n, q);   /* q: m x n with orthonormal columns */
  if (rows >= cols) {
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)(gain * q[i]);
  } else {   /* wide: the transpose has orthonormal rows */
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++) w[i * cols + j] = (float)(gain * q[j * n + i]);
  }
  free(a);
  free(q);
  return AMEIR_OK;
}
