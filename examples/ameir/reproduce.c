/* ameir reproduce: the rows of one of the paper's comparison tables that libameir has, run on the
 * bundled data over several seeds with the library's own trainer, as a Markdown table and a CSV.
 *
 * Every (dataset, row, seed) run writes DIR/raw/<dataset>/<row>.seed<S>.json atomically; a file
 * that exists is checked and reused, so an interrupted run resumes. The AMEIR rows of one
 * dataset and seed come from one search (DIR/search/<dataset>.seed<S>, resumed from its
 * checkpoints); the others are named architectures (docs/arch.md) trained like `ameir train`. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char *REPRODUCE_HELP =
    "usage: ameir reproduce TABLE [--datasets a,b,...] [--seeds N] [--out DIR] [--threads N]\n"
    "                       [--configs DIR] [--quick] [--budget-factor F] [--json]\n"
    "\n"
    "Runs the rows of one of the paper's comparison tables that libameir has on the bundled data\n"
    "(the configs examples/configs/<dataset>.yaml), each with the library's trainer on the same\n"
    "splits, over seeds 2021, 2022, ..., and writes DIR/table<TABLE>.md and DIR/table<TABLE>.csv:\n"
    "per dataset and row the mean and standard deviation over the seeds of the test metrics, the\n"
    "training and search seconds, parameters, FLOPs per sample and inference samples/s. The\n"
    "Markdown goes to standard output as well (--json: one JSON object of the same instead).\n"
    "\n"
    "tables (the paper's rows missing from libameir are listed in the table's footer):\n"
    "  3  CTR without behaviours (paper Tables 3 and 5): frappe, criteo, avazu, ipinyou;\n"
    "     LR, FM, DNN, Wide&Deep, DeepFM, AMEIR-B, AMEIR-C. Default 4 seeds.\n"
    "  1  CTR with behaviours (paper Table 1): ml100k; DNN, Wide&Deep, DeepFM, DIN, DIEN-like,\n"
    "     DSIN-like, AMEIR-A, AMEIR-B, AMEIR-C. Default 4 seeds.\n"
    "  2  next-item retrieval (paper Table 2): amazon_beauty, amazon_sports; POP, BPR-MF, GRU4Rec-,\n"
    "     NextItNet-, SASRec-like, Caser, BERT4Rec-like, AMEIR-A (trained like the others) and AMEIR-A derived; HR@5/10,\n"
    "     NDCG@5/10, MRR under full ranking and against sampled negatives. Default 2 seeds.\n"
    "  4  search methods (paper Table 4): ml100k; AMEIR's three-step search, random search and\n"
    "     regularized evolution (1-epoch children within F x AMEIR's search time), and the one-shot\n"
    "     random search over all three subspaces at once. Default 1 seed.\n"
    "\n"
    "AMEIR-A and AMEIR-B are the architectures of search steps 1 and 2 trained like the\n"
    "baselines, AMEIR-C (table 2: AMEIR-A derived) the model the search derives (the one-shot\n"
    "weights, fine-tuned); one search per dataset and seed gives them all.\n"
    "\n"
    "  --datasets a,b   the datasets (default: the table's); each needs <configs>/<name>.yaml\n"
    "  --seeds N        seeds 2021 .. 2021+N-1\n"
    "  --out DIR        output directory (default reproduce-out): raw/<dataset>/<row>.seed<S>.json\n"
    "                   per run, search/<dataset>.seed<S> per search, the tables. A run whose\n"
    "                   file exists is reused: the same command resumes an interrupted one\n"
    "  --threads N      worker threads (default: the config's train.threads, else every core)\n"
    "  --configs DIR    the configs (default examples/configs, else ../examples/configs next to\n"
    "                   the program)\n"
    "  --quick          a smoke run: 1 seed, 1 epoch of at most 40 steps per model, a tiny search\n"
    "                   budget; its numbers are not results (its files are kept apart: search\n"
    "                   directories end in -quick, and a raw file of the other kind is refused)\n"
    "  --budget-factor F  table 4: the budget of random search and evolution, F times the AMEIR\n"
    "                   search's measured time of the same seed (default 10, the paper's)\n"
    "  --json           print a JSON object instead of the Markdown\n"
    "\n"
    "Ctrl-C stops at the next checkpoint; the same command continues. docs/reproduce.md has more.\n";

/* ---------------- tables ---------------- */

typedef enum { ROW_PRESET, ROW_STEP, ROW_DERIVED } row_kind;

typedef struct {
  const char *id;      /* file names and the CSV */
  const char *label;   /* the table */
  row_kind kind;
  const char *preset;  /* ROW_PRESET: ameir_arch_preset's name */
  int step;            /* ROW_STEP: the search step whose architecture is trained */
  int method;          /* ROW_STEP, ROW_DERIVED: the search method (METHOD_*) */
  int aggregate;       /* ROW_STEP: AGG_SEARCHED as the step gives it, or its interactions and
                        * MLP with another combination (paper Table 5's rows) */
} row_def;

/* paper Table 5's ways of combining the interactions with the MLP */
enum { AGG_SEARCHED = 0, AGG_MLP = 1, AGG_MLP_FM = 2 };

/* the search methods (the space's `method`, docs/search.md "Other search methods") */
enum { METHOD_AMEIR, METHOD_RANDOM, METHOD_EVOLUTION, METHOD_JOINT, N_METHODS };
static const char *const METHOD_KEY[N_METHODS] = {"ameir", "random", "evolution", "joint"};

typedef enum { NEED_CTR, NEED_BEHAVIOURS, NEED_RETRIEVAL } table_need;

typedef struct {
  const char *name, *title, *datasets;
  int seeds;
  table_need need;
  const row_def *rows;
  int n_rows;
  const char *notes;
  const char *missing;
} table_def;

static const row_def ROWS3[] = {
    {"lr", "LR", ROW_PRESET, "lr", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"fm", "FM", ROW_PRESET, "fm", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"dnn", "DNN", ROW_PRESET, "dnn", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"widedeep", "Wide&Deep", ROW_PRESET, "widedeep", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"deepfm", "DeepFM", ROW_PRESET, "deepfm", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"dcn", "DCN", ROW_PRESET, "dcn", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"xdeepfm", "xDeepFM", ROW_PRESET, "xdeepfm", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"autoint", "AutoInt+", ROW_PRESET, "autoint", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"ipnn", "IPNN", ROW_PRESET, "ipnn", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"fibinet", "FiBiNET", ROW_PRESET, "fibinet", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"ameir-mlp", "AMEIR interactions, MLP (Table 5)", ROW_STEP, NULL, 2, METHOD_AMEIR, AGG_MLP},
    {"ameir-i", "AMEIR-I (MLP + FM)", ROW_STEP, NULL, 2, METHOD_AMEIR, AGG_MLP_FM},
    {"ameir-b", "AMEIR-B (MLP + SE)", ROW_STEP, NULL, 2, METHOD_AMEIR, AGG_SEARCHED},
    {"ameir-c", "AMEIR-C", ROW_DERIVED, NULL, 0, METHOD_AMEIR, AGG_SEARCHED},
};
static const row_def ROWS1[] = {
    {"dnn", "DNN", ROW_PRESET, "dnn", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"widedeep", "Wide&Deep", ROW_PRESET, "widedeep", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"deepfm", "DeepFM", ROW_PRESET, "deepfm", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"din", "DIN", ROW_PRESET, "din", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"dien", "DIEN-like", ROW_PRESET, "dien", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"dsin", "DSIN-like", ROW_PRESET, "dsin", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"ameir-a", "AMEIR-A", ROW_STEP, NULL, 1, METHOD_AMEIR, AGG_SEARCHED},
    {"ameir-b", "AMEIR-B", ROW_STEP, NULL, 2, METHOD_AMEIR, AGG_SEARCHED},
    {"ameir-c", "AMEIR-C", ROW_DERIVED, NULL, 0, METHOD_AMEIR, AGG_SEARCHED},
};
static const row_def ROWS2[] = {
    /* POP and BPR-MF bring their own keys (cli_model_sets): no training; a user field, BPR */
    {"pop", "POP", ROW_PRESET, "pop", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"bprmf", "BPR-MF", ROW_PRESET, "bprmf", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"gru4rec", "GRU4Rec-like", ROW_PRESET, "gru4rec", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"nextitnet", "NextItNet-like", ROW_PRESET, "nextitnet", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"sasrec", "SASRec-like", ROW_PRESET, "sasrec", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"caser", "Caser", ROW_PRESET, "caser", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"bert4rec", "BERT4Rec-like", ROW_PRESET, "bert4rec", 0, METHOD_AMEIR, AGG_SEARCHED},
    {"ameir-a", "AMEIR-A", ROW_STEP, NULL, 1, METHOD_AMEIR, AGG_SEARCHED},
    {"ameir-a-derived", "AMEIR-A derived", ROW_DERIVED, NULL, 0, METHOD_AMEIR, AGG_SEARCHED},
};
static const row_def ROWS4[] = {
    {"ameir-c", "AMEIR (three-step one-shot random search)", ROW_DERIVED, NULL, 0, METHOD_AMEIR, AGG_SEARCHED},
    {"random", "Random search (1-epoch children)", ROW_DERIVED, NULL, 0, METHOD_RANDOM, AGG_SEARCHED},
    {"evolution", "Regularized evolution (1-epoch children)", ROW_DERIVED, NULL, 0, METHOD_EVOLUTION, AGG_SEARCHED},
    {"oneshot-joint", "One-shot random search (all subspaces at once)", ROW_DERIVED, NULL, 0, METHOD_JOINT, AGG_SEARCHED},
};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const table_def TABLES[] = {
    {"1", "Table 1: CTR with behaviours (paper Table 1)", "ml100k", 4, NEED_BEHAVIOURS, ROWS1, N_OF(ROWS1),
     "DNN, Wide&Deep and DeepFM sum-pool the behaviours into one more field; DIN attends from the target; "
     "DIEN-like and DSIN-like are the approximations of docs/arch.md (no AUGRU or auxiliary loss; no sessions). "
     "The paper runs this table on Alimama (`--datasets alimama`: the bundled 500-line sample) and reports QPS: "
     "here inference samples/s on this machine's CPU.",
     "nothing (DIEN and DSIN only as the approximations above)"},
    {"2", "Table 2: next-item retrieval (paper Table 2)", "amazon_beauty,amazon_sports", 2, NEED_RETRIEVAL, ROWS2,
     N_OF(ROWS2),
     "POP ranks items by their training count (item biases log(1 + count), no training); BPR-MF is a user "
     "embedding (the dataset's `user_field`) through the head against the item table, trained with the BPR loss "
     "on the same sampled negatives. "
     "GRU4Rec-, NextItNet- and SASRec-like are the block stacks of docs/arch.md on the same backbone and head; "
     "Caser is its convolutional read-out over the last 5 items (5 vertical, 2 horizontal filters per height) "
     "and its user embedding into one 64-wide ReLU layer; "
     "BERT4Rec-like adds learned positions and masked-item (Cloze) training with one masked position per row and step "
     "(no Stage-1 dropout). "
     "AMEIR-A: the blocks of search step 1 trained like them; AMEIR-A derived: the model the search derives "
     "(the one-shot weights, fine-tuned). The paper's Steam set is not bundled.",
     "STAMP, NARM, SR-GNN (Caser and BERT4Rec as the approximations above)"},
    {"3", "Table 3: CTR without behaviours (paper Tables 3 and 5)", "frappe,criteo,avazu,ipinyou", 4, NEED_CTR, ROWS3,
     N_OF(ROWS3),
     "LR and FM have no hidden layer; DNN, Wide&Deep, DeepFM, DCN (3 cross layers), xDeepFM (CIN 128-128, "
     "train.cin), AutoInt+ (3 attention layers beside the MLP), IPNN (the pairwise inner products into the "
     "MLP) and FiBiNET (SENET and bilinear interactions as the MLP's input, plus the linear term) use the config's "
     "MLP (train.mlp). The "
     "rows after them train the interactions of search step 2 with the pre-defined MLP and, as paper "
     "Table 5's Manual column: nothing else (MLP), DeepFM's linear and FM terms (MLP + FM: AMEIR-I), or the "
     "SE shortcut (MLP + SE: AMEIR-B); AMEIR-C is the model the search derives after step 3 (Table 5's "
     "MLP + SE / Searched row).",
     "AutoCross, AutoFIS, AutoCTR, and Table 5's Searched column for MLP and MLP + FM"},
    {"4", "Table 4: search methods (paper Table 4)", "ml100k", 1, NEED_CTR, ROWS4, N_OF(ROWS4),
     "Every method searches AMEIR's space (the three subspaces of the config's `search:` section). The AMEIR row is "
     "the model the three-step search derives (table 1's AMEIR-C: with the same --out the runs are shared). Random "
     "search and regularized evolution (appendix C.4) train each child from scratch for 1 epoch and score it on the "
     "validation split, within a budget of --budget-factor (the paper: 10) times the AMEIR search's measured time "
     "of the same seed; evolution starts from 10 uniform children, mutates one uniformly drawn member of the "
     "population per cycle by one change, removes the oldest, and stops when the population's best has not changed "
     "for 5 cycles (or the budget is spent); their best is then trained from random weights like any model. The "
     "one-shot random search trains one supernet over the three subspaces at once and scores 3 x the config's "
     "`samples` random children with its weights (the paper: 6000 against AMEIR's 2000; `search.joint_samples` "
     "overrides it); its best is derived like AMEIR's. `search (s)` is each "
     "search's cost on this machine's CPU (the paper: GPU days on Alimama), `time (s)` the final training.",
     "RL, ENAS, DARTS, SNAS"},
};

static const char *const QUICK_TRAIN[] = {"epochs=1", "max_steps=40"};
static const char *const QUICK_SEARCH[] = {"samples=20",     "topk=2",     "score_rows=512",
                                           "epochs1=1",      "epochs2=1",  "epochs3=1",
                                           "cycles=1",       "finetune_epochs=1", "train.max_steps=40",
                                           /* table 4's other methods */
                                           "children=4",     "population=3", "stall_cycles=2",
                                           "joint_samples=20", "epochs_joint=1"};

/* ---------------- a flat JSON object (the raw files) ---------------- */

typedef struct {
  char key[64];
  int kind;       /* 0 null, 1 number, 2 string, 3 true/false */
  double num;
  char str[128];  /* a string's first 127 bytes */
} jfield;

typedef struct {
  jfield *f;
  int n;
} jobj;

static void jobj_free(jobj *o) {
  free(o->f);
  o->f = NULL;
  o->n = 0;
}

static const jfield *jget(const jobj *o, const char *key) {
  for (int i = o->n - 1; i >= 0; i--)
    if (!strcmp(o->f[i].key, key)) return &o->f[i];
  return NULL;
}

static double jnum(const jobj *o, const char *key) {
  const jfield *f = jget(o, key);
  return f && f->kind == 1 ? f->num : NAN;
}

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

/* a JSON string at p (after its opening quote) into out (cut to size - 1); NULL on a bad one */
static const char *parse_jstr(const char *p, char *out, size_t size) {
  size_t n = 0;
  for (; *p && *p != '"'; p++) {
    char c = *p;
    if ((unsigned char)c < 0x20) return NULL;
    if (c == '\\') {
      p++;
      switch (*p) {
        case '"': case '\\': case '/': c = *p; break;
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'u':
          for (int i = 1; i <= 4; i++)
            if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
          p += 4;
          c = '?';
          break;
        default: return NULL;
      }
    }
    if (n + 1 < size) out[n++] = c;
  }
  if (*p != '"') return NULL;
  out[n] = 0;
  return p + 1;
}

/* Parses one object of string, number, true/false and null members (what this command writes),
 * with nothing but white space after it. 0, or -1 with the reason and byte offset in err. */
static int parse_flat_json(const char *text, jobj *o, char *err, size_t errsize) {
  const char *p = skip_ws(text);
  int cap = 0;
  o->f = NULL;
  o->n = 0;
#define JFAIL(what) do { snprintf(err, errsize, "%s at byte %ld", what, (long)(p - text)); jobj_free(o); return -1; } while (0)
  if (*p != '{') JFAIL("not a JSON object");
  p = skip_ws(p + 1);
  if (*p == '}') JFAIL("an empty object");
  for (;;) {
    if (o->n == cap) {
      cap = cap ? 2 * cap : 64;
      jfield *t = realloc(o->f, sizeof *t * (size_t)cap);
      if (!t) JFAIL("out of memory");
      o->f = t;
    }
    jfield *f = &o->f[o->n];
    memset(f, 0, sizeof *f);
    if (*p != '"') JFAIL("expected a member name");
    const char *q = parse_jstr(p + 1, f->key, sizeof f->key);
    if (!q) JFAIL("bad string");
    p = skip_ws(q);
    if (*p != ':') JFAIL("expected ':'");
    p = skip_ws(p + 1);
    if (*p == '"') {
      q = parse_jstr(p + 1, f->str, sizeof f->str);
      if (!q) JFAIL("bad string");
      f->kind = 2;
      p = q;
    } else if (!strncmp(p, "null", 4)) { f->kind = 0; p += 4; }
    else if (!strncmp(p, "true", 4)) { f->kind = 3; f->num = 1; p += 4; }
    else if (!strncmp(p, "false", 5)) { f->kind = 3; f->num = 0; p += 5; }
    else if (*p == '-' || (*p >= '0' && *p <= '9')) {
      char *end;
      f->num = strtod(p, &end);
      if (end == p || !isfinite(f->num)) JFAIL("bad number");
      f->kind = 1;
      p = end;
    } else JFAIL("expected a value");
    o->n++;
    p = skip_ws(p);
    if (*p == ',') { p = skip_ws(p + 1); continue; }
    if (*p == '}') break;
    JFAIL("expected ',' or '}'");
  }
  p = skip_ws(p + 1);
  if (*p) JFAIL("text after the object");
#undef JFAIL
  return 0;
}

/* The whole file, NUL-terminated (free it), or NULL with errno set. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t n = 0, cap = 4096;
  char *t = malloc(cap);
  while (t) {
    size_t r = fread(t + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
    if (n + 1 == cap) {
      if (cap >= ((size_t)1 << 24)) { free(t); t = NULL; errno = EFBIG; break; }
      char *u = realloc(t, cap *= 2);
      if (!u) { free(t); t = NULL; errno = ENOMEM; break; }
      t = u;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (t && bad) { free(t); errno = EIO; return NULL; }
  if (t) t[n] = 0;
  return t;
}

/* ---------------- the run ---------------- */

typedef struct {
  const table_def *t;
  const char *out, *configs;
  char datasets[64][64];
  int n_datasets, n_seeds, quick, json;
  long threads;
  double budget_factor;    /* table 4: random search's and evolution's budget, x AMEIR's search time */
  const char *command;     /* the command line as typed */
  int total, done, ran, reused, failed;
  cli_stage_progress prog;
} run_state;

static void raw_path(const run_state *r, const char *ds, const row_def *row, int seed, char *buf, size_t size) {
  snprintf(buf, size, "%s/raw/%s/%s.seed%d.json", r->out, ds, row->id, seed);
}

static void config_path(const run_state *r, const char *ds, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s.yaml", r->configs, ds);
}

/* the metric keys of the table's columns: test AUC and log loss, or the retrieval metrics of
 * the test split under both protocols (e->negs names the sampled one) */
static int metric_keys(const cli_eval *e, char keys[10][96]) {
  if (!e->retrieval) {
    snprintf(keys[0], 96, "test_auc");
    snprintf(keys[1], 96, "test_logloss");
    return 2;
  }
  static const int ORDER[5] = {0, 2, 1, 3, 4};   /* HR@5 HR@10 NDCG@5 NDCG@10 MRR */
  for (int p = 0; p < 2; p++)
    for (int k = 0; k < 5; k++) cli_rank_key(e, p, 1, ORDER[k], keys[p * 5 + k], 96);
  return 10;
}

/* Checks a raw file that exists: 0 and *o filled, or -1 having printed why. */
static int load_raw(const run_state *r, const char *path, const char *ds, const row_def *row, int seed,
                    const cli_eval *keys_of, jobj *o) {
  char *text = read_text(path);
  if (!text) { fprintf(stderr, "ameir reproduce: %s: %s\n", path, strerror(errno)); return -1; }
  char err[160];
  int bad = parse_flat_json(text, o, err, sizeof err);
  free(text);
  if (bad) {
    fprintf(stderr, "ameir reproduce: %s: not a valid result file (%s); delete it to run that row again\n", path, err);
    return -1;
  }
  const jfield *fd = jget(o, "dataset"), *fr = jget(o, "row");
  const char *why = NULL;
  char whybuf[200];
  if (!fd || fd->kind != 2 || strcmp(fd->str, ds)) why = "another dataset";
  else if (!fr || fr->kind != 2 || strcmp(fr->str, row->id)) why = "another row";
  else if (jnum(o, "seed") != seed) why = "another seed";
  else if (jnum(o, "quick") != r->quick) why = r->quick ? "written without --quick" : "written by a --quick run";
  else if (row->kind == ROW_DERIVED && (row->method == METHOD_RANDOM || row->method == METHOD_EVOLUTION) &&
           jnum(o, "budget_factor") != r->budget_factor) {
    snprintf(whybuf, sizeof whybuf, "written with --budget-factor %g, this run has %g", jnum(o, "budget_factor"), r->budget_factor);
    why = whybuf;
  }
  else {
    char keys[10][96];
    int nk = metric_keys(keys_of, keys);
    for (int k = 0; k < nk && !why; k++)
      if (!isfinite(jnum(o, keys[k]))) { snprintf(whybuf, sizeof whybuf, "no number \"%.96s\"", keys[k]); why = whybuf; }
  }
  if (why) {
    fprintf(stderr, "ameir reproduce: %s: not a result of this run (%s); delete it to run that row again%s\n", path, why,
            r->quick || jnum(o, "quick") == 1 ? ", or give another --out" : "");
    jobj_free(o);
    return -1;
  }
  return 0;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Opens path.tmp for writing; finish_atomic renames it over path. */
static FILE *open_atomic(const char *path, char *tmp, size_t size) {
  snprintf(tmp, size, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) fprintf(stderr, "ameir reproduce: %s: %s\n", tmp, strerror(errno));
  return f;
}

static int finish_atomic(FILE *f, const char *tmp, const char *path) {
  int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
  if (fclose(f) != 0) bad = 1;
  if (bad || rename(tmp, path) != 0) {
    fprintf(stderr, "ameir reproduce: %s: %s\n", path, strerror(errno));
    remove(tmp);
    return -1;
  }
  return 0;
}

static void log_quiet(int32_t level, const char *msg, void *user) {
  /* the search's INFO lines go to its search.log; warnings and errors to the terminal */
  if (level <= AMEIR_LOG_WARN) cli_log_fn(level, msg, user);
}

/* What one dataset's rows share: the context, the dataset and its searches (one per method). */
typedef struct {
  const char *name;
  char config[4200];
  ameir_context *ctx;
  ameir_dataset *ds;
  int seed;                /* the searches below are this seed's */
  ameir_space *space[N_METHODS];
  ameir_searcher *se[N_METHODS];
  char search_dir[N_METHODS][4300];
  int search_failed[N_METHODS];
  ameir_dataset *ds_sets;  /* the data opened with a row's `dataset.` keys (ds_sets_key), or NULL */
  char ds_sets_key[256];
} ds_state;

static void free_search(ds_state *d) {
  for (int i = 0; i < N_METHODS; i++) {
    ameir_searcher_free(d->se[i]);
    ameir_space_free(d->space[i]);
    d->se[i] = NULL;
    d->space[i] = NULL;
    d->search_failed[i] = 0;
  }
}

/* AMEIR's search time for the seed (the budget of random search and evolution): its searcher's
 * when it ran in this process, else its raw file's. NAN having printed why. */
static double ameir_search_seconds(const run_state *r, const ds_state *d, const cli_eval *keys_of) {
  if (d->se[METHOD_AMEIR]) return cli_searcher_stat(d->se[METHOD_AMEIR], "search_seconds");
  const row_def *ar = NULL;
  for (int i = 0; i < r->t->n_rows; i++)
    if (r->t->rows[i].kind == ROW_DERIVED && r->t->rows[i].method == METHOD_AMEIR) ar = &r->t->rows[i];
  char path[4400];
  jobj o;
  double v = NAN;
  if (ar) {
    raw_path(r, d->name, ar, d->seed, path, sizeof path);
    if (file_exists(path) && !load_raw(r, path, d->name, ar, d->seed, keys_of, &o)) {
      v = jnum(&o, "search_seconds");
      jobj_free(&o);
    }
  }
  if (!isfinite(v) || v <= 0)
    fprintf(stderr, "ameir reproduce: %s seed %d: the budget of random search and evolution is %g x AMEIR's search time, "
            "and AMEIR's search of this seed has no result (its row failed or did not run)\n", d->name, d->seed, r->budget_factor);
  return v;
}

/* The search of method mi for d->seed, run (or resumed) once; 0, or an exit code having printed why. */
static int ensure_search(run_state *r, ds_state *d, int mi, const cli_eval *keys_of) {
  if (d->se[mi]) return 0;
  if (d->search_failed[mi]) {
    fprintf(stderr, "ameir reproduce: %s seed %d: no %s search result (the search failed, above)\n", d->name, d->seed, METHOD_KEY[mi]);
    return EXIT_RUNTIME;
  }
  char *dir = d->search_dir[mi];
  snprintf(dir, sizeof d->search_dir[mi], "%s/search/%s.seed%d%s%s%s", r->out, d->name, d->seed, mi ? "." : "", mi ? METHOD_KEY[mi] : "",
           r->quick ? "-quick" : "");
  if (cli_make_dirs(dir)) {
    fprintf(stderr, "ameir reproduce: %s: %s\n", dir, strerror(errno));
    d->search_failed[mi] = 1;
    return EXIT_RUNTIME;
  }
  int rc = 0;
  if (ameir_space_load(&d->space[mi], d->ctx, d->config, "search")) rc = cli_fail(d->ctx, "search space");
  for (int i = 0; !rc && r->quick && i < N_OF(QUICK_SEARCH); i++) {
    char key[64];
    const char *k = cli_set_key(QUICK_SEARCH[i], "search.", key, sizeof key);
    if (ameir_space_set(d->space[mi], k, strchr(QUICK_SEARCH[i], '=') + 1)) rc = cli_fail(d->ctx, QUICK_SEARCH[i]);
  }
  if (!rc && mi != METHOD_AMEIR && ameir_space_set(d->space[mi], "method", METHOD_KEY[mi])) rc = cli_fail(d->ctx, "search method");
  char js[64];
  if (!rc && mi == METHOD_JOINT && !r->quick && ameir_config_get_string(NULL, d->config, "search.joint_samples", js, sizeof js)) {
    /* the paper scores 6000 children against AMEIR's 2000 per step: a config that lowers
     * `samples` lowers this in proportion, unless it sets joint_samples itself */
    char v[64];
    long n = 0;
    if (!ameir_space_get(d->space[mi], "samples", v, sizeof v)) n = 3 * strtol(v, NULL, 10);
    snprintf(v, sizeof v, "%ld", n > 0 ? n : 6000);
    if (ameir_space_set(d->space[mi], "joint_samples", v)) rc = cli_fail(d->ctx, "joint_samples");
  }
  if (!rc && (mi == METHOD_RANDOM || mi == METHOD_EVOLUTION)) {
    double ref = ameir_search_seconds(r, d, keys_of);
    char v[2][64];
    snprintf(v[0], sizeof v[0], "%.17g", ref);
    snprintf(v[1], sizeof v[1], "%.17g", r->budget_factor);
    if (!isfinite(ref) || ref <= 0) rc = EXIT_RUNTIME;
    else if (ameir_space_set(d->space[mi], "reference_seconds", v[0]) || ameir_space_set(d->space[mi], "budget_factor", v[1]))
      rc = cli_fail(d->ctx, "search budget");
    else
      fprintf(stderr, "%s seed %d: %s search budget %.1f s (%g x AMEIR's %.1f s)\n", d->name, d->seed, METHOD_KEY[mi],
              r->budget_factor * ref, r->budget_factor, ref);
  }
  if (!rc && ameir_searcher_create(&d->se[mi], d->space[mi], d->ds)) rc = cli_fail(d->ctx, "searcher");
  if (!rc && (ameir_searcher_set(d->se[mi], "out", dir) || ameir_searcher_set(d->se[mi], "config", d->config) ||
              ameir_searcher_set(d->se[mi], "resume", "1")))
    rc = cli_fail(d->ctx, "searcher");
  if (!rc) {
    /* the searcher resumes from what its directory holds: finished steps, a step's checkpoint */
    static const char *const MARKS[6] = {"state.txt", "step1.ckpt", "step2.ckpt", "step3.ckpt", "joint.ckpt", "baseline.txt"};
    int resumed = 0;
    for (int i = 0; i < 6; i++) {
      char mark[4400];
      snprintf(mark, sizeof mark, "%s/%s", dir, MARKS[i]);
      resumed |= file_exists(mark);
    }
    fprintf(stderr, "%s seed %d: %s %s (%s) in %s\n", d->name, d->seed, mi ? METHOD_KEY[mi] : "search", resumed ? "resumed from its checkpoints" : "started",
            mi ? "every subspace at once" : "the steps that apply to the data", dir);
    double t0 = cli_now();
    ameir_status st = ameir_searcher_run(d->se[mi], 0);
    if (st == AMEIR_ECANCELLED || (st && cli_interrupted())) return 130;
    if (st) rc = cli_fail(d->ctx, "search");
    else fprintf(stderr, "%s seed %d: %s done (%.1f s now)\n", d->name, d->seed, mi ? METHOD_KEY[mi] : "search", cli_now() - t0);
  }
  if (rc) {
    ameir_searcher_free(d->se[mi]);
    ameir_space_free(d->space[mi]);
    d->se[mi] = NULL;
    d->space[mi] = NULL;
    d->search_failed[mi] = 1;
  }
  return rc;
}

static double search_seconds_upto(const ameir_searcher *se, int last) {
  double s = 0;
  int any = 0;
  for (int k = 1; k <= last; k++) {
    char key[32];
    snprintf(key, sizeof key, "step%d_seconds", k);
    double v = cli_searcher_stat(se, key);
    if (isfinite(v)) { s += v; any = 1; }
  }
  return any ? s : NAN;
}

/* Writes one run's raw file. */
static int write_raw(const run_state *r, const ds_state *d, const row_def *row, int seed, const char *path,
                     ameir_model *m, const cli_eval *ev, double seconds, double search_s, double wall) {
  const ameir_searcher *se = row->kind == ROW_PRESET ? NULL : d->se[row->method];
  char tmp[4300];
  FILE *f = open_atomic(path, tmp, sizeof tmp);
  if (!f) return -1;
  fprintf(f, "{\"table\": \"%s\", \"dataset\": ", r->t->name);
  json_str(f, d->name);
  fprintf(f, ", \"row\": ");
  json_str(f, row->id);
  fprintf(f, ", \"label\": ");
  json_str(f, row->label);
  fprintf(f, ", \"kind\": \"%s\", \"quick\": %d, \"config\": ", row->kind == ROW_PRESET ? "preset" : row->kind == ROW_STEP ? "search-step" : "derived",
          r->quick);
  json_str(f, d->config);
  cli_json_context(f, d->ctx);
  char *txt = NULL;
  fprintf(f, ", \"arch\": ");
  if (!ameir_arch_to_string(ameir_model_arch(m), &txt)) { json_str(f, txt); ameir_free(txt); }
  else fputs("null", f);
  cli_json_eval(f, ev);
  fprintf(f, ", \"n_train\": %lld, \"n_valid\": %.0f, \"n_test\": %.0f", (long long)ameir_dataset_rows(d->ds, AMEIR_SPLIT_TRAIN),
          ev->valid[2], ev->test[2]);
  cli_json_train_stats(f, m);
  fprintf(f, ", \"infer_samples_per_s\": %.1f", ev->infer_samples_per_s);
  cli_json_sizes(f, m);
  fprintf(f, ", \"seconds\": ");
  cli_json_num(f, seconds, "%.3f");
  fprintf(f, ", \"search_seconds\": ");
  cli_json_num(f, search_s, "%.3f");
  if (row->kind != ROW_PRESET)
    for (int k = 1; k <= 4; k++) {
      char key[32];
      snprintf(key, sizeof key, "step%d_seconds", k);
      fprintf(f, ", \"%s\": ", key);
      cli_json_num(f, cli_searcher_stat(se, key), "%.3f");
    }
  if (row->kind == ROW_DERIVED) {   /* the search method and its budget (table 4) */
    static const char *const STATS[4] = {"children", "budget_seconds", "evolution_cycles", NULL};
    fprintf(f, ", \"method\": \"%s\"", METHOD_KEY[row->method]);
    for (int k = 0; STATS[k]; k++) {
      fprintf(f, ", \"%s\": ", STATS[k]);
      cli_json_num(f, cli_searcher_stat(se, STATS[k]), "%.3f");
    }
    if (row->method == METHOD_RANDOM || row->method == METHOD_EVOLUTION) fprintf(f, ", \"budget_factor\": %.17g", r->budget_factor);
  }
  fprintf(f, ", \"wall_seconds\": %.3f}\n", wall);
  return finish_atomic(f, tmp, path);
}

static void print_result(const run_state *r, const ds_state *d, const row_def *row, int seed, const cli_eval *ev,
                         double seconds) {
  fprintf(stderr, "[%d/%d] %s seed %d %s: ", r->done, r->total, d->name, seed, row->label);
  if (ev->retrieval)
    fprintf(stderr, "test HR@10 %.4f full, %.4f against %s sampled", ev->rank[0][1][2], ev->rank[1][1][2], ev->negs);
  else
    fprintf(stderr, "test AUC %.4f, log loss %.4f", ev->test[0], ev->test[1]);
  if (isfinite(seconds)) fprintf(stderr, " (%.1f s)", seconds);
  fputc('\n', stderr);
}

/* The step's architecture with its shortcut and extras replaced: none (AGG_MLP), or DeepFM's
 * linear and FM terms (AGG_MLP_FM). 0 or an exit code. */
static int reaggregate(ameir_context *ctx, int aggregate, ameir_arch **arch) {
  char *txt = NULL;
  if (ameir_arch_to_string(*arch, &txt)) return cli_fail(ctx, "arch");
  size_t cap = strlen(txt) + 64, n = 0;
  char *t = malloc(cap);
  for (char *line = txt, *nl; t && line && *line; line = nl ? nl + 1 : NULL) {
    nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    if (!strncmp(line, "shortcut:", 9) || !strncmp(line, "extras:", 7)) continue;
    n += (size_t)snprintf(t + n, cap - n, "%.*s\n", (int)len, line);
  }
  if (t) snprintf(t + n, cap - n, "shortcut: none\nextras: %s\n", aggregate == AGG_MLP_FM ? "linear fm" : "none");
  ameir_free(txt);
  ameir_arch *b = NULL;
  int rc = !t || ameir_arch_parse(&b, ctx, t) ? cli_fail(ctx, "arch") : 0;
  free(t);
  if (!rc) {
    ameir_arch_free(*arch);
    *arch = b;
  }
  return rc;
}

/* Runs one (dataset, row, seed); 0, 130 when interrupted, else an exit code having printed why. */
static int run_row(run_state *r, ds_state *d, const row_def *row, int seed, const char *path, const cli_eval *keys_of) {
  double t0 = cli_now();
  ameir_arch *arch = NULL;
  ameir_model *m = NULL, *loaded = NULL;
  int rc = 0;
  double seconds = NAN, search_s = NAN;
  if (ameir_context_set_int(d->ctx, "seed", seed)) return cli_fail(d->ctx, "seed");
  if (row->kind == ROW_PRESET) {
    /* the MLP presets take the config's train.mlp, as `ameir train --model` does; LR and FM
     * keep theirs (none) */
    rc = cli_preset(d->ctx, d->config, row->preset, NULL, NULL, 0, &arch);   /* and train.cross_layers, train.cin */
  } else {
    if (d->seed != seed) { free_search(d); d->seed = seed; }
    int mi = row->method;
    if ((rc = ensure_search(r, d, mi, keys_of))) return rc;
    ameir_searcher *se = d->se[mi];
    search_s = mi == METHOD_AMEIR ? search_seconds_upto(se, row->kind == ROW_STEP ? row->step : 3) : cli_searcher_stat(se, "search_seconds");
    if (row->kind == ROW_STEP) {
      if (ameir_searcher_result(se, row->step, &arch, NULL) || !arch) {
        fprintf(stderr, "ameir reproduce: %s seed %d %s: search step %d has no result (it does not apply to this data)\n",
                d->name, seed, row->label, row->step);
        return EXIT_RUNTIME;
      }
      if (row->aggregate != AGG_SEARCHED && (rc = reaggregate(d->ctx, row->aggregate, &arch))) {
        ameir_arch_free(arch);
        return rc;
      }
    } else {
      m = ameir_searcher_model(se);
      if (!m) {   /* derived by an earlier invocation: its saved model */
        char mp[4400];
        snprintf(mp, sizeof mp, "%s/model.ameir", d->search_dir[mi]);
        if (ameir_model_load(&loaded, d->ctx, mp)) return cli_fail(d->ctx, "derived model");
        m = loaded;
      }
      seconds = cli_searcher_stat(se, "step4_seconds");
    }
  }
  /* the row's own keys: train.* go with the training options, dataset.* open the data again
   * with them (kept for the next row with the same keys) */
  ameir_dataset *ds = d->ds;
  const char *sets[N_OF(QUICK_TRAIN) + 8];
  char dskey[256] = "";
  int n_sets = 0;
  if (r->quick)
    for (int i = 0; i < N_OF(QUICK_TRAIN); i++) sets[n_sets++] = QUICK_TRAIN[i];
  if (row->kind == ROW_PRESET) n_sets += cli_model_sets(row->preset, sets + n_sets, N_OF(sets) - n_sets);
  for (int i = 0; i < n_sets; i++)
    if (!strncmp(sets[i], "dataset.", 8)) {
      size_t l = strlen(dskey);
      snprintf(dskey + l, sizeof dskey - l, "%s ", sets[i]);
    }
  if (!rc && dskey[0]) {
    if (strcmp(dskey, d->ds_sets_key)) {
      ameir_dataset_free(d->ds_sets);
      d->ds_sets = NULL;
      d->ds_sets_key[0] = 0;
      if ((rc = cli_open_dataset(d->ctx, d->config, sets, n_sets, 1, &d->ds_sets))) d->ds_sets = NULL;
      else snprintf(d->ds_sets_key, sizeof d->ds_sets_key, "%s", dskey);
    }
    ds = d->ds_sets;
  }
  if (!rc && arch) {
    rc = cli_train_arch(d->ctx, d->config, arch, ds, n_sets ? sets : NULL, n_sets, &loaded);
    m = loaded;
    if (!rc) ameir_model_get_stat(m, "train_seconds", &seconds);
  }
  cli_eval ev;
  if (!rc) rc = cli_evaluate(d->ctx, m, ds, d->config, 1, &ev);
  if (!rc && write_raw(r, d, row, seed, path, m, &ev, seconds, search_s, cli_now() - t0)) rc = EXIT_RUNTIME;
  if (!rc) print_result(r, d, row, seed, &ev, seconds);
  if (rc && cli_interrupted()) rc = 130;
  ameir_model_free(loaded);
  ameir_arch_free(arch);
  if (row->kind != ROW_PRESET && row->method != METHOD_AMEIR && d->se[row->method]) {
    /* the other methods' searches serve one row each: their one-shot model and derived model
     * need not stay in memory beside the next one's */
    ameir_searcher_free(d->se[row->method]);
    ameir_space_free(d->space[row->method]);
    d->se[row->method] = NULL;
    d->space[row->method] = NULL;
  }
  return rc;
}

/* Opens the dataset of d->config with a context of its own; 0 or an exit code. */
static int open_dataset(run_state *r, ds_state *d) {
  int rc = cli_make_context(&d->ctx, r->threads, 2021, cli_stage_progress_fn, &r->prog);
  if (!rc) {
    ameir_context_set_log_callback(d->ctx, log_quiet, &r->prog);
    rc = cli_config_defaults(d->ctx, d->config, 2021, r->threads);
  }
  if (!rc && ameir_dataset_open(&d->ds, d->ctx, d->config)) {
    fprintf(stderr, "ameir reproduce: %s: %s\n  (the bundled data are read from the config's dataset.data_dir, "
            "by default ../shared/data next to the repository; AMEIR_DATA_DIR=DIR points it elsewhere)\n",
            d->config, ameir_context_last_error(d->ctx));
    rc = EXIT_RUNTIME;
  }
  if (rc) return rc;
  int retrieval = ameir_dataset_task(d->ds) == AMEIR_TASK_RETRIEVAL, seq = 0;
  for (int i = 0; i < ameir_dataset_fields(d->ds); i++) seq |= ameir_dataset_field_kind(d->ds, i) == AMEIR_FIELD_SEQUENCE;
  const char *why = NULL;
  if (r->t->need == NEED_RETRIEVAL && !retrieval) why = "is CTR data; table 2 is next-item retrieval";
  else if (r->t->need != NEED_RETRIEVAL && retrieval) why = "is next-item retrieval data; this table is CTR";
  else if (r->t->need == NEED_BEHAVIOURS && !seq) why = "has no behaviour sequence; table 1 needs one";
  if (why) { fprintf(stderr, "ameir reproduce: dataset %s (%s) %s\n", d->name, d->config, why); return EXIT_USAGE; }
  return 0;
}

static void close_dataset(ds_state *d) {
  free_search(d);
  ameir_dataset_free(d->ds_sets);
  d->ds_sets = NULL;
  d->ds_sets_key[0] = 0;
  ameir_dataset_free(d->ds);
  ameir_context_free(d->ctx);
  d->ds = NULL;
  d->ctx = NULL;
}

/* ---------------- the tables ---------------- */

typedef struct {
  int n;
  double mean, std;
} agg_stat;

static agg_stat stat_of(const double *v, int n) {
  agg_stat s = {0, NAN, NAN};
  double sum = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(v[i])) { sum += v[i]; s.n++; }
  if (!s.n) return s;
  s.mean = sum / s.n;
  double ss = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(v[i])) ss += (v[i] - s.mean) * (v[i] - s.mean);
  s.std = s.n > 1 ? sqrt(ss / (s.n - 1)) : NAN;   /* one seed: no spread to show */
  return s;
}

enum { C_SECONDS, C_SEARCH, C_PARAMS, C_FLOPS, C_INFER, N_COST };
enum { X_CHILDREN, X_BUDGET, X_CYCLES, N_EXTRA };
static const char *const EXTRA_KEYS[N_EXTRA] = {"children", "budget_seconds", "evolution_cycles"};
static const char *const COST_KEYS[N_COST] = {"seconds", "search_seconds", "n_params", "flops_per_sample", "infer_samples_per_s"};

typedef struct {
  const char *dataset;
  const row_def *row;
  const char *negs;    /* retrieval: the sampled negatives per target */
  int seeds;           /* raw files found */
  int n_metrics;
  char keys[10][96];
  agg_stat metric[10];
  agg_stat cost[N_COST];
  agg_stat extra[N_EXTRA];   /* table 4: the searches' children, budget and cycles */
} agg_row;

static void md_cell(FILE *f, agg_stat s, const char *fmt, int with_std) {
  if (!s.n) { fputs(" - |", f); return; }
  fputc(' ', f);
  fprintf(f, fmt, s.mean);
  if (with_std && s.n > 1) {
    fputs(" ± ", f);
    fprintf(f, fmt, s.std);
  }
  fputs(" |", f);
}

static void csv_num(FILE *f, agg_stat s, const char *fmt, int with_std) {
  fputc(',', f);
  if (s.n) fprintf(f, fmt, s.mean);
  if (with_std) {
    fputc(',', f);
    if (s.n > 1) fprintf(f, fmt, s.std);
  }
}

static void csv_text(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n")) { fputs(s, f); return; }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void cpu_model(char *buf, size_t size) {
  snprintf(buf, size, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10)) continue;
    char *c = strchr(line, ':');
    if (!c) continue;
    c = (char *)skip_ws(c + 1);
    c[strcspn(c, "\n")] = 0;
    snprintf(buf, size, "%s", c);
    break;
  }
  fclose(f);
}

static void md_header_row(FILE *f, const char *first, const char *const *cols, int n) {
  fprintf(f, "| %s |", first);
  for (int i = 0; i < n; i++) fprintf(f, " %s |", cols[i]);
  fputs("\n|", f);
  for (int i = 0; i <= n; i++) fputs("---|", f);
  fputc('\n', f);
}

static void md_cost_cells(FILE *f, const agg_row *a) {
  md_cell(f, a->cost[C_SECONDS], "%.1f", 1);
  md_cell(f, a->cost[C_SEARCH], "%.1f", 1);
  md_cell(f, a->cost[C_PARAMS], "%.0f", 0);
  md_cell(f, a->cost[C_FLOPS], "%.0f", 0);
  md_cell(f, a->cost[C_INFER], "%.0f", 0);
}

static void md_name_cells(FILE *f, const agg_row *a, int planned) {
  fprintf(f, "| %s |", a->row->label);
  if (a->seeds == planned) fprintf(f, " %d |", a->seeds);
  else fprintf(f, " %d of %d |", a->seeds, planned);
}

static const char *const COST_COLS[5] = {"time (s)", "search (s)", "parameters", "FLOPs/sample", "inference samples/s"};

static void write_markdown(FILE *f, const run_state *r, const agg_row *rows, int n_rows, const char *threads_text) {
  const table_def *t = r->t;
  char cpu[256], date[64];
  cpu_model(cpu, sizeof cpu);
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tmv);
  fprintf(f, "# %s\n\n", t->title);
  fprintf(f, "- command: `%s`\n", r->command);
  fprintf(f, "- machine: %ld CPUs online (nproc), %s; %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu, date);
  fprintf(f, "- libameir %s, %s\n", ameir_version_string(), threads_text);
  fprintf(f, "- seeds: 2021");
  if (r->n_seeds > 1) fprintf(f, " .. %d", 2020 + r->n_seeds);
  fprintf(f, " (%d); runs: %d, %d run now, %d reused from earlier invocations (their times are from when they ran)%s\n",
          r->n_seeds, r->total, r->ran, r->reused, r->failed ? ", some failed (-)" : "");
  if (r->quick) fprintf(f, "- **--quick**: 1 epoch of at most 40 steps per model and a tiny search budget: a smoke test, not results\n");
  for (int i = 0; i < t->n_rows; i++)
    if (t->rows[i].kind == ROW_DERIVED && (t->rows[i].method == METHOD_RANDOM || t->rows[i].method == METHOD_EVOLUTION)) {
      fprintf(f, "- budget of random search and evolution: %g x the AMEIR search's time of the same seed (--budget-factor; the paper: 10)\n",
              r->budget_factor);
      break;
    }
  fprintf(f, "\nMean ± standard deviation over the seeds (the mean alone where one seed ran) of %s. `time (s)`: "
             "training (the derived rows: the derivation's fine-tuning); `search (s)`: the search steps that found "
             "the architecture; parameters, FLOPs/sample, inference samples/s (scoring the validation split): the "
             "mean over the seeds.\n\n%s\n",
          t->need == NEED_RETRIEVAL ? "the test users' next items, ranked against every item (full ranking) and against "
                                      "sampled negatives, the user's history excluded"
                                    : "the test split's AUC and log loss",
          t->notes);
  const char *prev = NULL;
  for (int i = 0; i < n_rows; i++) {
    const agg_row *a = &rows[i];
    if (!prev || strcmp(prev, a->dataset)) {
      prev = a->dataset;
      fprintf(f, "\n### %s\n\n", a->dataset);
      if (a->n_metrics == 2) {
        const char *all[8] = {"seeds", "test AUC", "test log loss", COST_COLS[0], COST_COLS[1], COST_COLS[2], COST_COLS[3], COST_COLS[4]};
        md_header_row(f, "model", all, 8);
      } else {
        const char *all[11] = {"seeds", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR",
                               COST_COLS[0], COST_COLS[1], COST_COLS[2], COST_COLS[3], COST_COLS[4]};
        fprintf(f, "full ranking:\n\n");
        md_header_row(f, "model", all, 11);
      }
    }
    md_name_cells(f, a, r->n_seeds);
    for (int k = 0; k < (a->n_metrics == 2 ? 2 : 5); k++) md_cell(f, a->metric[k], "%.4f", 1);
    md_cost_cells(f, a);
    fputc('\n', f);
    /* retrieval: the sampled protocol's table after the dataset's last row */
    if (a->n_metrics == 10 && (i + 1 == n_rows || strcmp(rows[i + 1].dataset, a->dataset))) {
      fprintf(f, "\nagainst %s sampled negatives:\n\n", a->negs);
      const char *all[6] = {"seeds", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"};
      md_header_row(f, "model", all, 6);
      for (int j = 0; j <= i; j++) {
        if (strcmp(rows[j].dataset, a->dataset)) continue;
        md_name_cells(f, &rows[j], r->n_seeds);
        for (int k = 5; k < 10; k++) md_cell(f, rows[j].metric[k], "%.4f", 1);
        fputc('\n', f);
      }
    }
    /* the searches' children and budgets after the dataset's last row (table 4) */
    if (i + 1 == n_rows || strcmp(rows[i + 1].dataset, a->dataset)) {
      int any = 0;
      for (int j = 0; j <= i; j++) {
        const agg_row *b = &rows[j];
        if (strcmp(b->dataset, a->dataset) || b->row->kind != ROW_DERIVED || !b->extra[X_CHILDREN].n) continue;
        if (!any++) fputc('\n', f);
        const char *what = b->row->method == METHOD_RANDOM || b->row->method == METHOD_EVOLUTION ? "trained 1 epoch each" : "scored";
        fprintf(f, "- %s: %.0f children %s", b->row->label, b->extra[X_CHILDREN].mean, what);
        if (b->extra[X_CYCLES].n) fprintf(f, ", %.0f evolution cycles", b->extra[X_CYCLES].mean);
        if (b->cost[C_SEARCH].n) fprintf(f, ", search %.1f s", b->cost[C_SEARCH].mean);
        if (b->extra[X_BUDGET].n) fprintf(f, " of a %.1f s budget", b->extra[X_BUDGET].mean);
        fprintf(f, "%s\n", r->n_seeds > 1 ? " (means over the seeds)" : "");
      }
    }
  }
  fprintf(f, "\nnot in libameir yet: %s.\n", t->missing);
}

static void write_csv(FILE *f, const run_state *r, const agg_row *rows, int n_rows) {
  fputs("table,dataset,row,label,seeds", f);
  int nm = n_rows ? rows[0].n_metrics : 0;
  /* retrieval tables name the metric columns after the first row's keys (every dataset of a
   * table has the same protocol names unless their eval.negatives differ: then per row below) */
  for (int k = 0; k < nm; k++) fprintf(f, ",%s_mean,%s_std", rows[0].keys[k], rows[0].keys[k]);
  fputs(",seconds_mean,seconds_std,search_seconds_mean,search_seconds_std,n_params,flops_per_sample,infer_samples_per_s\n", f);
  for (int i = 0; i < n_rows; i++) {
    const agg_row *a = &rows[i];
    fprintf(f, "%s,", r->t->name);
    csv_text(f, a->dataset);
    fputc(',', f);
    csv_text(f, a->row->id);
    fputc(',', f);
    csv_text(f, a->row->label);
    fprintf(f, ",%d", a->seeds);
    for (int k = 0; k < a->n_metrics; k++) csv_num(f, a->metric[k], "%.6f", 1);
    csv_num(f, a->cost[C_SECONDS], "%.3f", 1);
    csv_num(f, a->cost[C_SEARCH], "%.3f", 1);
    csv_num(f, a->cost[C_PARAMS], "%.0f", 0);
    csv_num(f, a->cost[C_FLOPS], "%.0f", 0);
    csv_num(f, a->cost[C_INFER], "%.1f", 0);
    fputc('\n', f);
  }
}

static void json_stat(FILE *f, const char *key, agg_stat s) {
  fprintf(f, ", \"%s\": ", key);
  if (!s.n) { fputs("null", f); return; }
  fprintf(f, "{\"mean\": %.6g, \"std\": ", s.mean);
  cli_json_num(f, s.std, "%.6g");
  fputc('}', f);
}

static void write_json(FILE *f, const run_state *r, const agg_row *rows, int n_rows, const char *md, const char *csv) {
  fprintf(f, "{\"table\": \"%s\", \"out\": ", r->t->name);
  json_str(f, r->out);
  fprintf(f, ", \"markdown\": ");
  json_str(f, md);
  fprintf(f, ", \"csv\": ");
  json_str(f, csv);
  fprintf(f, ", \"quick\": %d, \"seeds\": %d, \"runs\": %d, \"ran\": %d, \"reused\": %d, \"failed\": %d, \"rows\": [", r->quick,
          r->n_seeds, r->total, r->ran, r->reused, r->failed);
  for (int i = 0; i < n_rows; i++) {
    const agg_row *a = &rows[i];
    fprintf(f, "%s{\"dataset\": ", i ? ", " : "");
    json_str(f, a->dataset);
    fprintf(f, ", \"row\": ");
    json_str(f, a->row->id);
    fprintf(f, ", \"label\": ");
    json_str(f, a->row->label);
    fprintf(f, ", \"seeds\": %d", a->seeds);
    for (int k = 0; k < a->n_metrics; k++) json_stat(f, a->keys[k], a->metric[k]);
    for (int k = 0; k < N_COST; k++) json_stat(f, COST_KEYS[k], a->cost[k]);
    fputc('}', f);
  }
  fprintf(f, "], \"missing\": ");
  json_str(f, r->t->missing);
  fprintf(f, "}\n");
}

/* Reads the raw files back and writes the tables; 0 or an exit code. */
static int write_tables(run_state *r, const cli_eval *keys_of) {
  int n_rows = r->n_datasets * r->t->n_rows, rc = 0;
  agg_row *rows = calloc((size_t)n_rows, sizeof *rows);
  if (!rows) { fprintf(stderr, "ameir reproduce: out of memory\n"); return EXIT_RUNTIME; }
  double *vals = malloc(sizeof(double) * (size_t)r->n_seeds * (10 + N_COST + N_EXTRA));
  int th_min = 0, th_max = 0;
  char backend[128] = "";
  if (!vals) { free(rows); fprintf(stderr, "ameir reproduce: out of memory\n"); return EXIT_RUNTIME; }
  for (int di = 0; di < r->n_datasets; di++)
    for (int ri = 0; ri < r->t->n_rows; ri++) {
      agg_row *a = &rows[di * r->t->n_rows + ri];
      a->dataset = r->datasets[di];
      a->row = &r->t->rows[ri];
      a->n_metrics = metric_keys(&keys_of[di], a->keys);
      a->negs = keys_of[di].negs;
      for (int i = 0; i < r->n_seeds * (10 + N_COST + N_EXTRA); i++) vals[i] = NAN;
      for (int s = 0; s < r->n_seeds; s++) {
        char path[4400];
        raw_path(r, a->dataset, a->row, 2021 + s, path, sizeof path);
        if (!file_exists(path)) continue;
        jobj o;
        if (load_raw(r, path, a->dataset, a->row, 2021 + s, &keys_of[di], &o)) { rc = EXIT_RUNTIME; continue; }
        a->seeds++;
        /* the settings the runs had (a reused run keeps those of its invocation) */
        int th = (int)jnum(&o, "threads");
        const jfield *be = jget(&o, "backend");
        if (th > 0 && (!th_max || th < th_min)) th_min = th;
        if (th > th_max) th_max = th;
        if (be && be->kind == 2 && !backend[0]) snprintf(backend, sizeof backend, "%s", be->str);
        for (int k = 0; k < a->n_metrics; k++) vals[k * r->n_seeds + s] = jnum(&o, a->keys[k]);
        for (int k = 0; k < N_COST; k++) vals[(10 + k) * r->n_seeds + s] = jnum(&o, COST_KEYS[k]);
        for (int k = 0; k < N_EXTRA; k++) vals[(10 + N_COST + k) * r->n_seeds + s] = jnum(&o, EXTRA_KEYS[k]);
        jobj_free(&o);
      }
      for (int k = 0; k < a->n_metrics; k++) a->metric[k] = stat_of(vals + k * r->n_seeds, r->n_seeds);
      for (int k = 0; k < N_COST; k++) a->cost[k] = stat_of(vals + (10 + k) * r->n_seeds, r->n_seeds);
      for (int k = 0; k < N_EXTRA; k++) a->extra[k] = stat_of(vals + (10 + N_COST + k) * r->n_seeds, r->n_seeds);
    }
  free(vals);
  char md_path[4200], csv_path[4200], tmp[4300];
  snprintf(md_path, sizeof md_path, "%s/table%s.md", r->out, r->t->name);
  snprintf(csv_path, sizeof csv_path, "%s/table%s.csv", r->out, r->t->name);
  char *md = NULL;
  size_t md_len = 0;
  FILE *mf = open_memstream(&md, &md_len);
  if (!mf) { free(rows); fprintf(stderr, "ameir reproduce: out of memory\n"); return EXIT_RUNTIME; }
  char threads_text[160];
  if (!th_max) snprintf(threads_text, sizeof threads_text, "no run");
  else if (th_min == th_max) snprintf(threads_text, sizeof threads_text, "the runs: backend %s, %d threads", backend, th_min);
  else snprintf(threads_text, sizeof threads_text, "the runs: backend %s, %d to %d threads", backend, th_min, th_max);
  write_markdown(mf, r, rows, n_rows, threads_text);
  fclose(mf);
  FILE *f = open_atomic(md_path, tmp, sizeof tmp);
  if (!f) rc = EXIT_RUNTIME;
  else {
    fputs(md, f);
    if (finish_atomic(f, tmp, md_path)) rc = EXIT_RUNTIME;
  }
  if ((f = open_atomic(csv_path, tmp, sizeof tmp)) == NULL) rc = EXIT_RUNTIME;
  else {
    write_csv(f, r, rows, n_rows);
    if (finish_atomic(f, tmp, csv_path)) rc = EXIT_RUNTIME;
  }
  if (r->json) write_json(stdout, r, rows, n_rows, md_path, csv_path);
  else fputs(md, stdout);
  fflush(stdout);
  fprintf(stderr, "wrote %s and %s\n", md_path, csv_path);
  free(md);
  free(rows);
  return rc;
}

/* ---------------- the command ---------------- */

/* The command line as typed, each argument quoted for a shell where it needs it. */
static char *command_line(int argc, char **argv) {
  size_t n = 16;
  for (int i = 0; i < argc; i++) n += 4 * strlen(argv[i]) + 3;
  char *s = malloc(n), *p = s;
  if (!s) return NULL;
  p += sprintf(p, "ameir");
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int plain = *a != 0;
    for (const char *c = a; *c; c++)
      if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/=:@+", *c)) plain = 0;
    *p++ = ' ';
    if (plain) { p += sprintf(p, "%s", a); continue; }
    *p++ = '\'';
    for (const char *c = a; *c; c++) {
      if (*c == '\'') { p += sprintf(p, "'\\''"); continue; }
      *p++ = *c;
    }
    *p++ = '\'';
    *p = 0;
  }
  return s;
}

/* examples/configs here, else ../examples/configs next to the program */
static void default_configs(char *buf, size_t size) {
  struct stat st;
  snprintf(buf, size, "examples/configs");
  if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return;
  *slash = 0;
  char alt[4200];
  snprintf(alt, sizeof alt, "%s/../examples/configs", exe);
  if (stat(alt, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(buf, size, "%s", alt);
}

static int parse_datasets(run_state *r, const char *list) {
  r->n_datasets = 0;
  const char *p = list;
  while (*p) {
    size_t l = strcspn(p, ",");
    if (l == 0 || l >= sizeof r->datasets[0] || r->n_datasets == N_OF(r->datasets)) {
      fprintf(stderr, "ameir reproduce: --datasets takes names separated by commas\n");
      return EXIT_USAGE;
    }
    memcpy(r->datasets[r->n_datasets], p, l);
    r->datasets[r->n_datasets][l] = 0;
    for (size_t i = 0; i < l; i++)
      if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", p[i])) {
        fprintf(stderr, "ameir reproduce: dataset '%s': a name of a config in the configs folder (letters, digits, _ and -)\n",
                r->datasets[r->n_datasets]);
        return EXIT_USAGE;
      }
    for (int j = 0; j < r->n_datasets; j++)
      if (!strcmp(r->datasets[j], r->datasets[r->n_datasets])) {
        fprintf(stderr, "ameir reproduce: dataset '%s' named twice\n", r->datasets[j]);
        return EXIT_USAGE;
      }
    r->n_datasets++;
    p += l;
    if (*p == ',') p++;
  }
  if (!r->n_datasets) { fprintf(stderr, "ameir reproduce: --datasets is empty\n"); return EXIT_USAGE; }
  return 0;
}

int cmd_reproduce(int argc, char **argv) {
  run_state r;
  memset(&r, 0, sizeof r);
  const char *table = NULL, *datasets = NULL;
  long seeds = 0;
  char configs[4200];
  configs[0] = 0;
  r.out = "reproduce-out";
  r.budget_factor = 10;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    int has_next = i + 1 < argc;
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) { fputs(REPRODUCE_HELP, stdout); return 0; }
    else if (!strcmp(s, "--json")) r.json = 1;
    else if (!strcmp(s, "--quick")) r.quick = 1;
    else if (!strcmp(s, "--datasets") && has_next) datasets = argv[++i];
    else if (!strcmp(s, "--out") && has_next) r.out = argv[++i];
    else if (!strcmp(s, "--configs") && has_next) snprintf(configs, sizeof configs, "%s", argv[++i]);
    else if (!strcmp(s, "--seeds") && has_next) {
      if (parse_int_arg(argv[++i], 1, 100, &seeds)) { fprintf(stderr, "ameir reproduce: --seeds takes 1..100\n"); return EXIT_USAGE; }
    } else if (!strcmp(s, "--budget-factor") && has_next) {
      char *end;
      const char *v = argv[++i];
      r.budget_factor = strtod(v, &end);
      if (!*v || *end || !(r.budget_factor > 0 && r.budget_factor <= 1e6)) {
        fprintf(stderr, "ameir reproduce: --budget-factor takes a number > 0\n");
        return EXIT_USAGE;
      }
    } else if (!strcmp(s, "--threads") && has_next) {
      if (parse_int_arg(argv[++i], 1, 1024, &r.threads)) { fprintf(stderr, "ameir reproduce: --threads takes 1..1024\n"); return EXIT_USAGE; }
    } else if (s[0] == '-') { fprintf(stderr, "ameir reproduce: unknown or incomplete option '%s'\n\n%s", s, REPRODUCE_HELP); return EXIT_USAGE; }
    else if (!table) table = s;
    else { fprintf(stderr, "ameir reproduce: unexpected argument '%s'\n", s); return EXIT_USAGE; }
  }
  if (!table) { fputs(REPRODUCE_HELP, stderr); return EXIT_USAGE; }
  for (int i = 0; i < N_OF(TABLES); i++)
    if (!strcmp(TABLES[i].name, table)) r.t = &TABLES[i];
  if (!r.t) { fprintf(stderr, "ameir reproduce: unknown table '%s' (the tables: 1, 2, 3, 4; see --help)\n", table); return EXIT_USAGE; }
  if (!r.out[0]) { fprintf(stderr, "ameir reproduce: --out takes a directory\n"); return EXIT_USAGE; }
  if (r.quick && seeds > 1) { fprintf(stderr, "ameir reproduce: --quick runs 1 seed\n"); return EXIT_USAGE; }
  r.n_seeds = r.quick ? 1 : seeds ? (int)seeds : r.t->seeds;
  int rc = parse_datasets(&r, datasets ? datasets : r.t->datasets);
  if (rc) return rc;
  if (!configs[0]) default_configs(configs, sizeof configs);
  r.configs = configs;
  char *cmd = command_line(argc, argv);
  r.command = cmd ? cmd : "ameir reproduce";
  r.prog.prog.tty = isatty(2);
  r.total = r.n_datasets * r.t->n_rows * r.n_seeds;

  /* before any work: every config is there, every raw file that exists is sound, and the
   * datasets with runs to do open and suit the table */
  ds_state *ds = calloc((size_t)r.n_datasets, sizeof *ds);
  cli_eval *keys_of = calloc((size_t)r.n_datasets, sizeof *keys_of);
  int *todo = calloc((size_t)r.n_datasets, sizeof *todo);
  if (!ds || !keys_of || !todo) { fprintf(stderr, "ameir reproduce: out of memory\n"); rc = EXIT_RUNTIME; goto out; }
  for (int di = 0; di < r.n_datasets && !rc; di++) {
    ds_state *d = &ds[di];
    d->name = r.datasets[di];
    config_path(&r, d->name, d->config, sizeof d->config);
    if (!file_exists(d->config)) {
      fprintf(stderr, "ameir reproduce: no config for dataset '%s': %s: %s\n", d->name, d->config, strerror(errno));
      rc = EXIT_USAGE;
      break;
    }
    /* the metric names: the table's task (open_dataset checks the data have it) and the
     * config's sampled negatives */
    keys_of[di].retrieval = r.t->need == NEED_RETRIEVAL;
    if (ameir_config_get_string(NULL, d->config, "eval.negatives", keys_of[di].negs, sizeof keys_of[di].negs))
      snprintf(keys_of[di].negs, sizeof keys_of[di].negs, "100");
    for (int ri = 0; ri < r.t->n_rows; ri++)
      for (int s = 0; s < r.n_seeds; s++) {
        char path[4400];
        raw_path(&r, d->name, &r.t->rows[ri], 2021 + s, path, sizeof path);
        if (!file_exists(path)) { todo[di]++; continue; }
        jobj o;
        if (load_raw(&r, path, d->name, &r.t->rows[ri], 2021 + s, &keys_of[di], &o)) { rc = EXIT_RUNTIME; break; }
        jobj_free(&o);
      }
  }
  for (int di = 0; di < r.n_datasets && !rc; di++) {
    if (!todo[di]) continue;
    if ((rc = open_dataset(&r, &ds[di]))) break;
    close_dataset(&ds[di]);
  }
  if (rc) goto out;

  /* the runs: dataset by dataset, seed by seed, the table's rows in order */
  cli_sigint_catch(1);
  for (int di = 0; di < r.n_datasets && rc != 130; di++) {
    ds_state *d = &ds[di];
    int opened = 0;
    for (int s = 0; s < r.n_seeds && rc != 130; s++)
      for (int ri = 0; ri < r.t->n_rows && rc != 130; ri++) {
        const row_def *row = &r.t->rows[ri];
        char path[4400];
        raw_path(&r, d->name, row, 2021 + s, path, sizeof path);
        r.done++;
        if (file_exists(path)) {
          r.reused++;
          fprintf(stderr, "[%d/%d] %s seed %d %s: reused %s\n", r.done, r.total, d->name, 2021 + s, row->label, path);
          continue;
        }
        if (!opened) {
          int orc = open_dataset(&r, d);
          if (orc) { rc = orc; r.failed += todo[di]; break; }
          opened = 1;
          d->seed = -1;
          char dir[4400];
          snprintf(dir, sizeof dir, "%s/raw/%s", r.out, d->name);
          if (cli_make_dirs(dir)) { fprintf(stderr, "ameir reproduce: %s: %s\n", dir, strerror(errno)); rc = EXIT_RUNTIME; goto out; }
        }
        int rrc = run_row(&r, d, row, 2021 + s, path, &keys_of[di]);
        if (rrc == 130) { rc = 130; break; }
        if (rrc) { r.failed++; rc = EXIT_RUNTIME; fprintf(stderr, "[%d/%d] %s seed %d %s: failed\n", r.done, r.total, d->name, 2021 + s, row->label); }
        else r.ran++;
      }
    if (opened) close_dataset(d);
  }
  cli_sigint_catch(0);
  if (rc == 130) {
    if (r.prog.prog.tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "interrupted; the same command continues: %s\n", r.command);
    goto out;
  }
  {
    int trc = write_tables(&r, keys_of);
    if (!rc) rc = trc;
  }
out:
  cli_sigint_catch(0);
  if (ds)
    for (int di = 0; di < r.n_datasets; di++) close_dataset(&ds[di]);
  free(ds);
  free(keys_of);
  free(todo);
  free(cmd);
  return rc;
}
