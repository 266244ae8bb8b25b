/* The core keeps the device rule of src/core/backend/ops.h: it never dereferences device memory
 * and never hands a host pointer where device memory belongs. Checked by training and scoring
 * the same models on the CPU backend and on the shadow module (tests/shadow: the CPU ops behind
 * device pointers that crash when dereferenced, fresh allocations filled with NaN, every
 * argument checked for the right kind of pointer), loaded as the "cuda" backend: the results
 * must be bit-identical. Skips when build/shadow/libameir_cuda.so is not built (`make shadow`;
 * `make test` builds it). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ameir/ameir.h"
#include "synth.h"
#include "test.h"

#define SHADOW "build/shadow/libameir_cuda.so"

static ameir_context *ctx_for(const char *backend) {
  ameir_context *ctx = NULL;
  if (!strcmp(backend, "cuda")) setenv("AMEIR_BACKEND_PATH", SHADOW, 1);
  ameir_status st = ameir_context_create(&ctx, backend);
  unsetenv("AMEIR_BACKEND_PATH");
  if (st) t__fail(__FILE__, __LINE__, "context %s: %s", backend, ameir_last_error());
  ameir_context_set_int(ctx, "threads", 2);
  return ctx;
}

typedef ameir_dataset *(*make_ds)(ameir_context *ctx);
static ameir_dataset *ds_ctr(ameir_context *ctx) { return synth_dataset(ctx, 3000, 4, 30, 1, 2, 31); }
static ameir_dataset *ds_seq(ameir_context *ctx) { return synth_seq_dataset(ctx, 2000, 3, 20, 8, 0, 32); }
static ameir_dataset *ds_ret(ameir_context *ctx) { return synth_retrieval(ctx, 300, 60, 6, 33); }

/* trains arch on backend, then returns n_out scores (CTR: test predictions; retrieval: top-10
 * item scores of the first test rows) and, for CTR, the predictions of the saved-and-reloaded
 * model on the same backend */
static void run(const char *backend, make_ds mk, const char *arch_text, const char *opts[][2],
                int retrieval, float *out, int64_t n_out, const char *save_path) {
  ameir_context *ctx = ctx_for(backend);
  T_ASSERT_MSG(!strcmp(ameir_context_backend(ctx), backend), "backend %s, asked %s",
               ameir_context_backend(ctx), backend);
  ameir_dataset *ds = mk(ctx);
  ameir_arch *a = NULL;
  T_OK(ameir_arch_parse(&a, ctx, arch_text));
  ameir_model *m = NULL;
  ameir_status st = ameir_model_create(&m, ctx, a, ds);
  ameir_arch_free(a);
  T_ASSERT_MSG(!st, "create on %s: %s", backend, ameir_context_last_error(ctx));
  for (int i = 0; opts[i][0]; i++) T_OK(ameir_model_set_option(m, opts[i][0], opts[i][1]));
  st = ameir_model_train(m, ds);
  T_ASSERT_MSG(!st, "train on %s: %s", backend, ameir_context_last_error(ctx));
  if (retrieval) {
    int32_t *top = malloc(sizeof(int32_t) * (size_t)n_out);
    T_OK(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, n_out / 10, 10, 1, top, out));
    free(top);
  } else {
    T_OK(ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n_out, out));
    if (save_path) T_OK(ameir_model_save(m, save_path));
  }
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}

static void same(const char *arch, make_ds mk, const char *opts[][2], int retrieval) {
  if (access(SHADOW, R_OK)) T_SKIP("build/shadow/libameir_cuda.so not built (make shadow)");
  enum { N = 200 };
  float a[N], b[N];
  char pa[1024], pb[1024];
  snprintf(pa, sizeof pa, "%s/cpu.ameir", t_tmpdir());
  snprintf(pb, sizeof pb, "%s/shadow.ameir", t_tmpdir());
  run("cpu", mk, arch, opts, retrieval, a, N, pa);
  run("cuda", mk, arch, opts, retrieval, b, N, pb);
  for (int i = 0; i < N; i++)
    T_ASSERT_MSG(a[i] == b[i], "score %d: cpu %.9g, shadow %.9g", i, a[i], b[i]);
  if (retrieval) return;
  /* a model saved on one backend loads on the other and scores the same */
  ameir_context *cc = ctx_for("cpu"), *cs = ctx_for("cuda");
  ameir_dataset *ds = mk(cc);
  ameir_model *m1 = NULL, *m2 = NULL;
  T_OK(ameir_model_load(&m1, cc, pb));
  T_OK(ameir_model_load(&m2, cs, pa));
  float c1[N], c2[N];
  T_OK(ameir_model_predict_split(m1, ds, AMEIR_SPLIT_TEST, 0, N, c1));
  T_OK(ameir_model_predict_split(m2, ds, AMEIR_SPLIT_TEST, 0, N, c2));
  for (int i = 0; i < N; i++) {
    T_ASSERT_MSG(c1[i] == a[i] && c2[i] == a[i], "reloaded score %d: %.9g %.9g vs %.9g", i, c1[i],
                 c2[i], a[i]);
  }
  ameir_model_free(m1);
  ameir_model_free(m2);
  synth_free(ds);
  ameir_context_free(cc);
  ameir_context_free(cs);
}

void test_model_shadow__deepfm_and_backbone(void) {
  const char *opts[][2] = {{"emb", "8"}, {"epochs", "2"}, {"batch", "128"}, {"eval_batch", "100"},
                           {"dropout", "0.1"}, {"l2", "1e-5"}, {NULL, NULL}};
  same("interactions: (C0, C1) (C1, C2, C3)\nmlp: (16, dice) (8, swish)\nshortcut: se\nextras: linear fm\n",
       ds_ctr, opts, 0);
  const char *sp[][2] = {{"emb", "8"}, {"epochs", "1"}, {"batch", "128"}, {"optimizer", "sparse_adam"},
                         {NULL, NULL}};
  same("mlp: (16, relu)\nextras: linear fm\n", ds_ctr, sp, 0);
}

/* the baseline towers (DCN's cross network, xDeepFM's CIN) with several batches to score */
void test_model_shadow__towers(void) {
  const char *opts[][2] = {{"emb", "8"}, {"epochs", "2"}, {"batch", "128"}, {"eval_batch", "64"}, {NULL, NULL}};
  same("mlp: (16, relu)\ncross: 2\ncin: 6 4\nextras: linear\n", ds_ctr, opts, 0);
  same("mlp: (8, relu)\nautoint: 2\n", ds_ctr, opts, 0);
  same("mlp: (8, relu)\nproducts: inner\nextras: linear\n", ds_ctr, opts, 0);
  same("mlp: (8, relu)\nfibinet: 3\nextras: linear\n", ds_ctr, opts, 0);
}

void test_model_shadow__behaviour_blocks(void) {
  const char *opts[][2] = {{"emb", "8"}, {"epochs", "2"}, {"batch", "128"}, {"eval_batch", "96"},
                           {"patience", "1"}, {NULL, NULL}};
  same("blocks: (conv3, relu, ln) (sa2, gelu, none) (gru, identity, ln) (maxpool3, swish, none) "
       "(dconv5, relu, ln) (target_att, identity, none) (avgpool3, gelu, ln)\n"
       "readout: sum last att\ninteractions: (C0, C1)\nmlp: (8, relu)\nshortcut: se\nextras: linear\n",
       ds_seq, opts, 0);
}

void test_model_shadow__retrieval(void) {
  const char *opts[][2] = {{"emb", "16"}, {"epochs", "2"}, {"batch", "64"}, {"neg", "3"},
                           {NULL, NULL}};
  same("blocks: (sa2, identity, ln) (gru, identity, none) (conv1, relu, ln)\nreadout: sum last\nmlp: (16, gelu)\n",
       ds_ret, opts, 1);
  /* item biases, and the BPR loss */
  same("blocks: (conv1, relu, ln)\nreadout: last\nextras: linear\n", ds_ret, opts, 1);
  const char *bpr[][2] = {{"emb", "16"}, {"epochs", "2"}, {"batch", "64"}, {"neg", "3"}, {"loss", "bpr"},
                          {NULL, NULL}};
  same("readout: sum\nmlp: (8, relu)\nextras: linear\n", ds_ret, bpr, 1);
  /* cloze (BERT4Rec): the staged masks and the read-out at the masked positions */
  same("blocks: (sa4, gelu, ln) (conv1, gelu, ln)\nreadout: sum last\nmlp: (16, relu)\ncloze: 0.2\npositions: learned\n", ds_ret, opts, 1);
  same("blocks: (conv1, relu, none)\nreadout: last caser\ncaser: 3 2 2\nmlp: (16, relu)\n", ds_ret, opts, 1);
}

/* The shadow module enforces the asynchronous staging rules of ops.h, so the pipelined scoring
 * is checked on every machine: a source rewritten before the sync point after its upload_async,
 * a download_async destination read before its sync point (NaN until then) and host memory not
 * from host_alloc are all caught. */
void test_model_shadow__async_staging_rules_are_enforced(void) {
  if (access(SHADOW, R_OK)) T_SKIP("build/shadow/libameir_cuda.so not built (make shadow)");
  ameir_context *ctx = ctx_for("cuda");
  const ameir_ops *o = ctx->ops;
  void *st = ctx->bstate;
  float *h = NULL, *d = NULL, plain[4] = {0};
  T_OK(o->host_alloc(st, 4 * sizeof(float), (void **)&h));
  T_OK(o->alloc(st, 4 * sizeof(float), (void **)&d));
  for (int i = 0; i < 4; i++) h[i] = (float)i;
  /* in the rules: upload, sync, reuse */
  T_OK(o->upload_async(st, d, h, sizeof plain));
  T_OK(o->sync(st));
  h[0] = 7.f;
  T_OK(o->upload_async(st, d, h, sizeof plain));
  /* the source rewritten before the sync point */
  h[1] = 9.f;
  T_ASSERT_EQ_INT(o->sync(st), AMEIR_EINVAL);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "changed before this sync point"), "%s",
               ameir_context_last_error(ctx));
  /* a download is unreadable until its sync point, then holds the device's bytes as queued */
  T_OK(o->upload(st, d, h, sizeof plain));
  T_OK(o->download_async(st, h, d, sizeof plain));
  T_ASSERT(isnan(h[0]));
  T_OK(o->sync(st));
  T_ASSERT(h[0] == 7.f && h[1] == 9.f && h[3] == 3.f);
  /* host memory that does not come from host_alloc */
  T_ASSERT_EQ_INT(o->upload_async(st, d, plain, sizeof plain), AMEIR_EINVAL);
  T_ASSERT(strstr(ameir_context_last_error(ctx), "does not come from host_alloc"));
  o->free(st, d);
  o->host_free(st, h);
  ameir_context_free(ctx);
}
