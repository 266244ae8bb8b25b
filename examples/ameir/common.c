/* Helpers that `ameir train`, `ameir search` and `ameir reproduce` share (one copy, so that the
 * commands read their options, config defaults and dataset overrides alike, and train, evaluate
 * and report a model alike): argument parsing, the context and its config defaults, opening the
 * dataset with --set dataset.* overrides, --set keys, Ctrl-C and progress, training and
 * evaluating a model, and the JSON members of the results. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

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


void cli_json_num(FILE *f, double v, const char *fmt) {
  if (isfinite(v)) fprintf(f, fmt, v);
  else fputs("null", f);
}

int cli_make_dirs(const char *path) {
  char p[4096];
  snprintf(p, sizeof p, "%s", path);
  size_t len = strlen(p);
  while (len > 1 && p[len - 1] == '/') p[--len] = 0;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0777) && errno != EEXIST) return -1;
    *s = '/';
  }
  if (mkdir(p, 0777) && errno != EEXIST) return -1;
  struct stat stt;
  if (stat(p, &stt) || !S_ISDIR(stt.st_mode)) { errno = ENOTDIR; return -1; }
  return 0;
}

/* SIGINT: the first one sets g_interrupted (progress callbacks then return non-zero, which
 * cancels the library's call at its next checkpoint); SA_RESETHAND makes a second one
 * terminate the process. */
static volatile sig_atomic_t g_interrupted = 0;
static struct sigaction g_old_sa;
static int g_sa_installed = 0;

static void on_sigint(int sig) {
  (void)sig;
  g_interrupted = 1;
  static const char msg[] = "\nameir: stopping at the next checkpoint (Ctrl-C again to quit now)\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
}

void cli_sigint_catch(int on) {
  if (on && !g_sa_installed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    g_interrupted = 0;
    if (sigaction(SIGINT, &sa, &g_old_sa) == 0) g_sa_installed = 1;
  } else if (!on && g_sa_installed) {
    sigaction(SIGINT, &g_old_sa, NULL);
    g_sa_installed = 0;
  }
}

int cli_interrupted(void) { return g_interrupted != 0; }

int32_t cli_stage_progress_fn(const char *stage, int64_t done, int64_t total, double metric, void *user) {
  cli_stage_progress *sp = user;
  if (g_interrupted) return 1;
  if (!stage) stage = "";
  if (strcmp(sp->names[sp->cur], stage)) {
    sp->cur ^= 1;
    snprintf(sp->names[sp->cur], sizeof sp->names[sp->cur], "%s", stage);
  }
  return cli_progress_fn(sp->names[sp->cur], done, total, metric, &sp->prog);
}

/* the value of KEY in sets (KEY=V or train.KEY=V; the last one wins), else in the config */
static int arch_key(ameir_context *ctx, const char *config, const char *key, const char *const *sets, int n_sets,
                    char *buf, size_t size) {
  int found = 0;
  for (int i = 0; i < n_sets; i++) {
    char k[128];
    const char *kk = cli_set_key(sets[i], "train.", k, sizeof k);
    if (!strcmp(kk, key)) {
      snprintf(buf, size, "%s", strchr(sets[i], '=') + 1);
      found = 1;
    }
  }
  if (found) return 1;
  char full[160];
  snprintf(full, sizeof full, "train.%s", key);
  return config && !ameir_config_get_string(ctx, config, full, buf, size);
}

/* the config keys (train.KEY) that set a preset's architecture lines (docs/arch.md) */
const struct cli_arch_key CLI_ARCH_KEYS[CLI_N_ARCH_KEYS] = {
    {"cross_layers", "cross"}, {"cin", "cin"}, {"autoint", "autoint"},
    {"fibinet", "fibinet"},    {"caser", "caser"}, {"cloze", "cloze"},
};

int cli_is_arch_key(const char *key) {
  for (int k = 0; k < CLI_N_ARCH_KEYS; k++)
    if (!strcmp(key, CLI_ARCH_KEYS[k].key)) return 1;
  return 0;
}

int cli_model_sets(const char *name, const char **out, int max) {
  /* POP is the biases' initial popularity, untrained; BPR-MF factorises users and items with
   * its pairwise loss; Caser has a user embedding beside its convolutions */
  static const struct { const char *name, *sets[3]; } IMPLIED[] = {
      {"pop", {"train.epochs=0"}},
      {"bprmf", {"dataset.user_field=true", "train.loss=bpr"}},
      {"caser", {"dataset.user_field=true"}},
  };
  int n = 0;
  for (size_t i = 0; name && i < sizeof IMPLIED / sizeof IMPLIED[0]; i++)
    if (!strcasecmp(name, IMPLIED[i].name))
      for (int k = 0; k < 3 && IMPLIED[i].sets[k] && n < max; k++) out[n++] = IMPLIED[i].sets[k];
  return n;
}

int cli_preset(ameir_context *ctx, const char *config, const char *name, const char *mlp_override,
               const char *const *sets, int n_sets, ameir_arch **out) {
  *out = NULL;
  char mlp[600] = "", buf[600];
  if (mlp_override) snprintf(mlp, sizeof mlp, "%s", mlp_override);
  /* a config's train.mlp is for the models with hidden layers: LR, FM, POP and BPR-MF keep none
   * (an explicit --mlp still gives them one) */
  else if (strcasecmp(name, "lr") && strcasecmp(name, "fm") && strcasecmp(name, "pop") && strcasecmp(name, "bprmf") &&
           config &&
           !ameir_config_get_string(ctx, config, "train.mlp", buf, sizeof buf))
    snprintf(mlp, sizeof mlp, "%s", buf);
  ameir_arch *a = NULL;
  if (ameir_arch_preset(&a, ctx, name, mlp[0] ? mlp : NULL)) {
    cli_fail(ctx, "model");
    return EXIT_USAGE;
  }
  /* the architecture's hyper-parameters as config keys (train.KEY or --set KEY=V): each replaces
   * the line of the preset's own (only for presets that have that line) */
  char vals[CLI_N_ARCH_KEYS][256];
  int has[CLI_N_ARCH_KEYS], any = 0;
  for (int k = 0; k < CLI_N_ARCH_KEYS; k++) any |= has[k] = arch_key(ctx, config, CLI_ARCH_KEYS[k].key, sets, n_sets, vals[k], sizeof vals[k]);
  char *text = NULL;
  if (any && !ameir_arch_to_string(a, &text)) {
    size_t cap = strlen(text) + sizeof vals + 64 * CLI_N_ARCH_KEYS, n = 0;
    char *t = malloc(cap);
    int had[CLI_N_ARCH_KEYS] = {0};
    for (char *line = text, *nl; t && line && *line; line = nl ? nl + 1 : NULL) {
      nl = strchr(line, '\n');
      size_t len = nl ? (size_t)(nl - line) : strlen(line);
      int skip = 0;
      for (int k = 0; k < CLI_N_ARCH_KEYS && !skip; k++) {
        size_t kl = strlen(CLI_ARCH_KEYS[k].line);
        if (has[k] && !strncmp(line, CLI_ARCH_KEYS[k].line, kl) && line[kl] == ':') skip = had[k] = 1;
      }
      if (!skip) n += (size_t)snprintf(t + n, cap - n, "%.*s\n", (int)len, line);
    }
    for (int k = 0; t && k < CLI_N_ARCH_KEYS; k++)
      if (had[k]) n += (size_t)snprintf(t + n, cap - n, "%s: %s\n", CLI_ARCH_KEYS[k].line, vals[k]);
    ameir_free(text);
    ameir_arch *b = NULL;
    if (!t || ameir_arch_parse(&b, ctx, t)) {
      free(t);
      ameir_arch_free(a);
      cli_fail(ctx, "train.cross_layers / cin / fibinet / caser / cloze / autoint");
      return EXIT_USAGE;
    }
    free(t);
    ameir_arch_free(a);
    a = b;
  }
  *out = a;
  return 0;
}

int cli_train_arch(ameir_context *ctx, const char *config, const ameir_arch *arch, ameir_dataset *ds,
                   const char *const *sets, int n_sets, ameir_model **m) {
  *m = NULL;
  if (ameir_model_create(m, ctx, arch, ds)) return cli_fail(ctx, "model");
  if (ameir_model_set_options_file(*m, config, "train")) return cli_fail(ctx, "options");
  for (int i = 0; i < n_sets; i++) {
    if (!strncmp(sets[i], "dataset.", 8)) continue;
    char key[128];
    const char *k = cli_set_key(sets[i], "train.", key, sizeof key);
    if (cli_is_arch_key(k)) continue;   /* architecture keys (cli_preset) */
    if (ameir_model_set_option(*m, k, strchr(sets[i], '=') + 1)) { cli_fail(ctx, sets[i]); return EXIT_USAGE; }
  }
  if (ameir_model_train(*m, ds)) return cli_fail(ctx, "train");
  return 0;
}

const char *const CLI_RANK_NAMES[5] = {"hr@5", "ndcg@5", "hr@10", "ndcg@10", "mrr"};

int cli_evaluate(ameir_context *ctx, ameir_model *m, ameir_dataset *ds, const char *config,
                 int time_inference, cli_eval *e) {
  memset(e, 0, sizeof *e);
  e->retrieval = ameir_dataset_task(ds) == AMEIR_TASK_RETRIEVAL;
  double infer_s = 0;   /* the first evaluation of the validation split: inference samples/s */
  if (e->retrieval) {
    int32_t rids[5] = {AMEIR_METRIC_HR5, AMEIR_METRIC_NDCG5, AMEIR_METRIC_HR10, AMEIR_METRIC_NDCG10, AMEIR_METRIC_MRR};
    snprintf(e->negs, sizeof e->negs, "100");
    if (ameir_config_get_string(ctx, config, "eval.negatives", e->negs, sizeof e->negs)) snprintf(e->negs, sizeof e->negs, "100");
    if (ameir_model_set_option(m, "eval_negatives", e->negs)) return cli_fail(ctx, "eval.negatives");
    for (int p = 0; p < 2; p++) {
      if (ameir_model_set_option(m, "eval_protocol", p ? "sampled" : "full")) return cli_fail(ctx, "eval");
      for (int sp = 0; sp < 2; sp++) {
        double t0 = cli_now();
        if (ameir_model_evaluate(m, ds, sp ? AMEIR_SPLIT_TEST : AMEIR_SPLIT_VALID, 5, rids, e->rank[p][sp])) return cli_fail(ctx, "evaluate");
        if (!p && !sp) infer_s = cli_now() - t0;
      }
    }
    e->valid[2] = (double)ameir_dataset_rows(ds, AMEIR_SPLIT_VALID);
    e->test[2] = (double)ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  } else {
    int32_t ids[3] = {AMEIR_METRIC_AUC, AMEIR_METRIC_LOGLOSS, AMEIR_METRIC_ROWS};
    if (ameir_model_evaluate(m, ds, AMEIR_SPLIT_VALID, 3, ids, e->valid)) return cli_fail(ctx, "evaluate");
    /* inference speed: scores of the validation rows, without the metrics (as torch_ref times it) */
    int64_t nv = ameir_dataset_rows(ds, AMEIR_SPLIT_VALID);
    float *pv = time_inference && nv > 0 ? malloc(sizeof(float) * (size_t)nv) : NULL;
    if (pv) {
      /* a first batch outside the timing: the pooled inference workspace is allocated then */
      int64_t eb = 4096;
      char val[64];
      if (!ameir_model_get_option(m, "eval_batch", val, sizeof val)) eb = atoll(val);
      if (ameir_model_predict_split(m, ds, AMEIR_SPLIT_VALID, 0, nv < eb ? nv : eb, pv)) { free(pv); return cli_fail(ctx, "predict"); }
      double t0 = cli_now();
      if (ameir_model_predict_split(m, ds, AMEIR_SPLIT_VALID, 0, nv, pv)) { free(pv); return cli_fail(ctx, "predict"); }
      infer_s = cli_now() - t0;
      free(pv);
    }
    if (ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 3, ids, e->test)) return cli_fail(ctx, "evaluate");
  }
  e->infer_samples_per_s = time_inference && infer_s > 0 ? e->valid[2] / infer_s : 0.0;
  return 0;
}

void cli_rank_key(const cli_eval *e, int sampled, int test, int k, char *buf, size_t size) {
  snprintf(buf, size, "%s%s%s%s", sampled ? "neg" : "", sampled ? e->negs : "",
           test ? (sampled ? "_test_" : "test_") : (sampled ? "_" : ""), CLI_RANK_NAMES[k]);
}

void cli_json_eval(FILE *f, const cli_eval *e) {
  if (e->retrieval) {
    for (int p = 0; p < 2; p++)
      for (int sp = 0; sp < 2; sp++)
        for (int k = 0; k < 5; k++) {
          char key[96];
          cli_rank_key(e, p, sp, k, key, sizeof key);
          fprintf(f, ", \"%s\": %.6f", key, e->rank[p][sp][k]);
        }
  } else {
    fprintf(f, ", \"valid_auc\": %.6f, \"valid_logloss\": %.6f, \"test_auc\": %.6f, \"test_logloss\": %.6f",
            e->valid[0], e->valid[1], e->test[0], e->test[1]);
  }
}

static double model_stat(const ameir_model *m, const char *key) {
  double v = 0;
  return ameir_model_get_stat(m, key, &v) == AMEIR_OK ? v : 0.0;
}

void cli_json_train_stats(FILE *f, const ameir_model *m) {
  fprintf(f, ", \"train_seconds\": %.3f, \"train_samples_per_s\": %.1f, \"train_steps\": %.0f, \"epochs\": %.0f",
          model_stat(m, "train_seconds"), model_stat(m, "train_samples_per_s"), model_stat(m, "train_steps"), model_stat(m, "epochs"));
  /* an untrained model (epochs 0: POP) has no losses: null, not JSON-breaking nan */
  fprintf(f, ", \"train_loss_first\": ");
  cli_json_num(f, model_stat(m, "train_loss_first"), "%.5f");
  fprintf(f, ", \"train_loss_last\": ");
  cli_json_num(f, model_stat(m, "train_loss_last"), "%.5f");
}

void cli_json_sizes(FILE *f, const ameir_model *m) {
  int64_t pe = 0, np = ameir_model_params(m, &pe);
  fprintf(f, ", \"n_params\": %lld, \"n_params_embedding\": %lld, \"flops_per_sample\": %lld", (long long)np, (long long)pe,
          (long long)ameir_model_flops(m));
}

double cli_searcher_stat(const ameir_searcher *s, const char *key) {
  double v;
  return ameir_searcher_get_stat(s, key, &v) == AMEIR_OK ? v : NAN;
}
