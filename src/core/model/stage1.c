/* Stage 1 of the backbone: behaviour modeling (eq. 3) and the read-out.
 *
 *   H_0 = [e^a_1 .. e^a_T]            (each e^a_i the concatenation of its S field embeddings)
 *   H_l = Act(Layer(Norm(H_{l-1}))) + H_{l-1}      pads zeroed after the norm and the block
 *   h^a = [sum_i H_L,i, H_L,len-1, sum_i a_i H_L,i, caser(H_L)]  (sum pool, last position, DIN
 *         attention, Caser's convolutions over the last L positions: ops.h caser_fwd)
 *
 * An empty history becomes length 1 holding the padding row (the special tag of the paper,
 * and what torch_ref does). Padding never changes a result: every op masks by length. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "init.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

static void layer_shape(int32_t layer, int32_t *k, int32_t *dil, int32_t *heads) {
  *k = 0; *dil = 1; *heads = 0;
  switch (layer) {
    case AMEIR_LAYER_CONV1: *k = 1; break;
    case AMEIR_LAYER_CONV3: *k = 3; break;
    case AMEIR_LAYER_DCONV3: *k = 3; *dil = 2; break;
    case AMEIR_LAYER_DCONV5: *k = 5; *dil = 2; break;
    case AMEIR_LAYER_DCONV7: *k = 7; *dil = 2; break;
    case AMEIR_LAYER_SA2: *heads = 2; break;
    case AMEIR_LAYER_SA4: *heads = 4; break;
    default: break;
  }
}

/* Number of parameters of a block's layer (d = S*K). */
static int64_t layer_params(const ameir_model *m, int32_t layer, int64_t d);
int64_t ameir__stage1_layer_params(const ameir_model *m, int32_t layer) { return layer_params(m, layer, m->d_seq); }

const char *ameir__stage1_layer_unfit(const ameir_model *m, int32_t layer) {
  int32_t k, dil, heads;
  layer_shape(layer, &k, &dil, &heads);
  if (heads && m->d_seq % heads) return "the behaviour width is not a multiple of the heads";
  if (layer == AMEIR_LAYER_GRU && m->d_seq % 2) return "the Bi-GRU needs an even behaviour width";
  if (layer == AMEIR_LAYER_TARGET_ATT && !m->has_target) return "no target tied to the behaviours";
  return NULL;
}

static int64_t layer_params(const ameir_model *m, int32_t layer, int64_t d) {
  int32_t k, dil, heads;
  layer_shape(layer, &k, &dil, &heads);
  if (k) return d * d * k + d;
  if (heads) return ameir__mha_params(d);
  if (layer == AMEIR_LAYER_GRU) return 2 * ameir__gru_params(d);   /* two directions */
  if (layer == AMEIR_LAYER_TARGET_ATT) return ameir__din_params(d, m->din_a1, m->din_a2);
  return 0;
}

/* Forward FLOPs per sample of Stage 1 at the full history length T (an upper bound: shorter
 * histories are masked, not skipped, by most kernels): the blocks, their LayerNorms and residual
 * sums, and the read-outs. */
int64_t ameir__stage1_flops(const ameir_model *m) {
  if (!m->stage1) return 0;
  const ameir_arch *a = m->arch;
  int64_t T = m->seq_t, d = m->d_seq, f = 0, a1 = m->din_a1, a2 = m->din_a2;
  /* the DIN unit at T positions: its MLP over [q, x, q - x, q * x] (4d), then the weighted sum */
  int64_t din = T * (2 * (4 * d * a1 + a1 * a2 + a2) + 3 * d) + 2 * T * d;
  for (int32_t l = 0; l < a->n_blocks; l++) {
    const ameir__block *b = &a->blocks[l];
    if (b->layer == AMEIR_LAYER_ZERO) continue;
    int32_t k, dil, heads;
    layer_shape(b->layer, &k, &dil, &heads);
    if (k) f += 2 * T * d * d * k;
    else if (heads) f += 8 * T * d * d + 4 * T * T * d;   /* q, k, v, output; scores, weighted sum */
    else if (b->layer == AMEIR_LAYER_GRU) f += 2 * T * 2 * (3 * (d / 2) * d + 3 * (d / 2) * (d / 2));
    else if (b->layer == AMEIR_LAYER_AVGPOOL3 || b->layer == AMEIR_LAYER_MAXPOOL3) f += 3 * T * d;
    else if (b->layer == AMEIR_LAYER_TARGET_ATT) f += din;
    if (b->norm == AMEIR_NORM_LN) f += 5 * T * d;
    f += T * d;   /* the residual sum */
  }
  if (m->pos_p >= 0) f += T * d;
  if (m->off_sum >= 0) f += T * d;
  if (m->off_att >= 0) f += din;
  if (m->caser_p >= 0) {   /* horizontal filters of every height over the last L, vertical ones */
    int64_t L = a->caser_l;
    for (int64_t h = 1; h <= L; h++) f += (L - h + 1) * 2 * h * d * a->caser_nh;
    f += 2 * a->caser_nv * L * d;
  }
  return f;
}

/* Checks the blocks against the data and assigns parameter offsets from *off. Called with the
 * final K by the model's layout. x0's read-out columns start at 0. */
ameir_status ameir__stage1_layout(ameir_model *m, int64_t *off, int64_t *x0_cols) {
  const ameir_arch *a = m->arch;
  ameir_context *ctx = m->ctx;
  int64_t K = m->opt.emb, d = m->n_seq * K;
  m->d_seq = d;
  m->off_sum = m->off_last = m->off_att = -1;
  m->ro_att = m->off_caser = m->caser_p = m->pos_p = -1;
  *x0_cols = 0;
  if (!m->stage1) return AMEIR_OK;
  if (m->mask_row > 0 && !(a->readout & AMEIR_READOUT_LAST))
    return ameir__error(ctx, AMEIR_ECONFIG, "cloze reads the block output at the masked position: the readout needs 'last'");
  if (m->mask_row > 0 && (m->n_seq != 1 || m->seq_base[0] != m->item_base))
    return ameir__error(ctx, AMEIR_ECONFIG, "cloze masks the items of the history: it needs one behaviour field that shares the item table (share: item)");
  free(m->blk_g); free(m->blk_b); free(m->blk_p);
  m->blk_g = malloc(sizeof(int64_t) * (size_t)(a->n_blocks + 1));
  m->blk_b = malloc(sizeof(int64_t) * (size_t)(a->n_blocks + 1));
  m->blk_p = malloc(sizeof(int64_t) * (size_t)(a->n_blocks + 1));
  if (!m->blk_g || !m->blk_b || !m->blk_p) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  for (int32_t l = 0; l < a->n_blocks; l++) {
    const ameir__block *b = &a->blocks[l];
    int32_t k, dil, heads;
    layer_shape(b->layer, &k, &dil, &heads);
    if (heads && d % heads)
      return ameir__error(ctx, AMEIR_ECONFIG, "block %d: %d-head attention needs the behaviour width %lld (fields x emb) to be a multiple of %d", (int)l + 1, heads, (long long)d, heads);
    if (b->layer == AMEIR_LAYER_GRU && d % 2)
      return ameir__error(ctx, AMEIR_ECONFIG, "block %d: the Bi-GRU needs an even behaviour width, got %lld", (int)l + 1, (long long)d);
    if (b->layer == AMEIR_LAYER_TARGET_ATT && !m->has_target)
      return ameir__error(ctx, AMEIR_ECONFIG, "block %d: attention from the target needs target fields tied to the behaviour fields (share:)", (int)l + 1);
    m->blk_g[l] = m->blk_b[l] = m->blk_p[l] = -1;
    if (b->layer == AMEIR_LAYER_ZERO) continue;
    if (b->norm == AMEIR_NORM_LN) { m->blk_g[l] = *off; *off += d; m->blk_b[l] = *off; *off += d; }
    int64_t np = layer_params(m, b->layer, d);
    if (np) { m->blk_p[l] = *off; *off += np; }
  }
  if (a->positions) { m->pos_p = *off; *off += m->seq_t * d; }
  int64_t c = 0;
  if (a->readout & AMEIR_READOUT_SUM) { m->off_sum = c; c += d; }
  if (a->readout & AMEIR_READOUT_LAST) { m->off_last = c; c += d; }
  if ((a->readout & AMEIR_READOUT_ATT) && m->has_target) {
    m->off_att = c; c += d;
    m->ro_att = *off; *off += ameir__din_params(d, m->din_a1, m->din_a2);
  }
  if (a->readout & AMEIR_READOUT_CASER) {
    if (a->caser_l > m->seq_t)
      return ameir__error(ctx, AMEIR_ECONFIG, "the Caser read-out's Markov order L = %d exceeds the history length %d (max_len)",
                          (int)a->caser_l, (int)m->seq_t);
    m->off_caser = c; c += ameir__caser_width(a->caser_l, d, a->caser_nv, a->caser_nh);
    m->caser_p = *off; *off += ameir__caser_params(a->caser_l, d, a->caser_nv, a->caser_nh);
  }
  *x0_cols = c;
  return AMEIR_OK;
}

static void din_init(const ameir_model *m, ameir__rng *r, float *p, int64_t d) {
  int64_t a1 = m->din_a1, a2 = m->din_a2;
  float *w1 = p, *b1 = w1 + a1 * 4 * d, *w2 = b1 + a1, *b2 = w2 + a2 * a1, *w3 = b2 + a2, *b3 = w3 + a2;
  ameir__model_init_linear(m, r, w1, b1, a1, 4 * d, 0);
  ameir__model_init_linear(m, r, w2, b2, a2, a1, 0);
  ameir__model_init_linear(m, r, w3, b3, 1, a2, 0);
}

/* Caser's convolutions as linear layers over their receptive fields: a height-h horizontal
 * filter has fan-in h*d, a vertical one L (ops.h caser_fwd's parameter order) */
static void caser_init(const ameir_model *m, ameir__rng *r, float *p) {
  const ameir_arch *a = m->arch;
  int64_t L = a->caser_l, d = m->d_seq, nv = a->caser_nv, nh = a->caser_nh;
  float *bh = p + nh * d * L * (L + 1) / 2, *wv = bh + L * nh;
  for (int64_t h = 1; h <= L; h++)
    ameir__model_init_linear(m, r, p + nh * d * (h - 1) * h / 2, bh + (h - 1) * nh, nh, h * d, 0);
  ameir__model_init_linear(m, r, wv, wv + nv * L, nv, L, 0);
}

ameir_status ameir__stage1_init_block(ameir_model *m, float *hp, ameir__rng *r, int32_t layer, int64_t poff,
                                      int64_t goff, int64_t boff) {
  int64_t d = m->d_seq;
  if (goff >= 0)
    for (int64_t i = 0; i < d; i++) { hp[goff + i] = 1.f; hp[boff + i] = 0.f; }
  if (poff < 0) return AMEIR_OK;
  float *p = hp + poff;
  int32_t k, dil, heads;
  layer_shape(layer, &k, &dil, &heads);
  if (k) {
    ameir__model_init_linear(m, r, p, p + d * d * k, d, d * k, 0);          /* He normal over fan_in d*k */
  } else if (heads) {
    ameir__model_init_linear(m, r, p, p + 3 * d * d, 3 * d, d, 1);           /* fused q, k, v */
    ameir__model_init_linear(m, r, p + 3 * d * d + 3 * d, p + 4 * d * d + 3 * d, d, d, 1);
  } else if (layer == AMEIR_LAYER_GRU) {
    int64_t hd = d / 2, per = ameir__gru_params(d);
    for (int dir = 0; dir < 2; dir++) {
      float *q = p + dir * per, *wih = q, *whh = wih + 3 * hd * d, *bih = whh + 3 * hd * hd;
      if (m->opt.mlp_init == 1) {
        double bound = 1.0 / sqrt((double)hd);
        ameir__init_uniform(r, q, per, bound);
      } else {   /* appendix D: orthogonal */
        CK(ameir__init_orthogonal(r, wih, 3 * hd, d, 1.0));
        CK(ameir__init_orthogonal(r, whh, 3 * hd, hd, 1.0));
        memset(bih, 0, sizeof(float) * (size_t)(6 * hd));
      }
    }
  } else if (layer == AMEIR_LAYER_TARGET_ATT) {
    din_init(m, r, p, d);
  }
  return AMEIR_OK;
}

ameir_status ameir__stage1_init(ameir_model *m, float *hp, ameir__rng *r) {
  if (!m->stage1) return AMEIR_OK;
  const ameir_arch *a = m->arch;
  for (int32_t l = 0; l < a->n_blocks; l++)
    CK(ameir__stage1_init_block(m, hp, r, a->blocks[l].layer, m->blk_p[l], m->blk_g[l], m->blk_b[l]));
  if (m->ro_att >= 0) din_init(m, r, hp + m->ro_att, m->d_seq);
  if (m->caser_p >= 0) caser_init(m, r, hp + m->caser_p);
  /* positions: drawn as the embeddings they are added to (options init, init_std, init_range),
   * so that neither swamps the other at the start */
  if (m->pos_p >= 0) {
    if (m->opt.emb_init == 0) ameir__init_normal(r, hp + m->pos_p, m->seq_t * m->d_seq, m->opt.init_std);
    else ameir__init_uniform(r, hp + m->pos_p, m->seq_t * m->d_seq, m->opt.init_range);
  }
  return AMEIR_OK;
}

void ameir__stage1_free_ws(ameir_model *m) {
  int32_t L = m->arch ? m->arch->n_blocks : 0;
  if (m->H) {
    for (int32_t l = 0; l <= L; l++) ameir__ws_dev_free(m, m->H[l]);
    for (int32_t l = 0; l < L; l++) {
      ameir__ws_dev_free(m, m->nrm[l]);
      if (m->la[l] != m->ly[l]) ameir__ws_dev_free(m, m->la[l]);
      ameir__ws_dev_free(m, m->ly[l]);
      ameir__ws_dev_free(m, m->lsave[l]);
      ameir__ws_dev_free(m, m->lnsave[l]);
      ameir__ws_dev_free(m, m->psave[l]);
    }
  }
  void *arrs[] = {m->H, m->nrm, m->ly, m->la, m->lsave, m->lnsave, m->psave};
  for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) ameir__ws_host_free(m, arrs[i]);
  m->H = m->nrm = m->ly = m->la = m->lsave = m->lnsave = NULL;
  m->psave = NULL;
  ameir__ws_dev_free(m, m->caser_save);
  m->caser_save = NULL;
  ameir__ws_dev_free(m, m->pos_ones);
  m->pos_ones = NULL;
  float *bufs[] = {m->dHs, m->dt1, m->dt2, m->dt3, m->q, m->dq, m->ro_save};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ameir__ws_dev_free(m, bufs[i]);
  m->dHs = m->dt1 = m->dt2 = m->dt3 = m->q = m->dq = m->ro_save = NULL;
  m->len_dev = NULL;   /* a view into the staging block */
  ameir__ws_dev_free(m, m->kscratch);
  m->kscratch = NULL;
  m->kscratch_bytes = 0;
}

/* The backend's bound for one forward op's scratch (SIZE_MAX: it cannot give one). */
static size_t op_scratch(const ameir_model *m, int32_t op, int64_t B, int32_t arg1, int32_t arg2) {
  const ameir_ops *o = m->ops;
  if (!o->scratch_bytes || !o->set_thread_scratch) return SIZE_MAX;
  return o->scratch_bytes(m->bs, op, B, m->seq_t, m->d_seq, arg1, arg2);
}

size_t ameir__stage1_kernel_scratch(const ameir_model *m, int64_t B, const char **what) {
  if (what) *what = NULL;
  if (!m->stage1) return 0;
  const ameir_arch *a = m->arch;
  size_t most = 0;
  /* the ops ameir__stage1_forward runs that may take scratch, in its order; they run one at a
   * time, so one block of the largest serves them all */
  for (int32_t l = 0; l < a->n_blocks; l++) {
    int32_t layer = a->blocks[l].layer, k, dil, heads, op = 0, arg1 = 0, arg2 = 0;
    const char *name = NULL;
    layer_shape(layer, &k, &dil, &heads);
    if (k) { op = AMEIR_SCRATCH_CONV1D_FWD; arg1 = k; arg2 = dil; name = "a convolution block"; }
    else if (heads) { op = AMEIR_SCRATCH_MHA_FWD; arg1 = heads; name = "a self-attention block"; }
    else if (layer == AMEIR_LAYER_GRU) { op = AMEIR_SCRATCH_GRU_FWD; name = "a Bi-GRU block"; }
    else if (layer == AMEIR_LAYER_TARGET_ATT) {
      op = AMEIR_SCRATCH_DIN_FWD; arg1 = m->din_a1; arg2 = m->din_a2; name = "a target-attention block";
    }
    if (!op) continue;
    if (what && !*what) *what = name;
    size_t s = op_scratch(m, op, B, arg1, arg2);
    if (s > most) most = s;
  }
  if (m->off_att >= 0) {
    size_t s = op_scratch(m, AMEIR_SCRATCH_DIN_FWD, B, m->din_a1, m->din_a2);
    if (what && !*what) *what = "the attention read-out";
    if (s > most) most = s;
  }
  return most;
}

/* pp may be NULL while an arena measures (the array holding it is not there then). */
static ameir_status dalloc(ameir_model *m, void *pp, int64_t floats) {
  return ameir__ws_dev(m, pp, sizeof(float) * (size_t)(floats > 0 ? floats : 1));
}

ameir_status ameir__stage1_workspace(ameir_model *m, int64_t B) {
  if (!m->stage1) return AMEIR_OK;
  const ameir_arch *a = m->arch;
  int32_t L = a->n_blocks;
  int64_t T = m->seq_t, d = m->d_seq, n = B * T * d;
  const int train = !m->ws_infer;   /* an inference-only copy has no backward buffers */
  size_t np = sizeof(float *) * ((size_t)L + 1);
  CK(ameir__ws_host(m, &m->H, np, 1));
  CK(ameir__ws_host(m, &m->nrm, np, 1));
  CK(ameir__ws_host(m, &m->ly, np, 1));
  CK(ameir__ws_host(m, &m->la, np, 1));
  CK(ameir__ws_host(m, &m->lsave, np, 1));
  CK(ameir__ws_host(m, &m->lnsave, np, 1));
  CK(ameir__ws_host(m, &m->psave, sizeof(int32_t *) * ((size_t)L + 1), 1));
  /* the lengths (len_dev) are a part of the model's staging block */
#define SLOT(arr, l) ((arr) ? (void *)&(arr)[l] : NULL)
  CK(dalloc(m, SLOT(m->H, 0), n));
  /* a supernet's blocks change kind from batch to batch: every block gets every buffer */
  int64_t save_max = 0;
  if (m->sn_max) {
    int64_t cand[4] = {ameir__gru_save(B, T, d), ameir__mha_save(B, T, d, 2), ameir__mha_save(B, T, d, 4),
                       m->has_target ? ameir__din_save(B, T, d, m->din_a1, m->din_a2) : 0};
    for (int i = 0; i < 4; i++) if (cand[i] > save_max) save_max = cand[i];
  }
  for (int32_t l = 0; l < L; l++) {
    const ameir__block *b = &a->blocks[l];
    int sn = m->sn_max;
    if (b->layer == AMEIR_LAYER_ZERO && !sn) { if (m->H) m->H[l + 1] = NULL; continue; }
    CK(dalloc(m, SLOT(m->H, l + 1), n));
    CK(dalloc(m, SLOT(m->ly, l), n));
    if (b->act == AMEIR_ACT_IDENTITY && !sn) { if (m->la) m->la[l] = m->ly[l]; }
    else CK(dalloc(m, SLOT(m->la, l), n));
    if (b->norm == AMEIR_NORM_LN || sn) {
      CK(dalloc(m, SLOT(m->nrm, l), n));
      CK(dalloc(m, SLOT(m->lnsave, l), 2 * B * T));
    }
    int64_t save = sn ? save_max : 0;
    if (b->layer == AMEIR_LAYER_GRU) save = ameir__gru_save(B, T, d);
    else if (b->layer == AMEIR_LAYER_SA2 || b->layer == AMEIR_LAYER_SA4) save = ameir__mha_save(B, T, d, b->layer == AMEIR_LAYER_SA2 ? 2 : 4);
    else if (b->layer == AMEIR_LAYER_TARGET_ATT) save = ameir__din_save(B, T, d, m->din_a1, m->din_a2);
    if (sn && save < save_max) save = save_max;
    if (save) CK(dalloc(m, SLOT(m->lsave, l), save));
    if (b->layer == AMEIR_LAYER_MAXPOOL3 || sn) CK(ameir__ws_dev(m, SLOT(m->psave, l), sizeof(int32_t) * (size_t)n));
  }
#undef SLOT
  if (train) {
    CK(dalloc(m, &m->dHs, n));
    CK(dalloc(m, &m->dt1, n));
    CK(dalloc(m, &m->dt2, n));
    CK(dalloc(m, &m->dt3, n));
  }
  if (m->has_target) {
    CK(dalloc(m, &m->q, B * d));
    if (train) CK(dalloc(m, &m->dq, B * d));
  }
  if (m->ro_att >= 0) CK(dalloc(m, &m->ro_save, ameir__din_save(B, T, d, m->din_a1, m->din_a2)));
  if (m->caser_p >= 0) CK(dalloc(m, &m->caser_save, B * (int64_t)a->caser_l * a->caser_nh));   /* int32s */
  if (m->pos_p >= 0) {
    const float one = 1.f;
    CK(ameir__ws_const4(m, &m->pos_ones, B, &one));
  }
  if (m->arena) {   /* a caller's block: the kernels' scratch comes from it too (forward below) */
    m->kscratch_bytes = ameir__stage1_kernel_scratch(m, B, NULL);
    if (m->kscratch_bytes) CK(ameir__ws_dev(m, &m->kscratch, m->kscratch_bytes));
  }
  return AMEIR_OK;
}

/* The last H (blocks of `zero` pass their input through). */
static float *h_at(const ameir_model *m, int32_t l) {
  while (l > 0 && m->arch->blocks[l - 1].layer == AMEIR_LAYER_ZERO) l--;
  return m->H[l];
}

/* ---- cloze: BERT4Rec's masked-item training (Sun et al. 2019, section 3.6) ----
 *
 * A training row (user, target position t) stages the last T items of a[0..t], the target
 * included, i.e. the history row's last T-1 items and the target. Each position becomes [mask]
 * with probability P (the last one when none did); one masked position, drawn uniformly, is the
 * row's positive and its output the read-out: the Cloze objective estimated with one masked
 * position per row per step (an unbiased estimate of the mean over the masked positions). A
 * scored row stages the history's last T-1 items and [mask], read out at the mask. The draws
 * come from the context's seed and the optimiser step, so a run repeats for a seed. */

static int32_t valid_len(const int32_t *ids, int64_t T) {
  int32_t len = 0;
  while (len < T && ids[len] >= 0) len++;
  return len;
}

/* Positions before the appended target (or mask): the history's last min(len, T-1) items. */
static int32_t cloze_keep(int32_t len, int64_t T) { return len < T - 1 ? len : (int32_t)(T - 1); }

int32_t ameir__stage1_cloze_item(const ameir_model *m, const ameir_dataset *ds, int64_t row, int32_t pos) {
  int64_t T = m->seq_t;
  const int32_t *ids = ds->fields[m->seq_field[0]].ids + row * T;
  int32_t len = valid_len(ids, T), keep = cloze_keep(len, T);
  return pos < keep ? ids[len - keep + pos] : ds->fields[m->item_field].ids[row];
}

/* h_len[b] = the window's length (the attention's key-padding length), h_len[nb + b] = the
 * read-out position + 1. */
static ameir_status cloze_stage(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb,
                                int32_t *h_rows, int32_t *h_src, int64_t src_base, int32_t *h_len) {
  int64_t T = m->seq_t, base = m->seq_base[0], voc = m->seq_vocab[0];
  const int32_t mask = (int32_t)m->mask_row;
  const int32_t *hist = ds->fields[m->seq_field[0]].ids, *tid = ds->fields[m->item_field].ids;
  if (h_src && m->opt.positives > 1)
    return ameir__error(m->ctx, AMEIR_EINVAL, "cloze training has one positive per row (the masked item): option positives must be 1, not %d",
                        (int)m->opt.positives);
  ameir__rng r;
  ameir__rng_seed(&r, m->ctx->seed, 0xc102e00000000ull + (uint64_t)m->step);
#define ROW_OF(id) ((id) < 0 ? 0 : (int32_t)(base + ((id) < voc ? (id) : 0)))
  for (int64_t b = 0; b < nb; b++) {
    const int32_t *ids = hist + rows[b] * T;
    int32_t *hr = h_rows + b * T;
    int32_t len = valid_len(ids, T), keep = cloze_keep(len, T), wl = keep + 1, pos = keep;
    for (int32_t j = 0; j < keep; j++) hr[j] = ROW_OF(ids[len - keep + j]);
    hr[keep] = h_src ? ROW_OF(tid[rows[b]]) : mask;
    for (int64_t j = wl; j < T; j++) hr[j] = 0;
    if (h_src) {
      int32_t n = 0;
      /* a share of the rows masks only the last item, as at scoring time (BERT4Rec's extra
       * samples); no draw at all when that share is 0 */
      int last_only = m->arch->cloze_last > 0 && ameir__rng_uniform(&r) < m->arch->cloze_last;
      for (int32_t j = 0; j < wl && !last_only; j++)
        if (ameir__rng_uniform(&r) < m->arch->cloze) { hr[j] = mask; n++; }
      if (!n) { hr[wl - 1] = mask; n = 1; }
      uint64_t k = ameir__rng_below(&r, (uint64_t)n);
      for (pos = 0;; pos++)   /* the k-th masked position */
        if (hr[pos] == mask && k-- == 0) break;
      for (int64_t j = 0; j < T; j++) h_src[b * T + j] = (int32_t)(src_base + b * T + j);
    }
    h_len[b] = wl;
    h_len[nb + b] = pos + 1;
  }
#undef ROW_OF
  return AMEIR_OK;
}

/* Host side: the sequences' rows into h_rows, their lengths into h_len[nb], and (h_src not
 * NULL: a training step) each row's slot in the gathered embeddings into h_src. All three are
 * parts of the model's staging block, moved to the device with it (ameir__model_stage). */
ameir_status ameir__stage1_stage(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb,
                                 int32_t *h_rows, int32_t *h_src, int64_t src_base, int32_t *h_len) {
  if (m->mask_row > 0) return cloze_stage(m, ds, rows, nb, h_rows, h_src, src_base, h_len);
  int64_t T = m->seq_t, S = m->n_seq;
  const ameir__field *f0 = &ds->fields[m->seq_field[0]];
  for (int64_t b = 0; b < nb; b++) {
    const int32_t *ids = f0->ids + rows[b] * T;
    int32_t len = 0;
    while (len < T && ids[len] >= 0) len++;
    h_len[b] = len ? len : 1;   /* empty history: one padding position (the special tag) */
  }
  for (int64_t s = 0; s < S; s++) {
    const ameir__field *f = &ds->fields[m->seq_field[s]];
    int64_t base = m->seq_base[s], voc = m->seq_vocab[s];
    for (int64_t b = 0; b < nb; b++) {
      const int32_t *ids = f->ids + rows[b] * T;
      int32_t *hr = h_rows + (s * nb + b) * T;
      for (int64_t t = 0; t < T; t++) {
        int32_t id = t < h_len[b] ? ids[t] : -1;
        hr[t] = id < 0 ? 0 : (int32_t)(base + (id < voc ? id : 0));
      }
      if (h_src)
        for (int64_t t = 0; t < T; t++) h_src[(s * nb + b) * T + t] = (int32_t)(src_base + (b * T + t) * S + s);
    }
  }
  return AMEIR_OK;
}

static ameir_status stage1_forward(ameir_model *m, int64_t B, const int32_t *rows_seq) {
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const ameir_arch *a = m->arch;
  int64_t K = m->opt.emb, T = m->seq_t, S = m->n_seq, d = m->d_seq, D0 = m->d0, n = B * T * d;
  const float *P = m->P;
  /* H_0: element i = concat of its S field embeddings */
  for (int64_t s = 0; s < S; s++)
    CK(o->emb_sum_fwd(bs, m->E, K, rows_seq + s * B * T, B * T, 1, m->H[0] + s * K, d));
  if (m->has_target)
    for (int64_t s = 0; s < S; s++)
      CK(o->copy2d(bs, m->q + s * K, d, m->x0 + m->off_e + m->seq_target[s] * K, D0, B, K, 0));
  if (m->pos_p >= 0) {   /* + the position table on every row, then the padding is zero again */
    CK(o->gemm(bs, 0, 0, B, T * d, 1, 1.f, m->pos_ones, 1, P + m->pos_p, T * d, 1.f, m->H[0], T * d));
    CK(o->seq_mask(bs, m->H[0], m->H[0], m->len_dev, B, T, d));
  }
  for (int32_t l = 0; l < a->n_blocks; l++) {
    const ameir__block *b = &a->blocks[l];
    if (b->layer == AMEIR_LAYER_ZERO) continue;
    const float *x = h_at(m, l);
    const float *in = x;
    if (b->norm == AMEIR_NORM_LN) {
      CK(o->layernorm_fwd(bs, x, m->nrm[l], B * T, d, P + m->blk_g[l], P + m->blk_b[l], 1e-5f, m->lnsave[l]));
      CK(o->seq_mask(bs, m->nrm[l], m->nrm[l], m->len_dev, B, T, d));
      in = m->nrm[l];
    }
    int32_t k, dil, heads;
    layer_shape(b->layer, &k, &dil, &heads);
    const float *p = m->blk_p[l] >= 0 ? P + m->blk_p[l] : NULL;
    if (k) CK(o->conv1d_fwd(bs, in, m->len_dev, B, T, d, p, p + d * d * k, k, dil, m->ly[l]));
    else if (heads) CK(o->mha_fwd(bs, in, m->len_dev, B, T, d, heads, p, m->ly[l], m->lsave[l]));
    else if (b->layer == AMEIR_LAYER_GRU) CK(o->gru_fwd(bs, in, m->len_dev, B, T, d, p, m->ly[l], m->lsave[l]));
    else if (b->layer == AMEIR_LAYER_AVGPOOL3 || b->layer == AMEIR_LAYER_MAXPOOL3)
      CK(o->pool3_fwd(bs, b->layer == AMEIR_LAYER_MAXPOOL3, in, m->len_dev, B, T, d, m->ly[l], m->psave[l]));
    else if (b->layer == AMEIR_LAYER_TARGET_ATT)
      CK(o->din_fwd(bs, in, m->len_dev, B, T, d, m->q, d, m->din_a1, m->din_a2, p, NULL, 0, m->ly[l], m->lsave[l]));
    if (b->act != AMEIR_ACT_IDENTITY) CK(o->act_fwd(bs, b->act, m->ly[l], m->la[l], n));
    CK(o->copy(bs, m->H[l + 1], b->act != AMEIR_ACT_IDENTITY ? m->la[l] : m->ly[l], sizeof(float) * (size_t)n));
    CK(o->axpby(bs, n, 1.f, x, 1.f, m->H[l + 1]));
    CK(o->seq_mask(bs, m->H[l + 1], m->H[l + 1], m->len_dev, B, T, d));
  }
  const float *hl = h_at(m, a->n_blocks);
  if (m->mask_row > 0) {   /* cloze: `last` is the masked position's output, the sum pools the window */
    if (m->off_sum >= 0) CK(o->readout_fwd(bs, hl, m->len_dev, B, T, d, m->x0 + m->off_sum, D0, NULL, 0));
    CK(o->readout_fwd(bs, hl, m->len_dev + B, B, T, d, NULL, 0, m->x0 + m->off_last, D0));
  } else if (m->off_sum >= 0 || m->off_last >= 0) {
    CK(o->readout_fwd(bs, hl, m->len_dev, B, T, d, m->off_sum >= 0 ? m->x0 + m->off_sum : NULL, D0,
                      m->off_last >= 0 ? m->x0 + m->off_last : NULL, D0));
  }
  if (m->off_att >= 0)
    CK(o->din_fwd(bs, hl, m->len_dev, B, T, d, m->q, d, m->din_a1, m->din_a2, P + m->ro_att, m->x0 + m->off_att, D0, NULL, m->ro_save));
  if (m->off_caser >= 0)
    CK(o->caser_fwd(bs, hl, m->len_dev, B, T, d, a->caser_l, a->caser_nv, a->caser_nh, P + m->caser_p,
                    m->x0 + m->off_caser, D0, m->caser_save));
  return AMEIR_OK;
}

ameir_status ameir__stage1_forward(ameir_model *m, int64_t B, int32_t training, const int32_t *rows_seq) {
  (void)training;
  if (!m->stage1) return AMEIR_OK;
  if (!m->kscratch) return stage1_forward(m, B, rows_seq);
  /* a caller's workspace: the kernels take their scratch from its block on this thread, and
   * it is this thread's no longer when the call returns, whatever happened */
  CK(m->ops->set_thread_scratch(m->bs, m->kscratch, m->kscratch_bytes));
  ameir_status st = stage1_forward(m, B, rows_seq);
  m->ops->set_thread_scratch(m->bs, NULL, 0);
  return st;
}

/* After the MLP backward: dx0's read-out columns are final. Writes d H_0 into dh0_out
 * ([B*T, d] rows) and adds the target gradient into dx0's e columns. */
ameir_status ameir__stage1_backward(ameir_model *m, int64_t B, float *dh0_out) {
  if (!m->stage1) return AMEIR_OK;
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const ameir_arch *a = m->arch;
  int64_t K = m->opt.emb, T = m->seq_t, S = m->n_seq, d = m->d_seq, D0 = m->d0, n = B * T * d;
  const float *P = m->P;
  float *G = m->G;
  float *dH = m->dHs;
  CK(o->memset0(bs, dH, sizeof(float) * (size_t)n));
  if (m->has_target) CK(o->memset0(bs, m->dq, sizeof(float) * (size_t)(B * d)));
  const float *hl = h_at(m, a->n_blocks);
  if (m->mask_row > 0) {   /* cloze: see the forward */
    if (m->off_sum >= 0) CK(o->readout_bwd(bs, m->len_dev, B, T, d, m->dx0 + m->off_sum, D0, NULL, 0, dH));
    CK(o->readout_bwd(bs, m->len_dev + B, B, T, d, NULL, 0, m->dx0 + m->off_last, D0, dH));
  } else if (m->off_sum >= 0 || m->off_last >= 0) {
    CK(o->readout_bwd(bs, m->len_dev, B, T, d, m->off_sum >= 0 ? m->dx0 + m->off_sum : NULL, D0,
                      m->off_last >= 0 ? m->dx0 + m->off_last : NULL, D0, dH));
  }
  if (m->off_att >= 0) {
    CK(o->din_bwd(bs, hl, m->len_dev, B, T, d, m->q, d, m->din_a1, m->din_a2, P + m->ro_att, m->dx0 + m->off_att, D0,
                  NULL, m->ro_save, m->dt1, m->dq, G + m->ro_att));
    CK(o->axpby(bs, n, 1.f, m->dt1, 1.f, dH));
  }
  if (m->off_caser >= 0)   /* accumulates into dH, as readout_bwd */
    CK(o->caser_bwd(bs, hl, m->len_dev, B, T, d, a->caser_l, a->caser_nv, a->caser_nh, P + m->caser_p,
                    m->dx0 + m->off_caser, D0, m->caser_save, dH, G + m->caser_p));
  for (int32_t l = a->n_blocks - 1; l >= 0; l--) {
    const ameir__block *b = &a->blocks[l];
    if (b->layer == AMEIR_LAYER_ZERO) continue;
    const float *x = h_at(m, l);
    const float *in = b->norm == AMEIR_NORM_LN ? m->nrm[l] : x;
    const float *dy = dH;
    if (b->act != AMEIR_ACT_IDENTITY) {
      CK(o->act_bwd(bs, b->act, m->ly[l], m->la[l], dH, m->dt1, n));
      dy = m->dt1;
    }
    int32_t k, dil, heads;
    layer_shape(b->layer, &k, &dil, &heads);
    const float *p = m->blk_p[l] >= 0 ? P + m->blk_p[l] : NULL;
    float *gp = m->blk_p[l] >= 0 ? G + m->blk_p[l] : NULL;
    float *din = m->dt2;
    if (k) CK(o->conv1d_bwd(bs, in, m->len_dev, B, T, d, p, k, dil, dy, din, gp, gp + d * d * k));
    else if (heads) CK(o->mha_bwd(bs, in, m->len_dev, B, T, d, heads, p, dy, m->lsave[l], din, gp));
    else if (b->layer == AMEIR_LAYER_GRU) CK(o->gru_bwd(bs, in, m->len_dev, B, T, d, p, dy, m->lsave[l], din, gp));
    else if (b->layer == AMEIR_LAYER_AVGPOOL3 || b->layer == AMEIR_LAYER_MAXPOOL3)
      CK(o->pool3_bwd(bs, b->layer == AMEIR_LAYER_MAXPOOL3, m->len_dev, B, T, d, dy, m->psave[l], din));
    else if (b->layer == AMEIR_LAYER_TARGET_ATT)
      CK(o->din_bwd(bs, in, m->len_dev, B, T, d, m->q, d, m->din_a1, m->din_a2, p, NULL, 0, dy, m->lsave[l], din, m->dq, gp));
    if (b->norm == AMEIR_NORM_LN) {
      CK(o->seq_mask(bs, din, din, m->len_dev, B, T, d));
      CK(o->layernorm_bwd(bs, x, din, m->dt3, B * T, d, P + m->blk_g[l], G + m->blk_g[l], G + m->blk_b[l], m->lnsave[l]));
      din = m->dt3;
    }
    CK(o->axpby(bs, n, 1.f, din, 1.f, dH));   /* residual: dH_{l-1} = dH_l + d(block input) */
    CK(o->seq_mask(bs, dH, dH, m->len_dev, B, T, d));
  }
  if (m->pos_p >= 0)   /* the position table's gradient: dH summed over the batch (padding is 0) */
    CK(o->gemm(bs, 1, 0, 1, T * d, B, 1.f, m->pos_ones, 1, dH, T * d, 1.f, G + m->pos_p, T * d));
  CK(o->copy(bs, dh0_out, dH, sizeof(float) * (size_t)n));
  if (m->has_target)
    for (int64_t s = 0; s < S; s++)
      CK(o->copy2d(bs, m->dx0 + m->off_e + m->seq_target[s] * K, D0, m->dq + s * K, d, B, K, 1));
  return AMEIR_OK;
}
