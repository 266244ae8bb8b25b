/* Helpers that `ameir train` and `ameir search` share (one copy, so that both commands read
 * their options, config defaults and dataset overrides alike): argument parsing, the context
 * and its config defaults, opening the dataset with --set dataset.* overrides, --set keys and
 * the context's JSON members. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int parse_int_arg(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int cli_make_context(ameir_context **ctx, long threads, long seed, ameir_progress_fn fn, void *user) {
  if (ameir_context_create(ctx, NULL)) {
    fprintf(stderr, "ameir: %s\n", ameir_last_error());
    return EXIT_RUNTIME;
  }
  if (threads > 0 && ameir_context_set_int(*ctx, "threads", threads)) return cli_fail(*ctx, "threads");
  if (seed >= 0 && ameir_context_set_int(*ctx, "seed", seed)) return cli_fail(*ctx, "seed");
  /* user begins with a cli_progress (see cli.h), which is all cli_log_fn reads */
  ameir_context_set_log_callback(*ctx, cli_log_fn, user);
  ameir_context_set_progress_callback(*ctx, fn, user);
  return 0;
}

int cli_config_defaults(ameir_context *ctx, const char *config, long seed, long threads) {
  char buf[512];
  if (seed < 0 && !ameir_config_get_string(ctx, config, "train.seed", buf, sizeof buf)) {
    long sd;
    if (parse_int_arg(buf, 0, 2147483647L, &sd) || ameir_context_set_int(ctx, "seed", sd)) return cli_fail(ctx, "train.seed");
  }
  if (threads <= 0 && !ameir_config_get_string(ctx, config, "train.threads", buf, sizeof buf)) {
    long th;
    if (parse_int_arg(buf, 1, 1024, &th) || ameir_context_set_int(ctx, "threads", th)) return cli_fail(ctx, "train.threads");
  }
  return 0;
}

/* cli_open_dataset without the summary line */
static int open_dataset(ameir_context *ctx, const char *config, const char *const *sets, int n_sets, ameir_dataset **ds) {
  const char *dsets[256];
  int nd = 0;
  for (int i = 0; i < n_sets && nd < 256; i++)
    if (!strncmp(sets[i], "dataset.", 8)) dsets[nd++] = sets[i];
  if (nd == 0) return ameir_dataset_open(ds, ctx, config) ? cli_fail(ctx, "dataset") : 0;
  /* the library applies overrides only to YAML text, so read the file here; relative paths in
   * it stay relative to the config's folder */
  FILE *f = fopen(config, "rb");
  if (!f) { fprintf(stderr, "ameir: %s: %s\n", config, strerror(errno)); return EXIT_RUNTIME; }
  char *text = NULL;
  size_t n = 0, cap = 0, r;
  do {
    if (n + 4096 >= cap) {
      cap = cap ? 2 * cap : 65536;
      char *t = realloc(text, cap);
      if (!t) { free(text); fclose(f); fprintf(stderr, "ameir: %s: out of memory\n", config); return EXIT_RUNTIME; }
      text = t;
    }
    r = fread(text + n, 1, cap - n - 1, f);
    n += r;
  } while (r > 0);
  fclose(f);
  text[n] = 0;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", config);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
  ameir_status st = ameir_dataset_open_yaml(ds, ctx, text, dir, dsets, nd);
  free(text);
  return st ? cli_fail(ctx, "dataset") : 0;
}

int cli_open_dataset(ameir_context *ctx, const char *config, const char *const *sets, int n_sets, int quiet,
                     ameir_dataset **ds) {
  int rc = open_dataset(ctx, config, sets, n_sets, ds);
  if (rc || quiet) return rc;
  int32_t fc = 0;
  double load_s = ameir_dataset_load_seconds(*ds, &fc);
  fprintf(stderr, "dataset: %lld rows (train %lld, valid %lld, test %lld), %d fields, loaded in %.2fs%s\n",
          (long long)ameir_dataset_rows(*ds, -1), (long long)ameir_dataset_rows(*ds, AMEIR_SPLIT_TRAIN),
          (long long)ameir_dataset_rows(*ds, AMEIR_SPLIT_VALID), (long long)ameir_dataset_rows(*ds, AMEIR_SPLIT_TEST),
          (int)ameir_dataset_fields(*ds), load_s, fc ? " (cache)" : "");
  return 0;
}

const char *cli_set_key(const char *set, const char *prefix, char *key, size_t size) {
  const char *eq = strchr(set, '=');
  size_t kl = (size_t)(eq - set);
  if (kl >= size) kl = size - 1;
  memcpy(key, set, kl);
  key[kl] = 0;
  size_t pl = strlen(prefix);
  return !strncmp(key, prefix, pl) ? key + pl : key;
}

void cli_json_context(FILE *f, ameir_context *ctx) {
  int64_t th = 0, sd = 0;
  ameir_context_get_int(ctx, "threads", &th);
  ameir_context_get_int(ctx, "seed", &sd);
  fprintf(f, ", \"backend\": ");
  json_str(f, ameir_context_backend(ctx));
  fprintf(f, ", \"threads\": %lld, \"seed\": %lld", (long long)th, (long long)sd);
}
