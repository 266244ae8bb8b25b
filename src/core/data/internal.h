/* Private to src/core/data: the parsed schema, byte sources, the row builder and the cache. */
#ifndef AMEIR_CORE_DATA_INTERNAL_H
#define AMEIR_CORE_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataset.h"
#include "../io/config.h"

/* Line buffer of the text readers (it grows for longer lines); the fuzz build makes it small. */
#ifndef AMEIR__LINE_BUF
#define AMEIR__LINE_BUF (16u << 20)
#endif
#define AMEIR__MAX_LOGGED_BAD 10

/* Bumped whenever the encoding of rows changes (part of every schema hash and so of every cache
 * name): old caches are then simply not found. */
#define AMEIR__DATA_ENCODING 1

/* ---- schema (schema.c) ---- */

enum {
  AMEIR__FMT_DELIM = 0,
  AMEIR__FMT_LIBFM = 1,
  /* retrieval (seq.c): one row per (history -> next item), leave-one-out split */
  AMEIR__FMT_USERSEQ = 2,
  AMEIR__FMT_USERITEM = 3,
  AMEIR__FMT_SESSION = 4,
  /* CTR with behaviours built from rating logs (movielens.c) and DMR's Alimama rows (dmr.c) */
  AMEIR__FMT_ML100K = 5,
  AMEIR__FMT_MLSMALL = 6,
  AMEIR__FMT_DMR = 7
};
static inline int ameir__fmt_retrieval(int32_t f) {
  return f == AMEIR__FMT_USERSEQ || f == AMEIR__FMT_USERITEM || f == AMEIR__FMT_SESSION;
}
enum { AMEIR__LABEL_01 = 0, AMEIR__LABEL_PM1 = 1, AMEIR__LABEL_POSITIVE = 2 };
enum {
  AMEIR__SPLIT_RANDOM = 0,
  AMEIR__SPLIT_MODULO = 1,
  AMEIR__SPLIT_FILE = 2,
  AMEIR__SPLIT_COLUMN = 3,
  AMEIR__SPLIT_NONE = 4
};

/* The key of a value that is absent (libfm range mode: no index of the field in the line). */
#define AMEIR__KEY_ABSENT 0xfffffffffffffffeull

typedef struct ameir__fspec {
  char *name;
  char *column;        /* source column name (delimited formats); NULL for libfm */
  int32_t line;        /* YAML line of the feature entry */
  int32_t kind;        /* AMEIR_FIELD_* */
  int32_t transform;   /* AMEIR_DENSE_* (numeric; BUCKET makes the field categorical) */
  double fill_na;
  int32_t min_count;
  int32_t hash_buckets;
  int32_t max_len;
  int32_t keep_last;   /* sequences keep their most recent max_len values, multi the first */
  char sep;            /* value separator of multi / sequence fields */
  char share[64];      /* share_embedding target ("" none) */
  int64_t range_lo, range_hi;  /* libfm index range (range mode), else -1 */
  /* resolved while reading */
  int32_t col;         /* column index in a line (delimited) or position (libfm positional) */
  int32_t vocab_of;    /* field whose vocabulary this one uses (itself, or its share target) */
} ameir__fspec;

typedef struct ameir__schema {
  char *yaml;          /* config file name, for messages */
  char *name;
  char *format_name;   /* "criteo", "avazu", "csv", "tsv", "libfm" */
  int32_t format;      /* AMEIR__FMT_* */
  char sep;            /* delimited: column separator */
  char quote;          /* delimited: quote character, 0 = none */
  int32_t header;      /* delimited: the first line of every file is a header */
  char **columns;      /* column names when known from the schema (preset or `columns:`) */
  int32_t n_columns;
  int32_t columns_line;
  char *label;         /* label column name (delimited) */
  int32_t label_mode;  /* AMEIR__LABEL_* */
  int32_t label_line;
  ameir__fspec *f;
  int32_t nf;
  int32_t auto_features;  /* no `features:`: every column but label/drop (delimited), f0.. (libfm) */
  int32_t features_line;
  char **drop;
  int32_t n_drop;
  int32_t drop_line;
  int32_t min_count;   /* default for categorical features */
  int32_t transform;   /* default for numeric features */
  int32_t libfm_ranges;   /* libfm: features carry index ranges */
  int32_t num_fields;     /* libfm: fixed features per line (0: from the first line) */
  int32_t num_fields_line;
  char **files;        /* resolved paths, in reading order */
  int8_t *role;        /* per file: -1 = split by method, else AMEIR_SPLIT_* (method file) */
  int32_t n_files;
  int32_t split;       /* AMEIR__SPLIT_* */
  uint64_t seed;
  double valid, test;  /* random split fractions of all rows */
  char *split_column;
  int32_t split_line;
  char **valid_values, **test_values;
  int32_t n_valid_values, n_test_values;
  int32_t has_valid_files;
  int32_t skip_bad;    /* on_bad_row: skip */
  int32_t cache;       /* cache enabled */
  char *cache_dir;     /* explicit cache directory or NULL */
  uint64_t hash;       /* schema hash (everything that changes the encoded rows) */
  /* retrieval, ml100k, mlsmall and dmr formats */
  int32_t max_len;     /* history length T (`max_len`, 50) */
  int32_t vocab_identity; /* retrieval `vocab: identity`: item id k -> id k */
  int32_t user_field;  /* retrieval `user_field: true`: a categorical field "user" per row */
  char *session_col, *item_col, *time_col;  /* session: column names (time_col NULL: file order) */
  /* open_like: every row goes to the test split and every vocabulary, transform parameter and
   * multi-valued length comes from these fields (index-aligned with f) */
  const ameir__field *fixed;
  int32_t n_fixed;
  /* set by binding */
  int32_t bound;       /* columns resolved */
  int32_t label_col;   /* delimited: index of the label column */
  int32_t split_col;   /* delimited: index of the split column or -1 */
  int32_t columns_given; /* columns come from the schema (preset or columns:), not a header */
} ameir__schema;

/* Reads the dataset section (`prefix` is "dataset." or "") into s. ECONFIG with file:line:key. */
ameir_status ameir__schema_read(ameir_context *ctx, ameir__config *cfg, const char *prefix,
                                ameir__schema *s);
/* Resolves feature columns against a column list (header or schema columns): sets fspec.col,
 * creates the automatic features, checks label/split/drop columns. ECONFIG naming the YAML line. */
ameir_status ameir__schema_bind(ameir_context *ctx, ameir__schema *s, char *const *cols, int32_t ncols,
                                const char *where);
/* libfm: creates f0..f{n-1} (automatic features) or checks the declared count. */
ameir_status ameir__schema_bind_libfm(ameir_context *ctx, ameir__schema *s, int32_t nfeat,
                                      const char *file, int64_t line);
void ameir__schema_free(ameir__schema *s);
/* Sets s->hash from everything in the schema that changes the encoded rows. */
void ameir__schema_hash(ameir__schema *s);
/* Criteo preset: I1..I13 are numeric. */
static inline int ameir__schema_preset_numeric(const ameir__schema *s, const char *col) {
  return s->format_name && strcmp(s->format_name, "criteo") == 0 && col[0] == 'I';
}

/* ---- byte sources and lines (source.c) ---- */

typedef struct ameir__src ameir__src;
ameir_status ameir__src_open(ameir_context *ctx, const char *path, ameir__src **out);
ameir_status ameir__src_read(ameir_context *ctx, ameir__src *s, char *buf, size_t cap, size_t *got);
void ameir__src_close(ameir__src *s);

typedef struct ameir__lines {
  ameir__src *src;
  const char *path;
  char *buf;           /* cap + 1 bytes: the extra one terminates a last line without '\n' */
  size_t cap, pos, end;
  int eof;
  int64_t lineno;      /* 1-based number of the line last returned */
} ameir__lines;

ameir_status ameir__lines_open(ameir_context *ctx, ameir__lines *L, const char *path, size_t bufsize);
ameir_status ameir__lines_next(ameir_context *ctx, ameir__lines *L, char **line, size_t *len);
void ameir__lines_close(ameir__lines *L);

/* ---- keys and counting (build.c) ---- */

/* 64-bit key of a categorical string value: strings of up to 8 bytes are their bytes read as a
 * big-endian number (so keys sort like the strings, and Criteo's 8-hex values sort like
 * torch_ref's), longer strings a 64-bit hash with the top bit set. */
static inline uint64_t ameir__str_key(const char *s, size_t n) {
  if (n <= 8) {
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) k |= (uint64_t)(uint8_t)s[i] << (56 - 8 * i);
    return k;
  }
  uint64_t h = 0x243f6a8885a308d3ull ^ (uint64_t)n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  for (size_t j = 0; i + j < n; j++) w |= (uint64_t)(uint8_t)s[i + j] << (8 * j);
  h = ameir__mix64((h ^ w) * 0x9e3779b97f4a7c15ull);
  h |= 1ull << 63;
  return h >= AMEIR__KEY_ABSENT ? AMEIR__KEY_ABSENT - 1 : h;
}

/* Open-addressing map key -> local index (insertion order) with a train-row count per key;
 * one 16-byte slot holds all three, so a lookup touches one cache line. */
typedef struct ameir__kslot {
  uint64_t key;
  uint32_t idx1;       /* local index + 1, 0 = empty */
  uint32_t count;      /* count over train rows (saturating) */
} ameir__kslot;

typedef struct ameir__kmap {
  ameir__kslot *tab;   /* [cap], cap a power of two, at most half full */
  uint64_t cap, n;
} ameir__kmap;

static inline uint64_t ameir__kmap_hash(uint64_t key) { return ameir__mix64(key); }
static inline void ameir__kmap_prefetch(const ameir__kmap *m, uint64_t h) {
#if defined(__GNUC__)
  if (m->tab) __builtin_prefetch(&m->tab[h & (m->cap - 1)], 1);
#else
  (void)m;
  (void)h;
#endif
}

/* Per-field column under construction. */
typedef struct ameir__col {
  int32_t *ids;        /* local indices (or hashed ids), -1 padding */
  float *values;       /* numeric */
  ameir__kmap map;
  double tmin, tmax;   /* numeric, over train rows */
  int32_t have_minmax;
} ameir__col;

typedef struct ameir__build {
  ameir_context *ctx;
  const ameir__schema *s;
  int64_t n, cap;      /* rows stored / allocated */
  float *label;
  uint8_t *part;       /* AMEIR_SPLIT_* per row */
  ameir__col *col;     /* [s->nf] */
  int64_t skipped;
  int64_t train_file_rows;  /* split file: rows of the train files so far */
} ameir__build;

/* Starts a build. With s->fixed, first checks the fields against it (ECONFIG naming the first
 * difference) and takes its transform parameters and lengths. */
ameir_status ameir__build_init(ameir_context *ctx, ameir__build *b, ameir__schema *s);
/* Room for one more row. */
ameir_status ameir__build_reserve(ameir__build *b);
/* key -> local index, counting it when `count` (a train row of the field owning the map);
 * h = ameir__kmap_hash(key). */
ameir_status ameir__kmap_add(ameir_context *ctx, ameir__kmap *m, uint64_t key, uint64_t h, int count,
                             int32_t *local);
/* One encoded row: values of field fi are key[fi] (univalent categorical), val[fi] (numeric,
 * missing already filled) or mkeys[moff[fi] .. moff[fi] + mcnt[fi]) (multi / sequence; a
 * sequence keeps its last max_len values, a multi field its first). */
typedef struct ameir__row {
  float y;
  int32_t part;        /* AMEIR_SPLIT_* */
  const uint64_t *key;
  const double *val;
  const uint64_t *mkeys;
  const int64_t *moff, *mcnt;
} ameir__row;
/* Appends a row (vocabulary counts from train rows, minmax statistics). */
ameir_status ameir__build_commit(ameir__build *b, const ameir__row *row);
/* Vocabulary of one map: keys counted >= min_count, sorted; remap[local] = id (0 = OOV), keys[id]. */
ameir_status ameir__build_vocab(ameir_context *ctx, const ameir__kmap *m, int32_t min_count, int32_t **remap,
                                uint64_t **keys, int64_t *vocab);
/* remap[local] = the id of the key in a fixed vocabulary (keys[1..vocab-1]), 0 if absent. */
ameir_status ameir__fixed_remap(ameir_context *ctx, const ameir__kmap *m, const uint64_t *keys, int64_t vocab,
                                int32_t **remap);
void ameir__kmap_free(ameir__kmap *m);
/* Builds vocabularies, maps ids, applies train-dependent transforms and fills ds (moving the
 * arrays into it). b is emptied. */
ameir_status ameir__build_finish(ameir__build *b, ameir_dataset *ds);
void ameir__build_free(ameir__build *b);

/* ---- text parsing (parse.c) ---- */

ameir_status ameir__parse_files(ameir_context *ctx, ameir__schema *s, ameir__build *b);

/* Other readers: retrieval formats straight into ds (seq.c); ml100k / mlsmall (movielens.c) and
 * dmr (dmr.c) into the builder. */
ameir_status ameir__seq_load(ameir_context *ctx, ameir__schema *s, ameir_dataset *ds);
ameir_status ameir__movielens_parse(ameir_context *ctx, ameir__schema *s, ameir__build *b);
ameir_status ameir__dmr_parse(ameir_context *ctx, ameir__schema *s, ameir__build *b);
/* The schema's own fields (ml100k, mlsmall, dmr, retrieval), made when the schema is read. */
ameir_status ameir__schema_add_field(ameir_context *ctx, ameir__schema *s, const char *name, int32_t kind,
                                     int32_t max_len, const char *share);

/* Shared by the readers. A malformed row: with on_bad_row: skip it is counted in *skipped and
 * logged (the first 10), and *st stays OK; else *st = EFORMAT "file:line: msg". */
void ameir__bad_row(ameir_context *ctx, const ameir__schema *s, int64_t *skipped, ameir_status *st,
                    const char *file, int64_t line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;
/* The part of row i (0-based over all files) under the schema's split method (not `column`);
 * file_index and train_file_rows (rows so far of train-role files) for method `file`. */
int32_t ameir__row_part(const ameir__schema *s, int64_t i, int32_t file_index, int64_t train_file_rows);
/* A non-negative decimal integer of at most 18 digits: 0 ok, -1 not one. */
int ameir__parse_uint(const char *p, size_t n, uint64_t *out);
/* Stable sort of idx[0..n) by t[idx[i]] ascending (merge sort; tmp has n slots). */
void ameir__sort_by_time(int64_t *idx, int64_t *tmp, int64_t n, const double *t);
/* The first row-count parts of a time-ordered log: floor(0.8 n) train, floor(0.1 n) valid
 * (computed in double, as Python's int(n * 0.8)), the rest test. */
static inline int32_t ameir__time_part(int64_t i, int64_t n) {
  int64_t tr = (int64_t)((double)n * 0.8), va = (int64_t)((double)n * 0.1);
  return i < tr ? AMEIR_SPLIT_TRAIN : i < tr + va ? AMEIR_SPLIT_VALID : AMEIR_SPLIT_TEST;
}

/* Number parsing: 0 ok, 1 missing (empty, nan, na, null, none), -1 not a number. */
int ameir__parse_number(const char *p, size_t n, double *out);

/* ---- cache (cache.c) ---- */

/* Path of the cache file for this schema (caller frees), or NULL when caching is off. */
char *ameir__cache_path(ameir_context *ctx, const ameir__schema *s);
/* 1: loaded into ds; 0: missing, stale or invalid (ds untouched, the reason logged). */
int ameir__cache_load(ameir_context *ctx, const ameir__schema *s, const char *path, ameir_dataset *ds);
/* Sizes and modification times of the source files, taken before they are read (caller frees;
 * NULL if one cannot be stat'ed). */
void *ameir__cache_snapshot(const ameir__schema *s);
/* Writes ds atomically, unless a source changed since `snapshot` (it was read while being
 * written); failures are logged, not returned (the dataset works without a cache). */
void ameir__cache_write(ameir_context *ctx, const ameir__schema *s, const char *path,
                        const ameir_dataset *ds, const void *snapshot);

/* ---- hashing helpers ---- */

static inline uint64_t ameir__hash_bytes(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

#endif
