/* Serving from memory: ameir_model_predict on encoded rows (with and without a caller's
 * workspace) and ameir_model_predict_text on text lines agree with predict_split row for row;
 * unseen values are the OOV id; malformed rows name their index; a caller's workspace is
 * measured, checked and makes the call allocate nothing; concurrent calls give the serial
 * results. */
#define _GNU_SOURCE   /* dladdr */
#include <dlfcn.h>
#include <execinfo.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"
#include "core/base/base.h"
#include "core/data/dataset.h"
#include "cpu/cpu.h"
#include "../model/synth.h"

/* ---- counting allocations ----
 * Backend allocations: the context's ops table is swapped for a copy whose alloc counts. Heap
 * allocations of the calling thread: under AddressSanitizer a malloc hook counts them while
 * t_counting is set (run-san; the plain build checks the backend count only). */
static const ameir_ops *real_ops;
static ameir_ops counting_ops;
static atomic_long backend_allocs;

static int32_t counting_alloc(void *state, size_t bytes, void **dev) {
  atomic_fetch_add(&backend_allocs, 1);
  return real_ops->alloc(state, bytes, dev);
}

static void count_backend(ameir_context *ctx) {
  real_ops = ctx->ops;
  counting_ops = *ctx->ops;
  counting_ops.alloc = counting_alloc;
  ctx->ops = &counting_ops;   /* before any model is made: a model keeps ctx->ops */
}

/* The context frees its table: give it back its own before ameir_context_free. */
static void uncount_backend(ameir_context *ctx) {
  if (ctx->ops == &counting_ops) ctx->ops = real_ops;
}

static _Thread_local int t_counting;
static _Thread_local long t_heap_allocs, t_runtime_allocs;
#if defined(__SANITIZE_ADDRESS__)
static _Thread_local int t_in_hook;
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
/* An allocation whose call stack passes through the OpenMP runtime or OpenBLAS is theirs (libgomp
 * allocates a team for every parallel region of one thread); any other is libameir's. */
static void on_malloc(const volatile void *p, size_t n) {
  (void)p; (void)n;
  if (!t_counting || t_in_hook) return;
  t_in_hook = 1;
  void *fr[64];
  int k = backtrace(fr, 64), foreign = 0;
  for (int i = 0; i < k && !foreign; i++) {
    Dl_info di;
    if (dladdr(fr[i], &di) && di.dli_fname && (strstr(di.dli_fname, "libgomp") || strstr(di.dli_fname, "openblas")))
      foreign = 1;
  }
  if (foreign) t_runtime_allocs++;
  else t_heap_allocs++;
  t_in_hook = 0;
}
static void on_free(const volatile void *p) { (void)p; }
static void install_heap_hooks(void) {
  static int done;
  void *fr[4];
  backtrace(fr, 4);   /* its first call loads the unwinder (and allocates): before counting */
  if (!done) done = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
}
#define HEAP_COUNTED 1
#else
static void install_heap_hooks(void) {}
#define HEAP_COUNTED 0
#endif

/* ---- a CSV dataset with every kind of encoded column ---- */

#define N_ROWS 400
static char g_lines[N_ROWS][96];
static const char *HEADER = "label,a,b,tags,x,y";

static float raw_x(int i) { return i % 17 == 0 ? NAN : (float)(i % 11); }   /* NAN: empty (missing) */
static float raw_y(int i) { return (float)((i * 7) % 13 - 3); }

static void make_lines(void) {
  for (int i = 0; i < N_ROWS; i++) {
    char tags[32] = "";
    for (int t = 0; t < i % 4; t++)
      snprintf(tags + strlen(tags), sizeof tags - strlen(tags), "%st%d", t ? "|" : "", (i + t) % 5);
    char x[16] = "";
    if (!isnan(raw_x(i))) snprintf(x, sizeof x, "%d", i % 11);
    int label = (i % 3 == 0) ^ (i % 7 == 0) ^ (i % 4 == 1);
    snprintf(g_lines[i], sizeof g_lines[i], "%d,a%d,b%d,%s,%s,%d", label, i % 7, i % 3, tags, x, (i * 7) % 13 - 3);
  }
}

/* path = t_tmpdir()/name, holding the header line (unless NULL) and n lines: line i at
 * base + i * stride (the rows of a char[n][stride] array) */
static void write_lines(char *path, size_t size, const char *name, const char *header,
                        const char *base, size_t stride, int64_t n) {
  snprintf(path, size, "%s/%s", t_tmpdir(), name);
  FILE *f = fopen(path, "w");
  T_ASSERT(f != NULL);
  if (header) fprintf(f, "%s\n", header);
  for (int64_t i = 0; i < n; i++) fprintf(f, "%s\n", base + (size_t)i * stride);
  fclose(f);
}

/* path = t_tmpdir()/name, a dataset config: "dataset:\n  files: [DATA]\n" + body */
static void write_config(char *path, size_t size, const char *name, const char *data,
                         const char *body) {
  snprintf(path, size, "%s/%s", t_tmpdir(), name);
  FILE *f = fopen(path, "w");
  T_ASSERT(f != NULL);
  fprintf(f, "dataset:\n  files: [%s]\n%s", data, body);
  fclose(f);
}

typedef struct {
  ameir_context *ctx;
  ameir_dataset *ds;
  ameir_arch *arch;
  ameir_model *m;
  char mpath[600];
} fixture;

static void csv_fixture(fixture *fx, int count) {
  memset(fx, 0, sizeof *fx);
  make_lines();
  char csv[600], yaml[600];
  snprintf(fx->mpath, sizeof fx->mpath, "%s/m.ameir", t_tmpdir());
  write_lines(csv, sizeof csv, "train.csv", HEADER, g_lines[0], sizeof g_lines[0], N_ROWS);
  write_config(yaml, sizeof yaml, "c.yaml", csv,
               "  format: csv\n  header: true\n  label: label\n"
               "  features:\n    - {name: a, type: categorical}\n    - {name: b, type: categorical}\n"
               "    - {name: tags, type: categorical, multi: true, separator: \"|\", max_len: 3}\n"
               "    - {name: x, type: numeric, transform: log}\n    - {name: y, type: numeric, transform: minmax}\n"
               "  split: {method: modulo}\n  cache: false\n");
  T_OK(ameir_context_create(&fx->ctx, "cpu"));
  if (count) count_backend(fx->ctx);
  T_OK(ameir_dataset_open(&fx->ds, fx->ctx, yaml));
  T_OK(ameir_arch_preset(&fx->arch, fx->ctx, "deepfm", "16:relu"));
  T_OK(ameir_model_create(&fx->m, fx->ctx, fx->arch, fx->ds));
  T_OK(ameir_model_set_option(fx->m, "epochs", "2"));
  T_OK(ameir_model_train(fx->m, fx->ds));
}

static void fixture_free(fixture *fx) {
  ameir_model_free(fx->m);
  ameir_arch_free(fx->arch);
  ameir_dataset_free(fx->ds);
  uncount_backend(fx->ctx);
  ameir_context_free(fx->ctx);
}

/* The encoded rows (layout of ameir_model_input_layout) of test rows first..first+n-1: ids
 * from the opened dataset, dense as the raw numbers of the file (raw: x and y of file row i). */
static void encode_test_rows(const ameir_model *m, const ameir_dataset *ds, int64_t first, int64_t n,
                             int32_t **ids_out, float **dense_out, int raw_csv) {
  int32_t nf, ni, nd;
  T_OK(ameir_model_input_layout(m, &nf, &ni, &nd));
  T_ASSERT_EQ_INT(nf, ds->n_fields);
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n * ni + 1));
  float *dense = malloc(sizeof(float) * (size_t)(n * nd + 1));
  for (int32_t f = 0; f < nf; f++) {
    const char *name;
    int32_t kind, col, width;
    int64_t vocab;
    T_OK(ameir_model_input_field(m, f, &name, &kind, &col, &width, &vocab));
    T_ASSERT(!strcmp(name, ds->fields[f].name));
    T_ASSERT_EQ_INT(kind, ds->fields[f].kind);
    for (int64_t r = 0; r < n; r++) {
      int64_t row = ds->split_rows[AMEIR_SPLIT_TEST][first + r];
      if (kind == AMEIR_FIELD_DENSE) {
        T_ASSERT_EQ_INT(vocab, 0);
        float v = ds->fields[f].values[row];
        if (raw_csv) v = !strcmp(name, "x") ? raw_x((int)row) : raw_y((int)row);
        dense[r * nd + col] = v;
      } else {
        T_ASSERT_EQ_INT(vocab, ds->fields[f].vocab);
        memcpy(ids + r * ni + col, ds->fields[f].ids + row * width, sizeof(int32_t) * (size_t)width);
      }
    }
  }
  *ids_out = ids;
  *dense_out = dense;
}

static void assert_same(const float *got, const float *want, int64_t n, const char *what) {
  for (int64_t i = 0; i < n; i++)
    T_ASSERT_MSG(got[i] == want[i], "%s: row %lld: %.9g, predict_split %.9g", what, (long long)i, got[i], want[i]);
}

static void *aligned_block(size_t bytes) {
  void *p = malloc(bytes + 64);
  T_ASSERT(p != NULL);
  return p;
}

/* ---- tests ---- */

void test_model_serve__encoded_text_and_split_agree(void) {
  fixture fx;
  csv_fixture(&fx, 0);
  ameir_model *m = fx.m;
  int64_t n = ameir_dataset_rows(fx.ds, AMEIR_SPLIT_TEST);
  T_ASSERT_EQ_INT(n, N_ROWS / 10);
  int32_t nf, ni, nd;
  T_OK(ameir_model_input_layout(m, &nf, &ni, &nd));
  T_ASSERT_EQ_INT(nf, 5);
  T_ASSERT_EQ_INT(ni, 1 + 1 + 3);
  T_ASSERT_EQ_INT(nd, 2);
  int32_t col, width;
  T_OK(ameir_model_input_field(m, 2, NULL, NULL, &col, &width, NULL));
  T_ASSERT_EQ_INT(col, 2);
  T_ASSERT_EQ_INT(width, 3);
  T_OK(ameir_model_input_field(m, 4, NULL, NULL, &col, &width, NULL));
  T_ASSERT_EQ_INT(col, 1);
  T_ASSERT_EQ_INT(width, 1);
  T_ASSERT_EQ_INT(ameir_model_input_field(m, 5, NULL, NULL, NULL, NULL, NULL), AMEIR_EINVAL);

  float *want = malloc(sizeof(float) * (size_t)n), *got = malloc(sizeof(float) * (size_t)n);
  T_OK(ameir_model_predict_split(m, fx.ds, AMEIR_SPLIT_TEST, 0, n, want));
  /* text: the lines of the test rows as they are in the file */
  const char *rows[N_ROWS];
  for (int64_t r = 0; r < n; r++) rows[r] = g_lines[fx.ds->split_rows[AMEIR_SPLIT_TEST][r]];
  T_OK(ameir_model_predict_text(m, HEADER, n, rows, got));
  assert_same(got, want, n, "predict_text");
  /* encoded, raw numbers (the model applies log and min-max), a missing x as NaN */
  int32_t *ids;
  float *dense;
  encode_test_rows(m, fx.ds, 0, n, &ids, &dense, 1);
  memset(got, 0, sizeof(float) * (size_t)n);
  T_OK(ameir_model_predict(m, n, ids, dense, got, NULL, 0));
  assert_same(got, want, n, "predict, model's workspace");
  size_t wsz = ameir_model_workspace_size(m, n);
  T_ASSERT(wsz > 0);
  char *block = aligned_block(wsz);
  memset(got, 0, sizeof(float) * (size_t)n);
  T_OK(ameir_model_predict(m, n, ids, dense, got, block, wsz));
  assert_same(got, want, n, "predict, caller's workspace");
  /* a saved and loaded model reads the same rows the same way */
  T_OK(ameir_model_save(m, fx.mpath));
  ameir_model *m2 = NULL;
  T_OK(ameir_model_load(&m2, fx.ctx, fx.mpath));
  T_ASSERT_EQ_INT(ameir_model_workspace_size(m2, n), wsz);
  memset(got, 0, sizeof(float) * (size_t)n);
  T_OK(ameir_model_predict_text(m2, HEADER, n, rows, got));
  assert_same(got, want, n, "predict_text, loaded");
  memset(got, 0, sizeof(float) * (size_t)n);
  T_OK(ameir_model_predict(m2, n, ids, dense, got, block, wsz));
  assert_same(got, want, n, "predict, loaded");
  /* one row at a time gives the batch's results up to float rounding */
  for (int64_t r = 0; r < n; r++) {
    float one;
    T_OK(ameir_model_predict(m2, 1, ids + r * ni, dense + r * nd, &one, block, wsz));
    T_ASSERT_NEAR(one, want[r], 1e-6);
  }
  T_OK(ameir_model_predict(m2, 0, NULL, NULL, NULL, NULL, 0));   /* nothing to do */
  ameir_model_free(m2);
  free(block);
  free(ids);
  free(dense);
  free(want);
  free(got);
  fixture_free(&fx);
}

void test_model_serve__unseen_values_are_oov(void) {
  fixture fx;
  csv_fixture(&fx, 0);
  ameir_model *m = fx.m;
  int32_t ni, nd;
  T_OK(ameir_model_input_layout(m, NULL, &ni, &nd));
  int32_t *ids;
  float *dense;
  encode_test_rows(m, fx.ds, 0, 1, &ids, &dense, 1);
  int64_t vocab_a;
  T_OK(ameir_model_input_field(m, 0, NULL, NULL, NULL, NULL, &vocab_a));
  /* field a (column 0): id 0, an id past the vocabulary, a huge one: all the OOV row */
  int32_t rows[4 * 5];
  float dn[4 * 2];
  int32_t a_ids[4] = {0, (int32_t)vocab_a, (int32_t)vocab_a + 7, 1 << 30};
  for (int r = 0; r < 4; r++) {
    memcpy(rows + r * ni, ids, sizeof(int32_t) * (size_t)ni);
    memcpy(dn + r * nd, dense, sizeof(float) * (size_t)nd);
    rows[r * ni] = a_ids[r];
  }
  float p[4];
  size_t wsz = ameir_model_workspace_size(m, 4);
  char *block = aligned_block(wsz);
  /* one row per call: a text row is scored alone too, and a batch may round otherwise */
  for (int r = 0; r < 4; r++) T_OK(ameir_model_predict(m, 1, rows + r * ni, dn + r * nd, &p[r], block, wsz));
  for (int r = 1; r < 4; r++) T_ASSERT_MSG(p[r] == p[0], "id %d: %.9g, OOV %.9g", (int)a_ids[r], p[r], p[0]);
  float p4[4];
  T_OK(ameir_model_predict(m, 4, rows, dn, p4, block, wsz));
  for (int r = 1; r < 4; r++) T_ASSERT_NEAR(p4[r], p4[0], 1e-6);
  /* text: a value never seen, in the same row */
  int64_t row = fx.ds->split_rows[AMEIR_SPLIT_TEST][0];
  char line[128];
  const char *comma = strchr(g_lines[row] + 2, ',');   /* after "label,a..." */
  snprintf(line, sizeof line, "%.2szz_never_seen%s", g_lines[row], comma);
  const char *lines[1] = {line};
  float t;
  T_OK(ameir_model_predict_text(m, HEADER, 1, lines, &t));
  T_ASSERT_MSG(t == p[0], "unseen value %.9g, OOV id %.9g (%s)", t, p[0], line);
  /* and it differs from the row's own value (the OOV row is a row of its own) */
  float own;
  T_OK(ameir_model_predict(m, 1, ids, dense, &own, block, wsz));
  T_ASSERT(own != p[0]);
  free(block);
  free(ids);
  free(dense);
  fixture_free(&fx);
}

static void expect_text_error(ameir_model *m, ameir_context *ctx, const char *header, int64_t n, const char **lines,
                              ameir_status want, const char *needle) {
  float out[8];
  ameir_status st = ameir_model_predict_text(m, header, n, lines, out);
  T_ASSERT_MSG(st == want, "status %d, expected %d (%s)", (int)st, (int)want, ameir_context_last_error(ctx));
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), needle), "message '%s' lacks '%s'",
               ameir_context_last_error(ctx), needle);
}

void test_model_serve__malformed_text_rows_name_their_index(void) {
  fixture fx;
  csv_fixture(&fx, 0);
  ameir_model *m = fx.m;
  ameir_context *ctx = fx.ctx;
  const char *bad_number[3] = {"0,a1,b1,t1,3,2", "1,a2,b2,,4,5", "0,a1,b1,t1|t2,notanumber,2"};
  expect_text_error(m, ctx, HEADER, 3, bad_number, AMEIR_EFORMAT, "row 2:");
  T_ASSERT(strstr(ameir_context_last_error(ctx), "not a number"));
  T_ASSERT(!strstr(ameir_context_last_error(ctx), "/proc/"));
  const char *columns[2] = {"0,a1,b1,t1,3,2", "1,a2,b2,4,5"};
  expect_text_error(m, ctx, HEADER, 2, columns, AMEIR_EFORMAT, "row 1: 5 columns, expected 6");
  const char *label[2] = {"0,a1,b1,t1,3,2", "2,a1,b1,t1,3,2"};
  expect_text_error(m, ctx, HEADER, 2, label, AMEIR_EFORMAT, "row 1: label '2' is not 0 or 1");
  const char *empty[2] = {"", "0,a1,b1,t1,3,2"};
  expect_text_error(m, ctx, HEADER, 2, empty, AMEIR_EFORMAT, "row 0: empty");
  const char *two[1] = {"0,a1,b1,t1,3,2\n1,a1,b1,t1,3,2"};
  expect_text_error(m, ctx, HEADER, 1, two, AMEIR_EFORMAT, "row 0: a line break");
  const char *good[1] = {"0,a1,b1,t1,3,2"};
  expect_text_error(m, ctx, NULL, 1, good, AMEIR_EINVAL, "header");
  expect_text_error(m, ctx, "label,a,b,tags,x", 1, good, AMEIR_ECONFIG, "y");
  const char *null_row[2] = {"0,a1,b1,t1,3,2", NULL};
  expect_text_error(m, ctx, HEADER, 2, null_row, AMEIR_EINVAL, "row 1");
  /* the label is required (the training format), its value does not change the score */
  const char *l0[1] = {"0,a1,b1,t1,3,2"}, *l1[1] = {"1,a1,b1,t1,3,2"};
  float p0, p1;
  T_OK(ameir_model_predict_text(m, HEADER, 1, l0, &p0));
  T_OK(ameir_model_predict_text(m, HEADER, 1, l1, &p1));
  T_ASSERT(p0 == p1);
  /* a model made without a YAML configuration cannot read text */
  ameir_dataset *sds = synth_dataset(ctx, 200, 2, 5, 0, 1, 3);
  ameir_model *sm = NULL;
  T_OK(ameir_model_create(&sm, ctx, fx.arch, sds));
  T_ASSERT_EQ_INT(ameir_model_predict_text(sm, NULL, 1, good, &p0), AMEIR_ESTATE);
  ameir_model_free(sm);
  synth_free(sds);
  fixture_free(&fx);
}

/* A model with every part an arena workspace holds: Stage 1 (pooling blocks, layer norm, sum
 * and last read-outs), an interaction, a Dice MLP, the SE shortcut. arch: the notation of
 * include/ameir/arch.h, or "preset:NAME:MLP" for ameir_arch_preset. */
static ameir_model *seq_model(ameir_context *ctx, ameir_dataset **ds_out, ameir_arch **a_out, const char *arch) {
  ameir_dataset *ds = synth_seq_dataset(ctx, 1200, 3, 20, 6, 0, 5);
  ameir_arch *a = NULL;
  if (!strncmp(arch, "preset:", 7)) {
    char name[32];
    const char *colon = strchr(arch + 7, ':');
    T_ASSERT(colon != NULL);
    snprintf(name, sizeof name, "%.*s", (int)(colon - (arch + 7)), arch + 7);
    T_OK(ameir_arch_preset(&a, ctx, name, colon + 1));
  } else {
    T_OK(ameir_arch_parse(&a, ctx, arch));
  }
  ameir_model *m = NULL;
  T_OK(ameir_model_create(&m, ctx, a, ds));
  T_OK(ameir_model_set_option(m, "emb", "4"));
  T_OK(ameir_model_train(m, ds));
  *ds_out = ds;
  *a_out = a;
  return m;
}

static const char *SEQ_ARCH = "blocks: (avgpool3, relu, ln) (maxpool3, identity, none)\nreadout: sum last\n"
                              "interactions: (C0, C1)\nmlp: (16, dice)\nshortcut: se\n";
/* Every Stage-1 layer whose CPU kernel takes scratch (convolution, self-attention, Bi-GRU,
 * target attention) and the attention read-out: their scratch comes from the caller's block. */
static const char *ATT_ARCH = "blocks: (conv3, relu, ln) (sa2, gelu, none) (gru, identity, ln) (target_att, relu, none)\n"
                              "readout: sum last att\nmlp: (16, relu)\n";
/* The DIN preset (attention read-out, Dice MLP) on the behaviours. */
static const char *DIN_PRESET = "preset:din:16:dice,8:dice";

void test_model_serve__caller_workspace_is_sized_checked_and_allocation_free(void) {
  install_heap_hooks();
  static const char *const names[6] = {"DeepFM", "Stage-1 pooling", "Stage-1 conv/attention/GRU/att read-out",
                                       "DIN preset", "DCN preset (cross tower)", "FiBiNET preset"};
  const char *const archs[6] = {NULL, SEQ_ARCH, ATT_ARCH, DIN_PRESET, "preset:dcn:16:relu", "preset:fibinet:16:relu"};
  for (int which = 0; which < 6; which++) {
    fixture fx;
    ameir_context *ctx;
    ameir_dataset *ds;
    ameir_model *m;
    ameir_arch *sa = NULL;
    if (which == 0) {
      csv_fixture(&fx, 1);
      ctx = fx.ctx; ds = fx.ds; m = fx.m;
    } else {
      T_OK(ameir_context_create(&ctx, "cpu"));
      count_backend(ctx);
      m = seq_model(ctx, &ds, &sa, archs[which]);
    }
    int64_t n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
    if (n > 64) n = 64;
    int32_t *ids;
    float *dense;
    encode_test_rows(m, ds, 0, n, &ids, &dense, which == 0);
    float *want = malloc(sizeof(float) * (size_t)n), *got = malloc(sizeof(float) * (size_t)n);
    T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n, want));
    /* the size grows with the batch; a block for more rows serves fewer */
    size_t s1 = ameir_model_workspace_size(m, 1), sn = ameir_model_workspace_size(m, n);
    T_ASSERT(s1 > 0 && s1 < sn);
    T_ASSERT(ameir_model_workspace_size(m, 2 * n) > sn);
    T_ASSERT_EQ_INT(ameir_model_workspace_size(m, 0), 0);
    T_ASSERT_EQ_INT(ameir_model_workspace_size(NULL, 4), 0);
    char *big = aligned_block(2 * sn);
    /* any alignment: the block starts one byte past an aligned address */
    T_OK(ameir_model_predict(m, n, ids, dense, got, big + 1, sn));
    assert_same(got, want, n, "odd-aligned workspace");
    T_OK(ameir_model_predict(m, n / 2, ids, dense, got, big, sn));
    T_OK(ameir_model_predict(m, n, ids, dense, got, big, ameir_model_workspace_size(m, 2 * n)));
    /* one byte short: refused, with the size it needs */
    T_ASSERT_EQ_INT(ameir_model_predict(m, n, ids, dense, got, big, sn - 1), AMEIR_EINVAL);
    char needed[64];
    snprintf(needed, sizeof needed, "need %zu", sn);
    T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), needed), "message: %s", ameir_context_last_error(ctx));
    /* no allocation: not through the backend, not on the heap of the calling thread (after a
     * first call, which lets OpenBLAS and OpenMP set up what they keep per thread) */
    T_OK(ameir_model_predict(m, n, ids, dense, got, big, sn));
    /* The CPU backend's cached scratch buffer is held as by a concurrent call (training, or a
     * prediction without a workspace, on another thread): a kernel that did not take its
     * scratch from the caller's block would malloc a private one, which the hook would see. */
    cpu_state *cs = ctx->bstate;
    atomic_store(&cs->scratch_busy, 1);
    long before = atomic_load(&backend_allocs);
    t_heap_allocs = t_runtime_allocs = 0;
    t_counting = 1;
    ameir_status st = AMEIR_OK;
    for (int rep = 0; rep < 20 && !st; rep++) st = ameir_model_predict(m, n, ids, dense, got, big, sn);
    t_counting = 0;
    long heap = t_heap_allocs, runtime = t_runtime_allocs;
    T_OK(st);
    assert_same(got, want, n, "repeated");
    T_ASSERT_EQ_INT(atomic_load(&backend_allocs) - before, 0);
    if (HEAP_COUNTED) {
      T_ASSERT_MSG(heap == 0, "%ld heap allocations by libameir in 20 calls", heap);
      /* a single row enters no OpenMP region (libgomp allocates a team per region, even for one
       * thread) and wakes no OpenBLAS team: no allocation by anyone */
      t_heap_allocs = t_runtime_allocs = 0;
      t_counting = 1;
      for (int rep = 0; rep < 20 && !st; rep++) st = ameir_model_predict(m, 1, ids, dense, got, big, sn);
      t_counting = 0;
      T_OK(st);
      T_ASSERT_MSG(t_heap_allocs == 0 && t_runtime_allocs == 0,
                   "%s, single rows: %ld allocations by libameir, %ld by the OpenMP runtime or OpenBLAS",
                   names[which], t_heap_allocs, t_runtime_allocs);
      /* the hook is live: the same call without a workspace allocates */
      t_counting = 1;
      st = ameir_model_predict(m, n, ids, dense, got, NULL, 0);
      t_counting = 0;
      T_OK(st);
      T_ASSERT(t_heap_allocs > 0);
      printf("     %s model: 0 allocations by libameir in 20 calls (%ld by the OpenMP runtime or OpenBLAS; "
             "%ld by libameir in one call without a workspace)\n",
             names[which], runtime, t_heap_allocs);
    }
    atomic_store(&cs->scratch_busy, 0);
    /* the counter is live: making the model went through it */
    T_ASSERT(atomic_load(&backend_allocs) > 0);
    T_OK(ameir_model_predict(m, n, ids, dense, got, NULL, 0));
    assert_same(got, want, n, "model's workspace");
    free(big);
    free(ids);
    free(dense);
    free(want);
    free(got);
    if (which == 0) {
      fixture_free(&fx);
    } else {
      ameir_model_free(m);
      ameir_arch_free(sa);
      synth_free(ds);
      uncount_backend(ctx);
      ameir_context_free(ctx);
    }
  }
}

/* Many threads, one model, a workspace each: the results of one thread. */
typedef struct {
  const ameir_model *m;
  const int32_t *ids;
  const float *dense;
  int32_t ni, nd;
  int64_t n;
  const float *want;   /* [k - 1][first][r]: the serial results of a call of k rows from `first` */
  int tid, rc, mismatch;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  size_t wsz = ameir_model_workspace_size(w->m, w->n);
  void *block = malloc(wsz);
  float out[64];
  for (int call = 0; call < 200 && !w->rc && !w->mismatch; call++) {
    int64_t k = 1 + (call * 7 + w->tid * 13) % w->n;   /* calls of different sizes */
    int64_t first = (call + w->tid) % (w->n - k + 1);
    w->rc = ameir_model_predict(w->m, k, w->ids + first * w->ni, w->dense + first * w->nd, out, block, wsz);
    for (int64_t r = 0; r < k && !w->rc; r++)
      if (out[r] != w->want[((k - 1) * w->n + first) * w->n + r]) w->mismatch = 1;
  }
  free(block);
  return NULL;
}

static void threads_case(const char *arch) {
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  ameir_context_set_int(ctx, "threads", 2);
  ameir_dataset *ds;
  ameir_arch *a;
  ameir_model *m = seq_model(ctx, &ds, &a, arch);
  int64_t n = 24;
  int32_t ni, nd;
  T_OK(ameir_model_input_layout(m, NULL, &ni, &nd));
  int32_t *ids;
  float *dense;
  encode_test_rows(m, ds, 0, n, &ids, &dense, 0);
  /* serial: every (size, first row) the workers will ask for */
  float *want = malloc(sizeof(float) * (size_t)(n * n * n));
  size_t wsz = ameir_model_workspace_size(m, n);
  char *block = aligned_block(wsz);
  for (int64_t k = 1; k <= n; k++)
    for (int64_t first = 0; first + k <= n; first++) {
      float out[64];
      T_OK(ameir_model_predict(m, k, ids + first * ni, dense + first * nd, out, block, wsz));
      /* a row's score may depend on its place in the batch (the GEMM's blocking): keep each */
      for (int64_t r = 0; r < k; r++) want[((k - 1) * n + first) * n + r] = out[r];
    }
  pthread_t th[4];
  worker w[4];
  for (int t = 0; t < 4; t++) {
    w[t] = (worker){m, ids, dense, ni, nd, n, want, t, 0, 0};
    T_ASSERT(pthread_create(&th[t], NULL, work, &w[t]) == 0);
  }
  for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < 4; t++) {
    T_ASSERT_MSG(w[t].rc == 0, "thread %d: %d (%s)", t, w[t].rc, ameir_context_last_error(ctx));
    T_ASSERT_MSG(!w[t].mismatch, "thread %d: a result differs from the serial one", t);
  }
  /* and the serial ones are those of predict_split and of the model's own workspace */
  float split[64], own[64];
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n, split));
  T_OK(ameir_model_predict(m, n, ids, dense, own, NULL, 0));
  assert_same(want + (n - 1) * n * n, split, n, "all rows, caller's workspace");
  assert_same(own, split, n, "all rows, model's workspace");
  free(block);
  free(want);
  free(ids);
  free(dense);
  ameir_model_free(m);
  ameir_arch_free(a);
  synth_free(ds);
  ameir_context_free(ctx);
}

void test_model_serve__threads_with_own_workspaces_match_one_thread(void) {
  threads_case(SEQ_ARCH);
  threads_case(ATT_ARCH);   /* the kernels' scratch from each thread's own block */
}

/* A CPU backend table without the scratch members, as a backend that cannot take its kernels'
 * scratch from a caller's block. */
static const ameir_ops *plain_real_ops;
static ameir_ops plain_ops;

void test_model_serve__unsupported_models(void) {
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  /* Stage-1 kernels with scratch of their own, on a backend without scratch_bytes and
   * set_thread_scratch: no caller's workspace, NULL works */
  plain_real_ops = ctx->ops;
  plain_ops = *ctx->ops;
  plain_ops.scratch_bytes = NULL;
  plain_ops.set_thread_scratch = NULL;
  ctx->ops = &plain_ops;   /* before the model is made: it keeps ctx->ops */
  ameir_dataset *ds;
  ameir_arch *a;
  ameir_model *m = seq_model(ctx, &ds, &a, "blocks: (conv3, relu, ln)\nreadout: sum att\nmlp: (8, relu)\n");
  T_ASSERT_EQ_INT(ameir_model_workspace_size(m, 8), 0);
  int32_t *ids;
  float *dense;
  encode_test_rows(m, ds, 0, 8, &ids, &dense, 0);
  float want[8], got[8];
  char block[4096];
  T_ASSERT_EQ_INT(ameir_model_predict(m, 8, ids, dense, got, block, sizeof block), AMEIR_EUNSUPPORTED);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "convolution") &&
               strstr(ameir_context_last_error(ctx), "set_thread_scratch"), "%s", ameir_context_last_error(ctx));
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, 8, want));
  T_OK(ameir_model_predict(m, 8, ids, dense, got, NULL, 0));
  assert_same(got, want, 8, "conv model, model's workspace");
  ameir_model_free(m);
  ameir_arch_free(a);
  synth_free(ds);
  /* xDeepFM's CIN kernel blocks its outer products in scratch of its own: no caller's block */
  m = seq_model(ctx, &ds, &a, "preset:xdeepfm:8:relu");
  T_ASSERT_EQ_INT(ameir_model_workspace_size(m, 8), 0);
  int32_t *xids;
  float *xdense;
  encode_test_rows(m, ds, 0, 8, &xids, &xdense, 0);
  T_ASSERT_EQ_INT(ameir_model_predict(m, 8, xids, xdense, got, block, sizeof block), AMEIR_EUNSUPPORTED);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "CIN"), "%s", ameir_context_last_error(ctx));
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, 8, want));
  T_OK(ameir_model_predict(m, 8, xids, xdense, got, NULL, 0));
  assert_same(got, want, 8, "xdeepfm, model's workspace");
  free(xids);
  free(xdense);
  ameir_model_free(m);
  ameir_arch_free(a);
  synth_free(ds);
  /* the attention read-out alone is named too; a model without such layers still takes one */
  m = seq_model(ctx, &ds, &a, "preset:din:8:relu");
  T_ASSERT_EQ_INT(ameir_model_workspace_size(m, 8), 0);
  T_ASSERT_EQ_INT(ameir_model_predict(m, 8, ids, dense, got, block, sizeof block), AMEIR_EUNSUPPORTED);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "attention read-out"), "%s", ameir_context_last_error(ctx));
  ameir_model_free(m);
  ameir_arch_free(a);
  synth_free(ds);
  m = seq_model(ctx, &ds, &a, SEQ_ARCH);
  size_t wsz = ameir_model_workspace_size(m, 8);
  T_ASSERT(wsz > 0);
  char *big = aligned_block(wsz);
  T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, 8, want));
  T_OK(ameir_model_predict(m, 8, ids, dense, got, big, wsz));
  assert_same(got, want, 8, "pooling model, caller's workspace, plain backend");
  free(big);
  free(ids);
  free(dense);
  ameir_model_free(m);
  ameir_arch_free(a);
  synth_free(ds);
  ctx->ops = plain_real_ops;   /* the context frees its own table */
  /* retrieval ranks items */
  ds = synth_retrieval(ctx, 20, 12, 5, 21);
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (sa2, identity, ln)\nreadout: last\n"));
  T_OK(ameir_model_create(&m, ctx, a, ds));
  int32_t one[8] = {0};
  float p;
  T_ASSERT_EQ_INT(ameir_model_predict(m, 1, one, NULL, &p, NULL, 0), AMEIR_EUNSUPPORTED);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "ameir_model_topk"));
  T_ASSERT_EQ_INT(ameir_model_predict_text(m, NULL, 1, (const char *[]){"1 2 3"}, &p), AMEIR_EUNSUPPORTED);
  T_ASSERT_EQ_INT(ameir_model_input_layout(m, NULL, NULL, NULL), AMEIR_EUNSUPPORTED);
  T_ASSERT_EQ_INT(ameir_model_workspace_size(m, 4), 0);
  ameir_model_free(m);
  ameir_arch_free(a);
  synth_free(ds);
  T_ASSERT_EQ_INT(ameir_model_predict(NULL, 1, NULL, NULL, NULL, NULL, 0), AMEIR_EINVAL);
  ameir_context_free(ctx);
}

/* Criteo TSV lines (no header line): text and predict_split agree, and predict_file too. */
/* A model of a preset trained on the dataset of a YAML file (the text-row tests). */
typedef struct { ameir_context *ctx; ameir_dataset *ds; ameir_arch *a; ameir_model *m; } served;

static void served_open(served *sv, const char *yaml, const char *preset, const char *mlp) {
  memset(sv, 0, sizeof *sv);
  T_OK(ameir_context_create(&sv->ctx, "cpu"));
  T_OK(ameir_dataset_open(&sv->ds, sv->ctx, yaml));
  T_OK(ameir_arch_preset(&sv->a, sv->ctx, preset, mlp));
  T_OK(ameir_model_create(&sv->m, sv->ctx, sv->a, sv->ds));
  T_OK(ameir_model_train(sv->m, sv->ds));
}

/* The test split's rows as text lines (row i of the data file at base + i * stride), and their
 * scores through predict_split (want) and predict_text (got, checked equal). Returns the rows. */
static int64_t served_text_rows(const served *sv, const char *base, size_t stride, const char **rows,
                                float *want, float *got, const char *what) {
  int64_t n = ameir_dataset_rows(sv->ds, AMEIR_SPLIT_TEST);
  for (int64_t r = 0; r < n; r++) rows[r] = base + (size_t)sv->ds->split_rows[AMEIR_SPLIT_TEST][r] * stride;
  T_OK(ameir_model_predict_split(sv->m, sv->ds, AMEIR_SPLIT_TEST, 0, n, want));
  T_OK(ameir_model_predict_text(sv->m, NULL, n, rows, got));
  assert_same(got, want, n, what);
  return n;
}

static void served_free(served *sv) {
  ameir_model_free(sv->m);
  ameir_arch_free(sv->a);
  ameir_dataset_free(sv->ds);
  ameir_context_free(sv->ctx);
}

void test_model_serve__criteo_lines(void) {
  const char *dir = t_tmpdir();
  char tsv[600], yaml[600];
  enum { N = 300 };
  static char lines[N][256];
  for (int i = 0; i < N; i++) {
    int len = snprintf(lines[i], sizeof lines[i], "%d", (i % 3 == 0) ^ (i % 5 == 0));
    for (int c = 1; c <= 13; c++)   /* I1..I13: integers, some missing, some negative */
      len += (i + c) % 9 == 0 ? snprintf(lines[i] + len, sizeof lines[i] - (size_t)len, "\t")
                              : snprintf(lines[i] + len, sizeof lines[i] - (size_t)len, "\t%d", (i * c) % 23 - 2);
    for (int c = 1; c <= 26; c++)   /* C1..C26: 8-hex values, some empty */
      len += (i + 2 * c) % 11 == 0 ? snprintf(lines[i] + len, sizeof lines[i] - (size_t)len, "\t")
                                   : snprintf(lines[i] + len, sizeof lines[i] - (size_t)len, "\t%08x", (unsigned)((i * (c + 3)) % (4 + c)));
  }
  write_lines(tsv, sizeof tsv, "day.tsv", NULL, lines[0], sizeof lines[0], N);
  write_config(yaml, sizeof yaml, "criteo.yaml", tsv, "  format: criteo\n  split: {method: modulo}\n  cache: false\n");
  served sv;
  served_open(&sv, yaml, "deepfm", "16:relu");
  ameir_model *m = sv.m;
  T_ASSERT_EQ_INT(ameir_dataset_rows(sv.ds, AMEIR_SPLIT_TEST), N / 10);
  float want[N / 10], got[N / 10];
  const char *rows[N / 10];
  int64_t n = served_text_rows(&sv, lines[0], sizeof lines[0], rows, want, got, "criteo predict_text");
  int32_t nf, ni, nd;
  T_OK(ameir_model_input_layout(m, &nf, &ni, &nd));
  T_ASSERT_EQ_INT(nf, 39);
  T_ASSERT_EQ_INT(ni, 26);
  T_ASSERT_EQ_INT(nd, 13);
  /* the file of those rows gives the same scores */
  char part[600];
  snprintf(part, sizeof part, "%s/part.tsv", dir);
  FILE *f = fopen(part, "w");
  T_ASSERT(f != NULL);
  for (int64_t r = 0; r < n; r++) fprintf(f, "%s\n", rows[r]);
  fclose(f);
  float *pf = NULL;
  int64_t nfile = 0;
  T_OK(ameir_model_predict_file(m, part, &pf, &nfile));
  T_ASSERT_EQ_INT(nfile, n);
  assert_same(pf, want, n, "criteo predict_file");
  ameir_free(pf);
  T_ASSERT_EQ_INT(ameir_model_predict_text(m, "label", n, rows, got), AMEIR_EINVAL);   /* no header line */
  served_free(&sv);
}

/* A config that lists its columns (header: true, columns: [...]) reads rows with or without the
 * header line; on_bad_row: skip does not skip a served row. */
void test_model_serve__listed_columns_and_skip_config(void) {
  make_lines();
  char csv[600], yaml[600];
  write_lines(csv, sizeof csv, "train.csv", HEADER, g_lines[0], sizeof g_lines[0], N_ROWS);
  write_config(yaml, sizeof yaml, "c.yaml", csv,
               "  format: csv\n  header: true\n  columns: [label, a, b, tags, x, y]\n"
               "  label: label\n  features: [a, b]\n  on_bad_row: skip\n  split: {method: modulo}\n  cache: false\n");
  served sv;
  served_open(&sv, yaml, "dnn", "8:relu");
  ameir_context *ctx = sv.ctx;
  ameir_model *m = sv.m;
  float want[N_ROWS / 10], got[N_ROWS / 10];
  const char *rows[N_ROWS / 10];
  int64_t n = served_text_rows(&sv, g_lines[0], sizeof g_lines[0], rows, want, got, "listed columns, no header");
  memset(got, 0, sizeof got);
  T_OK(ameir_model_predict_text(m, HEADER, n, rows, got));
  assert_same(got, want, n, "listed columns, header");
  const char *bad[3] = {rows[0], "0,a1,b1", rows[1]};
  T_ASSERT_EQ_INT(ameir_model_predict_text(m, NULL, 3, bad, got), AMEIR_EFORMAT);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "row 1: 3 columns"), "%s", ameir_context_last_error(ctx));
  T_ASSERT_EQ_INT(ameir_model_predict_text(m, HEADER, 3, bad, got), AMEIR_EFORMAT);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "row 1: 3 columns"), "%s", ameir_context_last_error(ctx));
  T_ASSERT_EQ_INT(ameir_model_predict_text(m, "label,a,b", 1, rows, got), AMEIR_EFORMAT);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "header:"), "%s", ameir_context_last_error(ctx));
  served_free(&sv);
}

/* libFM lines (positional: feature k of a line is field k). */
void test_model_serve__libfm_lines(void) {
  char path[600], yaml[600];
  enum { N = 200 };
  static char lines[N][64];
  for (int i = 0; i < N; i++)
    snprintf(lines[i], sizeof lines[i], "%d %d:1 %d:1 %d:1", (i % 3 == 0) ^ (i % 4 == 0), i % 5, 10 + i % 7, 20 + i % 3);
  write_lines(path, sizeof path, "d.libfm", NULL, lines[0], sizeof lines[0], N);
  write_config(yaml, sizeof yaml, "d.yaml", path, "  format: libfm\n  split: {method: modulo}\n  cache: false\n");
  served sv;
  served_open(&sv, yaml, "deepfm", "8:relu");
  ameir_context *ctx = sv.ctx;
  ameir_model *m = sv.m;
  float want[N / 10], got[N / 10];
  const char *rows[N / 10];
  T_ASSERT(served_text_rows(&sv, lines[0], sizeof lines[0], rows, want, got, "libfm predict_text") > 0);
  const char *bad[2] = {rows[0], "1 3:1 x:1 20:1"};
  T_ASSERT_EQ_INT(ameir_model_predict_text(m, NULL, 2, bad, got), AMEIR_EFORMAT);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "row 1: feature 2"), "%s", ameir_context_last_error(ctx));
  const char *blank[1] = {"  \t"};
  T_ASSERT_EQ_INT(ameir_model_predict_text(m, NULL, 1, blank, got), AMEIR_EFORMAT);
  served_free(&sv);
}
