/* The ops vtable: the only way core code reaches a compute backend (DESIGN.md section 4).
 *
 * Rules
 * - Every pointer marked "dev" is device memory obtained from ops->alloc. Core code never
 *   dereferences it: it moves data with upload/download. (On the CPU backend device memory is
 *   host memory, but the core must not rely on that.)
 * - Matrices are row-major. Shapes are in elements. All floats are float32.
 * - Ops return 0 on success or a negative ameir_status; on failure they have already set the
 *   context's error message through ameir__error (the backend receives the context).
 * - Ops are deterministic for a given thread count: no reduction order depends on timing.
 * - The struct starts with abi_version/struct_size/name and only grows at its end. Members are
 *   REQUIRED unless marked optional; optional ones are filled with reference fallbacks by the
 *   core at registration.
 * - Backward ops ACCUMULATE into parameter gradients (+=) and OVERWRITE input gradients (=),
 *   unless said otherwise; this lets a layer's parameter gradient buffer be zeroed once per step.
 */
#ifndef AMEIR_CORE_OPS_H
#define AMEIR_CORE_OPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "ameir/common.h"

/* 2: the asynchronous staging members (host_alloc, host_free, upload_async, download_async) and
 *    the baseline towers' ops (cross_fwd/bwd, cin_fwd/bwd) and emb_fields_fwd; a module built
 *    for 1 is refused */
#define AMEIR_OPS_ABI_VERSION 2

/* Activation kinds (pinned, stored in model files). */
enum ameir__act {
  AMEIR_ACT_IDENTITY = 0,
  AMEIR_ACT_RELU = 1,
  AMEIR_ACT_GELU = 2,    /* exact erf form, as torch.nn.GELU() */
  AMEIR_ACT_SWISH = 3,   /* x * sigmoid(x) */
  AMEIR_ACT_SIGMOID = 4,
  AMEIR_ACT_DICE = 5,    /* stateful: see dice_fwd */
  AMEIR_ACT_COUNT_ = 6
};

struct ameir_context;

typedef struct ameir_ops {
  uint32_t abi_version;  /* AMEIR_OPS_ABI_VERSION */
  uint32_t struct_size;  /* sizeof(struct ameir_ops) as the backend was compiled */
  const char *name;      /* "cpu", "cuda" */

  /* ---- lifetime of the backend instance (one per context) ---- */
  /* Creates backend state for a context with `threads` workers. *state receives it. */
  int32_t (*init)(struct ameir_context *ctx, int32_t threads, void **state);
  void (*shutdown)(void *state);
  /* Changes the thread count (OpenBLAS and the backend's own pool). */
  int32_t (*set_threads)(void *state, int32_t threads);

  /* ---- memory ---- */
  int32_t (*alloc)(void *state, size_t bytes, void **dev);  /* 64-byte aligned, uninitialised */
  void (*free)(void *state, void *dev);                      /* NULL ok */
  int32_t (*upload)(void *state, void *dev_dst, const void *host_src, size_t bytes);
  int32_t (*download)(void *state, void *host_dst, const void *dev_src, size_t bytes);
  int32_t (*memset0)(void *state, void *dev, size_t bytes);
  int32_t (*copy)(void *state, void *dev_dst, const void *dev_src, size_t bytes);
  int32_t (*sync)(void *state);

  /* ---- dense linear algebra ---- */
  /* C[M,N] = alpha * op(A) * op(B) + beta * C; op(X) = X or X^T (trans_* != 0). lda/ldb/ldc
   * are row strides of A, B, C as stored. */
  int32_t (*gemm)(void *state, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                  float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                  float *c, int64_t ldc);
  /* batch_count independent GEMMs; matrix i of A starts at a + i*stride_a (same for B, C). */
  int32_t (*gemm_strided_batched)(void *state, int32_t trans_a, int32_t trans_b, int64_t m,
                                  int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                                  int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b,
                                  float beta, float *c, int64_t ldc, int64_t stride_c,
                                  int64_t batch_count);
  /* y[M,N] (row stride ldy) += bias[N] broadcast over rows. */
  int32_t (*add_bias)(void *state, float *y, int64_t ldy, const float *bias, int64_t m, int64_t n);
  /* dbias[N] += sum over rows of dy[M,N] (row stride lddy). */
  int32_t (*bias_grad)(void *state, const float *dy, int64_t lddy, float *dbias, int64_t m,
                       int64_t n);
  /* dst[M,N] (stride ldd) = src[M,N] (stride lds), or += when accumulate != 0. Used to
   * concatenate features into the MLP input and to split its gradient back. */
  int32_t (*copy2d)(void *state, float *dst, int64_t ldd, const float *src, int64_t lds, int64_t m,
                    int64_t n, int32_t accumulate);
  /* y[i] = alpha*x[i] + beta*y[i], i < n */
  int32_t (*axpby)(void *state, int64_t n, float alpha, const float *x, float beta, float *y);

  /* ---- embeddings ----
   * rows: int32 global row ids, [n, len]; row 0 is the padding row: it contributes nothing in
   * forward and receives no gradient. out[i, :dim] (row stride ldo) = sum_l table[rows[i,l], :].
   * (len = 1 for a univalent field; len = the field's max length for a multi-valued one.) */
  int32_t (*emb_sum_fwd)(void *state, const float *table, int64_t dim, const int32_t *rows,
                         int64_t n, int64_t len, float *out, int64_t ldo);
  /* Sparse row gradient of emb_sum_fwd over a whole batch: given all `count` (row, dout-row)
   * pairs, produce the unique non-zero rows (ascending) and their summed gradients.
   * rows: int32 [count] global rows (0 = skip); src_index: int32 [count], the row of dout each
   * pair reads (dout row stride lddo, width dim). Outputs: uniq_rows (int32 [count] capacity),
   * grad (float [count, dim] capacity, dense rows matching uniq_rows), *n_uniq (HOST pointer).
   * Deterministic: each unique row's sum is taken in ascending pair order. */
  int32_t (*emb_grad_rows)(void *state, const int32_t *rows, const int32_t *src_index,
                           int64_t count, const float *dout, int64_t lddo, int64_t dim,
                           int32_t *uniq_rows, float *grad, int64_t *n_uniq);

  /* ---- element-wise activations (not Dice) ---- */
  int32_t (*act_fwd)(void *state, int32_t act, const float *x, float *y, int64_t n);
  /* dx = dy * act'(x) (y = act(x) given too, for cheap sigmoid/swish derivatives) */
  int32_t (*act_bwd)(void *state, int32_t act, const float *x, const float *y, const float *dy,
                     float *dx, int64_t n);
  /* Dice (DIN): over x[M,N], per column j: training: mean/var over the batch rows (biased var),
   * running_mean/var updated with momentum 0.1 (unbiased var, as torch BatchNorm1d);
   * inference: running stats. p = sigmoid((x-mean)/sqrt(var+eps)), y = p*x + (1-p)*alpha*x.
   * save: float [2*N] scratch (mean, inv_std) kept for backward. */
  int32_t (*dice_fwd)(void *state, const float *x, float *y, int64_t m, int64_t n,
                      const float *alpha, float *running_mean, float *running_var, float eps,
                      int32_t training, float *save);
  /* dx overwritten; dalpha accumulated. Only valid after a training-mode forward. */
  int32_t (*dice_bwd)(void *state, const float *x, const float *dy, float *dx, int64_t m,
                      int64_t n, const float *alpha, float *dalpha, float eps, const float *save);

  /* ---- normalisation ---- */
  /* LayerNorm over the last dim of x[M,N]: y = (x-mu)*rstd*gamma + beta; save: float[2*M]. */
  int32_t (*layernorm_fwd)(void *state, const float *x, float *y, int64_t m, int64_t n,
                           const float *gamma, const float *beta, float eps, float *save);
  int32_t (*layernorm_bwd)(void *state, const float *x, const float *dy, float *dx, int64_t m,
                           int64_t n, const float *gamma, float *dgamma, float *dbeta,
                           const float *save);

  /* ---- dropout: y = x * mask / (1-p), mask[i] drawn from a counter-based RNG keyed by
   * (seed, offset + i), so every backend draws the same mask for the same seed. mask: uint8. */
  int32_t (*dropout_fwd)(void *state, const float *x, float *y, uint8_t *mask, int64_t n, float p,
                         uint64_t seed, uint64_t offset);
  int32_t (*dropout_bwd)(void *state, const float *dy, float *dx, const uint8_t *mask, int64_t n,
                         float p);

  /* ---- interactions (Stage 2): Hadamard products of field embeddings ----
   * e: [B, F, K] field embeddings (row stride lde between samples, K contiguous per field).
   * fields: int32 [n_inter * max_order] field indices, -1 padded; order[i] = count used.
   * out: [B, n_inter, K] with row stride ldo. */
  int32_t (*hadamard_fwd)(void *state, const float *e, int64_t lde, int64_t b, int64_t k,
                          const int32_t *fields, const int32_t *order, int64_t n_inter,
                          int64_t max_order, float *out, int64_t ldo);
  /* de (ACCUMULATED, same layout as e) += d(out)/de . dout. */
  int32_t (*hadamard_bwd)(void *state, const float *e, int64_t lde, int64_t b, int64_t k,
                          const int32_t *fields, const int32_t *order, int64_t n_inter,
                          int64_t max_order, const float *dout, int64_t lddo, float *de);

  /* ---- FM second-order term over e[B, F, K] (row stride lde): out[b] (+= when accumulate)
   * = 0.5 * sum_k ((sum_f e)^2 - sum_f e^2). Backward accumulates into de. */
  int32_t (*fm_fwd)(void *state, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                    float *out, int32_t accumulate);
  int32_t (*fm_bwd)(void *state, const float *e, int64_t lde, int64_t b, int64_t f, int64_t k,
                    const float *dout, float *de);

  /* ---- SE shortcut, eq. (5) ----
   * q: [B, S, K] (row stride ldq), v: [K]; z = q v: [B, S];
   * hid = relu(z W1^T + b1): [B, R] with W1 [R, S], b1 [R];
   * a = sigmoid(hid W2^T + b2): [B, S] with W2 [S, R], b2 [S];
   * out[b, :K] (row stride ldo) = sum_s a[b,s] q[b,s,:].
   * save: float [B * (S + R + S)] (z, hid, a) kept for backward. */
  int32_t (*se_fwd)(void *state, const float *q, int64_t ldq, int64_t b, int64_t s, int64_t k,
                    const float *v, const float *w1, const float *b1, int64_t r, const float *w2,
                    const float *b2, float *out, int64_t ldo, float *save);
  /* dq ACCUMULATED (same layout as q); dv, dw1, db1, dw2, db2 accumulated. */
  int32_t (*se_bwd)(void *state, const float *q, int64_t ldq, int64_t b, int64_t s, int64_t k,
                    const float *v, const float *w1, const float *b1, int64_t r, const float *w2,
                    const float *b2, const float *dout, int64_t lddo, const float *save,
                    float *dq, float *dv, float *dw1, float *db1, float *dw2, float *db2);

  /* ---- loss ----
   * Binary cross-entropy with logits, mean over n: *loss (HOST pointer, double) and
   * dlogit[i] = (sigmoid(logit[i]) - y[i]) * scale (scale = 1/n for the mean). dlogit may be
   * NULL (evaluation). prob (optional, may be NULL) receives sigmoid(logit). */
  int32_t (*bce_logits)(void *state, const float *logit, const float *y, int64_t n, float scale,
                        double *loss, float *dlogit, float *prob);

  /* ---- optimisers ----
   * Adam (Kingma & Ba) with bias correction, step t >= 1 (torch.optim.Adam semantics):
   * g' = g + l2 * p; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
   * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). */
  int32_t (*adam_dense)(void *state, float *p, const float *g, float *m, float *v, int64_t n,
                        float lr, float b1, float b2, float eps, float l2, int64_t t);
  /* Lazy Adam on rows of a table [*, dim] (torch.optim.SparseAdam semantics: only the listed
   * rows and their moments change; the step count t is global). rows: uniq ascending, grad
   * [n_rows, dim] as emb_grad_rows produced them. */
  int32_t (*adam_rows)(void *state, float *table, int64_t dim, const int32_t *rows,
                       const float *grad, int64_t n_rows, float *m, float *v, float lr, float b1,
                       float b2, float eps, float l2, int64_t t);
  /* Dense Adam on a whole table where the gradient is sparse: rows not listed get g = 0 (their
   * moments decay and they keep moving), listed rows get their gradient: exactly
   * torch.optim.Adam over a dense embedding gradient, without materialising it. */
  int32_t (*adam_table_dense)(void *state, float *table, int64_t n_table_rows, int64_t dim,
                              const int32_t *rows, const float *grad, int64_t n_rows, float *m,
                              float *v, float lr, float b1, float b2, float eps, float l2,
                              int64_t t);
  /* sum of squares of x[n] into *out (HOST double), for gradient-norm checks. optional */
  int32_t (*sumsq)(void *state, const float *x, int64_t n, double *out);

  /* ==== Stage 1: behaviour sequences (ABI version 1 continues; members appended) ====
   * A sequence batch is x[B, T, D] (row-major, contiguous) with len[B] (int32, device) valid
   * positions 0..len-1 (left-aligned; len may be 0). Every op below treats positions >= len as
   * absent: they are never read as data (a SAME-padded conv or a pooling window sees zeros /
   * nothing there) and are written as 0 in outputs; their gradients are 0. So adding padding
   * never changes a result. Parameter gradients ACCUMULATE, input gradients OVERWRITE, as above. */

  /* y = x with positions >= len zeroed (x == y allowed). */
  int32_t (*seq_mask)(void *state, float *y, const float *x, const int32_t *len, int64_t b,
                      int64_t t, int64_t d);
  /* 1-D convolution over time, D in = D out, stride 1, SAME zero padding:
   * y[b,i,o] = bias[o] + sum_{j<k, c} w[o, c, j] * x[b, i + (j - (k-1)/2) * dil, c]
   * (inputs outside [0, len) are 0). w: [D, D, k] (torch Conv1d layout). k odd. */
  int32_t (*conv1d_fwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                        int64_t d, const float *w, const float *bias, int32_t k, int32_t dil,
                        float *y);
  int32_t (*conv1d_bwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                        int64_t d, const float *w, int32_t k, int32_t dil, const float *dy,
                        float *dx, float *dw, float *dbias);
  /* Pooling, kernel 3, stride 1, SAME: avg divides by the number of in-sequence positions in
   * the window; max takes the max over them. kind: 0 avg, 1 max. save: int32 [B*T*D] (argmax
   * for max; unused for avg, may be NULL). */
  int32_t (*pool3_fwd)(void *state, int32_t kind, const float *x, const int32_t *len, int64_t b,
                       int64_t t, int64_t d, float *y, int32_t *save);
  int32_t (*pool3_bwd)(void *state, int32_t kind, const int32_t *len, int64_t b, int64_t t,
                       int64_t d, const float *dy, const int32_t *save, float *dx);
  /* Bidirectional GRU (torch.nn.GRU semantics: r, z, n gates; n = tanh(W_in x + b_in +
   * r * (W_hn h + b_hn)); h' = (1 - z) * n + z * h), hidden hd = d/2 per direction, outputs
   * concatenated [forward | backward] -> y[B,T,D]. The backward direction starts at position
   * len-1 (packed sequences). Parameters per direction dir in {0,1}, at
   * p + dir * gru_params(d): w_ih [3hd, d], w_hh [3hd, hd], b_ih [3hd], b_hh [3hd] in that
   * order (gate order r, z, n). save: float [gru_save(b,t,d)] for backward. */
  int32_t (*gru_fwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, const float *p, float *y, float *save);
  int32_t (*gru_bwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, const float *p, const float *dy, const float *save, float *dx,
                     float *dp);
  /* Bidirectional multi-head self-attention: qkv = x w_qkv^T + b_qkv (w_qkv [3d, d]), heads h,
   * scale 1/sqrt(d/h), keys >= len masked out of the softmax, out = concat(heads) w_o^T + b_o
   * (w_o [d, d]); rows >= len of y are 0; a row with len 0 gives 0. p = [w_qkv, b_qkv, w_o,
   * b_o]. save: float [mha_save(b,t,d,h)]. */
  int32_t (*mha_fwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, int32_t heads, const float *p, float *y, float *save);
  int32_t (*mha_bwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, int32_t heads, const float *p, const float *dy, const float *save,
                     float *dx, float *dp);
  /* DIN local activation unit: for each valid position i, u = [h_i, q, h_i - q, h_i * q] (4d),
   * a_i = w3^T sigmoid(W2 sigmoid(W1 u + b1) + b2) + b3 (hidden sizes a1, a2; unnormalised, as
   * DIN), attn[b,i] = a_i (0 for i >= len). Outputs (either may be NULL):
   *   pooled[b, :d] (row stride ldp) = sum_i a_i h_i       (the read-out)
   *   scaled[b, i, :] = a_i h_i                             (the layer inside a block)
   * q: [B, d] (row stride ldq). p = [W1 (a1 x 4d), b1, W2 (a2 x a1), b2, w3 (a2), b3].
   * save: float [din_save(b,t,d,a1,a2)]. Backward takes d(pooled) and/or d(scaled) (NULL =
   * zero) and writes dx (overwrite), dq (ACCUMULATE, row stride ldq), dp (accumulate). */
  int32_t (*din_fwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                     const float *p, float *pooled, int64_t ldp, float *scaled, float *save);
  int32_t (*din_bwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                     int64_t d, const float *q, int64_t ldq, int32_t a1, int32_t a2,
                     const float *p, const float *dpooled, int64_t lddp, const float *dscaled,
                     const float *save, float *dx, float *dq, float *dp);
  /* Read-out: sum[b, :] (row stride lds) = sum_{i<len} x[b,i,:]; last[b, :] (stride ldl) =
   * x[b, len-1, :] (0 when len is 0). Either output may be NULL. Backward ACCUMULATES into dx
   * (so several read-outs and the blocks' residual path can add up). */
  int32_t (*readout_fwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                         int64_t d, float *sum, int64_t lds, float *last, int64_t ldl);
  int32_t (*readout_bwd)(void *state, const int32_t *len, int64_t b, int64_t t, int64_t d,
                         const float *dsum, int64_t lds, const float *dlast, int64_t ldl,
                         float *dx);
  /* Row-wise dot products for the retrieval head: s[b, j] = sum_k e[rows[b*c + j], k] * u[b, k]
   * for c candidates per row (rows: global table rows, int32 [B*c]); e: table [*, k].
   * Backward: du[b,:] = sum_j ds[b,j] e[rows[b,j]] (overwrite) and, for the table, the
   * per-pair gradient g[b*c + j, :] = ds[b,j] * u[b,:] (overwrite; feed emb_grad_rows with
   * src_index = identity). */
  int32_t (*dot_rows_fwd)(void *state, const float *e, int64_t k, const int32_t *rows,
                          int64_t b, int64_t c, const float *u, float *s);
  int32_t (*dot_rows_bwd)(void *state, const float *e, int64_t k, const int32_t *rows,
                          int64_t b, int64_t c, const float *u, const float *ds, float *du,
                          float *g);

  /* ==== Caller-provided scratch (ABI version 1 continues; members appended) ====
   * Some ops take scratch memory of their own (the CPU backend: conv1d_fwd, mha_fwd, gru_fwd,
   * din_fwd, and a few backward ops). With these two members the core can run such ops with
   * no allocation: it asks for a bound, carves a block of that size from a caller's workspace
   * and hands it to the backend for the calling thread (ameir_model_predict with a workspace).
   * Both optional. Like every optional member, the registry fills them from the CPU reference
   * for a module that leaves them out; the core uses them with the CPU backend only (a device
   * backend's buffers cannot live in a caller's host block anyway), and where a table lacks
   * them (NULL) it refuses a caller's block for a model with such ops. */

  /* Upper bound, in bytes, of the scratch op `op` (enum ameir__scratch_op) takes for a batch
   * of shape (b, t, d), any len[], `save` given (non-NULL), at the backend's current thread
   * count. Per op: conv1d_fwd: arg1 = k, arg2 = dil; mha_fwd: arg1 = heads; gru_fwd: none;
   * din_fwd: arg1 = a1, arg2 = a2 (unused args are ignored). 0: the op takes no scratch;
   * SIZE_MAX: an op the backend cannot bound (or an unknown op id). optional */
  size_t (*scratch_bytes)(void *state, int32_t op, int64_t b, int64_t t, int64_t d, int32_t arg1,
                          int32_t arg2);
  /* Makes buf[size] (host memory, any alignment) the scratch of every op the CALLING thread
   * runs on this backend instance until it is called again with buf NULL (which clears it).
   * While one is set the backend allocates no scratch on that thread: an op that needs more
   * than the block holds fails with AMEIR_EINVAL instead. The block must stay valid until it
   * is cleared; ops called from other threads are not affected. optional */
  int32_t (*set_thread_scratch)(void *state, void *buf, size_t size);

  /* ==== Asynchronous staging (ABI version 2: members appended) ====
   * Let the core overlap its host work (gathering the next batch's ids) with the device's
   * (scoring the current batch): a batch is gathered into host memory from host_alloc, queued
   * with upload_async, scored, and its scores queued back with download_async; the core calls
   * sync before it reuses or reads those host buffers. Required (a module built for version 1
   * is refused: the CPU reference's memcpy would be wrong for device memory). On the CPU
   * backend they are malloc, free and plain copies. */

  /* Host memory the backend copies from and to without a staging copy of its own (CUDA: pinned
   * memory), 64-byte aligned, uninitialised. Costly: allocate once per workspace, not per batch. */
  int32_t (*host_alloc)(void *state, size_t bytes, void **host);
  void (*host_free)(void *state, void *host);   /* NULL ok */
  /* Queue a copy behind the work already queued and return. The host buffer must come from
   * host_alloc; an upload's source must stay unchanged, a download's destination unread, until
   * a later sync (or a synchronous upload/download) returns. Copies and ops run in the order
   * they were queued, so an op queued after upload_async reads the new data. */
  int32_t (*upload_async)(void *state, void *dev_dst, const void *host_src, size_t bytes);
  int32_t (*download_async)(void *state, void *host_dst, const void *dev_src, size_t bytes);

  /* ==== Baseline models (members appended) ====
   * Layers of the comparison models of the paper's Table 3 that the ops above cannot express:
   * DCN's cross layer and xDeepFM's CIN. Both pairs required. Every row stride below must be at
   * least its row's width (AMEIR_EINVAL otherwise); the gaps between rows are neither read nor
   * written. Sizes may be 0 (nothing to do, except that overwritten outputs are still zeroed). */

  /* DCN cross layer (Wang et al. 2017, eq. (3)), for each row r < b:
   *   s_r = xl_r . w;   y_r = x0_r * s_r + bias + xl_r          (width d)
   * x0, xl, y: [b, d] with row strides ld0, ldl, ldy; w, bias: [d]. xl may equal x0 (the first
   * layer); y aliases neither. */
  int32_t (*cross_fwd)(void *state, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                       const float *w, const float *bias, int64_t b, int64_t d, float *y,
                       int64_t ldy);
  /* Backward of cross_fwd, s recomputed (no save buffer); with ds_r = dy_r . x0_r:
   *   dx0_r += dy_r * s_r       ACCUMULATED: every layer of the network adds into x0's gradient
   *   dxl_r  = dy_r + ds_r * w  overwritten
   *   dw += sum_r ds_r xl_r;  dbias += sum_r dy_r   (accumulated)
   * dy, dx0, dxl: [b, d] with row strides lddy, lddx0, lddxl. dx0 and dxl never alias each
   * other nor an input (xl may still equal x0). */
  int32_t (*cross_bwd)(void *state, const float *x0, int64_t ld0, const float *xl, int64_t ldl,
                       const float *w, int64_t b, int64_t d, const float *dy, int64_t lddy,
                       float *dx0, int64_t lddx0, float *dxl, int64_t lddxl, float *dw,
                       float *dbias);
  /* xDeepFM CIN layer (Lian et al. 2018, eq. (6); no activation, no bias): per row r, x holds
   * h feature maps of width k (x[r*ldx + i*k + t], i < h) and x0 the f field embeddings
   * (x0[r*ld0 + j*k + t], j < f); w: [h_out, h*f] row-major;
   *   y[r*ldy + o*k + t] = sum_{i<h, j<f} w[o*h*f + i*f + j] * x[r,i,t] * x0[r,j,t]
   * Row strides ldx >= h*k, ld0 >= f*k, ldy >= h_out*k. x may equal x0 (the first layer,
   * h = f); y aliases neither. Backends run it as GEMMs over the outer products of a block of
   * rows at a time (scratch of their own), so results are bit-identical for the same thread
   * count, as sgemm's are. */
  int32_t (*cin_fwd)(void *state, const float *x, int64_t ldx, int64_t h, const float *x0,
                     int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w, int64_t h_out,
                     float *y, int64_t ldy);
  /* Backward of cin_fwd: dx (row stride lddx, overwritten), dx0 (row stride lddx0, ACCUMULATED:
   * every CIN layer adds into x0's gradient), dw ([h_out, h*f], accumulated); dy: [b, h_out*k]
   * with row stride lddy. dx and dx0 never alias each other nor an input (x may still equal
   * x0: the caller then adds dx into dx0). */
  int32_t (*cin_bwd)(void *state, const float *x, int64_t ldx, int64_t h, const float *x0,
                     int64_t ld0, int64_t f, int64_t b, int64_t k, const float *w, int64_t h_out,
                     const float *dy, int64_t lddy, float *dx, int64_t lddx, float *dx0,
                     int64_t lddx0, float *dw);

  /* ==== Several univalent fields in one lookup (ABI version 2 continues; appended) ====
   * out[i, j*dim + k] (row stride ldo) = table[rows[j*n + i], k] for i < n, j < f, k < dim:
   * rows are field-major [f, n] (as the core stages them); a row <= 0 (padding) gives zeros.
   * The same bits as f calls of emb_sum_fwd with len 1, in one pass: Criteo-like data has ~40
   * univalent fields, and a lookup per field was ~40 kernel launches per batch on a GPU (and
   * ~40 thread-team starts on the CPU). The gradient is emb_grad_rows' as for emb_sum_fwd. */
  int32_t (*emb_fields_fwd)(void *state, const float *table, int64_t dim, const int32_t *rows,
                            int64_t n, int64_t f, float *out, int64_t ldo);

  /* ==== FiBiNET (ABI version 2 continues; members appended) ====
   * The SENET layer's re-weighting (Huang et al. 2019, section 3.3, "Re-Weight"): each of f
   * fields' k-wide embeddings scaled by its own weight, v_j = a_j e_j. The squeeze (a mean over
   * k), the excitation (two small dense layers) and the bilinear interactions run on gemm,
   * add_bias, act and hadamard; this is the one step those cannot express. Both required.
   *   y[r*ldy + j*k + t] = s[r*f + j] * x[r*ldx + j*k + t]      r < b, j < f, t < k
   * Row strides ldx, ldy >= f*k (AMEIR_EINVAL otherwise); the gaps are neither read nor written.
   * y may equal x only with ldy == ldx (in place). */
  int32_t (*field_scale_fwd)(void *state, const float *x, int64_t ldx, const float *s, int64_t b,
                             int64_t f, int64_t k, float *y, int64_t ldy);
  /* Backward of field_scale_fwd:
   *   dx[r*lddx + j*k + t] += s[r*f + j] * dy[r*lddy + j*k + t]   ACCUMULATED (dx NULL: skipped)
   *   ds[r*f + j] = sum_{t<k} dy[r*lddy + j*k + t] * x[r*ldx + j*k + t]   overwritten, t ascending
   * dx aliases neither x nor dy. */
  int32_t (*field_scale_bwd)(void *state, const float *x, int64_t ldx, const float *s, int64_t b,
                             int64_t f, int64_t k, const float *dy, int64_t lddy, float *dx,
                             int64_t lddx, float *ds);

  /* ==== Caser read-out (members appended; feature: Caser as a retrieval baseline) ====
   * Caser (Tang and Wang, WSDM 2018, section 3.2) over the LAST l positions of a sequence
   * batch x [b, t, d] with len[b] (ops "Sequence batches" above): window slot j < l holds
   * E[j, :] = x[r, len - l + j, :], or zeros where len - l + j < 0 (a row shorter than l). p
   * holds the parameters (ameir__caser_params), in this order:
   *   Wh_h [nh, h, d] for h = 1..l (horizontal filters of height h, one after another),
   *   bh [l, nh], Wv [nv, l], bv [nv].
   * out[r, :] (row stride ldo >= ameir__caser_width) = [o_h, o_v]:
   *   z_{h,n,i} = bh[h-1, n] + sum_{j<h, c<d} Wh_h[n, j, c] E[i + j, c]       i = 0..l-h
   *   o_h[(h-1) nh + n] = ReLU(max_i z_{h,n,i})       (max-pool over time after the ReLU)
   *   o_v[n d + c] = bv[n] + sum_{j<l} Wv[n, j] E[j, c]
   * Max-pool ties: the FIRST maximum (the smallest i) is the argmax, and only it receives the
   * gradient (none when the maximum is <= 0: the ReLU's). save (int32 [b, l*nh], NULL allowed
   * in the forward) gets each argmax i, or -1 when the maximum is <= 0; the backward reads it.
   * Backward: dx ACCUMULATES (as readout_bwd: the read-outs add up into one gradient), dp
   * accumulates; rows >= len of dx are not touched. l >= 1, l <= t (as the model checks),
   * nv, nh >= 0; AMEIR_EINVAL otherwise. Both required. */
  int32_t (*caser_fwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                       int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p, float *out,
                       int64_t ldo, int32_t *save);
  int32_t (*caser_bwd)(void *state, const float *x, const int32_t *len, int64_t b, int64_t t,
                       int64_t d, int32_t l, int32_t nv, int32_t nh, const float *p,
                       const float *dout, int64_t lddo, const int32_t *save, float *dx,
                       float *dp);
} ameir_ops;

/* Op ids of scratch_bytes (pinned: a module may answer them). */
enum ameir__scratch_op {
  AMEIR_SCRATCH_CONV1D_FWD = 1,
  AMEIR_SCRATCH_MHA_FWD = 2,
  AMEIR_SCRATCH_GRU_FWD = 3,
  AMEIR_SCRATCH_DIN_FWD = 4
};

/* Sizes (in floats) of the parameter blocks and save buffers of the coarse ops above. */
static inline int64_t ameir__gru_params(int64_t d) {
  int64_t hd = d / 2;
  return 3 * hd * d + 3 * hd * hd + 6 * hd;
}
static inline int64_t ameir__gru_save(int64_t b, int64_t t, int64_t d) {
  return 2 * b * t * (d / 2) * 5;   /* per direction: r, z, n, h_prev, W_hn h + b_hn */
}
static inline int64_t ameir__mha_params(int64_t d) { return 3 * d * d + 3 * d + d * d + d; }
static inline int64_t ameir__mha_save(int64_t b, int64_t t, int64_t d, int64_t h) {
  return b * t * 3 * d + b * h * t * t + b * t * d;   /* qkv, softmax probabilities, context */
}
static inline int64_t ameir__din_params(int64_t d, int64_t a1, int64_t a2) {
  return a1 * 4 * d + a1 + a2 * a1 + a2 + a2 + 1;
}
static inline int64_t ameir__din_save(int64_t b, int64_t t, int64_t d, int64_t a1, int64_t a2) {
  (void)d;
  return b * t * (a1 + a2 + 1);   /* both hidden activations and the weight per position */
}

/* Caser read-out (caser_fwd): its parameters and output width, in floats. */
static inline int64_t ameir__caser_params(int64_t l, int64_t d, int64_t nv, int64_t nh) {
  return nh * d * l * (l + 1) / 2 + l * nh + nv * l + nv;
}
static inline int64_t ameir__caser_width(int64_t l, int64_t d, int64_t nv, int64_t nh) {
  return l * nh + nv * d;
}

/* Adam's per-step constants (torch.optim.Adam: step = lr / (1 - b1^t); denominator
 * sqrt(v) / sqrt(1 - b2^t) + eps), computed on the host in double. Every backend takes them from
 * here, so that their updates can be bit-identical. */
typedef struct {
  float b1, b2, c1, c2, eps, l2, step, bc2s;
} ameir__adam_k;
static inline ameir__adam_k ameir__adam_consts(float lr, float b1, float b2, float eps, float l2,
                                               int64_t t) {
  ameir__adam_k k;
  double tt = (double)(t < 1 ? 1 : t);
  k.b1 = b1;
  k.b2 = b2;
  k.c1 = 1.0f - b1;
  k.c2 = 1.0f - b2;
  k.eps = eps;
  k.l2 = l2;
  k.step = (float)((double)lr / (1.0 - pow((double)b1, tt)));
  k.bc2s = (float)sqrt(1.0 - pow((double)b2, tt));
  return k;
}

/* The CPU backend's table (src/cpu). */
const ameir_ops *ameir__cpu_ops(void);

#endif
