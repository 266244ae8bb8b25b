/* MovieLens rating logs -> a CTR dataset with behaviours, torch_ref's make_ml100k protocol
 * (docs/data.md "Rating logs and DMR rows"):
 *
 *   ratings stably sorted by timestamp (ties: file order) are the rows; the first floor(0.8 n)
 *   are train, the next floor(0.1 n) valid, the rest test; label = rating >= 4; hist_movie = the
 *   user's movies rated at a strictly earlier timestamp, the most recent max_len, chronological,
 *   through movie_id's vocabulary.
 *
 * ml100k: files u.data (user item rating timestamp, tab-separated), u.user (id|age|gender|
 * occupation|zip) and u.item (id|title|...|19 genre flags); fields user_id, age (ML-1M's groups),
 * gender, occupation, zip1 (first character of the zip code), movie_id, genres, hist_movie.
 * mlsmall (ml-latest-small): ratings.csv (userId,movieId,rating,timestamp) and movies.csv
 * (movieId,title,genres with "|"); fields user_id, movie_id, genres, hist_movie. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ML-1M's age groups: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+ (torch_ref ML_AGE_EDGES) */
static const int64_t age_edges[6] = {18, 25, 35, 45, 50, 56};

typedef struct {
  ameir_context *ctx;
  ameir__schema *s;
  int64_t skipped;
  const char *file;
  int64_t line;
  int ml100k;
  /* tokens of the current line */
  const char **tok;
  size_t *tlen;
  int32_t tcap;
  char *unq;
  size_t unq_cap;
  /* users: id -> index (ml100k: their side features) */
  ameir__kmap umap;
  uint64_t (*uside)[4];  /* age group, gender, occupation, zip1 keys */
  int64_t nu, ucap;
  /* movies: id -> index, genres gval[goff[m] .. goff[m + 1]) */
  ameir__kmap mmap;
  int64_t nm, mcap, *goff;
  uint64_t *gval;
  int64_t ng, gcap;
  int32_t gmax;
  /* ratings */
  int64_t n, cap;
  int32_t *ru, *rm;    /* user and movie index */
  uint64_t *uid, *mid; /* raw ids */
  double *ts;
  float *y;
} ml;

/* p = realloc(p, n elements), or return ENOMEM (in functions with `ml *m`) */
#define GROW(p, n)                                                      \
  do {                                                                  \
    void *q_ = ameir__realloc(m->ctx, (p), (size_t)(n) * sizeof *(p));  \
    if (!q_) return AMEIR_ENOMEM;                                       \
    (p) = q_;                                                           \
  } while (0)

static ameir_status grow_tokens(ml *m) {
  int32_t nc = m->tcap ? m->tcap * 2 : 32;
  GROW(m->tok, nc);
  GROW(m->tlen, nc);
  m->tcap = nc;
  return AMEIR_OK;
}

/* Splits on `sep`; with quote (movies.csv) "a,b" and "say ""hi""" are one token. Returns the
 * number of tokens, or -1 for a bad quote (bad row set). */
static int32_t split(ml *m, char *line, size_t len, char sep, int quote, ameir_status *st) {
  const char *q = line, *end = line + len;
  int32_t n = 0;
  size_t uo = 0;
  if (quote && m->unq_cap < len + 1) {
    char *u = ameir__realloc(m->ctx, m->unq, len + 1);
    if (!u) return *st = AMEIR_ENOMEM, -1;
    m->unq = u;
    m->unq_cap = len + 1;
  }
  for (;;) {
    if (n == m->tcap && (*st = grow_tokens(m))) return -1;
    if (quote && q < end && *q == '"') {
      size_t start = uo;
      const char *r = q + 1;
      for (;;) {
        if (r >= end) {
          ameir__bad_row(m->ctx, m->s, &m->skipped, st, m->file, m->line, "column %d: unterminated quote",
                         (int)n + 1);
          return -1;
        }
        if (*r == '"') {
          if (r + 1 < end && r[1] == '"') {
            m->unq[uo++] = '"';
            r += 2;
            continue;
          }
          break;
        }
        m->unq[uo++] = *r++;
      }
      r++;
      if (r < end && *r != sep) {
        ameir__bad_row(m->ctx, m->s, &m->skipped, st, m->file, m->line, "column %d: text after the closing quote",
                       (int)n + 1);
        return -1;
      }
      m->tok[n] = m->unq + start;
      m->tlen[n] = uo - start;
      n++;
      if (r >= end) break;
      q = r + 1;
      continue;
    }
    const char *e = memchr(q, sep, (size_t)(end - q));
    if (!e) e = end;
    m->tok[n] = q;
    m->tlen[n] = (size_t)(e - q);
    n++;
    if (e == end) break;
    q = e + 1;
  }
  return n;
}

static int bad(ml *m, ameir_status *st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int bad(ml *m, ameir_status *st, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ameir__bad_row(m->ctx, m->s, &m->skipped, st, m->file, m->line, "%s", msg);
  return 1;
}

static void trim(const char **t, size_t *n) {
  while (*n && (**t == ' ' || **t == '\t')) (*t)++, (*n)--;
  while (*n && ((*t)[*n - 1] == ' ' || (*t)[*n - 1] == '\t')) (*n)--;
}

/* token k as a non-negative integer; 1 (bad row) if it is not one */
static int int_tok(ml *m, int32_t k, const char *what, uint64_t *v, ameir_status *st) {
  const char *t = m->tok[k];
  size_t n = m->tlen[k];
  trim(&t, &n);
  if (ameir__parse_uint(t, n, v))
    return bad(m, st, "column %d (%s): '%.*s' is not a non-negative integer", (int)k + 1, what,
               (int)(n > 40 ? 40 : n), t);
  return 0;
}

static int num_tok(ml *m, int32_t k, const char *what, double *v, ameir_status *st) {
  if (ameir__parse_number(m->tok[k], m->tlen[k], v) != 0)
    return bad(m, st, "column %d (%s): '%.*s' is not a number", (int)k + 1, what,
               (int)(m->tlen[k] > 40 ? 40 : m->tlen[k]), m->tok[k]);
  return 0;
}

/* id -> index in map, adding it; *added tells whether it is new */
static ameir_status index_of(ml *m, ameir__kmap *map, uint64_t id, int32_t *idx, int *added) {
  uint64_t before = map->n;
  ameir_status st = ameir__kmap_add(m->ctx, map, id, ameir__kmap_hash(id), 0, idx);
  *added = map->n != before;
  return st;
}

/* the index of id in map, or -1 (looked up without adding) */
static int32_t find(const ameir__kmap *map, uint64_t id) {
  if (!map->cap) return -1;
  uint64_t mask = map->cap - 1, h = ameir__kmap_hash(id) & mask;
  for (;;) {
    const ameir__kslot *sl = &map->tab[h];
    if (!sl->idx1) return -1;
    if (sl->key == id) return (int32_t)(sl->idx1 - 1);
    h = (h + 1) & mask;
  }
}

/* ---- side tables ---- */

static ameir_status user_line(ml *m, char *line, size_t len) {
  ameir_status st = AMEIR_OK;
  int32_t n = split(m, line, len, '|', 0, &st);
  if (n < 0) return st;
  if (n != 5) return bad(m, &st, "%d columns, expected 5 (id|age|gender|occupation|zip)", (int)n), st;
  uint64_t id, age;
  if (int_tok(m, 0, "user id", &id, &st) || int_tok(m, 1, "age", &age, &st)) return st;
  int32_t idx;
  int added;
  if ((st = index_of(m, &m->umap, id, &idx, &added))) return st;
  if (!added) return bad(m, &st, "user %llu is listed twice", (unsigned long long)id), st;
  if (m->nu == m->ucap) {
    GROW(m->uside, m->ucap ? m->ucap * 2 : 1024);
    m->ucap = m->ucap ? m->ucap * 2 : 1024;
  }
  int64_t g = 0;
  while (g < 6 && (int64_t)age >= age_edges[g]) g++;
  m->uside[idx][0] = (uint64_t)g;
  m->uside[idx][1] = ameir__str_key(m->tok[2], m->tlen[2]);
  m->uside[idx][2] = ameir__str_key(m->tok[3], m->tlen[3]);
  m->uside[idx][3] = ameir__str_key(m->tok[4], m->tlen[4] ? 1 : 0);
  m->nu++;
  return AMEIR_OK;
}

static ameir_status push_genre(ml *m, uint64_t g) {
  if (m->ng == m->gcap) {
    GROW(m->gval, m->gcap ? m->gcap * 2 : 4096);
    m->gcap = m->gcap ? m->gcap * 2 : 4096;
  }
  m->gval[m->ng++] = g;
  return AMEIR_OK;
}

static ameir_status movie_line(ml *m, char *line, size_t len) {
  ameir_status st = AMEIR_OK;
  int32_t n = m->ml100k ? split(m, line, len, '|', 0, &st) : split(m, line, len, ',', 1, &st);
  if (n < 0) return st;
  if (m->ml100k && n < 20)
    return bad(m, &st, "%d columns, expected the id, 4 texts and 19 genre flags", (int)n), st;
  if (!m->ml100k && n != 3) return bad(m, &st, "%d columns, expected 3 (movieId,title,genres)", (int)n), st;
  uint64_t id;
  if (int_tok(m, 0, "movie id", &id, &st)) return st;
  int32_t idx;
  int added;
  int64_t mark = m->ng;
  if (m->ml100k) {
    /* the last 19 columns are the genre flags (a title may hold a '|') */
    for (int32_t k = n - 19; k < n; k++) {
      const char *t = m->tok[k];
      size_t tl = m->tlen[k];
      trim(&t, &tl);
      if (tl == 1 && t[0] == '1' && (st = push_genre(m, (uint64_t)(k - (n - 19))))) return st;
    }
  } else {
    const char *t = m->tok[2], *e = t + m->tlen[2];
    while (t < e) {
      const char *q = memchr(t, '|', (size_t)(e - t));
      if (!q) q = e;
      if (q > t && (st = push_genre(m, ameir__str_key(t, (size_t)(q - t))))) return st;
      t = q + 1;
    }
  }
  if ((st = index_of(m, &m->mmap, id, &idx, &added))) return st;
  if (!added) {
    m->ng = mark;
    return bad(m, &st, "movie %llu is listed twice", (unsigned long long)id), st;
  }
  if (m->nm + 2 > m->mcap) {
    GROW(m->goff, m->mcap ? m->mcap * 2 : 4096);
    m->mcap = m->mcap ? m->mcap * 2 : 4096;
  }
  m->goff[idx] = mark;
  m->goff[idx + 1] = m->ng;
  int64_t k = m->ng - mark;
  if (k > m->gmax) m->gmax = (int32_t)(k > (1 << 16) ? (1 << 16) : k);
  m->nm++;
  return AMEIR_OK;
}

/* ---- ratings ---- */

static ameir_status rating_line(ml *m, char *line, size_t len) {
  ameir_status st = AMEIR_OK;
  int32_t n = split(m, line, len, m->ml100k ? '\t' : ',', 0, &st);
  if (n < 0) return st;
  if (n != 4) return bad(m, &st, "%d columns, expected 4 (user, movie, rating, timestamp)", (int)n), st;
  uint64_t uid, mid;
  double rating, ts;
  if (int_tok(m, 0, "user id", &uid, &st) || int_tok(m, 1, "movie id", &mid, &st) ||
      num_tok(m, 2, "rating", &rating, &st) || num_tok(m, 3, "timestamp", &ts, &st))
    return st;
  int32_t u, mv = find(&m->mmap, mid);
  if (mv < 0)
    return bad(m, &st, "movie %llu is not in %s", (unsigned long long)mid, m->s->files[m->ml100k ? 2 : 1]), st;
  if (m->ml100k) {
    if ((u = find(&m->umap, uid)) < 0)
      return bad(m, &st, "user %llu is not in %s", (unsigned long long)uid, m->s->files[1]), st;
  } else {
    int added;
    if ((st = index_of(m, &m->umap, uid, &u, &added))) return st;
  }
  if (m->n == m->cap) {
    int64_t nc = m->cap ? m->cap * 2 : 65536;
    GROW(m->ru, nc);
    GROW(m->rm, nc);
    GROW(m->uid, nc);
    GROW(m->mid, nc);
    GROW(m->ts, nc);
    GROW(m->y, nc);
    m->cap = nc;
  }
  m->ru[m->n] = u;
  m->rm[m->n] = mv;
  m->uid[m->n] = uid;
  m->mid[m->n] = mid;
  m->ts[m->n] = ts;
  m->y[m->n] = rating >= 4 ? 1.0f : 0.0f;
  m->n++;
  return AMEIR_OK;
}

/* Reads file fi line by line; `header`: the first line of the file is skipped. */
static ameir_status read_file(ml *m, int32_t fi, int header, ameir_status (*fn)(ml *, char *, size_t)) {
  ameir__lines L;
  m->file = m->s->files[fi];
  ameir_status st = ameir__lines_open(m->ctx, &L, m->file, AMEIR__LINE_BUF);
  if (st) return st;
  for (;;) {
    char *line;
    size_t len;
    if ((st = ameir__lines_next(m->ctx, &L, &line, &len)) || !line) break;
    m->line = L.lineno;
    if (L.lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) line += 3, len -= 3;
    if (L.lineno == 1 && header) continue;
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
    if (k == len) continue;
    if ((st = fn(m, line, len))) break;
  }
  ameir__lines_close(&L);
  return st;
}

/* ---- rows ---- */

static ameir_status emit(ml *m, ameir__build *b) {
  ameir_context *ctx = m->ctx;
  ameir__schema *s = m->s;
  int64_t n = m->n, T = s->max_len, nu = (int64_t)m->umap.n;
  int32_t nf = s->nf, gf = nf - 2, hf = nf - 1;  /* genres, hist_movie */
  int64_t *order = ameir__malloc(ctx, (size_t)(n ? 2 * n : 1) * sizeof *order);
  int64_t *uoff = ameir__calloc(ctx, (size_t)nu + 1, sizeof *uoff);
  int64_t *ulist = ameir__malloc(ctx, (size_t)(n ? n : 1) * sizeof *ulist);
  int64_t *upos = ameir__malloc(ctx, (size_t)(n ? n : 1) * sizeof *upos);
  uint64_t *key = ameir__calloc(ctx, (size_t)nf, sizeof *key);
  double *val = ameir__calloc(ctx, (size_t)nf, sizeof *val);
  int64_t *moff = ameir__calloc(ctx, (size_t)nf, sizeof *moff), *mcnt = ameir__calloc(ctx, (size_t)nf, sizeof *mcnt);
  int64_t glen = s->f[gf].max_len;
  uint64_t *mk = ameir__malloc(ctx, (size_t)(glen + T) * sizeof *mk);
  ameir_status st = AMEIR_OK;
  if (!order || !uoff || !ulist || !upos || !key || !val || !moff || !mcnt || !mk) st = AMEIR_ENOMEM;
  if (!st) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
    ameir__sort_by_time(order, order + n, n, m->ts);
    /* every user's ratings in row order */
    for (int64_t i = 0; i < n; i++) uoff[m->ru[i] + 1]++;
    for (int64_t u = 0; u < nu; u++) uoff[u + 1] += uoff[u];
    for (int64_t r = 0; r < n; r++) {
      int64_t i = order[r], u = m->ru[i];
      upos[r] = uoff[u];
      ulist[uoff[u]++] = r;
    }
    for (int64_t u = nu; u > 0; u--) uoff[u] = uoff[u - 1];
    uoff[0] = 0;
  }
  for (int64_t r = 0; r < n && !st; r++) {
    int64_t i = order[r];
    int32_t u = m->ru[i];
    int32_t k = 0;
    if (m->ml100k) {
      key[k++] = m->uid[i];
      for (int j = 0; j < 4; j++) key[k++] = m->uside[u][j];
    } else {
      key[k++] = m->uid[i];
    }
    key[k++] = m->mid[i];
    /* genres: the first max_len of the movie's */
    int64_t ga = m->goff[m->rm[i]], gn = m->goff[m->rm[i] + 1] - ga;
    if (gn > glen) gn = glen;
    if (gn > 0) memcpy(mk, m->gval + ga, (size_t)gn * sizeof *mk);
    moff[gf] = 0;
    mcnt[gf] = gn;
    /* behaviours: the user's earlier rows with a strictly smaller timestamp, the last T */
    int64_t j = upos[r] - uoff[u];
    const int64_t *L = ulist + uoff[u];
    while (j > 0 && m->ts[order[L[j - 1]]] == m->ts[i]) j--;
    int64_t from = j > T ? j - T : 0;
    for (int64_t q = from; q < j; q++) mk[gn + q - from] = m->mid[order[L[q]]];
    moff[hf] = gn;
    mcnt[hf] = j - from;
    ameir__row row = {m->y[i], s->fixed ? AMEIR_SPLIT_TEST : ameir__time_part(r, n), key, val, mk, moff, mcnt};
    st = ameir__build_commit(b, &row);
  }
  free(order);
  free(uoff);
  free(ulist);
  free(upos);
  free(key);
  free(val);
  free(moff);
  free(mcnt);
  free(mk);
  return st;
}

ameir_status ameir__movielens_parse(ameir_context *ctx, ameir__schema *s, ameir__build *b) {
  ml M;
  memset(&M, 0, sizeof M);
  M.ctx = ctx;
  M.s = s;
  M.ml100k = s->format == AMEIR__FMT_ML100K;
  ameir_status st = AMEIR_OK;
  if (M.ml100k) st = read_file(&M, 1, 0, user_line);
  if (!st) st = read_file(&M, M.ml100k ? 2 : 1, !M.ml100k, movie_line);
  if (!st) st = read_file(&M, 0, !M.ml100k, rating_line);
  if (!st && M.n == 0)
    st = ameir__error(ctx, AMEIR_EFORMAT, "%s: no ratings (%lld skipped)", s->files[0], (long long)M.skipped);
  if (!st) {
    s->f[s->nf - 2].max_len = M.gmax > 0 ? M.gmax : 1;  /* genres (open_like: the schema's) */
    st = ameir__build_init(ctx, b, s);
  }
  if (!st) st = emit(&M, b);
  if (!st) b->skipped += M.skipped;
  free(M.tok);
  free(M.tlen);
  free(M.unq);
  ameir__kmap_free(&M.umap);
  ameir__kmap_free(&M.mmap);
  free(M.uside);
  free(M.goff);
  free(M.gval);
  free(M.ru);
  free(M.rm);
  free(M.uid);
  free(M.mid);
  free(M.ts);
  free(M.y);
  return st;
}
