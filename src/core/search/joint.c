/* The joint search space: a child of all three subspaces at once (paper section 2.2), as the
 * search-method baselines of appendix C.4 see it (random search, regularized evolution, and the
 * one-shot random search over the three subspaces together).
 *
 * A child is an sn_child with every part filled: per block its layer, activation and norm
 * (indices into the supernet's kinds and the space's lists), M interactions (each an order and
 * the embedded slots of its fields, descending; the list sorted so a child has one spelling),
 * and per MLP layer a width (an index into the ratios of K0, never increasing from one layer to
 * the next) and an activation. The supernet of step SN_JOINT holds the lists (ameir__sn_create_joint). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"
#include "../model/arch.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

/* ---------------- interactions ---------------- */

static int ji_cmp(const sn_child *c, int32_t i, int32_t j) {
  if (c->ji_order[i] != c->ji_order[j]) return c->ji_order[i] - c->ji_order[j];
  for (int32_t q = 0; q < c->ji_order[i]; q++)
    if (c->ji_f[i][q] != c->ji_f[j][q]) return c->ji_f[i][q] - c->ji_f[j][q];
  return 0;
}

static void ji_swap(sn_child *c, int32_t i, int32_t j) {
  int32_t o = c->ji_order[i], f[SN_MAX_ORDER];
  memcpy(f, c->ji_f[i], sizeof f);
  c->ji_order[i] = c->ji_order[j];
  memcpy(c->ji_f[i], c->ji_f[j], sizeof f);
  c->ji_order[j] = o;
  memcpy(c->ji_f[j], f, sizeof f);
}

static void ji_sort(sn_child *c) {
  for (int32_t i = 1; i < c->n_ji; i++)
    for (int32_t j = i; j > 0 && ji_cmp(c, j, j - 1) < 0; j--) ji_swap(c, j, j - 1);
}

/* index of the interaction (order, f) in c, or -1 */
static int32_t ji_find(const sn_child *c, int32_t order, const int32_t *f) {
  for (int32_t i = 0; i < c->n_ji; i++) {
    if (c->ji_order[i] != order) continue;
    int same = 1;
    for (int32_t q = 0; q < order && same; q++) same = c->ji_f[i][q] == f[q];
    if (same) return i;
  }
  return -1;
}

/* One interaction: its order uniform in [2, j_order], then that many distinct fields. */
static void ji_draw(const ameir_supernet *sn, ameir__rng *r, int32_t *order, int32_t *f) {
  int32_t pool[SN_MAX_CHOICES * 8], E = sn->n_eligible;
  if (E > (int32_t)(sizeof pool / sizeof pool[0])) E = (int32_t)(sizeof pool / sizeof pool[0]);
  for (int32_t i = 0; i < E; i++) pool[i] = sn->eligible[i];
  int32_t o = 2 + (int32_t)ameir__rng_below(r, (uint64_t)(sn->j_order - 1));
  for (int32_t i = 0; i < o; i++) {   /* a partial Fisher-Yates shuffle */
    int32_t j = i + (int32_t)ameir__rng_below(r, (uint64_t)(E - i)), t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
    f[i] = pool[i];
  }
  ameir__sn_sort_desc(f, o);
  *order = o;
}

void ameir__joint_fill_inter(const ameir_supernet *sn, ameir__rng *r, sn_child *c) {
  c->n_ji = 0;
  for (int32_t tries = 0; c->n_ji < sn->j_m && tries < 1000 * (sn->j_m + 1); tries++) {
    int32_t o, f[SN_MAX_ORDER];
    ji_draw(sn, r, &o, f);
    if (ji_find(c, o, f) >= 0) continue;
    c->ji_order[c->n_ji] = o;
    memset(c->ji_f[c->n_ji], 0, sizeof c->ji_f[0]);
    memcpy(c->ji_f[c->n_ji], f, sizeof(int32_t) * (size_t)o);
    c->n_ji++;
  }
  ji_sort(c);
}

/* ---------------- children ---------------- */

void ameir__joint_random_child(ameir_supernet *sn, ameir__rng *r, sn_child *c) {
  const ameir_space *sp = sn->sp;
  memset(c, 0, sizeof *c);
  if (sn->j_blocks)
    for (int32_t l = 0; l < sn->L; l++) {
      c->layer[l] = (int32_t)ameir__rng_below(r, (uint64_t)sn->n_kinds);
      c->act[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_bacts);
      c->norm[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_norms);
    }
  if (sn->j_inter) ameir__joint_fill_inter(sn, r, c);
  if (sn->j_mlp) {   /* as step 3's sampler: independent draws, sorted to never increase */
    for (int32_t l = 0; l < sn->n_mlp; l++) {
      c->width[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_ratios);
      c->mact[l] = (int32_t)ameir__rng_below(r, (uint64_t)sp->n_macts);
    }
    ameir__sn_sort_desc(c->width, sn->n_mlp);
  }
}

/* a value in [0, n) other than cur (n >= 2) */
static int32_t other(ameir__rng *r, int32_t n, int32_t cur) {
  int32_t v = (int32_t)ameir__rng_below(r, (uint64_t)(n - 1));
  return v >= cur ? v + 1 : v;
}

static int block_mutable(const ameir_supernet *sn) {
  return sn->j_blocks && sn->L > 0 && (sn->n_kinds > 1 || sn->sp->n_bacts > 1 || sn->sp->n_norms > 1);
}

static int mlp_mutable(const ameir_supernet *sn) {
  return sn->j_mlp && sn->n_mlp > 0 && (sn->sp->n_ratios > 1 || sn->sp->n_macts > 1);
}

/* Stage 1: one decision of one block, uniformly among those that can change (a `zero` block's
 * activation and norm have no effect: only its layer). 0 if none can. */
static int mutate_block(const ameir_supernet *sn, ameir__rng *r, sn_child *c, const char **what) {
  const ameir_space *sp = sn->sp;
  int32_t dec[SN_MAX_BLOCKS * 3][2], n = 0;
  for (int32_t l = 0; l < sn->L; l++) {
    if (sn->n_kinds > 1) { dec[n][0] = l; dec[n++][1] = 0; }
    if (sn->kinds[c->layer[l]] == AMEIR_LAYER_ZERO) continue;
    if (sp->n_bacts > 1) { dec[n][0] = l; dec[n++][1] = 1; }
    if (sp->n_norms > 1) { dec[n][0] = l; dec[n++][1] = 2; }
  }
  if (!n) return 0;
  int32_t k = (int32_t)ameir__rng_below(r, (uint64_t)n), l = dec[k][0];
  if (dec[k][1] == 0) { c->layer[l] = other(r, sn->n_kinds, c->layer[l]); *what = "a block's layer"; }
  else if (dec[k][1] == 1) { c->act[l] = other(r, sp->n_bacts, c->act[l]); *what = "a block's activation"; }
  else { c->norm[l] = other(r, sp->n_norms, c->norm[l]); *what = "a block's norm"; }
  return 1;
}

/* Stage 2: one interaction replaced by another one not in the child. */
static int mutate_inter(const ameir_supernet *sn, ameir__rng *r, sn_child *c, const char **what) {
  if (c->n_ji < 1) return 0;
  int32_t i = (int32_t)ameir__rng_below(r, (uint64_t)c->n_ji);
  for (int32_t tries = 0; tries < 1000; tries++) {
    int32_t o, f[SN_MAX_ORDER];
    ji_draw(sn, r, &o, f);
    if (ji_find(c, o, f) >= 0) continue;
    c->ji_order[i] = o;
    memset(c->ji_f[i], 0, sizeof c->ji_f[0]);
    memcpy(c->ji_f[i], f, sizeof(int32_t) * (size_t)o);
    ji_sort(c);
    *what = "an interaction";
    return 1;
  }
  return 0;   /* every interaction of the space is in the child */
}

/* Stage 3: one layer's width (within its neighbours', so widths never increase) or activation. */
static int mutate_mlp(const ameir_supernet *sn, ameir__rng *r, sn_child *c, const char **what) {
  const ameir_space *sp = sn->sp;
  int32_t dec[SN_MAX_MLP * 2][2], n = 0;
  for (int32_t l = 0; l < sn->n_mlp; l++) {
    int32_t hi = l ? c->width[l - 1] : sp->n_ratios - 1, lo = l + 1 < sn->n_mlp ? c->width[l + 1] : 0;
    if (hi > lo) { dec[n][0] = l; dec[n++][1] = 0; }
    if (sp->n_macts > 1) { dec[n][0] = l; dec[n++][1] = 1; }
  }
  if (!n) return 0;
  int32_t k = (int32_t)ameir__rng_below(r, (uint64_t)n), l = dec[k][0];
  if (dec[k][1] == 1) { c->mact[l] = other(r, sp->n_macts, c->mact[l]); *what = "an MLP layer's activation"; return 1; }
  int32_t hi = l ? c->width[l - 1] : sp->n_ratios - 1, lo = l + 1 < sn->n_mlp ? c->width[l + 1] : 0;
  c->width[l] = lo + other(r, hi - lo + 1, c->width[l] - lo);
  *what = "an MLP layer's width";
  return 1;
}

void ameir__joint_mutate(ameir_supernet *sn, ameir__rng *r, const sn_child *parent, sn_child *child, const char **what) {
  *child = *parent;
  *what = "nothing (no decision of the space has two choices)";
  int32_t stages[3], n = 0;
  if (block_mutable(sn)) stages[n++] = 1;
  if (sn->j_inter && parent->n_ji > 0) stages[n++] = 2;
  if (mlp_mutable(sn)) stages[n++] = 3;
  /* the stage uniformly (appendix C.4: "altering a layer operation in Stage 1, a feature
   * interaction in Stage 2, or an MLP hidden size in Stage 3"), then a decision in it; a stage
   * where nothing can change gives way to the next */
  int32_t s0 = n ? (int32_t)ameir__rng_below(r, (uint64_t)n) : 0;
  for (int32_t k = 0; k < n; k++) {
    int32_t st = stages[(s0 + k) % n];
    if (st == 1 && mutate_block(sn, r, child, what)) return;
    if (st == 2 && mutate_inter(sn, r, child, what)) return;
    if (st == 3 && mutate_mlp(sn, r, child, what)) return;
  }
}

int32_t ameir__joint_distance(const ameir_supernet *sn, const sn_child *a, const sn_child *b) {
  int32_t d = 0;
  if (sn->j_blocks)
    for (int32_t l = 0; l < sn->L; l++) d += (a->layer[l] != b->layer[l]) + (a->act[l] != b->act[l]) + (a->norm[l] != b->norm[l]);
  if (sn->j_inter) {
    for (int32_t i = 0; i < a->n_ji; i++) d += ji_find(b, a->ji_order[i], a->ji_f[i]) < 0;
    if (b->n_ji > a->n_ji) d += b->n_ji - a->n_ji;
  }
  if (sn->j_mlp)
    for (int32_t l = 0; l < sn->n_mlp; l++) d += (a->width[l] != b->width[l]) + (a->mact[l] != b->mact[l]);
  return d;
}

/* FNV-1a over what the architecture depends on (a `zero` block's activation and norm do not) */
uint64_t ameir__joint_hash(const ameir_supernet *sn, const sn_child *c) {
  uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(uint32_t)(v)) * 1099511628211ull)
  if (sn->j_blocks)
    for (int32_t l = 0; l < sn->L; l++) {
      int zero = sn->kinds[c->layer[l]] == AMEIR_LAYER_ZERO;
      MIX(c->layer[l]);
      MIX(zero ? 0 : c->act[l] * 4 + c->norm[l] + 1);
    }
  if (sn->j_inter)
    for (int32_t i = 0; i < c->n_ji; i++) {
      MIX(100 + c->ji_order[i]);
      for (int32_t q = 0; q < c->ji_order[i]; q++) MIX(c->ji_f[i][q]);
    }
  if (sn->j_mlp)
    for (int32_t l = 0; l < sn->n_mlp; l++) MIX(1000 + c->width[l] * 64 + c->mact[l]);
#undef MIX
  return h;
}

ameir_status ameir__joint_to_arch(ameir_supernet *sn, const sn_child *c, ameir_arch **out) {
  const ameir_space *sp = sn->sp;
  ameir_context *ctx = sn->ctx;
  ameir_arch *a = NULL;
  *out = NULL;
  CK(ameir__arch_copy(ctx, sn->fixed, &a));
  if (sn->j_blocks)
    for (int32_t l = 0; l < sn->L && l < a->n_blocks; l++) {
      a->blocks[l].layer = sn->kinds[c->layer[l]];
      a->blocks[l].act = sp->bacts[c->act[l]];
      a->blocks[l].norm = sp->norms[c->norm[l]];
    }
  if (sn->j_inter) {
    if (c->n_ji != a->n_inter) { ameir_arch_free(a); return ameir__error(ctx, AMEIR_EINVAL, "the child has %d interactions, the space %d", (int)c->n_ji, (int)a->n_inter); }
    for (int32_t i = 0; i < a->n_inter; i++) {
      ameir__inter *it = &a->inter[i];
      for (int32_t j = 0; j < it->order; j++) { free(it->fields[j]); it->fields[j] = NULL; }
      it->order = 0;
      for (int32_t j = 0; j < c->ji_order[i]; j++) {
        /* field names in schema order, as a person writes them (the slots are descending) */
        int32_t slot = c->ji_f[i][c->ji_order[i] - 1 - j];
        it->fields[j] = strdup(sn->ds->fields[sn->slot_field[slot]].name);
        if (!it->fields[j]) { ameir_arch_free(a); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
        it->order = j + 1;
      }
    }
  }
  if (sn->j_mlp)
    for (int32_t l = 0; l < sn->n_mlp && l < a->n_mlp; l++) {
      a->mlp[l].width = (int32_t)sn->widths[c->width[l]];
      a->mlp[l].act = sp->macts[c->mact[l]];
    }
  *out = a;
  return AMEIR_OK;
}

ameir_status ameir__joint_from_arch(ameir_supernet *sn, const ameir_arch *a, sn_child *c) {
  const ameir_space *sp = sn->sp;
  ameir_context *ctx = sn->ctx;
  memset(c, 0, sizeof *c);
  if (sn->j_blocks) {
    if (a->n_blocks != sn->L) return ameir__error(ctx, AMEIR_EINVAL, "the child has %d blocks, the space %d", (int)a->n_blocks, (int)sn->L);
    for (int32_t l = 0; l < sn->L; l++) {
      c->layer[l] = c->act[l] = c->norm[l] = -1;
      for (int32_t k = 0; k < sn->n_kinds; k++) if (sn->kinds[k] == a->blocks[l].layer) c->layer[l] = k;
      for (int32_t k = 0; k < sp->n_bacts; k++) if (sp->bacts[k] == a->blocks[l].act) c->act[l] = k;
      for (int32_t k = 0; k < sp->n_norms; k++) if (sp->norms[k] == a->blocks[l].norm) c->norm[l] = k;
      if (c->layer[l] >= 0 && sn->kinds[c->layer[l]] == AMEIR_LAYER_ZERO) {   /* a zero block's act and norm do not matter */
        if (c->act[l] < 0) c->act[l] = 0;
        if (c->norm[l] < 0) c->norm[l] = 0;
      }
      if (c->layer[l] < 0 || c->act[l] < 0 || c->norm[l] < 0)
        return ameir__error(ctx, AMEIR_EINVAL, "block %d (%s, %s) is not in the search space", (int)l + 1,
                            ameir__layer_name(a->blocks[l].layer), ameir__act_name(a->blocks[l].act));
    }
  }
  if (sn->j_inter) {
    if (a->n_inter != sn->j_m) return ameir__error(ctx, AMEIR_EINVAL, "the child has %d interactions, the space %d", (int)a->n_inter, (int)sn->j_m);
    for (int32_t i = 0; i < a->n_inter; i++) {
      const ameir__inter *it = &a->inter[i];
      if (it->order < 2 || it->order > sn->j_order)
        return ameir__error(ctx, AMEIR_EINVAL, "interaction %d has order %d (the space: 2 to %d)", (int)i + 1, (int)it->order, (int)sn->j_order);
      int32_t f[SN_MAX_ORDER];
      for (int32_t j = 0; j < it->order; j++) {
        f[j] = -1;
        for (int32_t e = 0; e < sn->n_eligible; e++)
          if (!strcmp(sn->ds->fields[sn->slot_field[sn->eligible[e]]].name, it->fields[j])) f[j] = sn->eligible[e];
        if (f[j] < 0) return ameir__error(ctx, AMEIR_EINVAL, "interaction field '%s' is not an embedded non-sequence field", it->fields[j]);
      }
      ameir__sn_sort_desc(f, it->order);
      c->ji_order[i] = it->order;
      memcpy(c->ji_f[i], f, sizeof(int32_t) * (size_t)it->order);
      c->n_ji = i + 1;
    }
    ji_sort(c);
  }
  if (sn->j_mlp) {
    if (a->n_mlp != sn->n_mlp) return ameir__error(ctx, AMEIR_EINVAL, "the child has %d MLP layers, the space %d", (int)a->n_mlp, (int)sn->n_mlp);
    for (int32_t l = 0; l < sn->n_mlp; l++) {
      c->width[l] = c->mact[l] = -1;
      for (int32_t k = 0; k < sp->n_ratios; k++) if (sn->widths[k] == a->mlp[l].width) c->width[l] = k;
      for (int32_t k = 0; k < sp->n_macts; k++) if (sp->macts[k] == a->mlp[l].act) c->mact[l] = k;
      if (c->width[l] < 0 || c->mact[l] < 0 || (l && a->mlp[l].width > a->mlp[l - 1].width))
        return ameir__error(ctx, AMEIR_EINVAL, "MLP layer %d (%d, %s) is not in the search space", (int)l + 1,
                            (int)a->mlp[l].width, ameir__act_name(a->mlp[l].act));
    }
  }
  return AMEIR_OK;
}

/* ---------------- a child as text (state files) ---------------- */

void ameir__joint_write(FILE *f, const ameir_supernet *sn, const sn_child *c) {
  for (int32_t l = 0; l < sn->L; l++) fprintf(f, " %d %d %d", (int)c->layer[l], (int)c->act[l], (int)c->norm[l]);
  fprintf(f, " %d", (int)c->n_ji);
  for (int32_t i = 0; i < c->n_ji; i++) {
    fprintf(f, " %d", (int)c->ji_order[i]);
    for (int32_t q = 0; q < c->ji_order[i]; q++) fprintf(f, " %d", (int)c->ji_f[i][q]);
  }
  for (int32_t l = 0; l < sn->n_mlp; l++) fprintf(f, " %d %d", (int)c->width[l], (int)c->mact[l]);
}

static int read_int(char **p, int32_t lo, int32_t hi, int32_t *v) {
  char *end;
  long x = strtol(*p, &end, 10);
  if (end == *p || x < lo || x > hi) return -1;
  *p = end;
  *v = (int32_t)x;
  return 0;
}

int ameir__joint_read(const ameir_supernet *sn, char **p, sn_child *c) {
  const ameir_space *sp = sn->sp;
  memset(c, 0, sizeof *c);
  for (int32_t l = 0; l < sn->L; l++)
    if (read_int(p, 0, sn->n_kinds - 1, &c->layer[l]) || read_int(p, 0, sp->n_bacts - 1, &c->act[l]) ||
        read_int(p, 0, sp->n_norms - 1, &c->norm[l]))
      return -1;
  if (read_int(p, 0, sn->j_m, &c->n_ji)) return -1;
  for (int32_t i = 0; i < c->n_ji; i++) {
    if (read_int(p, 2, sn->j_order, &c->ji_order[i])) return -1;
    for (int32_t q = 0; q < c->ji_order[i]; q++) {
      if (read_int(p, 0, 1 << 20, &c->ji_f[i][q])) return -1;
      int ok = 0;   /* an embedded non-sequence slot, descending */
      for (int32_t e = 0; e < sn->n_eligible; e++) ok |= sn->eligible[e] == c->ji_f[i][q];
      if (!ok || (q && c->ji_f[i][q] >= c->ji_f[i][q - 1])) return -1;
    }
  }
  for (int32_t l = 0; l < sn->n_mlp; l++)
    if (read_int(p, 0, sp->n_ratios - 1, &c->width[l]) || read_int(p, 0, sp->n_macts - 1, &c->mact[l])) return -1;
  return 0;
}
