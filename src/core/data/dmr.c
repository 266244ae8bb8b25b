/* DMR's processed Alimama/Taobao rows (PaddleRec models/rank/dmr, DeepCTR alimama_sample) -> a
 * CTR dataset with behaviours. A line is 267 comma-separated numbers (0-based columns):
 *
 *     0- 49  cont_btag    behaviour type of the 50 history positions
 *    50- 99  his_cate     category of the item behind each position
 *   100-149  his_brand    its brand
 *   150-199  mask         1 = a real position (the blocks are LEFT-padded: padding comes first)
 *   200-249  match_mask   DMR's auxiliary-loss mask (not a field)
 *   250-258  uid, cms_segid, cms_group_id, final_gender_code, age_level, pvalue_level,
 *            shopping_level, occupation, new_user_class_level   (user profile)
 *   259-264  mid (ad group), cate_id, campaign_id, customer, brand, price   (ad)
 *   265      pid          (ad position)
 *   266      target       (click label, 0/1)
 *
 * Fields: the 14 categorical profile/ad columns, price (numeric), pid, and the behaviours
 * hist_btag (own vocabulary), hist_cate (share: cate_id), hist_brand (share: brand): the
 * positions whose mask is 1, in order (chronological, left-aligned), the most recent max_len.
 * A first line whose first column is not a number is a header (DeepCTR's copy) and skipped. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DMR_COLS 267
#define DMR_T 50
#define C_MASK 150
#define C_PROFILE 250
#define C_PRICE 264
#define C_PID 265
#define C_LABEL 266

typedef struct {
  ameir_context *ctx;
  ameir__schema *s;
  ameir__build *b;
  const char *file;
  int64_t line;
  const char *tok[DMR_COLS + 1];
  size_t tlen[DMR_COLS + 1];
} dmr;

static int bad(dmr *d, ameir_status *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int bad(dmr *d, ameir_status *st, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ameir__bad_row(d->ctx, d->s, &d->b->skipped, st, d->file, d->line, "%s", msg);
  return 1;
}

/* column c as an integer-valued number -> its key (numbers sort numerically) */
static int int_col(dmr *d, int32_t c, uint64_t *key, ameir_status *st) {
  double v;
  if (ameir__parse_number(d->tok[c], d->tlen[c], &v) != 0 || v != floor(v) || fabs(v) > 9007199254740992.0)
    return bad(d, st, "column %d: '%.*s' is not an integer", (int)c + 1, (int)(d->tlen[c] > 40 ? 40 : d->tlen[c]),
               d->tok[c]);
  *key = (uint64_t)(int64_t)v;
  return 0;
}

static int32_t split(dmr *d, const char *line, size_t len) {
  const char *q = line, *end = line + len;
  int32_t n = 0;
  for (;;) {
    const char *e = memchr(q, ',', (size_t)(end - q));
    if (!e) e = end;
    if (n < DMR_COLS + 1) {
      d->tok[n] = q;
      d->tlen[n] = (size_t)(e - q);
    }
    n++;
    if (e == end) break;
    q = e + 1;
  }
  return n;
}

ameir_status ameir__dmr_parse(ameir_context *ctx, ameir__schema *s, ameir__build *b) {
  ameir_status st = ameir__build_init(ctx, b, s);
  if (st) return st;
  dmr D;
  memset(&D, 0, sizeof D);
  D.ctx = ctx;
  D.s = s;
  D.b = b;
  int32_t nf = s->nf;  /* 14 categorical, price, pid, hist_btag, hist_cate, hist_brand */
  uint64_t key[19], mk[3 * DMR_T];
  double val[19];
  int64_t moff[19], mcnt[19];
  memset(key, 0, sizeof key);
  memset(val, 0, sizeof val);
  memset(moff, 0, sizeof moff);
  memset(mcnt, 0, sizeof mcnt);
  if (nf != 19) return ameir__error(ctx, AMEIR_ECONFIG, "%s: dmr needs its 19 fields", s->yaml);
  int64_t train_file_rows = 0;
  for (int32_t fi = 0; fi < s->n_files && !st; fi++) {
    ameir__lines L;
    D.file = s->files[fi];
    if ((st = ameir__lines_open(ctx, &L, D.file, AMEIR__LINE_BUF))) break;
    for (;;) {
      char *line;
      size_t len;
      if ((st = ameir__lines_next(ctx, &L, &line, &len)) || !line) break;
      D.line = L.lineno;
      if (L.lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) line += 3, len -= 3;
      size_t k = 0;
      while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
      if (k == len) continue;
      int32_t n = split(&D, line, len);
      double v;
      if (L.lineno == 1 && ameir__parse_number(D.tok[0], D.tlen[0], &v) != 0) continue;  /* a header */
      if (n != DMR_COLS) {
        bad(&D, &st, "%d columns, expected %d", (int)n, DMR_COLS);
        if (st) break;
        continue;
      }
      int skip = 0;
      /* label, profile and ad columns */
      double y;
      if (ameir__parse_number(D.tok[C_LABEL], D.tlen[C_LABEL], &y) != 0 || (y != 0 && y != 1))
        skip = bad(&D, &st, "column %d (target): '%.*s' is not 0 or 1", C_LABEL + 1,
                   (int)(D.tlen[C_LABEL] > 40 ? 40 : D.tlen[C_LABEL]), D.tok[C_LABEL]);
      for (int32_t c = 0; c < 14 && !skip; c++) skip = int_col(&D, C_PROFILE + c, &key[c], &st);
      int pr = skip ? 0 : ameir__parse_number(D.tok[C_PRICE], D.tlen[C_PRICE], &val[14]);
      if (pr < 0)
        skip = bad(&D, &st, "column %d (price): '%.*s' is not a number", C_PRICE + 1,
                   (int)(D.tlen[C_PRICE] > 40 ? 40 : D.tlen[C_PRICE]), D.tok[C_PRICE]);
      else if (pr == 1)
        val[14] = s->f[14].fill_na;
      if (!skip) skip = int_col(&D, C_PID, &key[15], &st);
      /* behaviours: the masked-in positions, in order */
      int64_t m = 0;
      for (int32_t j = 0; j < DMR_T && !skip; j++) {
        double mv;
        if (ameir__parse_number(D.tok[C_MASK + j], D.tlen[C_MASK + j], &mv) != 0 || (mv != 0 && mv != 1)) {
          skip = bad(&D, &st, "column %d (mask): '%.*s' is not 0 or 1", C_MASK + j + 1,
                     (int)(D.tlen[C_MASK + j] > 40 ? 40 : D.tlen[C_MASK + j]), D.tok[C_MASK + j]);
          break;
        }
        if (mv == 0) continue;
        for (int32_t blk = 0; blk < 3 && !skip; blk++) skip = int_col(&D, blk * DMR_T + j, &mk[blk * DMR_T + m], &st);
        m++;
      }
      if (st) break;
      if (skip) continue;
      for (int32_t blk = 0; blk < 3; blk++) {
        moff[16 + blk] = blk * DMR_T;
        mcnt[16 + blk] = m;  /* the builder keeps the last max_len */
      }
      ameir__row row = {(float)y, ameir__row_part(s, b->n, fi, train_file_rows), key, val, mk, moff, mcnt};
      if ((st = ameir__build_commit(b, &row))) break;
      if (s->split == AMEIR__SPLIT_FILE && s->role[fi] < 0) train_file_rows++;
    }
    ameir__lines_close(&L);
  }
  if (!st && b->n == 0)
    st = ameir__error(ctx, AMEIR_EFORMAT, "%s: no data rows (%lld skipped)", s->files[0], (long long)b->skipped);
  return st;
}
