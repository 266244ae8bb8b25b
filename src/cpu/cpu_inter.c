/* The CPU backend: Stage 2 interactions (Hadamard products of field embeddings, AMEIR section
 * 3.3) and the FM second-order term (Rendle 2010). Every op is parallel over samples: each
 * sample's outputs and gradients are written by one thread in a fixed order. */
#include <string.h>

#include "cpu.h"

#define KB 256   /* embedding-dimension block for stack temporaries */

static int32_t check_inter(cpu_state *st, const char *op, const int32_t *fields,
                           const int32_t *order, int64_t n_inter, int64_t max_order) {
  for (int64_t i = 0; i < n_inter; i++) {
    if (order[i] < 1 || order[i] > max_order)
      return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: order[%lld] = %d not in [1, %lld]", op,
                          (long long)i, (int)order[i], (long long)max_order);
    for (int32_t o = 0; o < order[i]; o++)
      if (fields[i * max_order + o] < 0)
        return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: interaction %lld: field %d < 0", op,
                            (long long)i, (int)fields[i * max_order + o]);
  }
  return 0;
}

static void hadamard_range(const float *e, int64_t lde, int64_t k, const int32_t *fields,
                           const int32_t *order, int64_t n_inter, int64_t max_order, float *out,
                           int64_t ldo, int64_t lo, int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++) {
    const float *eb = e + bb * lde;
    for (int64_t i = 0; i < n_inter; i++) {
      const int32_t *fs = fields + i * max_order;
      float *o = out + bb * ldo + i * k;
      memcpy(o, eb + (int64_t)fs[0] * k, (size_t)k * sizeof(float));
      for (int32_t t = 1; t < order[i]; t++) {
        const float *ef = eb + (int64_t)fs[t] * k;
#pragma omp simd
        for (int64_t j = 0; j < k; j++) o[j] *= ef[j];
      }
    }
  }
}

int32_t ameir__cpu_hadamard_fwd(void *s, const float *e, int64_t lde, int64_t b, int64_t k,
                                const int32_t *fields, const int32_t *order, int64_t n_inter,
                                int64_t max_order, float *out, int64_t ldo) {
  cpu_state *st = s;
  int32_t rc = check_inter(st, "hadamard_fwd", fields, order, n_inter, max_order);
  if (rc) return rc;
  int nt = cpu_nt_items(st, b * n_inter * k * max_order, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid,
                hadamard_range(e, lde, k, fields, order, n_inter, max_order, out, ldo, lo, hi));
  return 0;
}

/* de[f_t] += dout * prod_{t' != t} e[f_t'] for every position t (a field repeated in one
 * interaction gets one term per occurrence, which is the product rule). */
int32_t ameir__cpu_hadamard_bwd(void *s, const float *e, int64_t lde, int64_t b, int64_t k,
                                const int32_t *fields, const int32_t *order, int64_t n_inter,
                                int64_t max_order, const float *dout, int64_t lddo, float *de) {
  cpu_state *st = s;
  int32_t rc = check_inter(st, "hadamard_bwd", fields, order, n_inter, max_order);
  if (rc) return rc;
  int nt = cpu_nt(st, b * n_inter * k * max_order * max_order);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t bb = 0; bb < b; bb++) {
    const float *eb = e + bb * lde;
    float *deb = de + bb * lde;
    float tmp[KB];
    for (int64_t i = 0; i < n_inter; i++) {
      const int32_t *fs = fields + i * max_order;
      const float *d = dout + bb * lddo + i * k;
      for (int32_t t = 0; t < order[i]; t++) {
        float *g = deb + (int64_t)fs[t] * k;
        for (int64_t j0 = 0; j0 < k; j0 += KB) {
          int64_t nb = k - j0 < KB ? k - j0 : KB;
          for (int64_t j = 0; j < nb; j++) tmp[j] = d[j0 + j];
          for (int32_t u = 0; u < order[i]; u++) {
            if (u == t) continue;
            const float *ef = eb + (int64_t)fs[u] * k + j0;
#pragma omp simd
            for (int64_t j = 0; j < nb; j++) tmp[j] *= ef[j];
          }
#pragma omp simd
          for (int64_t j = 0; j < nb; j++) g[j0 + j] += tmp[j];
        }
      }
    }
  }
  return 0;
}

static void fm_range(const float *e, int64_t lde, int64_t f, int64_t k, float *out,
                     int32_t accumulate, int64_t lo, int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++) {
    const float *eb = e + bb * lde;
    float sum[KB], sq[KB];
    float tot = 0.0f;
    for (int64_t j0 = 0; j0 < k; j0 += KB) {
      int64_t nb = k - j0 < KB ? k - j0 : KB;
      for (int64_t j = 0; j < nb; j++) sum[j] = sq[j] = 0.0f;
      for (int64_t ff = 0; ff < f; ff++) {
        const float *x = eb + ff * k + j0;
#pragma omp simd
        for (int64_t j = 0; j < nb; j++) {
          sum[j] += x[j];
          sq[j] += x[j] * x[j];
        }
      }
      for (int64_t j = 0; j < nb; j++) sum[j] = sum[j] * sum[j] - sq[j];
      tot += cpu_sum(sum, nb);
    }
    out[bb] = accumulate ? out[bb] + 0.5f * tot : 0.5f * tot;
  }
}

/* out[b] = 0.5 sum_k ((sum_f e)^2 - sum_f e^2) */
int32_t ameir__cpu_fm_fwd(void *s, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                          float *out, int32_t accumulate) {
  cpu_state *st = s;
  int nt = cpu_nt_items(st, b * f * k, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, fm_range(e, lde, f, k, out, accumulate, lo, hi));
  return 0;
}

/* de[b,f,k] += dout[b] (sum_f' e[b,f',k] - e[b,f,k]) */
int32_t ameir__cpu_fm_bwd(void *s, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                          const float *dout, float *de) {
  cpu_state *st = s;
  int nt = cpu_nt(st, b * f * k);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t bb = 0; bb < b; bb++) {
    const float *eb = e + bb * lde;
    float *deb = de + bb * lde;
    float g = dout[bb];
    float sum[KB];
    for (int64_t j0 = 0; j0 < k; j0 += KB) {
      int64_t nb = k - j0 < KB ? k - j0 : KB;
      for (int64_t j = 0; j < nb; j++) sum[j] = 0.0f;
      for (int64_t ff = 0; ff < f; ff++) {
        const float *x = eb + ff * k + j0;
#pragma omp simd
        for (int64_t j = 0; j < nb; j++) sum[j] += x[j];
      }
      for (int64_t ff = 0; ff < f; ff++) {
        const float *x = eb + ff * k + j0;
        float *d = deb + ff * k + j0;
#pragma omp simd
        for (int64_t j = 0; j < nb; j++) d[j] += g * (sum[j] - x[j]);
      }
    }
  }
  return 0;
}
