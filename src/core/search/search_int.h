/* Internal layout of the search: the space, the supernet and its children. */
#ifndef AMEIR_CORE_SEARCH_INT_H
#define AMEIR_CORE_SEARCH_INT_H

#include "../base/base.h"
#include "../model/model.h"
#include "ameir/search.h"
#include "report.h"

#define SN_MAX_BLOCKS 8
#define SN_MAX_MLP 8
#define SN_MAX_CHOICES 16
#define SN_MAX_ORDER 8
#define SN_MAX_INTER 16          /* interactions of a joint child (the space's M, capped) */
#define SN_JOINT 0               /* the step number of the joint supernet (all three subspaces) */

/* search methods (the space's key `method`) */
enum { AMEIR__METHOD_AMEIR = 0, AMEIR__METHOD_RANDOM, AMEIR__METHOD_EVOLUTION, AMEIR__METHOD_JOINT, AMEIR__METHOD_COUNT_ };
const char *ameir__method_name(int32_t method);

struct ameir_space {
  ameir_context *ctx;
  int32_t blocks;                          /* L_a */
  int32_t n_layers, layers[SN_MAX_CHOICES];   /* AMEIR_LAYER_* */
  int32_t n_bacts, bacts[SN_MAX_CHOICES];     /* AMEIR_ACT_* of the blocks */
  int32_t n_norms, norms[2];               /* AMEIR_NORM_* */
  int32_t readout;                         /* AMEIR_READOUT_* bits */
  char predefined_mlp[256];                /* the MLP of steps 1 and 2 */
  int32_t mlp_layers;                      /* L_c */
  int32_t n_ratios;
  double ratios[SN_MAX_CHOICES];           /* of K0 */
  int32_t n_macts, macts[SN_MAX_CHOICES];  /* AMEIR_ACT_* of the MLP */
  int32_t shortcut;
  int32_t inter_topk, cycles, inter_m;
  int32_t per_batch;                       /* step 2: interactions per training batch (0: all) */
  int32_t inherit3;                        /* step 3's supernet starts from step 1's weights */
  int32_t sn_patience;                     /* one-shot training stops after this many epochs without
                                            * progress on the validation subset (0: never) */
  int32_t samples, topk;
  int64_t score_rows;
  int32_t epochs[4];                       /* one-shot epochs of steps 1..3 (per cycle for 2); [0]: the
                                            * joint one-shot model of method joint */
  int32_t finetune_epochs, patience;        /* finetune_epochs 0: train_epochs, else 10 */
  int32_t train_epochs;                    /* the train: section's epochs (0: none given) */
  /* the search-method baselines (paper appendix C.4; docs/search.md "Other search methods") */
  int32_t method;                          /* AMEIR__METHOD_* */
  double budget_seconds;                   /* random, evolution: the search's wall-time budget (0: see below) */
  double budget_factor, reference_seconds; /* else budget_factor x reference_seconds (when > 0) */
  int32_t children;                        /* random, evolution: the most children trained */
  int32_t child_epochs;                    /* epochs each such child is trained */
  int32_t population, tournament, stall_cycles;   /* evolution */
  int32_t joint_samples;                   /* joint: children scored with inherited weights */
  int32_t n_train;                         /* "key=value" options of every model (train: section) */
  char **train;
};

/* A child: the choices of one step (the other stages are fixed by the supernet). */
typedef struct {
  int32_t layer[SN_MAX_BLOCKS], act[SN_MAX_BLOCKS], norm[SN_MAX_BLOCKS];   /* step 1: indices into the choice lists */
  int32_t width[SN_MAX_MLP], mact[SN_MAX_MLP];                             /* step 3: ratio index, act index */
  int32_t inter;                                                          /* step 2: candidate index */
  /* joint (all three subspaces): the child's interactions, each its order and its slots in
   * descending order; the list sorted (order, then slots) so a child has one spelling */
  int32_t n_ji, ji_order[SN_MAX_INTER], ji_f[SN_MAX_INTER][SN_MAX_ORDER];
} sn_child;

/* A candidate interaction of step 2: sorted slot indices of the model's embedded fields. */
typedef struct {
  int32_t order;
  int32_t f[SN_MAX_ORDER];
  int32_t slot;            /* its projection's bank slot */
  double score;
} sn_inter;

/* Fair sampling of one decision: a random permutation of its choices, drawn in turn. */
typedef struct { int32_t n, pos, perm[SN_MAX_CHOICES * 4]; } sn_fair;

struct ameir_supernet {
  ameir_context *ctx;
  const ameir_space *sp;
  const ameir_dataset *ds;
  int32_t step;
  ameir_model *m;
  ameir_arch *fixed;       /* the architecture with the other stages fixed (owned) */
  /* step 1 */
  int32_t L;               /* block positions */
  int32_t n_kinds, kinds[SN_MAX_CHOICES];
  int64_t *bp, *bg, *bb;   /* [L * n_kinds] bank offsets: layer params, LN gamma, LN beta (-1 none) */
  /* joint (step SN_JOINT): every subspace that applies; `desc_only` supernets hold only the
   * description of the space (no model): random search and evolution sample and mutate with it */
  int32_t desc_only;
  int32_t j_blocks, j_inter, j_mlp;   /* the subspaces searched */
  int32_t j_m, j_order;               /* interactions per child, their highest order */
  int32_t *slot_field;                /* [n_cat of the layout] dataset field of each embedded slot */
  /* step 3 */
  int64_t K0;
  int32_t n_mlp;
  int64_t widths[SN_MAX_CHOICES];
  /* step 2 */
  int32_t n_slots, n_cand, n_free;
  int64_t pj0;             /* first projection: slot s at pj0 + s * out1 * K */
  int64_t out1;
  sn_inter *cand;          /* [n_slots] the current cycle's candidates */
  int32_t *free_slots;      /* bank slots no candidate holds */
  int32_t n_eligible, *eligible;   /* embedded slots an interaction may use */
  /* training */
  int64_t base_params;     /* [0, base_params): parameters every child uses */
  int64_t sched_total, sched_done;   /* the single cosine schedule */
  double es_best;          /* early stopping of the one-shot training: best validation mean so far */
  int32_t es_bad;          /* epochs since it improved */
  int32_t es_stopped;      /* the current training stopped early */
  char *best_buf;          /* the training state at the best epoch so far (restored at the end) */
  size_t best_len;
  sn_fair fair[3 * SN_MAX_BLOCKS + 2 * SN_MAX_MLP + 1];
  ameir__rng fair_rng;
  int64_t *seg;            /* optimiser segments of the current child(ren) */
  int64_t *groups;         /* step 2: [3 * n] row groups of a training batch */
  sn_child cur;
  const int64_t *x0_rows;   /* the rows whose x0 the workspace holds (step 3 scoring) */
  int64_t x0_n, x0_step;
};

/* internal API between supernet.c, joint.c, baseline.c and searcher.c */
/* the joint supernet (all three subspaces at once); desc_only: no model, only the space */
ameir_status ameir__sn_create_joint(ameir_supernet **out, const ameir_space *sp, const ameir_dataset *ds, int32_t desc_only);
int32_t ameir__sn_fair_next(sn_fair *f, int32_t n, ameir__rng *r);
void ameir__sn_sort_desc(int32_t *w, int32_t n);
/* joint.c: the joint space's children */
void ameir__joint_random_child(ameir_supernet *sn, ameir__rng *r, sn_child *c);
/* j_m distinct interactions, each of an order drawn uniformly in [2, j_order] over distinct fields */
void ameir__joint_fill_inter(const ameir_supernet *sn, ameir__rng *r, sn_child *c);
/* one simple change: a Stage-1 block's layer, activation or norm; one interaction; an MLP
 * layer's width or activation (the stage drawn uniformly among those searched). *what names it */
void ameir__joint_mutate(ameir_supernet *sn, ameir__rng *r, const sn_child *parent, sn_child *child, const char **what);
/* the decisions in which a and b differ (blocks: layer, act, norm; interactions: as sets, one
 * swapped counts one; MLP: width, act) */
int32_t ameir__joint_distance(const ameir_supernet *sn, const sn_child *a, const sn_child *b);
uint64_t ameir__joint_hash(const ameir_supernet *sn, const sn_child *c);
ameir_status ameir__joint_to_arch(ameir_supernet *sn, const sn_child *c, ameir_arch **out);
ameir_status ameir__joint_from_arch(ameir_supernet *sn, const ameir_arch *a, sn_child *c);
/* the child's line of a state file, and back (0 on success) */
void ameir__joint_write(FILE *f, const ameir_supernet *sn, const sn_child *c);
int ameir__joint_read(const ameir_supernet *sn, char **p, sn_child *c);
ameir_status ameir__sn_child_from_arch(ameir_supernet *sn, const ameir_arch *a, sn_child *c);
ameir_status ameir__sn_child_to_arch(ameir_supernet *sn, const sn_child *c, ameir_arch **out);
void ameir__sn_random_child(ameir_supernet *sn, ameir__rng *r, sn_child *c);
/* the next child of the fair schedule (training draws them; tests check the counts) */
void ameir__sn_fair_child(ameir_supernet *sn, sn_child *c);
/* a searcher's supernet of a step, or NULL */
ameir_supernet *ameir__searcher_supernet(ameir_searcher *s, int32_t step);
ameir_status ameir__sn_set_child(ameir_supernet *sn, const sn_child *c);
ameir_status ameir__sn_score(ameir_supernet *sn, const sn_child *c, const int64_t *rows, int64_t n, double *metric);
ameir_status ameir__sn_train(ameir_supernet *sn, int32_t epochs, int32_t cycle, int32_t first_epoch,
                             ameir_status (*on_epoch)(void *u, int32_t epoch), void *u);
/* step 2: replace the candidate set (projections of kept ones stay, new ones are drawn) */
ameir_status ameir__sn_set_candidates(ameir_supernet *sn, const sn_inter *c, int32_t n);
/* copies every parameter of src's current child that has a counterpart in dst */
ameir_status ameir__model_inherit(ameir_model *dst, const ameir_model *src);
/* the space's train options as "key=value\n" lines */
char *ameir__space_opts(const ameir_space *sp);
/* raw training state of a supernet (checkpoints) */
ameir_status ameir__sn_save_state(ameir_supernet *sn, FILE *f);
ameir_status ameir__sn_load_state(ameir_supernet *sn, FILE *f);
/* the best-epoch snapshot as part of a checkpoint */
ameir_status ameir__sn_save_best(ameir_supernet *sn, FILE *f);
ameir_status ameir__sn_load_best(ameir_supernet *sn, FILE *f);

/* ---------------- the searcher (searcher.c; baseline.c runs two of its methods) ---------------- */

typedef struct {
  sn_child c;
  double score, full;
} scored_child;

struct ameir_searcher {
  ameir_context *ctx;
  const ameir_space *sp;
  const ameir_dataset *ds;
  char out[1024], config[1024];
  int32_t resume, from_scratch;
  int32_t steps_mask;              /* bits 1..4 asked for */
  int32_t redo_derive;             /* "steps" named 4: derive again even when a resumed search has */
  int32_t done_mask;               /* bits 1..4 finished */
  ameir_arch *result[5];
  double metric[5];
  sn_child best[4];                /* the chosen child of steps 1 and 3 */
  ameir_supernet *sn[4];           /* [1..3] the steps' supernets; [SN_JOINT] method joint's */
  ameir_model *model;
  ameir__search_report rep;
  double test[4];
  FILE *log;
  /* the other search methods (random, evolution, joint): their search is reported as step 3 */
  double budget;                   /* random, evolution: the budget in effect (seconds; INFINITY: none) */
  int32_t children;                /* children trained (random, evolution) or scored (joint) */
  int32_t evo_cycles;              /* evolution: cycles run */
  char stop[96];                   /* why the search stopped */
};

double ameir__now_s(void);
void ameir__search_log(ameir_searcher *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* the step's result (takes a), its report entry, its time since t0 */
ameir_status ameir__search_set_result(ameir_searcher *s, int step, ameir_arch *a, double metric, double t0);
/* state.txt and the reports (after a step) */
ameir_status ameir__search_checkpoint(ameir_searcher *s);
/* writes OUT/name atomically with fill (nothing without an output directory) */
ameir_status ameir__search_write_atomic(ameir_searcher *s, const char *name,
                                        ameir_status (*fill)(ameir_searcher *, FILE *, void *), void *u);
/* baseline.c: random search or regularized evolution, reported as step 3 */
ameir_status ameir__search_baseline(ameir_searcher *s);

#endif
