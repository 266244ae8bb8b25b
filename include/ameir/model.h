/* libameir: models. A model is one fixed architecture (ameir_arch) instantiated for a dataset's
 * schema: embeddings, the backbone's parameters and the optimiser state. It trains with
 * mini-batch Adam, evaluates, predicts, and saves to / loads from a versioned file.
 *
 * Thread safety: training and evaluation use one thread of the caller at a time per model (they
 * run the context's worker threads inside). ameir_model_predict, ameir_model_predict_text,
 * ameir_model_predict_split, ameir_model_predict_file and ameir_model_topk may be called from
 * many threads at once on one model that is not being trained or changed: each call has its own
 * workspace (the caller's, or one the model keeps or makes for it) and shares only the read-only
 * parameters; no lock is taken. The context's last-error message is shared by those threads.
 */
#ifndef AMEIR_MODEL_H
#define AMEIR_MODEL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Metric identifiers (pinned). */
#define AMEIR_METRIC_AUC      1  /**< ROC AUC, ties averaged */
#define AMEIR_METRIC_LOGLOSS  2  /**< binary log loss, predictions clipped to [1e-7, 1-1e-7] */
#define AMEIR_METRIC_LOSS     3  /**< the training objective on the split */
#define AMEIR_METRIC_CTR      4  /**< mean label of the split */
#define AMEIR_METRIC_ROWS     5  /**< rows evaluated */
#define AMEIR_METRIC_GAUC     6  /**< AUC per user (option gauc_field), weighted by rows; users
                                      with one class only are left out */
/* The retrieval metrics rank the target among the candidates (option eval_protocol: every item
 * outside the user's history, or sampled negatives): rank = candidates scoring above it; ties
 * are broken uniformly at random in expectation (each metric is its mean over the tied ranks;
 * since 0.2). */
#define AMEIR_METRIC_HR5      7  /**< retrieval: hit rate at 5 (protocol: option eval_protocol) */
#define AMEIR_METRIC_NDCG5    8  /**< retrieval: NDCG at 5, 1/log2(rank+2) */
#define AMEIR_METRIC_HR10     9  /**< retrieval: hit rate at 10 */
#define AMEIR_METRIC_NDCG10  10  /**< retrieval: NDCG at 10 */
#define AMEIR_METRIC_MRR     11  /**< retrieval: mean reciprocal rank 1/(rank+1) */
#define AMEIR_METRIC_HR20    12  /**< retrieval: hit rate at 20 */
#define AMEIR_METRIC_NDCG20  13  /**< retrieval: NDCG at 20 */

/** Creates an untrained model of `arch` for the schema of `ds`, with parameters initialised
 *  from the context's seed. The model keeps no reference to ds or arch.
 *  @return AMEIR_OK; AMEIR_ECONFIG (the arch names a field the dataset lacks, or does not fit
 *  it: the message says why); AMEIR_ENOMEM; AMEIR_EBACKEND. Since 0.1. */
AMEIR_API ameir_status ameir_model_create(ameir_model **out, ameir_context *ctx,
                                          const ameir_arch *arch, const ameir_dataset *ds);

/** Frees the model. NULL is a no-op. */
AMEIR_API void ameir_model_free(ameir_model *model);

/** Sets a training option from text. Keys (defaults in brackets): emb [16] (only before the
 *  first training step), batch [256], epochs [1], lr [1e-3], lr_schedule [constant|cosine],
 *  l2 [0], dropout [0: rate on the MLP's hidden layers while training], optimizer [adam|sparse_adam], beta1 [0.9], beta2 [0.999], eps [1e-8],
 *  init [uniform (paper, +-init_range)|normal (init_std)] for embeddings, shuffle [1|0],
 *  patience [0 = no early stopping], early_metric [auc|logloss], restore_best [1],
 *  max_steps [0 = no limit], eval_batch [4096], init_range [0.05], mlp_init [he_normal|torch],
 *  timing_warmup [0: steps left out of the train_samples_per_s statistic]; retrieval: neg [5]
 *  sampled negatives per row, neg_sampling [uniform|unseen: items the user never touched],
 *  positives [1: the next item; P > 1: the next P items of the training part, appendix D.2's
 *  "last items as positives" with every prefix as a clipping point], eval_protocol
 *  [full|sampled], eval_negatives [100], loss [bce: sampled BCE, eq. (7)|bpr: the mean over
 *  (positive, negative) pairs of -log sigmoid(s_pos - s_neg), BPR; needs positives 1]; gauc_field
 *  [user_id].
 *  @return AMEIR_OK; AMEIR_ENOTFOUND (unknown key); AMEIR_EINVAL (bad value, message says why);
 *  AMEIR_ESTATE (emb after training started). Since 0.1. */
AMEIR_API ameir_status ameir_model_set_option(ameir_model *model, const char *key,
                                              const char *value);

/** Reads an option in effect as text into buf (NUL-terminated, truncated to size). */
AMEIR_API ameir_status ameir_model_get_option(const ameir_model *model, const char *key, char *buf,
                                              size_t size);

/** Applies every key of one section of a YAML file (default section "train") as
 *  ameir_model_set_option would; the keys model, mlp, arch, threads and seed are skipped (they
 *  belong to the program). The message of a failure names file, line and key. Since 0.1. */
AMEIR_API ameir_status ameir_model_set_options_file(ameir_model *model, const char *path,
                                                    const char *section);

/** Trains on the train split of ds for the configured epochs, with early stopping on the
 *  validation split when patience > 0 (best weights restored when restore_best is 1). Reports
 *  progress through the context's progress callback ("train", step, total steps, running loss).
 *  @return AMEIR_OK; AMEIR_ECANCELLED; AMEIR_ENUMERIC (loss became NaN/inf); AMEIR_ECONFIG
 *  (ds has another schema than the model). Since 0.1. */
AMEIR_API ameir_status ameir_model_train(ameir_model *model, const ameir_dataset *ds);

/** Evaluates on a split and writes n metrics (AMEIR_METRIC_* ids in `ids`) into values. */
AMEIR_API ameir_status ameir_model_evaluate(ameir_model *model, const ameir_dataset *ds,
                                            int32_t split, int32_t n, const int32_t *ids,
                                            double *values);

/** Predicts click probabilities for `n` rows of a split (rows first..first+n-1 of it) into
 *  out[n]. Thread safe: concurrent calls on one model (not being trained) each use a
 *  workspace of their own, allocated for the call, and share only the read-only parameters;
 *  no lock is taken. Since 0.1. */
AMEIR_API ameir_status ameir_model_predict_split(const ameir_model *model, const ameir_dataset *ds,
                                                 int32_t split, int64_t first, int64_t n,
                                                 float *out);

/** A statistic of the last ameir_model_train call: train_seconds, eval_seconds, train_samples,
 *  train_steps, train_samples_per_s (after timing_warmup steps), train_loss_first, train_loss_last (means over the first and
 *  last up-to-50 steps), epochs, best_epoch (0 without early stopping), best_valid, and
 *  time_stage, time_forward, time_backward (seconds spent in each phase of the steps).
 *  AMEIR_ENOTFOUND for an unknown key. Since 0.1. */
AMEIR_API ameir_status ameir_model_get_stat(const ameir_model *model, const char *key, double *value);

/** Scores every row of a data file in the format of the dataset the model was trained on (the
 *  model carries that dataset's configuration and vocabularies: unseen categorical values go to
 *  the field's out-of-vocabulary id). *out receives n click probabilities in file order (free
 *  with ameir_free). CTR models only. @return AMEIR_OK; AMEIR_EIO / AMEIR_EFORMAT (the file,
 *  with line and column); AMEIR_ESTATE (a model made from a dataset not opened from YAML);
 *  AMEIR_EUNSUPPORTED (a retrieval model). Since 0.1. */
AMEIR_API ameir_status ameir_model_predict_file(const ameir_model *model, const char *path, float **out,
                                                int64_t *n);

/* ---- Serving: rows held in memory (since 0.2) ----
 *
 * An encoded row is every input field of the model's schema, in the schema's order (the order
 * of the dataset the model was made from: ameir_dataset_field_name(ds, i) is field i), split
 * into two row-major arrays:
 *   ids   [n, n_ids] int32: each categorical, multi-valued and behaviour-sequence field in field
 *         order, `width` columns each (1 for a univalent field, max_len for a multi-valued or a
 *         sequence field). Values are the field's ids as an opened dataset stores them: 0 the
 *         out-of-vocabulary id, 1..vocab-1 the values kept from the training data, a negative id
 *         no value (padding: a multi-valued field pads with -1 after its values, a sequence
 *         field is left-aligned and ends at its first negative id; a negative id in a univalent
 *         field gives it a zero embedding). An id >= vocab is read as 0 (out of vocabulary),
 *         as the staging of a dataset's rows does. A hashed field's ids are 1 + key % buckets.
 *   dense [n, n_dense] float: each numeric field in field order, the raw value as it appears in
 *         a data file; the model applies the field's stored transform (log, min-max with the
 *         training data's bounds, or none) and reads NaN as missing (the field's fill_na), as
 *         the loader does for text. A value that float cannot hold exactly may round otherwise
 *         than the same number parsed from text.
 * ameir_model_input_layout gives n_ids and n_dense, ameir_model_input_field where each field
 * lies. These functions are for CTR models; a retrieval model ranks items (ameir_model_topk):
 * they return AMEIR_EUNSUPPORTED for it. */

/** The shape of an encoded row (above): the number of input fields, of int32 id columns and
 *  of float dense columns. Any output may be NULL. Thread safe.
 *  @return AMEIR_OK; AMEIR_EINVAL (model NULL); AMEIR_EUNSUPPORTED (a retrieval model). Since 0.2. */
AMEIR_API ameir_status ameir_model_input_layout(const ameir_model *model, int32_t *n_fields, int32_t *n_ids,
                                                int32_t *n_dense);

/** Input field `field` (0 <= field < n_fields, the schema's order): its name (borrowed: valid
 *  while the model lives), kind (AMEIR_FIELD_*), first column in the ids array (for
 *  AMEIR_FIELD_DENSE: in the dense array), width in columns (1 for a dense field) and vocabulary
 *  size (ids 0..vocab-1; 0 for a dense field). Any output may be NULL. Thread safe.
 *  @return AMEIR_OK; AMEIR_EINVAL (model NULL, field out of range); AMEIR_EUNSUPPORTED (a
 *  retrieval model). Since 0.2. */
AMEIR_API ameir_status ameir_model_input_field(const ameir_model *model, int32_t field, const char **name,
                                               int32_t *kind, int32_t *column, int32_t *width, int64_t *vocab);

/** Bytes of a workspace with which ameir_model_predict scores up to `batch` rows without
 *  allocating (the size grows with batch; a block for `batch` rows serves any smaller call).
 *  Computed without allocating. Every CTR model on the CPU backend has one: the block holds the
 *  rows, the activations and the scratch memory of the Stage-1 kernels (convolution,
 *  self-attention, Bi-GRU, target attention, the attention read-out). The scratch of
 *  self-attention is sized for the context's thread count: ask again after changing the
 *  `threads` option. 0 when the model cannot predict in a caller's workspace: model NULL,
 *  batch < 1 or larger than one call takes (about 2^31 ids), a retrieval model, a backend other
 *  than the CPU one, or a backend that cannot take its kernels' scratch from a caller's block
 *  for a model with such layers: such a model predicts with workspace NULL. Thread safe.
 *  Since 0.2. */
AMEIR_API size_t ameir_model_workspace_size(const ameir_model *model, int64_t batch);

/** Click probabilities of n encoded rows (layout above) into out[n]: ids [n, n_ids] and dense
 *  [n, n_dense] row-major (either may be NULL when its width is 0). The result for a row is the
 *  one ameir_model_predict_split gives for the same row of a dataset: bit for bit when both
 *  score the same rows in one batch (up to the eval_batch option, 4096), else up to float
 *  rounding (a GEMM may round a row otherwise in another batch).
 *
 *  workspace NULL: the call uses a workspace the model keeps (as ameir_model_predict_split) and
 *  allocates what it needs; workspace_size is ignored.
 *  workspace non-NULL: a block of at least ameir_model_workspace_size(model, n) bytes, any
 *  alignment, used by this call only (one block per thread for concurrent calls); its contents
 *  need no initialisation and are scratch afterwards. The call then allocates nothing: no
 *  malloc, no backend allocation, every buffer (the rows in the model's internal layout, the
 *  activations, the staging, the scratch of the Stage-1 kernels) is carved from the block, for
 *  every CTR model. This holds for libameir's own code: the OpenMP runtime (libgomp) allocates
 *  bookkeeping for a parallel region that runs on one thread, and OpenBLAS keeps buffers per
 *  thread, inside the compute kernels.
 *
 *  Thread safe: many threads may predict on one model at once, no lock is taken.
 *  @return AMEIR_OK; AMEIR_EINVAL (NULL model, out, ids or dense where needed; n < 0; a
 *  workspace smaller than needed: the message gives the bytes needed, which for a model with
 *  self-attention grow with the context's thread count; more rows than one call with a
 *  workspace takes); AMEIR_EUNSUPPORTED (a retrieval model: use ameir_model_topk; a workspace
 *  given for a model ameir_model_workspace_size returns 0 for: the message says why);
 *  AMEIR_ENOMEM (workspace NULL). Since 0.2. */
AMEIR_API ameir_status ameir_model_predict(const ameir_model *model, int64_t n, const int32_t *ids,
                                           const float *dense, float *out, void *workspace,
                                           size_t workspace_size);

/** Click probabilities of n text rows into out[n]. Each row is one line exactly as in the data
 *  files the model was trained on (a Criteo TSV line, a CSV line, a libFM line), without its
 *  line break, label column included: its value must be valid for the format (0 or 1 for
 *  0/1 labels) but does not change the prediction; this is what ameir_model_predict_file reads
 *  too. The model's stored configuration and vocabularies encode the rows as that function
 *  does: an unseen categorical value gets its field's out-of-vocabulary id, numeric fields take
 *  the stored transform. `header`: the header line of those files when the configuration says
 *  the files start with one that names the columns (csv, tsv and avazu with `header: true`,
 *  the default, and no `columns:`), else NULL; with `columns:` it may be given (its number of
 *  columns is checked) or NULL. Formats whose rows are built from several files or lines
 *  (ml100k, mlsmall, dmr) are scored with ameir_model_predict_file.
 *
 *  Rows are not skipped, whatever on_bad_row says: each gets its score or the call fails. The
 *  lines go through an in-memory file (memfd; nothing is written to disk) and the data layer's
 *  parser, so the call allocates; ameir_model_predict is the allocation-free path. Thread safe.
 *  @return AMEIR_OK; AMEIR_EFORMAT (a malformed row: the message starts "row I:" with its
 *  0-based index and says what is wrong; "header:" for the header); AMEIR_EINVAL (NULL
 *  arguments, a header missing or not expected); AMEIR_ESTATE (a model made from a dataset not
 *  opened from YAML); AMEIR_EUNSUPPORTED (a retrieval model, or a format above); AMEIR_ECONFIG
 *  (the header does not name the configured columns); AMEIR_EIO; AMEIR_ENOMEM. Since 0.2. */
AMEIR_API ameir_status ameir_model_predict_text(const ameir_model *model, const char *header, int64_t n,
                                                const char *const *lines, float *out);

/** Top-k retrieval: for rows first..first+n-1 of a split of a retrieval dataset (each row a
 *  user's history), the k best items over all items, best first: items[n*k] receives item ids
 *  of the target field's vocabulary (equal to the file's item ids with `vocab: identity`),
 *  scores[n*k] (may be NULL) their scores e_i^T u. exclude_seen != 0 leaves out the items of
 *  the user's history before the row's target. Fewer than k candidates pad with id 0 and score
 *  -inf. One GEMM scores every item for a batch of rows. Thread safe like predict_split.
 *  @return AMEIR_OK; AMEIR_EINVAL; AMEIR_EUNSUPPORTED (a CTR model). Since 0.1. */
AMEIR_API ameir_status ameir_model_topk(const ameir_model *model, const ameir_dataset *ds, int32_t split,
                                        int64_t first, int64_t n, int32_t k, int32_t exclude_seen,
                                        int32_t *items, float *scores);

/** Number of trainable parameters (embeddings included) and of those in embeddings. */
AMEIR_API int64_t ameir_model_params(const ameir_model *model, int64_t *in_embeddings);

/** Forward FLOPs per sample of the dense part (embedding lookups not counted): the MLP, the
 *  output layer, SE, interactions, towers, and Stage 1's blocks and read-outs at the full history
 *  length T (an upper bound for shorter histories; since 0.2, earlier versions left Stage 1 out).
 *  A retrieval model's scoring of candidates is not counted. */
AMEIR_API int64_t ameir_model_flops(const ameir_model *model);

/** The model's architecture. Borrowed: valid while the model lives. */
AMEIR_API const ameir_arch *ameir_model_arch(const ameir_model *model);

/** Writes the model (arch, schema with vocabularies, options, parameters, checksum) to path,
 *  atomically (temporary file then rename). AMEIR_EIO on failure. Since 0.1. */
AMEIR_API ameir_status ameir_model_save(const ameir_model *model, const char *path);

/** Loads a model file written by ameir_model_save. AMEIR_EIO (unreadable), AMEIR_EFORMAT
 *  (damaged, truncated, not a model file), AMEIR_EVERSION (newer format). Since 0.1. */
AMEIR_API ameir_status ameir_model_load(ameir_model **out, ameir_context *ctx, const char *path);

#ifdef __cplusplus
}
#endif

#endif
