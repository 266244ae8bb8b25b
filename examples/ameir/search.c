/* ameir search: the three-step one-shot search of AMEIR and the derivation of the final model. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ameir/search.h"
#include "cli.h"

static const char *SEARCH_HELP =
    "usage: ameir search CONFIG.yaml [--out DIR] [--steps 1,2,3] [--resume] [--from-scratch]\n"
    "                    [--set key=value]... [--threads N] [--seed N] [--json]\n"
    "\n"
    "Opens the dataset of CONFIG.yaml (its `dataset:` section), builds the search space from its\n"
    "`search:` section, and runs the three steps of the AMEIR search (1 behaviour-modeling blocks,\n"
    "2 interactions, 3 MLP; the ones that apply to the data, or those of --steps), then derives\n"
    "the final model from the one-shot weights (--from-scratch: from random weights), fine-tunes\n"
    "it and evaluates it on the test split. --set dataset.KEY=V changes the dataset, search.KEY=V\n"
    "(or KEY=V) a key of the space, train.KEY=V a training option of the one-shot and derived\n"
    "models. DIR (default search-out/<dataset name>) receives checkpoints, model.ameir,\n"
    "report.yaml, report.html and search.log; --resume continues from DIR's last checkpoint.\n"
    "Ctrl-C stops at the next checkpoint (a second one quits at once). --json prints one JSON\n"
    "object of the results. docs/search.md describes the search and every key.\n";

/* search-out/<dataset name>, the name from --set dataset.name=..., else the config's
 * dataset.name, else the config's file name without .yaml/.yml. */
static void default_out(ameir_context *ctx, const char *config, const char *const *sets, int n_sets, char *out, size_t size) {
  char name[256] = "";
  for (int i = 0; i < n_sets; i++)
    if (!strncmp(sets[i], "dataset.name=", 13)) snprintf(name, sizeof name, "%s", sets[i] + 13);
  if (!name[0] && ameir_config_get_string(ctx, config, "dataset.name", name, sizeof name)) name[0] = 0;
  if (!name[0]) {
    const char *b = strrchr(config, '/');
    snprintf(name, sizeof name, "%s", b ? b + 1 : config);
    size_t l = strlen(name);
    if (l > 5 && !strcmp(name + l - 5, ".yaml")) name[l - 5] = 0;
    else if (l > 4 && !strcmp(name + l - 4, ".yml")) name[l - 4] = 0;
  }
  for (char *c = name; *c; c++)
    if (*c == '/' || *c == ' ') *c = '_';
  if (!name[0] || !strcmp(name, ".") || !strcmp(name, "..")) snprintf(name, sizeof name, "search");
  snprintf(out, size, "search-out/%s", name);
}

/* "1,2,3": step numbers 1..4 separated by commas. */
static int valid_steps(const char *s) {
  int want_digit = 1;
  for (; *s; s++) {
    if (want_digit) {
      if (*s < '1' || *s > '4') return 0;
      want_digit = 0;
    } else {
      if (*s != ',') return 0;
      want_digit = 1;
    }
  }
  return !want_digit;
}

static void print_indented(const char *txt) {
  const char *p = txt;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t l = nl ? (size_t)(nl - p) : strlen(p);
    if (l) printf("  %.*s\n", (int)l, p);
    p += l + (nl ? 1 : 0);
  }
}

static const char *const STEP_NAMES[5] = {"", "blocks", "interactions", "mlp", "derive"};
static const char *const OUT_FILES[4] = {"model.ameir", "report.yaml", "report.html", "search.log"};

typedef struct {
  const char *config, *out, *steps;
  const char *sets[256];
  int n_sets;
  long threads, seed;
  int json, resume, from_scratch;
} search_args;

int cmd_search(int argc, char **argv) {
  search_args a;
  memset(&a, 0, sizeof a);
  a.seed = -1;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    int has_next = i + 1 < argc;
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) { fputs(SEARCH_HELP, stdout); return 0; }
    else if (!strcmp(s, "--json")) a.json = 1;
    else if (!strcmp(s, "--resume")) a.resume = 1;
    else if (!strcmp(s, "--from-scratch")) a.from_scratch = 1;
    else if (!strcmp(s, "--out") && has_next) a.out = argv[++i];
    else if (!strcmp(s, "--steps") && has_next) {
      a.steps = argv[++i];
      if (!valid_steps(a.steps)) { fprintf(stderr, "ameir search: --steps takes step numbers like 1,2,3\n"); return EXIT_USAGE; }
    } else if (!strcmp(s, "--set") && has_next) {
      const char *eq = strchr(argv[i + 1], '=');
      if (a.n_sets == 256 || !eq || eq == argv[i + 1]) { fprintf(stderr, "ameir search: --set takes key=value\n"); return EXIT_USAGE; }
      a.sets[a.n_sets++] = argv[++i];
    } else if (!strcmp(s, "--threads") && has_next) {
      if (parse_int_arg(argv[++i], 1, 1024, &a.threads)) { fprintf(stderr, "ameir search: --threads takes 1..1024\n"); return EXIT_USAGE; }
    } else if (!strcmp(s, "--seed") && has_next) {
      if (parse_int_arg(argv[++i], 0, 2147483647L, &a.seed)) { fprintf(stderr, "ameir search: --seed takes a non-negative integer\n"); return EXIT_USAGE; }
    } else if (s[0] == '-') { fprintf(stderr, "ameir search: unknown or incomplete option '%s'\n\n%s", s, SEARCH_HELP); return EXIT_USAGE; }
    else if (!a.config) a.config = s;
    else { fprintf(stderr, "ameir search: unexpected argument '%s'\n", s); return EXIT_USAGE; }
  }
  if (!a.config) { fputs(SEARCH_HELP, stderr); return EXIT_USAGE; }
  if (a.out && !a.out[0]) { fprintf(stderr, "ameir search: --out takes a directory\n"); return EXIT_USAGE; }

  cli_stage_progress prog;
  memset(&prog, 0, sizeof prog);
  prog.prog.json = a.json;
  prog.prog.tty = isatty(2);
  ameir_context *ctx = NULL;
  ameir_dataset *ds = NULL;
  ameir_space *sp = NULL;
  ameir_searcher *se = NULL;
  int rc = cli_make_context(&ctx, a.threads, a.seed, cli_stage_progress_fn, &prog);
  if (rc) { ameir_context_free(ctx); return rc; }
  if ((rc = cli_config_defaults(ctx, a.config, a.seed, a.threads))) goto out;
  if ((rc = cli_open_dataset(ctx, a.config, a.sets, a.n_sets, a.json, &ds))) goto out;
  int retrieval = ameir_dataset_task(ds) == AMEIR_TASK_RETRIEVAL;

  /* space: the config's search: section, then search.* (or unprefixed) and train.* overrides */
  if (ameir_space_load(&sp, ctx, a.config, "search")) { rc = cli_fail(ctx, "search space"); goto out; }
  for (int i = 0; i < a.n_sets; i++) {
    if (!strncmp(a.sets[i], "dataset.", 8)) continue;
    char key[128];
    const char *k = cli_set_key(a.sets[i], "search.", key, sizeof key); /* train.KEY stays whole */
    if (ameir_space_set(sp, k, strchr(a.sets[i], '=') + 1)) { cli_fail(ctx, a.sets[i]); rc = EXIT_USAGE; goto out; }
  }

  /* a baseline method (docs/search.md "Other search methods") runs as one step, reported as 3 */
  char method[32] = "ameir";
  if (ameir_space_get(sp, "method", method, sizeof method)) snprintf(method, sizeof method, "ameir");
  const int baseline = strcmp(method, "ameir") != 0;

  /* searcher */
  char outdir[4096];
  if (a.out) snprintf(outdir, sizeof outdir, "%s", a.out);
  else default_out(ctx, a.config, a.sets, a.n_sets, outdir, sizeof outdir);
  if (!a.resume && cli_make_dirs(outdir)) { fprintf(stderr, "ameir: %s: %s\n", outdir, strerror(errno)); rc = EXIT_RUNTIME; goto out; }
  if (ameir_searcher_create(&se, sp, ds)) { rc = cli_fail(ctx, "searcher"); goto out; }
  if (ameir_searcher_set(se, "out", outdir)) { rc = cli_fail(ctx, "out"); goto out; }
  if (ameir_searcher_set(se, "config", a.config)) { rc = cli_fail(ctx, "config"); goto out; }
  if (a.steps && ameir_searcher_set(se, "steps", a.steps)) { cli_fail(ctx, "--steps"); rc = EXIT_USAGE; goto out; }
  if (a.resume && ameir_searcher_set(se, "resume", "1")) { rc = cli_fail(ctx, "resume"); goto out; }
  if (a.from_scratch && ameir_searcher_set(se, "from_scratch", "1")) { rc = cli_fail(ctx, "from_scratch"); goto out; }

  /* run, with Ctrl-C stopping at a checkpoint */
  cli_sigint_catch(1);
  if (!a.json) fprintf(stderr, "search: %s (steps %s), output in %s\n", a.resume ? "resuming" : "starting",
                       a.steps ? a.steps : "that apply to the data", outdir);
  ameir_status st = ameir_searcher_run(se, 0);
  cli_sigint_catch(0);
  if (st == AMEIR_ECANCELLED || (st != AMEIR_OK && cli_interrupted())) {
    if (prog.prog.tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "interrupted; continue with: ameir search %s --out %s --resume\n", a.config, outdir);
    rc = 130;
    goto out;
  }
  if (st) { rc = cli_fail(ctx, "search"); goto out; }

  /* results */
  const char *mname = retrieval ? "HR@10" : "AUC";
  const char *mkey = retrieval ? "valid_hr10" : "valid_auc";
  const char *tk[2] = {retrieval ? "test_hr10" : "test_auc", retrieval ? "test_ndcg10" : "test_logloss"};
  double test[2] = {cli_searcher_stat(se, tk[0]), cli_searcher_stat(se, tk[1])};
  double params = cli_searcher_stat(se, "params"), flops = cli_searcher_stat(se, "flops");
  double secs[5];
  for (int k = 1; k <= 4; k++) {
    char key[32];
    snprintf(key, sizeof key, "step%d_seconds", k);
    secs[k] = cli_searcher_stat(se, key);
  }
  char *txt[5] = {NULL};
  double metric[5] = {NAN, NAN, NAN, NAN, NAN};
  int ran[5] = {0};
  for (int k = 1; k <= 4; k++) {
    ameir_arch *arch = NULL;
    if (ameir_searcher_result(se, k, &arch, &metric[k]) != AMEIR_OK) continue;
    ran[k] = 1;
    if (arch && ameir_arch_to_string(arch, &txt[k])) txt[k] = NULL;
    ameir_arch_free(arch);
  }
  int nfiles = 0;
  const char *files[4];
  for (int i = 0; i < 4; i++) {
    char path[4200];
    struct stat stt;
    snprintf(path, sizeof path, "%s/%s", outdir, OUT_FILES[i]);
    if (stat(path, &stt) == 0 && S_ISREG(stt.st_mode)) files[nfiles++] = OUT_FILES[i];
  }

  if (a.json) {
    printf("{\"config\": ");
    json_str(stdout, a.config);
    printf(", \"task\": \"%s\", \"out\": ", retrieval ? "retrieval" : "ctr");
    json_str(stdout, outdir);
    cli_json_context(stdout, ctx);
    printf(", \"from_scratch\": %d, \"resumed\": %d", a.from_scratch, a.resume);
    printf(", \"steps\": [");
    int first = 1;
    for (int k = 1; k <= 3; k++) {
      if (!ran[k]) continue;
      printf("%s{\"step\": %d, \"name\": \"%s\", \"arch\": ", first ? "" : ", ", k,
             baseline && k == 3 ? method : STEP_NAMES[k]);
      if (txt[k]) json_str(stdout, txt[k]); else fputs("null", stdout);
      printf(", \"%s\": ", mkey);
      cli_json_num(stdout, metric[k], "%.6f");
      printf(", \"seconds\": ");
      cli_json_num(stdout, secs[k], "%.3f");
      putchar('}');
      first = 0;
    }
    printf("], \"final_arch\": ");
    if (ran[4] && txt[4]) json_str(stdout, txt[4]); else fputs("null", stdout);
    for (int j = 0; j < 2; j++) {
      printf(", \"%s\": ", tk[j]);
      cli_json_num(stdout, test[j], "%.6f");
    }
    printf(", \"params\": ");
    cli_json_num(stdout, params, "%.0f");
    printf(", \"flops\": ");
    cli_json_num(stdout, flops, "%.0f");
    for (int k = 1; k <= 4; k++) {
      printf(", \"step%d_seconds\": ", k);
      cli_json_num(stdout, secs[k], "%.3f");
    }
    printf(", \"files\": [");
    for (int i = 0; i < nfiles; i++) {
      if (i) printf(", ");
      json_str(stdout, files[i]);
    }
    printf("]}\n");
  } else {
    const char *last = NULL;
    for (int k = 1; k <= 3; k++) {
      if (!ran[k]) continue;
      printf("step %d (%s): valid %s %.4f", k, baseline && k == 3 ? method : STEP_NAMES[k], mname, metric[k]);
      if (isfinite(secs[k])) printf(", %.1fs", secs[k]);
      putchar('\n');
      if (txt[k]) { print_indented(txt[k]); last = txt[k]; }
    }
    if (ran[4] && txt[4] && (!last || strcmp(last, txt[4]))) {
      printf("derived architecture:\n");
      print_indented(txt[4]);
    }
    if (isfinite(test[0]) || isfinite(test[1])) {
      if (retrieval) printf("derived model: test HR@10 %.4f NDCG@10 %.4f", test[0], test[1]);
      else printf("derived model: test AUC %.4f logloss %.4f", test[0], test[1]);
      if (isfinite(params)) printf(", %.0f parameters", params);
      if (isfinite(flops)) printf(", %.0f FLOPs/sample", flops);
      if (isfinite(secs[4])) printf(", fine-tuned in %.1fs", secs[4]);
      putchar('\n');
    } else {
      printf("no derived model (the derivation did not run)\n");
    }
    printf("output: %s:", outdir);
    for (int i = 0; i < nfiles; i++) printf(" %s", files[i]);
    printf("%s\n", nfiles ? "" : " (no files)");
  }
  for (int k = 1; k <= 4; k++) ameir_free(txt[k]);
out:
  cli_sigint_catch(0);
  ameir_searcher_free(se);
  ameir_space_free(sp);
  ameir_dataset_free(ds);
  ameir_context_free(ctx);
  return rc;
}
