/* The CPU backend: Stage 1 sequence ops without recurrence or attention: the packed-layout
 * helpers, the padding mask, 1-D convolution, kernel-3 pooling, the sum/last read-outs and the
 * retrieval head's row dot products.
 *
 * Every op treats positions >= len as absent (ops.h): the packed layout (cpu.h) holds the valid
 * rows only, so a GEMM over it never reads padding. Work is split over samples with static
 * schedules; no float reduction crosses samples except the parameter gradients, which go
 * through sgemm or fixed-chunk column sums. */
#include <string.h>

#include "cpu.h"

/* ---- packed layout ---- */

int32_t cpu_seq_total(cpu_state *st, const char *op, const int32_t *len, int64_t b, int64_t t,
                      int64_t *n) {
  *n = 0;
  if (b < 0 || t < 0)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: bad shape b=%lld t=%lld", op,
                        (long long)b, (long long)t);
  int64_t tot = 0, bad = -1;
  for (int64_t i = 0; i < b; i++) {
    if (len[i] < 0 || len[i] > t) bad = i;
    tot += len[i];
  }
  if (bad >= 0)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: len[%lld] = %d outside [0, %lld]", op,
                        (long long)bad, (int)len[bad], (long long)t);
  *n = tot;
  return 0;
}

void cpu_seq_base(const int32_t *len, int64_t b, int64_t *base) {
  base[0] = 0;
  for (int64_t i = 0; i < b; i++) base[i + 1] = base[i] + len[i];
}

static void seq_pack_range(const float *x, const int32_t *len, const int64_t *base, int64_t t,
                           int64_t d, float *xp, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++)
    if (len[i] > 0)
      memcpy(xp + base[i] * d, x + i * t * d, (size_t)((int64_t)len[i] * d) * sizeof(float));
}

void cpu_seq_pack(cpu_state *st, const float *x, const int32_t *len, const int64_t *base, int64_t b,
                  int64_t t, int64_t d, float *xp) {
  int nt = cpu_nt_items(st, base[b] * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, seq_pack_range(x, len, base, t, d, xp, lo, hi));
}

/* samples [lo, hi): their packed rows at y's positions (unless already there), zeros after */
static void seq_unpack_range(const float *yp, const int32_t *len, const int64_t *base, int64_t t,
                             int64_t d, float *y, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    int64_t l = len[i];
    float *yr = y + i * t * d;
    if (l > 0 && yr != yp + base[i] * d)
      memcpy(yr, yp + base[i] * d, (size_t)(l * d) * sizeof(float));
    if (l < t) memset(yr + l * d, 0, (size_t)((t - l) * d) * sizeof(float));
  }
}

void cpu_seq_unpack(cpu_state *st, const float *yp, const int32_t *len, const int64_t *base,
                    int64_t b, int64_t t, int64_t d, float *y) {
  int nt = cpu_nt_items(st, b * t * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, seq_unpack_range(yp, len, base, t, d, y, lo, hi));
}

void cpu_seq_order(const int32_t *len, int64_t b, int64_t t, int64_t *cnt, int32_t *ord) {
  /* counting sort, longest first, stable */
  for (int64_t l = 0; l <= t; l++) cnt[l] = 0;
  for (int64_t i = 0; i < b; i++) cnt[len[i]]++;
  int64_t pos = 0;
  for (int64_t l = t; l >= 0; l--) {
    int64_t c = cnt[l];
    cnt[l] = pos;
    pos += c;
  }
  for (int64_t i = 0; i < b; i++) ord[cnt[len[i]]++] = (int32_t)i;
}

/* ---- mask ---- */

static void seq_mask_range(float *y, const float *x, const int32_t *len, int64_t t, int64_t d,
                           int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    int64_t l = len[i];
    float *yr = y + i * t * d;
    if (l > 0 && yr != x + i * t * d)
      memmove(yr, x + i * t * d, (size_t)(l * d) * sizeof(float));
    if (l < t) memset(yr + l * d, 0, (size_t)((t - l) * d) * sizeof(float));
  }
}

int32_t ameir__cpu_seq_mask(void *s, float *y, const float *x, const int32_t *len, int64_t b,
                            int64_t t, int64_t d) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = cpu_seq_total(st, "seq_mask", len, b, t, &n);
  if (rc) return rc;
  if (y == x && n == b * t) return 0;   /* in place and no padding: nothing to do */
  int nt = cpu_nt_items(st, b * t * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, seq_mask_range(y, x, len, t, d, lo, hi));
  return 0;
}

/* ---- 1-D convolution ----
 * Layout: the packed rows with pad = (k-1)/2 * dil zero rows before, between and after the
 * samples ("separated" layout): sample b starts at row off_b = pad + base[b] + b * pad and the
 * rows R = pad + N + B * pad in all. A tap j with offset delta_j = (j - (k-1)/2) * dil then
 * reads row r + delta_j for every output row r: one GEMM per tap over all rows
 * [pad, R - pad) (the outputs on separator rows are computed and thrown away), and a window
 * that leaves a sample reads separator zeros, which is the SAME zero padding of ops.h. */

typedef struct {
  int64_t pad, rows;   /* separator width, rows of the separated layout */
  int direct;          /* pad == 0 and no padding positions: the layout is x itself */
} conv_geo;

static conv_geo conv_layout(const int32_t *len, int64_t b, int64_t t, int64_t n, int32_t k,
                            int32_t dil) {
  conv_geo g;
  AMEIR_UNUSED(len);
  g.pad = (int64_t)(k - 1) / 2 * dil;
  g.rows = g.pad + n + b * g.pad;
  g.direct = g.pad == 0 && n == b * t;
  return g;
}

static void conv_separate_range(const float *x, const int32_t *len, const int64_t *base, int64_t t,
                                int64_t d, int64_t pad, float *xs, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    float *o = xs + (base[i] + i * pad) * d;   /* the separator before sample i */
    if (pad) memset(o, 0, (size_t)(pad * d) * sizeof(float));
    if (len[i] > 0)
      memcpy(o + pad * d, x + i * t * d, (size_t)((int64_t)len[i] * d) * sizeof(float));
  }
}

/* xs (separated layout) from x: valid rows copied, separators zeroed. */
static void conv_separate(cpu_state *st, const float *x, const int32_t *len, const int64_t *base,
                          int64_t b, int64_t t, int64_t d, int64_t pad, float *xs) {
  int nt = cpu_nt_items(st, (base[b] + b * pad) * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, conv_separate_range(x, len, base, t, d, pad, xs, lo, hi));
  if (pad) memset(xs + (base[b] + b * pad) * d, 0, (size_t)(pad * d) * sizeof(float));
}

static void conv_gather_range(const float *ys, const int32_t *len, const int64_t *base, int64_t t,
                              int64_t d, int64_t pad, const float *bias, float *y, int64_t lo,
                              int64_t hi) {
  for (int64_t i = lo; i < hi; i++) {
    int64_t l = len[i];
    const float *src = ys + (pad + base[i] + i * pad) * d;
    float *yr = y + i * t * d;
    if (bias) {
      for (int64_t r = 0; r < l; r++) {
        const float *sr = src + r * d;
        float *o = yr + r * d;
#pragma omp simd
        for (int64_t c = 0; c < d; c++) o[c] = sr[c] + bias[c];
      }
    } else if (l > 0 && yr != src) {
      memmove(yr, src, (size_t)(l * d) * sizeof(float));
    }
    if (l < t) memset(yr + l * d, 0, (size_t)((t - l) * d) * sizeof(float));
  }
}

/* y[b, i] = ys[off_b + i] (+ bias) for i < len, 0 on padding. */
static void conv_gather(cpu_state *st, const float *ys, const int32_t *len, const int64_t *base,
                        int64_t b, int64_t t, int64_t d, int64_t pad, const float *bias,
                        float *y) {
  int nt = cpu_nt_items(st, b * t * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, conv_gather_range(ys, len, base, t, d, pad, bias, y, lo, hi));
}

/* wt[j][o][c] = w[o][c][j] (torch Conv1d layout [out, in, k] to one [out, in] matrix per tap) */
static void conv_split_taps(const float *w, int64_t d, int32_t k, float *wt) {
  for (int64_t o = 0; o < d; o++)   /* w read in order; each tap's rows written in order */
    for (int64_t c = 0; c < d; c++) {
      const float *wr = w + (o * d + c) * k;
      float *dst = wt + o * d + c;
      for (int32_t j = 0; j < k; j++) dst[(int64_t)j * d * d] = wr[j];
    }
}

/* Scratch bytes of conv1d_fwd: packed bases, the taps' matrices, and the separated layouts of
 * x and y unless the layout is x itself. */
static size_t conv_fwd_bytes(int64_t b, int64_t d, int32_t k, conv_geo g) {
  size_t fl = sizeof(float);
  size_t bytes = cpu_al((size_t)(b + 1) * sizeof(int64_t)) + cpu_al((size_t)k * d * d * fl);
  if (!g.direct) bytes += 2 * cpu_al((size_t)(g.rows * d) * fl);
  return bytes;
}

size_t cpu_conv1d_fwd_bound(int64_t b, int64_t t, int64_t d, int32_t k, int32_t dil) {
  if (b <= 0 || t <= 0 || d < 1 || k < 1 || dil < 1) return 0;   /* no scratch taken */
  conv_geo g = conv_layout(NULL, b, t, b * t, k, dil);   /* the most rows: every position valid */
  g.direct = 0;                                         /* and the copies a padded batch needs */
  return conv_fwd_bytes(b, d, k, g);
}

static int32_t conv_check(cpu_state *st, const char *op, int64_t d, int32_t k, int32_t dil) {
  if (k < 1 || k % 2 == 0 || dil < 1 || d < 1)
    return ameir__error(st->ctx, AMEIR_EINVAL,
                        "cpu %s: kernel %d (odd, >= 1), dilation %d (>= 1), d %lld (>= 1)", op,
                        (int)k, (int)dil, (long long)d);
  return 0;
}

int32_t ameir__cpu_conv1d_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                              int64_t d, const float *w, const float *bias, int32_t k, int32_t dil,
                              float *y) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = conv_check(st, "conv1d_fwd", d, k, dil);
  if (!rc) rc = cpu_seq_total(st, "conv1d_fwd", len, b, t, &n);
  if (rc || b == 0 || t == 0) return rc;
  conv_geo g = conv_layout(len, b, t, n, k, dil);
  size_t fl = sizeof(float);
  size_t bytes = conv_fwd_bytes(b, d, k, g);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * sizeof(int64_t));
  float *wt = cpu_carve(&cur, (size_t)k * d * d * fl);
  const float *xs = x;
  float *ys = y;
  cpu_seq_base(len, b, base);
  if (!g.direct) {
    float *xsw = cpu_carve(&cur, (size_t)(g.rows * d) * fl);
    ys = cpu_carve(&cur, (size_t)(g.rows * d) * fl);
    conv_separate(st, x, len, base, b, t, d, g.pad, xsw);
    xs = xsw;
  }
  const float *wk = w;
  if (k > 1) {
    conv_split_taps(w, d, k, wt);
    wk = wt;
  }
  int64_t m = g.rows - 2 * g.pad;
  for (int32_t j = 0; j < k && !rc; j++) {
    int64_t delta = (int64_t)(j - (k - 1) / 2) * dil;
    rc = ameir__cpu_gemm(st, 0, 1, m, d, d, 1.0f, xs + (g.pad + delta) * d, d, wk + j * d * d, d,
                         j ? 1.0f : 0.0f, ys + g.pad * d, d);
  }
  if (!rc) {
    if (g.direct) rc = ameir__cpu_add_bias(st, y, d, bias, b * t, d);
    else conv_gather(st, ys, len, base, b, t, d, g.pad, bias, y);
  }
  cpu_scratch_put(st, buf);
  return rc;
}

/* dx[r] = sum_j dy[r - delta_j] W_j; dW_j = sum_r dy[r]^T x[r + delta_j]; dbias = sum_r dy[r],
 * all in the separated layout, where the separators of dy are zero. */
int32_t ameir__cpu_conv1d_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                              int64_t d, const float *w, int32_t k, int32_t dil, const float *dy,
                              float *dx, float *dw, float *dbias) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = conv_check(st, "conv1d_bwd", d, k, dil);
  if (!rc) rc = cpu_seq_total(st, "conv1d_bwd", len, b, t, &n);
  if (rc || b == 0 || t == 0) return rc;
  conv_geo g = conv_layout(len, b, t, n, k, dil);
  size_t fl = sizeof(float);
  int64_t nch = cpu_chunks(g.rows);
  size_t bytes = cpu_al((size_t)(b + 1) * sizeof(int64_t)) + 2 * cpu_al((size_t)k * d * d * fl) +
                 cpu_al((size_t)(nch * d) * fl);
  if (!g.direct) bytes += 3 * cpu_al((size_t)(g.rows * d) * fl);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * sizeof(int64_t));
  float *wt = cpu_carve(&cur, (size_t)k * d * d * fl);
  float *dwt = cpu_carve(&cur, (size_t)k * d * d * fl);
  float *part = cpu_carve(&cur, (size_t)(nch * d) * fl);
  const float *xs = x, *dys = dy;
  float *dxs = dx;
  cpu_seq_base(len, b, base);
  if (!g.direct) {
    float *xsw = cpu_carve(&cur, (size_t)(g.rows * d) * fl);
    float *dysw = cpu_carve(&cur, (size_t)(g.rows * d) * fl);
    dxs = cpu_carve(&cur, (size_t)(g.rows * d) * fl);
    conv_separate(st, x, len, base, b, t, d, g.pad, xsw);
    conv_separate(st, dy, len, base, b, t, d, g.pad, dysw);
    xs = xsw;
    dys = dysw;
  }
  const float *wk = w;
  if (k > 1) {
    conv_split_taps(w, d, k, wt);
    wk = wt;
  }
  int64_t m = g.rows - 2 * g.pad;
  cpu_colsum_acc_buf(st, dys, d, g.rows, d, dbias, part);
  for (int32_t j = 0; j < k && !rc; j++) {
    int64_t delta = (int64_t)(j - (k - 1) / 2) * dil;
    rc = ameir__cpu_gemm(st, 0, 0, m, d, d, 1.0f, dys + (g.pad - delta) * d, d, wk + j * d * d, d,
                         j ? 1.0f : 0.0f, dxs + g.pad * d, d);
    if (rc) break;
    if (k == 1)   /* w is the single tap's matrix: accumulate in place */
      rc = ameir__cpu_gemm(st, 1, 0, d, d, m, 1.0f, dys + g.pad * d, d, xs + (g.pad + delta) * d,
                           d, 1.0f, dw, d);
    else
      rc = ameir__cpu_gemm(st, 1, 0, d, d, m, 1.0f, dys + g.pad * d, d, xs + (g.pad + delta) * d,
                           d, 0.0f, dwt + j * d * d, d);
  }
  if (!rc && k > 1)
    for (int64_t o = 0; o < d; o++)
      for (int64_t c = 0; c < d; c++)
        for (int32_t j = 0; j < k; j++)
          dw[(o * d + c) * k + j] += dwt[((int64_t)j * d + o) * d + c];
  if (!rc && !g.direct) conv_gather(st, dxs, len, base, b, t, d, g.pad, NULL, dx);
  cpu_scratch_put(st, buf);
  return rc;
}

/* ---- pooling, kernel 3, stride 1 ----
 * The window of position i is {i-1, i, i+1} cut to [0, len). max keeps the first maximum in
 * window order and lets a NaN through, as torch's max_pool1d (`val > max || isnan(val)`);
 * save holds the position it came from. */

/* samples [b0, b1) of pool3_fwd */
static void pool3_fwd_range(int32_t kind, const float *x, const int32_t *len, int64_t t, int64_t d,
                            float *y, int32_t *save, int64_t b0, int64_t b1) {
  for (int64_t bb = b0; bb < b1; bb++) {
    int64_t l = len[bb];
    const float *xb = x + bb * t * d;
    float *yb = y + bb * t * d;
    for (int64_t i = 0; i < l; i++) {
      int64_t lo = i > 0 ? i - 1 : 0, hi = i + 1 < l ? i + 1 : l - 1;
      float *o = yb + i * d;
      if (kind == 0) {
        float inv = 1.0f / (float)(hi - lo + 1);
#pragma omp simd
        for (int64_t c = 0; c < d; c++) o[c] = xb[lo * d + c];
        for (int64_t p = lo + 1; p <= hi; p++)
#pragma omp simd
          for (int64_t c = 0; c < d; c++) o[c] += xb[p * d + c];
#pragma omp simd
        for (int64_t c = 0; c < d; c++) o[c] *= inv;
      } else {
        int32_t *a = save + (bb * t + i) * d;
#pragma omp simd
        for (int64_t c = 0; c < d; c++) {
          o[c] = xb[lo * d + c];
          a[c] = (int32_t)lo;
        }
        for (int64_t p = lo + 1; p <= hi; p++)
#pragma omp simd
          for (int64_t c = 0; c < d; c++) {
            float v = xb[p * d + c];
            int take = v > o[c] || v != v;
            o[c] = take ? v : o[c];
            a[c] = take ? (int32_t)p : a[c];
          }
      }
    }
    if (l < t) memset(yb + l * d, 0, (size_t)((t - l) * d) * sizeof(float));
  }
}

int32_t ameir__cpu_pool3_fwd(void *s, int32_t kind, const float *x, const int32_t *len, int64_t b,
                             int64_t t, int64_t d, float *y, int32_t *save) {
  cpu_state *st = s;
  int64_t n;
  if (kind != 0 && kind != 1)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu pool3_fwd: kind %d (0 avg, 1 max)", (int)kind);
  if (kind == 1 && !save)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu pool3_fwd: max pooling needs save");
  int32_t rc = cpu_seq_total(st, "pool3_fwd", len, b, t, &n);
  if (rc) return rc;
  int nt = cpu_nt_items(st, 3 * b * t * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, pool3_fwd_range(kind, x, len, t, d, y, save, lo, hi));
  return 0;
}

/* avg: dx[i] = sum over the windows o holding i of dy[o] / |window(o)|; max: each dy[o] goes to
 * its saved position (added in ascending o). */
int32_t ameir__cpu_pool3_bwd(void *s, int32_t kind, const int32_t *len, int64_t b, int64_t t,
                             int64_t d, const float *dy, const int32_t *save, float *dx) {
  cpu_state *st = s;
  int64_t n;
  if (kind != 0 && kind != 1)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu pool3_bwd: kind %d (0 avg, 1 max)", (int)kind);
  int32_t rc = cpu_seq_total(st, "pool3_bwd", len, b, t, &n);
  if (rc) return rc;
  int nt = cpu_nt(st, 3 * b * t * d);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t bb = 0; bb < b; bb++) {
    int64_t l = len[bb];
    const float *db = dy + bb * t * d;
    float *xb = dx + bb * t * d;
    if (kind == 0) {
      for (int64_t i = 0; i < l; i++) {
        float *o = xb + i * d;
        for (int64_t c = 0; c < d; c++) o[c] = 0.0f;
        for (int64_t p = i > 0 ? i - 1 : 0; p <= i + 1 && p < l; p++) {
          int64_t lo = p > 0 ? p - 1 : 0, hi = p + 1 < l ? p + 1 : l - 1;
          float inv = 1.0f / (float)(hi - lo + 1);
#pragma omp simd
          for (int64_t c = 0; c < d; c++) o[c] += db[p * d + c] * inv;
        }
      }
    } else {
      memset(xb, 0, (size_t)(l * d) * sizeof(float));
      for (int64_t i = 0; i < l; i++) {
        const int32_t *a = save + (bb * t + i) * d;
        for (int64_t c = 0; c < d; c++) xb[(int64_t)a[c] * d + c] += db[i * d + c];
      }
    }
    if (l < t) memset(xb + l * d, 0, (size_t)((t - l) * d) * sizeof(float));
  }
  return 0;
}

/* ---- read-outs ---- */

static void readout_range(const float *x, const int32_t *len, int64_t t, int64_t d, float *sum,
                          int64_t lds, float *last, int64_t ldl, int64_t lo, int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++) {
    int64_t l = len[bb];
    const float *xb = x + bb * t * d;
    if (sum) {
      float *o = sum + bb * lds;
      for (int64_t c = 0; c < d; c++) o[c] = 0.0f;
      for (int64_t i = 0; i < l; i++)
#pragma omp simd
        for (int64_t c = 0; c < d; c++) o[c] += xb[i * d + c];
    }
    if (last) {
      float *o = last + bb * ldl;
      if (l > 0) memcpy(o, xb + (l - 1) * d, (size_t)d * sizeof(float));
      else memset(o, 0, (size_t)d * sizeof(float));
    }
  }
}

int32_t ameir__cpu_readout_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                               int64_t d, float *sum, int64_t lds, float *last, int64_t ldl) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = cpu_seq_total(st, "readout_fwd", len, b, t, &n);
  if (rc) return rc;
  int nt = cpu_nt_items(st, n * d, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, readout_range(x, len, t, d, sum, lds, last, ldl, lo, hi));
  return 0;
}

int32_t ameir__cpu_readout_bwd(void *s, const int32_t *len, int64_t b, int64_t t, int64_t d,
                               const float *dsum, int64_t lds, const float *dlast, int64_t ldl,
                               float *dx) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = cpu_seq_total(st, "readout_bwd", len, b, t, &n);
  if (rc) return rc;
  int nt = cpu_nt(st, n * d);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t bb = 0; bb < b; bb++) {
    int64_t l = len[bb];
    float *xb = dx + bb * t * d;
    if (dsum) {
      const float *g = dsum + bb * lds;
      for (int64_t i = 0; i < l; i++)
#pragma omp simd
        for (int64_t c = 0; c < d; c++) xb[i * d + c] += g[c];
    }
    if (dlast && l > 0) {
      const float *g = dlast + bb * ldl;
#pragma omp simd
      for (int64_t c = 0; c < d; c++) xb[(l - 1) * d + c] += g[c];
    }
  }
  return 0;
}

/* ---- row dot products (retrieval head) ---- */

/* rows [b0, b1) of dot_rows_fwd */
static void dot_rows_range(const float *e, int64_t k, const int32_t *rows, int64_t c,
                           const float *u, float *sc, int64_t b0, int64_t b1) {
  for (int64_t bb = b0; bb < b1; bb++)
    for (int64_t j = 0; j < c; j++)
      sc[bb * c + j] = cpu_dot(e + (int64_t)rows[bb * c + j] * k, u + bb * k, k);
}

int32_t ameir__cpu_dot_rows_fwd(void *s, const float *e, int64_t k, const int32_t *rows, int64_t b,
                                int64_t c, const float *u, float *sc) {
  cpu_state *st = s;
  int nt = cpu_nt_items(st, b * c * k, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, dot_rows_range(e, k, rows, c, u, sc, lo, hi));
  return 0;
}

int32_t ameir__cpu_dot_rows_bwd(void *s, const float *e, int64_t k, const int32_t *rows, int64_t b,
                                int64_t c, const float *u, const float *ds, float *du, float *g) {
  cpu_state *st = s;
  int nt = cpu_nt(st, 2 * b * c * k);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t bb = 0; bb < b; bb++) {
    float *o = du + bb * k;
    const float *ub = u + bb * k;
    for (int64_t q = 0; q < k; q++) o[q] = 0.0f;
    for (int64_t j = 0; j < c; j++) {
      float w = ds[bb * c + j];
      const float *er = e + (int64_t)rows[bb * c + j] * k;
      float *gr = g + (bb * c + j) * k;
#pragma omp simd
      for (int64_t q = 0; q < k; q++) {
        o[q] += w * er[q];
        gr[q] = w * ub[q];
      }
    }
  }
  return 0;
}
