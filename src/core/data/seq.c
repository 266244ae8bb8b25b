/* Retrieval formats (userseq, useritem, session) -> a RETRIEVAL dataset, torch_ref's
 * make_user_seq_data protocol (docs/data.md "Retrieval formats"):
 *
 *   users (sessions) in file order; a user with items a[0..m-1], m >= 3, gives the training rows
 *   "predict a[t] from a[0..t-1]" for t = 1..m-3, then the valid row t = m-2 and the test row
 *   t = m-1; a user with m < 3 gives training rows t = 1..m-1 only.
 *
 * Pass 1 reads every user's raw item values (64-bit integers) into one array; pass 2 turns them
 * into ids (identity, a min_count vocabulary counted over the training positions, or a fixed
 * vocabulary for open_like); pass 3 writes the rows. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `vocab: identity` sizes its tables from the largest id: beyond this, use `vocab: count`. */
#define IDENTITY_MAX ((1 << 24) - 1)

typedef struct {
  ameir_context *ctx;
  ameir__schema *s;
  const char *file;
  int64_t line;
  /* users: values vals[off[u] .. off[u + 1]); off[n_users] is written when a user closes */
  int64_t *off;
  uint64_t *ukey;      /* [n_users] each user's id as a key (`user_field`) */
  int64_t n_users, cap_users;
  uint64_t *vals;
  double *times;       /* session: the time of every value */
  int64_t n_vals, cap_vals;
  int open;            /* a user is being read (useritem, session) */
  char *cur;           /* its raw id */
  size_t cur_len, cur_cap;
  ameir__kmap seen;    /* ids of the users read so far (grouping check) */
  /* session columns */
  int32_t c_sess, c_item, c_time, n_cols;
  char **cols;         /* the first file's header, or the schema's columns */
  int32_t n_hdr;
  const char **tok;
  size_t *tlen;
  int32_t tcap;
  int64_t skipped, empty;
} sq;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static ameir_status grow_tok(sq *q, int32_t need) {
  if (need <= q->tcap) return AMEIR_OK;
  int32_t nc = q->tcap ? q->tcap * 2 : 64;
  while (nc < need) nc *= 2;
  const char **t = ameir__realloc(q->ctx, q->tok, (size_t)nc * sizeof *t);
  if (!t) return AMEIR_ENOMEM;
  q->tok = t;
  size_t *l = ameir__realloc(q->ctx, q->tlen, (size_t)nc * sizeof *l);
  if (!l) return AMEIR_ENOMEM;
  q->tlen = l;
  q->tcap = nc;
  return AMEIR_OK;
}

/* whitespace-separated tokens (userseq, useritem) or `sep`-separated ones (session) */
static ameir_status split(sq *q, char *line, size_t len, char sep, int32_t *n) {
  const char *p = line, *end = line + len;
  *n = 0;
  for (;;) {
    if (!sep) {
      while (p < end && is_space(*p)) p++;
      if (p >= end) break;
    }
    const char *t = p;
    if (sep) {
      while (p < end && *p != sep) p++;
    } else {
      while (p < end && !is_space(*p)) p++;
    }
    ameir_status st = grow_tok(q, *n + 1);
    if (st) return st;
    q->tok[*n] = t;
    q->tlen[*n] = (size_t)(p - t);
    (*n)++;
    if (sep) {
      if (p >= end) break;
      p++;
    }
  }
  return AMEIR_OK;
}

static int bad(sq *q, ameir_status *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int bad(sq *q, ameir_status *st, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ameir__bad_row(q->ctx, q->s, &q->skipped, st, q->file, q->line, "%s", msg);
  return 1;
}

/* An item token -> its value; returns 1 for a bad row (st set). */
static int item_value(sq *q, int32_t col, const char *t, size_t n, uint64_t *v, ameir_status *st) {
  int w = (int)(n > 40 ? 40 : n);
  if (ameir__parse_uint(t, n, v))
    return bad(q, st, "column %d: '%.*s' is not an item id (a non-negative integer)", (int)col + 1, w, t);
  if (q->s->vocab_identity && (*v < 1 || *v > IDENTITY_MAX))
    return bad(q, st, "column %d: item id %.*s is out of range [1, %d] of vocab: identity (0 is the padding; "
               "larger ids: vocab: count)", (int)col + 1, w, t, IDENTITY_MAX);
  return 0;
}

static ameir_status push_val(sq *q, uint64_t v, double t) {
  if (q->n_vals == q->cap_vals) {
    int64_t nc = q->cap_vals ? q->cap_vals * 2 : 4096;
    uint64_t *a = ameir__realloc(q->ctx, q->vals, (size_t)nc * sizeof *a);
    if (!a) return AMEIR_ENOMEM;
    q->vals = a;
    if (q->s->format == AMEIR__FMT_SESSION) {
      double *b = ameir__realloc(q->ctx, q->times, (size_t)nc * sizeof *b);
      if (!b) return AMEIR_ENOMEM;
      q->times = b;
    }
    q->cap_vals = nc;
  }
  if (q->times) q->times[q->n_vals] = t;
  q->vals[q->n_vals++] = v;
  return AMEIR_OK;
}

/* Starts user n_users at value n_vals; id[0..n) is its raw id. */
static ameir_status open_user(sq *q, const char *id, size_t n) {
  if (q->n_users + 2 > q->cap_users) {
    int64_t nc = q->cap_users ? q->cap_users * 2 : 1024;
    int64_t *o = ameir__realloc(q->ctx, q->off, (size_t)nc * sizeof *o);
    if (!o) return AMEIR_ENOMEM;
    q->off = o;
    uint64_t *k = ameir__realloc(q->ctx, q->ukey, (size_t)nc * sizeof *k);
    if (!k) return AMEIR_ENOMEM;
    q->ukey = k;
    q->cap_users = nc;
  }
  q->off[q->n_users] = q->n_vals;
  q->ukey[q->n_users] = ameir__str_key(id, n);
  return AMEIR_OK;
}

/* Ends the current user (useritem, session): a session's clicks are put in time order. */
static ameir_status close_user(sq *q) {
  if (!q->open) return AMEIR_OK;
  q->open = 0;
  int64_t a = q->off[q->n_users], m = q->n_vals - a;
  if (m > 1 && q->times) {
    int64_t *idx = ameir__malloc(q->ctx, (size_t)m * 2 * sizeof *idx);
    double *t = ameir__malloc(q->ctx, (size_t)m * sizeof *t);
    uint64_t *v = ameir__malloc(q->ctx, (size_t)m * sizeof *v);
    if (!idx || !t || !v) {
      free(idx);
      free(t);
      free(v);
      return AMEIR_ENOMEM;
    }
    for (int64_t i = 0; i < m; i++) idx[i] = i, t[i] = q->times[a + i], v[i] = q->vals[a + i];
    ameir__sort_by_time(idx, idx + m, m, t);
    for (int64_t i = 0; i < m; i++) q->vals[a + i] = v[idx[i]], q->times[a + i] = t[idx[i]];
    free(idx);
    free(t);
    free(v);
  }
  q->n_users++;
  q->off[q->n_users] = q->n_vals;
  return AMEIR_OK;
}

/* useritem / session: the line's user id; a new one closes the current user. Ids must come in
 * groups: an id seen before, after another one, is an error (whatever on_bad_row says). */
static ameir_status switch_user(sq *q, const char *id, size_t n) {
  if (q->open && n == q->cur_len && memcmp(id, q->cur, n) == 0) return AMEIR_OK;
  ameir_status st = close_user(q);
  if (st) return st;
  uint64_t key = ameir__str_key(id, n);
  uint64_t before = q->seen.n;
  int32_t local;
  if ((st = ameir__kmap_add(q->ctx, &q->seen, key, ameir__kmap_hash(key), 0, &local))) return st;
  if (q->seen.n == before)
    return ameir__error(q->ctx, AMEIR_EFORMAT, "%s:%lld: %s '%.*s' appears again after other %s: the lines of "
                        "one %s must be contiguous", q->file, (long long)q->line,
                        q->s->format == AMEIR__FMT_SESSION ? "session" : "user", (int)(n > 40 ? 40 : n), id,
                        q->s->format == AMEIR__FMT_SESSION ? "sessions" : "users",
                        q->s->format == AMEIR__FMT_SESSION ? "session" : "user");
  if (n + 1 > q->cur_cap) {
    char *c = ameir__realloc(q->ctx, q->cur, n + 1);
    if (!c) return AMEIR_ENOMEM;
    q->cur = c;
    q->cur_cap = n + 1;
  }
  memcpy(q->cur, id, n);
  q->cur_len = n;
  if ((st = open_user(q, id, n))) return st;
  q->open = 1;
  return AMEIR_OK;
}

static ameir_status userseq_line(sq *q, char *line, size_t len) {
  int32_t n;
  ameir_status st = split(q, line, len, 0, &n);
  if (st || n == 0) return st;
  if (n == 1) {  /* a user without items */
    q->empty++;
    q->skipped++;
    return AMEIR_OK;
  }
  int64_t mark = q->n_vals;
  if ((st = open_user(q, q->tok[0], q->tlen[0]))) return st;
  for (int32_t i = 1; i < n; i++) {
    uint64_t v;
    if (item_value(q, i, q->tok[i], q->tlen[i], &v, &st)) {
      q->n_vals = mark;  /* the whole line goes */
      return st;
    }
    if ((st = push_val(q, v, 0))) return st;
  }
  q->n_users++;
  q->off[q->n_users] = q->n_vals;
  return AMEIR_OK;
}

static ameir_status useritem_line(sq *q, char *line, size_t len) {
  int32_t n;
  ameir_status st = split(q, line, len, 0, &n);
  if (st || n == 0) return st;
  if (n == 1) {
    q->empty++;
    q->skipped++;
    return AMEIR_OK;
  }
  uint64_t v;
  if (item_value(q, 1, q->tok[1], q->tlen[1], &v, &st)) return st;
  if ((st = switch_user(q, q->tok[0], q->tlen[0]))) return st;
  return push_val(q, v, 0);
}

static int find_col(char *const *cols, int32_t n, const char *name) {
  for (int32_t i = 0; i < n; i++)
    if (!strcmp(cols[i], name)) return i;
  return -1;
}

/* session: the column names (header or columns:) -> the three column indices */
static ameir_status session_columns(sq *q, char **cols, int32_t n, const char *where) {
  const ameir__schema *s = q->s;
  const char *want[3] = {s->session_col, s->item_col, s->time_col};
  int32_t *dst[3] = {&q->c_sess, &q->c_item, &q->c_time};
  for (int k = 0; k < 3; k++) {
    *dst[k] = -1;
    if (!want[k]) continue;
    if ((*dst[k] = find_col(cols, n, want[k])) < 0) {
      char list[300];
      size_t o = 0;
      list[0] = 0;
      for (int32_t i = 0; i < n && o + 40 < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%.30s", i ? ", " : "", cols[i]);
      return ameir__error(q->ctx, AMEIR_ECONFIG, "%s: %s_column: unknown column '%s' (columns of %s: %s)",
                          s->yaml, k == 0 ? "session" : k == 1 ? "item" : "time", want[k], where, list);
    }
  }
  q->n_cols = n;
  return AMEIR_OK;
}

static ameir_status session_header(sq *q, char *line, size_t len) {
  int32_t n;
  ameir_status st = split(q, line, len, q->s->sep, &n);
  if (st) return st;
  if (q->s->n_columns) {
    if (n != q->s->n_columns)
      return ameir__error(q->ctx, AMEIR_EFORMAT, "%s:%lld: the header has %d columns, the schema's columns %d",
                          q->file, (long long)q->line, (int)n, (int)q->s->n_columns);
    return AMEIR_OK;
  }
  if (q->cols) {
    int same = n == q->n_hdr;
    for (int32_t i = 0; i < n && same; i++)
      same = strlen(q->cols[i]) == q->tlen[i] && memcmp(q->cols[i], q->tok[i], q->tlen[i]) == 0;
    if (!same)
      return ameir__error(q->ctx, AMEIR_EFORMAT, "%s:%lld: the header differs from the first file's (%s)",
                          q->file, (long long)q->line, q->s->files[0]);
    return AMEIR_OK;
  }
  q->cols = ameir__calloc(q->ctx, (size_t)(n ? n : 1), sizeof *q->cols);
  if (!q->cols) return AMEIR_ENOMEM;
  q->n_hdr = n;
  for (int32_t i = 0; i < n; i++) {
    if (!(q->cols[i] = ameir__malloc(q->ctx, q->tlen[i] + 1))) return AMEIR_ENOMEM;
    memcpy(q->cols[i], q->tok[i], q->tlen[i]);
    q->cols[i][q->tlen[i]] = 0;
  }
  return session_columns(q, q->cols, n, q->file);
}

static ameir_status session_line(sq *q, char *line, size_t len) {
  int32_t n;
  ameir_status st = split(q, line, len, q->s->sep, &n);
  if (st) return st;
  if (n != q->n_cols) {
    bad(q, &st, "%d columns, expected %d", (int)n, (int)q->n_cols);
    return st;
  }
  uint64_t v;
  double t = 0;
  if (item_value(q, q->c_item, q->tok[q->c_item], q->tlen[q->c_item], &v, &st)) return st;
  if (q->c_time >= 0 && ameir__parse_number(q->tok[q->c_time], q->tlen[q->c_time], &t) != 0) {
    size_t tl = q->tlen[q->c_time];
    bad(q, &st, "column %d (%s): '%.*s' is not a time (a number)", (int)q->c_time + 1, q->s->time_col,
        (int)(tl > 40 ? 40 : tl), q->tok[q->c_time]);
    return st;
  }
  if (q->tlen[q->c_sess] == 0) {
    bad(q, &st, "column %d (%s): empty session id", (int)q->c_sess + 1, q->s->session_col);
    return st;
  }
  if ((st = switch_user(q, q->tok[q->c_sess], q->tlen[q->c_sess]))) return st;
  return push_val(q, v, t);
}

static ameir_status read_all(sq *q) {
  ameir__schema *s = q->s;
  ameir_status st = AMEIR_OK;
  if (s->format == AMEIR__FMT_SESSION && s->n_columns && (st = session_columns(q, s->columns, s->n_columns, "columns")))
    return st;
  if ((st = open_user(q, "", 0))) return st;
  for (int32_t fi = 0; fi < s->n_files && !st; fi++) {
    ameir__lines L;
    q->file = s->files[fi];
    if ((st = ameir__lines_open(q->ctx, &L, q->file, AMEIR__LINE_BUF))) break;
    int first = 1;
    for (;;) {
      char *line;
      size_t len;
      if ((st = ameir__lines_next(q->ctx, &L, &line, &len)) || !line) break;
      q->line = L.lineno;
      if (L.lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) line += 3, len -= 3;
      size_t k = 0;
      while (k < len && is_space(line[k])) k++;
      if (s->format == AMEIR__FMT_SESSION && first && s->header) {
        first = 0;
        if ((st = session_header(q, line, len))) break;
        continue;
      }
      if (k == len) continue;  /* blank */
      if (s->format == AMEIR__FMT_USERSEQ) st = userseq_line(q, line, len);
      else if (s->format == AMEIR__FMT_USERITEM) st = useritem_line(q, line, len);
      else st = session_line(q, line, len);
      if (st) break;
    }
    ameir__lines_close(&L);
    if (!st) st = close_user(q);  /* users do not continue into the next file */
  }
  return st;
}

/* ---- values -> ids ---- */

/* The training positions of a user with m items are 0 .. train_end(m) - 1: the items before
 * its held-out targets (m >= 3), or all of them when it has training rows only (m = 2); a user
 * with one item has none. They are what a min_count vocabulary counts. */
static int64_t train_end(int64_t m) { return m >= 3 ? m - 2 : m == 2 ? 2 : 0; }

/* The vocabulary of the values counted in m: built (keys counted >= min_count), or in open_like
 * the model's field `fixed_field` (values it lacks get id 0). remap[local] = id. */
static ameir_status vocab_of(sq *q, const ameir__kmap *m, int32_t fixed_field, int32_t min_count, int32_t **remap,
                             uint64_t **keys_out, int64_t *vocab_out) {
  ameir_context *ctx = q->ctx;
  if (!q->s->fixed) return ameir__build_vocab(ctx, m, min_count, remap, keys_out, vocab_out);
  const ameir__field *F = &q->s->fixed[fixed_field];
  ameir_status st = ameir__fixed_remap(ctx, m, F->keys, F->vocab, remap);
  if (st) return st;
  if (!(*keys_out = ameir__malloc(ctx, (size_t)F->vocab * sizeof **keys_out))) return AMEIR_ENOMEM;
  (*keys_out)[0] = 0;
  if (F->vocab > 1) memcpy(*keys_out + 1, F->keys + 1, (size_t)(F->vocab - 1) * sizeof **keys_out);
  *vocab_out = F->vocab;
  return AMEIR_OK;
}

static ameir_status encode(sq *q, int32_t **ids_out, uint64_t **keys_out, int64_t *vocab_out) {
  ameir_context *ctx = q->ctx;
  const ameir__schema *s = q->s;
  int64_t nv = q->n_vals;
  int32_t *ids = ameir__malloc(ctx, (size_t)(nv ? nv : 1) * sizeof *ids);
  if (!ids) return AMEIR_ENOMEM;
  *ids_out = ids;
  if (s->vocab_identity && !s->fixed) {
    uint64_t mx = 0;
    for (int64_t i = 0; i < nv; i++) mx = q->vals[i] > mx ? q->vals[i] : mx;
    uint64_t *keys = ameir__malloc(ctx, (size_t)(mx + 1) * sizeof *keys);
    if (!keys) return AMEIR_ENOMEM;
    for (uint64_t k = 0; k <= mx; k++) keys[k] = k;
    keys[0] = 0;
    for (int64_t i = 0; i < nv; i++) ids[i] = (int32_t)q->vals[i];
    *keys_out = keys;
    *vocab_out = (int64_t)mx + 1;
    return AMEIR_OK;
  }
  ameir__kmap m;
  memset(&m, 0, sizeof m);
  ameir_status st = AMEIR_OK;
  for (int64_t u = 0; u < q->n_users && !st; u++) {
    int64_t a = q->off[u], len = q->off[u + 1] - a, te = train_end(len);
    for (int64_t j = 0; j < len && !st; j++) {
      uint64_t k = q->vals[a + j];
      st = ameir__kmap_add(ctx, &m, k, ameir__kmap_hash(k), !s->fixed && j < te, &ids[a + j]);
    }
  }
  int32_t *remap = NULL;
  if (!st) st = vocab_of(q, &m, 1, s->min_count, &remap, keys_out, vocab_out);
  if (!st)
    for (int64_t i = 0; i < nv; i++) ids[i] = remap[ids[i]];
  free(remap);
  ameir__kmap_free(&m);
  return st;
}

/* ---- rows ---- */

/* Runs the statements for every row of the protocol, in row order (per user its training
 * prefixes, then its valid and test rows), with u_ the user, a_ its first value, t_ the target's
 * position and part_ the row's part. Rows whose target is OOV (id 0) are left out. */
#define FOR_EACH_ROW(q, ids, ...)                                                           \
  for (int64_t u_ = 0; u_ < (q)->n_users; u_++) {                                           \
    int64_t a_ = (q)->off[u_], m_ = (q)->off[u_ + 1] - a_, last_ = m_ >= 3 ? m_ - 2 : m_;  \
    for (int64_t t_ = 1; t_ < m_; t_++) {                                                   \
      int32_t part_ = t_ < last_ ? AMEIR_SPLIT_TRAIN : t_ == m_ - 2 ? AMEIR_SPLIT_VALID      \
                                                                    : AMEIR_SPLIT_TEST;     \
      if ((ids)[a_ + t_] == 0) continue;                                                    \
      __VA_ARGS__                                                                           \
    }                                                                                       \
  }

/* `user_field`: every user's id (1..vocab-1 in key order; open_like: the model's ids, 0 for a
 * user it never saw) into uid[n_users], its keys into *keys_out. */
static ameir_status user_ids(sq *q, int32_t *uid, uint64_t **keys_out, int64_t *vocab_out) {
  ameir_context *ctx = q->ctx;
  const ameir__schema *s = q->s;
  ameir__kmap m;
  memset(&m, 0, sizeof m);
  ameir_status st = AMEIR_OK;
  for (int64_t u = 0; u < q->n_users && !st; u++)
    st = ameir__kmap_add(ctx, &m, q->ukey[u], ameir__kmap_hash(q->ukey[u]), !s->fixed, &uid[u]);
  int32_t *remap = NULL;
  if (!st) st = vocab_of(q, &m, 2, 1, &remap, keys_out, vocab_out);
  if (!st)
    for (int64_t u = 0; u < q->n_users; u++) uid[u] = remap[uid[u]];
  free(remap);
  ameir__kmap_free(&m);
  return st;
}

/* Fills ds; ids and keys belong to ds from here on, whatever happens. */
static ameir_status make_rows(sq *q, ameir_dataset *ds, int32_t *ids, uint64_t *keys, int64_t vocab) {
  ameir_context *ctx = q->ctx;
  const ameir__schema *s = q->s;
  ds->items = ids;
  int32_t nf = s->user_field ? 3 : 2;
  ds->fields = ameir__calloc(ctx, (size_t)nf, sizeof *ds->fields);
  if (!ds->fields) {
    free(keys);
    return AMEIR_ENOMEM;
  }
  ds->n_fields = nf;
  ameir__field *H = &ds->fields[0], *I = &ds->fields[1];
  I->keys = keys;
  int64_t T = s->max_len, n = 0, cnt[3] = {0, 0, 0};
  int64_t unknown = 0, shortu = 0, clipped = 0;
  for (int64_t u = 0; u < q->n_users; u++) {
    int64_t a = q->off[u], m = q->off[u + 1] - a;
    shortu += m < 3;
    for (int64_t t = 1; t < m; t++) unknown += ids[a + t] == 0;
  }
  FOR_EACH_ROW(q, ids, {
    n++;
    cnt[s->fixed ? AMEIR_SPLIT_TEST : part_]++;
    clipped += t_ > T;
  })
  if (n == 0)
    return ameir__error(ctx, AMEIR_EFORMAT, "%s: no rows (%lld users; a row needs a user with 2 items)",
                        s->files[0], (long long)q->n_users);
  if (q->n_users > INT32_MAX || q->n_vals > INT32_MAX)
    return ameir__error(ctx, AMEIR_EFORMAT, "%s: more than 2^31 users or items", s->files[0]);
  int32_t *hist = ameir__malloc(ctx, (size_t)(n * T) * sizeof *hist);
  int32_t *item = ameir__malloc(ctx, (size_t)n * sizeof *item);
  int32_t *ru = ameir__malloc(ctx, (size_t)n * sizeof *ru), *rp = ameir__malloc(ctx, (size_t)n * sizeof *rp);
  int64_t *uo = ameir__malloc(ctx, (size_t)(q->n_users + 1) * sizeof *uo);
  uint64_t *hkeys = ameir__malloc(ctx, (size_t)vocab * sizeof *hkeys);
  H->name = ameir__strdup(ctx, "hist");
  I->name = ameir__strdup(ctx, "item");
  H->ids = hist;
  I->ids = item;
  H->keys = hkeys;
  ds->row_user = ru;
  ds->row_pos = rp;
  ds->user_off = uo;
  for (int k = 0; k < 3; k++)
    if (!(ds->split_rows[k] = ameir__malloc(ctx, (size_t)(cnt[k] ? cnt[k] : 1) * sizeof(int64_t))))
      return AMEIR_ENOMEM;
  if (!hist || !item || !ru || !rp || !uo || !hkeys || !H->name || !I->name) return AMEIR_ENOMEM;
  memcpy(hkeys, keys, (size_t)vocab * sizeof *hkeys);
  /* `user_field`: the row's user as a third, categorical field */
  int32_t *uid = NULL, *urow = NULL;
  if (s->user_field) {
    ameir__field *U = &ds->fields[2];
    if (!(U->name = ameir__strdup(ctx, "user"))) return AMEIR_ENOMEM;
    if (!(uid = ameir__malloc(ctx, (size_t)(q->n_users + 1) * sizeof *uid))) return AMEIR_ENOMEM;
    if (!(urow = ameir__malloc(ctx, (size_t)n * sizeof *urow))) { free(uid); return AMEIR_ENOMEM; }
    U->ids = urow;
    ameir_status st = user_ids(q, uid, &U->keys, &U->vocab);
    if (st) { free(uid); return st; }
    U->kind = AMEIR_FIELD_CATEGORICAL;
    U->column = -1;
    U->max_len = 1;
    U->min_count = 1;
    U->transform = AMEIR_DENSE_NONE;
  }
  for (int k = 0; k < 2; k++) {
    ameir__field *F = &ds->fields[k];
    F->kind = k ? AMEIR_FIELD_CATEGORICAL : AMEIR_FIELD_SEQUENCE;
    F->column = -1;
    F->vocab = vocab;
    F->max_len = k ? 1 : (int32_t)T;
    F->min_count = s->vocab_identity ? 1 : s->min_count;
    F->transform = AMEIR_DENSE_NONE;
  }
  snprintf(H->share, sizeof H->share, "item");
  for (int64_t u = 0; u <= q->n_users; u++) uo[u] = q->off[u];
  int64_t r = 0;
  FOR_EACH_ROW(q, ids, {
    int64_t from = t_ > T ? t_ - T : 0, L = t_ - from;
    int32_t *h = hist + r * T;
    memcpy(h, ids + a_ + from, (size_t)L * sizeof *h);
    for (int64_t j = L; j < T; j++) h[j] = -1;
    item[r] = ids[a_ + t_];
    if (urow) urow[r] = uid[u_];
    ru[r] = (int32_t)u_;
    rp[r] = (int32_t)t_;
    int32_t k = s->fixed ? AMEIR_SPLIT_TEST : part_;
    ds->split_rows[k][ds->split_n[k]++] = r;
    r++;
  })
  free(uid);
  ds->n_rows = n;
  ds->label = NULL;
  ds->task = AMEIR_TASK_RETRIEVAL;
  ds->target_field = 1;
  ds->n_users = q->n_users;
  ds->seq_empty = q->empty;
  ds->seq_short = shortu;
  ds->seq_clipped = clipped;
  ds->seq_unknown = unknown;
  ds->skipped = q->skipped + unknown;
  ds->schema_hash = s->hash;
  return AMEIR_OK;
}

ameir_status ameir__seq_load(ameir_context *ctx, ameir__schema *s, ameir_dataset *ds) {
  sq Q;
  memset(&Q, 0, sizeof Q);
  Q.ctx = ctx;
  Q.s = s;
  Q.c_sess = Q.c_item = Q.c_time = -1;
  ameir_status st = AMEIR_OK;
  if (s->fixed && (s->n_fixed != 2 + !!s->user_field || !s->fixed[1].name || strcmp(s->fixed[1].name, "item") ||
                   s->fixed[1].kind != AMEIR_FIELD_CATEGORICAL || s->fixed[1].vocab < 1 ||
                   s->fixed[1].vocab > INT32_MAX || (s->fixed[1].vocab > 1 && !s->fixed[1].keys) ||
                   s->fixed[0].max_len != s->max_len ||
                   (s->user_field && (!s->fixed[2].name || strcmp(s->fixed[2].name, "user") ||
                                      s->fixed[2].vocab < 1 || (s->fixed[2].vocab > 1 && !s->fixed[2].keys)))))
    st = ameir__error(ctx, AMEIR_ECONFIG, "%s: the schema is not a %s dataset's (fields hist[%d], item)", s->yaml,
                      s->format_name, (int)s->max_len);
  if (!st) st = read_all(&Q);
  int32_t *ids = NULL;
  uint64_t *keys = NULL;
  int64_t vocab = 0;
  if (!st) st = encode(&Q, &ids, &keys, &vocab);
  if (!st) {
    st = make_rows(&Q, ds, ids, keys, vocab);
  } else {
    free(ids);
    free(keys);
  }
  if (!st)
    ameir__log(ctx, AMEIR_LOG_INFO, "%s: %lld users, %lld items (vocab %lld): %lld train / %lld valid / %lld test "
               "rows; %lld lines without items, %lld users with < 3 items, %lld histories cut to %d, %lld rows "
               "with an unknown target dropped", s->name, (long long)ds->n_users, (long long)Q.n_vals,
               (long long)ds->fields[1].vocab, (long long)ds->split_n[0], (long long)ds->split_n[1],
               (long long)ds->split_n[2], (long long)ds->seq_empty, (long long)ds->seq_short,
               (long long)ds->seq_clipped, (int)s->max_len, (long long)ds->seq_unknown);
  free(Q.off);
  free(Q.ukey);
  free(Q.vals);
  free(Q.times);
  free(Q.cur);
  ameir__kmap_free(&Q.seen);
  if (Q.cols)
    for (int32_t i = 0; i < Q.n_hdr; i++) free(Q.cols[i]);
  free(Q.cols);
  free(Q.tok);
  free(Q.tlen);
  return st;
}
