/* ameir: train, evaluate and inspect recommender models with libameir. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char *USAGE =
    "usage: ameir COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  train CONFIG.yaml    train a fixed architecture on a dataset\n"
    "  search CONFIG.yaml   search an architecture (blocks, interactions, MLP) and derive the model\n"
    "  eval MODEL CONFIG.yaml   evaluate a saved model on the dataset's test split\n"
    "  predict MODEL FILE   print one score a line for the rows of a data file\n"
    "  inspect MODEL        print a saved model's architecture and sizes\n"
    "  arch NAME [CONFIG]   print a named model (deepfm, dcn, xdeepfm, din, sasrec, ...) as an arch file\n"
    "  gen DIR [--rows N] [--seed N]   write a synthetic dataset with planted answers\n"
    "  reproduce TABLE      run the rows of one of the paper's tables (1-4) on the bundled data\n"
    "\n"
    "`ameir CMD --help` describes a command. Exit codes: 0 success, 1 runtime error, 2 usage error.\n";

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_fail(ameir_context *ctx, const char *what) {
  fprintf(stderr, "ameir: %s: %s\n", what, ctx ? ameir_context_last_error(ctx) : ameir_last_error());
  return EXIT_RUNTIME;
}

void cli_log_fn(int32_t level, const char *msg, void *user) {
  cli_progress *p = user;
  if (level > AMEIR_LOG_INFO) return;
  if (p && p->tty) fprintf(stderr, "\r\033[K");
  fprintf(stderr, "%s%s\n", level == AMEIR_LOG_ERROR ? "error: " : level == AMEIR_LOG_WARN ? "warning: " : "", msg);
}

/* A bar with rate and ETA on a terminal; a plain line every 10 s otherwise. */
int32_t cli_progress_fn(const char *stage, int64_t done, int64_t total, double metric, void *user) {
  cli_progress *p = user;
  double now = cli_now();
  if (!p->stage || strcmp(p->stage, stage)) { p->stage = stage; p->t0 = now; p->last_print = 0; }
  int last = total > 0 && done >= total;
  /* training stages report a loss; the search's scoring stages a child's metric */
  const char *what = strstr(stage, "score") || strstr(stage, "eval") ? "metric" : "loss";
  if (p->tty) {
    if (now - p->last_print < 0.1 && !last) return 0;
    p->last_print = now;
    double el = now - p->t0, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    int w = 30, fill = total > 0 ? (int)((double)w * (double)done / (double)total) : 0;
    char bar[64];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r\033[K%-6s [%s] %lld/%lld  %.1f it/s  ETA %.0fs  %s %.4f", stage, bar, (long long)done,
            (long long)total, rate, eta, what, metric);
    if (last) fputc('\n', stderr);
  } else {
    if (now - p->last_print < 10 && !last) return 0;
    p->last_print = now;
    fprintf(stderr, "%s %lld/%lld %s %.4f (%.1fs)\n", stage, (long long)done, (long long)total, what, metric, now - p->t0);
  }
  return 0;
}

void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c == '\n') fputs("\\n", f);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs(USAGE, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("ameir %s\n%s", ameir_version_string(), ameir_build_info());
    return 0;
  }
  if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
  if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
  if (!strcmp(argv[1], "predict")) return cmd_predict(argc - 1, argv + 1);
  if (!strcmp(argv[1], "inspect")) return cmd_inspect(argc - 1, argv + 1);
  if (!strcmp(argv[1], "arch")) return cmd_arch(argc - 1, argv + 1);
  if (!strcmp(argv[1], "gen")) return cmd_gen(argc - 1, argv + 1);
  if (!strcmp(argv[1], "search")) return cmd_search(argc - 1, argv + 1);
  if (!strcmp(argv[1], "reproduce")) return cmd_reproduce(argc - 1, argv + 1);
  fprintf(stderr, "ameir: unknown command '%s'\n\n%s", argv[1], USAGE);
  return EXIT_USAGE;
}
