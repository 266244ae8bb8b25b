/* libameir: the three-step one-shot search of AMEIR (paper section 2.3) and the derivation of the
 * final model from the one-shot weights.
 *
 *   ameir_space     the search space and its budget: operation sets of the three subspaces, L_a,
 *                   L_c, the MLP width ratios and activations, M, top-k, cycles, sample counts
 *                   (defaults: paper section 3 and appendix D; docs/search.md lists every key).
 *   ameir_supernet  the one-shot model of one step for a space and a dataset: it holds every
 *                   candidate of that step's subspace, trains by sampling one child per batch
 *                   (fairly: every candidate equally often) and scores a child with the inherited
 *                   weights, without copying them.
 *   ameir_searcher  runs steps 1, 2, 3 and the derivation, one at a time or all, with checkpoints
 *                   and a report in an output directory.
 *
 * Steps: 1 searches the behaviour-modeling blocks, 2 the interactions (SMBO over Hadamard
 * products), 3 the MLP (widths and activations); 4 is the derivation (fine-tune on the
 * inherited weights, evaluate on test). Which steps apply depends on the data: all three for
 * CTR data with behaviours and other fields, step 1 only for retrieval, steps 2 and 3 only
 * without behaviours (paper section 3.2).
 *
 * Other search methods (since 0.2, the baselines of paper Table 4 / appendix C.4), chosen with
 * the space's key "method" on the same search space: "random" (children drawn uniformly from
 * every subspace at once, each trained from scratch for "child_epochs" epochs and scored on the
 * validation split, within a wall-time budget), "evolution" (regularized evolution over the
 * same children: "population", "tournament", "stall_cycles"), "joint" (one one-shot model over
 * the three subspaces at once, "joint_samples" children scored with its weights). Their budget
 * is "budget_seconds", else "budget_factor" x "reference_seconds" (the measured cost of AMEIR's
 * own search; default factor 10, as the paper), else only "children" bounds it. Such a search
 * is one step, reported as step 3; step 4 trains its result (random and evolution: from random
 * weights; joint: from the one-shot weights, as AMEIR's derivation) and evaluates it on test.
 * docs/search.md ("Other search methods") describes them.
 *
 * Thread safety: each handle is used by one thread at a time; the model a searcher derives is
 * an ordinary ameir_model (many threads may predict with it). Long calls report through the
 * context's progress callback, and returning non-zero from it cancels them (AMEIR_ECANCELLED;
 * the searcher's last checkpoint stays valid).
 */
#ifndef AMEIR_SEARCH_H
#define AMEIR_SEARCH_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ameir_space, ameir_supernet and ameir_searcher are declared in common.h. */

/** Step numbers (pinned). Since 0.2. */
#define AMEIR_STEP_BLOCKS 1
#define AMEIR_STEP_INTERACTIONS 2
#define AMEIR_STEP_MLP 3
#define AMEIR_STEP_DERIVE 4

/** Makes a search space with the paper's defaults. @return AMEIR_OK, AMEIR_EINVAL, AMEIR_ENOMEM.
 *  Since 0.2. */
AMEIR_API ameir_status ameir_space_create(ameir_space **out, ameir_context *ctx);

/** Makes a search space from the `section` mapping of a YAML file (NULL: "search"); keys not in
 *  the file keep their defaults. Errors name the file, line and key: AMEIR_ECONFIG for an
 *  unknown key or a bad value, AMEIR_EIO, AMEIR_ENOMEM. A file without the section gives the
 *  defaults. Since 0.2. */
AMEIR_API ameir_status ameir_space_load(ameir_space **out, ameir_context *ctx, const char *path,
                                        const char *section);

/** Sets one key of the space from text ("samples", "2000"; "layers", "conv3,gru,zero"); see
 *  docs/search.md. The search method and the baselines' budget are keys too: "method" (ameir,
 *  random, evolution, joint), "budget_seconds", "budget_factor", "reference_seconds",
 *  "children", "child_epochs", "population", "tournament", "stall_cycles", "joint_samples",
 *  "epochs_joint". @return AMEIR_OK; AMEIR_ENOTFOUND (unknown key); AMEIR_ECONFIG (bad value,
 *  the message says which values are allowed). Since 0.2. */
AMEIR_API ameir_status ameir_space_set(ameir_space *space, const char *key, const char *value);

/** Reads one key of the space as text into buf (NUL-terminated, truncated to size).
 *  @return AMEIR_OK, AMEIR_ENOTFOUND, AMEIR_EINVAL. Since 0.2. */
AMEIR_API ameir_status ameir_space_get(const ameir_space *space, const char *key, char *buf,
                                       size_t size);

/** Frees the space. NULL is a no-op. */
AMEIR_API void ameir_space_free(ameir_space *space);

/** Makes the one-shot model of `step` (1, 2 or 3) for the dataset. `fixed` gives the parts the
 *  step does not search (the results of earlier steps; NULL: the space's pre-defined parts).
 *  The dataset must outlive the supernet. @return AMEIR_OK; AMEIR_EUNSUPPORTED (the step does
 *  not apply to this data: step 1 without behaviours, step 2 or 3 for retrieval);
 *  AMEIR_ECONFIG; AMEIR_ENOMEM. Since 0.2. */
AMEIR_API ameir_status ameir_supernet_create(ameir_supernet **out, const ameir_space *space,
                                             const ameir_dataset *ds, int32_t step,
                                             const ameir_arch *fixed);

/** Trains the shared weights for `epochs` passes over the training split (0: the space's
 *  epochs for this step), one fairly sampled child per batch, on one cosine schedule. For step
 *  2 this trains the current cycle's candidate interactions. Since 0.2. */
AMEIR_API ameir_status ameir_supernet_train(ameir_supernet *sn, int32_t epochs);

/** Draws a random child of the step's subspace (the architecture with the fixed parts filled
 *  in) with the given seed; *child is owned by the caller (ameir_arch_free). Since 0.2. */
AMEIR_API ameir_status ameir_supernet_sample(ameir_supernet *sn, uint64_t seed, ameir_arch **child);

/** Scores a child with the inherited weights on the first `rows` rows of the validation split
 *  (0: all of it): AUC for CTR, HR@10 with sampled negatives for retrieval (higher is better).
 *  AMEIR_EINVAL if the child is not in the supernet's subspace (the message says which part).
 *  Since 0.2. */
AMEIR_API ameir_status ameir_supernet_score(ameir_supernet *sn, const ameir_arch *child, int64_t rows,
                                            double *metric);

/** Frees the supernet. NULL is a no-op. */
AMEIR_API void ameir_supernet_free(ameir_supernet *sn);

/** Makes a searcher for the space and dataset (the dataset must outlive it). Since 0.2. */
AMEIR_API ameir_status ameir_searcher_create(ameir_searcher **out, const ameir_space *space,
                                             const ameir_dataset *ds);

/** Sets a searcher option: "out" (directory for checkpoints, report.yaml, report.html, model.ameir
 *  and search.log; empty: none written), "resume" (1: continue from out's checkpoint), "steps"
 *  ("1,2,3": the steps to run, default the ones that apply to the data), "from_scratch" (1:
 *  the derivation starts from random weights instead of the one-shot ones), "config" (the
 *  dataset's YAML path, recorded in the report). @return AMEIR_OK, AMEIR_ENOTFOUND,
 *  AMEIR_ECONFIG. Since 0.2. */
AMEIR_API ameir_status ameir_searcher_set(ameir_searcher *s, const char *key, const char *value);

/** Runs one step (1, 2, 3 or AMEIR_STEP_DERIVE), or with step 0 every remaining step and the
 *  derivation. A step that does not apply to the data is skipped (AMEIR_OK). With an output
 *  directory, a checkpoint is written atomically after each epoch and each step, and the
 *  report after each step. Same seed and threads: the same result. With a space whose "method"
 *  is not ameir, steps 1, 2 and 3 all run that method's one search (once) and "steps" is
 *  ignored; random search and evolution checkpoint after each child (OUT/baseline.txt) and
 *  end where an uninterrupted search does when resumed, but their budget is wall time: a
 *  budget that binds makes the number of children depend on the machine. Since 0.2. */
AMEIR_API ameir_status ameir_searcher_run(ameir_searcher *s, int32_t step);

/** The architecture a step found (1: AMEIR-A, 2: AMEIR-B, 3 or 4: AMEIR-C, the final one) and
 *  its validation metric (the derived model's test metric for step 4). *arch is owned by the
 *  caller; either out-pointer may be NULL. AMEIR_ENOTFOUND if the step has not run. The other
 *  methods have results for steps 3 (the search's best child and its validation metric: after
 *  child_epochs epochs for random and evolution, with the one-shot weights for joint) and 4
 *  only. Since 0.2. */
AMEIR_API ameir_status ameir_searcher_result(const ameir_searcher *s, int32_t step, ameir_arch **arch,
                                             double *metric);

/** The derived model after step 4 (borrowed: valid until the searcher is freed), else NULL. */
AMEIR_API ameir_model *ameir_searcher_model(const ameir_searcher *s);

/** Reads a statistic of the search: "step1_seconds" .. "step4_seconds", "test_auc",
 *  "test_logloss", "test_hr10", "test_ndcg10", "params", "flops"; "search_seconds" (every step
 *  before the derivation: the search cost), "children" (children trained by random search or
 *  evolution, scored by joint; for ameir the children and candidates its steps scored),
 *  "budget_seconds" (random, evolution: the budget in effect, when there is one),
 *  "evolution_cycles". AMEIR_ENOTFOUND for an unknown key or one not measured yet. Since 0.2. */
AMEIR_API ameir_status ameir_searcher_get_stat(const ameir_searcher *s, const char *key, double *value);

/** Frees the searcher (and its derived model). NULL is a no-op. */
AMEIR_API void ameir_searcher_free(ameir_searcher *s);

#ifdef __cplusplus
}
#endif

#endif
