/* The search space and its budget (ameir_space): paper section 2.2 for the operation sets,
 * section 3 and appendix D for the numbers. Every value is a key (docs/search.md). */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search_int.h"
#include "../io/config.h"
#include "../model/arch.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

static const char *const NORM_NAMES[] = {"none", "ln"};

static void set_defaults(ameir_space *s) {
  s->blocks = 3;
  s->n_layers = 0;
  for (int32_t k = 0; k < AMEIR_LAYER_COUNT_; k++) s->layers[s->n_layers++] = k;
  int32_t ba[] = {AMEIR_ACT_RELU, AMEIR_ACT_GELU, AMEIR_ACT_SWISH, AMEIR_ACT_IDENTITY};
  s->n_bacts = 4;
  memcpy(s->bacts, ba, sizeof ba);
  s->n_norms = 2;
  s->norms[0] = AMEIR_NORM_NONE;
  s->norms[1] = AMEIR_NORM_LN;
  s->readout = AMEIR_READOUT_SUM | AMEIR_READOUT_LAST | AMEIR_READOUT_ATT;
  snprintf(s->predefined_mlp, sizeof s->predefined_mlp, "200:relu,80:relu");
  s->mlp_layers = 2;
  s->n_ratios = 10;
  for (int i = 0; i < 10; i++) s->ratios[i] = 0.1 * (i + 1);
  int32_t ma[] = {AMEIR_ACT_RELU, AMEIR_ACT_SWISH, AMEIR_ACT_IDENTITY, AMEIR_ACT_DICE};
  s->n_macts = 4;
  memcpy(s->macts, ma, sizeof ma);
  s->shortcut = AMEIR_SHORTCUT_SE;
  s->inter_topk = 50;
  s->cycles = 4;
  s->inter_m = 5;
  s->samples = 2000;
  s->topk = 5;
  s->score_rows = 4096;
  s->epochs[1] = s->epochs[2] = s->epochs[3] = 10;   /* at most: see sn_patience */
  s->sn_patience = 1;
  s->finetune_epochs = 0;   /* the baselines' budget: train.epochs (else 10) */
  s->patience = 2;
  /* the search-method baselines (appendix C.4) */
  s->method = AMEIR__METHOD_AMEIR;
  s->budget_factor = 10;       /* "10 times the search cost of the proposed one-shot random search" */
  s->children = 300;           /* "we randomly select 300 child models" */
  s->child_epochs = 1;         /* "All child models are trained by 1 epoch" */
  s->population = 10;          /* "We set the initial population size as 10" */
  s->tournament = 1;           /* "we sample one random child model as the parent" */
  s->stall_cycles = 5;         /* "does not change for over 5 cycles" */
  s->joint_samples = 6000;     /* "the 6000 randomly selected architectures" */
  s->epochs[0] = 10;           /* the joint one-shot model, as each step's */
}

static const char *const METHOD_NAMES[AMEIR__METHOD_COUNT_] = {"ameir", "random", "evolution", "joint"};

const char *ameir__method_name(int32_t m) { return m >= 0 && m < AMEIR__METHOD_COUNT_ ? METHOD_NAMES[m] : "?"; }

AMEIR_API ameir_status ameir_space_create(ameir_space **out, ameir_context *ctx) {
  if (!out || !ctx) return ameir__error(ctx, AMEIR_EINVAL, "ameir_space_create: NULL argument");
  *out = calloc(1, sizeof **out);
  if (!*out) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  (*out)->ctx = ctx;
  set_defaults(*out);
  return AMEIR_OK;
}

AMEIR_API void ameir_space_free(ameir_space *s) {
  if (!s) return;
  for (int32_t i = 0; i < s->n_train; i++) free(s->train[i]);
  free(s->train);
  free(s);
}

/* "a,b c" -> names (comma or space separated); returns count or -1 on overflow */
static int split_list(const char *v, char items[][32], int max) {
  int n = 0;
  const char *p = v;
  while (*p) {
    while (*p == ',' || *p == ' ' || *p == '[' || *p == ']') p++;
    if (!*p) break;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ' && *e != ']') e++;
    if (n >= max || e - p >= 32) return -1;
    memcpy(items[n], p, (size_t)(e - p));
    items[n][e - p] = 0;
    n++;
    p = e;
  }
  return n;
}

static ameir_status parse_int(ameir_context *ctx, const char *key, const char *v, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  long long x = strtoll(v, &end, 10);
  if (!*v || *end || x < lo || x > hi)
    return ameir__error(ctx, AMEIR_ECONFIG, "search key '%s': '%s' is not an integer in [%lld, %lld]", key, v,
                        (long long)lo, (long long)hi);
  *out = x;
  return AMEIR_OK;
}

static ameir_status parse_names(ameir_context *ctx, const char *key, const char *v, const char *(*name)(int32_t),
                                int32_t count, int32_t *out, int32_t *n_out) {
  char items[SN_MAX_CHOICES][32];
  int n = split_list(v, items, SN_MAX_CHOICES);
  if (n <= 0) return ameir__error(ctx, AMEIR_ECONFIG, "search key '%s': '%s' is not a list of 1 to %d names", key, v, SN_MAX_CHOICES);
  for (int i = 0; i < n; i++) {
    int32_t id = -1;
    for (int32_t k = 0; k < count; k++)
      if (name(k) && !strcmp(name(k), items[i])) id = k;
    if (id < 0) {
      char known[512] = "";
      for (int32_t k = 0; k < count; k++)
        if (name(k)) { strncat(known, name(k), sizeof known - strlen(known) - 1); strncat(known, " ", sizeof known - strlen(known) - 1); }
      return ameir__error(ctx, AMEIR_ECONFIG, "search key '%s': unknown name '%s' (known: %s)", key, items[i], known);
    }
    for (int j = 0; j < i; j++)
      if (out[j] == id) return ameir__error(ctx, AMEIR_ECONFIG, "search key '%s': '%s' listed twice", key, items[i]);
    out[i] = id;
  }
  *n_out = n;
  return AMEIR_OK;
}

static const char *norm_name(int32_t k) { return k >= 0 && k < 2 ? NORM_NAMES[k] : NULL; }
static const char *act_name(int32_t k) { return ameir__act_name(k); }

static const struct { const char *key; int kind; size_t off; int64_t lo, hi; } INT_KEYS[] = {
#define IK(k, f, lo, hi) {k, 0, offsetof(ameir_space, f), lo, hi}
    IK("blocks", blocks, 1, SN_MAX_BLOCKS), IK("mlp_layers", mlp_layers, 1, SN_MAX_MLP),
    IK("interactions_topk", inter_topk, 1, 100000), IK("cycles", cycles, 1, SN_MAX_ORDER - 1),
    IK("interactions", inter_m, 0, 1000), IK("interactions_per_batch", per_batch, 0, 1000000),
    IK("supernet_patience", sn_patience, 0, 1000), IK("step3_inherit", inherit3, 0, 1), IK("samples", samples, 1, 10000000), IK("topk", topk, 1, 1000),
    IK("epochs1", epochs[1], 0, 1000), IK("epochs2", epochs[2], 0, 1000), IK("epochs3", epochs[3], 0, 1000),
    IK("finetune_epochs", finetune_epochs, 0, 1000), IK("patience", patience, 0, 1000),
    IK("children", children, 1, 1000000), IK("child_epochs", child_epochs, 1, 1000),
    IK("population", population, 2, 1000), IK("tournament", tournament, 1, 100000),
    IK("stall_cycles", stall_cycles, 1, 1000000), IK("joint_samples", joint_samples, 1, 10000000),
    IK("epochs_joint", epochs[0], 0, 1000),
#undef IK
};

/* seconds and factors of the baselines' budget */
static const struct { const char *key; size_t off; double lo; } DBL_KEYS[] = {
    {"budget_seconds", offsetof(ameir_space, budget_seconds), 0},
    {"budget_factor", offsetof(ameir_space, budget_factor), 0},
    {"reference_seconds", offsetof(ameir_space, reference_seconds), 0},
};

AMEIR_API ameir_status ameir_space_set(ameir_space *s, const char *key, const char *v) {
  if (!s || !key || !v) return ameir__error(s ? s->ctx : NULL, AMEIR_EINVAL, "ameir_space_set: NULL argument");
  ameir_context *ctx = s->ctx;
  if (!strncmp(key, "search.", 7)) key += 7;
  if (!strncmp(key, "train.", 6)) {   /* an option of every model of the search */
    const char *k = key + 6;
    size_t n = strlen(k) + strlen(v) + 2;
    char *line = malloc(n);
    char **t = realloc(s->train, sizeof *t * (size_t)(s->n_train + 1));
    if (!line || !t) { free(line); if (t) s->train = t; return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
    s->train = t;
    snprintf(line, n, "%s=%s", k, v);
    s->train[s->n_train++] = line;
    return AMEIR_OK;
  }
  for (size_t i = 0; i < sizeof INT_KEYS / sizeof INT_KEYS[0]; i++)
    if (!strcmp(key, INT_KEYS[i].key)) {
      int64_t x;
      CK(parse_int(ctx, key, v, INT_KEYS[i].lo, INT_KEYS[i].hi, &x));
      *(int32_t *)((char *)s + INT_KEYS[i].off) = (int32_t)x;
      return AMEIR_OK;
    }
  if (!strcmp(key, "score_rows")) return parse_int(ctx, key, v, 0, (int64_t)1 << 40, &s->score_rows);
  if (!strcmp(key, "method")) {
    for (int32_t m = 0; m < AMEIR__METHOD_COUNT_; m++)
      if (!strcmp(v, METHOD_NAMES[m])) { s->method = m; return AMEIR_OK; }
    return ameir__error(ctx, AMEIR_ECONFIG, "search key 'method': '%s' is not ameir, random, evolution or joint", v);
  }
  for (size_t i = 0; i < sizeof DBL_KEYS / sizeof DBL_KEYS[0]; i++)
    if (!strcmp(key, DBL_KEYS[i].key)) {
      char *end;
      double x = strtod(v, &end);
      if (!*v || *end || !(x >= DBL_KEYS[i].lo && x <= 1e12))
        return ameir__error(ctx, AMEIR_ECONFIG, "search key '%s': '%s' is not a number >= %g", key, v, DBL_KEYS[i].lo);
      *(double *)((char *)s + DBL_KEYS[i].off) = x;
      return AMEIR_OK;
    }
  if (!strcmp(key, "layers")) return parse_names(ctx, key, v, ameir__layer_name, AMEIR_LAYER_COUNT_, s->layers, &s->n_layers);
  if (!strcmp(key, "block_acts")) return parse_names(ctx, key, v, act_name, AMEIR_ACT_COUNT_, s->bacts, &s->n_bacts);
  if (!strcmp(key, "mlp_acts")) return parse_names(ctx, key, v, act_name, AMEIR_ACT_COUNT_, s->macts, &s->n_macts);
  if (!strcmp(key, "norms")) return parse_names(ctx, key, v, norm_name, 2, s->norms, &s->n_norms);
  if (!strcmp(key, "readout")) {
    char items[8][32];
    int n = split_list(v, items, 8);
    int32_t r = 0;
    for (int i = 0; i < n; i++) {
      if (!strcmp(items[i], "sum")) r |= AMEIR_READOUT_SUM;
      else if (!strcmp(items[i], "last")) r |= AMEIR_READOUT_LAST;
      else if (!strcmp(items[i], "att")) r |= AMEIR_READOUT_ATT;
      else return ameir__error(ctx, AMEIR_ECONFIG, "search key 'readout': '%s' is not sum, last or att", items[i]);
    }
    if (n <= 0) return ameir__error(ctx, AMEIR_ECONFIG, "search key 'readout': name at least one of sum, last, att");
    s->readout = r;
    return AMEIR_OK;
  }
  if (!strcmp(key, "predefined_mlp")) {
    ameir__mlp_layer *l = NULL;
    int32_t n = 0;
    ameir_status st = ameir__mlp_parse(ctx, v, &l, &n);
    free(l);
    if (st) return ameir__error(ctx, AMEIR_ECONFIG, "search key 'predefined_mlp': %s", ameir_last_error());
    if (strlen(v) >= sizeof s->predefined_mlp) return ameir__error(ctx, AMEIR_ECONFIG, "search key 'predefined_mlp': too long");
    snprintf(s->predefined_mlp, sizeof s->predefined_mlp, "%s", v);
    return AMEIR_OK;
  }
  if (!strcmp(key, "mlp_ratios")) {
    char items[SN_MAX_CHOICES][32];
    int n = split_list(v, items, SN_MAX_CHOICES);
    if (n <= 0) return ameir__error(ctx, AMEIR_ECONFIG, "search key 'mlp_ratios': '%s' is not a list of 1 to %d numbers", v, SN_MAX_CHOICES);
    double r[SN_MAX_CHOICES];
    for (int i = 0; i < n; i++) {
      char *end;
      r[i] = strtod(items[i], &end);
      if (*end || !(r[i] > 0 && r[i] <= 1))
        return ameir__error(ctx, AMEIR_ECONFIG, "search key 'mlp_ratios': '%s' is not a number in (0, 1]", items[i]);
      if (i && r[i] <= r[i - 1]) return ameir__error(ctx, AMEIR_ECONFIG, "search key 'mlp_ratios': list them increasing");
    }
    memcpy(s->ratios, r, sizeof(double) * (size_t)n);
    s->n_ratios = n;
    return AMEIR_OK;
  }
  if (!strcmp(key, "shortcut")) {
    if (!strcmp(v, "se")) s->shortcut = AMEIR_SHORTCUT_SE;
    else if (!strcmp(v, "none")) s->shortcut = AMEIR_SHORTCUT_NONE;
    else return ameir__error(ctx, AMEIR_ECONFIG, "search key 'shortcut': '%s' is not se or none", v);
    return AMEIR_OK;
  }
  return ameir__error(ctx, AMEIR_ENOTFOUND, "unknown search key '%s' (docs/search.md lists them)", key);
}

static void names_of(char *buf, size_t size, const int32_t *ids, int32_t n, const char *(*name)(int32_t)) {
  buf[0] = 0;
  for (int32_t i = 0; i < n; i++) {
    strncat(buf, i ? "," : "", size - strlen(buf) - 1);
    strncat(buf, name(ids[i]), size - strlen(buf) - 1);
  }
}

AMEIR_API ameir_status ameir_space_get(const ameir_space *s, const char *key, char *buf, size_t size) {
  if (!s || !key || !buf || !size) return ameir__error(s ? s->ctx : NULL, AMEIR_EINVAL, "ameir_space_get: NULL argument");
  char tmp[1024];
  if (!strncmp(key, "search.", 7)) key += 7;
  tmp[0] = 0;
  int found = 1;
  for (size_t i = 0; i < sizeof INT_KEYS / sizeof INT_KEYS[0]; i++)
    if (!strcmp(key, INT_KEYS[i].key)) {
      snprintf(buf, size, "%d", (int)*(const int32_t *)((const char *)s + INT_KEYS[i].off));
      return AMEIR_OK;
    }
  for (size_t i = 0; i < sizeof DBL_KEYS / sizeof DBL_KEYS[0]; i++)
    if (!strcmp(key, DBL_KEYS[i].key)) {
      snprintf(buf, size, "%.15g", *(const double *)((const char *)s + DBL_KEYS[i].off));
      return AMEIR_OK;
    }
  if (!strcmp(key, "score_rows")) snprintf(tmp, sizeof tmp, "%lld", (long long)s->score_rows);
  else if (!strcmp(key, "method")) snprintf(tmp, sizeof tmp, "%s", ameir__method_name(s->method));
  else if (!strcmp(key, "layers")) names_of(tmp, sizeof tmp, s->layers, s->n_layers, ameir__layer_name);
  else if (!strcmp(key, "block_acts")) names_of(tmp, sizeof tmp, s->bacts, s->n_bacts, act_name);
  else if (!strcmp(key, "mlp_acts")) names_of(tmp, sizeof tmp, s->macts, s->n_macts, act_name);
  else if (!strcmp(key, "norms")) names_of(tmp, sizeof tmp, s->norms, s->n_norms, norm_name);
  else if (!strcmp(key, "predefined_mlp")) snprintf(tmp, sizeof tmp, "%s", s->predefined_mlp);
  else if (!strcmp(key, "shortcut")) snprintf(tmp, sizeof tmp, "%s", s->shortcut == AMEIR_SHORTCUT_SE ? "se" : "none");
  else if (!strcmp(key, "readout"))
    snprintf(tmp, sizeof tmp, "%s%s%s", s->readout & AMEIR_READOUT_SUM ? "sum " : "", s->readout & AMEIR_READOUT_LAST ? "last " : "",
             s->readout & AMEIR_READOUT_ATT ? "att" : "");
  else if (!strcmp(key, "mlp_ratios"))
    for (int32_t i = 0; i < s->n_ratios; i++)
      snprintf(tmp + strlen(tmp), sizeof tmp - strlen(tmp), "%s%g", i ? "," : "", s->ratios[i]);
  else found = 0;
  if (!found) {
    buf[0] = 0;
    return ameir__error(s->ctx, AMEIR_ENOTFOUND, "unknown search key '%s'", key);
  }
  snprintf(buf, size, "%s", tmp);
  return AMEIR_OK;
}

/* the train: options every model of the search gets (the program's own keys left out) */
static int is_program_key(const char *k) {
  static const char *const skip[] = {"model", "mlp", "arch", "threads", "seed", "epochs", "patience", NULL};
  for (int i = 0; skip[i]; i++) if (!strcmp(k, skip[i])) return 1;
  return 0;
}

AMEIR_API ameir_status ameir_space_load(ameir_space **out, ameir_context *ctx, const char *path, const char *section) {
  if (!out || !ctx || !path) return ameir__error(ctx, AMEIR_EINVAL, "ameir_space_load: NULL argument");
  *out = NULL;
  ameir__config *cfg = NULL;
  CK(ameir__config_load(ctx, path, &cfg));
  ameir_space *s = NULL;
  ameir_status st = ameir_space_create(&s, ctx);
  char prefix[128];
  snprintf(prefix, sizeof prefix, "%s.", section ? section : "search");
  size_t pl = strlen(prefix);
  for (int32_t i = 0; i < cfg->n && !st; i++) {
    const ameir__kv *kv = &cfg->kv[i];
    char key[256];
    if (!strcmp(kv->key, "train.epochs")) {   /* the derivation's default budget */
      int64_t e;
      st = parse_int(ctx, kv->key, kv->value, 1, 100000, &e);
      if (st) ameir__error_prefix(ctx, "%s:%d", cfg->path, (int)kv->line);
      else s->train_epochs = (int32_t)e;
      continue;
    }
    if (!strncmp(kv->key, prefix, pl)) snprintf(key, sizeof key, "%s", kv->key + pl);
    else if (!strncmp(kv->key, "train.", 6) && !is_program_key(kv->key + 6)) snprintf(key, sizeof key, "%s", kv->key);
    else continue;
    st = ameir_space_set(s, key, kv->value);
    if (st) {
      if (st == AMEIR_ENOTFOUND) st = ameir__error(ctx, AMEIR_ECONFIG, "%s", ameir_last_error());
      ameir__error_prefix(ctx, "%s:%d: %s", cfg->path, (int)kv->line, kv->key);
    }
  }
  ameir__config_free(cfg);
  if (st) { ameir_space_free(s); return st; }
  *out = s;
  return AMEIR_OK;
}

char *ameir__space_opts(const ameir_space *sp) {
  size_t n = 1;
  for (int32_t i = 0; i < sp->n_train; i++) n += strlen(sp->train[i]) + 1;
  char *t = malloc(n);
  if (!t) return NULL;
  t[0] = 0;
  for (int32_t i = 0; i < sp->n_train; i++) { strcat(t, sp->train[i]); strcat(t, "\n"); }
  return t;
}
