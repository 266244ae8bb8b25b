/* Training loop, evaluation and options of a model. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../model/model.h"
#include "../io/config.h"
#include "metrics.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

ameir_status ameir__model_reshape(ameir_model *m);
void ameir__model_drop_workspace(ameir_model *m);

/* ---------------- options ---------------- */

static ameir_status parse_i64(ameir_context *ctx, const char *key, const char *v, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  double d = strtod(v, &end);
  while (*end == ' ') end++;
  if (end == v || *end || d != floor(d) || d < (double)lo || d > (double)hi)
    return ameir__error(ctx, AMEIR_EINVAL, "option %s: '%s' is not an integer in [%lld, %lld]", key, v, (long long)lo, (long long)hi);
  *out = (int64_t)d;
  return AMEIR_OK;
}

static ameir_status parse_f64(ameir_context *ctx, const char *key, const char *v, double lo, double hi, double *out) {
  char *end;
  double d = strtod(v, &end);
  while (*end == ' ') end++;
  if (end == v || *end || !(d >= lo && d <= hi))
    return ameir__error(ctx, AMEIR_EINVAL, "option %s: '%s' is not a number in [%g, %g]", key, v, lo, hi);
  *out = d;
  return AMEIR_OK;
}

static ameir_status parse_choice(ameir_context *ctx, const char *key, const char *v, const char *const *names, int32_t *out) {
  char list[256] = "";
  for (int32_t i = 0; names[i]; i++) {
    if (!strcasecmp(v, names[i])) { *out = i; return AMEIR_OK; }
    strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
    strncat(list, names[i], sizeof list - strlen(list) - 1);
  }
  return ameir__error(ctx, AMEIR_EINVAL, "option %s: '%s' is not one of %s", key, v, list);
}

static const char *const SCHED[] = {"constant", "cosine", NULL};
static const char *const OPTIM[] = {"adam", "sparse_adam", NULL};
static const char *const EINIT[] = {"normal", "uniform", NULL};
static const char *const MINIT[] = {"he_normal", "torch", NULL};
static const char *const EMET[] = {"auc", "logloss", NULL};
static const char *const BOOL01[] = {"0", "1", NULL};
static const char *const NEGS[] = {"uniform", "unseen", NULL};
static const char *const PROTO[] = {"full", "sampled", NULL};
static const char *const LOSSES[] = {"bce", "bpr", NULL};

AMEIR_API ameir_status ameir_model_set_option(ameir_model *m, const char *key, const char *value) {
  if (!m || !key || !value) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_set_option: NULL argument");
  ameir_context *ctx = m->ctx;
  ameir__train_opts *o = &m->opt;
  int64_t i;
  int32_t c;
  if (!strcmp(key, "emb")) {
    CK(parse_i64(ctx, key, value, 1, 4096, &i));
    if (i == o->emb) return AMEIR_OK;
    if (m->started) return ameir__error(ctx, AMEIR_ESTATE, "option emb cannot change after training started");
    o->emb = i;
    return ameir__model_reshape(m);
  }
  if (!strcmp(key, "batch")) { CK(parse_i64(ctx, key, value, 1, 1 << 20, &i)); o->batch = i; return AMEIR_OK; }
  if (!strcmp(key, "eval_batch")) { CK(parse_i64(ctx, key, value, 1, 1 << 20, &i)); o->eval_batch = i; return AMEIR_OK; }
  if (!strcmp(key, "epochs")) { CK(parse_i64(ctx, key, value, 0, 100000, &i)); o->epochs = (int32_t)i; return AMEIR_OK; }
  if (!strcmp(key, "max_steps")) { CK(parse_i64(ctx, key, value, 0, INT64_MAX / 2, &i)); o->max_steps = i; return AMEIR_OK; }
  if (!strcmp(key, "neg")) {
    CK(parse_i64(ctx, key, value, 1, 10000, &i));
    if (i != o->neg) { o->neg = (int32_t)i; ameir__model_drop_workspace(m); }
    return AMEIR_OK;
  }
  if (!strcmp(key, "positives")) {
    CK(parse_i64(ctx, key, value, 1, 100, &i));
    if (i != o->positives) { o->positives = (int32_t)i; ameir__model_drop_workspace(m); }
    return AMEIR_OK;
  }
  if (!strcmp(key, "neg_sampling")) { CK(parse_choice(ctx, key, value, NEGS, &c)); o->neg_unseen = c; return AMEIR_OK; }
  if (!strcmp(key, "loss")) {
    CK(parse_choice(ctx, key, value, LOSSES, &c));   /* bpr on a CTR model: refused when it trains */
    if (c != o->loss_bpr) { o->loss_bpr = c; ameir__model_drop_workspace(m); }
    return AMEIR_OK;
  }
  if (!strcmp(key, "eval_protocol")) { CK(parse_choice(ctx, key, value, PROTO, &c)); o->eval_sampled = c; return AMEIR_OK; }
  if (!strcmp(key, "eval_negatives")) { CK(parse_i64(ctx, key, value, 1, 100000, &i)); o->eval_negatives = (int32_t)i; return AMEIR_OK; }
  if (!strcmp(key, "gauc_field")) {
    if (strlen(value) >= sizeof o->gauc_field) return ameir__error(ctx, AMEIR_EINVAL, "option gauc_field: name too long");
    snprintf(o->gauc_field, sizeof o->gauc_field, "%s", value);
    return AMEIR_OK;
  }
  if (!strcmp(key, "timing_warmup")) { CK(parse_i64(ctx, key, value, 0, INT64_MAX / 2, &i)); o->timing_warmup = i; return AMEIR_OK; }
  if (!strcmp(key, "patience")) { CK(parse_i64(ctx, key, value, 0, 100000, &i)); o->patience = (int32_t)i; return AMEIR_OK; }
  if (!strcmp(key, "lr")) return parse_f64(ctx, key, value, 0, 10, &o->lr);
  if (!strcmp(key, "l2")) return parse_f64(ctx, key, value, 0, 10, &o->l2);
  if (!strcmp(key, "dropout")) {
    double v;
    CK(parse_f64(ctx, key, value, 0, 0.95, &v));
    if ((v > 0) != (o->dropout > 0)) ameir__model_drop_workspace(m);   /* masks come and go */
    o->dropout = v;
    return AMEIR_OK;
  }
  if (!strcmp(key, "beta1")) return parse_f64(ctx, key, value, 0, 0.999999, &o->beta1);
  if (!strcmp(key, "beta2")) return parse_f64(ctx, key, value, 0, 0.999999, &o->beta2);
  if (!strcmp(key, "eps")) return parse_f64(ctx, key, value, 1e-30, 1, &o->eps);
  if (!strcmp(key, "init_std") || !strcmp(key, "init_range")) {
    double *dst = key[5] == 's' ? &o->init_std : &o->init_range, v;
    CK(parse_f64(ctx, key, value, 0, 10, &v));
    if (v == *dst) return AMEIR_OK;
    *dst = v;
    return m->started ? AMEIR_OK : ameir__model_reshape(m);   /* re-draw the initial weights */
  }
  if (!strcmp(key, "lr_schedule")) { CK(parse_choice(ctx, key, value, SCHED, &c)); o->lr_schedule = c; return AMEIR_OK; }
  if (!strcmp(key, "optimizer")) { CK(parse_choice(ctx, key, value, OPTIM, &c)); o->sparse_adam = c; return AMEIR_OK; }
  if (!strcmp(key, "init")) {
    CK(parse_choice(ctx, key, value, EINIT, &c));
    if (c != o->emb_init) { o->emb_init = c; if (!m->started) return ameir__model_reshape(m); }
    return AMEIR_OK;
  }
  if (!strcmp(key, "mlp_init")) {
    CK(parse_choice(ctx, key, value, MINIT, &c));
    if (c != o->mlp_init) { o->mlp_init = c; if (!m->started) return ameir__model_reshape(m); }
    return AMEIR_OK;
  }
  if (!strcmp(key, "early_metric")) { CK(parse_choice(ctx, key, value, EMET, &c)); o->early_metric = c; return AMEIR_OK; }
  if (!strcmp(key, "shuffle")) { CK(parse_choice(ctx, key, value, BOOL01, &c)); o->shuffle = c; return AMEIR_OK; }
  if (!strcmp(key, "restore_best")) { CK(parse_choice(ctx, key, value, BOOL01, &c)); o->restore_best = c; return AMEIR_OK; }
  return ameir__error(ctx, AMEIR_ENOTFOUND, "unknown model option '%s'", key);
}

AMEIR_API ameir_status ameir_model_get_option(const ameir_model *m, const char *key, char *buf, size_t size) {
  if (!m || !key || !buf || !size) return AMEIR_EINVAL;
  const ameir__train_opts *o = &m->opt;
  int n;
  if (!strcmp(key, "emb")) n = snprintf(buf, size, "%lld", (long long)o->emb);
  else if (!strcmp(key, "batch")) n = snprintf(buf, size, "%lld", (long long)o->batch);
  else if (!strcmp(key, "eval_batch")) n = snprintf(buf, size, "%lld", (long long)o->eval_batch);
  else if (!strcmp(key, "epochs")) n = snprintf(buf, size, "%d", (int)o->epochs);
  else if (!strcmp(key, "max_steps")) n = snprintf(buf, size, "%lld", (long long)o->max_steps);
  else if (!strcmp(key, "patience")) n = snprintf(buf, size, "%d", (int)o->patience);
  else if (!strcmp(key, "timing_warmup")) n = snprintf(buf, size, "%lld", (long long)o->timing_warmup);
  else if (!strcmp(key, "neg")) n = snprintf(buf, size, "%d", (int)o->neg);
  else if (!strcmp(key, "positives")) n = snprintf(buf, size, "%d", (int)o->positives);
  else if (!strcmp(key, "neg_sampling")) n = snprintf(buf, size, "%s", NEGS[o->neg_unseen]);
  else if (!strcmp(key, "eval_protocol")) n = snprintf(buf, size, "%s", PROTO[o->eval_sampled]);
  else if (!strcmp(key, "loss")) n = snprintf(buf, size, "%s", LOSSES[o->loss_bpr]);
  else if (!strcmp(key, "eval_negatives")) n = snprintf(buf, size, "%d", (int)o->eval_negatives);
  else if (!strcmp(key, "gauc_field")) n = snprintf(buf, size, "%s", o->gauc_field);
  else if (!strcmp(key, "lr")) n = snprintf(buf, size, "%.9g", o->lr);
  else if (!strcmp(key, "l2")) n = snprintf(buf, size, "%.9g", o->l2);
  else if (!strcmp(key, "dropout")) n = snprintf(buf, size, "%.9g", o->dropout);
  else if (!strcmp(key, "beta1")) n = snprintf(buf, size, "%.9g", o->beta1);
  else if (!strcmp(key, "beta2")) n = snprintf(buf, size, "%.9g", o->beta2);
  else if (!strcmp(key, "eps")) n = snprintf(buf, size, "%.9g", o->eps);
  else if (!strcmp(key, "init_std")) n = snprintf(buf, size, "%.9g", o->init_std);
  else if (!strcmp(key, "init_range")) n = snprintf(buf, size, "%.9g", o->init_range);
  else if (!strcmp(key, "lr_schedule")) n = snprintf(buf, size, "%s", SCHED[o->lr_schedule]);
  else if (!strcmp(key, "optimizer")) n = snprintf(buf, size, "%s", OPTIM[o->sparse_adam]);
  else if (!strcmp(key, "init")) n = snprintf(buf, size, "%s", EINIT[o->emb_init]);
  else if (!strcmp(key, "mlp_init")) n = snprintf(buf, size, "%s", MINIT[o->mlp_init]);
  else if (!strcmp(key, "early_metric")) n = snprintf(buf, size, "%s", EMET[o->early_metric]);
  else if (!strcmp(key, "shuffle")) n = snprintf(buf, size, "%d", (int)o->shuffle);
  else if (!strcmp(key, "restore_best")) n = snprintf(buf, size, "%d", (int)o->restore_best);
  else return AMEIR_ENOTFOUND;
  return n < 0 || (size_t)n >= size ? AMEIR_EINVAL : AMEIR_OK;
}

AMEIR_API ameir_status ameir_model_set_options_file(ameir_model *m, const char *path, const char *section) {
  if (!m || !path) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_set_options_file: NULL argument");
  ameir__config *cfg = NULL;
  CK(ameir__config_load(m->ctx, path, &cfg));
  char prefix[128];
  snprintf(prefix, sizeof prefix, "%s.", section ? section : "train");
  size_t pl = strlen(prefix);
  ameir_status st = AMEIR_OK;
  for (int32_t i = 0; i < cfg->n && !st; i++) {
    const ameir__kv *kv = &cfg->kv[i];
    if (strncmp(kv->key, prefix, pl)) continue;
    const char *k = kv->key + pl;
    if (!strcmp(k, "model") || !strcmp(k, "mlp") || !strcmp(k, "arch") || !strcmp(k, "threads") || !strcmp(k, "seed") ||
        !strcmp(k, "cross_layers") || !strcmp(k, "cin") || !strcmp(k, "autoint") || !strcmp(k, "fibinet") ||
        !strcmp(k, "caser") || !strcmp(k, "cloze"))
      continue;   /* read by the program (architecture lines), not model options */
    st = ameir_model_set_option(m, k, kv->value);
    if (st) ameir__error_prefix(m->ctx, "%s:%d: %s%s", cfg->path, (int)kv->line, prefix, k);
  }
  ameir__config_free(cfg);
  return st;
}

/* ---------------- parameter snapshots (best weights) ---------------- */

typedef struct { float *P, *S, *E, *L; } snapshot;

static void snap_free(snapshot *s) { free(s->P); free(s->S); free(s->E); free(s->L); memset(s, 0, sizeof *s); }

static ameir_status snap_take(ameir_model *m, snapshot *s) {
  const ameir_ops *o = m->ops;
  size_t np = 4 * (size_t)m->n_params, ns = 4 * (size_t)(m->n_stats + 1), ne = 4 * (size_t)(m->emb_rows * m->opt.emb);
  if (!s->P) {
    s->P = malloc(np); s->S = malloc(ns); s->E = malloc(ne);
    if (m->L) s->L = malloc(4 * (size_t)m->emb_rows);
    if (!s->P || !s->S || !s->E || (m->L && !s->L)) return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory keeping the best weights");
  }
  CK(o->download(m->bs, s->P, m->P, np));
  CK(o->download(m->bs, s->S, m->stats, ns));
  CK(o->download(m->bs, s->E, m->E, ne));
  if (m->L) CK(o->download(m->bs, s->L, m->L, 4 * (size_t)m->emb_rows));
  return AMEIR_OK;
}

static ameir_status snap_restore(ameir_model *m, const snapshot *s) {
  const ameir_ops *o = m->ops;
  CK(o->upload(m->bs, m->P, s->P, 4 * (size_t)m->n_params));
  CK(o->upload(m->bs, m->stats, s->S, 4 * (size_t)(m->n_stats + 1)));
  CK(o->upload(m->bs, m->E, s->E, 4 * (size_t)(m->emb_rows * m->opt.emb)));
  if (m->L) CK(o->upload(m->bs, m->L, s->L, 4 * (size_t)m->emb_rows));
  return AMEIR_OK;
}

/* ---------------- evaluation ---------------- */

/* Scores rows[0..n) into prob[n] (host) and, when mean_loss is not NULL, their mean loss.
 *
 * Batches are pipelined (ops.h, asynchronous staging): batch i is gathered into the host
 * staging block while the device still scores batch i-1, its upload is queued behind that
 * work, then one sync hands back batch i-1's scores (and frees the block: the upload of batch
 * i was queued before it), and batch i's forward and download are queued. Host and device work
 * overlap, with one synchronisation per batch; the ops run in the same order as batch by
 * batch, so the scores are the same bits. Asking for the loss costs the forward one more sync
 * (the loss comes back to the host). */
ameir_status ameir__model_score_rows(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t n,
                                     float *prob, double *mean_loss) {
  int64_t EB = m->opt.eval_batch > m->opt.batch ? m->opt.eval_batch : m->opt.batch;
  if (m->ws_batch < EB && n < EB) EB = n > 0 ? n : 1;   /* a small request gets a small workspace */
  CK(ameir__model_alloc_workspace(m, EB));
  EB = m->ws_batch;
  const ameir_ops *o = m->ops;
  const int32_t mode = mean_loss ? AMEIR__STAGE_SCORE_LOSS : AMEIR__STAGE_SCORE;
  double lsum = 0;
  if (m->arena || n <= EB) {   /* one batch, or a caller's block (no host_alloc memory): plain */
    for (int64_t s = 0; s < n; s += EB) {
      int64_t nb = n - s < EB ? n - s : EB;
      double loss = 0;
      CK(ameir__model_stage_async(m, ds, rows + s, nb, mode, m->host_stage));
      CK(ameir__model_forward(m, nb, 0, mean_loss ? &loss : NULL));
      CK(o->download(m->bs, prob + s, m->prob, 4 * (size_t)nb));   /* synchronous: all done */
      lsum += loss * (double)nb;
    }
  } else {
    int64_t prev = -1, prev_nb = 0;   /* the batch in flight */
    ameir_status st = AMEIR_OK;
    for (int64_t s = 0; s < n && !st; s += EB) {
      int64_t nb = n - s < EB ? n - s : EB;
      double loss = 0;
      st = ameir__model_stage_async(m, ds, rows + s, nb, mode, m->host_stage);
      if (!st) st = o->sync(m->bs);   /* batch i-1 and the upload of batch i: the block is free */
      if (!st && prev >= 0) memcpy(prob + prev, m->host_prob, sizeof(float) * (size_t)prev_nb);
      if (!st) st = ameir__model_forward(m, nb, 0, mean_loss ? &loss : NULL);
      if (!st) st = o->download_async(m->bs, m->host_prob, m->prob, sizeof(float) * (size_t)nb);
      lsum += loss * (double)nb;
      prev = s;
      prev_nb = nb;
    }
    /* the last batch (after an error: whatever is still queued, before the blocks are reused) */
    ameir_status s2 = o->sync(m->bs);
    if (!st) st = s2;
    if (!st && prev >= 0) memcpy(prob + prev, m->host_prob, sizeof(float) * (size_t)prev_nb);
    CK(st);
  }
  if (mean_loss) *mean_loss = n ? lsum / (double)n : NAN;
  return AMEIR_OK;
}

/* Scores every item for rows[0..nb) of a retrieval dataset: stage, forward to u, one GEMM
 * against the item table (ids 1..V), download into host[nb * V] (dev is device scratch). */
static ameir_status score_all_items(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t nb,
                                    float *dev, float *host) {
  int64_t V = m->item_vocab - 1, K = m->opt.emb;
  CK(ameir__model_stage_async(m, ds, rows, nb, AMEIR__STAGE_SCORE, m->host_stage));
  CK(ameir__model_forward(m, nb, 0, NULL));
  CK(m->ops->gemm(m->bs, 0, 1, nb, V, K, 1.f, m->u, K, m->E + (m->item_base + 1) * K, K, 0.f, dev, V));
  if (m->L) CK(m->ops->add_bias(m->bs, dev, V, m->L + m->item_base + 1, nb, V));   /* the item biases */
  return m->ops->download(m->bs, host, dev, sizeof(float) * (size_t)(nb * V));
}

/* Ranking metrics of a retrieval split: r[0..6] = HR@5, NDCG@5, HR@10, NDCG@10, MRR, HR@20,
 * NDCG@20. Full ranking: rank = items (not in the user's history) scoring strictly above the
 * target; sampled: rank = draws (uniform over the items, redrawn when in the history or equal
 * to the target) scoring strictly above it. Candidates scoring exactly as the target are ties,
 * broken uniformly at random in expectation: with a above and t tied, the rank is uniform over
 * a .. a + t and each metric is its mean over those ranks (models with continuous scores have
 * no ties and the plain rank a; POP's integer counts have many, and counting them below the
 * target would flatter it). One GEMM scores every item for a batch of users. */
static ameir_status eval_retrieval(ameir_model *m, const ameir_dataset *ds, int32_t split, double *r) {
  return ameir__model_rank_rows(m, ds, ds->split_rows[split], ds->split_n[split], r);
}

/* sum_{i=1..n} 1/i: exact up to 64 terms, else the asymptotic series (error below 1e-12) */
static double harmonic(int64_t n) {
  if (n <= 64) {
    double h = 0;
    for (int64_t i = n; i >= 1; i--) h += 1.0 / (double)i;
    return h;
  }
  double x = (double)n;
  return log(x) + 0.57721566490153286 + 1.0 / (2 * x) - 1.0 / (12 * x * x) + 1.0 / (120 * x * x * x * x);
}

/* Adds one row's metrics to r[0..6] for a rank uniform over a .. a + t (a above, t tied). */
static void rank_metrics(int64_t a, int64_t t, double *r) {
  /* k, and where HR@k and NDCG@k go in r */
  static const int ks[3] = {5, 10, 20}, hr_at[3] = {0, 2, 5}, ndcg_at[3] = {1, 3, 6};
  double w = 1.0 / (double)(t + 1);
  for (int i = 0; i < 3; i++) {
    int64_t hi = a + t < ks[i] - 1 ? a + t : ks[i] - 1;   /* the ranks below k */
    double g = 0;
    for (int64_t q = a; q <= hi; q++) g += 1.0 / log2((double)q + 2.0);
    r[hr_at[i]] += (hi >= a ? (double)(hi - a + 1) : 0.0) * w;
    r[ndcg_at[i]] += g * w;
  }
  r[4] += t ? (harmonic(a + t + 1) - harmonic(a)) * w : 1.0 / ((double)a + 1.0);
}

ameir_status ameir__model_rank_rows(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t n,
                                    double *r) {
  const ameir_ops *o = m->ops;
  int64_t V = m->item_vocab - 1;
  for (int i = 0; i < 7; i++) r[i] = n ? 0 : NAN;
  if (!n || V < 1) return AMEIR_OK;
  int64_t EB = 256;
  CK(ameir__model_alloc_workspace(m, m->opt.batch > EB ? m->opt.batch : EB));
  float *dev = NULL, *sc = malloc(sizeof(float) * (size_t)(EB * V));
  enum { HMAX = 4096 };
  int32_t *hist = malloc(sizeof(int32_t) * HMAX * (size_t)m->ctx->threads);
  int64_t *rank_of = malloc(sizeof(int64_t) * (size_t)(2 * EB)), *ties_of = rank_of + EB;
  ameir_status st = sc && hist && rank_of ? o->alloc(m->bs, sizeof(float) * (size_t)(EB * V), (void **)&dev)
                               : ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
  const int32_t *tid = ds->fields[m->item_field].ids;
  for (int64_t s0 = 0; s0 < n && !st; s0 += EB) {
    int64_t nb = n - s0 < EB ? n - s0 : EB;
    st = score_all_items(m, ds, rows + s0, nb, dev, sc);
    if (st) break;
    /* ranks of the batch's rows in parallel (host side), summed in row order afterwards so the
     * result does not depend on the thread count */
#pragma omp parallel for num_threads(m->ctx->threads) schedule(dynamic, 8)
    for (int64_t b = 0; b < nb; b++) {
      int64_t row = rows[s0 + b];
      const float *srow = sc + b * V;
      int32_t t = tid[row];
      rank_of[b] = -1;
      if (t < 1 || t > V) continue;   /* an unknown target cannot be ranked */
      float ts = srow[t - 1];
      int32_t *hb = hist + (int64_t)omp_get_thread_num() * HMAX;
      /* the user's history before the target, deduplicated */
      int64_t nh = 0;
      if (ds->items) {
        const int32_t *h = ds->items + ds->user_off[ds->row_user[row]];
        int64_t len = ds->row_pos[row];
        if (len > HMAX) { h += len - HMAX; len = HMAX; }
        for (int64_t i = 0; i < len; i++) {
          int32_t v = h[i], dup = v == t || v < 1 || v > V;
          for (int64_t j = 0; j < nh && !dup; j++) dup = hb[j] == v;
          if (!dup) hb[nh++] = v;
        }
      }
      int64_t rank = 0, ties = 0;
      if (!m->opt.eval_sampled) {
        for (int64_t j = 0; j < V; j++) { rank += srow[j] > ts; ties += srow[j] == ts; }
        for (int64_t j = 0; j < nh; j++) { rank -= srow[hb[j] - 1] > ts; ties -= srow[hb[j] - 1] == ts; }
        ties -= 1;   /* the target itself */
      } else {
        ameir__rng rg;
        ameir__rng_seed(&rg, m->ctx->seed, 0xe7a1000000ull + (uint64_t)row);
        for (int32_t d = 0; d < m->opt.eval_negatives; d++) {
          int32_t v = 1;
          for (int tries = 0; tries < 1000; tries++) {
            v = 1 + (int32_t)ameir__rng_below(&rg, (uint64_t)V);
            int bad = v == t;
            for (int64_t j = 0; j < nh && !bad; j++) bad = hb[j] == v;
            if (!bad) break;
          }
          rank += srow[v - 1] > ts;
          ties += srow[v - 1] == ts;
        }
      }
      rank_of[b] = rank;
      ties_of[b] = ties;
    }
    for (int64_t b = 0; b < nb; b++)
      if (rank_of[b] >= 0) rank_metrics(rank_of[b], ties_of[b], r);
  }
  free(rank_of);
  o->free(m->bs, dev);
  free(sc);
  free(hist);
  if (st) return st;
  for (int i = 0; i < 7; i++) r[i] /= (double)n;
  return AMEIR_OK;
}

ameir_status ameir__model_metric_rows(ameir_model *m, const ameir_dataset *ds, const int64_t *rows, int64_t n,
                                      double *metric) {
  if (m->task == AMEIR_TASK_RETRIEVAL) {
    double r[7];
    CK(ameir__model_rank_rows(m, ds, rows, n, r));
    *metric = r[2];
    return AMEIR_OK;
  }
  float *prob = malloc(4 * (size_t)(n + 1)), *y = malloc(4 * (size_t)(n + 1));
  if (!prob || !y) { free(prob); free(y); return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory"); }
  ameir_status st = ameir__model_score_rows(m, ds, rows, n, prob, NULL);
  if (!st) {
    for (int64_t i = 0; i < n; i++) y[i] = ds->label[rows[i]];
    /* higher is better: AUC, or minus the log loss when that is the model's early metric */
    *metric = m->opt.early_metric == 1 ? -ameir__logloss(y, prob, n) : ameir__auc(y, prob, n);
    if (*metric == -2 && m->opt.early_metric != 1) st = ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory computing AUC");
  }
  free(prob);
  free(y);
  return st;
}

/* AUC per user, weighted by the user's rows; users with one class are left out (DIN). */
static double gauc(const ameir_dataset *ds, const ameir_model *m, const int64_t *rows, int64_t n, const float *y,
                   const float *p) {
  int32_t uf = -1;
  for (int32_t i = 0; i < ds->n_fields; i++)
    if (!strcmp(ds->fields[i].name, m->opt.gauc_field) && ds->fields[i].ids && ds->fields[i].max_len <= 1) uf = i;
  if (uf < 0 || n == 0) return NAN;
  const int32_t *ids = ds->fields[uf].ids;
  int64_t *ord = malloc(sizeof(int64_t) * (size_t)n);
  float *yy = malloc(sizeof(float) * (size_t)n), *pp = malloc(sizeof(float) * (size_t)n);
  if (!ord || !yy || !pp) { free(ord); free(yy); free(pp); return NAN; }
  /* counting sort by user id */
  int64_t maxid = 0;
  for (int64_t i = 0; i < n; i++) if (ids[rows[i]] > maxid) maxid = ids[rows[i]];
  int64_t *cnt = calloc((size_t)maxid + 2, sizeof(int64_t));
  if (!cnt) { free(ord); free(yy); free(pp); return NAN; }
  for (int64_t i = 0; i < n; i++) cnt[ids[rows[i]] < 0 ? 0 : ids[rows[i]] + 1]++;
  for (int64_t u = 1; u <= maxid + 1; u++) cnt[u] += cnt[u - 1];
  for (int64_t i = 0; i < n; i++) { int64_t u = ids[rows[i]] < 0 ? 0 : ids[rows[i]]; ord[cnt[u]++] = i; }
  double num = 0, den = 0;
  for (int64_t a = 0; a < n;) {
    int64_t u = ids[rows[ord[a]]], b = a;
    while (b < n && ids[rows[ord[b]]] == u) { yy[b - a] = y[ord[b]]; pp[b - a] = p[ord[b]]; b++; }
    double auc = ameir__auc(yy, pp, b - a);
    if (u > 0 && !isnan(auc) && auc >= 0) { num += auc * (double)(b - a); den += (double)(b - a); }
    a = b;
  }
  free(ord); free(yy); free(pp); free(cnt);
  return den > 0 ? num / den : NAN;
}

static ameir_status eval_split(ameir_model *m, const ameir_dataset *ds, int32_t split, double *gauc_out, double *auc,
                               double *logloss, double *loss, double *ctr, int64_t *rows_out) {
  int64_t n = ds->split_n[split];
  const int64_t *rows = ds->split_rows[split];
  if (rows_out) *rows_out = n;
  if (n == 0) {
    if (gauc_out) *gauc_out = NAN;
    if (auc) *auc = NAN;
    if (logloss) *logloss = NAN;
    if (loss) *loss = NAN;
    if (ctr) *ctr = NAN;
    return AMEIR_OK;
  }
  float *prob = malloc(4 * (size_t)n), *y = malloc(4 * (size_t)n);
  if (!prob || !y) { free(prob); free(y); return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory"); }
  ameir_status st = ameir__model_score_rows(m, ds, rows, n, prob, loss);
  if (!st) {
    double pos = 0;
    for (int64_t i = 0; i < n; i++) { y[i] = ds->label[rows[i]]; pos += y[i]; }
    if (ctr) *ctr = pos / (double)n;
    if (auc) {
      *auc = ameir__auc(y, prob, n);
      if (*auc == -2) st = ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory computing AUC");
    }
    if (logloss) *logloss = ameir__logloss(y, prob, n);
    if (gauc_out) *gauc_out = gauc(ds, m, rows, n, y, prob);   /* only when asked: it sorts by user */
  }
  free(prob);
  free(y);
  return st;
}

AMEIR_API ameir_status ameir_model_evaluate(ameir_model *m, const ameir_dataset *ds, int32_t split, int32_t n,
                                            const int32_t *ids, double *values) {
  if (!m || !ds || (n > 0 && (!ids || !values))) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_evaluate: NULL argument");
  if (split < 0 || split > 2) return ameir__error(m->ctx, AMEIR_EINVAL, "unknown split %d", (int)split);
  CK(ameir__model_check_schema(m, ds));
  for (int32_t i = 0; i < n; i++)
    if (ids[i] < AMEIR_METRIC_AUC || ids[i] > AMEIR_METRIC_NDCG20)
      return ameir__error(m->ctx, AMEIR_EINVAL, "unknown metric id %d", (int)ids[i]);
  double auc = NAN, ll = NAN, loss = NAN, ctr = NAN, gauc_v = NAN, rk[7];
  int64_t rows = ds->split_n[split];
  for (int i = 0; i < 7; i++) rk[i] = NAN;
  if (m->task == AMEIR_TASK_RETRIEVAL) CK(eval_retrieval(m, ds, split, rk));
  else {
    int want_gauc = 0, want_loss = 0;
    for (int32_t i = 0; i < n; i++) {
      want_gauc |= ids[i] == AMEIR_METRIC_GAUC;
      want_loss |= ids[i] == AMEIR_METRIC_LOSS;   /* the device's loss costs a sync per batch */
    }
    CK(eval_split(m, ds, split, want_gauc ? &gauc_v : NULL, &auc, &ll, want_loss ? &loss : NULL, &ctr, &rows));
  }
  for (int32_t i = 0; i < n; i++) {
    switch (ids[i]) {
      case AMEIR_METRIC_GAUC: values[i] = gauc_v; break;
      case AMEIR_METRIC_HR5: values[i] = rk[0]; break;
      case AMEIR_METRIC_NDCG5: values[i] = rk[1]; break;
      case AMEIR_METRIC_HR10: values[i] = rk[2]; break;
      case AMEIR_METRIC_NDCG10: values[i] = rk[3]; break;
      case AMEIR_METRIC_MRR: values[i] = rk[4]; break;
      case AMEIR_METRIC_HR20: values[i] = rk[5]; break;
      case AMEIR_METRIC_NDCG20: values[i] = rk[6]; break;
      case AMEIR_METRIC_AUC: values[i] = auc; break;
      case AMEIR_METRIC_LOGLOSS: values[i] = ll; break;
      case AMEIR_METRIC_LOSS: values[i] = loss; break;
      case AMEIR_METRIC_CTR: values[i] = ctr; break;
      default: values[i] = (double)rows; break;
    }
  }
  return AMEIR_OK;
}

AMEIR_API ameir_status ameir_model_predict_split(const ameir_model *cm, const ameir_dataset *ds, int32_t split,
                                                 int64_t first, int64_t n, float *out) {
  const ameir_model *m = cm;
  if (!m || !ds || (n > 0 && !out)) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_predict_split: NULL argument");
  if (split < 0 || split > 2) return ameir__error(m->ctx, AMEIR_EINVAL, "unknown split %d", (int)split);
  if (m->task != AMEIR_TASK_CTR)
    return ameir__error(m->ctx, AMEIR_EUNSUPPORTED, "a retrieval model ranks items: use ameir_model_topk or ameir_model_evaluate");
  if (first < 0 || n < 0 || first + n > ds->split_n[split])
    return ameir__error(m->ctx, AMEIR_EINVAL, "rows [%lld, %lld) outside the split's %lld rows", (long long)first, (long long)(first + n), (long long)ds->split_n[split]);
  CK(ameir__model_check_schema((ameir_model *)m, ds));
  /* a workspace of its own: concurrent predictions share only the read-only parameters */
  ameir_model *c = NULL;
  CK(ameir__model_ws_acquire(m, &c));
  ameir_status st = ameir__model_score_rows(c, ds, ds->split_rows[split] + first, n, out, NULL);
  ameir__model_ws_release(m, c);
  return st;
}

/* ---------------- training ---------------- */

static double lr_at(const ameir__train_opts *o, int64_t step, int64_t total) {
  if (o->lr_schedule == 1 && total > 0)   /* single cosine decay to 0 over the run */
    return o->lr * 0.5 * (1.0 + cos(3.141592653589793 * (double)step / (double)total));
  return o->lr;
}

AMEIR_API ameir_status ameir_model_train(ameir_model *m, const ameir_dataset *ds) {
  if (!m || !ds) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_train: NULL argument");
  ameir_context *ctx = m->ctx;
  CK(ameir__model_check_schema(m, ds));
  if (!ds->label && m->task == AMEIR_TASK_CTR) return ameir__error(ctx, AMEIR_ECONFIG, "the dataset has no label column");
  const ameir__train_opts *o = &m->opt;
  int64_t n = ds->split_n[AMEIR_SPLIT_TRAIN];
  if (n == 0) return ameir__error(ctx, AMEIR_ECONFIG, "the train split is empty");
  int64_t B = o->batch;
  CK(ameir__model_alloc_workspace(m, B > o->eval_batch ? B : o->eval_batch));
  int64_t per_epoch = (n + B - 1) / B;
  int64_t total = per_epoch * o->epochs;
  if (o->max_steps && o->max_steps < total) total = o->max_steps;
  int64_t *order = malloc(8 * (size_t)n);
  if (!order) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  memcpy(order, ds->split_rows[AMEIR_SPLIT_TRAIN], 8 * (size_t)n);
  int use_valid = o->patience > 0 && ds->split_n[AMEIR_SPLIT_VALID] > 0;
  snapshot best = {0};
  double best_metric = NAN;
  int32_t wait = 0;
  ameir__train_stats *S = &m->stats_;
  memset(S, 0, sizeof *S);
  double first_sum = 0, ring[50] = {0};
  int64_t first_n = 0;
  ameir_status st = AMEIR_OK;
  double t_start = ameir__now(), t_eval = 0, t_warm = 0, eval_at_warm = 0;
  int64_t samples_warm = 0;
  int64_t step = 0;
  ameir__rng rng;
  ameir__log(ctx, AMEIR_LOG_INFO, "training %lld rows, batch %lld, %lld steps", (long long)n, (long long)B, (long long)total);
  for (int32_t ep = 0; ep < o->epochs && step < total && !st; ep++) {
    if (o->shuffle) {
      ameir__rng_seed(&rng, ctx->seed, 1000 + (uint64_t)ep);
      for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)ameir__rng_below(&rng, (uint64_t)i + 1);
        int64_t t = order[i]; order[i] = order[j]; order[j] = t;
      }
    }
    for (int64_t s = 0; s < n && step < total; s += B) {
      int64_t nb = n - s < B ? n - s : B;
      double loss = 0;
      double ta = ameir__now();
      st = ameir__model_stage(m, ds, order + s, nb);
      double tb = ameir__now();
      if (!st) st = ameir__model_forward(m, nb, 1, &loss);
      double tc = ameir__now();
      S->t_stage += tb - ta;
      S->t_forward += tc - tb;
      if (st) break;
      if (!isfinite(loss)) { st = ameir__error(ctx, AMEIR_ENUMERIC, "training loss is %g at step %lld", loss, (long long)step + 1); break; }
      m->started = 1;
      st = ameir__model_backward_step(m, nb, lr_at(o, step, total));
      S->t_backward += ameir__now() - tc;
      if (st) break;
      if (first_n < 50) { first_sum += loss; first_n++; }
      if (step + 1 == o->timing_warmup) { t_warm = ameir__now(); eval_at_warm = t_eval; samples_warm = S->samples + nb; }
      ring[step % 50] = loss;
      step++;
      S->samples += nb;
      if (ameir__progress(ctx, "train", step, total, loss)) { st = ameir__error(ctx, AMEIR_ECANCELLED, "training cancelled at step %lld", (long long)step); break; }
    }
    if (st) break;
    S->epochs_done = ep + 1;
    if (use_valid) {
      double te = ameir__now(), auc = NAN, ll = NAN, metric, rk[7];
      if (m->task == AMEIR_TASK_RETRIEVAL) {
        st = eval_retrieval(m, ds, AMEIR_SPLIT_VALID, rk);
        metric = rk[3];   /* NDCG@10 */
        if (!st) ameir__log(ctx, AMEIR_LOG_INFO, "epoch %d: valid HR@10 %.5f NDCG@10 %.5f", (int)ep + 1, rk[2], rk[3]);
      } else {
        st = eval_split(m, ds, AMEIR_SPLIT_VALID, NULL, &auc, &ll, NULL, NULL, NULL);
        metric = o->early_metric == 0 ? auc : -ll;
        if (!st) ameir__log(ctx, AMEIR_LOG_INFO, "epoch %d: valid AUC %.5f logloss %.5f", (int)ep + 1, auc, ll);
      }
      t_eval += ameir__now() - te;
      if (st) break;
      if (isnan(best_metric) || metric > best_metric) {
        best_metric = metric;
        S->best_epoch = ep + 1;
        wait = 0;
        if (o->restore_best) st = snap_take(m, &best);
      } else if (++wait >= o->patience) {
        ameir__log(ctx, AMEIR_LOG_INFO, "early stop after epoch %d (best %d)", (int)ep + 1, (int)S->best_epoch);
        break;
      }
    }
  }
  free(order);
  double t_end = ameir__now();
  if (!st && use_valid && o->restore_best && best.P && S->best_epoch != S->epochs_done) st = snap_restore(m, &best);
  snap_free(&best);
  S->steps = step;
  S->train_seconds = t_end - t_start - t_eval;
  S->eval_seconds = t_eval;
  if (o->timing_warmup > 0 && t_warm > 0) {
    S->timed_seconds = t_end - t_warm - (t_eval - eval_at_warm);
    S->timed_samples = S->samples - samples_warm;
  } else {
    S->timed_seconds = S->train_seconds;
    S->timed_samples = S->samples;
  }
  S->loss_first = first_n ? first_sum / (double)first_n : NAN;
  int64_t k = step < 50 ? step : 50;
  double ls = 0;
  for (int64_t i = 0; i < k; i++) ls += ring[i];
  S->loss_last = k ? ls / (double)k : NAN;
  S->best_valid = (o->early_metric == 0 || m->task == AMEIR_TASK_RETRIEVAL) ? best_metric : -best_metric;
  return st;
}

AMEIR_API ameir_status ameir_model_get_stat(const ameir_model *m, const char *key, double *value) {
  if (!m || !key || !value) return AMEIR_EINVAL;
  const ameir__train_stats *S = &m->stats_;
  if (!strcmp(key, "train_seconds")) *value = S->train_seconds;
  else if (!strcmp(key, "eval_seconds")) *value = S->eval_seconds;
  else if (!strcmp(key, "train_samples")) *value = (double)S->samples;
  else if (!strcmp(key, "train_steps")) *value = (double)S->steps;
  else if (!strcmp(key, "train_loss_first")) *value = S->loss_first;
  else if (!strcmp(key, "train_loss_last")) *value = S->loss_last;
  else if (!strcmp(key, "epochs")) *value = S->epochs_done;
  else if (!strcmp(key, "best_epoch")) *value = S->best_epoch;
  else if (!strcmp(key, "best_valid")) *value = S->best_valid;
  else if (!strcmp(key, "time_stage")) *value = S->t_stage;
  else if (!strcmp(key, "time_forward")) *value = S->t_forward;
  else if (!strcmp(key, "time_backward")) *value = S->t_backward;
  else if (!strcmp(key, "train_samples_per_s")) *value = S->timed_seconds > 0 ? (double)S->timed_samples / S->timed_seconds : 0;
  else return AMEIR_ENOTFOUND;
  return AMEIR_OK;
}

AMEIR_API int64_t ameir_model_params(const ameir_model *m, int64_t *in_embeddings) {
  if (!m) return -1;
  int64_t e = m->emb_rows * m->opt.emb + (m->L ? m->emb_rows : 0);
  if (in_embeddings) *in_embeddings = e;
  return e + m->n_params;
}

AMEIR_API int64_t ameir_model_flops(const ameir_model *m) {
  if (!m) return -1;
  int64_t K = m->opt.emb, f = 0;
  for (int32_t l = 0; l < m->arch->n_mlp; l++) f += 2 * m->mlp[l].in * m->mlp[l].out;
  /* the output layer: a logit (CTR), or u = W [h, h_se] of width K (retrieval) */
  f += 2 * (m->h_last + (m->se_s ? K : 0)) * (m->task == AMEIR_TASK_RETRIEVAL ? K : 1);
  if (m->se_s) f += 2 * m->se_s * K + 4 * m->se_s * m->se_r + 2 * m->se_s * K;
  for (int32_t i = 0; i < m->n_inter; i++) f += (m->inter_order[i] - 1) * K;
  if (m->arch->extras & AMEIR_EXTRA_FM) f += 3 * m->n_cat * K;
  return f + ameir__tower_flops(m) + ameir__stage1_flops(m);
}

AMEIR_API const ameir_arch *ameir_model_arch(const ameir_model *m) { return m ? m->arch : NULL; }

AMEIR_API ameir_status ameir_model_predict_file(const ameir_model *m, const char *path, float **out, int64_t *n) {
  if (!m || !path || !out || !n) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_predict_file: NULL argument");
  *out = NULL;
  *n = 0;
  ameir_context *ctx = m->ctx;
  if (m->task != AMEIR_TASK_CTR)
    return ameir__error(ctx, AMEIR_EUNSUPPORTED, "predict_file scores CTR rows; a retrieval model ranks items");
  if (!m->ds_config)
    return ameir__error(ctx, AMEIR_ESTATE, "the model carries no dataset configuration (it was made from a dataset not opened from YAML)");
  /* an absolute path, so the config's data_dir does not apply to the caller's file */
  char *abs = NULL;
  if (path[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return ameir__error(ctx, AMEIR_EIO, "cannot read the current directory");
    size_t len = strlen(cwd) + strlen(path) + 2;
    abs = malloc(len);
    if (!abs) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    snprintf(abs, len, "%s/%s", cwd, path);
  }
  const char *files[1] = {abs ? abs : path};
  ameir_dataset *ds = NULL;
  ameir_status st = ameir__dataset_open_like_ov(&ds, ctx, m->schema, m->n_schema_fields, m->ds_config,
                                                (const char *const *)m->ds_overrides, m->n_ds_overrides, NULL, files, 1);
  free(abs);
  if (st) return st;
  int64_t rows = ds->split_n[AMEIR_SPLIT_TEST];
  float *p = malloc(sizeof(float) * (size_t)(rows > 0 ? rows : 1));
  if (!p) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  if (!st && rows) st = ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, rows, p);
  ameir_dataset_free(ds);
  if (st) { free(p); return st; }
  *out = p;
  *n = rows;
  return AMEIR_OK;
}

/* Top-k over all items for rows of a retrieval split: one GEMM scores every item for a batch
 * of histories; per row a k-element min-heap keeps the best (ties: the smaller id first). */
typedef struct { float s; int32_t id; } scored;
static int worse(scored a, scored b) { return a.s < b.s || (a.s == b.s && a.id > b.id); }
static void heap_down(scored *h, int32_t n, int32_t i) {
  for (;;) {
    int32_t l = 2 * i + 1, r = l + 1, w = i;
    if (l < n && worse(h[l], h[w])) w = l;
    if (r < n && worse(h[r], h[w])) w = r;
    if (w == i) return;
    scored t = h[i]; h[i] = h[w]; h[w] = t;
    i = w;
  }
}

AMEIR_API ameir_status ameir_model_topk(const ameir_model *cm, const ameir_dataset *ds, int32_t split, int64_t first,
                                        int64_t n, int32_t k, int32_t exclude_seen, int32_t *items, float *scores) {
  ameir_model *m = (ameir_model *)cm;
  if (!m || !ds || (n > 0 && !items) || k < 1) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_topk: bad argument");
  ameir_context *ctx = m->ctx;
  if (m->task != AMEIR_TASK_RETRIEVAL) return ameir__error(ctx, AMEIR_EUNSUPPORTED, "top-k needs a retrieval model");
  if (split < 0 || split > 2 || first < 0 || n < 0 || first + n > ds->split_n[split])
    return ameir__error(ctx, AMEIR_EINVAL, "rows [%lld, %lld) outside the split", (long long)first, (long long)(first + n));
  CK(ameir__model_check_schema(m, ds));
  int64_t V = m->item_vocab - 1;
  if (k > V) return ameir__error(ctx, AMEIR_EINVAL, "k = %d exceeds the %lld items", (int)k, (long long)V);
  ameir_model *clone = NULL;
  CK(ameir__model_ws_acquire(cm, &clone));   /* its own workspace: concurrent calls share no scratch */
  m = clone;
  const ameir_ops *o = m->ops;
  const int64_t EB = n < 256 ? (n > 0 ? n : 1) : 256;
  ameir_status st = ameir__model_alloc_workspace(m, EB);
  float *dev = NULL, *sc = malloc(sizeof(float) * (size_t)(EB * V));
  scored *heaps = malloc(sizeof(scored) * (size_t)(EB * k));
  if (!st && (!sc || !heaps)) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  if (!st) st = o->alloc(m->bs, sizeof(float) * (size_t)(EB * V), (void **)&dev);
  const int64_t *rows = ds->split_rows[split] + first;
  for (int64_t s0 = 0; s0 < n && !st; s0 += EB) {
    int64_t nb = n - s0 < EB ? n - s0 : EB;
    st = score_all_items(m, ds, rows + s0, nb, dev, sc);
    if (st) break;
#pragma omp parallel for num_threads(ctx->threads) schedule(dynamic, 8)
    for (int64_t b = 0; b < nb; b++) {
      float *srow = sc + b * V;
      int64_t row = rows[s0 + b];
      if (exclude_seen && ds->items) {   /* the user's history before the target */
        const int32_t *h = ds->items + ds->user_off[ds->row_user[row]];
        for (int64_t i = 0; i < ds->row_pos[row]; i++)
          if (h[i] >= 1 && h[i] <= V) srow[h[i] - 1] = -INFINITY;
      }
      scored *hp = heaps + b * k;
      int32_t hn = 0;
      for (int64_t j = 0; j < V; j++) {
        scored c = {srow[j], (int32_t)(j + 1)};
        if (c.s == -INFINITY) continue;
        if (hn < k) {
          hp[hn++] = c;
          if (hn == k)
            for (int32_t i = k / 2 - 1; i >= 0; i--) heap_down(hp, k, i);
        } else if (worse(hp[0], c)) {
          hp[0] = c;
          heap_down(hp, k, 0);
        }
      }
      if (hn < k)
        for (int32_t i = hn / 2 - 1; i >= 0; i--) heap_down(hp, hn, i);
      /* pop into descending order */
      int32_t *io = items + (s0 + b) * k;
      float *so = scores ? scores + (s0 + b) * k : NULL;
      for (int32_t i = hn; i < k; i++) { io[i] = 0; if (so) so[i] = -INFINITY; }
      for (int32_t cnt = hn; cnt > 0; cnt--) {
        io[cnt - 1] = hp[0].id;
        if (so) so[cnt - 1] = hp[0].s;
        hp[0] = hp[cnt - 1];
        heap_down(hp, cnt - 1, 0);
      }
    }
  }
  if (dev) o->free(m->bs, dev);
  free(sc);
  free(heaps);
  ameir__model_ws_release(cm, clone);
  return st;
}
