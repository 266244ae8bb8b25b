#include "metrics.h"

#include <math.h>
#include <stdlib.h>

typedef struct { float p; float y; } pair;

static int cmp_pair(const void *a, const void *b) {
  float x = ((const pair *)a)->p, z = ((const pair *)b)->p;
  return (x > z) - (x < z);
}

double ameir__auc(const float *y, const float *p, int64_t n) {
  if (n <= 0) return NAN;
  pair *v = malloc(sizeof *v * (size_t)n);
  if (!v) return -2;
  double npos = 0;
  for (int64_t i = 0; i < n; i++) { v[i].p = p[i]; v[i].y = y[i]; npos += y[i] > 0.5f; }
  double nneg = (double)n - npos;
  if (npos == 0 || nneg == 0) { free(v); return NAN; }
  qsort(v, (size_t)n, sizeof *v, cmp_pair);
  /* sum of the (1-based, tie-averaged) ranks of the positives */
  double rank_sum = 0;
  int64_t i = 0;
  while (i < n) {
    int64_t j = i;
    double pos = 0;
    while (j < n && v[j].p == v[i].p) { pos += v[j].y > 0.5f; j++; }
    double avg = (double)(i + j - 1) / 2.0 + 1.0;
    rank_sum += pos * avg;
    i = j;
  }
  free(v);
  return (rank_sum - npos * (npos + 1) / 2.0) / (npos * nneg);
}

double ameir__logloss(const float *y, const float *p, int64_t n) {
  if (n <= 0) return NAN;
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    double q = p[i];
    if (q < 1e-7) q = 1e-7;
    if (q > 1 - 1e-7) q = 1 - 1e-7;
    s += y[i] > 0.5f ? -log(q) : -log(1 - q);
  }
  return s / (double)n;
}
