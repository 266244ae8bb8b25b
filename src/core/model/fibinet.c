/* FiBiNET (Huang et al., RecSys 2019; the AMEIR paper's appendix C.3, eq. (19):
 * y = w_M^T MLP(p) + w_x^T x) over the F field embeddings e_f (K wide, x0's e columns):
 *
 *   SENET (section 3.3):  z_f = mean_k e_f[k];  a = ReLU(W2 ReLU(W1 z + b1) + b2),
 *                         W1 [R, F], W2 [F, R], R = max(1, F / ratio);  v_f = a_f e_f
 *   bilinear, field-all (section 3.4, one K x K matrix shared by all pairs):
 *                         p_ij = (e_i W) * e_j,  q_ij = (v_i W') * v_j,   i < j
 *   the MLP input:        [dense, p, q] (x0 from off_d on: the embeddings themselves are not
 *                         in it), the first-order term from `extras: linear`.
 *
 * W and W' are separate matrices, as the FiBiNET paper's two bilinear layers (and DeepCTR's and
 * FuxiCTR's implementations) have them. The SENET's two layers have biases, as written in
 * the AMEIR paper's appendix; the original has none.
 *
 * On the ops: the squeeze is a GEMM of E [B F, K] with a vector of ones (alpha 1/K), the
 * excitation GEMMs, add_bias and ReLU, the re-weighting field_scale_fwd (the only op of its
 * own), the bilinear map one GEMM [B F, K] x [K, K], and the pairwise products hadamard_fwd
 * over each row's [Y W | Y] (pair (i, F + j)), written straight into x0, as IPNN's are. */
#include <math.h>

#include "init.h"
#include "model.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

int64_t ameir__fibinet_layout(ameir_model *m, int64_t off) {
  const ameir_arch *a = m->arch;
  int64_t F = m->n_cat, K = m->opt.emb;
  m->fb_p = -1;
  m->fb_r = 0;
  if (!a->fibinet) return off;
  m->fb_r = F / a->fibinet > 1 ? F / a->fibinet : 1;   /* at least one hidden unit */
  m->fb_p = off;
  return off + 2 * m->fb_r * F + m->fb_r + F + 2 * K * K;
}

/* offsets of the parameters */
static int64_t p_w1(const ameir_model *m) { return m->fb_p; }
static int64_t p_b1(const ameir_model *m) { return p_w1(m) + m->fb_r * m->n_cat; }
static int64_t p_w2(const ameir_model *m) { return p_b1(m) + m->fb_r; }
static int64_t p_b2(const ameir_model *m) { return p_w2(m) + m->n_cat * m->fb_r; }
static int64_t p_w(const ameir_model *m, int which) {
  return p_b2(m) + m->n_cat + which * m->opt.emb * m->opt.emb;
}

void ameir__fibinet_init(const ameir_model *m, float *hp, ameir__rng *r) {
  if (m->fb_p < 0) return;
  int64_t F = m->n_cat, R = m->fb_r, K = m->opt.emb;
  ameir__model_init_linear(m, r, hp + p_w1(m), hp + p_b1(m), R, F, 0);
  ameir__model_init_linear(m, r, hp + p_w2(m), hp + p_b2(m), F, R, 0);
  for (int which = 0; which < 2; which++)   /* Glorot uniform, as the CIN's */
    ameir__init_uniform(r, hp + p_w(m, which), K * K, sqrt(6.0 / (double)(2 * K)));
}

/* The pair list over a row [U | Y] of 2F fields: (i, F + j) for i < j, in IPNN's order. */
ameir_status ameir__fibinet_params(ameir_model *m) {
  return m->n_fb ? ameir__pairs_upload(m, m->n_cat, &m->fb_f_dev, &m->fb_o_dev) : AMEIR_OK;
}

/* small forward vectors: z [B F], W1 z + b1 [B R], its ReLU [B R], W2 h + b2 [B F], a [B F] */
static float *sm_z(const ameir_model *m) { return m->fb_small; }
static float *sm_hz(const ameir_model *m, int64_t B) { return m->fb_small + B * m->n_cat; }
static float *sm_h(const ameir_model *m, int64_t B) { return sm_hz(m, B) + B * m->fb_r; }
static float *sm_sz(const ameir_model *m, int64_t B) { return sm_h(m, B) + B * m->fb_r; }
static float *sm_a(const ameir_model *m, int64_t B) { return sm_sz(m, B) + B * m->n_cat; }

ameir_status ameir__fibinet_workspace(ameir_model *m, int64_t B, int train) {
  if (!m->n_fb) return AMEIR_OK;
  size_t fk = sizeof(float) * (size_t)(B * m->n_cat * m->opt.emb), F = (size_t)m->n_cat, R = (size_t)m->fb_r;
  CK(ameir__ws_dev(m, &m->fb_e, fk));
  CK(ameir__ws_dev(m, &m->fb_v, fk));
  CK(ameir__ws_dev(m, &m->fb_x1, 2 * fk));
  CK(ameir__ws_dev(m, &m->fb_x2, 2 * fk));
  CK(ameir__ws_dev(m, &m->fb_small, sizeof(float) * (size_t)B * (3 * F + 2 * R)));
  if (!train) return AMEIR_OK;
  CK(ameir__ws_dev(m, &m->fb_dx, 2 * fk));
  CK(ameir__ws_dev(m, &m->fb_du, fk));
  CK(ameir__ws_dev(m, &m->fb_de, fk));
  CK(ameir__ws_dev(m, &m->fb_dv, fk));
  return ameir__ws_dev(m, &m->fb_dsmall, sizeof(float) * (size_t)B * (2 * F + 2 * R));
}

void ameir__fibinet_free_ws(ameir_model *m) {
  float **bufs[] = {&m->fb_e, &m->fb_v, &m->fb_x1, &m->fb_x2, &m->fb_small,
                    &m->fb_dx, &m->fb_du, &m->fb_de, &m->fb_dv, &m->fb_dsmall};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    ameir__ws_dev_free(m, *bufs[i]);
    *bufs[i] = NULL;
  }
}

/* out[b, pair] (row stride D0) = (Y_i W) * Y_j: X = [Y W | Y] per row, then the pairs */
static ameir_status bilinear_fwd(ameir_model *m, int64_t B, const float *Y, const float *W, float *X, float *out) {
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  int64_t F = m->n_cat, K = m->opt.emb, FK = F * K;
  CK(o->gemm_strided_batched(bs, 0, 0, F, K, K, 1.f, Y, K, FK, W, K, 0, 0.f, X, K, 2 * FK, B));
  CK(o->copy2d(bs, X + FK, 2 * FK, Y, FK, B, FK, 0));
  return o->hadamard_fwd(bs, X, 2 * FK, B, K, m->fb_f_dev, m->fb_o_dev, m->n_fb, 2, out, m->d0);
}

ameir_status ameir__fibinet_forward(ameir_model *m, int64_t B) {
  if (!m->n_fb) return AMEIR_OK;
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const float *P = m->P;
  int64_t F = m->n_cat, K = m->opt.emb, R = m->fb_r, FK = F * K, D0 = m->d0;
  float *z = sm_z(m), *hz = sm_hz(m, B), *h = sm_h(m, B), *sz = sm_sz(m, B), *a = sm_a(m, B);
  CK(o->copy2d(bs, m->fb_e, FK, m->x0 + m->off_e, D0, B, FK, 0));
  /* squeeze: z = mean_k e */
  CK(o->gemm(bs, 0, 0, B * F, 1, K, 1.f / (float)K, m->fb_e, K, m->tw_ones, 1, 0.f, z, 1));
  /* excitation */
  CK(o->gemm(bs, 0, 1, B, R, F, 1.f, z, F, P + p_w1(m), F, 0.f, hz, R));
  CK(o->add_bias(bs, hz, R, P + p_b1(m), B, R));
  CK(o->act_fwd(bs, AMEIR_ACT_RELU, hz, h, B * R));
  CK(o->gemm(bs, 0, 1, B, F, R, 1.f, h, R, P + p_w2(m), R, 0.f, sz, F));
  CK(o->add_bias(bs, sz, F, P + p_b2(m), B, F));
  CK(o->act_fwd(bs, AMEIR_ACT_RELU, sz, a, B * F));
  /* re-weight, then the two bilinear interactions */
  CK(o->field_scale_fwd(bs, m->fb_e, FK, a, B, F, K, m->fb_v, FK));
  float *out = m->x0 + m->off_fb;
  CK(bilinear_fwd(m, B, m->fb_e, P + p_w(m, 0), m->fb_x1, out));
  return bilinear_fwd(m, B, m->fb_v, P + p_w(m, 1), m->fb_x2, out + m->n_fb * K);
}

/* Given d out (x0's gradient, row stride D0): dW += Y^T dU and dY = dU W^T + the direct part
 * (overwritten, contiguous [B, F K]) */
static ameir_status bilinear_bwd(ameir_model *m, int64_t B, const float *Y, const float *W, const float *X,
                                 const float *dout, float *dW, float *dY) {
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  int64_t F = m->n_cat, K = m->opt.emb, FK = F * K;
  CK(o->memset0(bs, m->fb_dx, sizeof(float) * (size_t)(2 * B * FK)));
  CK(o->hadamard_bwd(bs, X, 2 * FK, B, K, m->fb_f_dev, m->fb_o_dev, m->n_fb, 2, dout, m->d0, m->fb_dx));
  CK(o->copy2d(bs, m->fb_du, FK, m->fb_dx, 2 * FK, B, FK, 0));
  CK(o->gemm(bs, 1, 0, K, K, B * F, 1.f, Y, K, m->fb_du, K, 1.f, dW, K));
  CK(o->gemm(bs, 0, 1, B * F, K, K, 1.f, m->fb_du, K, W, K, 0.f, dY, K));
  return o->copy2d(bs, dY, FK, m->fb_dx + FK, 2 * FK, B, FK, 1);
}

ameir_status ameir__fibinet_backward(ameir_model *m, int64_t B) {
  if (!m->n_fb) return AMEIR_OK;
  const ameir_ops *o = m->ops;
  void *bs = m->bs;
  const float *P = m->P;
  float *G = m->G;
  int64_t F = m->n_cat, K = m->opt.emb, R = m->fb_r, FK = F * K, D0 = m->d0;
  const float *z = sm_z(m), *hz = sm_hz(m, B), *h = sm_h(m, B), *sz = sm_sz(m, B), *a = sm_a(m, B);
  float *da = m->fb_dsmall, *dsz = da + B * F, *dh = dsz + B * F, *dhz = dh + B * R, *dz = da;
  const float *dout = m->dx0 + m->off_fb;
  CK(bilinear_bwd(m, B, m->fb_e, P + p_w(m, 0), m->fb_x1, dout, G + p_w(m, 0), m->fb_de));
  CK(bilinear_bwd(m, B, m->fb_v, P + p_w(m, 1), m->fb_x2, dout + m->n_fb * K, G + p_w(m, 1), m->fb_dv));
  /* v = a e: de += a dv, da = sum_k dv e */
  CK(o->field_scale_bwd(bs, m->fb_e, FK, a, B, F, K, m->fb_dv, FK, m->fb_de, FK, da));
  /* the excitation's two layers, top down */
  CK(o->act_bwd(bs, AMEIR_ACT_RELU, sz, a, da, dsz, B * F));
  CK(o->gemm(bs, 1, 0, F, R, B, 1.f, dsz, F, h, R, 1.f, G + p_w2(m), R));
  CK(o->bias_grad(bs, dsz, F, G + p_b2(m), B, F));
  CK(o->gemm(bs, 0, 0, B, R, F, 1.f, dsz, F, P + p_w2(m), R, 0.f, dh, R));
  CK(o->act_bwd(bs, AMEIR_ACT_RELU, hz, h, dh, dhz, B * R));
  CK(o->gemm(bs, 1, 0, R, F, B, 1.f, dhz, R, z, F, 1.f, G + p_w1(m), F));
  CK(o->bias_grad(bs, dhz, R, G + p_b1(m), B, R));
  CK(o->gemm(bs, 0, 0, B, F, R, 1.f, dhz, R, P + p_w1(m), F, 0.f, dz, F));
  /* the squeeze: de += dz 1^T / K */
  CK(o->gemm(bs, 0, 0, B * F, K, 1, 1.f / (float)K, dz, 1, m->tw_ones, K, 1.f, m->fb_de, K));
  return o->copy2d(bs, m->dx0 + m->off_e, D0, m->fb_de, FK, B, FK, 1);
}
