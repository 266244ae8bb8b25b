/* The CPU backend: embedding sum lookup and its sparse row gradient. */
#include <stdint.h>
#include <string.h>

#include "cpu.h"

#define EMB_PREFETCH 16   /* pairs ahead */

static void emb_sum_rows(const float *table, int64_t dim, const int32_t *rows, int64_t len,
                         float *out, int64_t ldo, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float *o = out + i * ldo;
    const int32_t *ri = rows + i * len;
    int64_t l = 0;
    /* the first valid row is copied, the others added: no separate zeroing pass */
    while (l < len && ri[l] <= 0) l++;
    if (l == len) {
      memset(o, 0, (size_t)dim * sizeof(float));
      continue;
    }
    memcpy(o, table + (int64_t)ri[l] * dim, (size_t)dim * sizeof(float));
    for (l++; l < len; l++) {
      if (ri[l] <= 0) continue;
      const float *t = table + (int64_t)ri[l] * dim;
#pragma omp simd
      for (int64_t j = 0; j < dim; j++) o[j] += t[j];
    }
  }
}

/* Row ids <= 0 are padding (0 by contract; negative ids are never valid and are skipped rather
 * than read out of bounds). */
static void emb_fields_rows(const float *table, int64_t dim, const int32_t *rows, int64_t n, int64_t f,
                            float *out, int64_t ldo, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++)
    for (int64_t j = 0; j < f; j++) {
      int32_t r = rows[j * n + i];
      float *o = out + i * ldo + j * dim;
      if (r > 0) memcpy(o, table + (int64_t)r * dim, (size_t)dim * sizeof(float));
      else memset(o, 0, (size_t)dim * sizeof(float));
    }
}

int32_t ameir__cpu_emb_fields_fwd(void *s, const float *table, int64_t dim, const int32_t *rows, int64_t n,
                                  int64_t f, float *out, int64_t ldo) {
  cpu_state *st = s;
  if (n <= 0 || dim <= 0 || f <= 0) return 0;
  int nt = cpu_nt_items(st, n * f * dim, n);
  CPU_PAR_RANGE(nt, n, lo, hi, tid, emb_fields_rows(table, dim, rows, n, f, out, ldo, lo, hi));
  return 0;
}

int32_t ameir__cpu_emb_sum_fwd(void *s, const float *table, int64_t dim, const int32_t *rows,
                               int64_t n, int64_t len, float *out, int64_t ldo) {
  cpu_state *st = s;
  if (n <= 0 || dim <= 0) return 0;
  int nt = cpu_nt_items(st, n * len * dim, n);
  CPU_PAR_RANGE(nt, n, lo, hi, tid, emb_sum_rows(table, dim, rows, len, out, ldo, lo, hi));
  return 0;
}

/* Stable LSD radix sort of keys (row << 32 | payload) on the row bits only; the keys enter
 * in ascending pair index, so stability keeps each row's pairs in ascending pair order (the
 * payload is the pair's dout row, not its index: one indirection less in the gather).
 * Returns the buffer (a or b) that holds the result. */
static uint64_t *radix_sort_rows(uint64_t *a, uint64_t *b, int64_t nk, uint32_t max_row) {
  int bits = 0;
  while (bits < 32 && (max_row >> bits) != 0) bits++;
  if (bits == 0) return a;
  int passes = (bits + 11) / 12;
  int dbits = (bits + passes - 1) / passes;
  uint32_t mask = (1u << dbits) - 1u;
  int64_t hist[1 << 12];
  for (int p = 0; p < passes; p++) {
    int shift = 32 + p * dbits;
    int nb = (int)mask + 1;
    memset(hist, 0, (size_t)nb * sizeof hist[0]);
    for (int64_t i = 0; i < nk; i++) hist[(a[i] >> shift) & mask]++;
    int64_t sum = 0;
    for (int d = 0; d < nb; d++) {
      int64_t h = hist[d];
      hist[d] = sum;
      sum += h;
    }
    for (int64_t i = 0; i < nk; i++) b[hist[(a[i] >> shift) & mask]++] = a[i];
    uint64_t *t = a;
    a = b;
    b = t;
  }
  return a;
}

int32_t ameir__cpu_emb_grad_rows(void *s, const int32_t *rows, const int32_t *src_index,
                                 int64_t count, const float *dout, int64_t lddo, int64_t dim,
                                 int32_t *uniq_rows, float *grad, int64_t *n_uniq) {
  cpu_state *st = s;
  *n_uniq = 0;
  if (count <= 0) return 0;
  if (count > INT32_MAX)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu emb_grad_rows: count %lld too large",
                        (long long)count);
  size_t kb = (size_t)count * sizeof(uint64_t);
  size_t sb = (size_t)(count + 1) * sizeof(uint32_t);
  uint8_t *buf = cpu_scratch_get(st, 2 * kb + sb);
  if (!buf) return cpu_scratch_status();
  uint64_t *ka = (uint64_t *)buf, *kb2 = (uint64_t *)(buf + kb);
  uint32_t *seg = (uint32_t *)(buf + 2 * kb);

  int64_t nk = 0;
  uint32_t max_row = 0;
  for (int64_t i = 0; i < count; i++) {
    int32_t r = rows[i];
    if (r <= 0) continue;
    if (src_index[i] < 0) {
      cpu_scratch_put(st, buf);
      return ameir__error(st->ctx, AMEIR_EINVAL, "cpu emb_grad_rows: src_index[%lld] = %d < 0",
                          (long long)i, (int)src_index[i]);
    }
    if ((uint32_t)r > max_row) max_row = (uint32_t)r;
    ka[nk++] = ((uint64_t)(uint32_t)r << 32) | (uint64_t)(uint32_t)src_index[i];
  }
  const uint64_t *key = radix_sort_rows(ka, kb2, nk, max_row);

  /* segments of equal rows */
  int64_t nu = 0;
  for (int64_t i = 0; i < nk; i++) {
    uint32_t r = (uint32_t)(key[i] >> 32);
    if (i == 0 || r != (uint32_t)(key[i - 1] >> 32)) {
      uniq_rows[nu] = (int32_t)r;
      seg[nu++] = (uint32_t)i;
    }
  }
  seg[nu] = (uint32_t)nk;

  /* one thread per segment, pairs summed in ascending pair order; interleaved static chunks
   * spread frequent rows over the threads. The dout rows are read in row order, i.e. at
   * random: prefetch a few pairs ahead. */
  int nt = cpu_nt(st, nk * dim);
#pragma omp parallel for num_threads(nt) schedule(static, 16)
  for (int64_t u = 0; u < nu; u++) {
    float *g = grad + u * dim;
    uint32_t lo = seg[u], hi = seg[u + 1];
    for (uint32_t p = lo; p < hi; p++) {
      int64_t ahead = (int64_t)p + EMB_PREFETCH < nk ? (int64_t)p + EMB_PREFETCH : nk - 1;
      __builtin_prefetch(dout + (int64_t)(uint32_t)key[ahead] * lddo);
      const float *d = dout + (int64_t)(uint32_t)key[p] * lddo;
      if (p == lo) {
#pragma omp simd
        for (int64_t j = 0; j < dim; j++) g[j] = d[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < dim; j++) g[j] += d[j];
      }
    }
  }
  *n_uniq = nu;
  cpu_scratch_put(st, buf);
  return 0;
}
