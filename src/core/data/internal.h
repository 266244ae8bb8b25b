/* Private to src/core/data: the parsed schema, byte sources, the row builder and the cache. */
#ifndef AMEIR_CORE_DATA_INTERNAL_H
#define AMEIR_CORE_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dataset.h"
#include "../io/config.h"

/* Bumped whenever the encoding of rows changes (part of every schema hash and so of every cache
 * name): old caches are then simply not found. */
#define AMEIR__DATA_ENCODING 1

/* ---- schema (schema.c) ---- */

enum { AMEIR__FMT_DELIM = 0, AMEIR__FMT_LIBFM = 1 };
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

ameir_status ameir__build_init(ameir_context *ctx, ameir__build *b, const ameir__schema *s);
/* Room for one more row. */
ameir_status ameir__build_reserve(ameir__build *b);
/* key -> local index, counting it when `count` (a train row of the field owning the map);
 * h = ameir__kmap_hash(key). */
ameir_status ameir__kmap_add(ameir_context *ctx, ameir__kmap *m, uint64_t key, uint64_t h, int count,
                             int32_t *local);
/* Builds vocabularies, maps ids, applies train-dependent transforms and fills ds (moving the
 * arrays into it). b is emptied. */
ameir_status ameir__build_finish(ameir__build *b, ameir_dataset *ds);
void ameir__build_free(ameir__build *b);

/* ---- text parsing (parse.c) ---- */

ameir_status ameir__parse_files(ameir_context *ctx, ameir__schema *s, ameir__build *b);

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
