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

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_gen(int argc, char **argv);

#endif
