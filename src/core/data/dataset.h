/* Internal layout of an opened dataset: what the model and the trainer read.
 *
 * Rows are stored column-wise (one array per column), in the order of the data files (rows
 * skipped as malformed are not stored). The split is a list of row indices per part, in file
 * order. Arrays may point into a memory-mapped binary cache: treat every array as read-only.
 *
 * Categorical encoding, per field: id 0 = out-of-vocabulary / rare / unseen (and, for hashing,
 * unused), ids 1..vocab-1 = the kept values, sorted by their 64-bit key. A multi-valued field
 * stores max_len ids per row, padded with -1. Ids are field-local; the model maps them to rows
 * of its embedding table.
 */
#ifndef AMEIR_CORE_DATASET_H
#define AMEIR_CORE_DATASET_H

#include <stdint.h>

#include "ameir/dataset.h"
#include "../base/base.h"

/* dense transforms (pinned: stored in caches and model files) */
enum {
  AMEIR_DENSE_NONE = 0,    /* x as is, missing -> fill_na (default 0) */
  AMEIR_DENSE_LOG = 1,     /* log(1 + max(x, 0)), missing -> 0 */
  AMEIR_DENSE_MINMAX = 2,  /* (x - min) / (max - min) with min/max over TRAIN rows, clipped */
  AMEIR_DENSE_BUCKET = 3   /* Kaggle: x > 2 -> floor(ln(x)^2), else trunc(x); becomes categorical */
};

/* AMEIR_TASK_CTR / AMEIR_TASK_RETRIEVAL come from include/ameir/dataset.h */
typedef struct ameir__field {
  char *name;
  int32_t kind;        /* AMEIR_FIELD_* */
  int32_t column;      /* index of the column in the source file (after header mapping) */
  /* categorical / multi / sequence */
  int64_t vocab;       /* number of ids including 0 (OOV): ids are in [0, vocab) */
  int32_t max_len;     /* 1 for univalent; L for multi (and T for sequences) */
  int32_t hash_buckets;/* > 0: ids = 1 + key % buckets, no vocabulary */
  int32_t min_count;
  uint64_t *keys;      /* [vocab]: keys[id] = 64-bit key of the value (keys[0] unused) */
  char share[64];      /* name of the field whose embedding table this one shares ("" none) */
  /* dense */
  int32_t transform;   /* AMEIR_DENSE_* */
  float fill_na;
  float t_min, t_max;  /* min-max parameters */
  /* data: exactly one of these is set */
  const int32_t *ids;  /* [n_rows * max_len] for categorical, multi, sequence */
  const float *values; /* [n_rows] for dense */
} ameir__field;

struct ameir_dataset {
  ameir_context *ctx;
  char *name;
  int32_t n_fields;
  ameir__field *fields;      /* schema order, label excluded */
  int64_t n_rows;
  const float *label;        /* [n_rows], 0 or 1 */
  int64_t *split_rows[3];    /* row indices of train/valid/test, ascending (file order) */
  int64_t split_n[3];
  int64_t skipped;
  double load_seconds;
  int32_t from_cache;
  uint64_t schema_hash;      /* hash of everything in the schema that changes the encoding */
  /* Task (AMEIR_TASK_*). For AMEIR_TASK_RETRIEVAL every row is one (history -> next item)
   * example: the SEQUENCE field(s) hold the history (most recent T, chronological,
   * left-aligned), `target_field` (a CATEGORICAL field whose vocabulary the history shares)
   * holds the next item; label is NULL. The candidates are ids 1..vocab-1 of target_field.
   * The user's whole history before the target (not cut to T) is items[user_off[u] ..
   * user_off[u] + row_pos[r]) with u = row_user[r]: evaluation excludes those items from the
   * candidates and training draws negatives outside them when asked. */
  int32_t task;
  int32_t target_field;      /* retrieval: field index of the next item; -1 otherwise */
  int64_t n_users;
  const int64_t *user_off;   /* [n_users + 1] offsets into items */
  const int32_t *items;      /* every user's full item sequence, ids of target_field's vocab */
  const int32_t *row_user;   /* [n_rows] */
  const int32_t *row_pos;    /* [n_rows] position of the target in its user's sequence */
  /* Retrieval loaders' counts (docs/data.md "Retrieval formats"): input lines with no item
   * (skipped), users with fewer than 3 items (training prefixes only), rows whose history was
   * longer than T (cut to the most recent T), rows dropped because their target item is out of
   * the vocabulary (counted in `skipped` too, like the empty lines). */
  int64_t seq_empty, seq_short, seq_clipped, seq_unknown;
  /* The configuration it was opened with (YAML text and overrides), kept so a model can carry
   * it and encode new files the same way (ameir__dataset_open_like_ov). NULL when opened
   * another way. */
  char *config_text;
  char **config_overrides;
  int32_t n_config_overrides;
  /* ownership: */
  void *map;                 /* mmap of the cache, or NULL */
  size_t map_size;
  void *owned;               /* private storage the arrays point into, or NULL */
};

/* Opens `files` (resolved against base_dir, NULL: the current directory) with the format, columns
 * and fields of the dataset config `yaml` (the one the model was trained with; its own files and
 * split are ignored), but encodes every value with the vocabularies of `schema` (n_fields fields,
 * index-aligned with the config's: same names, kinds and lengths, else AMEIR_ECONFIG): values
 * not in a field's keys[] get id 0 (OOV), hashed fields hash, dense fields use the schema's
 * transform, fill_na and min/max. Every row is in the test split; no cache is read or written.
 * Retrieval formats keep their rows (protocol of the format) and drop, counted, those whose
 * target item is not in the schema's item vocabulary. Returns what ameir_dataset_open_yaml
 * returns. */
/* open_like with "key=value" overrides applied to the config first (as ameir_dataset_open_yaml). */
ameir_status ameir__dataset_open_like_ov(ameir_dataset **out, ameir_context *ctx, const ameir__field *schema,
                                         int32_t n_fields, const char *yaml, const char *const *overrides,
                                         int32_t n_overrides, const char *base_dir, const char *const *files,
                                         int32_t n_files);
/* Copies the configuration text and overrides into ds (config_text ...). */
ameir_status ameir__dataset_keep_config(ameir_dataset *ds, const char *yaml, const char *const *overrides,
                                        int32_t n_overrides);
ameir_status ameir__dataset_open_like(ameir_dataset **out, ameir_context *ctx, const ameir__field *schema,
                                      int32_t n_fields, const char *yaml, const char *base_dir,
                                      const char *const *files, int32_t n_files);

#endif
