/* ameir train / eval / predict / inspect */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *TRAIN_HELP =
    "usage: ameir train CONFIG.yaml [--model NAME | --arch FILE] [--mlp SPEC]\n"
    "                   [--set key=value]... [--out DIR] [--threads N] [--seed N] [--json]\n"
    "\n"
    "Opens the dataset of CONFIG.yaml (its `dataset:` section), builds the model named by --model\n"
    "or --arch (default: train.model of the config, else deepfm), applies the options of the\n"
    "config's `train:` section and then each --set (dataset.* keys change the dataset, other keys\n"
    "are model options such as lr, epochs, batch, emb), trains, and prints validation and test\n"
    "AUC and log loss. --out DIR writes DIR/model.ameir and DIR/arch.txt. --json ends the output\n"
    "with one JSON object of metrics, times and sizes. NAME: lr fm dnn widedeep deepfm dcn\n"
    "xdeepfm autoint ipnn fibinet din dien dsin sasrec nextitnet gru4rec caser bert4rec pop bprmf\n"
    "ameir-a1..ameir-a4 (docs/arch.md);\n"
    "the architecture keys cross_layers=N, cin=W,W, autoint=L, fibinet=R, caser=L,NV,NH and cloze=P\n"
    "replace the preset's own line where it has one (--set or the config's train: section).\n";

static double peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

typedef struct {
  const char *config, *model, *arch, *mlp, *out;
  const char *sets[256];
  int n_sets;
  long threads, seed;
  int json;
} train_args;

int cmd_train(int argc, char **argv) {
  train_args a;
  memset(&a, 0, sizeof a);
  a.threads = 0;
  a.seed = -1;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    int has_next = i + 1 < argc;
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) { fputs(TRAIN_HELP, stdout); return 0; }
    else if (!strcmp(s, "--json")) a.json = 1;
    else if (!strcmp(s, "--model") && has_next) a.model = argv[++i];
    else if (!strcmp(s, "--arch") && has_next) a.arch = argv[++i];
    else if (!strcmp(s, "--mlp") && has_next) a.mlp = argv[++i];
    else if (!strcmp(s, "--out") && has_next) a.out = argv[++i];
    else if (!strcmp(s, "--set") && has_next) {
      if (a.n_sets == 256 || !strchr(argv[i + 1], '=')) { fprintf(stderr, "ameir train: --set takes key=value\n"); return EXIT_USAGE; }
      a.sets[a.n_sets++] = argv[++i];
    } else if (!strcmp(s, "--threads") && has_next) {
      if (parse_int_arg(argv[++i], 1, 1024, &a.threads)) { fprintf(stderr, "ameir train: --threads takes 1..1024\n"); return EXIT_USAGE; }
    } else if (!strcmp(s, "--seed") && has_next) {
      if (parse_int_arg(argv[++i], 0, 2147483647L, &a.seed)) { fprintf(stderr, "ameir train: --seed takes a non-negative integer\n"); return EXIT_USAGE; }
    } else if (s[0] == '-') { fprintf(stderr, "ameir train: unknown or incomplete option '%s'\n\n%s", s, TRAIN_HELP); return EXIT_USAGE; }
    else if (!a.config) a.config = s;
    else { fprintf(stderr, "ameir train: unexpected argument '%s'\n", s); return EXIT_USAGE; }
  }
  if (!a.config) { fputs(TRAIN_HELP, stderr); return EXIT_USAGE; }
  if (a.model && a.arch) { fprintf(stderr, "ameir train: give --model or --arch, not both\n"); return EXIT_USAGE; }
  /* the keys the named model needs go first: the user's --set still override them */
  const char *pre[8];
  int n_pre = a.model ? cli_model_sets(a.model, pre, 8) : 0;
  if (n_pre) {
    if (a.n_sets + n_pre > 256) { fprintf(stderr, "ameir train: too many --set\n"); return EXIT_USAGE; }
    memmove(a.sets + n_pre, a.sets, sizeof a.sets[0] * (size_t)a.n_sets);
    for (int i = 0; i < n_pre; i++) a.sets[i] = pre[i];
    a.n_sets += n_pre;
  }

  cli_progress prog = {.json = a.json, .tty = isatty(2)};
  ameir_context *ctx = NULL;
  ameir_dataset *ds = NULL;
  ameir_arch *arch = NULL;
  ameir_model *m = NULL;
  int rc = cli_make_context(&ctx, a.threads, a.seed, cli_progress_fn, &prog);
  if (rc) { ameir_context_free(ctx); return rc; }
  if ((rc = cli_config_defaults(ctx, a.config, a.seed, a.threads))) goto out;
  if ((rc = cli_open_dataset(ctx, a.config, a.sets, a.n_sets, a.json, &ds))) goto out;
  int32_t fc = 0;
  double load_s = ameir_dataset_load_seconds(ds, &fc);
  /* architecture */
  char buf[512];
  int retrieval = ameir_dataset_task(ds) == AMEIR_TASK_RETRIEVAL;
  char model_name[600] = "deepfm";
  if (retrieval) snprintf(model_name, sizeof model_name, "sasrec");
  if (a.model) snprintf(model_name, sizeof model_name, "%s", a.model);
  else if (!ameir_config_get_string(ctx, a.config, "train.model", buf, sizeof buf)) snprintf(model_name, sizeof model_name, "%s", buf);
  if (a.arch) {
    if (ameir_arch_load(&arch, ctx, a.arch)) { rc = cli_fail(ctx, "arch"); goto out; }
    snprintf(model_name, sizeof model_name, "arch");
  } else if ((rc = cli_preset(ctx, a.config, model_name, a.mlp, a.sets, a.n_sets, &arch))) {
    goto out;
  }
  if ((rc = cli_train_arch(ctx, a.config, arch, ds, a.sets, a.n_sets, &m))) goto out;
  cli_eval ev;
  if ((rc = cli_evaluate(ctx, m, ds, a.config, a.json, &ev))) goto out;
  double ts = 0, sps = 0, steps = 0;
  ameir_model_get_stat(m, "train_seconds", &ts);
  ameir_model_get_stat(m, "train_samples_per_s", &sps);
  ameir_model_get_stat(m, "train_steps", &steps);
  int64_t np = ameir_model_params(m, NULL);
  if (a.out) {
    if (mkdir(a.out, 0777) && errno != EEXIST) { fprintf(stderr, "ameir: %s: %s\n", a.out, strerror(errno)); rc = EXIT_RUNTIME; goto out; }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.ameir", a.out);
    if (ameir_model_save(m, path)) { rc = cli_fail(ctx, "save"); goto out; }
    char *txt = NULL;
    if (!ameir_arch_to_string(ameir_model_arch(m), &txt)) {
      snprintf(path, sizeof path, "%s/arch.txt", a.out);
      FILE *f = fopen(path, "w");
      if (f) { fputs(txt, f); fclose(f); }
      ameir_free(txt);
    }
  }
  if (a.json) {
    printf("{\"model\": ");
    json_str(stdout, model_name);
    printf(", \"config\": ");
    json_str(stdout, a.config);
    cli_json_context(stdout, ctx);
    cli_json_eval(stdout, &ev);
    printf(", \"n_train\": %lld, \"n_valid\": %.0f, \"n_test\": %.0f", (long long)ameir_dataset_rows(ds, 0), ev.valid[2], ev.test[2]);
    cli_json_train_stats(stdout, m);
    printf(", \"load_seconds\": %.3f, \"from_cache\": %d", load_s, (int)fc);
    printf(", \"infer_samples_per_s\": %.1f", ev.infer_samples_per_s);
    cli_json_sizes(stdout, m);
    double tsg = 0, tfw = 0, tbw = 0;
    ameir_model_get_stat(m, "time_stage", &tsg);
    ameir_model_get_stat(m, "time_forward", &tfw);
    ameir_model_get_stat(m, "time_backward", &tbw);
    printf(", \"time_stage\": %.3f, \"time_forward\": %.3f, \"time_backward\": %.3f", tsg, tfw, tbw);
    printf(", \"peak_rss_mb\": %.1f}\n", peak_rss_mb());
  } else {
    if (ev.retrieval) {
      for (int p = 0; p < 2; p++)
        printf("model %s, %s: test HR@5 %.4f NDCG@5 %.4f HR@10 %.4f NDCG@10 %.4f MRR %.4f\n", model_name,
               p ? "target + sampled negatives" : "full ranking", ev.rank[p][1][0], ev.rank[p][1][1], ev.rank[p][1][2],
               ev.rank[p][1][3], ev.rank[p][1][4]);
    } else {
      printf("model %s: valid AUC %.4f logloss %.4f | test AUC %.4f logloss %.4f\n", model_name, ev.valid[0], ev.valid[1], ev.test[0], ev.test[1]);
    }
    printf("trained %.0f steps in %.1fs (%.0f samples/s), %lld parameters, peak RSS %.0f MB\n", steps, ts, sps, (long long)np, peak_rss_mb());
  }
out:
  ameir_model_free(m);
  ameir_arch_free(arch);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
  return rc;
}

static const char *EVAL_HELP =
    "usage: ameir eval MODEL CONFIG.yaml [--split valid|test] [--threads N] [--json]\n"
    "Evaluates a saved model on a split (default test) of the dataset of CONFIG.yaml.\n";

static int open_model_and_data(int argc, char **argv, const char *help, ameir_context **ctx, ameir_model **m,
                               ameir_dataset **ds, int *split, int *json, cli_progress *prog) {
  const char *model = NULL, *config = NULL;
  long threads = 0;
  *split = AMEIR_SPLIT_TEST;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(help, stdout); return -1; }
    else if (!strcmp(argv[i], "--json")) *json = 1;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      if (parse_int_arg(argv[++i], 1, 1024, &threads)) { fputs(help, stderr); return EXIT_USAGE; }
    } else if (!strcmp(argv[i], "--split") && i + 1 < argc) {
      i++;
      if (!strcmp(argv[i], "train")) *split = 0;
      else if (!strcmp(argv[i], "valid")) *split = 1;
      else if (!strcmp(argv[i], "test")) *split = 2;
      else { fputs(help, stderr); return EXIT_USAGE; }
    } else if (argv[i][0] == '-') { fprintf(stderr, "unknown option '%s'\n%s", argv[i], help); return EXIT_USAGE; }
    else if (!model) model = argv[i];
    else if (!config) config = argv[i];
    else { fputs(help, stderr); return EXIT_USAGE; }
  }
  if (!model || !config) { fputs(help, stderr); return EXIT_USAGE; }
  prog->tty = isatty(2);
  int rc = cli_make_context(ctx, threads, -1, cli_progress_fn, prog);
  if (rc) return rc;
  if (ameir_model_load(m, *ctx, model)) return cli_fail(*ctx, "load");
  if (ameir_dataset_open(ds, *ctx, config)) return cli_fail(*ctx, "dataset");
  return 0;
}

int cmd_eval(int argc, char **argv) {
  ameir_context *ctx = NULL;
  ameir_model *m = NULL;
  ameir_dataset *ds = NULL;
  int split, json = 0;
  cli_progress prog = {0};
  int rc = open_model_and_data(argc, argv, EVAL_HELP, &ctx, &m, &ds, &split, &json, &prog);
  if (rc == 0) {
    int32_t ids[3] = {AMEIR_METRIC_AUC, AMEIR_METRIC_LOGLOSS, AMEIR_METRIC_ROWS};
    double v[3];
    if (ameir_model_evaluate(m, ds, split, 3, ids, v)) rc = cli_fail(ctx, "evaluate");
    else if (json) printf("{\"auc\": %.6f, \"logloss\": %.6f, \"rows\": %.0f}\n", v[0], v[1], v[2]);
    else printf("AUC %.4f logloss %.4f over %.0f rows\n", v[0], v[1], v[2]);
  }
  ameir_model_free(m);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
  return rc < 0 ? 0 : rc;
}

static const char *PREDICT_HELP =
    "usage: ameir predict MODEL FILE [--threads N]\n"
    "Prints one click probability a line for every row of FILE, a data file in the format the\n"
    "model was trained on (its dataset configuration and vocabularies travel in the model file;\n"
    "unseen values take their field's out-of-vocabulary embedding).\n";

int cmd_predict(int argc, char **argv) {
  const char *model = NULL, *file = NULL;
  long threads = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(PREDICT_HELP, stdout); return 0; }
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      if (parse_int_arg(argv[++i], 1, 1024, &threads)) { fputs(PREDICT_HELP, stderr); return EXIT_USAGE; }
    } else if (argv[i][0] == '-') { fprintf(stderr, "unknown option '%s'\n%s", argv[i], PREDICT_HELP); return EXIT_USAGE; }
    else if (!model) model = argv[i];
    else if (!file) file = argv[i];
    else { fputs(PREDICT_HELP, stderr); return EXIT_USAGE; }
  }
  if (!model || !file) { fputs(PREDICT_HELP, stderr); return EXIT_USAGE; }
  cli_progress prog = {0};
  ameir_context *ctx = NULL;
  ameir_model *m = NULL;
  int rc = cli_make_context(&ctx, threads, -1, cli_progress_fn, &prog);
  if (!rc && ameir_model_load(&m, ctx, model)) rc = cli_fail(ctx, "load");
  if (!rc) {
    float *p = NULL;
    int64_t n = 0;
    if (ameir_model_predict_file(m, file, &p, &n)) rc = cli_fail(ctx, "predict");
    else for (int64_t i = 0; i < n; i++) printf("%.6f\n", p[i]);
    ameir_free(p);
  }
  ameir_model_free(m);
  ameir_context_free(ctx);
  return rc;
}

int cmd_inspect(int argc, char **argv) {
  if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fputs("usage: ameir inspect MODEL\nPrints a saved model's architecture, options and sizes.\n", argc == 2 ? stdout : stderr);
    return argc == 2 ? 0 : EXIT_USAGE;
  }
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cpu")) { fprintf(stderr, "ameir: %s\n", ameir_last_error()); return EXIT_RUNTIME; }
  ameir_model *m = NULL;
  int rc = 0;
  if (ameir_model_load(&m, ctx, argv[1])) rc = cli_fail(ctx, "load");
  else {
    char *txt = NULL;
    if (ameir_arch_to_string(ameir_model_arch(m), &txt) == 0) { fputs(txt, stdout); ameir_free(txt); }
    int64_t pe = 0, np = ameir_model_params(m, &pe);
    char emb[32] = "";
    ameir_model_get_option(m, "emb", emb, sizeof emb);
    printf("emb: %s\nparameters: %lld (%lld in embeddings)\nflops_per_sample: %lld\n", emb, (long long)np, (long long)pe,
           (long long)ameir_model_flops(m));
  }
  ameir_model_free(m);
  ameir_context_free(ctx);
  return rc;
}

static const char *ARCH_HELP =
    "usage: ameir arch NAME [CONFIG.yaml] [--mlp SPEC] [--set key=value]...\n"
    "Prints the named model (lr fm dnn widedeep deepfm dcn xdeepfm autoint ipnn fibinet din dien dsin\n"
    "sasrec nextitnet gru4rec caser bert4rec pop bprmf ameir-a1..ameir-a4) as an architecture file\n"
    "(docs/arch.md), as `ameir train --model NAME` would build it: with CONFIG, its train.mlp,\n"
    "and its architecture keys (train.cross_layers, cin, autoint, fibinet, caser, cloze) apply, then\n"
    "--mlp and --set KEY=V (cross_layers=N, cin=W,W, caser=L,NV,NH, cloze=P, ...). The\n"
    "output trains with `ameir train CONFIG --arch FILE`.\n";

int cmd_arch(int argc, char **argv) {
  const char *name = NULL, *config = NULL, *mlp = NULL, *sets[64];
  int n_sets = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(ARCH_HELP, stdout); return 0; }
    if (!strcmp(argv[i], "--mlp") && i + 1 < argc) mlp = argv[++i];
    else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_sets < 64 && strchr(argv[i + 1], '=')) sets[n_sets++] = argv[++i];
    else if (argv[i][0] == '-' || (name && config)) { fputs(ARCH_HELP, stderr); return EXIT_USAGE; }
    else if (!name) name = argv[i];
    else config = argv[i];
  }
  if (!name) { fputs(ARCH_HELP, stderr); return EXIT_USAGE; }
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cpu")) { fprintf(stderr, "ameir: %s\n", ameir_last_error()); return EXIT_RUNTIME; }
  ameir_arch *a = NULL;
  int rc = cli_preset(ctx, config, name, mlp, sets, n_sets, &a);
  char *txt = NULL;
  if (!rc && ameir_arch_to_string(a, &txt)) rc = cli_fail(ctx, "arch");
  if (!rc) fputs(txt, stdout);
  ameir_free(txt);
  ameir_arch_free(a);
  ameir_context_free(ctx);
  return rc;
}

static const char *GEN_HELP =
    "usage: ameir gen DIR [--rows N] [--seed N]\n"
    "Writes DIR/synthetic.csv and DIR/synthetic.yaml: a CTR dataset drawn from a known teacher\n"
    "(planted interactions (c0, c1), (c2, c3), (c4, c5, c6) and a behaviour pattern). Default\n"
    "100000 rows, seed 2021.\n";

int cmd_gen(int argc, char **argv) {
  const char *dir = NULL;
  long rows = 100000, seed = 2021;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(GEN_HELP, stdout); return 0; }
    else if (!strcmp(argv[i], "--rows") && i + 1 < argc) {
      if (parse_int_arg(argv[++i], 100, 100000000L, &rows)) { fputs(GEN_HELP, stderr); return EXIT_USAGE; }
    } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      if (parse_int_arg(argv[++i], 0, 2147483647L, &seed)) { fputs(GEN_HELP, stderr); return EXIT_USAGE; }
    } else if (argv[i][0] == '-' || dir) { fputs(GEN_HELP, stderr); return EXIT_USAGE; }
    else dir = argv[i];
  }
  if (!dir) { fputs(GEN_HELP, stderr); return EXIT_USAGE; }
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cpu")) { fprintf(stderr, "ameir: %s\n", ameir_last_error()); return EXIT_RUNTIME; }
  int rc = 0;
  if (ameir_dataset_generate(ctx, dir, rows, (uint64_t)seed)) rc = cli_fail(ctx, "gen");
  else printf("%s/synthetic.yaml\n", dir);
  ameir_context_free(ctx);
  return rc;
}
