/* Towers beside the MLP: the explicit-interaction networks of two CTR baselines, whose outputs
 * join the output layer (appendix C.3; the paper's eq. for DCN and xDeepFM in appendix A.2).
 *
 * - DCN's cross network (Wang et al. 2017) over the MLP input x0 = [e, dense]:
 *     x_{l+1} = x0 * (x_l . w_l) + b_l + x_l,      logit += w_c^T x_L
 * - xDeepFM's CIN (Lian et al. 2018, eq. 6, no activation, no split-half) over the field
 *   embeddings X^0 = e (F vectors of K):
 *     X^k[h] = sum_{i,j} W^k[h, i*F + j] (X^{k-1}[i] * X^0[j]),   p^k[h] = sum_d X^k[h, d],
 *     logit += sum_k w_k^T p^k
 * - AutoInt's interacting layers (Song et al. 2019) over the field embeddings X_0 = e as F tokens
 *   of width K: X_{l+1} = ReLU(MHA(X_l) + X_l) (another activation may be named), 2 heads, no
 *   mask; logit += w_a^T vec(X_L). The
 *   residual is the identity (the paper's W_res maps to the attention width, which is K here).
 * All are CTR-only (a retrieval model's output is a user vector). The layers run through the
 * ops cross_fwd/bwd, cin_fwd/bwd and mha_fwd/bwd; CIN's sum pooling over the K dimensions is one
 * GEMM against a vector of ones kept in the workspace. */

#define AUTOINT_HEADS 2
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"
#include "model.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

static int64_t cin_in(const ameir_model *m, int32_t k) { return k ? m->arch->cin[k - 1] : m->n_cat; }

const char *ameir__tower_unfit(const ameir_model *m) {
  const ameir_arch *a = m->arch;
  if (!a->n_cross && !a->n_cin && !a->n_autoint && !a->inner_products && !a->fibinet) return NULL;
  if (m->task == AMEIR_TASK_RETRIEVAL)
    return "cross, cin, autoint, products and fibinet are CTR baselines: a retrieval model has no logit to add them to";
  if (a->n_cin && m->n_cat == 0) return "cin needs embedded fields";
  if (a->n_autoint && m->n_cat == 0) return "autoint needs embedded fields";
  if (a->n_autoint && m->opt.emb % AUTOINT_HEADS) return "autoint's 2 attention heads need an even emb";
  if (a->inner_products && m->n_cat < 2) return "products: inner needs two or more embedded fields";
  if (a->fibinet && m->n_cat < 2) return "fibinet needs two or more embedded fields";
  if (a->fibinet && m->stage1)
    return "fibinet's MLP reads its bilinear interactions, not a behaviour read-out: use readout: field";
  if (a->fibinet && a->n_inter)
    return "fibinet's MLP reads its bilinear interactions, not Stage 2's: drop the interactions line";
  return NULL;
}

int64_t ameir__tower_layout(ameir_model *m, int64_t off) {
  const ameir_arch *a = m->arch;
  int64_t D0 = m->d0;
  m->tw_width = 0;
  m->cross_p = m->tw_out = -1;
  if (a->n_cross) {
    m->cross_p = off;
    off += 2 * (int64_t)a->n_cross * D0;   /* per layer: w [D0], then b [D0] */
    m->tw_width += D0;
  }
  for (int32_t k = 0; k < a->n_cin; k++) {
    m->cin_p[k] = off;
    off += (int64_t)a->cin[k] * cin_in(m, k) * m->n_cat;
    m->tw_width += a->cin[k];
  }
  for (int32_t l = 0; l < a->n_autoint; l++) {
    m->att_p[l] = off;
    off += ameir__mha_params(m->opt.emb);
  }
  if (a->n_autoint) m->tw_width += m->n_cat * m->opt.emb;
  if (m->tw_width) {
    m->tw_out = off;   /* [x_L (D0) | p^1 | p^2 | ... | vec(X_L) of AutoInt] */
    off += m->tw_width;
  }
  return off;
}

void ameir__tower_init(const ameir_model *m, float *hp, ameir__rng *r) {
  const ameir_arch *a = m->arch;
  int64_t D0 = m->d0, F = m->n_cat;
  for (int32_t l = 0; l < a->n_cross; l++)   /* w: normal(0, sqrt(2 / (D0 + 1))), b: 0 */
    ameir__init_normal(r, hp + m->cross_p + 2 * l * D0, D0, sqrt(2.0 / (double)(D0 + 1)));
  for (int32_t k = 0; k < a->n_cin; k++) {   /* Glorot uniform over [H_k, H_{k-1} F] */
    int64_t fan = cin_in(m, k) * F;
    ameir__init_uniform(r, hp + m->cin_p[k], a->cin[k] * fan, sqrt(6.0 / (double)(fan + a->cin[k])));
  }
  for (int32_t l = 0; l < a->n_autoint; l++) {   /* as Stage 1's self-attention blocks */
    int64_t d = m->opt.emb;
    float *p = hp + m->att_p[l];
    ameir__model_init_linear(m, r, p, p + 3 * d * d, 3 * d, d, 1);
    ameir__model_init_linear(m, r, p + 3 * d * d + 3 * d, p + 4 * d * d + 3 * d, d, d, 1);
  }
  if (m->tw_width) ameir__model_init_linear(m, r, hp + m->tw_out, NULL, 1, m->tw_width, 0);
}

static int64_t att_width(const ameir_model *m) { return m->n_cat * m->opt.emb; }   /* F K */

/* Floats of the kept forward outputs: cross x_1..x_L [B, D0] each, then CIN X^k [B, H_k K]. */
static int64_t kept_floats(const ameir_model *m, int64_t B) {
  const ameir_arch *a = m->arch;
  int64_t n = (int64_t)a->n_cross * B * m->d0;
  for (int32_t k = 0; k < a->n_cin; k++) n += B * a->cin[k] * m->opt.emb;
  return n;
}

static float *cross_x(const ameir_model *m, int64_t B, int32_t l) { return m->tw_x + (int64_t)l * B * m->d0; }

static float *cin_x(const ameir_model *m, int64_t B, int32_t k) {
  float *p = m->tw_x + (int64_t)m->arch->n_cross * B * m->d0;
  for (int32_t j = 0; j < k; j++) p += B * m->arch->cin[j] * m->opt.emb;
  return p;
}

/* p^k [B, H_k] and its offset in the towers' output weights */
static float *cin_pool(const ameir_model *m, int64_t B, int32_t k, int64_t *w_off) {
  float *p = m->tw_p;
  int64_t wo = m->arch->n_cross ? m->d0 : 0;
  for (int32_t j = 0; j < k; j++) {
    p += B * m->arch->cin[j];
    wo += m->arch->cin[j];
  }
  if (w_off) *w_off = wo;
  return p;
}

/* A device vector of n 4-byte copies of *value (a float or an int32), uploaded once per workspace
 * from a host copy (while an arena measures, both only counted). */
ameir_status ameir__ws_const4(ameir_model *m, void *pp, int64_t n, const void *value) {
  size_t bytes = 4 * (size_t)n;
  CK(ameir__ws_dev(m, pp, bytes));
  if (!*(void **)pp) return m->arena && !m->arena->base ? ameir__ws_host(m, NULL, bytes, 0) : AMEIR_OK;
  char *h = NULL;
  CK(ameir__ws_host(m, &h, bytes, 0));
  for (int64_t i = 0; i < n; i++) memcpy(h + 4 * i, value, 4);
  ameir_status st = m->ops->upload(m->bs, *(void **)pp, h, bytes);
  ameir__ws_host_free(m, h);
  return st;
}

ameir_status ameir__tower_workspace(ameir_model *m, int64_t B, int train) {
  const ameir_arch *a = m->arch;
  size_t f4 = sizeof(float);
  int64_t K = m->opt.emb;
  if (a->n_cin || m->n_ip || m->n_fb) {   /* ones [K]: CIN's sum pooling, IPNN's inner products, FiBiNET's mean */
    const float one = 1.f;
    CK(ameir__ws_const4(m, &m->tw_ones, K, &one));
  }
  if (m->n_ip) {   /* IPNN: the products [B, P K] and their sums [B P] */
    CK(ameir__ws_dev(m, &m->ip_buf, f4 * (size_t)(B * m->n_ip * K)));
    CK(ameir__ws_dev(m, &m->ip_sum, f4 * (size_t)(B * m->n_ip)));
  }
  if (!m->tw_width) return AMEIR_OK;
  int64_t D0 = m->d0, hsum = 0, wide = a->n_cross ? D0 : 0;
  if (a->n_autoint && att_width(m) > wide) wide = att_width(m);
  for (int32_t k = 0; k < a->n_cin; k++) {
    hsum += a->cin[k];
    if (a->cin[k] * K > wide) wide = a->cin[k] * K;
    if (m->n_cat * K > wide) wide = m->n_cat * K;
  }
  CK(ameir__ws_dev(m, &m->tw_x, f4 * (size_t)kept_floats(m, B)));
  if (a->n_cin) CK(ameir__ws_dev(m, &m->tw_p, f4 * (size_t)(B * hsum)));
  if (a->n_autoint) {
    int64_t L = a->n_autoint, w = att_width(m);
    CK(ameir__ws_dev(m, &m->att_x, f4 * (size_t)((L + 1) * B * w)));
    CK(ameir__ws_dev(m, &m->att_z, f4 * (size_t)(L * B * w)));
    CK(ameir__ws_dev(m, &m->att_save, f4 * (size_t)(L * ameir__mha_save(B, m->n_cat, K, AUTOINT_HEADS))));
    const int32_t all = m->n_cat;   /* every row attends over all F fields */
    CK(ameir__ws_const4(m, &m->att_len, B, &all));
    if (train) CK(ameir__ws_dev(m, &m->tw_d3, f4 * (size_t)(B * w)));
  }
  if (train) {   /* backward: two gradients of a layer's output in turn, and (CIN) dp^k */
    CK(ameir__ws_dev(m, &m->tw_d1, f4 * (size_t)(B * wide)));
    CK(ameir__ws_dev(m, &m->tw_d2, f4 * (size_t)(B * wide)));
    if (a->n_cin) {
      int64_t hmax = 0;
      for (int32_t k = 0; k < a->n_cin; k++) if (a->cin[k] > hmax) hmax = a->cin[k];
      CK(ameir__ws_dev(m, &m->tw_dp, f4 * (size_t)(B * hmax)));
    }
  }
  return AMEIR_OK;
}

void ameir__tower_free_ws(ameir_model *m) {
  float **bufs[] = {&m->tw_x, &m->tw_p, &m->tw_ones, &m->tw_d1, &m->tw_d2, &m->tw_dp,
                    &m->att_x, &m->att_z, &m->att_save, &m->tw_d3, &m->ip_buf, &m->ip_sum};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    ameir__ws_dev_free(m, *bufs[i]);
    *bufs[i] = NULL;
  }
  ameir__ws_dev_free(m, m->att_len);
  m->att_len = NULL;
}

ameir_status ameir__tower_forward(ameir_model *m, int64_t B) {
  const ameir_arch *a = m->arch;
  if (!m->tw_width) return AMEIR_OK;
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const float *P = m->P;
  int64_t D0 = m->d0, K = m->opt.emb, F = m->n_cat;
  const float *in = m->x0;
  for (int32_t l = 0; l < a->n_cross; l++) {
    const float *w = P + m->cross_p + 2 * l * D0;
    CK(o->cross_fwd(bs, m->x0, D0, in, D0, w, w + D0, B, D0, cross_x(m, B, l), D0));
    in = cross_x(m, B, l);
  }
  if (a->n_cross) CK(o->gemm(bs, 0, 1, B, 1, D0, 1.f, in, D0, P + m->tw_out, D0, 1.f, m->logit, 1));
  const float *e = m->x0 + m->off_e, *x = e;
  int64_t ldx = D0;
  for (int32_t k = 0; k < a->n_cin; k++) {
    int64_t H = a->cin[k], wo;
    float *y = cin_x(m, B, k), *p = cin_pool(m, B, k, &wo);
    CK(o->cin_fwd(bs, x, ldx, cin_in(m, k), e, D0, F, B, K, P + m->cin_p[k], H, y, H * K));
    CK(o->gemm(bs, 0, 0, B * H, 1, K, 1.f, y, K, m->tw_ones, 1, 0.f, p, 1));   /* p^k = X^k 1 */
    CK(o->gemm(bs, 0, 1, B, 1, H, 1.f, p, H, P + m->tw_out + wo, H, 1.f, m->logit, 1));
    x = y;
    ldx = H * K;
  }
  if (a->n_autoint) {
    int64_t w = att_width(m), hsave = ameir__mha_save(B, F, K, AUTOINT_HEADS), wo = m->tw_width - w;
    CK(o->copy2d(bs, m->att_x, w, e, D0, B, w, 0));   /* X_0: the F fields as tokens */
    for (int32_t l = 0; l < a->n_autoint; l++) {
      float *xl = m->att_x + l * B * w, *z = m->att_z + l * B * w, *xn = xl + B * w;
      CK(o->mha_fwd(bs, xl, m->att_len, B, F, K, AUTOINT_HEADS, P + m->att_p[l], z, m->att_save + l * hsave));
      CK(o->axpby(bs, B * w, 1.f, xl, 1.f, z));   /* + X_l */
      CK(o->act_fwd(bs, a->autoint_act, z, xn, B * w));
    }
    const float *xL = m->att_x + (int64_t)a->n_autoint * B * w;
    CK(o->gemm(bs, 0, 1, B, 1, w, 1.f, xL, w, P + m->tw_out + wo, w, 1.f, m->logit, 1));
  }
  return AMEIR_OK;
}

/* After the MLP's backward (dx0 written): the towers' parameter gradients, and their part of
 * d x0 added. */
ameir_status ameir__tower_backward(ameir_model *m, int64_t B) {
  const ameir_arch *a = m->arch;
  if (!m->tw_width) return AMEIR_OK;
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const float *P = m->P;
  float *G = m->G;
  int64_t D0 = m->d0, K = m->opt.emb, F = m->n_cat;
  if (a->n_cross) {
    int32_t L = a->n_cross;
    const float *xl = cross_x(m, B, L - 1);
    CK(o->gemm(bs, 1, 0, 1, D0, B, 1.f, m->dlogit, 1, xl, D0, 1.f, G + m->tw_out, D0));
    float *dy = m->tw_d1, *dn = m->tw_d2;
    CK(o->gemm(bs, 0, 0, B, D0, 1, 1.f, m->dlogit, 1, P + m->tw_out, D0, 0.f, dy, D0));
    for (int32_t l = L - 1; l >= 0; l--) {
      const float *in = l ? cross_x(m, B, l - 1) : m->x0;
      int64_t wo = m->cross_p + 2 * l * D0;
      CK(o->cross_bwd(bs, m->x0, D0, in, D0, P + wo, B, D0, dy, D0, m->dx0, D0, dn, D0, G + wo, G + wo + D0));
      float *t = dy;
      dy = dn;
      dn = t;
    }
    CK(o->axpby(bs, B * D0, 1.f, dy, 1.f, m->dx0));   /* layer 0's input was x0 itself */
  }
  if (a->n_cin) {
    const float *e = m->x0 + m->off_e;
    float *de = m->dx0 + m->off_e;
    float *dX = m->tw_d1, *dn = m->tw_d2;
    for (int32_t k = a->n_cin - 1; k >= 0; k--) {
      int64_t H = a->cin[k], wo;
      const float *p = cin_pool(m, B, k, &wo);
      /* p^k's output weights; dp^k = dlogit w_k^T; dX^k (+)= dp^k 1^T */
      CK(o->gemm(bs, 1, 0, 1, H, B, 1.f, m->dlogit, 1, p, H, 1.f, G + m->tw_out + wo, H));
      CK(o->gemm(bs, 0, 0, B, H, 1, 1.f, m->dlogit, 1, P + m->tw_out + wo, H, 0.f, m->tw_dp, H));
      CK(o->gemm(bs, 0, 0, B * H, K, 1, 1.f, m->tw_dp, 1, m->tw_ones, K, k == a->n_cin - 1 ? 0.f : 1.f, dX, K));
      const float *x = k ? cin_x(m, B, k - 1) : e;
      int64_t ldx = k ? a->cin[k - 1] * K : D0, h = cin_in(m, k), lddn = h * K;
      CK(o->cin_bwd(bs, x, ldx, h, e, D0, F, B, K, P + m->cin_p[k], H, dX, H * K, dn, lddn, de, D0, G + m->cin_p[k]));
      float *t = dX;
      dX = dn;
      dn = t;
    }
    CK(o->copy2d(bs, de, D0, dX, F * K, B, F * K, 1));   /* layer 1's input was e itself */
  }
  if (a->n_autoint) {
    int64_t w = att_width(m), hsave = ameir__mha_save(B, F, K, AUTOINT_HEADS), wo = m->tw_width - w;
    const float *xL = m->att_x + (int64_t)a->n_autoint * B * w;
    float *dy = m->tw_d1, *dn = m->tw_d2, *dz = m->tw_d3;
    CK(o->gemm(bs, 1, 0, 1, w, B, 1.f, m->dlogit, 1, xL, w, 1.f, G + m->tw_out + wo, w));
    CK(o->gemm(bs, 0, 0, B, w, 1, 1.f, m->dlogit, 1, P + m->tw_out + wo, w, 0.f, dy, w));
    for (int32_t l = a->n_autoint - 1; l >= 0; l--) {
      const float *xl = m->att_x + l * B * w, *z = m->att_z + l * B * w, *xn = xl + B * w;
      CK(o->act_bwd(bs, a->autoint_act, z, xn, dy, dz, B * w));
      CK(o->mha_bwd(bs, xl, m->att_len, B, F, K, AUTOINT_HEADS, P + m->att_p[l], dz, m->att_save + l * hsave, dn,
                    G + m->att_p[l]));
      CK(o->axpby(bs, B * w, 1.f, dz, 1.f, dn));   /* the residual */
      float *t = dy;
      dy = dn;
      dn = t;
    }
    CK(o->copy2d(bs, m->dx0 + m->off_e, D0, dy, w, B, w, 1));
  }
  return AMEIR_OK;
}

int64_t ameir__tower_flops(const ameir_model *m) {
  const ameir_arch *a = m->arch;
  int64_t K = m->opt.emb, f = (int64_t)a->n_cross * 5 * m->d0 + 2 * m->tw_width;
  for (int32_t k = 0; k < a->n_cin; k++) f += 3 * a->cin[k] * cin_in(m, k) * m->n_cat * K + 2 * a->cin[k] * K;
  f += m->n_ip * 2 * K;   /* IPNN's inner products */
  /* FiBiNET: squeeze, excitation, re-weighting, two bilinear maps and their pair products */
  f += m->n_fb ? 2 * m->n_cat * K + 4 * m->fb_r * m->n_cat + 4 * m->n_cat * K * K + 2 * m->n_fb * K : 0;
  /* AutoInt per layer: q, k, v and output projections, scores and the weighted sum, residual */
  f += (int64_t)a->n_autoint * (8 * m->n_cat * K * K + 4 * m->n_cat * m->n_cat * K + 3 * m->n_cat * K);
  return f;
}

/* ---- IPNN's product layer (Qu et al. 2016): the inner products <e_i, e_j> of all field pairs
 * i < j join the MLP input after the dense values. A pair's Hadamard product summed over K is
 * its inner product (the paper's appendix A.2 remark): one hadamard_fwd over the pair list, then
 * one GEMM against ones; the backward spreads each product's gradient over K the same way. */

/* Uploads the pair list (i, j + shift) for every field pair i < j, in row-major order, with
 * orders 2: hadamard_fwd's arguments for IPNN (shift 0) and FiBiNET (shift F: the second field
 * of a pair is read from the other half of a [U | E] row). */
ameir_status ameir__pairs_upload(ameir_model *m, int64_t shift, int32_t **f_dev, int32_t **o_dev) {
  int64_t F = m->n_cat, P = F * (F - 1) / 2;
  int32_t *f = malloc(sizeof(int32_t) * (size_t)(3 * P));
  if (!f) return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
  int32_t *ord = f + 2 * P;
  int64_t p = 0;
  for (int64_t i = 0; i < F; i++)
    for (int64_t j = i + 1; j < F; j++, p++) {
      f[2 * p] = (int32_t)i;
      f[2 * p + 1] = (int32_t)(j + shift);
      ord[p] = 2;
    }
  ameir_status st = m->ops->alloc(m->bs, sizeof(int32_t) * (size_t)(2 * P), (void **)f_dev);
  if (!st) st = m->ops->alloc(m->bs, sizeof(int32_t) * (size_t)P, (void **)o_dev);
  if (!st) st = m->ops->upload(m->bs, *f_dev, f, sizeof(int32_t) * (size_t)(2 * P));
  if (!st) st = m->ops->upload(m->bs, *o_dev, ord, sizeof(int32_t) * (size_t)P);
  free(f);
  return st;
}

ameir_status ameir__ipnn_params(ameir_model *m) {
  return m->n_ip ? ameir__pairs_upload(m, 0, &m->ip_f_dev, &m->ip_o_dev) : AMEIR_OK;
}

ameir_status ameir__ipnn_forward(ameir_model *m, int64_t B) {
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  int64_t K = m->opt.emb, P = m->n_ip, D0 = m->d0;
  CK(o->hadamard_fwd(bs, m->x0 + m->off_e, D0, B, K, m->ip_f_dev, m->ip_o_dev, P, 2, m->ip_buf, P * K));
  CK(o->gemm(bs, 0, 0, B * P, 1, K, 1.f, m->ip_buf, K, m->tw_ones, 1, 0.f, m->ip_sum, 1));
  return o->copy2d(bs, m->x0 + m->off_ip, D0, m->ip_sum, P, B, P, 0);
}

ameir_status ameir__ipnn_backward(ameir_model *m, int64_t B) {
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  int64_t K = m->opt.emb, P = m->n_ip, D0 = m->d0;
  CK(o->copy2d(bs, m->ip_sum, P, m->dx0 + m->off_ip, D0, B, P, 0));   /* d<e_i, e_j> */
  CK(o->gemm(bs, 0, 0, B * P, K, 1, 1.f, m->ip_sum, 1, m->tw_ones, K, 0.f, m->ip_buf, K));
  return o->hadamard_bwd(bs, m->x0 + m->off_e, D0, B, K, m->ip_f_dev, m->ip_o_dev, P, 2, m->ip_buf, P * K,
                         m->dx0 + m->off_e);
}
