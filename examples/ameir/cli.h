/* The `ameir` program: shared helpers of its commands. */
#ifndef AMEIR_CLI_H
#define AMEIR_CLI_H

#include <stdio.h>

#include "ameir/ameir.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

typedef struct {
  int json;
  int tty;
  double t0;
  double last_print;
  const char *stage;
} cli_progress;

int32_t cli_progress_fn(const char *stage, int64_t done, int64_t total, double metric, void *user);
void cli_log_fn(int32_t level, const char *msg, void *user);
double cli_now(void);
int cli_fail(ameir_context *ctx, const char *what);
void json_str(FILE *f, const char *s);

/* common.c */
/* 0 and *out = the decimal integer s when it is all digits and within lo..hi, else -1 */
int parse_int_arg(const char *s, long lo, long hi, long *out);
/* Creates the context with --threads (> 0) and --seed (>= 0) when given, and installs
 * cli_log_fn and fn as callbacks, both with user: user must be a cli_progress or a struct that
 * begins with one. Returns 0 or an exit code, having printed why; free *ctx either way. */
int cli_make_context(ameir_context **ctx, long threads, long seed, ameir_progress_fn fn, void *user);
/* train.seed and train.threads of the config, where --seed (< 0: not given) and --threads
 * (<= 0: not given) leave them to it. Returns 0 or an exit code, having printed why. */
int cli_config_defaults(ameir_context *ctx, const char *config, long seed, long threads);
/* Opens the dataset of the config, applying the dataset.KEY=V ones of the --set arguments
 * (others are skipped), and unless quiet prints its sizes and load time to stderr. Returns 0
 * or an exit code, having printed why. */
int cli_open_dataset(ameir_context *ctx, const char *config, const char *const *sets, int n_sets, int quiet,
                     ameir_dataset **ds);
/* The key of a --set KEY=V argument (which has an '='), copied to key (cut to size - 1), less
 * prefix where it starts with it. */
const char *cli_set_key(const char *set, const char *prefix, char *key, size_t size);
/* The JSON members `, "backend": .., "threads": .., "seed": ..` of the context's settings. */
void cli_json_context(FILE *f, ameir_context *ctx);
/* v with fmt, or null where it is not finite */
void cli_json_num(FILE *f, double v, const char *fmt);
/* mkdir -p; 0 or -1 with errno */
int cli_make_dirs(const char *path);

/* Ctrl-C: cli_sigint_catch(1) makes the first SIGINT set cli_interrupted() (and print that the
 * command stops at its next checkpoint; a second one quits at once); cli_sigint_catch(0)
 * restores the previous handler. */
void cli_sigint_catch(int on);
int cli_interrupted(void);

/* A progress callback that cancels after Ctrl-C (cli_interrupted) and hands cli_progress_fn
 * stage names that stay valid (the library may pass a name built in a temporary buffer;
 * cli_progress_fn keeps the pointer to detect a new stage, so two buffers alternate). */
typedef struct {
  cli_progress prog; /* first: cli_make_context hands this struct to cli_log_fn too */
  char names[2][64];
  int cur;
} cli_stage_progress;
int32_t cli_stage_progress_fn(const char *stage, int64_t done, int64_t total, double metric, void *user);

/* Config keys (train.KEY, or --set KEY=V) that replace a preset's architecture line `line:`:
 * cross_layers (cross), cin, autoint, fibinet, caser, cloze. */
#define CLI_N_ARCH_KEYS 6
struct cli_arch_key { const char *key, *line; };
extern const struct cli_arch_key CLI_ARCH_KEYS[CLI_N_ARCH_KEYS];
int cli_is_arch_key(const char *key);

/* The keys a named model needs beside its architecture (`dataset.K=V` / `train.K=V`; pop: no
 * training; bprmf: a user field and the BPR loss; caser: a user field) into out[0..max), static
 * strings; returns how many. `ameir train --model NAME` and `ameir reproduce` apply them before
 * the user's --set. */
int cli_model_sets(const char *name, const char **out, int max);

/* A named architecture as `ameir train --model NAME` makes it: the MLP from mlp_override, else
 * the config's train.mlp (not for LR and FM), else the preset's; the DCN and xDeepFM towers from
 * train.cross_layers and train.cin (config, or a KEY=V / train.KEY=V of sets). Returns 0 or an
 * exit code, having printed why. */
int cli_preset(ameir_context *ctx, const char *config, const char *name, const char *mlp_override,
               const char *const *sets, int n_sets, ameir_arch **out);

/* The model built, configured and trained as `ameir train` does it: the options of the config's
 * `train:` section, then the KEY=V (or train.KEY=V) ones of sets (dataset.* are skipped).
 * Returns 0 or an exit code (EXIT_USAGE for a bad set), having printed why; free *m either way. */
int cli_train_arch(ameir_context *ctx, const char *config, const ameir_arch *arch, ameir_dataset *ds,
                   const char *const *sets, int n_sets, ameir_model **m);

/* A trained model's evaluation as `ameir train` reports it. CTR: AUC, log loss and rows of the
 * validation and test splits, inference speed from scoring the validation rows. Retrieval:
 * HR@5, NDCG@5, HR@10, NDCG@10, MRR of both splits under the full-ranking protocol and against
 * the config's eval.negatives (default 100) sampled ones; the speed from the first evaluation. */
typedef struct {
  int retrieval;
  char negs[32];                /* eval.negatives */
  double valid[3], test[3];     /* AUC, log loss, rows (retrieval: rows only) */
  double rank[2][2][5];         /* [full|sampled][valid|test][HR@5 NDCG@5 HR@10 NDCG@10 MRR] */
  double infer_samples_per_s;
} cli_eval;
extern const char *const CLI_RANK_NAMES[5];
/* Validation and test metrics into e. With time_inference, e->infer_samples_per_s too (CTR: one
 * more scoring pass over the validation split, after a warm-up batch, timed without the metrics;
 * retrieval: the time of the first evaluation); else it stays 0. Returns 0 or an exit code,
 * having printed why. */
int cli_evaluate(ameir_context *ctx, ameir_model *m, ameir_dataset *ds, const char *config,
                 int time_inference, cli_eval *e);
/* The JSON name of a retrieval metric: test_hr@10, neg100_test_hr@10, hr@10 (valid), ... */
void cli_rank_key(const cli_eval *e, int sampled, int test, int k, char *buf, size_t size);
/* The JSON members of the metrics: valid_auc .. test_logloss, or every retrieval key */
void cli_json_eval(FILE *f, const cli_eval *e);
/* The JSON members train_seconds .. train_loss_last of the model's last training */
void cli_json_train_stats(FILE *f, const ameir_model *m);
/* The JSON members n_params, n_params_embedding, flops_per_sample */
void cli_json_sizes(FILE *f, const ameir_model *m);
/* A statistic of the search, NaN where it is not known */
double cli_searcher_stat(const ameir_searcher *s, const char *key);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_arch(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);

#endif
