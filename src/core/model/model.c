/* The backbone: Stage 0 embeddings, Stage 2 Hadamard interactions, Stage 3 MLP with the SE
 * shortcut (eq. 4, 5), plus the first-order and FM terms of the baselines. Forward and an
 * explicit backward over the ops vtable; all scratch memory is allocated once per batch size. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"
#include "init.h"

ameir_status ameir__stage1_layout(ameir_model *m, int64_t *off, int64_t *x0_cols);
ameir_status ameir__stage1_init(ameir_model *m, float *hp, ameir__rng *r);
ameir_status ameir__stage1_workspace(ameir_model *m, int64_t B);
void ameir__stage1_free_ws(ameir_model *m);
ameir_status ameir__stage1_stage(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb,
                                 int32_t *h_rows, int32_t *h_src, int64_t src_base, int32_t *h_len);
ameir_status ameir__stage1_forward(ameir_model *m, int64_t B, int32_t training, const int32_t *rows_seq);
ameir_status ameir__stage1_backward(ameir_model *m, int64_t B, float *dh0_out);

#include <math.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

void ameir__train_opts_default(ameir__train_opts *o) {
  memset(o, 0, sizeof *o);
  o->emb = 16;
  o->batch = 256;
  o->eval_batch = 4096;
  o->epochs = 1;
  o->lr = 1e-3;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  o->emb_init = 1;          /* appendix D: embeddings uniform in [-0.05, 0.05] */
  o->init_std = 0.01;
  o->init_range = 0.05;
  o->mlp_init = 0;          /* appendix D: He normal */
  o->shuffle = 1;
  o->restore_best = 1;
  o->neg = 5;
  o->positives = 1;
  o->eval_negatives = 100;
  snprintf(o->gauc_field, sizeof o->gauc_field, "user_id");
}

static int is_embedded_kind(int32_t k) {
  return k == AMEIR_FIELD_CATEGORICAL || k == AMEIR_FIELD_MULTI || k == AMEIR_FIELD_SEQUENCE;
}

static int32_t slot_of(const ameir_model *m, const ameir_dataset *ds, const char *name) {
  for (int32_t s = 0; s < m->n_cat; s++)
    if (!strcmp(ds->fields[m->cat_field[s]].name, name)) return s;
  return -1;
}

void ameir__model_drop_workspace(ameir_model *m);

void *ameir__arena_take(ameir__arena *a, size_t bytes) {
  size_t sz = bytes ? (bytes + 63) & ~(size_t)63 : 64;   /* whole cache lines, as ops->alloc */
  if (sz < bytes) sz = SIZE_MAX;
  if (!a->base) {   /* measuring: saturate rather than wrap, so a huge request stays huge */
    a->used = a->used > SIZE_MAX - sz ? SIZE_MAX : a->used + sz;
    return NULL;
  }
  if (a->used > a->cap || sz > a->cap - a->used) return NULL;
  void *p = a->base + a->used;
  a->used += sz;
  return p;
}

ameir_status ameir__ws_dev(ameir_model *m, void *pp, size_t bytes) {
  void **p = pp;
  if (!m->arena) return m->ops->alloc(m->bs, bytes ? bytes : 64, p);
  void *q = ameir__arena_take(m->arena, bytes);
  if (m->arena->base && !q)   /* the block was checked against the measured size before */
    return ameir__error(m->ctx, AMEIR_EINVAL, "the workspace is too small");
  if (p) *p = q;
  return AMEIR_OK;
}

ameir_status ameir__ws_host(ameir_model *m, void *pp, size_t bytes, int zero) {
  void **p = pp;
  if (!m->arena) {
    *p = zero ? calloc(1, bytes ? bytes : 1) : malloc(bytes ? bytes : 1);
    return *p ? AMEIR_OK : ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
  }
  void *q = ameir__arena_take(m->arena, bytes);
  if (m->arena->base && !q) return ameir__error(m->ctx, AMEIR_EINVAL, "the workspace is too small");
  if (q && zero) memset(q, 0, bytes);
  if (p) *p = q;
  return AMEIR_OK;
}

/* An arena's pieces go with the caller's block: nothing to free. */
void ameir__ws_dev_free(ameir_model *m, void *p) {
  if (!m->arena) m->ops->free(m->bs, p);
}

void ameir__ws_host_free(ameir_model *m, void *p) {
  if (!m->arena) free(p);
}

static void free_workspace(ameir_model *m) {
  if (!m->ops) return;
  if (!m->arena) {
    m->ops->host_free(m->bs, m->host_stage);
    m->ops->host_free(m->bs, m->host_prob);
  }
  m->host_stage = NULL;
  m->host_prob = NULL;
  ameir__ws_dev_free(m, m->dev_stage);
  float **bufs[] = {&m->x0, &m->dx0, &m->dh0, &m->dh1, &m->logit, &m->dlogit, &m->prob, &m->hse,
                    &m->dhse, &m->se_save, &m->decomp, &m->gradrows, &m->gradrows_l, &m->lin_out};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) { ameir__ws_dev_free(m, *bufs[i]); *bufs[i] = NULL; }
  ameir__ws_dev_free(m, m->uniq);
  ameir__ws_dev_free(m, m->uniq_l);
  m->uniq = m->uniq_l = NULL;
  float **rb[] = {&m->u, &m->du, &m->cscore, &m->dcscore, &m->cy, &m->bpr_ones, &m->bpr_d, &m->bpr_dd, &m->bpr_y, &m->lin_ones};
  for (size_t i = 0; i < sizeof rb / sizeof rb[0]; i++) { ameir__ws_dev_free(m, *rb[i]); *rb[i] = NULL; }
  if (m->z) {
    for (int32_t l = 0; l < m->arch->n_mlp; l++) {
      if (m->h[l] != m->z[l]) ameir__ws_dev_free(m, m->h[l]);
      ameir__ws_dev_free(m, m->z[l]);
      ameir__ws_dev_free(m, m->dice_save[l]);
      if (m->hd) ameir__ws_dev_free(m, m->hd[l]);
      if (m->dmask) ameir__ws_dev_free(m, m->dmask[l]);
    }
  }
  ameir__ws_host_free(m, m->z); ameir__ws_host_free(m, m->h); ameir__ws_host_free(m, m->dice_save);
  ameir__ws_host_free(m, m->hd); ameir__ws_host_free(m, m->dmask);
  m->z = m->h = m->dice_save = m->hd = NULL;
  m->dmask = NULL;
  ameir__stage1_free_ws(m);
  ameir__tower_free_ws(m);
  ameir__fibinet_free_ws(m);
  m->dev_stage = NULL;
  m->ws_batch = 0;
}

static void drop_ws_pool(ameir_model *m);
static ameir_status new_ws_pool(ameir_model *m);
void ameir__model_drop_workspace(ameir_model *m) {
  free_workspace(m);
  drop_ws_pool(m);   /* the kept copies hold the old options */
  new_ws_pool(m);
}

void ameir__model_clone_ws(const ameir_model *m, ameir_model *copy) {
  *copy = *m;
  char *b = (char *)&copy->ws_begin_, *e = (char *)&copy->ws_end_;
  memset(b, 0, (size_t)(e - b));
}

void ameir__model_clone_release(ameir_model *copy) { free_workspace(copy); }

#define AMEIR_WS_POOL 8
struct ameir__ws_slot {
  atomic_int busy;
  int ready;
  ameir_model copy;
};

ameir_status ameir__model_ws_acquire(const ameir_model *m, ameir_model **out) {
  for (int i = 0; m->ws_pool && i < AMEIR_WS_POOL; i++) {
    struct ameir__ws_slot *s = &m->ws_pool[i];
    if (atomic_exchange(&s->busy, 1) == 0) {
      if (!s->ready) { ameir__model_clone_ws(m, &s->copy); s->ready = 1; }
      *out = &s->copy;
      return AMEIR_OK;
    }
  }
  ameir_model *c = malloc(sizeof *c);   /* every kept one is busy: a fresh one for this call */
  if (!c) return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
  ameir__model_clone_ws(m, c);
  *out = c;
  return AMEIR_OK;
}

void ameir__model_ws_release(const ameir_model *m, ameir_model *ws) {
  for (int i = 0; m->ws_pool && i < AMEIR_WS_POOL; i++)
    if (ws == &m->ws_pool[i].copy) { atomic_store(&m->ws_pool[i].busy, 0); return; }
  free_workspace(ws);
  free(ws);
}

static void drop_ws_pool(ameir_model *m);
static ameir_status new_ws_pool(ameir_model *m);

/* A supernet changed its child: the kept copies describe the previous one. */
ameir_status ameir__model_ws_pool_reset(ameir_model *m) {
  int any = 0;
  for (int i = 0; m->ws_pool && i < AMEIR_WS_POOL; i++) any |= m->ws_pool[i].ready;
  if (!any) return AMEIR_OK;
  drop_ws_pool(m);
  return new_ws_pool(m);
}

/* Frees the kept workspaces (the parameters they point to are about to change or go). */
static void drop_ws_pool(ameir_model *m) {
  if (!m->ws_pool) return;
  for (int i = 0; i < AMEIR_WS_POOL; i++)
    if (m->ws_pool[i].ready) free_workspace(&m->ws_pool[i].copy);
  free(m->ws_pool);
  m->ws_pool = NULL;
}

static ameir_status new_ws_pool(ameir_model *m) {
  drop_ws_pool(m);   /* an option set while the model is being made may have made one */
  m->ws_pool = calloc(AMEIR_WS_POOL, sizeof *m->ws_pool);
  return m->ws_pool ? AMEIR_OK : ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
}

/* Frees the device parameters, optimiser state and stage-2 lists, leaving NULLs. */
static void free_params(ameir_model *m) {
  const ameir_ops *o = m->ops;
  if (!o) return;
  float **bufs[] = {&m->P, &m->G, &m->M, &m->V, &m->stats, &m->E, &m->EM, &m->EV, &m->L, &m->LM, &m->LV};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) { o->free(m->bs, *bufs[i]); *bufs[i] = NULL; }
  o->free(m->bs, m->inter_f_dev);
  o->free(m->bs, m->inter_o_dev);
  m->inter_f_dev = NULL;
  m->inter_o_dev = NULL;
  o->free(m->bs, m->ip_f_dev);
  o->free(m->bs, m->ip_o_dev);
  m->ip_f_dev = m->ip_o_dev = NULL;
  o->free(m->bs, m->fb_f_dev);
  o->free(m->bs, m->fb_o_dev);
  m->fb_f_dev = m->fb_o_dev = NULL;
}

AMEIR_API void ameir_model_free(ameir_model *m) {
  if (!m) return;
  drop_ws_pool(m);
  free_workspace(m);
  free_params(m);
  ameir_arch_free(m->arch);
  if (m->schema)
    for (int32_t i = 0; i < m->n_schema_fields; i++) { free(m->schema[i].name); free(m->schema[i].keys); }
  free(m->schema);
  free(m->ds_config);
  for (int32_t i = 0; i < m->n_ds_overrides; i++) free(m->ds_overrides[i]);
  free(m->ds_overrides);
  free(m->cat_field); free(m->cat_len); free(m->cat_base); free(m->cat_vocab);
  free(m->dense_field); free(m->inter_fields); free(m->inter_order); free(m->mlp);
  free(m->seq_field); free(m->seq_base); free(m->seq_vocab); free(m->seq_target);
  free(m->blk_g); free(m->blk_b); free(m->blk_p);
  free(m->item_prior);
  free(m);
}

static ameir_status dev_alloc(ameir_model *m, void *pp, size_t bytes) {
  void **p = pp;
  CK(m->ops->alloc(m->bs, bytes ? bytes : 64, p));
  return AMEIR_OK;
}

static ameir_status dev_zero_alloc(ameir_model *m, void *pp, size_t bytes) {
  CK(dev_alloc(m, pp, bytes));
  return m->ops->memset0(m->bs, *(void **)pp, bytes ? bytes : 64);
}

/* Offsets that depend on the embedding width K: x0's columns and the flat parameters. */
static ameir_status layout_params(ameir_model *m) {
  const ameir_arch *a = m->arch;
  int64_t K = m->opt.emb;
  int64_t off = 0, soff = 0, ha = 0;
  CK(ameir__stage1_layout(m, &off, &ha));
  m->off_e = ha;
  m->off_p = m->off_e + m->n_cat * K;
  m->off_d = m->off_p + m->n_inter * K;
  m->d0 = m->off_d + m->n_dense;
  m->off_ip = m->d0;
  m->n_ip = a->inner_products ? (int64_t)m->n_cat * (m->n_cat - 1) / 2 : 0;
  m->d0 += m->n_ip;
  m->off_fb = m->d0;   /* FiBiNET's [p | q]; its MLP reads x0 from the dense values on */
  m->n_fb = a->fibinet ? (int64_t)m->n_cat * (m->n_cat - 1) / 2 : 0;
  m->d0 += 2 * m->n_fb * K;
  m->mlp_in0 = a->fibinet ? m->off_d : 0;
  int64_t in = m->d0 - m->mlp_in0;
  for (int32_t l = 0; l < a->n_mlp; l++) {
    ameir__mlp_p *p = &m->mlp[l];
    p->in = in;
    p->out = a->mlp[l].width;
    p->act = a->mlp[l].act;
    p->w = off; off += p->in * p->out;
    p->ldw = p->in;
    p->b = off; off += p->out;
    p->alpha = p->rmean = p->rvar = -1;
    if (p->act == AMEIR_ACT_DICE) {
      p->alpha = off; off += p->out;
      p->rmean = soff; soff += p->out;
      p->rvar = soff; soff += p->out;
    }
    in = p->out;
  }
  m->h_last = in;
  int se = a->shortcut == AMEIR_SHORTCUT_SE && (m->n_cat + m->n_inter) > 0;
  m->out_ld = m->h_last + (se ? K : 0);
  m->out_w = off;
  m->out_se = m->out_w + m->h_last;
  /* CTR: w^T [h_mlp, h_se] + b (eq. 6); retrieval: u = W [h_mlp, h_se], W [K, out_ld] (eq. 7) */
  off += m->task == AMEIR_TASK_RETRIEVAL ? K * m->out_ld : m->out_ld;
  m->out_b = off; off += 1;
  m->se_v = m->se_w1 = m->se_b1 = m->se_w2 = m->se_b2 = -1;
  m->se_r = m->se_s = 0;
  if (se) {
    int64_t S = m->n_cat + m->n_inter;
    int64_t R = S / 2 > 2 ? S / 2 : 2;   /* torch_ref: r = max(2, (N+M)//2) */
    m->se_s = S;
    m->se_r = R;
    m->se_v = off; off += K;
    m->se_w1 = off; off += R * S;
    m->se_b1 = off; off += R;
    m->se_w2 = off; off += S * R;
    m->se_b2 = off; off += S;
  }
  m->dl_w = -1;
  if ((a->extras & AMEIR_EXTRA_LINEAR) && m->n_dense) { m->dl_w = off; off += m->n_dense; }
  off = ameir__tower_layout(m, off);
  off = ameir__fibinet_layout(m, off);
  if (m->task == AMEIR_TASK_RETRIEVAL && m->out_ld == 0 && !(a->extras & AMEIR_EXTRA_LINEAR))
    return ameir__error(m->ctx, AMEIR_ECONFIG, "the model has nothing to score items with: give it a readout (sum, last, "
                        "att), a user field (the dataset's user_field: true) or item biases (extras: linear)");
  m->n_params = off;
  m->n_stats = soff;
  return AMEIR_OK;
}

/* Lays out the schema slots, stage 2 and the flat parameter offsets. */
static ameir_status build_layout(ameir_model *m, const ameir_dataset *ds) {
  ameir_context *ctx = m->ctx;
  const ameir_arch *a = m->arch;
  int32_t nf = ds->n_fields;
  m->n_schema_fields = nf;
  m->schema_hash = ds->schema_hash;
  m->schema = calloc((size_t)nf + 1, sizeof *m->schema);
  if (!m->schema) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  if (ds->config_text) {
    m->ds_config = strdup(ds->config_text);
    m->ds_overrides = calloc((size_t)ds->n_config_overrides + 1, sizeof *m->ds_overrides);
    if (!m->ds_config || !m->ds_overrides) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    for (int32_t i = 0; i < ds->n_config_overrides; i++) {
      if (!(m->ds_overrides[i] = strdup(ds->config_overrides[i]))) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      m->n_ds_overrides = i + 1;
    }
  }
  for (int32_t i = 0; i < nf; i++) {
    const ameir__field *f = &ds->fields[i];
    ameir__field *c = &m->schema[i];
    *c = *f;
    c->ids = NULL;
    c->values = NULL;
    c->keys = NULL;
    c->name = strdup(f->name);
    if (!c->name) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    if (f->keys && f->vocab > 0) {
      c->keys = malloc(8 * (size_t)f->vocab);
      if (!c->keys) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      memcpy(c->keys, f->keys, 8 * (size_t)f->vocab);
    }
  }
  m->cat_field = calloc((size_t)nf + 1, sizeof *m->cat_field);
  m->cat_len = calloc((size_t)nf + 1, sizeof *m->cat_len);
  m->cat_base = calloc((size_t)nf + 1, sizeof *m->cat_base);
  m->cat_vocab = calloc((size_t)nf + 1, sizeof *m->cat_vocab);
  m->dense_field = calloc((size_t)nf + 1, sizeof *m->dense_field);
  if (!m->cat_field || !m->cat_len || !m->cat_base || !m->cat_vocab || !m->dense_field)
    return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  /* Behaviours go through Stage 1 unless the architecture asks for them as sum-pooled
   * fields (the DNN-family baselines). */
  int32_t n_seq = 0;
  for (int32_t i = 0; i < nf; i++) n_seq += ds->fields[i].kind == AMEIR_FIELD_SEQUENCE;
  m->task = ds->task;
  m->item_field = ds->task == AMEIR_TASK_RETRIEVAL ? ds->target_field : -1;
  if (m->task == AMEIR_TASK_RETRIEVAL) {
    if (m->item_field < 0 || m->item_field >= nf || ds->fields[m->item_field].kind != AMEIR_FIELD_CATEGORICAL)
      return ameir__error(ctx, AMEIR_ECONFIG, "a retrieval dataset needs a categorical target field");
    if (a->extras & AMEIR_EXTRA_FM)
      return ameir__error(ctx, AMEIR_ECONFIG, "the FM term is a CTR part; a retrieval model scores e_i^T W h (eq. 7) (+ an item bias with extras: linear)");
  }
  m->stage1 = n_seq > 0 && !(a->readout & AMEIR_READOUT_FIELD);
  /* univalent first, then multi-valued and (sum-pooled) sequence fields, each in schema order:
   * the order of torch_ref's e_nonseq */
  int64_t row = 1;
  for (int pass = 0; pass < 2; pass++)
    for (int32_t i = 0; i < nf; i++) {
      const ameir__field *f = &ds->fields[i];
      if (!is_embedded_kind(f->kind)) continue;
      if (m->stage1 && f->kind == AMEIR_FIELD_SEQUENCE) continue;
      if (m->task == AMEIR_TASK_RETRIEVAL && i == m->item_field) continue;   /* the label */
      if ((pass == 0) != (f->kind == AMEIR_FIELD_CATEGORICAL)) continue;
      /* a sum-pooled behaviour field that shares a univalent field's table (`share:`) reads that
       * field's rows, as torch_ref and the paper embed both with one table (the univalent
       * fields were laid out in pass 0) */
      int32_t tied = f->kind == AMEIR_FIELD_SEQUENCE && f->share[0] ? slot_of(m, ds, f->share) : -1;
      if (tied >= 0 && m->cat_len[tied] != 1) tied = -1;
      int32_t s = m->n_cat++;
      m->cat_field[s] = i;
      m->cat_len[s] = f->max_len > 0 ? f->max_len : 1;
      if (tied >= 0) {
        m->cat_vocab[s] = m->cat_vocab[tied];
        m->cat_base[s] = m->cat_base[tied];
      } else {
        m->cat_vocab[s] = f->vocab;
        m->cat_base[s] = row;
        row += f->vocab;
      }
      m->lin_total += m->cat_len[s];
    }
  for (int32_t i = 0; i < nf; i++)
    if (ds->fields[i].kind == AMEIR_FIELD_DENSE) m->dense_field[m->n_dense++] = i;
  /* Stage 1: the behaviour element, its tables (shared with the tied target field when the
   * schema says `share:`) and the target query */
  m->din_a1 = 80;
  m->din_a2 = 40;
  m->mask_row = 0;
  if (a->cloze > 0 && m->task != AMEIR_TASK_RETRIEVAL)
    return ameir__error(ctx, AMEIR_ECONFIG, "cloze (BERT4Rec's masked-item training) is for retrieval models: this dataset's task is CTR");
  if (m->task == AMEIR_TASK_RETRIEVAL) {
    m->item_base = row;
    m->item_vocab = ds->fields[m->item_field].vocab;
    row += m->item_vocab;
    if (a->extras & AMEIR_EXTRA_LINEAR) {
      /* the item biases start at the log popularity of the training targets: with nothing
       * else in the model (POP) that ranks items by how often they were interacted with */
      free(m->item_prior);
      m->item_prior = calloc((size_t)m->item_vocab + 1, sizeof *m->item_prior);
      if (!m->item_prior) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      const int32_t *tid = ds->fields[m->item_field].ids;
      for (int64_t i = 0; tid && i < ds->split_n[AMEIR_SPLIT_TRAIN]; i++) {
        int32_t t = tid[ds->split_rows[AMEIR_SPLIT_TRAIN][i]];
        if (t > 0 && t < m->item_vocab) m->item_prior[t] += 1.f;
      }
      for (int64_t t = 0; t < m->item_vocab; t++) m->item_prior[t] = t ? (float)log1p((double)m->item_prior[t]) : 0.f;
    }
    if (a->cloze > 0) m->mask_row = row++;   /* [mask]: outside the candidates' rows */
  }
  if (m->stage1) {
    m->n_seq = n_seq;
    m->seq_field = calloc((size_t)n_seq, sizeof *m->seq_field);
    m->seq_base = calloc((size_t)n_seq, sizeof *m->seq_base);
    m->seq_vocab = calloc((size_t)n_seq, sizeof *m->seq_vocab);
    m->seq_target = calloc((size_t)n_seq, sizeof *m->seq_target);
    if (!m->seq_field || !m->seq_base || !m->seq_vocab || !m->seq_target) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    int32_t s = 0;
    m->has_target = 1;
    for (int32_t i = 0; i < nf; i++) {
      const ameir__field *f = &ds->fields[i];
      if (f->kind != AMEIR_FIELD_SEQUENCE) continue;
      if (s == 0) m->seq_t = f->max_len;
      else if (f->max_len != m->seq_t)
        return ameir__error(ctx, AMEIR_ECONFIG, "behaviour field '%s' has max_len %d, '%s' has %d: the fields of one behaviour element need one length",
                            f->name, (int)f->max_len, ds->fields[m->seq_field[0]].name, (int)m->seq_t);
      m->seq_field[s] = i;
      int32_t tgt = f->share[0] ? slot_of(m, ds, f->share) : -1;
      if (m->task == AMEIR_TASK_RETRIEVAL && f->share[0] && !strcmp(f->share, ds->fields[m->item_field].name)) {
        /* the history shares the item table; no target is known at scoring time */
        m->seq_field[s] = i;
        m->seq_base[s] = m->item_base;
        m->seq_vocab[s] = m->item_vocab;
        m->seq_target[s] = -1;
        m->has_target = 0;
        if (s == 0) m->seq_t = f->max_len;
        s++;
        continue;
      }
      if (f->share[0] && tgt < 0)
        return ameir__error(ctx, AMEIR_ECONFIG, "behaviour field '%s' shares the table of '%s', which is not a categorical field", f->name, f->share);
      if (tgt >= 0 && m->cat_len[tgt] != 1) tgt = -1;   /* a multi-valued field is no target */
      if (tgt >= 0) {
        m->seq_base[s] = m->cat_base[tgt];
        m->seq_vocab[s] = m->cat_vocab[tgt];
      } else {
        m->seq_base[s] = row;
        m->seq_vocab[s] = f->vocab;
        row += f->vocab;
      }
      m->seq_target[s] = tgt;
      if (tgt < 0) m->has_target = 0;
      s++;
    }
    if (m->seq_t < 1) return ameir__error(ctx, AMEIR_ECONFIG, "behaviour fields need max_len >= 1");
  }
  m->emb_rows = row;
  if (m->task == AMEIR_TASK_RETRIEVAL && !m->stage1)
    return ameir__error(ctx, AMEIR_ECONFIG, "a retrieval model needs the behaviour sequence in Stage 1 (readout sum, last, att or caser, not field)");
  if (m->n_cat == 0 && m->n_dense == 0 && !m->stage1) return ameir__error(ctx, AMEIR_ECONFIG, "the dataset has no feature fields");
  if (a->n_blocks > 0 && !m->stage1)
    return ameir__error(ctx, AMEIR_ECONFIG, "the architecture has behaviour blocks but the dataset has no sequence fields (or readout is 'field')");
  const char *tw = ameir__tower_unfit(m);
  if (tw) return ameir__error(ctx, AMEIR_ECONFIG, "%s", tw);

  /* stage 2: interactions by field name */
  m->n_inter = a->n_inter;
  m->max_order = 1;
  for (int32_t i = 0; i < a->n_inter; i++) if (a->inter[i].order > m->max_order) m->max_order = a->inter[i].order;
  m->inter_fields = malloc(sizeof(int32_t) * (size_t)(m->n_inter * m->max_order + 1));
  m->inter_order = malloc(sizeof(int32_t) * (size_t)(m->n_inter + 1));
  if (!m->inter_fields || !m->inter_order) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  for (int32_t i = 0; i < a->n_inter; i++) {
    m->inter_order[i] = a->inter[i].order;
    for (int32_t j = 0; j < m->max_order; j++) {
      int32_t s = -1;
      if (j < a->inter[i].order) {
        s = slot_of(m, ds, a->inter[i].fields[j]);
        if (s < 0)
          return ameir__error(ctx, AMEIR_ECONFIG, "interaction %d names field '%s', which is not a categorical field of the dataset", (int)i + 1, a->inter[i].fields[j]);
      }
      m->inter_fields[i * m->max_order + j] = s;
    }
  }

  m->mlp = calloc((size_t)a->n_mlp + 1, sizeof *m->mlp);
  if (!m->mlp) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  return layout_params(m);
}

/* A linear layer's weight [out, in] (+ bias [out], may be NULL) by the model's init mode:
 * torch's default U(+-1/sqrt(in)) for weight and bias, or appendix D (He normal, or U(+-0.05)
 * for attention with paper_uniform, and zero biases). */
void ameir__model_init_linear(const ameir_model *m, ameir__rng *r, float *w, float *b, int64_t out, int64_t in,
                              int paper_uniform) {
  if (m->opt.mlp_init == 1) {
    double bound = 1.0 / sqrt((double)in);
    ameir__init_uniform(r, w, out * in, bound);
    if (b) ameir__init_uniform(r, b, out, bound);
  } else {
    if (paper_uniform) ameir__init_uniform(r, w, out * in, 0.05);
    else ameir__init_he_normal(r, w, out, in);
    if (b) memset(b, 0, sizeof(float) * (size_t)out);
  }
}

static ameir_status init_params(ameir_model *m) {
  ameir_context *ctx = m->ctx;
  const ameir_arch *a = m->arch;
  int64_t K = m->opt.emb;
  float *hp = calloc((size_t)m->n_params + 1, sizeof(float));
  if (!hp) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  ameir__rng r;
  ameir__rng_seed(&r, ctx->seed, 1);
  for (int32_t l = 0; l < a->n_mlp; l++) {
    ameir__mlp_p *p = &m->mlp[l];
    ameir__model_init_linear(m, &r, hp + p->w, hp + p->b, p->out, p->in, 0);
    /* Dice alpha starts at 0 (torch_ref, DIN) */
  }
  int64_t out_in = m->h_last + (m->se_v >= 0 ? K : 0);
  ameir__model_init_linear(m, &r, hp + m->out_w, m->task == AMEIR_TASK_RETRIEVAL ? NULL : hp + m->out_b,
                           m->task == AMEIR_TASK_RETRIEVAL ? K : 1, out_in, 0);
  if (m->se_v >= 0) {
    ameir__init_normal(&r, hp + m->se_v, K, 1.0 / sqrt((double)K));
    double b1 = 1.0 / sqrt((double)m->se_s), b2 = 1.0 / sqrt((double)m->se_r);
    ameir__init_uniform(&r, hp + m->se_w1, m->se_r * m->se_s, b1);
    ameir__init_uniform(&r, hp + m->se_b1, m->se_r, b1);
    ameir__init_uniform(&r, hp + m->se_w2, m->se_s * m->se_r, b2);
    ameir__init_uniform(&r, hp + m->se_b2, m->se_s, b2);
  }
  /* first-order dense weights start at zero (torch_ref) */
  if (m->item_prior && m->L) {
    ameir_status su = m->ops->upload(m->bs, m->L + m->item_base, m->item_prior, sizeof(float) * (size_t)m->item_vocab);
    if (su) { free(hp); return su; }
  }
  ameir_status st = ameir__stage1_init(m, hp, &r);
  ameir__tower_init(m, hp, &r);   /* after the rest: models without towers draw as before */
  ameir__fibinet_init(m, hp, &r);
  if (st) { free(hp); return ameir__error(ctx, st, "out of memory initialising Stage 1"); }
  st = m->ops->upload(m->bs, m->P, hp, sizeof(float) * (size_t)m->n_params);
  free(hp);
  if (st) return st;
  if (m->n_stats) {
    float *hs = malloc(sizeof(float) * (size_t)m->n_stats);
    if (!hs) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    for (int32_t l = 0; l < a->n_mlp; l++) {
      ameir__mlp_p *p = &m->mlp[l];
      if (p->rmean < 0) continue;
      for (int64_t j = 0; j < p->out; j++) { hs[p->rmean + j] = 0.f; hs[p->rvar + j] = 1.f; }
    }
    st = m->ops->upload(m->bs, m->stats, hs, sizeof(float) * (size_t)m->n_stats);
    free(hs);
    if (st) return st;
  }
  /* embedding table in chunks, row 0 zero */
  ameir__rng re;
  ameir__rng_seed(&re, ctx->seed, 2);
  const int64_t chunk = 65536;
  float *buf = malloc(sizeof(float) * (size_t)(chunk * K));
  if (!buf) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  for (int64_t r0 = 0; r0 < m->emb_rows; r0 += chunk) {
    int64_t n = m->emb_rows - r0 < chunk ? m->emb_rows - r0 : chunk;
    if (m->opt.emb_init == 0) ameir__init_normal(&re, buf, n * K, m->opt.init_std);
    else ameir__init_uniform(&re, buf, n * K, m->opt.init_range);
    if (r0 == 0) memset(buf, 0, sizeof(float) * (size_t)K);
    st = m->ops->upload(m->bs, m->E + r0 * K, buf, sizeof(float) * (size_t)(n * K));
    if (st) { free(buf); return st; }
  }
  free(buf);
  return AMEIR_OK;
}

/* Allocates parameters (after the emb option is final) and initialises them. */
static ameir_status alloc_params(ameir_model *m) {
  size_t np = sizeof(float) * (size_t)m->n_params;
  size_t ne = sizeof(float) * (size_t)(m->emb_rows * m->opt.emb);
  CK(dev_alloc(m, &m->P, np));
  CK(dev_zero_alloc(m, &m->G, np));
  CK(dev_zero_alloc(m, &m->M, np));
  CK(dev_zero_alloc(m, &m->V, np));
  CK(dev_alloc(m, &m->stats, sizeof(float) * (size_t)(m->n_stats + 1)));
  CK(dev_alloc(m, &m->E, ne));
  CK(dev_zero_alloc(m, &m->EM, ne));
  CK(dev_zero_alloc(m, &m->EV, ne));
  if (m->arch->extras & AMEIR_EXTRA_LINEAR) {
    size_t nl = sizeof(float) * (size_t)m->emb_rows;
    CK(dev_zero_alloc(m, &m->L, nl));
    CK(dev_zero_alloc(m, &m->LM, nl));
    CK(dev_zero_alloc(m, &m->LV, nl));
  }
  if (m->n_inter) {
    size_t nfi = sizeof(int32_t) * (size_t)(m->n_inter * m->max_order);
    CK(dev_alloc(m, &m->inter_f_dev, nfi));
    CK(dev_alloc(m, &m->inter_o_dev, sizeof(int32_t) * (size_t)m->n_inter));
    CK(m->ops->upload(m->bs, m->inter_f_dev, m->inter_fields, nfi));
    CK(m->ops->upload(m->bs, m->inter_o_dev, m->inter_order, sizeof(int32_t) * (size_t)m->n_inter));
  }
  CK(ameir__ipnn_params(m));
  CK(ameir__fibinet_params(m));
  m->step = 0;
  return init_params(m);
}


AMEIR_API ameir_status ameir_model_create(ameir_model **out, ameir_context *ctx, const ameir_arch *arch,
                                          const ameir_dataset *ds) {
  if (!out || !ctx || !arch || !ds) return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_create: NULL argument");
  return ameir__model_create_ex(out, ctx, arch, ds, NULL, NULL, NULL);
}

/* Makes a model for a dataset (or a schema-only stub when loading a file); opts_text holds
 * "key=value" lines applied before the parameters are laid out; bank reserves a supernet's
 * extra parameters after the layout. */
ameir_status ameir__model_create_ex(ameir_model **out, ameir_context *ctx, const ameir_arch *arch,
                                    const ameir_dataset *ds, const char *opts_text, ameir__bank_fn bank,
                                    void *user) {
  *out = NULL;
  ameir_model *m = calloc(1, sizeof *m);
  if (!m) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  m->ctx = ctx;
  m->ops = ctx->ops;
  m->bs = ctx->bstate;
  m->sn_pj = -1;
  ameir__train_opts_default(&m->opt);
  ameir_status st = ameir__arch_copy(ctx, arch, &m->arch);
  const char *p = opts_text ? opts_text : "";
  while (!st && *p) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char line[256];
    if (len < sizeof line) {
      memcpy(line, p, len);
      line[len] = 0;
      char *eq = strchr(line, '=');
      if (eq) {
        *eq = 0;
        st = ameir_model_set_option(m, line, eq + 1);
        if (st == AMEIR_ENOTFOUND) st = AMEIR_OK;   /* an option of a later version */
      }
    }
    p += len + (e ? 1 : 0);
  }
  if (!st) st = build_layout(m, ds);
  if (!st && bank) m->n_params += bank(m, m->n_params, user);
  if (!st) st = alloc_params(m);
  if (!st) st = new_ws_pool(m);
  if (st) { ameir_model_free(m); return st; }
  *out = m;
  return AMEIR_OK;
}

ameir_status ameir__model_create_from_schema(ameir_model **out, ameir_context *ctx, const ameir_arch *arch,
                                             ameir_dataset *stub, const char *opts_text) {
  return ameir__model_create_ex(out, ctx, arch, stub, opts_text, NULL, NULL);
}

/* Called by the option setter when an option that shapes or draws the initial weights changes
 * (emb, init, init_std, init_range, mlp_init) before any training: rebuild shapes and weights. */
ameir_status ameir__model_reshape(ameir_model *m) {
  if (!m->P) return AMEIR_OK;   /* still being created: the layout is built later */
  drop_ws_pool(m);
  free_workspace(m);
  free_params(m);
  CK(layout_params(m));
  CK(new_ws_pool(m));
  return alloc_params(m);
}

/* The first-order term's own staged rows of nb samples: a retrieval row's candidates (their
 * item biases, extras linear), a sample-major copy whose gradient slots are the scores'. A CTR
 * model stages none: its first-order term reads the field-major ids the embeddings read (the
 * sample-major copy was a second gather and upload of every id, on the serving path).
 * n_cand must be set. */
static int64_t lin_rows(const ameir_model *m, int64_t nb) {
  return m->task == AMEIR_TASK_RETRIEVAL && m->L ? nb * m->n_cand : 0;
}

ameir_status ameir__model_alloc_workspace(ameir_model *m, int64_t B) {
  if (m->ws_batch >= B) return AMEIR_OK;
  if (m->opt.loss_bpr && m->task != AMEIR_TASK_RETRIEVAL)
    return ameir__error(m->ctx, AMEIR_ECONFIG, "loss bpr ranks a positive above sampled negatives; a CTR model trains with bce");
  free_workspace(m);
  const ameir_arch *a = m->arch;
  int64_t K = m->opt.emb, F = m->n_cat;
  int64_t lt = m->lin_total;
  /* an inference-only copy leaves out what only the backward reads (NULL stays NULL) */
  const int train = !m->ws_infer;
  /* host/device staging, one block (see stage_layout): rows_fm (+ the sequence and candidate
   * rows after it), rows_lin, dense, lengths, y, src_fm, src_lin. The host side comes from
   * ops->host_alloc (pinned memory on CUDA: the upload is a DMA queued behind the kernels). */
  int64_t ns = m->stage1 ? (int64_t)m->n_seq * B * m->seq_t : 0;
  m->n_cand = m->task == AMEIR_TASK_RETRIEVAL ? m->opt.positives + m->opt.neg : 0;
  ns += B * m->n_cand;   /* retrieval: the candidates' rows follow the sequences */
  m->stage_cap = B * lt + ns;
  int64_t nlin = lin_rows(m, B);
  size_t n_i32 = (size_t)(2 * (B * lt + ns) + 2 * nlin + (m->stage1 ? B : 0) + (m->mask_row > 0 ? B : 0));
  size_t n_f32 = (size_t)(B + B * m->n_dense);
  m->stage_bytes = 4 * (n_i32 + n_f32);
  if (m->arena) CK(ameir__ws_host(m, &m->host_stage, m->stage_bytes + 64, 0));
  else {   /* and the scores of a pipelined batch (ameir__model_score_rows) */
    CK(m->ops->host_alloc(m->bs, m->stage_bytes + 64, &m->host_stage));
    CK(m->ops->host_alloc(m->bs, sizeof(float) * (size_t)B, (void **)&m->host_prob));
  }
  CK(ameir__ws_dev(m, &m->dev_stage, m->stage_bytes + 64));
  int64_t maxw = m->d0;
  for (int32_t l = 0; l < a->n_mlp; l++) if (m->mlp[l].out > maxw) maxw = m->mlp[l].out;
  size_t f4 = sizeof(float);
  CK(ameir__ws_dev(m, &m->x0, f4 * (size_t)(B * m->d0)));
  if (train) {
    CK(ameir__ws_dev(m, &m->dx0, f4 * (size_t)(B * m->d0)));
    CK(ameir__ws_dev(m, &m->dh0, f4 * (size_t)(B * maxw)));
    CK(ameir__ws_dev(m, &m->dh1, f4 * (size_t)(B * maxw)));
  }
  CK(ameir__ws_dev(m, &m->logit, f4 * (size_t)B));
  if (train) CK(ameir__ws_dev(m, &m->dlogit, f4 * (size_t)B));
  CK(ameir__ws_dev(m, &m->prob, f4 * (size_t)B));
  /* retrieval: the candidates' biases; CTR: the per-field first-order terms [B, F] (their
   * gradients in the backward), summed over the fields by a product with ones */
  int64_t nlo = m->task == AMEIR_TASK_RETRIEVAL ? nlin : (m->L ? B * F : 0);
  CK(ameir__ws_dev(m, &m->lin_out, f4 * (size_t)(nlo > B ? nlo : B)));
  if (m->L && m->task != AMEIR_TASK_RETRIEVAL && F) {
    const float one = 1.f;
    CK(ameir__ws_const4(m, &m->lin_ones, F, &one));
  }
  if (m->se_s) {
    CK(ameir__ws_dev(m, &m->hse, f4 * (size_t)(B * K)));
    if (train) CK(ameir__ws_dev(m, &m->dhse, f4 * (size_t)(B * K)));
    CK(ameir__ws_dev(m, &m->se_save, f4 * (size_t)(B * (2 * m->se_s + m->se_r))));
  }
  if (train) {
    int64_t nseqf = (m->stage1 ? B * m->seq_t * m->d_seq : 0) + B * m->n_cand * K;
    CK(ameir__ws_dev(m, &m->decomp, f4 * (size_t)(B * F * K + nseqf + 1)));
    CK(ameir__ws_dev(m, &m->uniq, sizeof(int32_t) * (size_t)(B * lt + ns + 1)));
    CK(ameir__ws_dev(m, &m->gradrows, f4 * (size_t)((B * lt + ns) * K + 1)));
    int64_t nlg = m->task == AMEIR_TASK_RETRIEVAL ? nlin : (m->L ? B * lt : 0);   /* the first-order gradient's pairs */
    CK(ameir__ws_dev(m, &m->uniq_l, sizeof(int32_t) * (size_t)(nlg + 1)));
    CK(ameir__ws_dev(m, &m->gradrows_l, f4 * (size_t)(nlg + 1)));
  }
  size_t np = sizeof(float *) * ((size_t)a->n_mlp + 1);
  CK(ameir__ws_host(m, &m->z, np, 1));
  CK(ameir__ws_host(m, &m->h, np, 1));
  CK(ameir__ws_host(m, &m->dice_save, np, 1));
  /* while measuring the arrays are NULL: their entries are counted, not stored */
#define SLOT(arr, l) ((arr) ? (void *)&(arr)[l] : NULL)
  for (int32_t l = 0; l < a->n_mlp; l++) {
    int64_t w = m->mlp[l].out;
    CK(ameir__ws_dev(m, SLOT(m->z, l), f4 * (size_t)(B * w)));
    if (m->mlp[l].act == AMEIR_ACT_IDENTITY && !m->sn_max) { if (m->h) m->h[l] = m->z[l]; }
    else CK(ameir__ws_dev(m, SLOT(m->h, l), f4 * (size_t)(B * w)));
    if (m->mlp[l].act == AMEIR_ACT_DICE || m->sn_max) CK(ameir__ws_dev(m, SLOT(m->dice_save, l), f4 * (size_t)(2 * w)));
  }
  if (train && m->opt.dropout > 0 && a->n_mlp) {   /* dropout on the MLP's hidden layers (appendix D) */
    CK(ameir__ws_host(m, &m->hd, sizeof(float *) * (size_t)a->n_mlp, 1));
    CK(ameir__ws_host(m, &m->dmask, sizeof(uint8_t *) * (size_t)a->n_mlp, 1));
    for (int32_t l = 0; l < a->n_mlp; l++) {
      CK(ameir__ws_dev(m, SLOT(m->hd, l), f4 * (size_t)(B * m->mlp[l].out)));
      CK(ameir__ws_dev(m, SLOT(m->dmask, l), (size_t)(B * m->mlp[l].out)));
    }
  }
#undef SLOT
  CK(ameir__stage1_workspace(m, B));
  CK(ameir__tower_workspace(m, B, train));
  CK(ameir__fibinet_workspace(m, B, train));
  if (m->task == AMEIR_TASK_RETRIEVAL) {
    int64_t C = m->n_cand;
    CK(ameir__ws_dev(m, &m->u, f4 * (size_t)(B * K)));
    if (train) CK(ameir__ws_dev(m, &m->du, f4 * (size_t)(B * K)));
    CK(ameir__ws_dev(m, &m->cscore, f4 * (size_t)(B * C)));
    if (train) CK(ameir__ws_dev(m, &m->dcscore, f4 * (size_t)(B * C)));
    CK(ameir__ws_dev(m, &m->cy, f4 * (size_t)(B * C)));
    if (m->cy) {
      float *hy = malloc(f4 * (size_t)(B * C));
      if (!hy) return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
      for (int64_t i = 0; i < B * C; i++) hy[i] = i % C < m->opt.positives ? 1.f : 0.f;   /* positives first */
      ameir_status st = m->ops->upload(m->bs, m->cy, hy, f4 * (size_t)(B * C));
      free(hy);
      if (st) return st;
    }
    if (train && m->opt.loss_bpr) {
      /* BPR: the differences d[b, j] = s[b, 1 + j] - s[b, 0] (negative minus positive) and BCE
       * with label 0 on them, -log(1 - s(d)) = -log s(s_pos - s_neg); memory and work linear in
       * neg (a ones vector, the differences, their gradients, zero labels) */
      int64_t N = m->opt.neg;
      if (m->opt.positives != 1)
        return ameir__error(m->ctx, AMEIR_ECONFIG, "loss bpr pairs one positive with each negative: positives must be 1, not %d",
                            (int)m->opt.positives);
      const float one = 1.f, zero = 0.f;
      CK(ameir__ws_const4(m, &m->bpr_ones, N, &one));
      CK(ameir__ws_const4(m, &m->bpr_y, B * N, &zero));
      CK(ameir__ws_dev(m, &m->bpr_d, f4 * (size_t)(B * N)));
      CK(ameir__ws_dev(m, &m->bpr_dd, f4 * (size_t)(B * N)));
    }
  }
  m->ws_batch = B;
  return AMEIR_OK;
}

ameir_status ameir__model_check_schema(ameir_model *m, const ameir_dataset *ds) {
  if (ds->n_fields != m->n_schema_fields)
    return ameir__error(m->ctx, AMEIR_ECONFIG, "the dataset has %d fields, the model was made for %d", (int)ds->n_fields, (int)m->n_schema_fields);
  for (int32_t s = 0; s < m->n_cat; s++) {
    const ameir__field *f = &ds->fields[m->cat_field[s]];
    if (!is_embedded_kind(f->kind) || f->vocab > m->cat_vocab[s] || (f->max_len > 0 ? f->max_len : 1) != m->cat_len[s])
      return ameir__error(m->ctx, AMEIR_ECONFIG, "field '%s' of the dataset does not match the model's schema", f->name);
  }
  return AMEIR_OK;
}

/* The staging block for nb rows, packed for nb (not the workspace's capacity) in the same
 * layout on the host and the device, so that one copy moves a batch. Offsets in 4-byte words:
 *   rows_fm [capn]  embedding rows: per-field ids, then the sequences', then the candidates'
 *   rows_lin [nl]   retrieval: the candidates' bias rows (extras linear; see lin_rows)
 *   dense [nb * n_dense], len [nb] (Stage 1), ro [nb] (cloze: the read-out position + 1)
 *                                                       -- a scoring forward reads up to here
 *   y [nb]                                              -- a forward asked for its loss
 *   src_fm [capn], src_lin [nl]                         -- only a training step's backward */
typedef struct {
  int64_t capn, nl, rows_lin, dense, len, y, src_fm, src_lin, end;
} stage_layout;

static stage_layout layout_for(const ameir_model *m, int64_t nb) {
  stage_layout L;
  L.capn = nb * m->lin_total + (m->stage1 ? (int64_t)m->n_seq * nb * m->seq_t : 0) + nb * m->n_cand;
  L.nl = m->L ? lin_rows(m, nb) : 0;
  L.rows_lin = L.capn;
  L.dense = L.rows_lin + L.nl;
  L.len = L.dense + nb * m->n_dense;
  L.y = L.len + (m->stage1 ? nb : 0) + (m->mask_row > 0 ? nb : 0);   /* cloze: read-out lengths after len */
  L.src_fm = L.y + nb;
  L.src_lin = L.src_fm + L.capn;
  L.end = L.src_lin + L.nl;
  return L;
}

/* One field's ids of rows[0..nb) into its part of the staging block (field-major); training
 * also the source slots. */
static void gather_field(const ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb, int32_t s,
                         int64_t fm_off, int train, int32_t *rows_fm, int32_t *src_fm) {
  const ameir__field *f = &ds->fields[m->cat_field[s]];
  int64_t L = m->cat_len[s], base = m->cat_base[s], voc = m->cat_vocab[s], F = m->n_cat;
  int32_t *rp = rows_fm + fm_off, *sp = src_fm + fm_off;
  for (int64_t b = 0; b < nb; b++) {
    const int32_t *ids = f->ids + rows[b] * L;
    for (int64_t l = 0; l < L; l++) {
      int32_t id = ids[l];
      *rp++ = (id < 0 || id >= voc) ? (id < 0 ? 0 : (int32_t)base) : (int32_t)(base + id);
      if (train) *sp++ = (int32_t)(b * F + s);
    }
  }
}

/* Below this many ids a batch is gathered on the calling thread: no OpenMP team for a few rows
 * (libgomp allocates one per region, and single-row serving must not). */
#define AMEIR__GATHER_PAR_IDS 32768
#define AMEIR__MAX_FIELDS_STACK 128

/* Gathers rows[0..nb) into the host block `host`, points the device views at dev_stage, and
 * returns in *bytes how much of the block `mode` needs on the device. A large batch is gathered
 * by the context's threads, one field each: the rows of a split are scattered over the columns,
 * so the gather waits on memory, and a device scores a batch faster than one thread gathers it.
 * Every id has one writer: the block is the same for any thread count. */
static ameir_status stage_gather(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb,
                                 int32_t mode, void *host, size_t *bytes) {
  int64_t lt = m->lin_total, F = m->n_cat;
  const int train = mode == AMEIR__STAGE_TRAIN;
  if (nb > m->ws_batch)
    return ameir__error(m->ctx, AMEIR_EINVAL, "internal: staging %lld rows into a workspace of %lld",
                        (long long)nb, (long long)m->ws_batch);
  stage_layout Lo = layout_for(m, nb);
  int32_t *hb = host;
  int32_t *rows_fm = hb, *rows_lin = hb + Lo.rows_lin, *src_fm = hb + Lo.src_fm, *src_lin = hb + Lo.src_lin;
  float *y = (float *)(hb + Lo.y), *dense = (float *)(hb + Lo.dense);
  /* field-major ids (for the per-field lookups, the first-order term and, training, the sparse
   * gradients): task s < F is field s (its ids start at nb * loff[s] in rows_fm); task F: the
   * labels and dense values */
  int64_t loff_stack[AMEIR__MAX_FIELDS_STACK];
  int64_t *loff = F <= AMEIR__MAX_FIELDS_STACK ? loff_stack : malloc(sizeof(int64_t) * (size_t)F);
  if (!loff) return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
  for (int32_t s = 0, acc = 0; s < F; acc += m->cat_len[s], s++) loff[s] = acc;
#define GATHER_TASK(s)                                                                                    \
  do {                                                                                                    \
    if ((s) < F) {                                                                                        \
      gather_field(m, ds, rows, nb, (s), nb * loff[(s)], train, rows_fm, src_fm);                         \
    } else {                                                                                              \
      for (int64_t b = 0; b < nb; b++) {                                                                  \
        if (mode != AMEIR__STAGE_SCORE) y[b] = ds->label ? ds->label[rows[b]] : 0.f;                     \
        for (int32_t d = 0; d < m->n_dense; d++)                                                          \
          dense[b * m->n_dense + d] = ds->fields[m->dense_field[d]].values[rows[b]];                      \
      }                                                                                                   \
    }                                                                                                     \
  } while (0)
  if (m->ctx->threads > 1 && nb * (lt + m->n_dense) >= AMEIR__GATHER_PAR_IDS) {
#pragma omp parallel for num_threads(m->ctx->threads) schedule(dynamic, 1)
    for (int32_t s = 0; s <= F; s++) GATHER_TASK(s);
  } else {
    for (int32_t s = 0; s <= F; s++) GATHER_TASK(s);
  }
#undef GATHER_TASK
  if (loff != loff_stack) free(loff);
  size_t nfm = (size_t)(nb * lt), nsq = 0;
  if (m->stage1) {
    CK(ameir__stage1_stage(m, ds, rows, nb, rows_fm + nfm, train ? src_fm + nfm : NULL, nb * F, hb + Lo.len));
    nsq = (size_t)(m->n_seq * nb * m->seq_t);
  }
  if (m->task == AMEIR_TASK_RETRIEVAL) {
    /* candidates of eq. (7): the next item, then `neg` sampled items */
    int64_t C = m->n_cand, V = m->item_vocab;
    int32_t *cr = rows_fm + nfm + nsq, *cs = src_fm + nfm + nsq;
    int64_t src0 = nb * F + (m->stage1 ? (int64_t)m->n_seq * nb * m->seq_t : 0);
    const int32_t *tid = ds->fields[m->item_field].ids;
    ameir__rng r;
    ameir__rng_seed(&r, m->ctx->seed, 0x5eed0000u + (uint64_t)m->step);
    for (int64_t b = 0; b < nb; b++) {
      /* cloze: the item under the staged mask (its window position + 1 follows the lengths) */
      int32_t t = m->mask_row > 0 && train ? ameir__stage1_cloze_item(m, ds, rows[b], hb[Lo.len + nb + b] - 1) : tid[rows[b]];
      if (t < 0 || t >= V) t = 0;
      int64_t P = m->opt.positives;
      cr[b * C] = (int32_t)(m->item_base + t);
      const int32_t *seq = NULL;
      int64_t n_seq_u = 0, pos = 0;
      if (ds->items) {
        int32_t u = ds->row_user[rows[b]];
        seq = ds->items + ds->user_off[u];
        n_seq_u = ds->user_off[u + 1] - ds->user_off[u];
        pos = ds->row_pos[rows[b]];
      }
      /* appendix D.2: the next P items after the clipped history are positives; only items
       * of the training part (before the valid and test targets) qualify; when fewer are left
       * the last one is repeated */
      int64_t last_train = n_seq_u >= 3 ? n_seq_u - 3 : n_seq_u - 1;
      for (int64_t j = 1; j < P; j++) {
        int32_t v = seq && pos + j <= last_train ? seq[pos + j] : -1;
        cr[b * C + j] = v > 0 && v < V ? (int32_t)(m->item_base + v) : cr[b * C + j - 1];
      }
      for (int64_t j = P; j < C; j++) {
        int32_t v = 1;
        for (int tries = 0; tries < 100; tries++) {
          v = 1 + (int32_t)ameir__rng_below(&r, (uint64_t)(V > 1 ? V - 1 : 1));
          if (!m->opt.neg_unseen || !seq) break;
          int seen = v == t;   /* "items the user never touched": the whole sequence */
          for (int64_t h = 0; h < n_seq_u && !seen; h++) seen = seq[h] == v;
          if (!seen) break;
        }
        cr[b * C + j] = (int32_t)(m->item_base + v);
      }
    }
    if (train)
      for (int64_t i = 0; i < nb * C; i++) cs[i] = (int32_t)(src0 + i);
    if (m->L) {   /* the candidates' biases */
      memcpy(rows_lin, cr, sizeof(int32_t) * (size_t)(nb * C));
      if (train)
        for (int64_t i = 0; i < nb * C; i++) src_lin[i] = (int32_t)i;
    }
    nsq += (size_t)(nb * C);
  }
  if ((int64_t)(nfm + nsq) != Lo.capn)
    return ameir__error(m->ctx, AMEIR_EINVAL, "internal: staged %lld ids, laid out %lld",
                        (long long)(nfm + nsq), (long long)Lo.capn);
  int32_t *dp = m->dev_stage;
  m->rows_fm = dp;
  m->rows_lin = dp + Lo.rows_lin;
  m->dense = (float *)(dp + Lo.dense);
  m->len_dev = m->stage1 ? dp + Lo.len : NULL;
  m->y = (float *)(dp + Lo.y);
  m->src_fm = dp + Lo.src_fm;
  m->src_lin = dp + Lo.src_lin;
  int64_t words = mode == AMEIR__STAGE_TRAIN ? Lo.end : mode == AMEIR__STAGE_SCORE_LOSS ? Lo.src_fm : Lo.y;
  *bytes = 4 * (size_t)words;
  return AMEIR_OK;
}

ameir_status ameir__model_stage(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb) {
  size_t bytes = 0;
  CK(stage_gather(m, ds, rows, nb, AMEIR__STAGE_TRAIN, m->host_stage, &bytes));
  return m->ops->upload(m->bs, m->dev_stage, m->host_stage, bytes);
}

ameir_status ameir__model_stage_async(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb,
                                      int32_t mode, void *host) {
  size_t bytes = 0;
  CK(stage_gather(m, ds, rows, nb, mode, host, &bytes));
  return m->ops->upload_async(m->bs, m->dev_stage, host, bytes);
}

/* Every field's row of `table` (width dim) for B samples from the field-major ids into field s's
 * dim columns of out (row stride ldo): one lookup for a run of univalent fields, a sum for a
 * multi-valued one. Stage 0 reads the embeddings with it, the first-order term its weights. */
static ameir_status lookup_fields(ameir_model *m, const float *table, int64_t dim, int64_t B, float *out,
                                  int64_t ldo) {
  const ameir_ops *o = m->ops;
  int64_t F = m->n_cat, off = 0;
  for (int32_t s = 0; s < F;) {
    int32_t run = 0;
    while (s + run < F && m->cat_len[s + run] == 1) run++;
    if (run > 1) {
      CK(o->emb_fields_fwd(m->bs, table, dim, m->rows_fm + off, B, run, out + s * dim, ldo));
      off += B * run;
      s += run;
      continue;
    }
    CK(o->emb_sum_fwd(m->bs, table, dim, m->rows_fm + off, B, m->cat_len[s], out + s * dim, ldo));
    off += B * m->cat_len[s];
    s++;
  }
  return AMEIR_OK;
}

ameir_status ameir__model_forward(ameir_model *m, int64_t B, int32_t training, double *loss) {
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const ameir_arch *a = m->arch;
  int64_t K = m->opt.emb, F = m->n_cat, D0 = m->d0;
  float *e = m->x0 + m->off_e;
  /* Stage 0: one lookup per field into its K columns of x0 */
  int64_t fm_off = B * m->lin_total;   /* the sequences' ids follow the fields' */
  if (!m->sn_reuse_x0) CK(lookup_fields(m, m->E, K, B, e, D0));
  if (m->n_dense && !m->sn_reuse_x0) CK(o->copy2d(bs, m->x0 + m->off_d, D0, m->dense, m->n_dense, B, m->n_dense, 0));
  /* Stage 1: behaviours (reads the target's embedding from e) */
  if (!m->sn_reuse_x0) CK(ameir__stage1_forward(m, B, training, m->rows_fm + fm_off));
  /* Stage 2: Hadamard products */
  if (m->sn_reuse_x0) {
    /* x0 holds this batch's Stages 0-2 already */
  } else if (m->sn_ngroup) {
    for (int32_t g = 0; g < m->sn_ngroup; g++) {
      int64_t r0 = m->sn_group[3 * g], nr = m->sn_group[3 * g + 1];
      CK(o->hadamard_fwd(bs, e + r0 * D0, D0, nr, K, m->inter_f_dev + g * m->max_order, m->inter_o_dev + g, 1,
                         m->max_order, m->x0 + r0 * D0 + m->off_p, D0));
    }
  } else if (m->n_inter) {
    CK(o->hadamard_fwd(bs, e, D0, B, K, m->inter_f_dev, m->inter_o_dev, m->n_inter, m->max_order,
                       m->x0 + m->off_p, D0));
  }
  if (m->n_ip && !m->sn_reuse_x0) CK(ameir__ipnn_forward(m, B));
  if (m->n_fb && !m->sn_reuse_x0) CK(ameir__fibinet_forward(m, B));
  /* Stage 3: MLP, eq. (4) */
  const float *hin = m->x0 + m->mlp_in0;
  int64_t ldin = D0;
  for (int32_t l = 0; l < a->n_mlp; l++) {
    const ameir__mlp_p *p = &m->mlp[l];
    if (l == 0 && m->sn_pj >= 0) {
      /* supernet step 2, the linearity trick of section 2.3: W [e | p_j | dense] = W_e e +
       * W_j p_j + W_d dense, with the sampled interaction's own projection W_j */
      int64_t nd = D0 - m->off_d;
      CK(o->gemm(bs, 0, 1, B, p->out, m->off_p, 1.f, hin, ldin, m->P + p->w, p->ldw, 0.f, m->z[0], p->out));
      for (int32_t g = 0; g < (m->sn_ngroup ? m->sn_ngroup : 1); g++) {
        int64_t r0 = m->sn_ngroup ? m->sn_group[3 * g] : 0, nr = m->sn_ngroup ? m->sn_group[3 * g + 1] : B;
        int64_t pj = m->sn_ngroup ? m->sn_group[3 * g + 2] : m->sn_pj;
        CK(o->gemm(bs, 0, 1, nr, p->out, K, 1.f, hin + r0 * ldin + m->off_p, ldin, m->P + pj, K, 1.f,
                   m->z[0] + r0 * p->out, p->out));
      }
      if (nd)
        CK(o->gemm(bs, 0, 1, B, p->out, nd, 1.f, hin + m->off_d, ldin, m->P + p->w + m->off_d, p->ldw, 1.f, m->z[0], p->out));
    } else {
      CK(o->gemm(bs, 0, 1, B, p->out, p->in, 1.f, hin, ldin, m->P + p->w, p->ldw, 0.f, m->z[l], p->out));
    }
    CK(o->add_bias(bs, m->z[l], p->out, m->P + p->b, B, p->out));
    if (p->act == AMEIR_ACT_DICE)
      CK(o->dice_fwd(bs, m->z[l], m->h[l], B, p->out, m->P + p->alpha, m->stats + p->rmean,
                     m->stats + p->rvar, 1e-8f, training, m->dice_save[l]));
    else if (p->act != AMEIR_ACT_IDENTITY)
      CK(o->act_fwd(bs, p->act, m->z[l], m->h[l], B * p->out));
    hin = p->act == AMEIR_ACT_IDENTITY ? m->z[l] : m->h[l];
    ldin = p->out;
    if (training && m->hd) {   /* masks drawn from (seed, step, layer): reproducible on every backend */
      uint64_t off = ((uint64_t)m->step * (uint64_t)(a->n_mlp + 1) + (uint64_t)l) * (uint64_t)(B * p->out);
      CK(o->dropout_fwd(bs, hin, m->hd[l], m->dmask[l], B * p->out, (float)m->opt.dropout,
                        m->ctx->seed ^ 0xd40b0u, off));
      hin = m->hd[l];
    }
  }
  if (m->se_s)
    CK(o->se_fwd(bs, e, D0, B, m->se_s, K, m->P + m->se_v, m->P + m->se_w1, m->P + m->se_b1, m->se_r,
                 m->P + m->se_w2, m->P + m->se_b2, m->hse, K, m->se_save));
  if (m->task == AMEIR_TASK_RETRIEVAL) {
    /* u = W [h_mlp, h_se]; scores e_i^T u of the candidates; sampled BCE, eq. (7) */
    int64_t C = m->n_cand, ld = m->out_ld;
    /* an architecture with nothing before the head (POP: the item biases alone) has u = 0 */
    if (m->h_last) CK(o->gemm(bs, 0, 1, B, K, m->h_last, 1.f, hin, ldin, m->P + m->out_w, ld, 0.f, m->u, K));
    else CK(o->memset0(bs, m->u, sizeof(float) * (size_t)(B * K)));
    if (m->se_s) CK(o->gemm(bs, 0, 1, B, K, K, 1.f, m->hse, K, m->P + m->out_w + m->h_last, ld, 1.f, m->u, K));
    if (!training) {
      if (loss) *loss = NAN;
      return AMEIR_OK;
    }
    const int32_t *cand = m->rows_fm + fm_off + (m->stage1 ? (int64_t)m->n_seq * B * m->seq_t : 0);
    CK(o->dot_rows_fwd(bs, m->E, K, cand, B, C, m->u, m->cscore));
    if (m->L) {   /* + the candidates' biases */
      CK(o->emb_sum_fwd(bs, m->L, 1, m->rows_lin, B * C, 1, m->lin_out, 1));
      CK(o->axpby(bs, B * C, 1.f, m->lin_out, 1.f, m->cscore));
    }
    if (m->opt.loss_bpr) {
      int64_t N = m->opt.neg;
      CK(o->copy2d(bs, m->bpr_d, N, m->cscore + 1, C, B, N, 0));   /* the negatives' scores */
      CK(o->gemm(bs, 0, 0, B, N, 1, -1.f, m->cscore, C, m->bpr_ones, N, 1.f, m->bpr_d, N));   /* - s_pos */
      CK(o->bce_logits(bs, m->bpr_d, m->bpr_y, B * N, 1.f / (float)(B * N), loss, m->bpr_dd, NULL));
      CK(o->copy2d(bs, m->dcscore + 1, C, m->bpr_dd, N, B, N, 0));   /* d s_neg */
      CK(o->gemm(bs, 0, 0, B, 1, N, -1.f, m->bpr_dd, N, m->bpr_ones, 1, 0.f, m->dcscore, C));   /* d s_pos */
      return AMEIR_OK;   /* mean over the (positive, negative) pairs */
    }
    CK(o->bce_logits(bs, m->cscore, m->cy, B * C, 1.f / (float)B, loss, m->dcscore, NULL));
    *loss *= (double)C;   /* per row: -log s(pos) - sum_j log(1 - s(neg_j)) */
    return AMEIR_OK;
  }
  /* output: w^T [h_mlp, h_se] + b */
  CK(o->gemm(bs, 0, 1, B, 1, m->h_last, 1.f, hin, ldin, m->P + m->out_w, m->h_last, 0.f, m->logit, 1));
  if (m->se_s) {
    CK(o->gemm(bs, 0, 1, B, 1, K, 1.f, m->hse, K, m->P + m->out_se, K, 1.f, m->logit, 1));
  }
  CK(o->add_bias(bs, m->logit, 1, m->P + m->out_b, B, 1));
  if (a->extras & AMEIR_EXTRA_FM) CK(o->fm_fwd(bs, e, D0, B, F, K, m->logit, 1));
  if (a->extras & AMEIR_EXTRA_LINEAR) {
    /* the first-order terms per field into lin_out [B, F] from the field-major ids, then their
     * sum over the fields into the logit */
    CK(lookup_fields(m, m->L, 1, B, m->lin_out, F));
    if (F) CK(o->gemm(bs, 0, 0, B, 1, F, 1.f, m->lin_out, F, m->lin_ones, 1, 1.f, m->logit, 1));
    if (m->dl_w >= 0)
      CK(o->gemm(bs, 0, 1, B, 1, m->n_dense, 1.f, m->dense, m->n_dense, m->P + m->dl_w, m->n_dense, 1.f, m->logit, 1));
  }
  CK(ameir__tower_forward(m, B));
  if (!training && !loss) return o->act_fwd(bs, AMEIR_ACT_SIGMOID, m->logit, m->prob, B);   /* scores only */
  return o->bce_logits(bs, m->logit, m->y, B, 1.f / (float)B, loss, training ? m->dlogit : NULL, m->prob);
}

/* The output of MLP layer l as the next layer reads it (identity layers leave it in z). */
static const float *mlp_out(const ameir_model *m, int32_t l, int drop) {
  if (drop) return m->hd[l];
  return m->mlp[l].act == AMEIR_ACT_IDENTITY ? m->z[l] : m->h[l];
}

ameir_status ameir__model_backward_step(ameir_model *m, int64_t B, double lr) {
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const ameir_arch *a = m->arch;
  const ameir__train_opts *op = &m->opt;
  int64_t K = m->opt.emb, F = m->n_cat, D0 = m->d0;
  float *e = m->x0 + m->off_e, *de = m->dx0 + m->off_e;
  float *G = m->G, *P = m->P;
  if (m->sn_nseg)
    for (int32_t i = 0; i < m->sn_nseg; i++)
      CK(o->memset0(bs, G + m->sn_seg[2 * i], sizeof(float) * (size_t)m->sn_seg[2 * i + 1]));
  else
    CK(o->memset0(bs, G, sizeof(float) * (size_t)m->n_params));
  /* output layer */
  int drop = m->hd != NULL;   /* the forward of a training step used the dropped outputs */
  const float *hl = a->n_mlp ? mlp_out(m, a->n_mlp - 1, drop) : m->x0 + m->mlp_in0;
  int64_t ldl = a->n_mlp ? m->h_last : D0;
  float *dhl = a->n_mlp ? m->dh0 : m->dx0 + m->mlp_in0;
  /* an MLP reading x0 from mlp_in0 on (FiBiNET) leaves the columns before it to the parts
   * that add into them */
  if (m->mlp_in0) CK(o->memset0(bs, m->dx0, sizeof(float) * (size_t)(B * D0)));
  int64_t n_before_cand = B * m->lin_total + (m->stage1 ? (int64_t)m->n_seq * B * m->seq_t : 0);
  if (m->task == AMEIR_TASK_RETRIEVAL) {
    int64_t C = m->n_cand, ld = m->out_ld;
    float *gcand = m->decomp + B * F * K + (m->stage1 ? B * m->seq_t * m->d_seq : 0);
    CK(o->dot_rows_bwd(bs, m->E, K, m->rows_fm + n_before_cand, B, C, m->u, m->dcscore, m->du, gcand));
    if (m->h_last) {
      CK(o->gemm(bs, 1, 0, K, m->h_last, B, 1.f, m->du, K, hl, ldl, 1.f, G + m->out_w, ld));
      CK(o->gemm(bs, 0, 0, B, m->h_last, K, 1.f, m->du, K, P + m->out_w, ld, 0.f, dhl, ldl));
    }
    if (m->se_s) {
      CK(o->gemm(bs, 1, 0, K, K, B, 1.f, m->du, K, m->hse, K, 1.f, G + m->out_w + m->h_last, ld));
      CK(o->gemm(bs, 0, 0, B, K, K, 1.f, m->du, K, P + m->out_w + m->h_last, ld, 0.f, m->dhse, K));
    }
  } else {
    CK(o->gemm(bs, 1, 0, 1, m->h_last, B, 1.f, m->dlogit, 1, hl, ldl, 1.f, G + m->out_w, m->h_last));
    CK(o->bias_grad(bs, m->dlogit, 1, G + m->out_b, B, 1));
    CK(o->gemm(bs, 0, 0, B, m->h_last, 1, 1.f, m->dlogit, 1, P + m->out_w, m->h_last, 0.f, dhl, ldl));
    if (m->se_s) {
      CK(o->gemm(bs, 1, 0, 1, K, B, 1.f, m->dlogit, 1, m->hse, K, 1.f, G + m->out_se, K));
      CK(o->gemm(bs, 0, 0, B, K, 1, 1.f, m->dlogit, 1, P + m->out_se, K, 0.f, m->dhse, K));
    }
    if (m->dl_w >= 0)
      CK(o->gemm(bs, 1, 0, 1, m->n_dense, B, 1.f, m->dlogit, 1, m->dense, m->n_dense, 1.f, G + m->dl_w, m->n_dense));
  }
  /* MLP, top down. X holds the gradient of the current layer's output, Y is scratch; the
   * gradient of its input goes to whichever of the two the layer no longer reads. */
  float *X = m->dh0, *Y = m->dh1;
  for (int32_t l = a->n_mlp - 1; l >= 0; l--) {
    const ameir__mlp_p *p = &m->mlp[l];
    if (drop) CK(o->dropout_bwd(bs, X, X, m->dmask[l], B * p->out, (float)m->opt.dropout));
    float *dz = X;
    if (p->act == AMEIR_ACT_DICE) {
      CK(o->dice_bwd(bs, m->z[l], X, Y, B, p->out, P + p->alpha, G + p->alpha, 1e-8f, m->dice_save[l]));
      dz = Y;
    } else if (p->act != AMEIR_ACT_IDENTITY) {
      CK(o->act_bwd(bs, p->act, m->z[l], m->h[l], X, Y, B * p->out));
      dz = Y;
    }
    const float *hin = l ? mlp_out(m, l - 1, drop) : m->x0 + m->mlp_in0;
    int64_t ldin = l ? m->mlp[l - 1].out : D0;
    CK(o->bias_grad(bs, dz, p->out, G + p->b, B, p->out));
    float *dhin = l ? (dz == X ? Y : X) : m->dx0 + m->mlp_in0;
    if (l == 0 && m->sn_pj >= 0) {   /* supernet step 2: see the forward */
      int64_t nd = D0 - m->off_d;
      CK(o->gemm(bs, 1, 0, p->out, m->off_p, B, 1.f, dz, p->out, hin, ldin, 1.f, G + p->w, p->ldw));
      CK(o->gemm(bs, 0, 0, B, m->off_p, p->out, 1.f, dz, p->out, P + p->w, p->ldw, 0.f, dhin, ldin));
      for (int32_t g = 0; g < (m->sn_ngroup ? m->sn_ngroup : 1); g++) {
        int64_t r0 = m->sn_ngroup ? m->sn_group[3 * g] : 0, nr = m->sn_ngroup ? m->sn_group[3 * g + 1] : B;
        int64_t pj = m->sn_ngroup ? m->sn_group[3 * g + 2] : m->sn_pj;
        CK(o->gemm(bs, 1, 0, p->out, K, nr, 1.f, dz + r0 * p->out, p->out, hin + r0 * ldin + m->off_p, ldin, 1.f, G + pj, K));
        CK(o->gemm(bs, 0, 0, nr, K, p->out, 1.f, dz + r0 * p->out, p->out, P + pj, K, 0.f, dhin + r0 * ldin + m->off_p, ldin));
      }
      if (nd) {
        CK(o->gemm(bs, 1, 0, p->out, nd, B, 1.f, dz, p->out, hin + m->off_d, ldin, 1.f, G + p->w + m->off_d, p->ldw));
        CK(o->gemm(bs, 0, 0, B, nd, p->out, 1.f, dz, p->out, P + p->w + m->off_d, p->ldw, 0.f, dhin + m->off_d, ldin));
      }
    } else {
      CK(o->gemm(bs, 1, 0, p->out, p->in, B, 1.f, dz, p->out, hin, ldin, 1.f, G + p->w, p->ldw));
      CK(o->gemm(bs, 0, 0, B, p->in, p->out, 1.f, dz, p->out, P + p->w, p->ldw, 0.f, dhin, ldin));
    }
    if (l) { X = dhin; Y = (dhin == m->dh0) ? m->dh1 : m->dh0; }
  }
  CK(ameir__tower_backward(m, B));   /* before Stage 1 reads its part of dx0 */
  /* Stage 1 backward: d H_0 lands after the e part of the embedding-gradient buffer */
  CK(ameir__stage1_backward(m, B, m->decomp + B * F * K));
  /* shortcut and extras: accumulate into the gradient of e (and p) */
  if (m->se_s)
    CK(o->se_bwd(bs, e, D0, B, m->se_s, K, P + m->se_v, P + m->se_w1, P + m->se_b1, m->se_r, P + m->se_w2,
                 P + m->se_b2, m->dhse, K, m->se_save, de, G + m->se_v, G + m->se_w1, G + m->se_b1,
                 G + m->se_w2, G + m->se_b2));
  if (a->extras & AMEIR_EXTRA_FM) CK(o->fm_bwd(bs, e, D0, B, F, K, m->dlogit, de));
  if (m->sn_ngroup) {
    for (int32_t g = 0; g < m->sn_ngroup; g++) {
      int64_t r0 = m->sn_group[3 * g], nr = m->sn_group[3 * g + 1];
      CK(o->hadamard_bwd(bs, e + r0 * D0, D0, nr, K, m->inter_f_dev + g * m->max_order, m->inter_o_dev + g, 1,
                         m->max_order, m->dx0 + r0 * D0 + m->off_p, D0, de + r0 * D0));
    }
  } else if (m->n_inter) {
    CK(o->hadamard_bwd(bs, e, D0, B, K, m->inter_f_dev, m->inter_o_dev, m->n_inter, m->max_order,
                       m->dx0 + m->off_p, D0, de));
  }
  if (m->n_ip) CK(ameir__ipnn_backward(m, B));
  if (m->n_fb) CK(ameir__fibinet_backward(m, B));
  /* optimiser: dense parameters */
  float lr_f = (float)lr, b1 = (float)op->beta1, b2 = (float)op->beta2, eps = (float)op->eps, l2 = (float)op->l2;
  m->step++;
  if (m->sn_nseg)   /* supernet: only the sampled child's parameters (torch skips grad-less ones) */
    for (int32_t i = 0; i < m->sn_nseg; i++) {
      int64_t so = m->sn_seg[2 * i];
      CK(o->adam_dense(bs, P + so, G + so, m->M + so, m->V + so, m->sn_seg[2 * i + 1], lr_f, b1, b2, eps, l2, m->step));
    }
  else
    CK(o->adam_dense(bs, P, G, m->M, m->V, m->n_params, lr_f, b1, b2, eps, l2, m->step));
  /* embeddings: sparse row gradients */
  if (F || m->stage1) {
    int64_t count = n_before_cand + B * m->n_cand, nu = 0;
    if (F) CK(o->copy2d(bs, m->decomp, F * K, de, D0, B, F * K, 0));
    CK(o->emb_grad_rows(bs, m->rows_fm, m->src_fm, count, m->decomp, K, K, m->uniq, m->gradrows, &nu));
    m->last_nu = nu;
    if (op->sparse_adam)
      CK(o->adam_rows(bs, m->E, K, m->uniq, m->gradrows, nu, m->EM, m->EV, lr_f, b1, b2, eps, l2, m->step));
    else
      CK(o->adam_table_dense(bs, m->E, m->emb_rows, K, m->uniq, m->gradrows, nu, m->EM, m->EV, lr_f, b1, b2, eps, l2, m->step));
    if (a->extras & AMEIR_EXTRA_LINEAR) {
      int64_t nl = 0;
      if (m->task == AMEIR_TASK_RETRIEVAL) {   /* a candidate's bias takes d score */
        CK(o->emb_grad_rows(bs, m->rows_lin, m->src_lin, lin_rows(m, B), m->dcscore, 1, 1, m->uniq_l, m->gradrows_l, &nl));
      } else {
        /* every id of row b takes d logit[b]: broadcast over the fields into lin_out [B, F],
         * then the field-major ids with their slots b*F + s, as the embeddings' gradient */
        if (F) {   /* (behaviour-only data has no field ids: nothing to update) */
          CK(o->gemm(bs, 0, 0, B, F, 1, 1.f, m->dlogit, 1, m->lin_ones, F, 0.f, m->lin_out, F));
          CK(o->emb_grad_rows(bs, m->rows_fm, m->src_fm, B * m->lin_total, m->lin_out, 1, 1, m->uniq_l, m->gradrows_l, &nl));
        }
      }
      m->last_nl = nl;
      if (op->sparse_adam)
        CK(o->adam_rows(bs, m->L, 1, m->uniq_l, m->gradrows_l, nl, m->LM, m->LV, lr_f, b1, b2, eps, l2, m->step));
      else
        CK(o->adam_table_dense(bs, m->L, m->emb_rows, 1, m->uniq_l, m->gradrows_l, nl, m->LM, m->LV, lr_f, b1, b2, eps, l2, m->step));
    }
  }
  return AMEIR_OK;
}
