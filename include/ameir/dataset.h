/* libameir: datasets. A dataset is opened from a YAML schema that names the files, their format,
 * every column (label, dense fields with a transform, categorical fields with a vocabulary or
 * hashing, sequence fields) and the split. The first open parses the text files and writes a
 * binary column-wise cache; later opens memory-map it. See docs/data.md for the schema keys.
 *
 * Thread safety: a dataset is read-only after it is opened; several models may read it at once.
 */
#ifndef AMEIR_DATASET_H
#define AMEIR_DATASET_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Split identifiers (pinned). */
#define AMEIR_SPLIT_TRAIN 0
#define AMEIR_SPLIT_VALID 1
#define AMEIR_SPLIT_TEST  2

/** Field kinds returned by ameir_dataset_field_kind (pinned). */
#define AMEIR_FIELD_CATEGORICAL 0  /**< univalent categorical */
#define AMEIR_FIELD_MULTI       1  /**< multi-valued categorical (summed embeddings) */
#define AMEIR_FIELD_DENSE       2  /**< numeric */
#define AMEIR_FIELD_SEQUENCE    3  /**< a behaviour sequence field */

/** Tasks (pinned): click-through prediction with a 0/1 label, or next-item retrieval where each
 *  row is a behaviour history and the next item (leave-one-out splits). */
#define AMEIR_TASK_CTR       0
#define AMEIR_TASK_RETRIEVAL 1

/** Opens a dataset described by a YAML file (the `dataset:` section of the file, or the whole
 *  file when it has no such section). Relative data paths are resolved against the YAML file's
 *  directory (or its `data_dir` key).
 *  @param out    receives the dataset; NULL on failure.
 *  @param ctx    context (logging, threads, seed for a random split).
 *  @param path   YAML file.
 *  @return AMEIR_OK; AMEIR_EIO (unreadable file), AMEIR_ECONFIG (bad schema: file, line and key in
 *          the message), AMEIR_EFORMAT (bad data row: file, line and column), AMEIR_ENOMEM.
 *  Since 0.1. */
AMEIR_API ameir_status ameir_dataset_open(ameir_dataset **out, ameir_context *ctx, const char *path);

/** Same as ameir_dataset_open with the YAML given as text; relative paths are resolved against
 *  base_dir (NULL: the current directory). `overrides` is NULL or an array of n_overrides
 *  "key.path=value" strings applied over the YAML (e.g. "split.method=modulo"). Since 0.1. */
AMEIR_API ameir_status ameir_dataset_open_yaml(ameir_dataset **out, ameir_context *ctx,
                                               const char *yaml, const char *base_dir,
                                               const char *const *overrides, int32_t n_overrides);

/** Frees the dataset. Models trained on it stay valid. NULL is a no-op. */
AMEIR_API void ameir_dataset_free(ameir_dataset *ds);

/** Number of rows of a split (AMEIR_SPLIT_*), or of all rows with split -1; -1 on bad split. */
AMEIR_API int64_t ameir_dataset_rows(const ameir_dataset *ds, int32_t split);

/** Number of fields (dense, categorical, multi-valued and sequence), the label excluded. */
AMEIR_API int32_t ameir_dataset_fields(const ameir_dataset *ds);

/** Name of field i (0-based, schema order). Borrowed; NULL if i is out of range. */
AMEIR_API const char *ameir_dataset_field_name(const ameir_dataset *ds, int32_t i);

/** Kind of field i (AMEIR_FIELD_*), or -1 if i is out of range. */
AMEIR_API int32_t ameir_dataset_field_kind(const ameir_dataset *ds, int32_t i);

/** Vocabulary size of categorical field i including its out-of-vocabulary id (0 for dense). */
AMEIR_API int64_t ameir_dataset_field_vocab(const ameir_dataset *ds, int32_t i);

/** Writes a synthetic CTR dataset drawn from a known teacher into dir (created if needed):
 *  dir/synthetic.csv and dir/synthetic.yaml, a config ameir_dataset_open reads. Eight
 *  categorical fields c0..c7 with Zipf-like frequencies, three planted Hadamard interactions
 *  (c0, c1), (c2, c3), (c4, c5, c6), and a behaviour sequence `hist` whose planted walk the
 *  target `item` continues for half of the rows (which raises their click probability). The
 *  same seed writes the same files. rows in [100, 1e8].
 *  @return AMEIR_OK; AMEIR_EIO; AMEIR_EINVAL. Since 0.1. */
AMEIR_API ameir_status ameir_dataset_generate(ameir_context *ctx, const char *dir, int64_t rows, uint64_t seed);

/** The dataset's task (AMEIR_TASK_*), -1 for NULL. Since 0.1. */
AMEIR_API int32_t ameir_dataset_task(const ameir_dataset *ds);

/** Rows that were skipped as malformed (with `on_bad_row: skip`). */
AMEIR_API int64_t ameir_dataset_skipped_rows(const ameir_dataset *ds);

/** Seconds the open took, and whether it came from the binary cache (1) or parsed text (0). */
AMEIR_API double ameir_dataset_load_seconds(const ameir_dataset *ds, int32_t *from_cache);

#ifdef __cplusplus
}
#endif

#endif
