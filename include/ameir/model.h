/* libameir: models. A model is one fixed architecture (ameir_arch) instantiated for a dataset's
 * schema: embeddings, the backbone's parameters and the optimiser state. It trains with
 * mini-batch Adam, evaluates, predicts, and saves to / loads from a versioned file.
 *
 * Thread safety: training and evaluation use one thread of the caller at a time per model (they
 * run the context's worker threads inside). ameir_model_predict_split, ameir_model_predict_file
 * and ameir_model_topk may be called from many threads at once on one model that is not being
 * trained: each call has its own workspace.
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
 *  [full|sampled], eval_negatives [100]; gauc_field [user_id].
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

/** Forward FLOPs per sample of the dense part (embedding lookups not counted). */
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
