/* The shadow backend: a test module (libameir_cuda.so, built into build/shadow/) that stands in
 * for the CUDA module on a machine without a GPU. It runs the CPU ops of src/cpu behind device
 * pointers the core cannot dereference, to check the rule of src/core/backend/ops.h: core code
 * never dereferences a "dev" pointer, it only moves data with upload/download/copy/memset0 and
 * hands such pointers to ops.
 *
 * - alloc returns the CPU allocation XOR SHADOW_TAG (bit 62): a non-canonical x86-64 address, so
 *   a read or write through it by the core faults at once (SIGSEGV; also under ASan, whose
 *   shadow address of such a pointer is non-canonical too). NULL stays NULL. Pointer arithmetic
 *   on a tagged pointer (dev + offset) keeps the tag, as offsets never reach bit 62.
 * - Every op checks that each device pointer argument carries the tag (a host pointer where
 *   device memory is expected is a bug of the caller: AMEIR_EINVAL, "shadow: OP: argument X is
 *   not device memory"), and that each HOST pointer argument does not ("... is device memory,
 *   the op takes a host pointer"), then untags and calls the CPU op. NULL passes unchecked (the
 *   CPU op decides whether NULL is allowed there).
 * - Fresh allocations are filled with 0xFF bytes (NaN floats, -1 ints), so code that assumes
 *   zeroed memory shows.
 * - scratch_bytes and set_thread_scratch stay NULL, as for CUDA: a device backend's buffers
 *   cannot live in a caller's host block, and the core then refuses caller workspaces.
 * - The backend state is the CPU backend's state (init/shutdown/set_threads forward to it).
 *
 * The CPU sources call ameir__error; this file provides it over the host's set_error service, so
 * the module does not link libameir (src/core/backend/module.h). Testing only; never installed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "core/backend/module.h"
#include "cpu/cpu.h"

#define SHADOW_EXPORT __attribute__((visibility("default")))
#define SHADOW_TAG ((uintptr_t)1 << 62)

typedef void (*host_log_fn)(const struct ameir_context *, int32_t, const char *);
typedef int32_t (*host_set_error_fn)(struct ameir_context *, int32_t, const char *);

/* Host services, stored at each handshake (always the same functions of the libameir that
 * loaded the module; atomic only so that two contexts created at once do not race formally). */
static _Atomic(host_log_fn) g_log;
static _Atomic(host_set_error_fn) g_set_error;

/* ---- the ameir__ services the CPU sources call (src/core/base/base.h) ---- */

ameir_status ameir__verror(ameir_context *ctx, ameir_status status, const char *fmt, va_list ap) {
  char msg[AMEIR_MSG_MAX];
  vsnprintf(msg, sizeof msg, fmt, ap);
  host_set_error_fn set = g_set_error;
  return set ? set(ctx, status, msg) : status;
}

ameir_status ameir__error(ameir_context *ctx, ameir_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ameir_status st = ameir__verror(ctx, status, fmt, ap);
  va_end(ap);
  return st;
}

void ameir__log(const ameir_context *ctx, int32_t level, const char *fmt, ...) {
  host_log_fn log = g_log;
  if (!log) return;
  char msg[AMEIR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log(ctx, level, msg);
}

/* ---- pointer translation ---- */

static const ameir_ops *cpu(void) { return ameir__cpu_ops(); }

static ameir_context *ctx_of(void *state) { return state ? ((cpu_state *)state)->ctx : NULL; }

static int tagged(const void *p) { return ((uintptr_t)p & SHADOW_TAG) != 0; }

static void *tag(void *p) { return p ? (void *)((uintptr_t)p ^ SHADOW_TAG) : NULL; }

/* Strips the tag; only called on pointers checked to carry it (or NULL). */
static void *untag(const void *p) { return p ? (void *)((uintptr_t)p & ~SHADOW_TAG) : NULL; }

static int32_t bad_arg(void *state, const char *op, const char *arg, const char *why) {
  return ameir__error(ctx_of(state), AMEIR_EINVAL, "shadow: %s: argument %s %s", op, arg, why);
}

/* The op name of a wrapper sh_<op>. */
#define OPNAME (__func__ + 3)

/* A device pointer argument: must carry the tag (or be NULL); replaced by the CPU pointer. */
#define DEV(arg)                                                                   \
  do {                                                                             \
    if ((arg) && !tagged(arg)) return bad_arg(state, OPNAME, #arg, "is not device memory"); \
    (arg) = untag(arg);                                                            \
  } while (0)

/* A host pointer argument: must not carry the tag. */
#define HOST(arg)                                                                  \
  do {                                                                             \
    if ((arg) && tagged(arg))                                                      \
      return bad_arg(state, OPNAME, #arg, "is device memory, the op takes a host pointer"); \
  } while (0)

/* ---- lifetime: the state is the CPU backend's ---- */

static int32_t sh_init(struct ameir_context *ctx, int32_t threads, void **state) {
  return cpu()->init(ctx, threads, state);
}

static int32_t flush(void *state, const char *op);

static void sh_shutdown(void *state) {
  (void)flush(state, "shutdown");   /* frees the snapshots; leaked host_alloc blocks show in LSan */
  cpu()->shutdown(state);
}

static int32_t sh_set_threads(void *state, int32_t threads) {
  return cpu()->set_threads(state, threads);
}

/* ---- memory ---- */

static int32_t sh_alloc(void *state, size_t bytes, void **dev) {
  if (!dev) return bad_arg(state, OPNAME, "dev", "is NULL");
  HOST(dev);
  void *p = NULL;
  int32_t st = cpu()->alloc(state, bytes, &p);
  if (st) {
    *dev = NULL;
    return st;
  }
  if (p && bytes) memset(p, 0xFF, bytes);
  *dev = tag(p);
  return 0;
}

static void sh_free(void *state, void *dev) {
  if (!dev) return;
  if (!tagged(dev)) {
    /* free has no status: say it loudly and leak the block rather than free a host pointer */
    ameir__log(ctx_of(state), AMEIR_LOG_ERROR,
               "shadow: free: argument dev is not device memory (%p); not freed", dev);
    return;
  }
  cpu()->free(state, untag(dev));
}

static int32_t flush(void *state, const char *op);

static int32_t sh_upload(void *state, void *dev_dst, const void *host_src, size_t bytes) {
  DEV(dev_dst);
  HOST(host_src);
  int32_t fs = flush(state, OPNAME);   /* synchronous: everything queued before completes */
  if (fs) return fs;
  return cpu()->upload(state, dev_dst, host_src, bytes);
}

static int32_t sh_download(void *state, void *host_dst, const void *dev_src, size_t bytes) {
  HOST(host_dst);
  DEV(dev_src);
  int32_t fs = flush(state, OPNAME);
  if (fs) return fs;
  return cpu()->download(state, host_dst, dev_src, bytes);
}

/* ---- asynchronous staging, with the rules of ops.h checked ----
 * host_alloc blocks are recorded; upload_async and download_async take only such blocks. An
 * upload copies at once and keeps a snapshot of its source: the next sync point (sync, or a
 * synchronous upload/download) fails if the source changed in between (the core rewrote a
 * staging buffer the device might still be reading). A download copies the device data aside at
 * once, fills the destination with 0xFF (NaN) and writes the data only at the next sync point,
 * so a core that reads its scores before syncing reads NaN. */

#include <pthread.h>
#include <stdlib.h>

typedef struct {
  void *state;
  int download;
  char *host;          /* upload: source; download: destination */
  size_t bytes;
  char *data;          /* upload: snapshot of the source; download: the device's bytes */
} pending_copy;

static pthread_mutex_t g_async_mu = PTHREAD_MUTEX_INITIALIZER;
static pending_copy *g_pending;
static size_t g_n_pending, g_cap_pending;
static struct { void *state; char *p; size_t bytes; } *g_pinned;
static size_t g_n_pinned, g_cap_pinned;

static int in_pinned(void *state, const void *p, size_t bytes) {
  for (size_t i = 0; i < g_n_pinned; i++)
    if (g_pinned[i].state == state && (const char *)p >= g_pinned[i].p &&
        (const char *)p + bytes <= g_pinned[i].p + g_pinned[i].bytes)
      return 1;
  return 0;
}

/* Completes the pending copies of `state` (all of them); 0, or the first rule broken. Caller
 * holds g_async_mu. */
static int32_t flush_locked(void *state, const char *op) {
  int32_t st = 0;
  size_t keep = 0;
  for (size_t i = 0; i < g_n_pending; i++) {
    pending_copy *c = &g_pending[i];
    if (c->state != state) {
      g_pending[keep++] = *c;
      continue;
    }
    if (c->download) memcpy(c->host, c->data, c->bytes);
    else if (!st && memcmp(c->host, c->data, c->bytes) != 0)
      st = ameir__error(ctx_of(state), AMEIR_EINVAL,
                        "shadow: %s: the source of an earlier upload_async changed before this "
                        "sync point (the device may still have been reading it)", op);
    free(c->data);
  }
  g_n_pending = keep;
  return st;
}

static int32_t flush(void *state, const char *op) {
  pthread_mutex_lock(&g_async_mu);
  int32_t st = flush_locked(state, op);
  pthread_mutex_unlock(&g_async_mu);
  return st;
}

static int32_t sh_host_alloc(void *state, size_t bytes, void **host) {
  if (!host) return bad_arg(state, OPNAME, "host", "is NULL");
  void *p = NULL;
  int32_t st = cpu()->host_alloc(state, bytes, &p);
  if (st) {
    *host = NULL;
    return st;
  }
  pthread_mutex_lock(&g_async_mu);
  if (g_n_pinned == g_cap_pinned) {
    size_t cap = g_cap_pinned ? 2 * g_cap_pinned : 16;
    void *np = realloc(g_pinned, cap * sizeof *g_pinned);
    if (!np) {
      pthread_mutex_unlock(&g_async_mu);
      cpu()->host_free(state, p);
      *host = NULL;
      return ameir__error(ctx_of(state), AMEIR_ENOMEM, "shadow: host_alloc: out of memory");
    }
    g_pinned = np;
    g_cap_pinned = cap;
  }
  g_pinned[g_n_pinned].state = state;
  g_pinned[g_n_pinned].p = p;
  g_pinned[g_n_pinned].bytes = bytes;
  g_n_pinned++;
  pthread_mutex_unlock(&g_async_mu);
  if (p && bytes) memset(p, 0xFF, bytes);
  *host = p;
  return 0;
}

static void sh_host_free(void *state, void *host) {
  if (!host) return;
  pthread_mutex_lock(&g_async_mu);
  (void)flush_locked(state, "host_free");   /* as cudaFreeHost: queued copies finish first */
  int found = 0;
  for (size_t i = 0; i < g_n_pinned; i++)
    if (g_pinned[i].p == host) {
      g_pinned[i] = g_pinned[--g_n_pinned];
      found = 1;
      break;
    }
  pthread_mutex_unlock(&g_async_mu);
  if (!found) {
    ameir__log(ctx_of(state), AMEIR_LOG_ERROR,
               "shadow: host_free: %p does not come from host_alloc; not freed", host);
    return;
  }
  cpu()->host_free(state, host);
}

static int32_t queue_copy(void *state, int download, void *host, const void *dev, size_t bytes,
                          const char *op) {
  if (!bytes) return 0;
  pthread_mutex_lock(&g_async_mu);
  int32_t st = 0;
  if (!in_pinned(state, host, bytes))
    st = bad_arg(state, op, download ? "host_dst" : "host_src", "does not come from host_alloc");
  char *data = st ? NULL : malloc(bytes);
  if (!st && !data) st = ameir__error(ctx_of(state), AMEIR_ENOMEM, "shadow: %s: out of memory", op);
  if (!st && g_n_pending == g_cap_pending) {
    size_t cap = g_cap_pending ? 2 * g_cap_pending : 16;
    void *np = realloc(g_pending, cap * sizeof *g_pending);
    if (!np) st = ameir__error(ctx_of(state), AMEIR_ENOMEM, "shadow: %s: out of memory", op);
    else {
      g_pending = np;
      g_cap_pending = cap;
    }
  }
  if (st) {
    free(data);
    pthread_mutex_unlock(&g_async_mu);
    return st;
  }
  if (download) {
    memcpy(data, dev, bytes);      /* the device's bytes as of now, in queue order */
    memset(host, 0xFF, bytes);     /* unreadable until the sync point */
  } else {
    memcpy((void *)dev, host, bytes);
    memcpy(data, host, bytes);
  }
  g_pending[g_n_pending++] = (pending_copy){state, download, host, bytes, data};
  pthread_mutex_unlock(&g_async_mu);
  return 0;
}

static int32_t sh_upload_async(void *state, void *dev_dst, const void *host_src, size_t bytes) {
  DEV(dev_dst);
  HOST(host_src);
  return queue_copy(state, 0, (void *)host_src, dev_dst, bytes, OPNAME);
}

static int32_t sh_download_async(void *state, void *host_dst, const void *dev_src, size_t bytes) {
  HOST(host_dst);
  DEV(dev_src);
  return queue_copy(state, 1, host_dst, dev_src, bytes, OPNAME);
}

static int32_t sh_memset0(void *state, void *dev, size_t bytes) {
  DEV(dev);
  return cpu()->memset0(state, dev, bytes);
}

static int32_t sh_copy(void *state, void *dev_dst, const void *dev_src, size_t bytes) {
  DEV(dev_dst);
  DEV(dev_src);
  return cpu()->copy(state, dev_dst, dev_src, bytes);
}

static int32_t sh_sync(void *state) {
  int32_t fs = flush(state, OPNAME);
  return fs ? fs : cpu()->sync(state);
}

/* ---- dense linear algebra ---- */

static int32_t sh_gemm(void *state, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                       int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                       int64_t ldb, float beta, float *c, int64_t ldc) {
  DEV(a);
  DEV(b);
  DEV(c);
  return ameir__cpu_gemm(state, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static int32_t sh_gemm_strided_batched(void *state, int32_t trans_a, int32_t trans_b, int64_t m,
                                       int64_t n, int64_t k, float alpha, const float *a,
                                       int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                                       int64_t stride_b, float beta, float *c, int64_t ldc,
                                       int64_t stride_c, int64_t batch_count) {
  DEV(a);
  DEV(b);
  DEV(c);
  return ameir__cpu_gemm_strided_batched(state, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a,
                                         b, ldb, stride_b, beta, c, ldc, stride_c, batch_count);
}

static int32_t sh_add_bias(void *state, float *y, int64_t ldy, const float *bias, int64_t m,
                           int64_t n) {
  DEV(y);
  DEV(bias);
  return ameir__cpu_add_bias(state, y, ldy, bias, m, n);
}

static int32_t sh_bias_grad(void *state, const float *dy, int64_t lddy, float *dbias, int64_t m,
                            int64_t n) {
  DEV(dy);
  DEV(dbias);
  return ameir__cpu_bias_grad(state, dy, lddy, dbias, m, n);
}

static int32_t sh_copy2d(void *state, float *dst, int64_t ldd, const float *src, int64_t lds,
                         int64_t m, int64_t n, int32_t accumulate) {
  DEV(dst);
  DEV(src);
  return ameir__cpu_copy2d(state, dst, ldd, src, lds, m, n, accumulate);
}

static int32_t sh_axpby(void *state, int64_t n, float alpha, const float *x, float beta,
                        float *y) {
  DEV(x);
  DEV(y);
  return ameir__cpu_axpby(state, n, alpha, x, beta, y);
}

/* ---- embeddings ---- */

static int32_t sh_emb_sum_fwd(void *state, const float *table, int64_t dim, const int32_t *rows,
                              int64_t n, int64_t len, float *out, int64_t ldo) {
  DEV(table);
  DEV(rows);
  DEV(out);
  return ameir__cpu_emb_sum_fwd(state, table, dim, rows, n, len, out, ldo);
}

static int32_t sh_emb_grad_rows(void *state, const int32_t *rows, const int32_t *src_index,
                                int64_t count, const float *dout, int64_t lddo, int64_t dim,
                                int32_t *uniq_rows, float *grad, int64_t *n_uniq) {
  DEV(rows);
  DEV(src_index);
  DEV(dout);
  DEV(uniq_rows);
  DEV(grad);
  HOST(n_uniq);
  return ameir__cpu_emb_grad_rows(state, rows, src_index, count, dout, lddo, dim, uniq_rows, grad,
                                  n_uniq);
}

/* ---- activations ---- */

static int32_t sh_act_fwd(void *state, int32_t act, const float *x, float *y, int64_t n) {
  DEV(x);
  DEV(y);
  return ameir__cpu_act_fwd(state, act, x, y, n);
}

static int32_t sh_act_bwd(void *state, int32_t act, const float *x, const float *y,
                          const float *dy, float *dx, int64_t n) {
  DEV(x);
  DEV(y);
  DEV(dy);
  DEV(dx);
  return ameir__cpu_act_bwd(state, act, x, y, dy, dx, n);
}

static int32_t sh_dice_fwd(void *state, const float *x, float *y, int64_t m, int64_t n,
                           const float *alpha, float *running_mean, float *running_var, float eps,
                           int32_t training, float *save) {
  DEV(x);
  DEV(y);
  DEV(alpha);
  DEV(running_mean);
  DEV(running_var);
  DEV(save);
  return ameir__cpu_dice_fwd(state, x, y, m, n, alpha, running_mean, running_var, eps, training,
                             save);
}

static int32_t sh_dice_bwd(void *state, const float *x, const float *dy, float *dx, int64_t m,
                           int64_t n, const float *alpha, float *dalpha, float eps,
                           const float *save) {
  DEV(x);
  DEV(dy);
  DEV(dx);
  DEV(alpha);
  DEV(dalpha);
  DEV(save);
  return ameir__cpu_dice_bwd(state, x, dy, dx, m, n, alpha, dalpha, eps, save);
}

/* ---- normalisation ---- */

static int32_t sh_layernorm_fwd(void *state, const float *x, float *y, int64_t m, int64_t n,
                                const float *gamma, const float *beta, float eps, float *save) {
  DEV(x);
  DEV(y);
  DEV(gamma);
  DEV(beta);
  DEV(save);
  return ameir__cpu_layernorm_fwd(state, x, y, m, n, gamma, beta, eps, save);
}

static int32_t sh_layernorm_bwd(void *state, const float *x, const float *dy, float *dx,
                                int64_t m, int64_t n, const float *gamma, float *dgamma,
                                float *dbeta, const float *save) {
  DEV(x);
  DEV(dy);
  DEV(dx);
  DEV(gamma);
  DEV(dgamma);
  DEV(dbeta);
  DEV(save);
  return ameir__cpu_layernorm_bwd(state, x, dy, dx, m, n, gamma, dgamma, dbeta, save);
}

/* ---- dropout ---- */

static int32_t sh_dropout_fwd(void *state, const float *x, float *y, uint8_t *mask, int64_t n,
                              float p, uint64_t seed, uint64_t offset) {
  DEV(x);
  DEV(y);
  DEV(mask);
  return ameir__cpu_dropout_fwd(state, x, y, mask, n, p, seed, offset);
}

static int32_t sh_dropout_bwd(void *state, const float *dy, float *dx, const uint8_t *mask,
                              int64_t n, float p) {
  DEV(dy);
  DEV(dx);
  DEV(mask);
  return ameir__cpu_dropout_bwd(state, dy, dx, mask, n, p);
}

/* ---- interactions ---- */

static int32_t sh_hadamard_fwd(void *state, const float *e, int64_t lde, int64_t b, int64_t k,
                               const int32_t *fields, const int32_t *order, int64_t n_inter,
                               int64_t max_order, float *out, int64_t ldo) {
  DEV(e);
  DEV(fields);
  DEV(order);
  DEV(out);
  return ameir__cpu_hadamard_fwd(state, e, lde, b, k, fields, order, n_inter, max_order, out, ldo);
}

static int32_t sh_hadamard_bwd(void *state, const float *e, int64_t lde, int64_t b, int64_t k,
                               const int32_t *fields, const int32_t *order, int64_t n_inter,
                               int64_t max_order, const float *dout, int64_t lddo, float *de) {
  DEV(e);
  DEV(fields);
  DEV(order);
  DEV(dout);
  DEV(de);
  return ameir__cpu_hadamard_bwd(state, e, lde, b, k, fields, order, n_inter, max_order, dout,
                                 lddo, de);
}

static int32_t sh_fm_fwd(void *state, const float *e, int64_t lde, int64_t b, int64_t f,
                         int64_t k, float *out, int32_t accumulate) {
  DEV(e);
  DEV(out);
  return ameir__cpu_fm_fwd(state, e, lde, b, f, k, out, accumulate);
}

static int32_t sh_fm_bwd(void *state, const float *e, int64_t lde, int64_t b, int64_t f,
                         int64_t k, const float *dout, float *de) {
  DEV(e);
  DEV(dout);
  DEV(de);
  return ameir__cpu_fm_bwd(state, e, lde, b, f, k, dout, de);
}

/* ---- SE shortcut ---- */

static int32_t sh_se_fwd(void *state, const float *q, int64_t ldq, int64_t b, int64_t s,
                         int64_t k, const float *v, const float *w1, const float *b1, int64_t r,
                         const float *w2, const float *b2, float *out, int64_t ldo, float *save) {
  DEV(q);
  DEV(v);
  DEV(w1);
  DEV(b1);
  DEV(w2);
  DEV(b2);
  DEV(out);
  DEV(save);
  return ameir__cpu_se_fwd(state, q, ldq, b, s, k, v, w1, b1, r, w2, b2, out, ldo, save);
}

static int32_t sh_se_bwd(void *state, const float *q, int64_t ldq, int64_t b, int64_t s,
                         int64_t k, const float *v, const float *w1, const float *b1, int64_t r,
                         const float *w2, const float *b2, const float *dout, int64_t lddo,
                         const float *save, float *dq, float *dv, float *dw1, float *db1,
                         float *dw2, float *db2) {
  DEV(q);
  DEV(v);
  DEV(w1);
  DEV(b1);
  DEV(w2);
  DEV(b2);
  DEV(dout);
  DEV(save);
  DEV(dq);
  DEV(dv);
  DEV(dw1);
  DEV(db1);
  DEV(dw2);
  DEV(db2);
  return ameir__cpu_se_bwd(state, q, ldq, b, s, k, v, w1, b1, r, w2, b2, dout, lddo, save, dq, dv,
                           dw1, db1, dw2, db2);
}

/* ---- loss and optimisers ---- */

static int32_t sh_bce_logits(void *state, const float *logit, const float *y, int64_t n,
                             float scale, double *loss, float *dlogit, float *prob) {
  DEV(logit);
  DEV(y);
  HOST(loss);
  DEV(dlogit);
  DEV(prob);
  return ameir__cpu_bce_logits(state, logit, y, n, scale, loss, dlogit, prob);
}

static int32_t sh_adam_dense(void *state, float *p, const float *g, float *m, float *v, int64_t n,
                             float lr, float b1, float b2, float eps, float l2, int64_t t) {
  DEV(p);
  DEV(g);
  DEV(m);
  DEV(v);
  return ameir__cpu_adam_dense(state, p, g, m, v, n, lr, b1, b2, eps, l2, t);
}

static int32_t sh_adam_rows(void *state, float *table, int64_t dim, const int32_t *rows,
                            const float *grad, int64_t n_rows, float *m, float *v, float lr,
                            float b1, float b2, float eps, float l2, int64_t t) {
  DEV(table);
  DEV(rows);
  DEV(grad);
  DEV(m);
  DEV(v);
  return ameir__cpu_adam_rows(state, table, dim, rows, grad, n_rows, m, v, lr, b1, b2, eps, l2, t);
}

static int32_t sh_adam_table_dense(void *state, float *table, int64_t n_table_rows, int64_t dim,
                                   const int32_t *rows, const float *grad, int64_t n_rows,
                                   float *m, float *v, float lr, float b1, float b2, float eps,
                                   float l2, int64_t t) {
  DEV(table);
  DEV(rows);
  DEV(grad);
  DEV(m);
  DEV(v);
  return ameir__cpu_adam_table_dense(state, table, n_table_rows, dim, rows, grad, n_rows, m, v, lr,
                                     b1, b2, eps, l2, t);
}

static int32_t sh_sumsq(void *state, const float *x, int64_t n, double *out) {
  DEV(x);
  HOST(out);
  return ameir__cpu_sumsq(state, x, n, out);
}

/* ---- behaviour sequences ---- */

static int32_t sh_seq_mask(void *state, float *y, const float *x, const int32_t *len, int64_t b,
                           int64_t t, int64_t d) {
  DEV(y);
  DEV(x);
  DEV(len);
  return ameir__cpu_seq_mask(state, y, x, len, b, t, d);
}

static int32_t sh_conv1d_fwd(void *state, const float *x, const int32_t *len, int64_t b,
                             int64_t t, int64_t d, const float *w, const float *bias, int32_t k,
                             int32_t dil, float *y) {
  DEV(x);
  DEV(len);
  DEV(w);
  DEV(bias);
  DEV(y);
  return ameir__cpu_conv1d_fwd(state, x, len, b, t, d, w, bias, k, dil, y);
}

static int32_t sh_conv1d_bwd(void *state, const float *x, const int32_t *len, int64_t b,
                             int64_t t, int64_t d, const float *w, int32_t k, int32_t dil,
                             const float *dy, float *dx, float *dw, float *dbias) {
  DEV(x);
  DEV(len);
  DEV(w);
  DEV(dy);
  DEV(dx);
  DEV(dw);
  DEV(dbias);
  return ameir__cpu_conv1d_bwd(state, x, len, b, t, d, w, k, dil, dy, dx, dw, dbias);
}

static int32_t sh_pool3_fwd(void *state, int32_t kind, const float *x, const int32_t *len,
                            int64_t b, int64_t t, int64_t d, float *y, int32_t *save) {
  DEV(x);
  DEV(len);
  DEV(y);
  DEV(save);
  return ameir__cpu_pool3_fwd(state, kind, x, len, b, t, d, y, save);
}

static int32_t sh_pool3_bwd(void *state, int32_t kind, const int32_t *len, int64_t b, int64_t t,
                            int64_t d, const float *dy, const int32_t *save, float *dx) {
  DEV(len);
  DEV(dy);
  DEV(save);
  DEV(dx);
  return ameir__cpu_pool3_bwd(state, kind, len, b, t, d, dy, save, dx);
}

static int32_t sh_gru_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                          int64_t d, const float *p, float *y, float *save) {
  DEV(x);
  DEV(len);
  DEV(p);
  DEV(y);
  DEV(save);
  return ameir__cpu_gru_fwd(state, x, len, b, t, d, p, y, save);
}

static int32_t sh_gru_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                          int64_t d, const float *p, const float *dy, const float *save,
                          float *dx, float *dp) {
  DEV(x);
  DEV(len);
  DEV(p);
  DEV(dy);
  DEV(save);
  DEV(dx);
  DEV(dp);
  return ameir__cpu_gru_bwd(state, x, len, b, t, d, p, dy, save, dx, dp);
}

static int32_t sh_mha_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                          int64_t d, int32_t heads, const float *p, float *y, float *save) {
  DEV(x);
  DEV(len);
  DEV(p);
  DEV(y);
  DEV(save);
  return ameir__cpu_mha_fwd(state, x, len, b, t, d, heads, p, y, save);
}

static int32_t sh_mha_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                          int64_t d, int32_t heads, const float *p, const float *dy,
                          const float *save, float *dx, float *dp) {
  DEV(x);
  DEV(len);
  DEV(p);
  DEV(dy);
  DEV(save);
  DEV(dx);
  DEV(dp);
  return ameir__cpu_mha_bwd(state, x, len, b, t, d, heads, p, dy, save, dx, dp);
}

static int32_t sh_din_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                          int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                          const float *p, float *pooled, int64_t ldp, float *scaled,
                          float *save) {
  DEV(x);
  DEV(len);
  DEV(q);
  DEV(p);
  DEV(pooled);
  DEV(scaled);
  DEV(save);
  return ameir__cpu_din_fwd(state, x, len, b, t, d, q, ldq, a1, a2, p, pooled, ldp, scaled, save);
}

static int32_t sh_din_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                          int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                          const float *p, const float *dpooled, int64_t lddp,
                          const float *dscaled, const float *save, float *dx, float *dq,
                          float *dp) {
  DEV(x);
  DEV(len);
  DEV(q);
  DEV(p);
  DEV(dpooled);
  DEV(dscaled);
  DEV(save);
  DEV(dx);
  DEV(dq);
  DEV(dp);
  return ameir__cpu_din_bwd(state, x, len, b, t, d, q, ldq, a1, a2, p, dpooled, lddp, dscaled,
                            save, dx, dq, dp);
}

static int32_t sh_readout_fwd(void *state, const float *x, const int32_t *len, int64_t b,
                              int64_t t, int64_t d, float *sum, int64_t lds, float *last,
                              int64_t ldl) {
  DEV(x);
  DEV(len);
  DEV(sum);
  DEV(last);
  return ameir__cpu_readout_fwd(state, x, len, b, t, d, sum, lds, last, ldl);
}

static int32_t sh_readout_bwd(void *state, const int32_t *len, int64_t b, int64_t t, int64_t d,
                              const float *dsum, int64_t lds, const float *dlast, int64_t ldl,
                              float *dx) {
  DEV(len);
  DEV(dsum);
  DEV(dlast);
  DEV(dx);
  return ameir__cpu_readout_bwd(state, len, b, t, d, dsum, lds, dlast, ldl, dx);
}

static int32_t sh_dot_rows_fwd(void *state, const float *e, int64_t k, const int32_t *rows,
                               int64_t b, int64_t c, const float *u, float *s) {
  DEV(e);
  DEV(rows);
  DEV(u);
  DEV(s);
  return ameir__cpu_dot_rows_fwd(state, e, k, rows, b, c, u, s);
}

static int32_t sh_dot_rows_bwd(void *state, const float *e, int64_t k, const int32_t *rows,
                               int64_t b, int64_t c, const float *u, const float *ds, float *du,
                               float *g) {
  DEV(e);
  DEV(rows);
  DEV(u);
  DEV(ds);
  DEV(du);
  DEV(g);
  return ameir__cpu_dot_rows_bwd(state, e, k, rows, b, c, u, ds, du, g);
}

/* ---- baseline models ---- */

static int32_t sh_emb_fields_fwd(void *state, const float *table, int64_t dim, const int32_t *rows,
                                 int64_t n, int64_t f, float *out, int64_t ldo) {
  DEV(table);
  DEV(rows);
  DEV(out);
  return ameir__cpu_emb_fields_fwd(state, table, dim, rows, n, f, out, ldo);
}

static int32_t sh_cross_fwd(void *state, const float *x0, int64_t ld0, const float *xl,
                            int64_t ldl, const float *w, const float *bias, int64_t b, int64_t d,
                            float *y, int64_t ldy) {
  DEV(x0);
  DEV(xl);
  DEV(w);
  DEV(bias);
  DEV(y);
  return ameir__cpu_cross_fwd(state, x0, ld0, xl, ldl, w, bias, b, d, y, ldy);
}

static int32_t sh_cross_bwd(void *state, const float *x0, int64_t ld0, const float *xl,
                            int64_t ldl, const float *w, int64_t b, int64_t d, const float *dy,
                            int64_t lddy, float *dx0, int64_t lddx0, float *dxl, int64_t lddxl,
                            float *dw, float *dbias) {
  DEV(x0);
  DEV(xl);
  DEV(w);
  DEV(dy);
  DEV(dx0);
  DEV(dxl);
  DEV(dw);
  DEV(dbias);
  return ameir__cpu_cross_bwd(state, x0, ld0, xl, ldl, w, b, d, dy, lddy, dx0, lddx0, dxl, lddxl,
                              dw, dbias);
}

static int32_t sh_cin_fwd(void *state, const float *x, int64_t ldx, int64_t h, const float *x0,
                          int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w,
                          int64_t h_out, float *y, int64_t ldy) {
  DEV(x);
  DEV(x0);
  DEV(w);
  DEV(y);
  return ameir__cpu_cin_fwd(state, x, ldx, h, x0, ld0, f, b, k, w, h_out, y, ldy);
}

static int32_t sh_cin_bwd(void *state, const float *x, int64_t ldx, int64_t h, const float *x0,
                          int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w,
                          int64_t h_out, const float *dy, int64_t lddy, float *dx, int64_t lddx,
                          float *dx0, int64_t lddx0, float *dw) {
  DEV(x);
  DEV(x0);
  DEV(w);
  DEV(dy);
  DEV(dx);
  DEV(dx0);
  DEV(dw);
  return ameir__cpu_cin_bwd(state, x, ldx, h, x0, ld0, f, b, k, w, h_out, dy, lddy, dx, lddx, dx0,
                            lddx0, dw);
}

/* ---- FiBiNET ---- */

static int32_t sh_field_scale_fwd(void *state, const float *x, int64_t ldx, const float *sc,
                                  int64_t b, int64_t f, int64_t k, float *y, int64_t ldy) {
  DEV(x);
  DEV(sc);
  DEV(y);
  return ameir__cpu_field_scale_fwd(state, x, ldx, sc, b, f, k, y, ldy);
}

static int32_t sh_field_scale_bwd(void *state, const float *x, int64_t ldx, const float *sc,
                                  int64_t b, int64_t f, int64_t k, const float *dy, int64_t lddy,
                                  float *dx, int64_t lddx, float *ds) {
  DEV(x);
  DEV(sc);
  DEV(dy);
  DEV(dx);
  DEV(ds);
  return ameir__cpu_field_scale_bwd(state, x, ldx, sc, b, f, k, dy, lddy, dx, lddx, ds);
}

/* Caser read-out */
static int32_t sh_caser_fwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                            int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p,
                            float *out, int64_t ldo, int32_t *save) {
  DEV(x);
  DEV(len);
  DEV(p);
  DEV(out);
  DEV(save);
  return ameir__cpu_caser_fwd(state, x, len, b, t, d, l, nv, nh, p, out, ldo, save);
}

static int32_t sh_caser_bwd(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                            int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p,
                            const float *dout, int64_t lddo, const int32_t *save, float *dx,
                            float *dp) {
  DEV(x);
  DEV(len);
  DEV(p);
  DEV(dout);
  DEV(save);
  DEV(dx);
  DEV(dp);
  return ameir__cpu_caser_bwd(state, x, len, b, t, d, l, nv, nh, p, dout, lddo, save, dx, dp);
}

/* ---- the table ---- */

static const ameir_ops shadow_ops = {
    .abi_version = AMEIR_OPS_ABI_VERSION,
    .struct_size = (uint32_t)sizeof(ameir_ops),
    .name = "cuda",   /* it stands in for the CUDA module */
    .init = sh_init,
    .shutdown = sh_shutdown,
    .set_threads = sh_set_threads,
    .alloc = sh_alloc,
    .free = sh_free,
    .upload = sh_upload,
    .download = sh_download,
    .memset0 = sh_memset0,
    .copy = sh_copy,
    .sync = sh_sync,
    .gemm = sh_gemm,
    .gemm_strided_batched = sh_gemm_strided_batched,
    .add_bias = sh_add_bias,
    .bias_grad = sh_bias_grad,
    .copy2d = sh_copy2d,
    .axpby = sh_axpby,
    .emb_sum_fwd = sh_emb_sum_fwd,
    .emb_grad_rows = sh_emb_grad_rows,
    .act_fwd = sh_act_fwd,
    .act_bwd = sh_act_bwd,
    .dice_fwd = sh_dice_fwd,
    .dice_bwd = sh_dice_bwd,
    .layernorm_fwd = sh_layernorm_fwd,
    .layernorm_bwd = sh_layernorm_bwd,
    .dropout_fwd = sh_dropout_fwd,
    .dropout_bwd = sh_dropout_bwd,
    .hadamard_fwd = sh_hadamard_fwd,
    .hadamard_bwd = sh_hadamard_bwd,
    .fm_fwd = sh_fm_fwd,
    .fm_bwd = sh_fm_bwd,
    .se_fwd = sh_se_fwd,
    .se_bwd = sh_se_bwd,
    .bce_logits = sh_bce_logits,
    .adam_dense = sh_adam_dense,
    .adam_rows = sh_adam_rows,
    .adam_table_dense = sh_adam_table_dense,
    .sumsq = sh_sumsq,
    .seq_mask = sh_seq_mask,
    .conv1d_fwd = sh_conv1d_fwd,
    .conv1d_bwd = sh_conv1d_bwd,
    .pool3_fwd = sh_pool3_fwd,
    .pool3_bwd = sh_pool3_bwd,
    .gru_fwd = sh_gru_fwd,
    .gru_bwd = sh_gru_bwd,
    .mha_fwd = sh_mha_fwd,
    .mha_bwd = sh_mha_bwd,
    .din_fwd = sh_din_fwd,
    .din_bwd = sh_din_bwd,
    .readout_fwd = sh_readout_fwd,
    .readout_bwd = sh_readout_bwd,
    .dot_rows_fwd = sh_dot_rows_fwd,
    .dot_rows_bwd = sh_dot_rows_bwd,
    .scratch_bytes = NULL,        /* as a device backend: no caller host blocks */
    .set_thread_scratch = NULL,
    .host_alloc = sh_host_alloc,
    .host_free = sh_host_free,
    .upload_async = sh_upload_async,
    .download_async = sh_download_async,
    .cross_fwd = sh_cross_fwd,
    .cross_bwd = sh_cross_bwd,
    .cin_fwd = sh_cin_fwd,
    .cin_bwd = sh_cin_bwd,
    .emb_fields_fwd = sh_emb_fields_fwd,
    .field_scale_fwd = sh_field_scale_fwd,   /* FiBiNET */
    .field_scale_bwd = sh_field_scale_bwd,
    /* Caser read-out */
    .caser_fwd = sh_caser_fwd,
    .caser_bwd = sh_caser_bwd,
};

/* Every function member set except the two scratch members (left NULL on purpose). Keep the
 * assertion on the table's last member. */
_Static_assert(offsetof(ameir_ops, caser_bwd) + sizeof(void (*)(void)) ==
                   sizeof(ameir_ops),
               "shadow.c: struct ameir_ops grew: wrap the new members above");

static void shadow_describe(char *buf, size_t size) {
  if (!buf || !size) return;
  snprintf(buf, size, "shadow backend: the CPU ops behind tagged device pointers (testing only)");
}

/* The one exported symbol: the handshake of src/core/backend/module.h. */
SHADOW_EXPORT int32_t ameir_backend_module_v1(uint32_t host_abi, const ameir_ops **ops,
                                              struct ameir__module_host *host) {
  if (ops) *ops = NULL;
  if (!host || !ops) return AMEIR_EINVAL;
  /* The host struct only grows at its end: read and write only the part both sides know. */
  const size_t need = offsetof(struct ameir__module_host, describe) + sizeof host->describe;
  char *reason = host->reason;
  size_t reason_size = host->reason_size;
  if (reason && reason_size) reason[0] = 0;
  if (host->struct_size < need) {
    if (reason && reason_size)
      snprintf(reason, reason_size, "host services struct of %u bytes, the module needs %zu",
               (unsigned)host->struct_size, need);
    return AMEIR_EVERSION;
  }
  host->module_abi = AMEIR_OPS_ABI_VERSION;
  host->describe = shadow_describe;
  if (host_abi != AMEIR_OPS_ABI_VERSION || host->abi_version != AMEIR_OPS_ABI_VERSION) {
    if (reason && reason_size)
      snprintf(reason, reason_size,
               "the module was built for ops ABI version %u, libameir has ops ABI version %u "
               "(rebuild the module with this libameir)",
               (unsigned)AMEIR_OPS_ABI_VERSION, (unsigned)host_abi);
    return AMEIR_EVERSION;
  }
  g_log = host->log;
  g_set_error = host->set_error;
  if (!cpu()) {
    if (reason && reason_size) snprintf(reason, reason_size, "shadow: no CPU ops table");
    return AMEIR_EUNSUPPORTED;
  }
  *ops = &shadow_ops;
  return AMEIR_OK;
}
