/* The CPU backend: the bidirectional GRU of Stage 1 (torch.nn.GRU with bidirectional=True on a
 * packed sequence; hidden hd = d/2 per direction, outputs concatenated [forward | backward]).
 *
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - z) * n + z * h,        h = 0 before the first step.
 *
 * The forward direction runs over positions 0..len-1, the backward one over len-1..0. At step s
 * both directions run exactly the samples with len > s, so with the samples sorted by length
 * (longest first) the running ones are a prefix of the order (the packed-sequence trick).
 *
 * Work: the input projections W_i* x of all valid positions are one GEMM per direction over
 * the packed rows (cpu.h); the recurrence is parallel over sample groups (sorted sample j goes to
 * group j mod G, so groups get similar lengths), each group running both directions on its own
 * with a small per-step GEMM h W_h*^T over its running prefix: no barrier per step. The weight
 * gradients are GEMMs over all packed rows after the recurrence.
 *
 * save, per direction (capacity C = B*T rows, indexed by packed row):
 *   gates [C, 3hd]: r, z, n (during the forward pass this first holds the input projections);
 *   hprev [C, hd]:  h before the step;
 *   ghn   [C, hd]:  W_hn h + b_hn.
 * That is 5 hd floats per position and direction, ameir__gru_save(b, t, d). */
#include <cblas.h>
#include <string.h>

#include "cpu.h"

/* Per-step GEMMs with at least this many multiply-adds per row (hd * 3hd) go to sgemm inside
 * the parallel region (single-threaded there); smaller ones, or all of them with a pthreads
 * OpenBLAS that cannot nest, use the loop below. */
#define GRU_BLAS_MIN 768

typedef struct {
  int64_t b, t, d, hd, g, n, cap;   /* g = 3 hd; n packed rows; cap = b * t */
  const int32_t *len;
  const int64_t *base;
  const int32_t *ord;
  int64_t groups;
  int use_blas;
} gru_geo;

/* C[m, n] = A[m, k] Bm[k, n] (+ C when acc): single-threaded, rows of 4, columns of 64, each
 * accumulator summed in ascending p. */
static void gru_mm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bm,
                   int64_t ldb, float *c, int64_t ldc, int acc) {
  for (int64_t j0 = 0; j0 < n; j0 += 64) {
    int64_t nb = n - j0 < 64 ? n - j0 : 64;
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
      int64_t rows = m - i0 < 4 ? m - i0 : 4;
      float s[4][64];
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < nb; j++) s[r][j] = acc ? c[(i0 + r) * ldc + j0 + j] : 0.0f;
      for (int64_t p = 0; p < k; p++) {
        const float *br = bm + p * ldb + j0;
        for (int64_t r = 0; r < rows; r++) {
          float av = a[(i0 + r) * lda + p];
#pragma omp simd
          for (int64_t j = 0; j < nb; j++) s[r][j] += av * br[j];
        }
      }
      for (int64_t r = 0; r < rows; r++)
        memcpy(c + (i0 + r) * ldc + j0, s[r], (size_t)nb * sizeof(float));
    }
  }
}

/* rows of group grp: sorted samples grp, grp + G, grp + 2G, ... */
static int64_t gru_group_size(const gru_geo *g, int64_t grp) {
  return (g->b - grp + g->groups - 1) / g->groups;
}

static int64_t gru_group_start(const gru_geo *g, int64_t grp) {
  int64_t s = 0;
  for (int64_t i = 0; i < grp; i++) s += gru_group_size(g, i);
  return s;
}

static int32_t gru_sample(const gru_geo *g, int64_t grp, int64_t q) {
  return g->ord[grp + q * g->groups];
}

/* One group's forward recurrence for one direction. h [m, hd], gh [m, 3hd] are its buffers;
 * whh = W_hh [3hd, hd], wt = W_hh^T [hd, 3hd] (for the loop kernel); bc = b_ih (+ b_hh for r, z);
 * bhn = b_hh for n. */
static void gru_fwd_group(const gru_geo *g, int64_t grp, int dir, const float *whh,
                          const float *wt, const float *bc, const float *bhn, float *h, float *gh,
                          float *gates, float *hprev, float *ghn, float *y) {
  int64_t m = gru_group_size(g, grp), hd = g->hd, G = g->g;
  if (m == 0) return;
  int64_t steps = g->len[gru_sample(g, grp, 0)], a = m;
  memset(h, 0, (size_t)(m * hd) * sizeof(float));
  for (int64_t s = 0; s < steps; s++) {
    while (a > 0 && g->len[gru_sample(g, grp, a - 1)] <= s) a--;
    if (s == 0) memset(gh, 0, (size_t)(a * G) * sizeof(float));
    else if (g->use_blas)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)a, (int)G, (int)hd, 1.0f, h,
                  (int)hd, whh, (int)hd, 0.0f, gh, (int)G);
    else
      gru_mm(a, G, hd, h, hd, wt, G, gh, G, 0);
    for (int64_t q = 0; q < a; q++) {
      int32_t bs = gru_sample(g, grp, q);
      int64_t pos = dir == 0 ? s : g->len[bs] - 1 - s;
      int64_t pr = g->base[bs] + pos;
      float *gr = gates + pr * G, *hp = hprev + pr * hd, *gn = ghn + pr * hd;
      float *hq = h + q * hd, *ghq = gh + q * G;
      float *yo = y + ((int64_t)bs * g->t + pos) * g->d + dir * hd;
#pragma omp simd
      for (int64_t u = 0; u < hd; u++) {
        float r = cpu_sigmoid(gr[u] + ghq[u] + bc[u]);
        float z = cpu_sigmoid(gr[hd + u] + ghq[hd + u] + bc[hd + u]);
        float hn = ghq[2 * hd + u] + bhn[u];
        float nn = cpu_tanhf(gr[2 * hd + u] + bc[2 * hd + u] + r * hn);
        float hv = hq[u];
        float h2 = (1.0f - z) * nn + z * hv;
        gr[u] = r;
        gr[hd + u] = z;
        gr[2 * hd + u] = nn;
        hp[u] = hv;
        gn[u] = hn;
        hq[u] = h2;
        yo[u] = h2;
      }
    }
  }
}

static int32_t gru_check(cpu_state *st, const char *op, int64_t d) {
  if (d < 2 || d % 2)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: d = %lld must be even and >= 2", op,
                        (long long)d);
  return 0;
}

/* Shared set-up: lengths, packed bases, the sorted order and the grouping. */
static void gru_setup(cpu_state *st, gru_geo *g, const int32_t *len, int64_t b, int64_t t,
                      int64_t d, int64_t n, int64_t *base, int32_t *ord, int64_t *cnt) {
  g->b = b, g->t = t, g->d = d, g->hd = d / 2, g->g = 3 * (d / 2), g->n = n, g->cap = b * t;
  g->len = len, g->base = base, g->ord = ord;
  cpu_seq_base(len, b, base);
  cpu_seq_order(len, b, t, cnt, ord);
  int nt = cpu_nt(st, n * g->g * (d + g->hd));
  g->groups = nt < b ? nt : b;
  if (g->groups < 1) g->groups = 1;
  g->use_blas = st->blas_nested && g->hd * g->g >= GRU_BLAS_MIN;
}

/* Scratch bytes of gru_fwd: bases, order, counts, W_hh^T and the combined biases per
 * direction, the groups' h and W_hh h rows, the packed x unless full, save unless given. */
static size_t gru_fwd_bytes(int64_t b, int64_t t, int64_t d, int64_t n, int full, int with_save) {
  int64_t hd = d / 2, G = 3 * hd;
  size_t fl = sizeof(float);
  size_t bytes = cpu_al((size_t)(b + 1) * 8) + cpu_al((size_t)b * 4) +
                 cpu_al((size_t)(t + 1) * 8) + 2 * cpu_al((size_t)(hd * G) * fl) +
                 2 * cpu_al((size_t)G * fl) + cpu_al((size_t)(b * (hd + G)) * fl);
  if (!full) bytes += cpu_al((size_t)(n * d) * fl);
  if (!with_save) bytes += cpu_al((size_t)ameir__gru_save(b, t, d) * fl);
  return bytes;
}

size_t cpu_gru_fwd_bound(int64_t b, int64_t t, int64_t d) {
  if (b <= 0 || t <= 0 || d < 2 || d % 2) return 0;   /* no scratch taken */
  return gru_fwd_bytes(b, t, d, b * t, 0, 1);
}

/* groups [lo, hi) of gru_fwd's recurrence, both directions */
static void gru_fwd_groups(const gru_geo *g, const float *p, int64_t np, int64_t d, int64_t hd,
                           int64_t G, int64_t cap, int64_t b, float *const *wt,
                           float *const *bc, float *hbuf, float *save, float *y, int64_t lo,
                           int64_t hi) {
  for (int64_t grp = lo; grp < hi; grp++) {
    int64_t st0 = gru_group_start(g, grp);
    float *h = hbuf + st0 * hd, *gh = hbuf + b * hd + st0 * G;
    for (int dir = 0; dir < 2; dir++) {
      const float *pd = p + dir * np;
      const float *whh = pd + G * d, *bhh = whh + G * hd + G;
      float *sd = save + dir * cap * 5 * hd;
      gru_fwd_group(g, grp, dir, whh, wt[dir], bc[dir], bhh + 2 * hd, h, gh, sd, sd + cap * G,
                    sd + cap * (G + hd), y);
    }
  }
}

int32_t ameir__cpu_gru_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *p, float *y, float *save) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = gru_check(st, "gru_fwd", d);
  if (!rc) rc = cpu_seq_total(st, "gru_fwd", len, b, t, &n);
  if (rc || b == 0 || t == 0) return rc;
  int64_t hd = d / 2, G = 3 * hd, cap = b * t;
  int full = n == cap;
  size_t fl = sizeof(float);
  size_t bytes = gru_fwd_bytes(b, t, d, n, full, save != NULL);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * 8);
  int32_t *ord = cpu_carve(&cur, (size_t)b * 4);
  int64_t *cnt = cpu_carve(&cur, (size_t)(t + 1) * 8);
  float *wt[2], *bc[2];
  for (int dir = 0; dir < 2; dir++) wt[dir] = cpu_carve(&cur, (size_t)(hd * G) * fl);
  for (int dir = 0; dir < 2; dir++) bc[dir] = cpu_carve(&cur, (size_t)G * fl);
  float *hbuf = cpu_carve(&cur, (size_t)(b * (hd + G)) * fl);
  const float *xp = x;
  if (!full) xp = cpu_carve(&cur, (size_t)(n * d) * fl);
  if (!save) save = cpu_carve(&cur, (size_t)ameir__gru_save(b, t, d) * fl);

  gru_geo g;
  gru_setup(st, &g, len, b, t, d, n, base, ord, cnt);
  if (!full) cpu_seq_pack(st, x, len, base, b, t, d, (float *)xp);
  int64_t np = ameir__gru_params(d);
  for (int dir = 0; dir < 2 && !rc; dir++) {
    const float *pd = p + dir * np;
    const float *wih = pd, *whh = pd + G * d, *bih = whh + G * hd, *bhh = bih + G;
    for (int64_t u = 0; u < hd; u++)
      for (int64_t c = 0; c < G; c++) wt[dir][u * G + c] = whh[c * hd + u];
    for (int64_t c = 0; c < G; c++) bc[dir][c] = bih[c] + (c < 2 * hd ? bhh[c] : 0.0f);
    rc = ameir__cpu_gemm(st, 0, 1, n, G, d, 1.0f, xp, d, wih, d, 0.0f, save + dir * cap * 5 * hd,
                         G);
  }
  if (!rc) {
    int nt = (int)g.groups;
    CPU_PAR_RANGE(nt, g.groups, lo, hi, tid,
                  gru_fwd_groups(&g, p, np, d, hd, G, cap, b, wt, bc, hbuf, save, y, lo, hi));
    /* the padding rows of y */
    int nz = cpu_nt_items(st, b * t * d, b);
    CPU_PAR_RANGE(nz, b, lo, hi, tid,
                  for (int64_t bb = lo; bb < hi; bb++) if (len[bb] < t)
                      memset(y + (bb * t + len[bb]) * d, 0, (size_t)((t - len[bb]) * d) * fl));
  }
  cpu_scratch_put(st, buf);
  return rc;
}

/* One group's backward recurrence for one direction, steps in reverse. dh [m, hd] carries
 * dL/dh of the running samples, dgc [m, 3hd] the step's gate gradients (for dh += dgc W_hh).
 * Writes dgi (input-side pre-activation gradients) and dgh (hidden side) per packed row. */
static void gru_bwd_group(const gru_geo *g, int64_t grp, int dir, const float *whh,
                          const float *gates, const float *hprev, const float *ghn,
                          const float *dy, float *dh, float *dgc, float *dgi, float *dgh) {
  int64_t m = gru_group_size(g, grp), hd = g->hd, G = g->g;
  if (m == 0) return;
  int64_t steps = g->len[gru_sample(g, grp, 0)], a = 0;
  for (int64_t s = steps - 1; s >= 0; s--) {
    int64_t a0 = a;
    while (a < m && g->len[gru_sample(g, grp, a)] > s) a++;
    if (a > a0) memset(dh + a0 * hd, 0, (size_t)((a - a0) * hd) * sizeof(float));
    for (int64_t q = 0; q < a; q++) {
      int32_t bs = gru_sample(g, grp, q);
      int64_t pos = dir == 0 ? s : g->len[bs] - 1 - s;
      int64_t pr = g->base[bs] + pos;
      const float *gr = gates + pr * G, *hp = hprev + pr * hd, *gn = ghn + pr * hd;
      const float *dyo = dy + ((int64_t)bs * g->t + pos) * g->d + dir * hd;
      float *dhq = dh + q * hd, *dgq = dgc + q * G, *di = dgi + pr * G, *dg = dgh + pr * G;
#pragma omp simd
      for (int64_t u = 0; u < hd; u++) {
        float r = gr[u], z = gr[hd + u], nn = gr[2 * hd + u];
        float gsum = dhq[u] + dyo[u];
        float dn = gsum * (1.0f - z) * (1.0f - nn * nn);
        float dz = gsum * (hp[u] - nn) * z * (1.0f - z);
        float dr = dn * gn[u] * r * (1.0f - r);
        di[u] = dr;
        di[hd + u] = dz;
        di[2 * hd + u] = dn;
        dg[u] = dr;
        dg[hd + u] = dz;
        dg[2 * hd + u] = dn * r;
        dgq[u] = dr;
        dgq[hd + u] = dz;
        dgq[2 * hd + u] = dn * r;
        dhq[u] = gsum * z;
      }
    }
    if (s == 0) break;   /* h before the first step is the constant 0 */
    if (g->use_blas)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a, (int)hd, (int)G, 1.0f, dgc,
                  (int)G, whh, (int)hd, 1.0f, dh, (int)hd);
    else
      gru_mm(a, hd, G, dgc, G, whh, hd, dh, hd, 1);
  }
}

int32_t ameir__cpu_gru_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *p, const float *dy, const float *save, float *dx,
                           float *dp) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = gru_check(st, "gru_bwd", d);
  if (!rc) rc = cpu_seq_total(st, "gru_bwd", len, b, t, &n);
  if (rc || b == 0 || t == 0) return rc;
  int64_t hd = d / 2, G = 3 * hd, cap = b * t;
  int full = n == cap;
  size_t fl = sizeof(float);
  int64_t nch = cpu_chunks(n);
  size_t bytes = cpu_al((size_t)(b + 1) * 8) + cpu_al((size_t)b * 4) +
                 cpu_al((size_t)(t + 1) * 8) + cpu_al((size_t)(b * (hd + G)) * fl) +
                 4 * cpu_al((size_t)(n * G) * fl) + cpu_al((size_t)(nch * G) * fl);
  if (!full) bytes += 2 * cpu_al((size_t)(n * d) * fl);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * 8);
  int32_t *ord = cpu_carve(&cur, (size_t)b * 4);
  int64_t *cnt = cpu_carve(&cur, (size_t)(t + 1) * 8);
  float *hbuf = cpu_carve(&cur, (size_t)(b * (hd + G)) * fl);
  float *dgi[2], *dgh[2];
  for (int dir = 0; dir < 2; dir++) {
    dgi[dir] = cpu_carve(&cur, (size_t)(n * G) * fl);
    dgh[dir] = cpu_carve(&cur, (size_t)(n * G) * fl);
  }
  float *part = cpu_carve(&cur, (size_t)(nch * G) * fl);
  const float *xp = x;
  float *dxp = dx;
  if (!full) {
    xp = cpu_carve(&cur, (size_t)(n * d) * fl);
    dxp = cpu_carve(&cur, (size_t)(n * d) * fl);
  }
  gru_geo g;
  gru_setup(st, &g, len, b, t, d, n, base, ord, cnt);
  if (!full) cpu_seq_pack(st, x, len, base, b, t, d, (float *)xp);
  int64_t np = ameir__gru_params(d);
  int nt = (int)g.groups;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t grp = 0; grp < g.groups; grp++) {
    int64_t st0 = gru_group_start(&g, grp);
    float *dh = hbuf + st0 * hd, *dgc = hbuf + b * hd + st0 * G;
    for (int dir = 0; dir < 2; dir++) {
      const float *sd = save + dir * cap * 5 * hd;
      gru_bwd_group(&g, grp, dir, p + dir * np + G * d, sd, sd + cap * G, sd + cap * (G + hd), dy,
                    dh, dgc, dgi[dir], dgh[dir]);
    }
  }
  for (int dir = 0; dir < 2 && !rc; dir++) {
    const float *pd = p + dir * np;
    float *gd = dp + dir * np;
    float *dwih = gd, *dwhh = gd + G * d, *dbih = dwhh + G * hd, *dbhh = dbih + G;
    const float *hprev = save + dir * cap * 5 * hd + cap * G;
    cpu_colsum_acc_buf(st, dgi[dir], G, n, G, dbih, part);
    cpu_colsum_acc_buf(st, dgh[dir], G, n, G, dbhh, part);
    rc = ameir__cpu_gemm(st, 1, 0, G, d, n, 1.0f, dgi[dir], G, xp, d, 1.0f, dwih, d);
    if (!rc) rc = ameir__cpu_gemm(st, 1, 0, G, hd, n, 1.0f, dgh[dir], G, hprev, hd, 1.0f, dwhh, hd);
    if (!rc)
      rc = ameir__cpu_gemm(st, 0, 0, n, d, G, 1.0f, dgi[dir], G, pd, d, dir ? 1.0f : 0.0f, dxp, d);
  }
  if (!rc && !full) cpu_seq_unpack(st, dxp, len, base, b, t, d, dx);
  cpu_scratch_put(st, buf);
  return rc;
}
