/* The CPU backend: attention over a behaviour sequence.
 *
 * Multi-head self-attention (Vaswani et al. 2017, eq. (1) with a key padding mask), as the
 * reference's SeqLayer sa2/sa4: qkv = x W_qkv^T + b_qkv laid out [q | k | v], each [heads, dh];
 * P = softmax(q k^T / sqrt(dh)) over the valid keys; out = concat_h(P v) W_o^T + b_o.
 * The projections are GEMMs over the packed valid rows (cpu.h). The per-(sample, head) part
 * (head dims are small: 2..32, sequences short) runs every product, scores, context and the
 * four backward ones, through one register-blocked kernel (lincomb below) over per-thread
 * copies of that head's Q, K, V (transposed or padded as each product needs). Parallel over
 * samples; every sum runs in a fixed order, independent of the thread count.
 * save: qkv [B*T, 3d] and context [B*T, d] by packed row, P [B, heads, T, T] (rows and columns
 * < len used): ameir__mha_save.
 *
 * DIN's local activation unit (Zhou et al. 2018, sec. 4.3, unnormalised weights):
 * a_i = w3^T s(W2 s(W1 [h_i, q, h_i - q, h_i * q] + b1) + b2) + b3 with s the sigmoid. The
 * first layer is regrouped: W1 u = (W1a + W1c) h + W1d (h * q) + (W1b - W1c) q, so the GEMM
 * over the positions has 2d inputs instead of 4d and the q term is one GEMM over the samples.
 * save: hidden1 [B*T, a1], hidden2 [B*T, a2], a [B*T] by packed row: ameir__din_save. */
#include <omp.h>
#include <string.h>

#include "cpu.h"
#if CPU_X86_AVX512
#include <immintrin.h>
#endif

/* ---- multi-head self-attention ---- */

static int32_t mha_check(cpu_state *st, const char *op, int64_t d, int32_t heads) {
  if (d < 1 || heads < 1 || d % heads)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: d = %lld not divisible into %d heads", op,
                        (long long)d, (int)heads);
  return 0;
}

/* max of x[0..n), n >= 1, in 8 lanes (vectorisable; max is exact, so any order gives the same) */
static inline float mha_max(const float *x, int64_t n) {
  float m[8];
  for (int u = 0; u < 8; u++) m[u] = x[0];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int u = 0; u < 8; u++) m[u] = x[j + u] > m[u] ? x[j + u] : m[u];
  float r = m[0];
  for (; j < n; j++) r = x[j] > r ? x[j] : r;
  for (int u = 1; u < 8; u++) r = m[u] > r ? m[u] : r;
  return r;
}

/* The per-head products are all of one form, out[c] = sum_k w[k * ws] x[k * xs + c] for
 * c < ncols (scores: w = q, x = K^T; context: w = P row, x = V; and so on). lincomb keeps 8
 * accumulators of 4 floats in vector registers (GCC/Clang vector extensions: plain SSE2 here,
 * whatever the target has elsewhere): columns in blocks of cw = 4 nv (4, 8 or 16, the smallest
 * covering ncols), and 8 / nv interleaved partial sums over k, added in a fixed order at the end
 * (accumulating into memory would chain every term through a store and a load, and GCC does not
 * keep a float array in registers here). x rows must be readable up to ncols rounded up to cw
 * (the buffers are padded). */
typedef float mha_v4 __attribute__((vector_size(16)));

static inline mha_v4 mha_ld(const float *p) {
  mha_v4 v;
  memcpy(&v, p, sizeof v);
  return v;
}

#if defined(__GNUC__)
#define MHA_INLINE static inline __attribute__((always_inline))
#else
#define MHA_INLINE static inline
#endif

MHA_INLINE void mha_lincomb_nv(int nv, const float *w, int64_t ws, int64_t nk, const float *x,
                               int64_t xs, int64_t ncols, float *out) {
  const int kl = 8 / nv, cw = 4 * nv;
  for (int64_t c0 = 0; c0 < ncols; c0 += cw) {
    mha_v4 acc[8];
#pragma GCC unroll 8
    for (int a = 0; a < 8; a++) acc[a] = (mha_v4){0.0f, 0.0f, 0.0f, 0.0f};
    int64_t k = 0;
    for (; k + kl <= nk; k += kl)
#pragma GCC unroll 8
      for (int r = 0; r < kl; r++) {
        float wk = w[(k + r) * ws];
        const float *xr = x + (k + r) * xs + c0;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[r * nv + v] += wk * mha_ld(xr + 4 * v);
      }
    for (; k < nk; k++) {
      float wk = w[k * ws];
      const float *xr = x + k * xs + c0;
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++) acc[v] += wk * mha_ld(xr + 4 * v);
    }
#pragma GCC unroll 8
    for (int r = 1; r < kl; r++)
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++) acc[v] += acc[r * nv + v];
    float res[16];
    memcpy(res, acc, (size_t)cw * sizeof(float));
    int64_t nb = ncols - c0 < cw ? ncols - c0 : cw;
    for (int64_t u = 0; u < nb; u++) out[c0 + u] = res[u];
  }
}

static void mha_lincomb(const float *w, int64_t ws, int64_t nk, const float *x, int64_t xs,
                        int64_t ncols, float *out) {
  if (ncols <= 4) mha_lincomb_nv(1, w, ws, nk, x, xs, ncols, out);
  else if (ncols <= 8) mha_lincomb_nv(2, w, ws, nk, x, xs, ncols, out);
  else mha_lincomb_nv(4, w, ws, nk, x, xs, ncols, out);
}

#if CPU_X86_AVX512
/* The same sums as mha_lincomb_nv with wider registers (AVX-512F copies only): every output
 * column gets the same partial sums over k, added in the same order, so the results are those
 * of mha_lincomb bit for bit. nv = 2 (ncols <= 8): the kl = 4 partials of 8 columns each in
 * one 8-float vector; nv = 4: the kl = 2 partials of a 16-column block each in one 16-float
 * vector, up to 4 blocks at a time. */
typedef float mha_v8 __attribute__((vector_size(32)));
typedef float mha_v16 __attribute__((vector_size(64)));

CPU_AVX512_FN MHA_INLINE mha_v8 mha_ld8(const float *p) {
  mha_v8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

CPU_AVX512_FN MHA_INLINE mha_v16 mha_ld16(const float *p) {
  mha_v16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* out[0, nb) = v[0, nb), nb <= 16: a (masked) vector store, where a copy loop of a variable
 * count would become a call or a rep movs */
CPU_AVX512_FN MHA_INLINE void mha_st16(float *out, mha_v16 v, int64_t nb) {
  if (nb >= 16) memcpy(out, &v, sizeof v);
  else _mm512_mask_storeu_ps(out, (__mmask16)((1u << nb) - 1u), (__m512)v);
}

CPU_AVX512_FN MHA_INLINE void mha_lincomb8_512(const float *w, int64_t ws, int64_t nk,
                                               const float *x, int64_t xs, int64_t ncols,
                                               float *out) {
  mha_v8 acc[4];
  for (int a = 0; a < 4; a++) acc[a] = (mha_v8){0};
  int64_t k = 0;
  for (; k + 4 <= nk; k += 4)
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] += w[(k + r) * ws] * mha_ld8(x + (k + r) * xs);
  for (; k < nk; k++) acc[0] += w[k * ws] * mha_ld8(x + k * xs);
  acc[0] += acc[1];
  acc[0] += acc[2];
  acc[0] += acc[3];
  if (ncols == 8) {
    memcpy(out, &acc[0], sizeof acc[0]);
  } else {
    mha_v16 v = __builtin_shufflevector(acc[0], acc[0], 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5,
                                        6, 7);
    mha_st16(out, v, ncols);
  }
}

CPU_AVX512_FN MHA_INLINE void mha_lincomb16_512(const float *w, int64_t ws, int64_t nk,
                                                const float *x, int64_t xs, int64_t ncols,
                                                float *out) {
  for (int64_t c0 = 0; c0 < ncols; c0 += 64) {
    int nbk = (int)((ncols - c0 + 15) / 16);
    if (nbk > 4) nbk = 4;
    mha_v16 a0[4], a1[4];
    for (int q = 0; q < 4; q++) a0[q] = a1[q] = (mha_v16){0};
    int64_t k = 0;
    if (nbk == 4) {
      for (; k + 2 <= nk; k += 2) {
        float w0 = w[k * ws], w1 = w[(k + 1) * ws];
        const float *x0 = x + k * xs + c0, *x1 = x0 + xs;
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
          a0[q] += w0 * mha_ld16(x0 + 16 * q);
          a1[q] += w1 * mha_ld16(x1 + 16 * q);
        }
      }
    } else {
      for (; k + 2 <= nk; k += 2) {
        float w0 = w[k * ws], w1 = w[(k + 1) * ws];
        const float *x0 = x + k * xs + c0, *x1 = x0 + xs;
        for (int q = 0; q < nbk; q++) {
          a0[q] += w0 * mha_ld16(x0 + 16 * q);
          a1[q] += w1 * mha_ld16(x1 + 16 * q);
        }
      }
    }
    if (k < nk) {
      float w0 = w[k * ws];
      const float *x0 = x + k * xs + c0;
      for (int q = 0; q < nbk; q++) a0[q] += w0 * mha_ld16(x0 + 16 * q);
    }
    for (int q = 0; q < nbk; q++) {
      a0[q] += a1[q];
      int64_t cb = c0 + 16 * q;
      mha_st16(out + cb, a0[q], ncols - cb);
    }
  }
}

CPU_AVX512_FN static void mha_lincomb_512(const float *w, int64_t ws, int64_t nk,
                                          const float *x, int64_t xs, int64_t ncols, float *out) {
  if (ncols <= 4) mha_lincomb_nv(1, w, ws, nk, x, xs, ncols, out);
  else if (ncols <= 8) mha_lincomb8_512(w, ws, nk, x, xs, ncols, out);
  else mha_lincomb16_512(w, ws, nk, x, xs, ncols, out);
}
#endif

/* padded widths: rows of K^T / V^T hold t keys, rows of Q/K/V/dctx hold dh values */
static int64_t mha_pad(int64_t n) { return n <= 4 ? 4 : n <= 8 ? 8 : (n + 15) / 16 * 16; }

/* per-thread scratch floats of mha_fwd_sample / mha_bwd_sample */
static int64_t mha_fwd_scratch(int64_t t, int64_t dh) {
  return dh * mha_pad(t) + t * mha_pad(dh) + dh;
}
static int64_t mha_bwd_scratch(int64_t t, int64_t dh) {
  return dh * mha_pad(t) + 3 * t * mha_pad(dh) + t * mha_pad(t);
}

/* dst[j * ldd + c] = src[j * lds + c] for j < l, c < dh; zero up to width (pad columns) */
static void mha_rows(const float *src, int64_t lds, int64_t l, int64_t dh, float *dst,
                     int64_t ldd) {
  /* one conditional loop: as a plain copy GCC would call memcpy per (short) row */
  for (int64_t j = 0; j < l; j++)
    for (int64_t c = 0; c < ldd; c++) dst[j * ldd + c] = c < dh ? src[j * lds + c] : 0.0f;
}

/* dst[c * ldd + j] = src[j * lds + c] (transposed), zero from l up to ldd */
static void mha_cols(const float *src, int64_t lds, int64_t l, int64_t dh, float *dst,
                     int64_t ldd) {
  for (int64_t c = 0; c < dh; c++) {
    for (int64_t j = 0; j < l; j++) dst[c * ldd + j] = src[j * lds + c];
    for (int64_t j = l; j < ldd; j++) dst[c * ldd + j] = 0.0f;
  }
}

/* One sample, all heads: P rows and the context rows. rows: the sample's packed qkv [l, 3d];
 * prob: its [heads, t, t] block; ctx: its packed rows [l, d]; buf: mha_fwd_scratch floats.
 * wide: the AVX-512F products (a constant where inlined). */
MHA_INLINE void mha_fwd_sample_body(const float *rows, int64_t l, int64_t t, int64_t d,
                                    int64_t heads, float scale, float *prob, float *ctx,
                                    float *buf, int wide) {
  int64_t dh = d / heads, d3 = 3 * d, tp = mha_pad(t), hp = mha_pad(dh);
  float *kt = buf, *vr = kt + dh * tp, *qs = vr + t * hp;
  for (int64_t hh = 0; hh < heads; hh++) {
    int64_t off = hh * dh;
    mha_cols(rows + d + off, d3, l, dh, kt, tp);
    mha_rows(rows + 2 * d + off, d3, l, dh, vr, hp);
    /* The rows one stage at a time (scores, softmax, context): the same arithmetic per row as
     * one row at a time, but each loop's rows are independent, so that their latency chains
     * (the lane sums, the exponentials) overlap. */
    for (int64_t i = 0; i < l; i++) {   /* scores */
      float *pr = prob + (hh * t + i) * t;
      for (int64_t c = 0; c < dh; c++) qs[c] = rows[i * d3 + off + c] * scale;
#if CPU_X86_AVX512
      if (wide) mha_lincomb_512(qs, 1, dh, kt, tp, l, pr);
      else
#endif
        mha_lincomb(qs, 1, dh, kt, tp, l, pr);
      (void)wide;
    }
    for (int64_t i = 0; i < l; i++) {   /* exp(s - max) */
      float *pr = prob + (hh * t + i) * t;
      float mx = mha_max(pr, l);
#pragma omp simd
      for (int64_t j = 0; j < l; j++) pr[j] = cpu_expf(pr[j] - mx);
    }
    for (int64_t i = 0; i < l; i++) {   /* normalised */
      float *pr = prob + (hh * t + i) * t;
      float inv = 1.0f / cpu_sum(pr, l);
#pragma omp simd
      for (int64_t j = 0; j < l; j++) pr[j] *= inv;
    }
    for (int64_t i = 0; i < l; i++) {   /* context = P v */
      const float *pr = prob + (hh * t + i) * t;
#if CPU_X86_AVX512
      if (wide) mha_lincomb_512(pr, 1, l, vr, hp, dh, ctx + i * d + off);
      else
#endif
        mha_lincomb(pr, 1, l, vr, hp, dh, ctx + i * d + off);
    }
  }
}

static void mha_fwd_sample_def(const float *rows, int64_t l, int64_t t, int64_t d,
                               int64_t heads, float scale, float *prob, float *ctx, float *buf) {
  mha_fwd_sample_body(rows, l, t, d, heads, scale, prob, ctx, buf, 0);
}

#if CPU_X86_AVX512
CPU_AVX512_FN static void mha_fwd_sample_512(const float *rows, int64_t l, int64_t t, int64_t d,
                                             int64_t heads, float scale, float *prob, float *ctx,
                                             float *buf) {
  mha_fwd_sample_body(rows, l, t, d, heads, scale, prob, ctx, buf, 1);
}
#endif

/* samples [lo, hi) of mha_fwd's per-sample part; buf: this thread's scratch */
static void mha_fwd_range(const float *qkv, const int32_t *len, const int64_t *base, int64_t t,
                          int64_t d, int64_t heads, float scale, float *prob, float *ctx,
                          float *buf, int64_t lo, int64_t hi) {
  int64_t d3 = 3 * d;
#if CPU_X86_AVX512
  int wide = cpu_avx512();
#endif
  for (int64_t bb = lo; bb < hi; bb++) {
    if (len[bb] <= 0) continue;
    const float *rows = qkv + base[bb] * d3;
    float *pb = prob + bb * heads * t * t, *cb = ctx + base[bb] * d;
#if CPU_X86_AVX512
    if (wide) {
      mha_fwd_sample_512(rows, len[bb], t, d, heads, scale, pb, cb, buf);
      continue;
    }
#endif
    mha_fwd_sample_def(rows, len[bb], t, d, heads, scale, pb, cb, buf);
  }
}

/* One sample, all heads, backward: the sample's dqkv rows from its dctx rows.
 * buf: mha_bwd_scratch floats. */
static void mha_bwd_sample(const float *rows, int64_t l, int64_t t, int64_t d, int64_t heads,
                           float scale, const float *prob, const float *dctx, float *drows,
                           float *buf) {
  int64_t dh = d / heads, d3 = 3 * d, tp = mha_pad(t), hp = mha_pad(dh);
  float *vt = buf, *qr = vt + dh * tp, *kr = qr + t * hp, *gr = kr + t * hp, *dsm = gr + t * hp;
  for (int64_t hh = 0; hh < heads; hh++) {
    int64_t off = hh * dh;
    mha_cols(rows + 2 * d + off, d3, l, dh, vt, tp);
    mha_rows(rows + off, d3, l, dh, qr, hp);
    mha_rows(rows + d + off, d3, l, dh, kr, hp);
    mha_rows(dctx + off, d, l, dh, gr, hp);
    for (int64_t i = 0; i < l; i++) {
      const float *pr = prob + (hh * t + i) * t;
      float *ds = dsm + i * tp;
      mha_lincomb(gr + i * hp, 1, dh, vt, tp, l, ds);   /* dP = dctx v^T */
      /* softmax: dS = P (dP - sum_j P dP), times the scale of the scores */
      float rs = cpu_dot(pr, ds, l);
#pragma omp simd
      for (int64_t j = 0; j < l; j++) ds[j] = pr[j] * (ds[j] - rs) * scale;
      mha_lincomb(ds, 1, l, kr, hp, dh, drows + i * d3 + off);   /* dq = dS k */
    }
    for (int64_t j = 0; j < l; j++) {   /* dk = dS^T q, dv = P^T dctx */
      mha_lincomb(dsm + j, tp, l, qr, hp, dh, drows + j * d3 + d + off);
      mha_lincomb(prob + hh * t * t + j, t, l, gr, hp, dh, drows + j * d3 + 2 * d + off);
    }
  }
}

/* Scratch bytes of mha_fwd: bases, nt threads' per-sample buffers, the packed x and y unless
 * full, save unless given. */
static size_t mha_fwd_bytes(int64_t b, int64_t t, int64_t d, int64_t heads, int64_t n, int full,
                            int nt, int with_save) {
  size_t fl = sizeof(float), per_thread = (size_t)mha_fwd_scratch(t, d / heads);
  size_t bytes = cpu_al((size_t)(b + 1) * 8) + cpu_al((size_t)nt * per_thread * fl);
  if (!full) bytes += 2 * cpu_al((size_t)(n * d) * fl);
  if (!with_save) bytes += cpu_al((size_t)ameir__mha_save(b, t, d, heads) * fl);
  return bytes;
}

size_t cpu_mha_fwd_bound(int64_t b, int64_t t, int64_t d, int32_t heads, int nt) {
  if (b <= 0 || t <= 0 || d < 1 || heads < 1 || d % heads) return 0;   /* no scratch taken */
  return mha_fwd_bytes(b, t, d, heads, b * t, 0, nt, 1);   /* nt: the most cpu_nt gives */
}

int32_t ameir__cpu_mha_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, int32_t heads, const float *p, float *y, float *save) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = mha_check(st, "mha_fwd", d, heads);
  if (!rc) rc = cpu_seq_total(st, "mha_fwd", len, b, t, &n);
  if (rc || b == 0 || t == 0) return rc;
  int64_t cap = b * t, dh = d / heads, d3 = 3 * d;
  float scale = 1.0f / sqrtf((float)dh);
  int full = n == cap;
  int nt = cpu_nt_items(st, n * t * d * 2, b);
  size_t fl = sizeof(float), per_thread = (size_t)mha_fwd_scratch(t, dh);
  size_t bytes = mha_fwd_bytes(b, t, d, heads, n, full, nt, save != NULL);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * 8);
  float *tbuf = cpu_carve(&cur, (size_t)nt * per_thread * fl);
  const float *xp = x;
  float *yp = y;
  if (!full) {
    xp = cpu_carve(&cur, (size_t)(n * d) * fl);
    yp = cpu_carve(&cur, (size_t)(n * d) * fl);
  }
  if (!save) save = cpu_carve(&cur, (size_t)ameir__mha_save(b, t, d, heads) * fl);
  float *qkv = save, *prob = save + cap * d3, *ctx = prob + b * heads * t * t;
  const float *wqkv = p, *bqkv = p + d3 * d, *wo = bqkv + d3, *bo = wo + d * d;
  cpu_seq_base(len, b, base);
  if (!full) cpu_seq_pack(st, x, len, base, b, t, d, (float *)xp);

  rc = ameir__cpu_gemm(st, 0, 1, n, d3, d, 1.0f, xp, d, wqkv, d, 0.0f, qkv, d3);
  if (!rc) rc = ameir__cpu_add_bias(st, qkv, d3, bqkv, n, d3);
  if (!rc) {
    CPU_PAR_RANGE(nt, b, lo, hi, tid,
                  mha_fwd_range(qkv, len, base, t, d, heads, scale, prob, ctx,
                                tbuf + (size_t)tid * per_thread, lo, hi));
    rc = ameir__cpu_gemm(st, 0, 1, n, d, d, 1.0f, ctx, d, wo, d, 0.0f, yp, d);
  }
  if (!rc) rc = ameir__cpu_add_bias(st, yp, d, bo, n, d);
  if (!rc && !full) cpu_seq_unpack(st, yp, len, base, b, t, d, y);
  cpu_scratch_put(st, buf);
  return rc;
}

/* Per (sample, head): dP = dctx v^T, dv = P^T dctx, dS = P (dP - rowsum(P dP)),
 * dq = scale dS k, dk = scale dS^T q. */
int32_t ameir__cpu_mha_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, int32_t heads, const float *p, const float *dy,
                           const float *save, float *dx, float *dp) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = mha_check(st, "mha_bwd", d, heads);
  if (!rc) rc = cpu_seq_total(st, "mha_bwd", len, b, t, &n);
  if (rc || b == 0 || t == 0) return rc;
  int64_t cap = b * t, dh = d / heads, d3 = 3 * d;
  float scale = 1.0f / sqrtf((float)dh);
  int full = n == cap;
  int nt = cpu_nt(st, n * t * d * 4);
  int64_t nch = cpu_chunks(n);
  size_t fl = sizeof(float), per_thread = (size_t)mha_bwd_scratch(t, dh);
  size_t bytes = cpu_al((size_t)(b + 1) * 8) + cpu_al((size_t)nt * per_thread * fl) +
                 cpu_al((size_t)(n * d) * fl) + cpu_al((size_t)(n * d3) * fl) +
                 cpu_al((size_t)(nch * d3) * fl);
  if (!full) bytes += 3 * cpu_al((size_t)(n * d) * fl);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * 8);
  float *tbuf = cpu_carve(&cur, (size_t)nt * per_thread * fl);
  float *dctx = cpu_carve(&cur, (size_t)(n * d) * fl);
  float *dqkv = cpu_carve(&cur, (size_t)(n * d3) * fl);
  float *part = cpu_carve(&cur, (size_t)(nch * d3) * fl);
  const float *xp = x, *dyp = dy;
  float *dxp = dx;
  if (!full) {
    xp = cpu_carve(&cur, (size_t)(n * d) * fl);
    dyp = cpu_carve(&cur, (size_t)(n * d) * fl);
    dxp = cpu_carve(&cur, (size_t)(n * d) * fl);
  }
  const float *qkv = save, *prob = save + cap * d3, *ctx = prob + b * heads * t * t;
  const float *wqkv = p, *wo = p + d3 * d + d3;
  float *dwqkv = dp, *dbqkv = dp + d3 * d, *dwo = dbqkv + d3, *dbo = dwo + d * d;
  cpu_seq_base(len, b, base);
  if (!full) {
    cpu_seq_pack(st, x, len, base, b, t, d, (float *)xp);
    cpu_seq_pack(st, dy, len, base, b, t, d, (float *)dyp);
  }
  /* output projection */
  cpu_colsum_acc_buf(st, dyp, d, n, d, dbo, part);
  rc = ameir__cpu_gemm(st, 1, 0, d, d, n, 1.0f, dyp, d, ctx, d, 1.0f, dwo, d);
  if (!rc) rc = ameir__cpu_gemm(st, 0, 0, n, d, d, 1.0f, dyp, d, wo, d, 0.0f, dctx, d);
  if (!rc) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bb = 0; bb < b; bb++)
      if (len[bb] > 0)
        mha_bwd_sample(qkv + base[bb] * d3, len[bb], t, d, heads, scale,
                       prob + bb * heads * t * t, dctx + base[bb] * d, dqkv + base[bb] * d3,
                       tbuf + (size_t)omp_get_thread_num() * per_thread);
    /* input projection */
    cpu_colsum_acc_buf(st, dqkv, d3, n, d3, dbqkv, part);
    rc = ameir__cpu_gemm(st, 1, 0, d3, d, n, 1.0f, dqkv, d3, xp, d, 1.0f, dwqkv, d);
  }
  if (!rc) rc = ameir__cpu_gemm(st, 0, 0, n, d, d3, 1.0f, dqkv, d3, wqkv, d, 0.0f, dxp, d);
  if (!rc && !full) cpu_seq_unpack(st, dxp, len, base, b, t, d, dx);
  cpu_scratch_put(st, buf);
  return rc;
}

/* ---- DIN local activation unit ---- */

static int32_t din_check(cpu_state *st, const char *op, int64_t d, int32_t a1, int32_t a2) {
  if (d < 1 || a1 < 1 || a2 < 1)
    return ameir__error(st->ctx, AMEIR_EINVAL, "cpu %s: d = %lld, hidden %d, %d must be >= 1", op,
                        (long long)d, (int)a1, (int)a2);
  return 0;
}

/* wp [a1, 2d] = [W1a + W1c, W1d]; wq [a1, d] = W1b - W1c (W1 = [W1a W1b W1c W1d], [a1, 4d]) */
CPU_ALWAYS_INLINE void din_regroup_body(const float *w1, int64_t d, int64_t a1, float *wp,
                                        float *wq) {
  for (int64_t u = 0; u < a1; u++) {
    const float *r = w1 + u * 4 * d;
    float *pu = wp + u * 2 * d, *qu = wq + u * d;
#pragma omp simd
    for (int64_t c = 0; c < d; c++) {
      pu[c] = r[c] + r[2 * d + c];
      pu[d + c] = r[3 * d + c];
      qu[c] = r[d + c] - r[2 * d + c];
    }
  }
}

static void din_regroup_def(const float *w1, int64_t d, int64_t a1, float *wp, float *wq) {
  din_regroup_body(w1, d, a1, wp, wq);
}

#if CPU_X86_AVX512
CPU_AVX512_FN static void din_regroup_512(const float *w1, int64_t d, int64_t a1, float *wp,
                                          float *wq) {
  din_regroup_body(w1, d, a1, wp, wq);
}
#endif

static void din_regroup(const float *w1, int64_t d, int64_t a1, float *wp, float *wq) {
#if CPU_X86_AVX512
  if (d >= 16 && cpu_avx512()) {
    din_regroup_512(w1, d, a1, wp, wq);
    return;
  }
#endif
  din_regroup_def(w1, d, a1, wp, wq);
}

static void din_z_range(const float *hp, const int32_t *len, const int64_t *base, int64_t d,
                        const float *q, int64_t ldq, float *z, int64_t lo, int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++) {
    const float *qb = q + bb * ldq;
    for (int64_t r = base[bb]; r < base[bb] + len[bb]; r++) {
      const float *h = hp + r * d;
      float *zr = z + r * 2 * d;
#pragma omp simd
      for (int64_t c = 0; c < d; c++) {
        zr[c] = h[c];
        zr[d + c] = h[c] * qb[c];
      }
    }
  }
}

/* z[row] = [h, h * q_b] for the packed rows */
static void din_z(cpu_state *st, const float *hp, const int32_t *len, const int64_t *base,
                  int64_t b, int64_t d, const float *q, int64_t ldq, float *z) {
  int nt = cpu_nt_items(st, base[b] * d * 2, b);
  CPU_PAR_RANGE(nt, b, lo, hi, tid, din_z_range(hp, len, base, d, q, ldq, z, lo, hi));
}

/* The first hidden layer's sigmoid, samples [lo, hi): hid1 = s(hid1 + cq_b + b1). */
CPU_ALWAYS_INLINE void din_act1_body(const int32_t *len, const int64_t *base, int64_t a1,
                                     const float *cq, const float *b1, float *hid1, int64_t lo,
                                     int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++) {
    const float *cb = cq + bb * a1;
    for (int64_t r = base[bb]; r < base[bb] + len[bb]; r++) {
      float *hr = hid1 + r * a1;
#pragma omp simd
      for (int64_t u = 0; u < a1; u++) hr[u] = cpu_sigmoid(hr[u] + cb[u] + b1[u]);
    }
  }
}

/* The second hidden layer's sigmoid, the output unit and the weighted rows, samples [lo, hi). */
CPU_ALWAYS_INLINE void din_out_body(const float *hp, const int32_t *len, const int64_t *base,
                                    int64_t t, int64_t d, int64_t a2, const float *b2,
                                    const float *w3, const float *b3, float *hid2, float *att,
                                    float *pooled, int64_t ldp, float *scaled, int64_t lo,
                                    int64_t hi) {
  for (int64_t bb = lo; bb < hi; bb++) {
    int64_t l = len[bb];
    float *po = pooled ? pooled + bb * ldp : NULL;
    if (po)
      for (int64_t c = 0; c < d; c++) po[c] = 0.0f;
    /* one stage at a time over the rows (independent rows: their latency chains overlap) */
    for (int64_t i = 0; i < l; i++) {
      float *hr = hid2 + (base[bb] + i) * a2;
#pragma omp simd
      for (int64_t v = 0; v < a2; v++) hr[v] = cpu_sigmoid(hr[v] + b2[v]);
    }
    for (int64_t i = 0; i < l; i++) {
      int64_t r = base[bb] + i;
      att[r] = cpu_dot(hid2 + r * a2, w3, a2) + b3[0];
    }
    for (int64_t i = 0; i < l; i++) {
      int64_t r = base[bb] + i;
      float a = att[r];
      const float *h = hp + r * d;
      if (po) {
#pragma omp simd
        for (int64_t c = 0; c < d; c++) po[c] += a * h[c];
      }
      if (scaled) {
        float *so = scaled + (bb * t + i) * d;
#pragma omp simd
        for (int64_t c = 0; c < d; c++) so[c] = a * h[c];
      }
    }
    if (scaled && l < t)
      memset(scaled + (bb * t + l) * d, 0, (size_t)((t - l) * d) * sizeof(float));
  }
}

static void din_act1_def(const int32_t *len, const int64_t *base, int64_t a1, const float *cq,
                         const float *b1, float *hid1, int64_t lo, int64_t hi) {
  din_act1_body(len, base, a1, cq, b1, hid1, lo, hi);
}

static void din_out_def(const float *hp, const int32_t *len, const int64_t *base, int64_t t,
                        int64_t d, int64_t a2, const float *b2, const float *w3, const float *b3,
                        float *hid2, float *att, float *pooled, int64_t ldp, float *scaled,
                        int64_t lo, int64_t hi) {
  din_out_body(hp, len, base, t, d, a2, b2, w3, b3, hid2, att, pooled, ldp, scaled, lo, hi);
}

#if CPU_X86_AVX512
CPU_AVX512_FN static void din_act1_512(const int32_t *len, const int64_t *base, int64_t a1,
                                       const float *cq, const float *b1, float *hid1, int64_t lo,
                                       int64_t hi) {
  din_act1_body(len, base, a1, cq, b1, hid1, lo, hi);
}

CPU_AVX512_FN static void din_out_512(const float *hp, const int32_t *len, const int64_t *base,
                                      int64_t t, int64_t d, int64_t a2, const float *b2,
                                      const float *w3, const float *b3, float *hid2, float *att,
                                      float *pooled, int64_t ldp, float *scaled, int64_t lo,
                                      int64_t hi) {
  din_out_body(hp, len, base, t, d, a2, b2, w3, b3, hid2, att, pooled, ldp, scaled, lo, hi);
}
#endif

static void din_act1_range(const int32_t *len, const int64_t *base, int64_t a1, const float *cq,
                           const float *b1, float *hid1, int64_t lo, int64_t hi) {
#if CPU_X86_AVX512
  if (a1 >= 16 && cpu_avx512()) {
    din_act1_512(len, base, a1, cq, b1, hid1, lo, hi);
    return;
  }
#endif
  din_act1_def(len, base, a1, cq, b1, hid1, lo, hi);
}

static void din_out_range(const float *hp, const int32_t *len, const int64_t *base, int64_t t,
                          int64_t d, int64_t a2, const float *b2, const float *w3, const float *b3,
                          float *hid2, float *att, float *pooled, int64_t ldp, float *scaled,
                          int64_t lo, int64_t hi) {
#if CPU_X86_AVX512
  if (a2 >= 16 && cpu_avx512()) {
    din_out_512(hp, len, base, t, d, a2, b2, w3, b3, hid2, att, pooled, ldp, scaled, lo, hi);
    return;
  }
#endif
  din_out_def(hp, len, base, t, d, a2, b2, w3, b3, hid2, att, pooled, ldp, scaled, lo, hi);
}

/* Scratch bytes of din_fwd: bases, z = [h, h * q], the regrouped first layer, the q term, the
 * packed x unless full, save unless given. */
static size_t din_fwd_bytes(int64_t b, int64_t t, int64_t d, int64_t a1, int64_t a2, int64_t n,
                            int full, int with_save) {
  size_t fl = sizeof(float);
  size_t bytes = cpu_al((size_t)(b + 1) * 8) + cpu_al((size_t)(n * 2 * d) * fl) +
                 cpu_al((size_t)(a1 * 3 * d) * fl) + cpu_al((size_t)(b * a1) * fl);
  if (!full) bytes += cpu_al((size_t)(n * d) * fl);
  if (!with_save) bytes += cpu_al((size_t)ameir__din_save(b, t, d, a1, a2) * fl);
  return bytes;
}

size_t cpu_din_fwd_bound(int64_t b, int64_t t, int64_t d, int32_t a1, int32_t a2) {
  if (b <= 0 || t < 0 || d < 1 || a1 < 1 || a2 < 1) return 0;   /* no scratch taken */
  return din_fwd_bytes(b, t, d, a1, a2, b * t, 0, 1);
}

int32_t ameir__cpu_din_fwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                           const float *p, float *pooled, int64_t ldp, float *scaled, float *save) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = din_check(st, "din_fwd", d, a1, a2);
  if (!rc) rc = cpu_seq_total(st, "din_fwd", len, b, t, &n);
  if (rc || b == 0) return rc;
  int64_t cap = b * t;
  int full = n == cap;
  size_t fl = sizeof(float);
  size_t bytes = din_fwd_bytes(b, t, d, a1, a2, n, full, save != NULL);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * 8);
  float *z = cpu_carve(&cur, (size_t)(n * 2 * d) * fl);
  float *wp = cpu_carve(&cur, (size_t)(a1 * 3 * d) * fl), *wq = wp + a1 * 2 * d;
  float *cq = cpu_carve(&cur, (size_t)(b * a1) * fl);
  const float *hp = x;
  if (!full) hp = cpu_carve(&cur, (size_t)(n * d) * fl);
  if (!save) save = cpu_carve(&cur, (size_t)ameir__din_save(b, t, d, a1, a2) * fl);
  float *hid1 = save, *hid2 = save + cap * a1, *att = hid2 + cap * a2;
  const float *w1 = p, *b1 = w1 + (int64_t)a1 * 4 * d, *w2 = b1 + a1, *b2 = w2 + (int64_t)a2 * a1;
  const float *w3 = b2 + a2, *b3 = w3 + a2;
  cpu_seq_base(len, b, base);
  if (!full) cpu_seq_pack(st, x, len, base, b, t, d, (float *)hp);
  din_regroup(w1, d, a1, wp, wq);
  din_z(st, hp, len, base, b, d, q, ldq, z);
  /* layer 1: s(z wp^T + q wq^T + b1) */
  rc = ameir__cpu_gemm(st, 0, 1, b, a1, d, 1.0f, q, ldq, wq, d, 0.0f, cq, a1);
  if (!rc) rc = ameir__cpu_gemm(st, 0, 1, n, a1, 2 * d, 1.0f, z, 2 * d, wp, 2 * d, 0.0f, hid1, a1);
  if (!rc) {
    int nt = cpu_nt_items(st, n * a1 * 8, b);
    CPU_PAR_RANGE(nt, b, lo, hi, tid, din_act1_range(len, base, a1, cq, b1, hid1, lo, hi));
    rc = ameir__cpu_gemm(st, 0, 1, n, a2, a1, 1.0f, hid1, a1, w2, a1, 0.0f, hid2, a2);
  }
  if (!rc) {
    /* layer 2 and the output unit, then the weighted rows */
    int nt = cpu_nt_items(st, n * (a2 * 8 + 2 * d), b);
    CPU_PAR_RANGE(nt, b, lo, hi, tid,
                  din_out_range(hp, len, base, t, d, a2, b2, w3, b3, hid2, att, pooled, ldp,
                                scaled, lo, hi));
  }
  cpu_scratch_put(st, buf);
  return rc;
}

int32_t ameir__cpu_din_bwd(void *s, const float *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                           const float *p, const float *dpooled, int64_t lddp,
                           const float *dscaled, const float *save, float *dx, float *dq,
                           float *dp) {
  cpu_state *st = s;
  int64_t n;
  int32_t rc = din_check(st, "din_bwd", d, a1, a2);
  if (!rc) rc = cpu_seq_total(st, "din_bwd", len, b, t, &n);
  if (rc || b == 0 || t == 0) return rc;
  int64_t cap = b * t, amax = a1 > a2 ? a1 : a2;
  int full = n == cap;
  int64_t nch = cpu_chunks(n);
  size_t fl = sizeof(float);
  size_t bytes = cpu_al((size_t)(b + 1) * 8) + 2 * cpu_al((size_t)(n * 2 * d) * fl) +
                 cpu_al((size_t)(a1 * 3 * d) * fl) + cpu_al((size_t)(a1 * 3 * d) * fl) +
                 cpu_al((size_t)n * fl) + cpu_al((size_t)(n * a2) * fl) +
                 cpu_al((size_t)(n * a1) * fl) + cpu_al((size_t)(b * a1) * fl) +
                 cpu_al((size_t)(nch * amax) * fl);
  if (!full) bytes += 2 * cpu_al((size_t)(n * d) * fl);
  char *buf = cpu_scratch_get(st, bytes), *cur = buf;
  if (!buf) return cpu_scratch_status();
  int64_t *base = cpu_carve(&cur, (size_t)(b + 1) * 8);
  float *z = cpu_carve(&cur, (size_t)(n * 2 * d) * fl);
  float *dz = cpu_carve(&cur, (size_t)(n * 2 * d) * fl);
  float *wp = cpu_carve(&cur, (size_t)(a1 * 3 * d) * fl), *wq = wp + a1 * 2 * d;
  float *gz = cpu_carve(&cur, (size_t)(a1 * 3 * d) * fl), *gq = gz + a1 * 2 * d;
  float *datt = cpu_carve(&cur, (size_t)n * fl);
  float *dpre2 = cpu_carve(&cur, (size_t)(n * a2) * fl);
  float *dpre1 = cpu_carve(&cur, (size_t)(n * a1) * fl);
  float *dsum = cpu_carve(&cur, (size_t)(b * a1) * fl);
  float *part = cpu_carve(&cur, (size_t)(nch * amax) * fl);
  const float *hp = x;
  float *dhp = dx;
  if (!full) {
    hp = cpu_carve(&cur, (size_t)(n * d) * fl);
    dhp = cpu_carve(&cur, (size_t)(n * d) * fl);
  }
  const float *hid1 = save, *hid2 = save + cap * a1, *att = hid2 + cap * a2;
  const float *w1 = p, *w2 = w1 + (int64_t)a1 * 4 * d + a1, *w3 = w2 + (int64_t)a2 * a1 + a2;
  float *dw1 = dp, *db1 = dw1 + (int64_t)a1 * 4 * d, *dw2 = db1 + a1,
        *db2 = dw2 + (int64_t)a2 * a1, *dw3 = db2 + a2, *db3 = dw3 + a2;
  cpu_seq_base(len, b, base);
  if (!full) cpu_seq_pack(st, x, len, base, b, t, d, (float *)hp);
  din_regroup(w1, d, a1, wp, wq);
  din_z(st, hp, len, base, b, d, q, ldq, z);

  /* the weighted rows: d(a_i) = g_i . h_i, dh_i = a_i g_i with g_i = dpooled + dscaled_i;
   * then through the output unit and the second sigmoid layer */
  int nt = cpu_nt(st, n * (2 * d + 8 * a2));
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t bb = 0; bb < b; bb++) {
    const float *gp = dpooled ? dpooled + bb * lddp : NULL;
    for (int64_t i = 0; i < len[bb]; i++) {
      int64_t r = base[bb] + i;
      const float *h = hp + r * d, *gs = dscaled ? dscaled + (bb * t + i) * d : NULL;
      float *dh = dhp + r * d, a = att[r];
#pragma omp simd
      for (int64_t c = 0; c < d; c++) dh[c] = (gp ? gp[c] : 0.0f) + (gs ? gs[c] : 0.0f);
      float da = cpu_dot(dh, h, d);
#pragma omp simd
      for (int64_t c = 0; c < d; c++) dh[c] *= a;
      datt[r] = da;
      const float *h2 = hid2 + r * a2;
      float *g2 = dpre2 + r * a2;
#pragma omp simd
      for (int64_t v = 0; v < a2; v++) g2[v] = da * w3[v] * h2[v] * (1.0f - h2[v]);
    }
  }
  cpu_colsum_acc_buf(st, datt, 1, n, 1, db3, part);
  rc = ameir__cpu_gemm(st, 1, 0, a2, 1, n, 1.0f, hid2, a2, datt, 1, 1.0f, dw3, 1);
  if (!rc) {
    cpu_colsum_acc_buf(st, dpre2, a2, n, a2, db2, part);
    rc = ameir__cpu_gemm(st, 1, 0, a2, a1, n, 1.0f, dpre2, a2, hid1, a1, 1.0f, dw2, a1);
  }
  if (!rc) rc = ameir__cpu_gemm(st, 0, 0, n, a1, a2, 1.0f, dpre2, a2, w2, a1, 0.0f, dpre1, a1);
  if (!rc) {
    /* through the first sigmoid layer; per-sample sums of dpre1 for the q term */
    int nt1 = cpu_nt(st, n * a1 * 2);
#pragma omp parallel for num_threads(nt1) schedule(static)
    for (int64_t bb = 0; bb < b; bb++) {
      float *sb = dsum + bb * a1;
      for (int64_t u = 0; u < a1; u++) sb[u] = 0.0f;
      for (int64_t r = base[bb]; r < base[bb] + len[bb]; r++) {
        const float *h1 = hid1 + r * a1;
        float *g1 = dpre1 + r * a1;
#pragma omp simd
        for (int64_t u = 0; u < a1; u++) {
          g1[u] *= h1[u] * (1.0f - h1[u]);
          sb[u] += g1[u];
        }
      }
    }
    cpu_colsum_acc_buf(st, dpre1, a1, n, a1, db1, part);
    rc = ameir__cpu_gemm(st, 1, 0, a1, 2 * d, n, 1.0f, dpre1, a1, z, 2 * d, 0.0f, gz, 2 * d);
  }
  if (!rc) rc = ameir__cpu_gemm(st, 1, 0, a1, d, b, 1.0f, dsum, a1, q, ldq, 0.0f, gq, d);
  if (!rc) {
    /* dW1 = [G_h, G_q, G_h - G_q, G_hq] */
    for (int64_t u = 0; u < a1; u++) {
      float *r = dw1 + u * 4 * d;
      const float *gh = gz + u * 2 * d, *ghq = gh + d, *gqu = gq + u * d;
      for (int64_t c = 0; c < d; c++) {
        r[c] += gh[c];
        r[d + c] += gqu[c];
        r[2 * d + c] += gh[c] - gqu[c];
        r[3 * d + c] += ghq[c];
      }
    }
    rc = ameir__cpu_gemm(st, 0, 0, n, 2 * d, a1, 1.0f, dpre1, a1, wp, 2 * d, 0.0f, dz, 2 * d);
  }
  if (!rc) rc = ameir__cpu_gemm(st, 0, 0, b, d, a1, 1.0f, dsum, a1, wq, d, 1.0f, dq, ldq);
  if (!rc) {
    /* dh += dz_h + q * dz_hq; dq += sum_i h_i * dz_hq,i */
    int nt2 = cpu_nt(st, n * d * 3);
#pragma omp parallel for num_threads(nt2) schedule(static)
    for (int64_t bb = 0; bb < b; bb++) {
      const float *qb = q + bb * ldq;
      float *gqb = dq + bb * ldq;
      for (int64_t r = base[bb]; r < base[bb] + len[bb]; r++) {
        const float *h = hp + r * d, *g = dz + r * 2 * d;
        float *dh = dhp + r * d;
#pragma omp simd
        for (int64_t c = 0; c < d; c++) {
          dh[c] += g[c] + qb[c] * g[d + c];
          gqb[c] += h[c] * g[d + c];
        }
      }
    }
    if (!full) cpu_seq_unpack(st, dhp, len, base, b, t, d, dx);   /* else dhp is dx */
  }
  cpu_scratch_put(st, buf);
  return rc;
}
