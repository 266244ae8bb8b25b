/* The CPU backend: Caser's convolutional read-out (Tang and Wang, WSDM 2018, section 3.2) over
 * the last l positions of the behaviour history; ops.h "Caser read-out" has the semantics.
 *
 * The sizes are small (Caser's l is about 5, a few filters), so both directions are plain loops:
 * the forward writes each row's outputs on one thread; the backward adds each row's input
 * gradient on one thread and reduces the parameter gradient over fixed row chunks (cpu_chunks),
 * each chunk into its own partial, summed in chunk order. So every result is bit-identical
 * whatever the thread count. */
#include <string.h>

#include "cpu.h"

static int32_t caser_check(cpu_state *st, const char *op, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, int32_t l, int32_t nv, int32_t nh, int64_t ldo) {
  if (d < 0 || l < 1 || l > t || nv < 0 || nh < 0)
    return ameir__error(st->ctx, AMEIR_EINVAL,
                        "cpu %s: bad shape d=%lld l=%d (1 to t=%lld) nv=%d nh=%d", op,
                        (long long)d, (int)l, (long long)t, (int)nv, (int)nh);
  if (ldo < ameir__caser_width(l, d, nv, nh))
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: row stride %lld < the row width %lld", op,
                        (long long)ldo, (long long)ameir__caser_width(l, d, nv, nh));
  int64_t n;
  return cpu_seq_total(st, op, len, b, t, &n);
}

/* The window of row r: E[j] = the row's position len - l + j, or NULL (zeros) before the row. */
static const float *slot(const float *x, const int32_t *len, int64_t t, int64_t d, int32_t l,
                         int64_t r, int64_t j) {
  int64_t pos = (int64_t)len[r] - l + j;
  return pos >= 0 ? x + (r * t + pos) * d : NULL;
}

/* z_{h,n,i} of ops.h (without the bias) */
static float hconv(const float *x, const int32_t *len, int64_t t, int64_t d, int32_t l, int64_t r,
                   const float *w, int32_t h, int64_t i) {
  float z = 0.0f;
  for (int32_t j = 0; j < h; j++) {
    const float *e = slot(x, len, t, d, l, r, i + j);
    if (e) z += cpu_dot(w + j * d, e, d);
  }
  return z;
}

static void caser_fwd_rows(const float *x, const int32_t *len, int64_t t, int64_t d, int32_t l,
                           int32_t nv, int32_t nh, const float *p, float *out, int64_t ldo,
                           int32_t *save, int64_t lo, int64_t hi) {
  const float *bh = p + (int64_t)nh * d * l * (l + 1) / 2, *wv = bh + (int64_t)l * nh, *bv = wv + (int64_t)nv * l;
  for (int64_t r = lo; r < hi; r++) {
    float *o = out + r * ldo;
    const float *w = p;
    for (int32_t h = 1; h <= l; h++)
      for (int32_t n = 0; n < nh; n++, w += (int64_t)h * d) {
        const int32_t k = (h - 1) * nh + n;
        float best = 0.0f;
        int32_t arg = 0;
        for (int32_t i = 0; i + h <= l; i++) {
          float z = hconv(x, len, t, d, l, r, w, h, i) + bh[k];
          if (i == 0 || z > best) { best = z; arg = i; }   /* ties: the first maximum */
        }
        o[k] = best > 0.0f ? best : 0.0f;
        if (save) save[r * l * nh + k] = best > 0.0f ? arg : -1;
      }
    float *ov = o + (int64_t)l * nh;
    for (int32_t n = 0; n < nv; n++) {
      float *v = ov + n * d;
      for (int64_t c = 0; c < d; c++) v[c] = bv[n];
      for (int32_t j = 0; j < l; j++) {
        const float *e = slot(x, len, t, d, l, r, j);
        const float a = wv[n * l + j];
        if (e)
#pragma omp simd
          for (int64_t c = 0; c < d; c++) v[c] += a * e[c];
      }
    }
  }
}

int32_t ameir__cpu_caser_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                             int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p, float *out,
                             int64_t ldo, int32_t *save) {
  cpu_state *st = s;
  int32_t rc = caser_check(st, "caser_fwd", len, b, t, d, l, nv, nh, ldo);
  if (rc) return rc;
  int nt = cpu_nt_items(st, b * ameir__caser_params(l, d, nv, nh), b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, caser_fwd_rows(x, len, t, d, l, nv, nh, p, out, ldo, save, lo, hi));
  return 0;
}

/* Chunks [c0, c1) of nc over the b rows: dx of each row (+=) and the chunk's partial of dp
 * (part[c * np ..]), rows in ascending order. */
static void caser_bwd_chunks(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t d,
                             int32_t l, int32_t nv, int32_t nh, const float *p, const float *dout,
                             int64_t lddo, const int32_t *save, float *dx, int64_t nc, int64_t c0,
                             int64_t c1, float *part) {
  const int64_t np = ameir__caser_params(l, d, nv, nh), nw = (int64_t)nh * d * l * (l + 1) / 2;
  const float *wv = p + nw + (int64_t)l * nh;
  for (int64_t c = c0; c < c1; c++) {
    int64_t lo, hi;
    cpu_chunk_range(b, nc, c, &lo, &hi);
    float *g = part + c * np, *gbh = g + nw, *gwv = gbh + (int64_t)l * nh, *gbv = gwv + (int64_t)nv * l;
    memset(g, 0, sizeof(float) * (size_t)np);
    for (int64_t r = lo; r < hi; r++) {
      const float *go = dout + r * lddo;
      int64_t woff = 0;
      for (int32_t h = 1; h <= l; h++)
        for (int32_t n = 0; n < nh; n++, woff += (int64_t)h * d) {
          const int32_t k = (h - 1) * nh + n, i = save[r * l * nh + k];
          const float gk = go[k];
          if (i < 0) continue;
          gbh[k] += gk;
          for (int32_t j = 0; j < h; j++) {
            const float *e = slot(x, len, t, d, l, r, i + j);
            if (!e) continue;
            float *gx = dx + (e - x), *gw = g + woff + j * d;
            const float *w = p + woff + j * d;
#pragma omp simd
            for (int64_t q = 0; q < d; q++) {
              gw[q] += gk * e[q];
              gx[q] += gk * w[q];
            }
          }
        }
      const float *gv = go + (int64_t)l * nh;
      for (int32_t n = 0; n < nv; n++) {
        gbv[n] += cpu_sum(gv + n * d, d);
        for (int32_t j = 0; j < l; j++) {
          const float *e = slot(x, len, t, d, l, r, j);
          if (!e) continue;
          gwv[n * l + j] += cpu_dot(gv + n * d, e, d);
          float *gx = dx + (e - x);
          const float a = wv[n * l + j];
#pragma omp simd
          for (int64_t q = 0; q < d; q++) gx[q] += a * gv[n * d + q];
        }
      }
    }
  }
}

int32_t ameir__cpu_caser_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                             int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p,
                             const float *dout, int64_t lddo, const int32_t *save, float *dx,
                             float *dp) {
  cpu_state *st = s;
  int32_t rc = caser_check(st, "caser_bwd", len, b, t, d, l, nv, nh, lddo);
  if (rc) return rc;
  if (b == 0) return 0;
  if (!save) return ameir__error(st->ctx, AMEIR_EINVAL, "cpu caser_bwd: no save buffer (the forward's argmaxes)");
  const int64_t np = ameir__caser_params(l, d, nv, nh), nc = cpu_chunks(b);
  float *part = cpu_scratch_get(st, (size_t)(nc * np) * sizeof(float));
  if (!part) return cpu_scratch_status();
  int nt = cpu_nt_items(st, b * np, nc);
  CPU_PAR_RANGE(nt, nc, c0, c1, tid,
                caser_bwd_chunks(x, len, b, t, d, l, nv, nh, p, dout, lddo, save, dx, nc, c0, c1, part));
  for (int64_t c = 1; c < nc; c++) {
    const float *pc = part + c * np;
#pragma omp simd
    for (int64_t j = 0; j < np; j++) part[j] += pc[j];
  }
  for (int64_t j = 0; j < np; j++) dp[j] += part[j];
  cpu_scratch_put(st, part);
  return 0;
}
