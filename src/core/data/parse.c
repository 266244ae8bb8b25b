/* Text rows -> the builder. One hand-written tokenizer over the line reader's big buffer: tokens
 * are (pointer, length) pairs into the line, values become 64-bit keys or doubles in a per-row
 * scratch, and only a row that passed every check is committed (so a skipped bad row leaves no
 * trace and is not numbered). Nothing is allocated per field or per row. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_BUF AMEIR__LINE_BUF
#define MAX_LOGGED_BAD AMEIR__MAX_LOGGED_BAD

typedef struct {
  ameir_context *ctx;
  ameir__schema *s;
  ameir__build *b;
  const char *file;
  int32_t file_index;
  int64_t line;
  /* tokens of the current line */
  const char **tok;
  size_t *tlen;
  int32_t tcap;
  char *unq;           /* unquoted tokens */
  size_t unq_cap;
  /* the row */
  float y;
  int32_t part;        /* from the split column, or -1 */
  uint64_t *key;       /* [nf] univalent keys */
  double *val;         /* [nf] numeric values (missing already filled) */
  uint64_t *mkeys;     /* values of multi / sequence fields */
  int64_t mcap, mn;
  int64_t *moff, *mcnt;  /* [nf] */
  /* libfm range mode */
  int32_t *by_lo;      /* field indices sorted by range start */
  int32_t *seen;       /* [nf] */
  uint64_t *pair_key;  /* tokens of a line: (field, key) */
  int32_t *pair_f;
  int64_t pcap;
} parser;

/* ---- numbers ---- */

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int ieq(const char *p, size_t n, const char *w) {
  size_t wl = strlen(w);
  if (n != wl) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c != w[i]) return 0;
  }
  return 1;
}

/* Decimal numbers without the C library (strtod depends on the caller's locale): exact for
 * integers below 2^53 and for up to 15-16 significant digits with |exponent| <= 22 (Clinger's
 * fast path); within an ulp or so otherwise. */
int ameir__parse_number(const char *p, size_t n, double *out) {
  while (n && (*p == ' ' || *p == '\t')) p++, n--;
  while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
  if (n == 0) return 1;
  if (ieq(p, n, "nan") || ieq(p, n, "na") || ieq(p, n, "null") || ieq(p, n, "none")) return 1;
  size_t i = 0;
  int neg = 0;
  if (p[0] == '-' || p[0] == '+') neg = p[0] == '-', i++;
  uint64_t m = 0;
  int nd = 0, exp10 = 0, any = 0;
  for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
    any = 1;
    if (nd < 19) {
      if (m || p[i] != '0') nd++;
      m = m * 10 + (uint64_t)(p[i] - '0');
    } else if (exp10 < 1000000) {  /* digits past the 19th only scale (bounded: no overflow) */
      exp10++;
    }
  }
  if (i < n && p[i] == '.') {
    for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
      any = 1;
      if (nd < 19 && exp10 > -1000000) {
        if (m || p[i] != '0') nd++;
        m = m * 10 + (uint64_t)(p[i] - '0');
        exp10--;
      }
    }
  }
  if (!any) return -1;
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    int eneg = 0, e = 0, ed = 0;
    if (i < n && (p[i] == '-' || p[i] == '+')) eneg = p[i] == '-', i++;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, ed++)
      if (e < 100000) e = e * 10 + (p[i] - '0');
    if (!ed) return -1;
    exp10 += eneg ? -e : e;
  }
  if (i != n) return -1;
  double v;
  if (m == 0) {
    v = 0;
  } else if (m < (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
    v = exp10 >= 0 ? (double)m * pow10_tab[exp10] : (double)m / pow10_tab[-exp10];
  } else {
    long double x = (long double)m;
    int e = exp10;
    while (e > 22) {
      x *= 1e22L;
      e -= 22;
      if (x > 1e308L) return -1;
    }
    while (e < -22) {
      x /= 1e22L;
      e += 22;
      if (x == 0) break;
    }
    x = e >= 0 ? x * (long double)pow10_tab[e] : x / (long double)pow10_tab[-e];
    v = (double)x;
  }
  if (!isfinite(v)) return -1;
  *out = neg ? -v : v;
  return 0;
}

int ameir__parse_uint(const char *p, size_t n, uint64_t *out) {
  if (n == 0 || n > 18) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  *out = v;
  return 0;
}

static void merge_sort(int64_t *a, int64_t *tmp, int64_t n, const double *t) {
  if (n < 2) return;
  if (n <= 16) {  /* insertion sort: stable */
    for (int64_t i = 1; i < n; i++) {
      int64_t x = a[i], j = i;
      for (; j > 0 && t[a[j - 1]] > t[x]; j--) a[j] = a[j - 1];
      a[j] = x;
    }
    return;
  }
  int64_t h = n / 2;
  merge_sort(a, tmp, h, t);
  merge_sort(a + h, tmp, n - h, t);
  if (t[a[h - 1]] <= t[a[h]]) return;  /* already in order (the common case for logs) */
  int64_t i = 0, j = h, o = 0;
  while (i < h && j < n) tmp[o++] = t[a[j]] < t[a[i]] ? a[j++] : a[i++];
  while (i < h) tmp[o++] = a[i++];
  while (j < n) tmp[o++] = a[j++];
  memcpy(a, tmp, (size_t)n * sizeof *a);
}

void ameir__sort_by_time(int64_t *idx, int64_t *tmp, int64_t n, const double *t) { merge_sort(idx, tmp, n, t); }

void ameir__bad_row(ameir_context *ctx, const ameir__schema *s, int64_t *skipped, ameir_status *st,
                    const char *file, int64_t line, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (s->skip_bad) {
    (*skipped)++;
    if (*skipped <= MAX_LOGGED_BAD)
      ameir__log(ctx, AMEIR_LOG_WARN, "%s:%lld: skipped: %s", file, (long long)line, msg);
    *st = AMEIR_OK;
    return;
  }
  *st = ameir__error(ctx, AMEIR_EFORMAT, "%s:%lld: %s", file, (long long)line, msg);
}

/* ---- errors ---- */

/* A malformed row: an error, or (on_bad_row: skip) counted and logged. Returns 1 when skipped. */
static int bad_row(parser *p, ameir_status *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int bad_row(parser *p, ameir_status *st, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (p->s->skip_bad) {
    p->b->skipped++;
    if (p->b->skipped <= MAX_LOGGED_BAD)
      ameir__log(p->ctx, AMEIR_LOG_WARN, "%s:%lld: skipped: %s", p->file, (long long)p->line, msg);
    *st = AMEIR_OK;
    return 1;
  }
  *st = ameir__error(p->ctx, AMEIR_EFORMAT, "%s:%lld: %s", p->file, (long long)p->line, msg);
  return 1;
}

static const char *col_name(const parser *p, int32_t c) {
  return p->s->columns && c < p->s->n_columns ? p->s->columns[c] : "?";
}

/* ---- scratch ---- */

static ameir_status grow_tokens(parser *p, int32_t need) {
  if (need <= p->tcap) return AMEIR_OK;
  int32_t nc = p->tcap ? p->tcap : 64;
  while (nc < need) nc *= 2;
  const char **t = ameir__realloc(p->ctx, p->tok, (size_t)nc * sizeof *t);
  if (!t) return AMEIR_ENOMEM;
  p->tok = t;
  size_t *l = ameir__realloc(p->ctx, p->tlen, (size_t)nc * sizeof *l);
  if (!l) return AMEIR_ENOMEM;
  p->tlen = l;
  p->tcap = nc;
  return AMEIR_OK;
}

static ameir_status push_mkey(parser *p, uint64_t k) {
  if (p->mn == p->mcap) {
    int64_t nc = p->mcap ? p->mcap * 2 : 256;
    uint64_t *m = ameir__realloc(p->ctx, p->mkeys, (size_t)nc * sizeof *m);
    if (!m) return AMEIR_ENOMEM;
    p->mkeys = m;
    p->mcap = nc;
  }
  p->mkeys[p->mn++] = k;
  return AMEIR_OK;
}

/* ---- commit ---- */

int32_t ameir__row_part(const ameir__schema *s, int64_t i, int32_t file_index, int64_t train_file_rows) {
  if (s->fixed) return AMEIR_SPLIT_TEST;
  switch (s->split) {
    case AMEIR__SPLIT_MODULO: {
      int64_t m = i % 10;
      return m == 9 ? AMEIR_SPLIT_TEST : m == 8 ? AMEIR_SPLIT_VALID : AMEIR_SPLIT_TRAIN;
    }
    case AMEIR__SPLIT_RANDOM: {
      double u = (double)(ameir__hash2(s->seed, (uint64_t)i) >> 11) * 0x1.0p-53;
      return u < s->test ? AMEIR_SPLIT_TEST : u < s->test + s->valid ? AMEIR_SPLIT_VALID : AMEIR_SPLIT_TRAIN;
    }
    case AMEIR__SPLIT_FILE: {
      int8_t r = s->role[file_index];
      if (r >= 0) return r;
      if (s->has_valid_files) return AMEIR_SPLIT_TRAIN;
      return train_file_rows % 10 == 9 ? AMEIR_SPLIT_VALID : AMEIR_SPLIT_TRAIN;
    }
    default:
      return AMEIR_SPLIT_TRAIN;
  }
}

static int32_t part_of_row(parser *p) {
  if (p->s->split == AMEIR__SPLIT_COLUMN && !p->s->fixed) return p->part;
  return ameir__row_part(p->s, p->b->n, p->file_index, p->b->train_file_rows);
}

static ameir_status commit_row(parser *p) {
  ameir__build *b = p->b;
  const ameir__schema *s = p->s;
  ameir__row row = {p->y, part_of_row(p), p->key, p->val, p->mkeys, p->moff, p->mcnt};
  ameir_status st = ameir__build_commit(b, &row);
  if (st) return st;
  if (s->split == AMEIR__SPLIT_FILE && s->role[p->file_index] < 0) b->train_file_rows++;
  if ((b->n & ((1 << 20) - 1)) == 0 && ameir__progress(p->ctx, "load", b->n, 0, NAN))
    return ameir__error(p->ctx, AMEIR_ECANCELLED, "loading cancelled by the progress callback");
  return AMEIR_OK;
}

/* ---- values ---- */

/* Label text -> 0/1 per the schema's label mode; returns 1 (bad row) with the reason set. */
static int parse_label(parser *p, const char *t, size_t n, ameir_status *st) {
  double v;
  int r = ameir__parse_number(t, n, &v);
  if (r == 1) return bad_row(p, st, "missing label");
  if (r < 0) return bad_row(p, st, "label '%.*s' is not a number", (int)(n > 40 ? 40 : n), t);
  switch (p->s->label_mode) {
    case AMEIR__LABEL_01:
      if (v != 0 && v != 1) return bad_row(p, st, "label '%.*s' is not 0 or 1", (int)(n > 40 ? 40 : n), t);
      p->y = (float)v;
      break;
    case AMEIR__LABEL_PM1:
      if (v != -1 && v != 1) return bad_row(p, st, "label '%.*s' is not -1 or 1", (int)(n > 40 ? 40 : n), t);
      p->y = v > 0 ? 1.0f : 0.0f;
      break;
    default:
      p->y = v > 0 ? 1.0f : 0.0f;
  }
  return 0;
}

static int64_t bucket_code(double x) {
  /* torch_ref dense_bucket_code: x > 2 -> floor(ln(x)^2), else trunc(x); code max(b, -15) + 16 */
  double b = x > 2 ? floor(log(x) * log(x)) : trunc(x);
  if (b < -15) b = -15;
  return (int64_t)b + 16;
}

/* One delimited value into field fi's scratch; returns 1 for a bad row. */
static int field_value(parser *p, int32_t fi, const char *t, size_t n, ameir_status *st) {
  const ameir__fspec *f = &p->s->f[fi];
  if (f->kind == AMEIR_FIELD_DENSE || f->transform == AMEIR_DENSE_BUCKET) {
    double v = 0;
    int r = ameir__parse_number(t, n, &v);
    if (r < 0)
      return bad_row(p, st, "column %d (%s): '%.*s' is not a number", (int)f->col + 1,
                     col_name(p, f->col), (int)(n > 40 ? 40 : n), t);
    if (f->transform == AMEIR_DENSE_BUCKET) p->key[fi] = r == 1 ? 0 : (uint64_t)bucket_code(v);
    else p->val[fi] = r == 1 ? f->fill_na : v;
    return 0;
  }
  if (f->max_len == 1 && f->kind == AMEIR_FIELD_CATEGORICAL) {
    p->key[fi] = ameir__str_key(t, n);
    return 0;
  }
  p->moff[fi] = p->mn;
  const char *e = t + n;
  while (t <= e) {
    const char *q = memchr(t, f->sep, (size_t)(e - t));
    if (!q) q = e;
    if (q > t && (*st = push_mkey(p, ameir__str_key(t, (size_t)(q - t))))) return 1;
    t = q + 1;
  }
  p->mcnt[fi] = p->mn - p->moff[fi];
  return 0;
}

/* ---- delimited ---- */

/* First `sep` in [q, end) or end. Tokens are short (Criteo's average 6 bytes), where a memchr
 * call costs more than the search: test 8 bytes at once (the lowest flagged byte of the
 * zero-byte trick is exact). */
static inline const char *find_sep(const char *q, const char *end, char sep) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  const uint64_t pat = ones * (uint8_t)sep;
  while (end - q >= 8) {
    uint64_t w;
    memcpy(&w, q, 8);
    uint64_t x = w ^ pat;
    uint64_t m = (x - ones) & ~x & highs;
    if (m) return q + (__builtin_ctzll(m) >> 3);
    q += 8;
  }
#endif
  while (q < end && *q != sep) q++;
  return q;
}

/* Splits a line into tokens; quoted tokens ("a,b", "say ""hi""") are unquoted. Returns the
 * count, or -1 for a malformed quote (st set by bad_row). */
static int32_t tokenize(parser *p, char *line, size_t len, ameir_status *st) {
  const char sep = p->s->sep, quote = p->s->quote;
  const char *q = line, *end = line + len;
  int32_t n = 0;
  size_t uo = 0;
  if (quote && memchr(line, quote, len)) {
    if (p->unq_cap < len + 1) {
      char *u = ameir__realloc(p->ctx, p->unq, len + 1);
      if (!u) return *st = AMEIR_ENOMEM, -1;
      p->unq = u;
      p->unq_cap = len + 1;
    }
  }
  for (;;) {
    if (n == p->tcap && (*st = grow_tokens(p, n + 1))) return -1;
    if (quote && q < end && *q == quote) {
      const char *r = q + 1;
      size_t start = uo;
      for (;;) {
        if (r >= end) {
          bad_row(p, st, "column %d: unterminated quote", (int)n + 1);
          return -1;
        }
        if (*r == quote) {
          if (r + 1 < end && r[1] == quote) {
            p->unq[uo++] = quote;
            r += 2;
            continue;
          }
          break;
        }
        p->unq[uo++] = *r++;
      }
      r++;  /* the closing quote */
      if (r < end && *r != sep) {
        bad_row(p, st, "column %d: text after the closing quote", (int)n + 1);
        return -1;
      }
      p->tok[n] = p->unq + start;
      p->tlen[n] = uo - start;
      n++;
      if (r >= end) break;
      q = r + 1;
      continue;
    }
    const char *e = find_sep(q, end, sep);
    p->tok[n] = q;
    p->tlen[n] = (size_t)(e - q);
    n++;
    if (e == end) break;
    q = e + 1;
  }
  return n;
}

static ameir_status header_line(parser *p, char *line, size_t len) {
  ameir__schema *s = p->s;
  ameir_status st = AMEIR_OK;
  int32_t n = tokenize(p, line, len, &st);
  if (n < 0) return st ? st : ameir__error(p->ctx, AMEIR_EFORMAT, "%s:%lld: malformed header", p->file,
                                           (long long)p->line);
  if (s->columns_given) {
    if (n != s->n_columns)
      return ameir__error(p->ctx, AMEIR_EFORMAT, "%s:%lld: the header has %d columns, the schema's columns %d",
                          p->file, (long long)p->line, (int)n, (int)s->n_columns);
    return AMEIR_OK;
  }
  if (!s->bound) {
    char **names = ameir__calloc(p->ctx, (size_t)n, sizeof *names);
    if (!names) return AMEIR_ENOMEM;
    for (int32_t i = 0; i < n && !st; i++) {
      names[i] = ameir__malloc(p->ctx, p->tlen[i] + 1);
      if (!names[i]) {
        st = AMEIR_ENOMEM;
        break;
      }
      memcpy(names[i], p->tok[i], p->tlen[i]);
      names[i][p->tlen[i]] = 0;
      for (int32_t j = 0; j < i && !st; j++)
        if (!strcmp(names[i], names[j]))
          st = ameir__error(p->ctx, AMEIR_EFORMAT, "%s:%lld: column '%s' appears twice in the header",
                            p->file, (long long)p->line, names[i]);
    }
    if (st) {
      for (int32_t i = 0; i < n; i++) free(names[i]);
      free(names);
      return st;
    }
    s->columns = names;
    s->n_columns = n;
    return ameir__schema_bind(p->ctx, s, s->columns, s->n_columns, p->file);
  }
  int same = n == s->n_columns;
  for (int32_t i = 0; i < n && same; i++)
    same = strlen(s->columns[i]) == p->tlen[i] && memcmp(s->columns[i], p->tok[i], p->tlen[i]) == 0;
  if (!same)
    return ameir__error(p->ctx, AMEIR_EFORMAT, "%s:%lld: the header differs from the first file's (%s)",
                        p->file, (long long)p->line, s->files[0]);
  return AMEIR_OK;
}

static int in_list(char *const *a, int32_t n, const char *t, size_t len) {
  for (int32_t i = 0; i < n; i++)
    if (strlen(a[i]) == len && memcmp(a[i], t, len) == 0) return 1;
  return 0;
}

static ameir_status delim_line(parser *p, char *line, size_t len) {
  const ameir__schema *s = p->s;
  ameir_status st = AMEIR_OK;
  int32_t n = tokenize(p, line, len, &st);
  if (n < 0) return st;
  if (n != s->n_columns) {
    bad_row(p, &st, "%d columns, expected %d", (int)n, (int)s->n_columns);
    return st;
  }
  if (parse_label(p, p->tok[s->label_col], p->tlen[s->label_col], &st)) return st;
  if (s->split_col >= 0) {
    const char *t = p->tok[s->split_col];
    size_t tl = p->tlen[s->split_col];
    p->part = in_list(s->test_values, s->n_test_values, t, tl)     ? AMEIR_SPLIT_TEST
              : in_list(s->valid_values, s->n_valid_values, t, tl) ? AMEIR_SPLIT_VALID
                                                                   : AMEIR_SPLIT_TRAIN;
  }
  p->mn = 0;
  for (int32_t fi = 0; fi < s->nf; fi++) {
    int32_t c = s->f[fi].col;
    if (field_value(p, fi, p->tok[c], p->tlen[c], &st)) return st;
  }
  return commit_row(p);
}

/* ---- libfm ---- */

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f'; }

static int parse_index(const char *t, size_t n, uint64_t *out) {
  size_t c = 0;
  while (c < n && t[c] != ':') c++;
  if (c == 0 || c > 18) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < c; i++) {
    if (t[i] < '0' || t[i] > '9') return -1;
    v = v * 10 + (uint64_t)(t[i] - '0');
  }
  *out = v;
  return 0;
}

static int32_t field_of_index(const parser *p, uint64_t idx) {
  const ameir__schema *s = p->s;
  int32_t lo = 0, hi = s->nf - 1, found = -1;
  while (lo <= hi) { /* last field whose range starts at or before idx */
    int32_t mid = (lo + hi) / 2;
    if ((uint64_t)s->f[p->by_lo[mid]].range_lo <= idx) found = mid, lo = mid + 1;
    else hi = mid - 1;
  }
  if (found < 0) return -1;
  const ameir__fspec *f = &s->f[p->by_lo[found]];
  return idx <= (uint64_t)f->range_hi ? p->by_lo[found] : -1;
}

static ameir_status libfm_line(parser *p, char *line, size_t len, int32_t ntok_hint) {
  ameir__schema *s = p->s;
  ameir_status st = AMEIR_OK;
  const char *q = line, *end = line + len;
  while (q < end && is_ws(*q)) q++;
  const char *lt = q;
  while (q < end && !is_ws(*q)) q++;
  if (parse_label(p, lt, (size_t)(q - lt), &st)) return st;
  (void)ntok_hint;
  p->mn = 0;
  int32_t k = 0;
  int64_t np = 0;
  if (s->libfm_ranges)
    for (int32_t fi = 0; fi < s->nf; fi++) p->seen[fi] = 0;
  for (;;) {
    while (q < end && is_ws(*q)) q++;
    if (q >= end) break;
    const char *t = q;
    while (q < end && !is_ws(*q)) q++;
    uint64_t idx;
    if (parse_index(t, (size_t)(q - t), &idx)) {
      bad_row(p, &st, "feature %d: '%.*s' is not index:value with a non-negative integer index", (int)k + 1,
              (int)((q - t) > 40 ? 40 : (q - t)), t);
      return st;
    }
    if (!s->libfm_ranges) {
      if (k < s->nf) p->key[k] = idx;
      k++;
      continue;
    }
    int32_t fi = field_of_index(p, idx);
    if (fi < 0) {
      bad_row(p, &st, "feature index %llu is in no feature's range", (unsigned long long)idx);
      return st;
    }
    if (s->f[fi].kind == AMEIR_FIELD_CATEGORICAL && p->seen[fi]) {
      bad_row(p, &st, "two indices for the univalent feature '%s'", s->f[fi].name);
      return st;
    }
    p->seen[fi]++;
    if (np == p->pcap) {
      int64_t nc = p->pcap ? p->pcap * 2 : 64;
      uint64_t *a = ameir__realloc(p->ctx, p->pair_key, (size_t)nc * sizeof *a);
      if (a) p->pair_key = a;
      int32_t *bb = a ? ameir__realloc(p->ctx, p->pair_f, (size_t)nc * sizeof *bb) : NULL;
      if (!a || !bb) return AMEIR_ENOMEM;
      p->pair_f = bb;
      p->pcap = nc;
    }
    p->pair_key[np] = idx;
    p->pair_f[np] = fi;
    np++;
    k++;
  }
  if (!s->libfm_ranges) {
    if (k != s->nf) {
      bad_row(p, &st, "%d features, expected %d (libfm: feature k of a line is field k)", (int)k, (int)s->nf);
      return st;
    }
    return commit_row(p);
  }
  /* group the (field, key) pairs by field, keeping their order in the line */
  for (int32_t fi = 0; fi < s->nf; fi++) {
    if (s->f[fi].kind == AMEIR_FIELD_CATEGORICAL) {
      p->key[fi] = AMEIR__KEY_ABSENT;
    } else {
      p->moff[fi] = p->mn;
      p->mn += p->seen[fi];
      p->mcnt[fi] = 0;
    }
  }
  while (p->mn > p->mcap) {
    int64_t have = p->mn;
    p->mn = p->mcap;
    if ((st = push_mkey(p, 0))) return st;
    p->mn = have;
  }
  for (int64_t j = 0; j < np; j++) {
    int32_t fi = p->pair_f[j];
    if (s->f[fi].kind == AMEIR_FIELD_CATEGORICAL) p->key[fi] = p->pair_key[j];
    else p->mkeys[p->moff[fi] + p->mcnt[fi]++] = p->pair_key[j];
  }
  return commit_row(p);
}

static int32_t count_libfm_features(const char *line, size_t len) {
  const char *q = line, *end = line + len;
  int32_t n = 0;
  for (;;) {
    while (q < end && is_ws(*q)) q++;
    if (q >= end) break;
    n++;
    while (q < end && !is_ws(*q)) q++;
  }
  return n > 0 ? n - 1 : 0;
}

/* ---- driver ---- */

static int blank(const char *line, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!is_ws(line[i])) return 0;
  return 1;
}

static int cmp_range(const void *a, const void *b, const ameir__schema *s) {
  int64_t x = s->f[*(const int32_t *)a].range_lo, y = s->f[*(const int32_t *)b].range_lo;
  return x < y ? -1 : x > y;
}

static ameir_status prepare(parser *p) {
  ameir__schema *s = p->s;
  ameir_status st = ameir__build_init(p->ctx, p->b, s);
  if (st) return st;
  size_t nf = (size_t)(s->nf ? s->nf : 1);
  p->key = ameir__calloc(p->ctx, nf, sizeof *p->key);
  p->val = ameir__calloc(p->ctx, nf, sizeof *p->val);
  p->moff = ameir__calloc(p->ctx, nf, sizeof *p->moff);
  p->mcnt = ameir__calloc(p->ctx, nf, sizeof *p->mcnt);
  p->by_lo = ameir__calloc(p->ctx, nf, sizeof *p->by_lo);
  p->seen = ameir__calloc(p->ctx, nf, sizeof *p->seen);
  if (!p->key || !p->val || !p->moff || !p->mcnt || !p->by_lo || !p->seen) return AMEIR_ENOMEM;
  for (int32_t i = 0; i < s->nf; i++) p->by_lo[i] = i;
  /* insertion sort: a handful of fields */
  for (int32_t i = 1; i < s->nf; i++)
    for (int32_t j = i; j > 0 && cmp_range(&p->by_lo[j - 1], &p->by_lo[j], s) > 0; j--) {
      int32_t t = p->by_lo[j];
      p->by_lo[j] = p->by_lo[j - 1];
      p->by_lo[j - 1] = t;
    }
  return AMEIR_OK;
}

static void parser_free(parser *p) {
  free(p->tok);
  free(p->tlen);
  free(p->unq);
  free(p->key);
  free(p->val);
  free(p->mkeys);
  free(p->moff);
  free(p->mcnt);
  free(p->by_lo);
  free(p->seen);
  free(p->pair_key);
  free(p->pair_f);
}

ameir_status ameir__parse_files(ameir_context *ctx, ameir__schema *s, ameir__build *b) {
  parser P;
  memset(&P, 0, sizeof P);
  P.ctx = ctx;
  P.s = s;
  P.b = b;
  P.part = -1;
  ameir_status st = AMEIR_OK;
  int ready = 0;
  if (s->bound && s->format == AMEIR__FMT_DELIM) {
    if ((st = prepare(&P))) goto done;
    ready = 1;
  }
  for (int32_t fi = 0; fi < s->n_files && !st; fi++) {
    ameir__lines L;
    P.file = s->files[fi];
    P.file_index = fi;
    if ((st = ameir__lines_open(ctx, &L, s->files[fi], LINE_BUF))) break;
    int first = 1;
    for (;;) {
      char *line;
      size_t len;
      if ((st = ameir__lines_next(ctx, &L, &line, &len)) || !line) break;
      P.line = L.lineno;
      if (L.lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) { /* UTF-8 byte order mark */
        line += 3;
        len -= 3;
      }
      if (s->format == AMEIR__FMT_DELIM) {
        if (first && s->header) {
          first = 0;
          if ((st = header_line(&P, line, len))) break;
          if (!ready) {
            if ((st = prepare(&P))) break;
            ready = 1;
          }
          continue;
        }
        first = 0;
        if (len == 0) continue;
        if (!ready) {
          st = ameir__error(ctx, AMEIR_ECONFIG, "%s: no header and no columns: in the schema", P.file);
          break;
        }
        if ((st = delim_line(&P, line, len))) break;
      } else {
        if (blank(line, len)) continue;
        if (!ready) {
          if ((st = ameir__schema_bind_libfm(ctx, s, count_libfm_features(line, len), P.file, P.line)))
            break;
          if ((st = prepare(&P))) break;
          ready = 1;
        }
        if ((st = libfm_line(&P, line, len, 0))) break;
      }
    }
    ameir__lines_close(&L);
  }
  if (!st && b->n == 0)
    st = ameir__error(ctx, AMEIR_EFORMAT, "%s: no data rows (%lld skipped)", s->files[0],
                      (long long)b->skipped);
done:
  parser_free(&P);
  return st;
}
