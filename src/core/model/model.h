/* Internal layout of a model: the three-stage backbone over the ops vtable (Stages 0, 2, 3
 * and the baseline extras; Stage 1 comes with the behaviour-modeling work). */
#ifndef AMEIR_CORE_MODEL_H
#define AMEIR_CORE_MODEL_H

#include "../base/base.h"
#include "../data/dataset.h"
#include "arch.h"
#include "ameir/model.h"

typedef struct {
  int64_t emb;             /* K */
  int64_t batch;
  int64_t eval_batch;
  int32_t epochs;
  double lr;
  int32_t lr_schedule;     /* 0 constant, 1 cosine */
  double l2;
  double dropout;
  int32_t sparse_adam;     /* 0: torch Adam over dense gradients; 1: lazy row Adam */
  double beta1, beta2, eps;
  int32_t emb_init;        /* 0 normal(init_std), 1 uniform(+-init_range) */
  double init_std, init_range;
  int32_t mlp_init;        /* 0 he_normal (paper), 1 torch default U(+-1/sqrt(fan_in)) */
  int32_t shuffle;
  int32_t patience;
  int32_t early_metric;    /* 0 auc, 1 logloss */
  int32_t restore_best;
  int64_t max_steps;       /* 0 = no limit */
  int32_t neg;             /* retrieval: sampled negatives per row (eq. 7) */
  int32_t positives;       /* retrieval: the next `positives` items of a training row are positives (D.2) */
  int32_t neg_unseen;      /* retrieval: 0 uniform over all items, 1 items the user never touched */
  int32_t eval_sampled;    /* retrieval evaluation: 0 full ranking, 1 target + eval_negatives */
  int32_t eval_negatives;
  int32_t loss_bpr;        /* retrieval: 0 sampled BCE (eq. 7), 1 BPR: -log s(s_pos - s_neg) per pair */
  char gauc_field[64];     /* field that names the user for GAUC */
  int64_t timing_warmup;   /* steps left out of train_samples_per_s (benchmarks) */
} ameir__train_opts;

/* Statistics of the last training run (ameir_model_get_stat keys in brackets). */
typedef struct {
  double train_seconds;    /* [train_seconds] wall time of the training loop, evaluation excluded */
  double eval_seconds;     /* [eval_seconds] validation passes during training */
  int64_t samples;         /* [train_samples] */
  int64_t steps;           /* [train_steps] */
  double loss_first;       /* [train_loss_first] mean over the first up-to-50 steps */
  double loss_last;        /* [train_loss_last] mean over the last up-to-50 steps */
  int32_t epochs_done;     /* [epochs] */
  int32_t best_epoch;      /* [best_epoch] 1-based, 0 without early stopping */
  double best_valid;       /* [best_valid] */
  double timed_seconds;    /* after timing_warmup steps, evaluation excluded */
  double t_stage, t_forward, t_backward;   /* [time_stage] ... seconds inside each phase */
  int64_t timed_samples;
} ameir__train_stats;

/* One MLP layer's parameters and activations. */
typedef struct {
  int64_t in, out;
  int32_t act;
  int64_t w, b, alpha;     /* offsets in the flat parameter buffer (alpha: Dice, else -1) */
  int64_t ldw;             /* row stride of w: in, or the supernet's K0 when w is a slice */
  int64_t rmean, rvar;     /* offsets in the stats buffer (Dice), else -1 */
} ameir__mlp_p;

struct ameir_model {
  ameir_context *ctx;
  const ameir_ops *ops;
  void *bs;                /* backend state */
  ameir_arch *arch;
  ameir__train_opts opt;
  int32_t started;         /* a training step has run (emb is fixed) */
  int32_t task;            /* AMEIR_TASK_CTR or AMEIR_TASK_RETRIEVAL (from the dataset) */
  int32_t item_field;      /* retrieval: dataset field of the next item, -1 otherwise */
  int64_t item_base, item_vocab;   /* retrieval: its embedding rows (ids 1..vocab-1 = items);
                                    * with `extras: linear` L[item_base + id] is the item's bias */
  int32_t n_cand;          /* retrieval: 1 positive + neg negatives per row */
  float *item_prior;       /* retrieval with item biases: their initial values [item_vocab],
                            * log(1 + the item's count as a training target) (host; POP) */
  int64_t out_ld;          /* retrieval: row stride of the [K, h_last (+ K)] output matrix */

  /* schema snapshot */
  int32_t n_schema_fields; /* fields of the dataset it was made for */
  ameir__field *schema;    /* copy of their metadata and vocabularies (no data) */
  char *ds_config;         /* the dataset's YAML and overrides (to encode new files), or NULL */
  char **ds_overrides;
  int32_t n_ds_overrides;
  int32_t n_cat;           /* embedded non-sequential fields (univalent first, then multi) */
  int32_t *cat_field;      /* dataset field index per embedded slot */
  int32_t *cat_len;
  int64_t *cat_base;       /* first embedding row of each field (row = base + id) */
  int64_t *cat_vocab;
  int32_t n_dense;
  int32_t *dense_field;
  int64_t emb_rows;        /* 1 + sum vocab (row 0 = padding) */
  int64_t lin_total;       /* sum of cat_len: ids per sample */
  uint64_t schema_hash;

  /* stage 1 (src/core/model/stage1.c) */
  int32_t stage1;          /* behaviours go through Stage 1 (else sum-pooled fields, or none) */
  int32_t n_seq, seq_t;    /* S fields per behaviour element, maximum length T */
  int32_t *seq_field;      /* dataset field of each */
  int64_t *seq_base, *seq_vocab;
  int32_t *seq_target;     /* slot in e of the tied target field, or -1 */
  int32_t has_target;
  int64_t d_seq;           /* S * K */
  int64_t off_sum, off_last, off_att;   /* read-outs in x0, -1 when absent */
  int32_t din_a1, din_a2;
  int64_t *blk_g, *blk_b, *blk_p;       /* per block: LN gamma, beta, layer params (-1 none) */
  int64_t ro_att;          /* read-out attention parameters, -1 none */
  int64_t mask_row;        /* cloze (BERT4Rec): the [mask] token's embedding row, after the
                            * items' (never a candidate); 0 without cloze (row 0 is the
                            * padding row, never the mask) */
  int64_t off_caser, caser_p;   /* Caser read-out: its columns in x0 and its parameters, -1 none */
  int64_t pos_p;           /* `positions: learned`: the position table [T, d] in the parameters, -1 none */

  /* stage 2 */
  int32_t n_inter, max_order;
  int32_t *inter_fields;   /* [n_inter * max_order], slot indices, -1 padded (host) */
  int32_t *inter_order;

  /* layout of the MLP input x0 = [e (F*K) | p (M*K) | dense | IPNN's inner products] */
  int64_t d0, off_e, off_p, off_d;
  int64_t off_ip, n_ip;    /* IPNN: n_ip = F (F - 1) / 2 pairs at off_ip, or 0 */
  int32_t *ip_f_dev, *ip_o_dev;   /* dev: IPNN's pair list (fields [n_ip * 2], orders 2) */
  /* FiBiNET (fibinet.c): x0 gains [p | q] (2 n_fb K) at off_fb, and the MLP reads x0 from
   * mlp_in0 on (off_d: [dense | IPNN | p | q], not the embeddings; 0 otherwise) */
  int64_t off_fb, n_fb, mlp_in0;
  int64_t fb_p, fb_r;      /* parameters W1 [R, F], b1 [R], W2 [F, R], b2 [F], W [K, K], W' [K, K] at
                            * fb_p; R = fb_r hidden units */
  int32_t *fb_f_dev, *fb_o_dev;   /* dev: the pairs (i, F + j), i < j, over [U | E] rows; orders 2 */
  int64_t h_last;          /* width of the last MLP layer, or d0 without MLP */

  /* parameters */
  int64_t n_params;        /* flat dense parameters */
  ameir__mlp_p *mlp;
  int64_t out_w, out_b;    /* out_w has h_last (+ K with SE) entries */
  int64_t out_se;          /* CTR: the SE part of the output weights (out_w + h_last, or the
                            * supernet's slot after its widest MLP) */
  int64_t se_v, se_w1, se_b1, se_w2, se_b2, se_r, se_s;
  int64_t dl_w;            /* dense first-order weights, -1 if none */
  /* towers (src/core/model/tower.c): cross layer l's w at cross_p + 2 l d0 (its b follows),
   * CIN layer k's W at cin_p[k], the towers' output weights at tw_out ([x_L | p^1 | p^2 ...]) */
  int64_t cross_p, cin_p[AMEIR_ARCH_MAX_TOWER], att_p[AMEIR_ARCH_MAX_TOWER], tw_out, tw_width;
  int64_t n_stats;

  float *P, *G, *M, *V;    /* dev: flat params, grads, Adam moments */
  float *stats;            /* dev: Dice running stats */
  float *E, *EM, *EV;      /* dev: embedding table and its moments */
  float *L, *LM, *LV;      /* dev: first-order table (extras linear) */
  int64_t step;            /* optimiser steps taken */
  ameir__train_stats stats_;
  int32_t *inter_f_dev, *inter_o_dev;   /* dev: stage 2 field lists (uploaded with the params) */
  /* Supernet hooks (src/core/search): a supernet is one model whose flat buffer also holds a
   * bank of every candidate; a child is this model with the offsets and arch set to its
   * choices. Ordinary models leave these at their defaults (sn_pj -1, no segments). */
  int32_t sn_max;          /* workspaces sized for any child (every buffer of every block/layer) */
  int64_t sn_pj;           /* step 2: projection W_j [mlp[0].out, K] of the sampled interaction,
                            * used for x0's p columns instead of the first layer's own ones */
  int32_t sn_ngroup;       /* >0 (step 2 training): the batch's rows in groups, each with its own
                            * interaction (fields at inter_f_dev + g * max_order, order at
                            * inter_o_dev + g) and projection */
  int64_t *sn_group;       /* [3 * sn_ngroup]: first row, rows, projection offset */
  int32_t sn_nseg;         /* >0: the optimiser and the gradient reset touch only these ranges */
  int32_t sn_reuse_x0;     /* the forward keeps x0 (Stages 0-2) from the previous forward of the
                            * same rows: step 3 scores many MLPs over fixed blocks and interactions */
  int64_t *sn_seg;         /* [2 * sn_nseg] (offset, length) in the flat buffer */
  /* Workspaces kept for predictions (see ameir__model_ws_acquire): a call takes a free one
   * with an atomic exchange, or makes a fresh one when all are busy; no call ever waits. */
  struct ameir__ws_slot *ws_pool;

  /* Workspace, sized for ws_batch rows. Everything between ws_begin_ and ws_end_ is scratch a
   * forward/backward writes; the parameters above are only read by a forward. A prediction
   * runs on a shallow copy of the model with this range zeroed (its own workspace), so
   * concurrent predictions share nothing mutable. Keep every workspace member inside. */
  int32_t ws_begin_;
  /* Where this copy's workspace comes from: NULL (the ordinary case) malloc and ops->alloc; else
   * a caller's block (ameir_model_predict), see ameir__ws_dev. */
  struct ameir__arena *arena;
  int32_t ws_infer;        /* inference only: leave out the buffers only a backward reads */
  int64_t ws_batch;
  void *host_stage;        /* host staging for one batch (ops->host_alloc, or the caller's block) */
  float *host_prob;        /* scores of a pipelined batch (ops->host_alloc, ws_batch floats; NULL with an arena) */
  size_t stage_bytes;
  int64_t stage_cap;       /* capacity of rows_fm / src_fm (e slots and sequence rows) */
  void *dev_stage;
  int32_t *rows_fm, *src_fm, *rows_lin, *src_lin;   /* dev views into dev_stage */
  float *y, *dense;
  float *x0, *dx0, *dh0, *dh1, *logit, *dlogit, *prob, *hse, *dhse, *se_save, *decomp;
  float **z, **h, **dice_save;
  float **hd;              /* MLP outputs after dropout (training with dropout > 0) */
  uint8_t **dmask;
  int32_t *uniq;
  int64_t last_nu;         /* unique embedding rows of the last step (tests read gradrows) */
  int64_t last_nl;         /* unique first-order rows of the last step (tests read gradrows_l) */
  float *gradrows;
  int32_t *uniq_l;
  float *gradrows_l;
  float *lin_out;
  float *u, *du, *cscore, *dcscore, *cy;   /* retrieval */
  float *bpr_ones, *bpr_d, *bpr_dd, *bpr_y;   /* BPR: ones [neg], differences, their grads, zero labels */
  float *lin_ones;   /* CTR extras linear: ones [n_cat], the sum over the fields */
  float *tw_x, *tw_p, *tw_d1, *tw_d2, *tw_dp;            /* towers */
  float *tw_ones;                                         /* ones [K]: CIN's pooling, IPNN's sums */
  float *att_x, *att_z, *att_save, *tw_d3;                /* AutoInt: x_0..x_L, pre-ReLU z, saves */
  float *ip_buf, *ip_sum;                                 /* IPNN: products, their sums */
  int32_t *att_len;                                       /* AutoInt: F per row (device) */
  /* FiBiNET: E, V = a E [B, F K]; [E W | E], [V W' | V] [B, 2 F K]; z, W1 z + b1, its ReLU,
   * W2 h + b2, a (each [B, F] or [B, R]); backward: d[U | Y] [B, 2 F K], dU, dE, dV [B, F K],
   * and the small gradients */
  float *fb_e, *fb_v, *fb_x1, *fb_x2, *fb_small, *fb_dx, *fb_du, *fb_de, *fb_dv, *fb_dsmall;
  /* stage 1 */
  int32_t *len_dev;        /* dev view into dev_stage (the batch's lengths) */
  float **H, **nrm, **ly, **la, **lsave, **lnsave;
  int32_t **psave;
  float *dHs, *dt1, *dt2, *dt3, *q, *dq, *ro_save;
  int32_t *caser_save;     /* the Caser read-out's argmaxes [B, L * NH] (caser_fwd's save) */
  float *pos_ones;         /* `positions: learned`: ones [B], to add the table to every row and sum its gradient */
  /* A copy with an arena only: the block the Stage-1 kernels take their scratch from (handed
   * to the backend for the calling thread during ameir__stage1_forward), and its bytes. */
  void *kscratch;
  size_t kscratch_bytes;
  int32_t ws_end_;
};

/* Workspace memory. A model copy with an arena takes every workspace buffer (device buffers,
 * host staging, the small pointer arrays) from one caller's block and frees nothing; without
 * one the calls are malloc/calloc and ops->alloc as always. An arena with base NULL measures:
 * it hands out NULL and only adds up the bytes, so the size of a workspace is known without
 * allocating (ameir_model_workspace_size, and the size check of every ameir_model_predict). */
typedef struct ameir__arena {
  char *base;              /* 64-byte aligned, or NULL to measure */
  size_t cap, used;
} ameir__arena;
/* Takes `bytes` (rounded up to 64, as the backends' alloc) from the arena: NULL when measuring,
 * or when the block is exhausted. */
void *ameir__arena_take(ameir__arena *a, size_t bytes);
/* *pp = a device buffer of m's workspace (pp NULL: only counted, while measuring). */
ameir_status ameir__ws_dev(ameir_model *m, void *pp, size_t bytes);
/* *pp = a host buffer of m's workspace, zeroed when `zero` (pp NULL: only counted). */
ameir_status ameir__ws_host(ameir_model *m, void *pp, size_t bytes, int zero);
void ameir__ws_dev_free(ameir_model *m, void *p);
void ameir__ws_host_free(ameir_model *m, void *p);

/* A linear weight [out, in] and bias [out] (NULL: none) drawn by the model's init option. */
void ameir__model_init_linear(const ameir_model *m, ameir__rng *r, float *w, float *b, int64_t out, int64_t in,
                              int paper_uniform);

/* A workspace for one prediction: *out points to a model copy with its own workspace. Release
 * with ameir__model_ws_release. Thread safe with other acquires on the same model. */
ameir_status ameir__model_ws_acquire(const ameir_model *m, ameir_model **out);
void ameir__model_ws_release(const ameir_model *m, ameir_model *ws);

/* A shallow copy of m with an empty workspace of its own (see ws_begin_); free its workspace
 * with ameir__model_clone_release, never the copy's parameters. */
void ameir__model_clone_ws(const ameir_model *m, ameir_model *copy);
void ameir__model_clone_release(ameir_model *copy);
/* Forgets the kept prediction workspaces (a supernet's child changed the shapes they copied). */
ameir_status ameir__model_ws_pool_reset(ameir_model *m);

/* Towers beside the MLP (src/core/model/tower.c). */
const char *ameir__tower_unfit(const ameir_model *m);            /* why the arch's towers do not fit, or NULL */
int64_t ameir__tower_layout(ameir_model *m, int64_t off);        /* reserves parameters from off; the new off */
void ameir__tower_init(const ameir_model *m, float *hp, ameir__rng *r);
ameir_status ameir__tower_workspace(ameir_model *m, int64_t B, int train);
void ameir__tower_free_ws(ameir_model *m);
ameir_status ameir__tower_forward(ameir_model *m, int64_t B);    /* adds the towers to the logit */
ameir_status ameir__tower_backward(ameir_model *m, int64_t B);   /* after the MLP's: G, and dx0 (+=) */
int64_t ameir__tower_flops(const ameir_model *m);
/* *pp = a workspace device buffer of n 4-byte copies of *value (tower.c) */
ameir_status ameir__ws_const4(ameir_model *m, void *pp, int64_t n, const void *value);
int64_t ameir__stage1_flops(const ameir_model *m);   /* stage1.c: blocks and read-outs, per sample at length T */
/* IPNN's inner products (tower.c): the pair list with the parameters, the products into x0, and
 * their gradient into the embeddings' (after the MLP's backward). */
ameir_status ameir__ipnn_params(ameir_model *m);
ameir_status ameir__pairs_upload(ameir_model *m, int64_t shift, int32_t **f_dev, int32_t **o_dev);
ameir_status ameir__ipnn_forward(ameir_model *m, int64_t B);
ameir_status ameir__ipnn_backward(ameir_model *m, int64_t B);
/* FiBiNET (fibinet.c): its parameters' layout and initial values, the pair list, the workspace,
 * the forward ([p | q] into x0) and the backward (after the MLP's: G, and de added). */
int64_t ameir__fibinet_layout(ameir_model *m, int64_t off);
void ameir__fibinet_init(const ameir_model *m, float *hp, ameir__rng *r);
ameir_status ameir__fibinet_params(ameir_model *m);
ameir_status ameir__fibinet_workspace(ameir_model *m, int64_t B, int train);
void ameir__fibinet_free_ws(ameir_model *m);
ameir_status ameir__fibinet_forward(ameir_model *m, int64_t B);
ameir_status ameir__fibinet_backward(ameir_model *m, int64_t B);

/* loss may be NULL when not training: the forward then only scores (prob), no labels read. */
ameir_status ameir__model_forward(ameir_model *m, int64_t nb, int32_t training, double *loss);
ameir_status ameir__model_backward_step(ameir_model *m, int64_t nb, double lr);
/* What a staging gathers and moves: everything a training step reads, or only what a forward
 * that scores reads (no source slots for the sparse gradients), with or without the labels
 * (a forward asked for its loss reads them). */
enum { AMEIR__STAGE_TRAIN = 0, AMEIR__STAGE_SCORE = 1, AMEIR__STAGE_SCORE_LOSS = 2 };
/* Stages rows[0..nb) of the dataset into the device batch (synchronous: returns when the
 * device holds them). */
ameir_status ameir__model_stage(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb);
/* The same for `mode`, gathered into `host` (the host_stage) and queued with upload_async:
 * the caller keeps `host` unchanged until a later sync. */
ameir_status ameir__model_stage_async(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb,
                                      int32_t mode, void *host);
ameir_status ameir__model_check_schema(ameir_model *m, const ameir_dataset *ds);
ameir_status ameir__model_alloc_workspace(ameir_model *m, int64_t batch);
/* Scores rows[0..n) of ds into prob[n] (host) in batches of the eval batch, and their mean loss
 * (may be NULL); m is a workspace copy (src/core/train/trainer.c). */
ameir_status ameir__model_score_rows(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t n,
                                     float *prob, double *mean_loss);
void ameir__train_opts_default(ameir__train_opts *o);

/* Supernet support. bank(m, off, user) runs after the layout (final K) and returns how many
 * extra flat parameters to reserve from offset off (the supernet initialises them itself). */
typedef int64_t (*ameir__bank_fn)(ameir_model *m, int64_t off, void *user);
ameir_status ameir__model_create_ex(ameir_model **out, ameir_context *ctx, const ameir_arch *arch,
                                    const ameir_dataset *ds, const char *opts_text, ameir__bank_fn bank,
                                    void *user);
/* The parameters of one Stage-1 layer kind at the model's behaviour width, and whether that kind
 * fits the data (NULL) or why not. */
int64_t ameir__stage1_layer_params(const ameir_model *m, int32_t layer);
const char *ameir__stage1_layer_unfit(const ameir_model *m, int32_t layer);
/* Initialises one block's parameters in the host copy hp (layer at poff, LN at goff/boff, -1 none). */
ameir_status ameir__stage1_init_block(ameir_model *m, float *hp, ameir__rng *r, int32_t layer, int64_t poff,
                                      int64_t goff, int64_t boff);
/* Bytes of scratch the Stage-1 forward's kernels take for a batch of B rows (the largest of
 * the backend's bounds, ops->scratch_bytes; 0 when none takes any), or SIZE_MAX when the
 * backend cannot bound it or take it from a caller's block (no scratch_bytes or
 * set_thread_scratch). *what (may be NULL) receives the first layer that takes scratch, or
 * NULL. A copy with an arena carves this much and the forward hands it to the backend. */
size_t ameir__stage1_kernel_scratch(const ameir_model *m, int64_t B, const char **what);
/* Cloze training (stage1.c): the dataset item id at position pos of row's training window (the
 * last T items up to and including the target), the positive of the masked position staged. */
int32_t ameir__stage1_cloze_item(const ameir_model *m, const ameir_dataset *ds, int64_t row, int32_t pos);
/* AUC (CTR) or HR@10 under the model's eval protocol (retrieval) of rows[0..n) of a dataset. */
ameir_status ameir__model_metric_rows(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t n,
                                      double *metric);
/* Ranking metrics of rows[0..n): r[0..6] = HR@5, NDCG@5, HR@10, NDCG@10, MRR, HR@20, NDCG@20. */
ameir_status ameir__model_rank_rows(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t n,
                                    double *r);

#endif

