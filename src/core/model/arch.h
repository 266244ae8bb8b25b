/* Internal form of an architecture (include/ameir/arch.h describes the notation). */
#ifndef AMEIR_CORE_ARCH_H
#define AMEIR_CORE_ARCH_H

#include "../base/base.h"

#include "ameir/arch.h"

/* cloze's default share of last-item-only rows: BERT4Rec adds one such sample to every ten
 * randomly masked copies of a sequence (dupe factor 10) */
#define AMEIR_CLOZE_LAST_DEFAULT 0.1

/* Stage-1 layers (pinned: stored in model files) */
enum {
  AMEIR_LAYER_ZERO = 0, AMEIR_LAYER_CONV1, AMEIR_LAYER_CONV3, AMEIR_LAYER_DCONV3,
  AMEIR_LAYER_DCONV5, AMEIR_LAYER_DCONV7, AMEIR_LAYER_AVGPOOL3, AMEIR_LAYER_MAXPOOL3,
  AMEIR_LAYER_GRU, AMEIR_LAYER_SA2, AMEIR_LAYER_SA4, AMEIR_LAYER_TARGET_ATT, AMEIR_LAYER_COUNT_
};
enum { AMEIR_NORM_NONE = 0, AMEIR_NORM_LN = 1 };
/* FIELD: no Stage 1; each behaviour field is sum-pooled into one more field of e_b (how the
 * DNN-family baselines treat sequences). */
/* CASER: Caser's convolutions over the last caser_l positions (ops.h caser_fwd). */
enum { AMEIR_READOUT_SUM = 1, AMEIR_READOUT_LAST = 2, AMEIR_READOUT_ATT = 4, AMEIR_READOUT_FIELD = 8,
       AMEIR_READOUT_CASER = 16 };
enum { AMEIR_SHORTCUT_NONE = 0, AMEIR_SHORTCUT_SE = 1 };
enum { AMEIR_EXTRA_LINEAR = 1, AMEIR_EXTRA_FM = 2 };

#define AMEIR_ARCH_MAX_ORDER 8

typedef struct { int32_t layer, act, norm; } ameir__block;
typedef struct { int32_t order; char *fields[AMEIR_ARCH_MAX_ORDER]; } ameir__inter;
typedef struct { int32_t width, act; } ameir__mlp_layer;

struct ameir_arch {
  int32_t n_blocks;
  ameir__block *blocks;
  int32_t readout;       /* AMEIR_READOUT_* bits */
  int32_t n_inter;
  ameir__inter *inter;
  int32_t n_mlp;
  ameir__mlp_layer *mlp;
  int32_t shortcut;      /* AMEIR_SHORTCUT_* */
  int32_t extras;        /* AMEIR_EXTRA_* bits */
  /* towers beside the MLP whose outputs join the output layer (baselines, src/core/model/tower.c) */
  int32_t n_cross;       /* DCN: cross layers over x0 */
  int32_t n_cin;         /* xDeepFM: CIN layers over the field embeddings, widths in cin[] */
  int32_t *cin;
  int32_t n_autoint;     /* AutoInt: self-attention layers over the field embeddings */
  int32_t autoint_act;   /* their activation (relu unless named) */
  int32_t inner_products;/* IPNN: the inner products of all field pairs join the MLP input */
  int32_t fibinet;       /* FiBiNET: SENET reduction ratio (0: none); the MLP reads its bilinear
                          * interactions instead of the embeddings (src/core/model/fibinet.c) */
  double cloze;          /* BERT4Rec: masked-item training with this mask probability (0: none) */
  double cloze_last;     /* the share of training rows that mask only their last item (BERT4Rec's
                          * extra last-item samples); `cloze: P [L]`, L default below */
  /* Caser read-out (AMEIR_READOUT_CASER): Markov order L, vertical and horizontal filters
   * (0 while no `caser:` line was read: the defaults then) */
  int32_t caser_l, caser_nv, caser_nh;
  int32_t positions;     /* 1: learned position embeddings added to Stage 1's input (BERT4Rec) */
};
#define AMEIR_CASER_MAX_L 256   /* the text's bound; the model's is the history length */
#define AMEIR_ARCH_MAX_TOWER 16   /* cross or CIN layers */
#define AMEIR_ARCH_MAX_FIBINET 64 /* FiBiNET's reduction ratio */

const char *ameir__act_name(int32_t act);
int32_t ameir__act_parse(const char *s);     /* -1 if unknown */
const char *ameir__layer_name(int32_t layer);
int32_t ameir__layer_parse(const char *s);
ameir_status ameir__arch_copy(ameir_context *ctx, const ameir_arch *src, ameir_arch **out);
/* "400:relu,400:relu" or "400x3" into layers (caller frees *out) */
ameir_status ameir__mlp_parse(ameir_context *ctx, const char *text, ameir__mlp_layer **out, int32_t *n);

#endif
