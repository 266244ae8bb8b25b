/* The one-shot model of each step (paper section 2.3, DESIGN.md section 6).
 *
 * A supernet is one ameir_model whose flat parameter buffer holds, after the parameters every
 * child uses, a bank of every candidate of the step's subspace:
 *   step 1  for every block position and layer kind its parameters and its LayerNorm;
 *   step 2  for every candidate interaction a projection W_j [first MLP width, K] (the
 *           linearity trick: the first hidden layer is W_e e + W_j p_j);
 *   step 3  the MLP laid out at the widest width K0 (one K0 x K0 matrix per hidden layer, the
 *           first [K0, d0]), a child reading W[:h_out, :h_in] through a row stride.
 * A child is the same model with the architecture and the offsets set to its choices, so
 * training and scoring run the ordinary, gradient-checked forward and backward, and scoring
 * copies no weights. Only the child's parameters get gradients and Adam updates (as PyTorch
 * skips parameters without a gradient); in step 3 the sliced matrices are whole parameters,
 * updated whole, as PyTorch does with a sliced tensor. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"
#include "../model/arch.h"
#include "../model/init.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

static int is_seq(const ameir_dataset *ds, int32_t f) { return ds->fields[f].kind == AMEIR_FIELD_SEQUENCE; }

static int has_seq(const ameir_dataset *ds) {
  for (int32_t i = 0; i < ds->n_fields; i++) if (is_seq(ds, i)) return 1;
  return 0;
}

/* ---------------- fair sampling (FairNAS) ---------------- */

static int32_t fair_next(sn_fair *f, int32_t n, ameir__rng *r) {
  if (f->n != n || f->pos >= n) {
    f->n = n;
    f->pos = 0;
    for (int32_t i = 0; i < n; i++) f->perm[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
      int32_t j = (int32_t)ameir__rng_below(r, (uint64_t)i + 1), t = f->perm[i];
      f->perm[i] = f->perm[j];
      f->perm[j] = t;
    }
  }
  return f->perm[f->pos++];
}

static int32_t fair_inter(ameir_supernet *sn);

static void sort_desc(int32_t *w, int32_t n) {
  for (int32_t i = 1; i < n; i++)
    for (int32_t j = i; j > 0 && w[j] > w[j - 1]; j--) { int32_t t = w[j]; w[j] = w[j - 1]; w[j - 1] = t; }
}

int32_t ameir__sn_fair_next(sn_fair *f, int32_t n, ameir__rng *r) { return fair_next(f, n, r); }
void ameir__sn_sort_desc(int32_t *w, int32_t n) { sort_desc(w, n); }

/* One child per gradient step: every candidate of every decision is drawn equally often (each
 * decision walks a random permutation of its choices). Step 3's widths are drawn the same way
 * and sorted so they never increase. */
static void fair_child(ameir_supernet *sn, sn_child *c) {
  const ameir_space *sp = sn->sp;
  ameir__rng *r = &sn->fair_rng;
  memset(c, 0, sizeof *c);
  int joint = sn->step == SN_JOINT;
  if (sn->step == 1 || (joint && sn->j_blocks)) {
    for (int32_t l = 0; l < sn->L; l++) {
      c->layer[l] = fair_next(&sn->fair[l], sn->n_kinds, r);
      c->act[l] = fair_next(&sn->fair[SN_MAX_BLOCKS + l], sp->n_bacts, r);
      c->norm[l] = fair_next(&sn->fair[2 * SN_MAX_BLOCKS + l], sp->n_norms, r);
    }
  }
  /* joint: the interactions uniformly (there are too many for a permutation per position) */
  if (joint && sn->j_inter) ameir__joint_fill_inter(sn, r, c);
  if (sn->step == 3 || (joint && sn->j_mlp)) {
    for (int32_t l = 0; l < sn->n_mlp; l++) {
      c->width[l] = fair_next(&sn->fair[3 * SN_MAX_BLOCKS + l], sp->n_ratios, r);
      c->mact[l] = fair_next(&sn->fair[3 * SN_MAX_BLOCKS + SN_MAX_MLP + l], sp->n_macts, r);
    }
    sort_desc(c->width, sn->n_mlp);
  }
  if (sn->step == 2) {
    c->inter = fair_inter(sn);
  }
}

/* Step 2's candidates change per cycle and may outnumber a permutation buffer: a walk from a
 * random offset with a random stride coprime with n visits each candidate once per n draws. */
static int32_t fair_inter(ameir_supernet *sn) {
  ameir__rng *r = &sn->fair_rng;
  {
    sn_fair *f = &sn->fair[3 * SN_MAX_BLOCKS + 2 * SN_MAX_MLP];
    int32_t n = sn->n_cand;
    if (f->n != n || f->pos >= n) {
      f->n = n;
      f->pos = 0;
      f->perm[0] = (int32_t)ameir__rng_below(r, (uint64_t)n);
      int32_t s = 1 + (int32_t)ameir__rng_below(r, (uint64_t)n);
      for (;; s = s % n + 1) {   /* smallest stride >= s coprime with n */
        int32_t a = s, b = n;
        while (b) { int32_t t = a % b; a = b; b = t; }
        if (a == 1) break;
      }
      f->perm[1] = s;
    }
    int32_t v = (int32_t)(((int64_t)f->perm[0] + (int64_t)f->pos * f->perm[1]) % n);
    f->pos++;
    return v;
  }
}

/* Step 2 training: the batch's rows split into groups, each with the next candidate of the
 * fair walk (all candidates activated in every gradient update when there are enough rows,
 * the strict fairness of FairNAS; per_batch 1 gives one interaction per batch). */
static ameir_status set_groups(ameir_supernet *sn, int64_t nb) {
  ameir_model *m = sn->m;
  int64_t G = sn->sp->per_batch > 0 ? sn->sp->per_batch : sn->n_cand;
  if (G > sn->n_cand) G = sn->n_cand;
  if (G > nb) G = nb;
  if (G > m->opt.batch) G = m->opt.batch;
  int32_t ns = 0;
  sn->seg[ns++] = 0;
  sn->seg[ns++] = sn->base_params;
  int64_t K = m->opt.emb, len = sn->out1 * K;
  for (int64_t g = 0; g < G; g++) {
    int32_t ci = fair_inter(sn);
    const sn_inter *it = &sn->cand[ci];
    for (int32_t j = 0; j < m->max_order; j++) m->inter_fields[g * m->max_order + j] = j < it->order ? it->f[j] : -1;
    m->inter_order[g] = it->order;
    int64_t r0 = g * nb / G, r1 = (g + 1) * nb / G, pj = sn->pj0 + (int64_t)it->slot * len;
    sn->groups[3 * g] = r0;
    sn->groups[3 * g + 1] = r1 - r0;
    sn->groups[3 * g + 2] = pj;
    int dup = 0;   /* a candidate twice in one batch (the walk wrapped) gets one Adam update */
    for (int32_t q = 2; q < ns && !dup; q += 2) dup = sn->seg[q] == pj;
    if (!dup) { sn->seg[ns++] = pj; sn->seg[ns++] = len; }
  }
  CK(m->ops->upload(m->bs, m->inter_f_dev, m->inter_fields, sizeof(int32_t) * (size_t)(G * m->max_order)));
  CK(m->ops->upload(m->bs, m->inter_o_dev, m->inter_order, sizeof(int32_t) * (size_t)G));
  m->sn_ngroup = (int32_t)G;
  m->sn_group = sn->groups;
  m->sn_pj = sn->groups[2];
  m->sn_nseg = ns / 2;
  return AMEIR_OK;
}

void ameir__sn_fair_child(ameir_supernet *sn, sn_child *c) { fair_child(sn, c); }

void ameir__sn_random_child(ameir_supernet *sn, ameir__rng *r, sn_child *c) {
  const ameir_space *sp = sn->sp;
  memset(c, 0, sizeof *c);
  if (sn->step == SN_JOINT) {
    ameir__joint_random_child(sn, r, c);
  } else if (sn->step == 1) {
    for (int32_t l = 0; l < sn->L; l++) {
      c->layer[l] = (int32_t)ameir__rng_below(r, (uint64_t)sn->n_kinds);
      c->act[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_bacts);
      c->norm[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_norms);
    }
  } else if (sn->step == 3) {
    for (int32_t l = 0; l < sn->n_mlp; l++) {
      c->width[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_ratios);
      c->mact[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_macts);
    }
    sort_desc(c->width, sn->n_mlp);
  } else {
    c->inter = (int32_t)ameir__rng_below(r, (uint64_t)(sn->n_cand > 0 ? sn->n_cand : 1));
  }
}

/* ---------------- children ---------------- */

/* Stage 1 of a child: the blocks' kinds and their parameters in the bank (optimiser segments
 * appended at seg[*ns]). */
static void set_blocks(ameir_supernet *sn, const sn_child *c, int32_t *nsp) {
  ameir_model *m = sn->m;
  ameir_arch *a = m->arch;
  const ameir_space *sp = sn->sp;
  int32_t ns = *nsp;
  {
    int64_t d = m->d_seq;
    for (int32_t l = 0; l < sn->L; l++) {
      int32_t ki = c->layer[l], kind = sn->kinds[ki];
      ameir__block *b = &a->blocks[l];
      b->layer = kind;
      b->act = sp->bacts[c->act[l]];
      b->norm = sp->norms[c->norm[l]];
      int64_t i = (int64_t)l * sn->n_kinds + ki;
      m->blk_p[l] = kind == AMEIR_LAYER_ZERO ? -1 : sn->bp[i];
      m->blk_g[l] = m->blk_b[l] = -1;
      if (kind == AMEIR_LAYER_ZERO) continue;
      if (b->norm == AMEIR_NORM_LN) {
        m->blk_g[l] = sn->bg[i];
        m->blk_b[l] = sn->bb[i];
        sn->seg[ns++] = sn->bg[i];
        sn->seg[ns++] = 2 * d;   /* gamma and beta are adjacent */
      }
      if (sn->bp[i] >= 0) {
        sn->seg[ns++] = sn->bp[i];
        sn->seg[ns++] = ameir__stage1_layer_params(m, kind);
      }
    }
  }
  *nsp = ns;
}

/* Stage 3 of a child: each layer's width (a slice of the K0-wide matrix) and activation. */
static void set_mlp(ameir_supernet *sn, const sn_child *c) {
  ameir_model *m = sn->m;
  ameir_arch *a = m->arch;
  const ameir_space *sp = sn->sp;
  int64_t in = m->d0;
  for (int32_t l = 0; l < sn->n_mlp; l++) {
    ameir__mlp_p *p = &m->mlp[l];
    int64_t w = sn->widths[c->width[l]];
    a->mlp[l].width = (int32_t)w;
    a->mlp[l].act = p->act = sp->macts[c->mact[l]];
    p->in = in;
    p->out = w;
    in = w;
  }
  m->h_last = in;
}

ameir_status ameir__sn_set_child(ameir_supernet *sn, const sn_child *c) {
  ameir_model *m = sn->m;
  int32_t ns = 0;
  if (!m) return ameir__error(sn->ctx, AMEIR_ESTATE, "this supernet describes the space only (no weights)");
  sn->seg[ns++] = 0;
  sn->seg[ns++] = sn->base_params;
  if (sn->step == 1) {
    set_blocks(sn, c, &ns);
  } else if (sn->step == SN_JOINT) {
    /* every subspace at once: the blocks from the bank, the interactions' fields (their first
     * layer columns are shared by position), the MLP sliced; the MLP and the SE block lie in
     * [0, base_params) and are updated whole, as in step 3 */
    if (sn->j_blocks) set_blocks(sn, c, &ns);
    if (sn->j_inter) {
      if (c->n_ji != sn->j_m) return ameir__error(sn->ctx, AMEIR_EINVAL, "the child has %d interactions, the supernet %d", (int)c->n_ji, (int)sn->j_m);
      int32_t mo = m->max_order;
      for (int32_t i = 0; i < sn->j_m; i++) {
        if (c->ji_order[i] < 1 || c->ji_order[i] > mo) return ameir__error(sn->ctx, AMEIR_EINVAL, "interaction %d has order %d (at most %d)", (int)i + 1, (int)c->ji_order[i], (int)mo);
        m->inter_order[i] = c->ji_order[i];
        for (int32_t j = 0; j < mo; j++) m->inter_fields[i * mo + j] = j < c->ji_order[i] ? c->ji_f[i][j] : -1;
      }
      CK(m->ops->upload(m->bs, m->inter_f_dev, m->inter_fields, sizeof(int32_t) * (size_t)(sn->j_m * mo)));
      CK(m->ops->upload(m->bs, m->inter_o_dev, m->inter_order, sizeof(int32_t) * (size_t)sn->j_m));
    }
    if (sn->j_mlp) set_mlp(sn, c);
  } else if (sn->step == 2) {
    if (c->inter < 0 || c->inter >= sn->n_cand)
      return ameir__error(sn->ctx, AMEIR_EINVAL, "interaction candidate %d of %d", (int)c->inter, (int)sn->n_cand);
    const sn_inter *it = &sn->cand[c->inter];
    m->sn_ngroup = 0;
    for (int32_t j = 0; j < m->max_order; j++) m->inter_fields[j] = j < it->order ? it->f[j] : -1;
    m->inter_order[0] = it->order;
    CK(m->ops->upload(m->bs, m->inter_f_dev, m->inter_fields, sizeof(int32_t) * (size_t)m->max_order));
    CK(m->ops->upload(m->bs, m->inter_o_dev, m->inter_order, sizeof(int32_t)));
    m->sn_pj = sn->pj0 + (int64_t)it->slot * sn->out1 * m->opt.emb;
    sn->seg[ns++] = m->sn_pj;
    sn->seg[ns++] = sn->out1 * m->opt.emb;
  } else {
    set_mlp(sn, c);
    ns = 0;   /* sliced matrices are whole parameters: all of them are updated (see the top) */
  }
  m->sn_nseg = ns / 2;
  sn->cur = *c;
  return ameir__model_ws_pool_reset(m);
}

ameir_status ameir__sn_child_to_arch(ameir_supernet *sn, const sn_child *c, ameir_arch **out) {
  if (sn->step == SN_JOINT) return ameir__joint_to_arch(sn, c, out);
  ameir_arch *a = NULL;
  CK(ameir__arch_copy(sn->ctx, sn->fixed, &a));
  const ameir_space *sp = sn->sp;
  if (sn->step == 1) {
    for (int32_t l = 0; l < sn->L && l < a->n_blocks; l++) {
      a->blocks[l].layer = sn->kinds[c->layer[l]];
      a->blocks[l].act = sp->bacts[c->act[l]];
      a->blocks[l].norm = sp->norms[c->norm[l]];
    }
  } else if (sn->step == 3) {
    for (int32_t l = 0; l < sn->n_mlp && l < a->n_mlp; l++) {
      a->mlp[l].width = (int32_t)sn->widths[c->width[l]];
      a->mlp[l].act = sp->macts[c->mact[l]];
    }
  } else if (c->inter >= 0 && c->inter < sn->n_cand) {
    /* the fixed arch plus the one interaction */
    ameir__inter *ni = realloc(a->inter, sizeof *ni * (size_t)(a->n_inter + 1));
    if (!ni) { ameir_arch_free(a); return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory"); }
    a->inter = ni;
    ameir__inter *it = &a->inter[a->n_inter];
    memset(it, 0, sizeof *it);
    const sn_inter *ci = &sn->cand[c->inter];
    for (int32_t j = 0; j < ci->order; j++) {
      it->fields[j] = strdup(sn->ds->fields[sn->m->cat_field[ci->f[j]]].name);
      if (!it->fields[j]) { a->n_inter++; ameir_arch_free(a); return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory"); }
      it->order = j + 1;
    }
    a->n_inter++;
  }
  *out = a;
  return AMEIR_OK;
}

static int32_t slot_by_name(const ameir_supernet *sn, const char *name) {
  for (int32_t s = 0; s < sn->m->n_cat; s++)
    if (!strcmp(sn->ds->fields[sn->m->cat_field[s]].name, name)) return s;
  return -1;
}

ameir_status ameir__sn_child_from_arch(ameir_supernet *sn, const ameir_arch *a, sn_child *c) {
  if (sn->step == SN_JOINT) return ameir__joint_from_arch(sn, a, c);
  const ameir_space *sp = sn->sp;
  ameir_context *ctx = sn->ctx;
  memset(c, 0, sizeof *c);
  if (sn->step == 1) {
    if (a->n_blocks != sn->L) return ameir__error(ctx, AMEIR_EINVAL, "the child has %d blocks, the supernet %d", (int)a->n_blocks, (int)sn->L);
    for (int32_t l = 0; l < sn->L; l++) {
      c->layer[l] = c->act[l] = c->norm[l] = -1;
      for (int32_t k = 0; k < sn->n_kinds; k++) if (sn->kinds[k] == a->blocks[l].layer) c->layer[l] = k;
      for (int32_t k = 0; k < sp->n_bacts; k++) if (sp->bacts[k] == a->blocks[l].act) c->act[l] = k;
      for (int32_t k = 0; k < sp->n_norms; k++) if (sp->norms[k] == a->blocks[l].norm) c->norm[l] = k;
      if (c->layer[l] < 0 || c->act[l] < 0 || c->norm[l] < 0)
        return ameir__error(ctx, AMEIR_EINVAL, "block %d (%s, %s) is not in the supernet's subspace", (int)l + 1,
                            ameir__layer_name(a->blocks[l].layer), ameir__act_name(a->blocks[l].act));
    }
  } else if (sn->step == 3) {
    if (a->n_mlp != sn->n_mlp) return ameir__error(ctx, AMEIR_EINVAL, "the child has %d MLP layers, the supernet %d", (int)a->n_mlp, (int)sn->n_mlp);
    for (int32_t l = 0; l < sn->n_mlp; l++) {
      c->width[l] = c->mact[l] = -1;
      for (int32_t k = 0; k < sp->n_ratios; k++) if (sn->widths[k] == a->mlp[l].width) c->width[l] = k;
      for (int32_t k = 0; k < sp->n_macts; k++) if (sp->macts[k] == a->mlp[l].act) c->mact[l] = k;
      if (c->width[l] < 0 || c->mact[l] < 0 || (l && a->mlp[l].width > a->mlp[l - 1].width))
        return ameir__error(ctx, AMEIR_EINVAL, "MLP layer %d (%d, %s) is not in the supernet's subspace", (int)l + 1,
                            (int)a->mlp[l].width, ameir__act_name(a->mlp[l].act));
    }
  } else {
    if (a->n_inter < 1) return ameir__error(ctx, AMEIR_EINVAL, "a step-2 child names one interaction");
    const ameir__inter *it = &a->inter[a->n_inter - 1];
    sn_inter want = {0};
    want.order = it->order;
    for (int32_t j = 0; j < it->order; j++) {
      want.f[j] = slot_by_name(sn, it->fields[j]);
      if (want.f[j] < 0) return ameir__error(ctx, AMEIR_EINVAL, "interaction field '%s' is not an embedded field", it->fields[j]);
    }
    sort_desc(want.f, want.order);
    c->inter = -1;
    for (int32_t i = 0; i < sn->n_cand && c->inter < 0; i++) {
      const sn_inter *ci = &sn->cand[i];
      if (ci->order != want.order) continue;
      int same = 1;
      for (int32_t j = 0; j < want.order; j++) same &= ci->f[j] == want.f[j];
      if (same) c->inter = i;
    }
    if (c->inter < 0) return ameir__error(ctx, AMEIR_EINVAL, "the interaction is not a candidate of the current cycle");
  }
  return AMEIR_OK;
}

/* ---------------- creation ---------------- */

static int64_t bank_layout(ameir_model *m, int64_t off, void *user) {
  ameir_supernet *sn = user;
  int64_t start = off;
  sn->base_params = off;
  if (sn->step == 1 || (sn->step == SN_JOINT && sn->j_blocks)) {
    int64_t d = m->d_seq;
    for (int32_t l = 0; l < sn->L; l++)
      for (int32_t k = 0; k < sn->n_kinds; k++) {
        int64_t i = (int64_t)l * sn->n_kinds + k, np = ameir__stage1_layer_params(m, sn->kinds[k]);
        sn->bg[i] = off; off += d;
        sn->bb[i] = off; off += d;
        sn->bp[i] = np ? off : -1;
        off += np;
      }
  } else if (sn->step == 2) {
    sn->out1 = m->mlp[0].out;
    sn->pj0 = off;
    off += (int64_t)sn->n_slots * sn->out1 * m->opt.emb;
  }
  return off - start;
}

/* The step's subspace, with the kinds that do not fit the data left out (a 4-head attention on
 * a width that is not a multiple of 4, attention from the target without a tied target). */
static ameir_status pick_kinds(ameir_supernet *sn, ameir_model *probe) {
  sn->n_kinds = 0;
  for (int32_t i = 0; i < sn->sp->n_layers; i++) {
    int32_t k = sn->sp->layers[i];
    if (ameir__stage1_layer_unfit(probe, k)) continue;
    sn->kinds[sn->n_kinds++] = k;
  }
  if (!sn->n_kinds) return ameir__error(sn->ctx, AMEIR_ECONFIG, "no layer of the space fits this data's behaviour width");
  return AMEIR_OK;
}

static ameir_status build_base(ameir_supernet *sn, const ameir_arch *fixed, ameir_arch **out) {
  const ameir_space *sp = sn->sp;
  ameir_context *ctx = sn->ctx;
  ameir_arch *a = NULL;
  char text[1024];
  if (fixed) CK(ameir__arch_copy(ctx, fixed, &a));
  else {
    int seq = has_seq(sn->ds);
    snprintf(text, sizeof text, "mlp: %s\nreadout: %s%s%s\n", "(1, relu)",
             seq ? (sp->readout & AMEIR_READOUT_SUM ? "sum " : "") : "",
             seq ? (sp->readout & AMEIR_READOUT_LAST ? "last " : "") : "",
             seq ? (sp->readout & AMEIR_READOUT_ATT ? "att" : "") : "");
    if (!seq) snprintf(text, sizeof text, "mlp: (1, relu)\n");
    CK(ameir_arch_parse(&a, ctx, text));
    ameir__mlp_layer *l = NULL;
    int32_t n = 0;
    ameir_status st = ameir__mlp_parse(ctx, sp->predefined_mlp, &l, &n);
    if (st) { ameir_arch_free(a); return st; }
    free(a->mlp);
    a->mlp = l;
    a->n_mlp = n;
  }
  *out = a;
  return AMEIR_OK;
}

static ameir_status init_bank(ameir_supernet *sn) {
  ameir_model *m = sn->m;
  const ameir_ops *o = m->ops;
  if (sn->step == 3) return AMEIR_OK;
  float *hp = malloc(sizeof(float) * (size_t)(m->n_params + 1));
  if (!hp) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory");
  ameir_status st = o->download(m->bs, hp, m->P, sizeof(float) * (size_t)m->n_params);
  ameir__rng r;
  ameir__rng_seed(&r, sn->ctx->seed, 0xba4c0000u + (uint64_t)sn->step);
  if (!st && (sn->step == 1 || sn->step == SN_JOINT))
    for (int32_t l = 0; l < sn->L && !st; l++)
      for (int32_t k = 0; k < sn->n_kinds && !st; k++) {
        int64_t i = (int64_t)l * sn->n_kinds + k;
        st = ameir__stage1_init_block(m, hp, &r, sn->kinds[k], sn->bp[i], sn->bg[i], sn->bb[i]);
      }
  if (!st) st = o->upload(m->bs, m->P, hp, sizeof(float) * (size_t)m->n_params);
  free(hp);
  return st;
}

/* Draws the projection of a new step-2 candidate (and clears its Adam moments). */
static ameir_status init_projection(ameir_supernet *sn, int32_t slot) {
  ameir_model *m = sn->m;
  int64_t K = m->opt.emb, n = sn->out1 * K, off = sn->pj0 + (int64_t)slot * n;
  float *w = malloc(sizeof(float) * (size_t)n);
  if (!w) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory");
  ameir__rng r;
  ameir__rng_seed(&r, sn->ctx->seed, 0x91000000u + (uint64_t)slot * 7919u + (uint64_t)sn->sched_done);
  /* the first layer's fan-in is d0: the projection is that matrix's K columns of one interaction */
  if (m->opt.mlp_init == 1) ameir__init_uniform(&r, w, n, 1.0 / sqrt((double)m->d0));
  else for (int64_t i = 0; i < n; i++) w[i] = (float)(ameir__rng_normal(&r) * sqrt(2.0 / (double)m->d0));
  /* the model stores W [out, in]; the projection is [out1, K] row-major likewise */
  ameir_status st = m->ops->upload(m->bs, m->P + off, w, sizeof(float) * (size_t)n);
  free(w);
  if (!st) st = m->ops->memset0(m->bs, m->M + off, sizeof(float) * (size_t)n);
  if (!st) st = m->ops->memset0(m->bs, m->V + off, sizeof(float) * (size_t)n);
  return st;
}

static int64_t n_choose(int64_t n, int64_t k) {
  int64_t r = 1;
  for (int64_t i = 1; i <= k; i++) r = r * (n - k + i) / i;
  return r;
}

/* The joint supernet's layout (method joint, and the space of random search and evolution):
 * L_a blocks whose parameters live in the bank (every block `zero` in the base layout), M
 * interactions of the highest order as placeholders (a child uploads its own fields), the MLP
 * laid out at the widest width K0 with Dice, as step 3's. The subspaces that do not apply to
 * the data (section 3.2) keep the fixed parts of AMEIR's templates. */
/* Step 3's MLP bank on `base`: widths from the space's ratios of K0 (the MLP input width of the
 * probe model made from base), every layer laid out at K0 with Dice (so every activation's
 * parameters exist). Shared by the three-step search's step 3 and the joint search. */
static ameir_status mlp_bank_base(ameir_supernet *sn, ameir_arch *base, int64_t k0) {
  const ameir_space *sp = sn->sp;
  sn->K0 = k0;
  sn->n_mlp = sp->mlp_layers;
  for (int32_t i = 0; i < sp->n_ratios; i++) {
    int64_t w = (int64_t)llround(sp->ratios[i] * (double)sn->K0);
    sn->widths[i] = w < 1 ? 1 : w;
  }
  free(base->mlp);
  base->n_mlp = sn->n_mlp;
  base->mlp = calloc((size_t)sn->n_mlp, sizeof *base->mlp);
  if (!base->mlp) {
    base->n_mlp = 0;
    return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory");
  }
  for (int32_t l = 0; l < sn->n_mlp; l++) base->mlp[l] = (ameir__mlp_layer){(int32_t)sn->K0, AMEIR_ACT_DICE};
  return AMEIR_OK;
}

static ameir_status joint_base(ameir_supernet *sn, ameir_arch *base, const char *opts) {
  const ameir_space *sp = sn->sp;
  const ameir_dataset *ds = sn->ds;
  ameir_context *ctx = sn->ctx;
  int ctr = ds->task != AMEIR_TASK_RETRIEVAL;
  ameir_model *probe = NULL;
  base->shortcut = sp->shortcut;
  if (has_seq(ds)) {
    free(base->blocks);
    base->n_blocks = sn->L = sp->blocks;
    base->blocks = calloc((size_t)sn->L, sizeof *base->blocks);
    if (!base->blocks) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    for (int32_t l = 0; l < sn->L; l++) base->blocks[l] = (ameir__block){AMEIR_LAYER_ZERO, AMEIR_ACT_IDENTITY, AMEIR_NORM_NONE};
    sn->j_blocks = 1;
  }
  CK(ameir__model_create_ex(&probe, ctx, base, ds, opts, NULL, NULL));
  ameir_status st = sn->j_blocks ? pick_kinds(sn, probe) : AMEIR_OK;
  int64_t nb = (int64_t)sn->L * sn->n_kinds + 1;   /* the bank's offsets, as step 1's */
  if (!st && (!(sn->bp = malloc(8 * (size_t)nb)) || !(sn->bg = malloc(8 * (size_t)nb)) || !(sn->bb = malloc(8 * (size_t)nb))))
    st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  /* the fields an interaction may use: the embedded non-sequence ones (as step 2's) */
  sn->slot_field = malloc(sizeof(int32_t) * (size_t)(probe->n_cat + 1));
  sn->eligible = malloc(sizeof(int32_t) * (size_t)(probe->n_cat + 1));
  if (!st && (!sn->slot_field || !sn->eligible)) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  for (int32_t i = 0; !st && i < probe->n_cat; i++) {
    sn->slot_field[i] = probe->cat_field[i];
    if (!is_seq(ds, probe->cat_field[i])) sn->eligible[sn->n_eligible++] = i;
  }
  ameir_model_free(probe);
  probe = NULL;
  CK(st);
  int32_t E = sn->n_eligible;
  if (ctr && sp->inter_m > 0 && E >= 2) {
    /* orders 2 .. cycles + 1: the highest AMEIR's SMBO reaches */
    int32_t mo = sp->cycles + 1;
    if (mo > E) mo = E;
    if (mo > SN_MAX_ORDER) mo = SN_MAX_ORDER;
    if (mo > AMEIR_ARCH_MAX_ORDER) mo = AMEIR_ARCH_MAX_ORDER;
    int64_t count = 0;
    for (int32_t r = 2; r <= mo; r++) count += n_choose(E, r);
    int32_t M = sp->inter_m < SN_MAX_INTER ? sp->inter_m : SN_MAX_INTER;
    if (M > count) M = (int32_t)count;
    sn->j_order = mo;
    sn->j_m = M;
    sn->j_inter = 1;
    for (int32_t i = 0; i < base->n_inter; i++)
      for (int32_t j = 0; j < base->inter[i].order; j++) free(base->inter[i].fields[j]);
    free(base->inter);
    base->n_inter = 0;
    base->inter = calloc((size_t)M, sizeof *base->inter);
    if (!base->inter) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    for (int32_t i = 0; i < M; i++) {
      base->n_inter++;
      for (int32_t j = 0; j < mo; j++) {
        base->inter[i].fields[j] = strdup(ds->fields[sn->slot_field[sn->eligible[j]]].name);
        base->inter[i].order = j + 1;
        if (!base->inter[i].fields[j]) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      }
    }
  }
  if (ctr) {
    CK(ameir__model_create_ex(&probe, ctx, base, ds, opts, NULL, NULL));
    int64_t k0 = probe->d0;
    ameir_model_free(probe);
    CK(mlp_bank_base(sn, base, k0));
    sn->j_mlp = 1;
  }
  if (!sn->j_blocks && !sn->j_inter && !sn->j_mlp) return ameir__error(ctx, AMEIR_EUNSUPPORTED, "no subspace of the search applies to this data");
  ameir_arch_free(sn->fixed);
  sn->fixed = NULL;
  return ameir__arch_copy(ctx, base, &sn->fixed);   /* the children's template */
}

static ameir_status sn_create(ameir_supernet **out, const ameir_space *sp, const ameir_dataset *ds, int32_t step,
                              const ameir_arch *fixed, int32_t desc_only) {
  ameir_context *ctx = sp->ctx;
  int seq = has_seq(ds);
  if (step == 1 && !seq) return ameir__error(ctx, AMEIR_EUNSUPPORTED, "step 1 searches behaviour blocks: the dataset has no sequence field");
  if (step > 1 && ds->task == AMEIR_TASK_RETRIEVAL)
    return ameir__error(ctx, AMEIR_EUNSUPPORTED, "step %d does not apply to retrieval data (section 3.2: step 1 only)", (int)step);
  ameir_supernet *sn = calloc(1, sizeof *sn);
  if (!sn) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  sn->ctx = ctx;
  sn->sp = sp;
  sn->ds = ds;
  sn->step = step;
  sn->desc_only = desc_only;
  char *opts = ameir__space_opts(sp);
  ameir_arch *base = NULL;
  ameir_model *probe = NULL;
  ameir_status st = opts ? build_base(sn, fixed, &sn->fixed) : ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  if (!st) st = ameir__arch_copy(ctx, sn->fixed, &base);
  if (!st && step == SN_JOINT) st = joint_base(sn, base, opts);
  if (!st && step == 1) {
    /* L_a blocks; the base layout gets none of their parameters (all `zero`): the bank has them */
    free(base->blocks);
    base->n_blocks = sn->L = sp->blocks;
    base->blocks = calloc((size_t)sn->L, sizeof *base->blocks);
    if (!base->blocks) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    for (int32_t l = 0; !st && l < sn->L; l++) base->blocks[l] = (ameir__block){AMEIR_LAYER_ZERO, AMEIR_ACT_IDENTITY, AMEIR_NORM_NONE};
    if (!st) {   /* the children's template */
      ameir_arch_free(sn->fixed);
      sn->fixed = NULL;
      st = ameir__arch_copy(ctx, base, &sn->fixed);
    }
    if (!st) st = ameir__model_create_ex(&probe, ctx, base, ds, opts, NULL, NULL);
    if (!st) st = pick_kinds(sn, probe);
    int64_t nb = (int64_t)sn->L * sn->n_kinds + 1;
    if (!st && (!(sn->bp = malloc(8 * (size_t)nb)) || !(sn->bg = malloc(8 * (size_t)nb)) || !(sn->bb = malloc(8 * (size_t)nb))))
      st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  }
  if (!st && step == 2) {
    /* behaviour modeling is left out for speed (section 2.3): behaviours enter as sum-pooled
     * fields; one interaction slot whose fields change per batch */
    for (int32_t i = 0; i < base->n_inter; i++)
      for (int32_t j = 0; j < base->inter[i].order; j++) free(base->inter[i].fields[j]);
    free(base->inter);
    base->inter = NULL;
    base->n_inter = 0;
    free(base->blocks);
    base->blocks = NULL;
    base->n_blocks = 0;
    base->shortcut = AMEIR_SHORTCUT_NONE;
    ameir__mlp_layer *l = NULL;
    int32_t n = 0;
    st = ameir__mlp_parse(ctx, sp->predefined_mlp, &l, &n);
    if (!st) { free(base->mlp); base->mlp = l; base->n_mlp = n; }
    base->readout = seq ? AMEIR_READOUT_FIELD : 0;   /* behaviours pooled as fields */
    if (!st) {   /* the children's template: no interaction (each child adds its own) */
      ameir_arch_free(sn->fixed);
      sn->fixed = NULL;
      st = ameir__arch_copy(ctx, base, &sn->fixed);
    }
    /* the model gets one interaction slot (a placeholder on the first categorical field) */
    const char *first = NULL;
    for (int32_t i = 0; i < ds->n_fields && !first; i++)
      if (ds->fields[i].kind == AMEIR_FIELD_CATEGORICAL || ds->fields[i].kind == AMEIR_FIELD_MULTI) first = ds->fields[i].name;
    if (!st && !first) st = ameir__error(ctx, AMEIR_EUNSUPPORTED, "step 2 needs categorical fields");
    if (!st) {
      base->inter = calloc(1, sizeof *base->inter);
      if (base->inter) { base->n_inter = 1; base->inter[0].order = 1; base->inter[0].fields[0] = strdup(first); }
      if (!base->inter || !base->inter[0].fields[0]) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    }
    if (!st) st = ameir__model_create_ex(&probe, ctx, base, ds, opts, NULL, NULL);
    if (!st) {
      for (int32_t s = 0; s < probe->n_cat; s++)
        if (!is_seq(ds, probe->cat_field[s])) sn->n_eligible++;
      sn->eligible = malloc(sizeof(int32_t) * (size_t)(sn->n_eligible + 1));
      if (!sn->eligible) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      sn->n_eligible = 0;
      for (int32_t s = 0; !st && s < probe->n_cat; s++)
        if (!is_seq(ds, probe->cat_field[s])) sn->eligible[sn->n_eligible++] = s;
      int32_t E = sn->n_eligible, k = sp->inter_topk;
      int64_t cap = (int64_t)(k > E ? k : E) * E + (k > E ? k : E);
      sn->n_slots = (int32_t)cap;
      sn->cand = calloc((size_t)cap + 1, sizeof *sn->cand);
      sn->free_slots = malloc(sizeof(int32_t) * (size_t)(cap + 1));
      if (!st && (!sn->cand || !sn->free_slots)) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      for (int32_t i = 0; !st && i < sn->n_slots; i++) sn->free_slots[sn->n_free++] = sn->n_slots - 1 - i;
    }
  }
  if (!st && step == 3) {
    if (!st) st = ameir__model_create_ex(&probe, ctx, base, ds, opts, NULL, NULL);
    if (!st) {
      st = mlp_bank_base(sn, base, probe->d0);
      base->shortcut = sp->shortcut;
      ameir_arch_free(sn->fixed);
      sn->fixed = NULL;
      if (!st) st = ameir__arch_copy(ctx, base, &sn->fixed);
    }
  }
  ameir_model_free(probe);
  if (desc_only) {   /* the space only: no weights */
    ameir_arch_free(base);
    free(opts);
    if (st) { ameir_supernet_free(sn); return st; }
    *out = sn;
    return AMEIR_OK;
  }
  if (!st) st = ameir__model_create_ex(&sn->m, ctx, base, ds, opts, bank_layout, sn);
  if (!st && (step == 3 || (step == SN_JOINT && sn->j_mlp))) {
    /* rows of the first layer are [K0, d0]; later layers [K0, K0] with stride K0 */
    for (int32_t l = 0; l < sn->n_mlp; l++) sn->m->mlp[l].ldw = sn->m->mlp[l].in;
    if (step == 3) sn->base_params = sn->m->n_params;
  }
  if (!st && step == 2) {
    /* room for the longest interaction of the last cycle */
    ameir_model *m = sn->m;
    m->max_order = sp->cycles + 1 < SN_MAX_ORDER ? sp->cycles + 1 : SN_MAX_ORDER;
    int64_t ng = sn->n_slots < m->opt.batch ? sn->n_slots : m->opt.batch;   /* row groups of a batch */
    free(m->inter_fields);
    free(m->inter_order);
    m->inter_fields = malloc(sizeof(int32_t) * (size_t)(ng * m->max_order));
    m->inter_order = malloc(sizeof(int32_t) * (size_t)ng);
    m->ops->free(m->bs, m->inter_f_dev);
    m->ops->free(m->bs, m->inter_o_dev);
    m->inter_f_dev = m->inter_o_dev = NULL;
    sn->groups = malloc(sizeof(int64_t) * (size_t)(3 * ng));
    if (!m->inter_fields || !m->inter_order || !sn->groups) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    if (!st) st = m->ops->alloc(m->bs, sizeof(int32_t) * (size_t)(ng * m->max_order), (void **)&m->inter_f_dev);
    if (!st) st = m->ops->alloc(m->bs, sizeof(int32_t) * (size_t)ng, (void **)&m->inter_o_dev);
  }
  if (!st) {
    sn->m->sn_max = 1;
    sn->seg = malloc(sizeof(int64_t) * (size_t)(2 * (sn->n_slots + 4 * SN_MAX_BLOCKS + 8)));
    if (!sn->seg) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    sn->m->sn_seg = sn->seg;
    sn->m->started = 1;
    st = init_bank(sn);
  }
  ameir_arch_free(base);
  free(opts);
  if (st) { ameir_supernet_free(sn); return st; }
  /* start from the first child (every stage has a valid configuration) */
  sn_child c;
  memset(&c, 0, sizeof c);
  if (step == 3 || step == SN_JOINT)
    for (int32_t l = 0; l < sn->n_mlp; l++) c.width[l] = sp->n_ratios - 1;
  if (step == SN_JOINT && sn->j_inter) {
    ameir__rng r;
    ameir__rng_seed(&r, ctx->seed, 0x101a0000u);
    ameir__joint_fill_inter(sn, &r, &c);
  }
  if (step != 2) {
    st = ameir__sn_set_child(sn, &c);
    if (st) { ameir_supernet_free(sn); return st; }
  }
  *out = sn;
  return AMEIR_OK;
}

AMEIR_API ameir_status ameir_supernet_create(ameir_supernet **out, const ameir_space *sp, const ameir_dataset *ds,
                                             int32_t step, const ameir_arch *fixed) {
  if (!out || !sp || !ds) return ameir__error(sp ? sp->ctx : NULL, AMEIR_EINVAL, "ameir_supernet_create: NULL argument");
  *out = NULL;
  if (step < 1 || step > 3) return ameir__error(sp->ctx, AMEIR_EINVAL, "step %d: the supernet steps are 1, 2 and 3", (int)step);
  return sn_create(out, sp, ds, step, fixed, 0);
}

ameir_status ameir__sn_create_joint(ameir_supernet **out, const ameir_space *sp, const ameir_dataset *ds, int32_t desc_only) {
  *out = NULL;
  return sn_create(out, sp, ds, SN_JOINT, NULL, desc_only);
}

AMEIR_API void ameir_supernet_free(ameir_supernet *sn) {
  if (!sn) return;
  ameir_model_free(sn->m);
  ameir_arch_free(sn->fixed);
  free(sn->bp); free(sn->bg); free(sn->bb);
  free(sn->cand); free(sn->free_slots); free(sn->eligible);
  free(sn->seg); free(sn->groups); free(sn->best_buf); free(sn->slot_field);
  free(sn);
}

ameir_status ameir__sn_set_candidates(ameir_supernet *sn, const sn_inter *c, int32_t n) {
  if (n > sn->n_slots) return ameir__error(sn->ctx, AMEIR_EINVAL, "%d candidates, room for %d", (int)n, (int)sn->n_slots);
  /* keep the slots of candidates that stay; free the others; draw fresh projections for new ones */
  int32_t *keep = calloc((size_t)sn->n_slots + 1, sizeof(int32_t));
  sn_inter *nc = calloc((size_t)n + 1, sizeof *nc);
  if (!keep || !nc) { free(keep); free(nc); return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory"); }
  for (int32_t i = 0; i < n; i++) {
    nc[i] = c[i];
    nc[i].slot = -1;
    for (int32_t j = 0; j < sn->n_cand; j++) {
      const sn_inter *o = &sn->cand[j];
      if (o->order != c[i].order || keep[o->slot]) continue;
      int same = 1;
      for (int32_t q = 0; q < o->order; q++) same &= o->f[q] == c[i].f[q];
      if (same) { nc[i].slot = o->slot; keep[o->slot] = 1; break; }
    }
  }
  for (int32_t j = 0; j < sn->n_cand; j++)
    if (!keep[sn->cand[j].slot]) sn->free_slots[sn->n_free++] = sn->cand[j].slot;
  ameir_status st = AMEIR_OK;
  for (int32_t i = 0; i < n && !st; i++) {
    if (nc[i].slot >= 0) continue;
    nc[i].slot = sn->free_slots[--sn->n_free];
    st = init_projection(sn, nc[i].slot);
  }
  if (!st) {
    memcpy(sn->cand, nc, sizeof *nc * (size_t)n);
    sn->n_cand = n;
    memset(&sn->fair[3 * SN_MAX_BLOCKS + 2 * SN_MAX_MLP], 0, sizeof(sn_fair));
  }
  free(keep);
  free(nc);
  return st;
}

/* ---------------- training and scoring ---------------- */

static double lr_cos(const ameir_supernet *sn) {
  const ameir__train_opts *o = &sn->m->opt;
  if (sn->sched_total <= 0) return o->lr;
  double t = (double)sn->sched_done / (double)sn->sched_total;
  return o->lr * 0.5 * (1.0 + cos(3.141592653589793 * (t < 1 ? t : 1)));
}

static ameir_status ensure_ws(ameir_supernet *sn) {
  ameir_model *m = sn->m;
  int64_t B = m->opt.batch > m->opt.eval_batch ? m->opt.batch : m->opt.eval_batch;
  if (m->ws_batch >= B) return AMEIR_OK;
  /* sized with the widest child in place */
  sn_child save = sn->cur, wide;
  memset(&wide, 0, sizeof wide);
  int sliced = sn->step == 3 || (sn->step == SN_JOINT && sn->j_mlp);
  if (sn->step == SN_JOINT) wide = sn->cur;   /* its interactions are valid */
  if (sliced) {
    for (int32_t l = 0; l < sn->n_mlp; l++) wide.width[l] = sn->sp->n_ratios - 1;
    CK(ameir__sn_set_child(sn, &wide));
    for (int32_t l = 0; l < sn->n_mlp; l++) m->mlp[l].out = sn->K0;
  }
  ameir_status st = ameir__model_alloc_workspace(m, B);
  if (sliced) { ameir_status s2 = ameir__sn_set_child(sn, &save); if (!st) st = s2; }
  return st;
}

static ameir_status snapshot(ameir_supernet *sn) {
  free(sn->best_buf);
  sn->best_buf = NULL;
  sn->best_len = 0;
  FILE *f = open_memstream(&sn->best_buf, &sn->best_len);
  if (!f) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory for the best-epoch snapshot");
  ameir_status st = ameir__sn_save_state(sn, f);
  if (fclose(f) != 0 && !st) st = ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory for the best-epoch snapshot");
  return st;
}

static ameir_status restore(ameir_supernet *sn) {
  if (!sn->best_buf || !sn->best_len) return AMEIR_OK;
  FILE *f = fmemopen(sn->best_buf, sn->best_len, "rb");
  if (!f) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory restoring the best epoch");
  ameir_status st = ameir__sn_load_state(sn, f);
  fclose(f);
  return st;
}

ameir_status ameir__sn_save_best(ameir_supernet *sn, FILE *f) {
  uint64_t n = sn->best_buf ? sn->best_len : 0;
  if (fwrite(&n, sizeof n, 1, f) != 1 || (n && fwrite(sn->best_buf, 1, n, f) != n))
    return ameir__error(sn->ctx, AMEIR_EIO, "checkpoint write failed");
  return AMEIR_OK;
}

ameir_status ameir__sn_load_best(ameir_supernet *sn, FILE *f) {
  uint64_t n;
  if (fread(&n, sizeof n, 1, f) != 1 || n > ((uint64_t)1 << 40)) return ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint is truncated");
  free(sn->best_buf);
  sn->best_buf = NULL;
  sn->best_len = 0;
  if (!n) return AMEIR_OK;
  sn->best_buf = malloc((size_t)n);
  if (!sn->best_buf) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory");
  if (fread(sn->best_buf, 1, (size_t)n, f) != (size_t)n) return ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint is truncated");
  sn->best_len = (size_t)n;
  return AMEIR_OK;
}

/* The one-shot model's progress: the mean metric of four fixed random children on the
 * validation subset (section 2.3: "validate its performance on a small subset of validation
 * instances to ensure adequate training while avoiding overfitting"). */
static ameir_status sn_valid(ameir_supernet *sn, double *v) {
  const ameir_dataset *ds = sn->ds;
  int64_t nv = ds->split_n[AMEIR_SPLIT_VALID], n = sn->sp->score_rows > 0 && sn->sp->score_rows < nv ? sn->sp->score_rows : nv;
  *v = NAN;
  if (n < 1) return AMEIR_OK;
  ameir__rng r;
  ameir__rng_seed(&r, sn->ctx->seed, 0xe5000000u + (uint64_t)sn->step);
  double sum = 0;
  for (int i = 0; i < 4; i++) {
    sn_child c;
    ameir__sn_random_child(sn, &r, &c);
    double x;
    CK(ameir__sn_score(sn, &c, ds->split_rows[AMEIR_SPLIT_VALID], n, &x));
    sum += x;
  }
  *v = sum / 4;
  return AMEIR_OK;
}

ameir_status ameir__sn_train(ameir_supernet *sn, int32_t epochs, int32_t cycle, int32_t first_epoch,
                             ameir_status (*on_epoch)(void *u, int32_t epoch), void *u) {
  ameir_model *m = sn->m;
  ameir_context *ctx = sn->ctx;
  const ameir_dataset *ds = sn->ds;
  if (sn->step == 2 && sn->n_cand < 1) return ameir__error(ctx, AMEIR_ESTATE, "step 2 has no candidate interactions");
  CK(ensure_ws(sn));
  int64_t n = ds->split_n[AMEIR_SPLIT_TRAIN], B = m->opt.batch;
  if (n < 1) return ameir__error(ctx, AMEIR_ESTATE, "the training split is empty");
  int64_t *order = malloc(sizeof(int64_t) * (size_t)n);
  if (!order) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  char stage[32];
  if (sn->step == SN_JOINT) snprintf(stage, sizeof stage, "joint/train");
  else snprintf(stage, sizeof stage, sn->step == 2 ? "step2/cycle%d" : "step%d/train", sn->step == 2 ? (int)cycle : (int)sn->step);
  int64_t per = (n + B - 1) / B;
  if (m->opt.max_steps > 0 && m->opt.max_steps < per) per = m->opt.max_steps;
  ameir_status st = AMEIR_OK;
  if (first_epoch == 0) {
    sn->es_best = -INFINITY;
    sn->es_bad = 0;
    free(sn->best_buf);
    sn->best_buf = NULL;
    sn->best_len = 0;
  }
  sn->es_stopped = 0;
  for (int32_t e = first_epoch; e < epochs && !st; e++) {
    /* data order and the fair sampler restart from (seed, step, cycle, epoch): a resumed run
     * continues exactly where the interrupted one was */
    uint64_t key = ((uint64_t)sn->step << 40) ^ ((uint64_t)cycle << 20) ^ (uint64_t)e;
    memcpy(order, ds->split_rows[AMEIR_SPLIT_TRAIN], sizeof(int64_t) * (size_t)n);
    ameir__rng r;
    ameir__rng_seed(&r, ctx->seed, 0x5ea2c000000000ull ^ key);
    if (m->opt.shuffle)
      for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ameir__rng_below(&r, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    ameir__rng_seed(&sn->fair_rng, ctx->seed, 0xfa12000000000ull ^ key);
    memset(sn->fair, 0, sizeof sn->fair);
    double lsum = 0;
    for (int64_t s = 0; s < per && !st; s++) {
      int64_t b0 = s * B, nb = n - b0 < B ? n - b0 : B;
      sn_child c;
      double loss = 0;
      if (sn->step == 2) st = set_groups(sn, nb);
      else {
        fair_child(sn, &c);
        st = ameir__sn_set_child(sn, &c);
      }
      if (!st) st = ameir__model_stage(m, ds, order + b0, nb);
      if (!st) st = ameir__model_forward(m, nb, 1, &loss);
      if (!st) st = ameir__model_backward_step(m, nb, lr_cos(sn));
      if (st) break;
      if (!isfinite(loss)) { st = ameir__error(ctx, AMEIR_ENUMERIC, "%s: the loss became %g at step %lld (lower lr?)", stage, loss, (long long)s); break; }
      sn->sched_done++;
      lsum += loss;
      if ((s % 20 == 0 || s == per - 1) &&
          ameir__progress(ctx, stage, (int64_t)e * per + s + 1, (int64_t)epochs * per, lsum / (double)(s + 1)))
        st = ameir__error(ctx, AMEIR_ECANCELLED, "%s cancelled in epoch %d", stage, (int)e + 1);
    }
    if (!st && sn->sp->sn_patience > 0) {
      double v;
      st = sn_valid(sn, &v);
      if (!st && v > sn->es_best) {
        sn->es_best = v;
        sn->es_bad = 0;
        st = snapshot(sn);
      } else if (!st) {
        sn->es_bad++;
      }
      if (!st && (sn->es_bad >= sn->sp->sn_patience || e == epochs - 1) && sn->es_bad > 0) {
        /* back to the best epoch's weights (the later ones overfit the validation subset) */
        double best = sn->es_best;
        st = restore(sn);
        sn->es_best = best;
        sn->es_bad = 0;
        if (e < epochs - 1) sn->es_stopped = 1;
      }
      if (!st) ameir__log(ctx, AMEIR_LOG_INFO, "%s: epoch %d, validation mean of 4 children %.5f%s", stage, (int)e + 1, v,
                          sn->es_stopped ? " (no progress: stop)" : "");
    }
    if (!st && on_epoch) st = on_epoch(u, e);
    if (sn->es_stopped) break;
  }
  free(order);
  return st;
}

ameir_status ameir__sn_score(ameir_supernet *sn, const sn_child *c, const int64_t *rows, int64_t n, double *metric) {
  CK(ensure_ws(sn));
  CK(ameir__sn_set_child(sn, c));
  ameir_model *m = sn->m;
  /* step 3's children share Stages 0-2: when the same rows fit one batch, compute x0 once */
  int reuse = sn->step == 3 && n <= m->ws_batch && rows == sn->x0_rows && n == sn->x0_n && m->step == sn->x0_step;
  m->sn_reuse_x0 = reuse;
  ameir_status st = ameir__model_metric_rows(m, sn->ds, rows, n, metric);
  m->sn_reuse_x0 = 0;
  if (!st && sn->step == 3 && n <= m->ws_batch) { sn->x0_rows = rows; sn->x0_n = n; sn->x0_step = m->step; }
  else { sn->x0_rows = NULL; sn->x0_n = 0; }
  return st;
}

AMEIR_API ameir_status ameir_supernet_train(ameir_supernet *sn, int32_t epochs) {
  if (!sn) return ameir__error(NULL, AMEIR_EINVAL, "ameir_supernet_train: NULL argument");
  if (epochs <= 0) epochs = sn->sp->epochs[sn->step];
  if (sn->step == 2 && sn->n_cand == 0) {
    /* the first cycle's candidates: the fields and their pairs */
    int32_t E = sn->n_eligible, n = 0;
    sn_inter *c = calloc((size_t)(E + E * E / 2 + 1), sizeof *c);
    if (!c) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory");
    for (int32_t i = 0; i < E; i++) {
      c[n].order = 1; c[n].f[0] = sn->eligible[i]; n++;
      for (int32_t j = i + 1; j < E; j++) {
        c[n].order = 2; c[n].f[0] = sn->eligible[j]; c[n].f[1] = sn->eligible[i]; n++;
      }
    }
    ameir_status st = n <= sn->n_slots ? ameir__sn_set_candidates(sn, c, n) : ameir__sn_set_candidates(sn, c, sn->n_slots);
    free(c);
    CK(st);
  }
  int64_t B = sn->m->opt.batch, n = sn->ds->split_n[AMEIR_SPLIT_TRAIN];
  sn->sched_total = sn->sched_done + (int64_t)epochs * ((n + B - 1) / B);
  return ameir__sn_train(sn, epochs, 1, 0, NULL, NULL);
}

AMEIR_API ameir_status ameir_supernet_sample(ameir_supernet *sn, uint64_t seed, ameir_arch **child) {
  if (!sn || !child) return ameir__error(sn ? sn->ctx : NULL, AMEIR_EINVAL, "ameir_supernet_sample: NULL argument");
  if (sn->step == 2 && sn->n_cand == 0) return ameir__error(sn->ctx, AMEIR_ESTATE, "step 2 has no candidates before training");
  ameir__rng r;
  ameir__rng_seed(&r, seed, 0x5a3b1e);
  sn_child c;
  ameir__sn_random_child(sn, &r, &c);
  return ameir__sn_child_to_arch(sn, &c, child);
}

AMEIR_API ameir_status ameir_supernet_score(ameir_supernet *sn, const ameir_arch *child, int64_t rows, double *metric) {
  if (!sn || !child || !metric) return ameir__error(sn ? sn->ctx : NULL, AMEIR_EINVAL, "ameir_supernet_score: NULL argument");
  sn_child c;
  CK(ameir__sn_child_from_arch(sn, child, &c));
  int64_t nv = sn->ds->split_n[AMEIR_SPLIT_VALID];
  if (rows <= 0 || rows > nv) rows = nv;
  if (rows < 1) return ameir__error(sn->ctx, AMEIR_ESTATE, "the validation split is empty");
  return ameir__sn_score(sn, &c, sn->ds->split_rows[AMEIR_SPLIT_VALID], rows, metric);
}

/* ---------------- inheritance (derivation, and the start of step 3) ---------------- */

static void copy_mat(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) memcpy(dst + r * ldd, src + r * lds, sizeof(float) * (size_t)cols);
}

ameir_status ameir__model_inherit(ameir_model *dst, const ameir_model *src) {
  const ameir_ops *o = dst->ops;
  ameir_context *ctx = dst->ctx;
  int64_t K = dst->opt.emb;
  if (src->opt.emb != K) return ameir__error(ctx, AMEIR_EINVAL, "inherit: embedding widths differ (%lld, %lld)", (long long)src->opt.emb, (long long)K);
  /* embeddings: the same tables when the two lay out the same fields */
  if (src->emb_rows == dst->emb_rows && src->stage1 == dst->stage1 && src->n_cat == dst->n_cat)
    CK(o->copy(dst->bs, dst->E, src->E, sizeof(float) * (size_t)(dst->emb_rows * K)));
  float *hs = malloc(sizeof(float) * (size_t)(src->n_params + 1)), *hd = malloc(sizeof(float) * (size_t)(dst->n_params + 1));
  float *ss = malloc(sizeof(float) * (size_t)(src->n_stats + 1)), *sd = malloc(sizeof(float) * (size_t)(dst->n_stats + 1));
  ameir_status st = hs && hd && ss && sd ? AMEIR_OK : ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  if (!st) st = o->download(src->bs, hs, src->P, sizeof(float) * (size_t)src->n_params);
  if (!st) st = o->download(dst->bs, hd, dst->P, sizeof(float) * (size_t)dst->n_params);
  if (!st && src->n_stats) st = o->download(src->bs, ss, src->stats, sizeof(float) * (size_t)src->n_stats);
  if (!st && dst->n_stats) st = o->download(dst->bs, sd, dst->stats, sizeof(float) * (size_t)dst->n_stats);
  if (st) goto done;
  const ameir_arch *sa = src->arch, *da = dst->arch;
  if (src->stage1 && dst->stage1 && src->d_seq == dst->d_seq) {
    int64_t d = dst->d_seq;
    for (int32_t l = 0; l < sa->n_blocks && l < da->n_blocks; l++) {
      if (sa->blocks[l].layer != da->blocks[l].layer) continue;
      if (src->blk_p[l] >= 0 && dst->blk_p[l] >= 0)
        memcpy(hd + dst->blk_p[l], hs + src->blk_p[l], sizeof(float) * (size_t)ameir__stage1_layer_params(dst, da->blocks[l].layer));
      if (src->blk_g[l] >= 0 && dst->blk_g[l] >= 0) {
        memcpy(hd + dst->blk_g[l], hs + src->blk_g[l], sizeof(float) * (size_t)d);
        memcpy(hd + dst->blk_b[l], hs + src->blk_b[l], sizeof(float) * (size_t)d);
      }
    }
    if (src->ro_att >= 0 && dst->ro_att >= 0)
      memcpy(hd + dst->ro_att, hs + src->ro_att, sizeof(float) * (size_t)ameir__stage1_layer_params(dst, AMEIR_LAYER_TARGET_ATT));
  }
  int same_x0 = src->off_e == dst->off_e && src->n_cat == dst->n_cat && src->n_dense == dst->n_dense;
  for (int32_t l = 0; l < sa->n_mlp && l < da->n_mlp; l++) {
    const ameir__mlp_p *ps = &src->mlp[l], *pd = &dst->mlp[l];
    int64_t rows = ps->out < pd->out ? ps->out : pd->out;
    if (l == 0) {
      if (!same_x0) continue;
      copy_mat(hd + pd->w, pd->ldw, hs + ps->w, ps->ldw, rows, dst->off_p);   /* [h_a | e] */
      int64_t nd = dst->n_dense;
      if (nd) copy_mat(hd + pd->w + dst->off_d, pd->ldw, hs + ps->w + src->off_d, ps->ldw, rows, nd);
      if (src->sn_pj >= 0 && dst->n_inter >= 1)   /* step 2's projection of the child's interaction */
        copy_mat(hd + pd->w + dst->off_p + (dst->n_inter - 1) * K, pd->ldw, hs + src->sn_pj, K, rows, K);
      else if (src->sn_pj < 0 && src->n_inter == dst->n_inter)
        copy_mat(hd + pd->w + dst->off_p, pd->ldw, hs + ps->w + src->off_p, ps->ldw, rows, dst->n_inter * K);
    } else {
      copy_mat(hd + pd->w, pd->ldw, hs + ps->w, ps->ldw, rows, ps->in < pd->in ? ps->in : pd->in);
    }
    memcpy(hd + pd->b, hs + ps->b, sizeof(float) * (size_t)rows);
    if (ps->alpha >= 0 && pd->alpha >= 0) memcpy(hd + pd->alpha, hs + ps->alpha, sizeof(float) * (size_t)rows);
    if (ps->rmean >= 0 && pd->rmean >= 0) {
      memcpy(sd + pd->rmean, ss + ps->rmean, sizeof(float) * (size_t)rows);
      memcpy(sd + pd->rvar, ss + ps->rvar, sizeof(float) * (size_t)rows);
    }
  }
  if (sa->n_mlp == da->n_mlp && (da->n_mlp > 0 || same_x0) && src->task == dst->task) {
    int64_t h = src->h_last < dst->h_last ? src->h_last : dst->h_last;
    if (dst->task == AMEIR_TASK_RETRIEVAL) {
      copy_mat(hd + dst->out_w, dst->out_ld, hs + src->out_w, src->out_ld, K, h);
      if (src->se_s && dst->se_s) copy_mat(hd + dst->out_w + dst->h_last, dst->out_ld, hs + src->out_w + src->h_last, src->out_ld, K, K);
    } else {
      memcpy(hd + dst->out_w, hs + src->out_w, sizeof(float) * (size_t)h);
      if (src->se_s && dst->se_s) memcpy(hd + dst->out_se, hs + src->out_se, sizeof(float) * (size_t)K);
      hd[dst->out_b] = hs[src->out_b];
    }
  }
  if (src->se_s && src->se_s == dst->se_s) {
    int64_t n = dst->se_b2 + dst->se_s - dst->se_v;   /* v, W1, b1, W2, b2 are contiguous */
    memcpy(hd + dst->se_v, hs + src->se_v, sizeof(float) * (size_t)n);
  }
  st = o->upload(dst->bs, dst->P, hd, sizeof(float) * (size_t)dst->n_params);
  if (!st && dst->n_stats) st = o->upload(dst->bs, dst->stats, sd, sizeof(float) * (size_t)dst->n_stats);
done:
  free(hs); free(hd); free(ss); free(sd);
  return st;
}

/* ---------------- checkpoint state ---------------- */

static ameir_status wr(ameir_supernet *sn, FILE *f, const void *dev, int64_t floats) {
  if (floats <= 0) return AMEIR_OK;
  float *h = malloc(sizeof(float) * (size_t)floats);
  if (!h) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory");
  ameir_status st = sn->m->ops->download(sn->m->bs, h, dev, sizeof(float) * (size_t)floats);
  if (!st && fwrite(h, sizeof(float), (size_t)floats, f) != (size_t)floats) st = ameir__error(sn->ctx, AMEIR_EIO, "checkpoint write failed");
  free(h);
  return st;
}

static ameir_status rd(ameir_supernet *sn, FILE *f, void *dev, int64_t floats) {
  if (floats <= 0) return AMEIR_OK;
  float *h = malloc(sizeof(float) * (size_t)floats);
  if (!h) return ameir__error(sn->ctx, AMEIR_ENOMEM, "out of memory");
  ameir_status st = fread(h, sizeof(float), (size_t)floats, f) == (size_t)floats ? AMEIR_OK
                                                                                  : ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint is truncated");
  if (!st) st = sn->m->ops->upload(sn->m->bs, dev, h, sizeof(float) * (size_t)floats);
  free(h);
  return st;
}

#define SN_STATE_MAGIC 0x414d534e53543031ull   /* "AMSNST01" */

ameir_status ameir__sn_save_state(ameir_supernet *sn, FILE *f) {
  ameir_model *m = sn->m;
  int64_t hdr[8] = {(int64_t)SN_STATE_MAGIC, sn->step, m->n_params, m->n_stats, m->emb_rows * m->opt.emb, m->step, sn->sched_done, sn->n_cand};
  double es[3] = {sn->es_best, (double)sn->es_bad, (double)sn->es_stopped};
  if (fwrite(hdr, sizeof hdr, 1, f) != 1 || fwrite(es, sizeof es, 1, f) != 1) return ameir__error(sn->ctx, AMEIR_EIO, "checkpoint write failed");
  CK(wr(sn, f, m->P, m->n_params)); CK(wr(sn, f, m->M, m->n_params)); CK(wr(sn, f, m->V, m->n_params));
  CK(wr(sn, f, m->stats, m->n_stats));
  CK(wr(sn, f, m->E, hdr[4])); CK(wr(sn, f, m->EM, hdr[4])); CK(wr(sn, f, m->EV, hdr[4]));
  if (sn->step == 2) {
    if (fwrite(sn->cand, sizeof *sn->cand, (size_t)sn->n_cand, f) != (size_t)sn->n_cand ||
        fwrite(&sn->n_free, sizeof sn->n_free, 1, f) != 1 ||
        fwrite(sn->free_slots, sizeof(int32_t), (size_t)sn->n_free, f) != (size_t)sn->n_free)
      return ameir__error(sn->ctx, AMEIR_EIO, "checkpoint write failed");
  }
  return AMEIR_OK;
}

ameir_status ameir__sn_load_state(ameir_supernet *sn, FILE *f) {
  ameir_model *m = sn->m;
  int64_t hdr[8];
  if (fread(hdr, sizeof hdr, 1, f) != 1) return ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint is truncated");
  if (hdr[0] != (int64_t)SN_STATE_MAGIC || hdr[1] != sn->step || hdr[2] != m->n_params || hdr[3] != m->n_stats ||
      hdr[4] != m->emb_rows * m->opt.emb || hdr[7] < 0 || hdr[7] > sn->n_slots)
    return ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint does not match this search (other data, space or options)");
  double es[3];
  if (fread(es, sizeof es, 1, f) != 1) return ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint is truncated");
  sn->es_best = es[0];
  sn->es_bad = (int32_t)es[1];
  sn->es_stopped = es[2] != 0;
  CK(rd(sn, f, m->P, m->n_params)); CK(rd(sn, f, m->M, m->n_params)); CK(rd(sn, f, m->V, m->n_params));
  CK(rd(sn, f, m->stats, m->n_stats));
  CK(rd(sn, f, m->E, hdr[4])); CK(rd(sn, f, m->EM, hdr[4])); CK(rd(sn, f, m->EV, hdr[4]));
  m->step = hdr[5];
  sn->sched_done = hdr[6];
  if (sn->step == 2) {
    sn->n_cand = (int32_t)hdr[7];
    if (fread(sn->cand, sizeof *sn->cand, (size_t)sn->n_cand, f) != (size_t)sn->n_cand ||
        fread(&sn->n_free, sizeof sn->n_free, 1, f) != 1 || sn->n_free < 0 || sn->n_free > sn->n_slots ||
        fread(sn->free_slots, sizeof(int32_t), (size_t)sn->n_free, f) != (size_t)sn->n_free)
      return ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint is truncated");
    for (int32_t i = 0; i < sn->n_cand; i++)
      if (sn->cand[i].slot < 0 || sn->cand[i].slot >= sn->n_slots || sn->cand[i].order < 1 || sn->cand[i].order > m->max_order)
        return ameir__error(sn->ctx, AMEIR_EFORMAT, "checkpoint has a bad candidate");
    memset(&sn->fair[3 * SN_MAX_BLOCKS + 2 * SN_MAX_MLP], 0, sizeof(sn_fair));
  }
  return AMEIR_OK;
}
