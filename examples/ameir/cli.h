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

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_search(int argc, char **argv);

#endif
