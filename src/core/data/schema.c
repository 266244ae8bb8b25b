/* The `dataset:` section of a YAML config -> ameir__schema. Every key is documented in
 * docs/data.md; every key read is marked used, and whatever is left over under the section is
 * an unknown key (ECONFIG naming file, line and key). */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  ameir_context *ctx;
  ameir__config *cfg;
  const char *pre;     /* "dataset." or "" */
  char key[512];
} rd;

static const char *full(rd *r, const char *sub) {
  snprintf(r->key, sizeof r->key, "%s%s", r->pre, sub);
  return r->key;
}

static const char *get(rd *r, const char *sub) { return ameir__config_get(r->cfg, full(r, sub)); }

static int32_t line_of(rd *r, const char *sub) {
  ameir__kv *kv = ameir__config_find(r->cfg, full(r, sub));
  if (kv) return kv->line;
  /* a collection: the line of its first entry */
  size_t kl = strlen(r->key);
  for (int32_t i = 0; i < r->cfg->n; i++)
    if (strncmp(r->cfg->kv[i].key, r->key, kl) == 0 && r->cfg->kv[i].key[kl] == '.')
      return r->cfg->kv[i].line;
  return 0;
}

static int has_tree(rd *r, const char *sub) {
  full(r, sub);
  size_t kl = strlen(r->key);
  for (int32_t i = 0; i < r->cfg->n; i++) {
    const char *k = r->cfg->kv[i].key;
    if (strncmp(k, r->key, kl) == 0 && (k[kl] == 0 || k[kl] == '.')) return 1;
  }
  return 0;
}

static ameir_status cerr(rd *r, const char *sub, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static ameir_status cerr(rd *r, const char *sub, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int32_t line = line_of(r, sub);
  return ameir__error(r->ctx, AMEIR_ECONFIG, "%s:%d: %s%s: %s", r->cfg->path, (int)line, r->pre, sub, msg);
}

static int parse_bool(const char *v, int *out) {
  static const char *t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "1"};
  static const char *f[] = {"false", "False", "FALSE", "no", "No", "off", "0"};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (strcmp(v, t[i]) == 0) return *out = 1, 0;
  for (size_t i = 0; i < sizeof f / sizeof *f; i++)
    if (strcmp(v, f[i]) == 0) return *out = 0, 0;
  return -1;
}

static ameir_status get_bool(rd *r, const char *sub, int *out) {
  const char *v = get(r, sub);
  if (!v) return AMEIR_OK;
  if (parse_bool(v, out)) return cerr(r, sub, "'%s' is not a boolean (true/false)", v);
  return AMEIR_OK;
}

static ameir_status get_int(rd *r, const char *sub, int64_t lo, int64_t hi, int64_t *out) {
  const char *v = get(r, sub);
  if (!v) return AMEIR_OK;
  char *end;
  double d = strtod(v, &end);
  if (end == v || *end || d != floor(d) || d < (double)lo || d > (double)hi)
    return cerr(r, sub, "'%s' is not an integer in [%lld, %lld]", v, (long long)lo, (long long)hi);
  *out = (int64_t)d;
  return AMEIR_OK;
}

static ameir_status get_i32(rd *r, const char *sub, int64_t lo, int64_t hi, int32_t *out) {
  int64_t v = *out;
  ameir_status st = get_int(r, sub, lo, hi, &v);
  *out = (int32_t)v;
  return st;
}

static ameir_status get_double(rd *r, const char *sub, double lo, double hi, double *out) {
  const char *v = get(r, sub);
  if (!v) return AMEIR_OK;
  char *end;
  double d = strtod(v, &end);
  if (end == v || *end || !(d >= lo && d <= hi))
    return cerr(r, sub, "'%s' is not a number in [%g, %g]", v, lo, hi);
  *out = d;
  return AMEIR_OK;
}

/* One byte: a literal character, or the escapes \t \\ and the names tab/comma/space. */
static ameir_status get_char(rd *r, const char *sub, char *out, int allow_empty) {
  const char *v = get(r, sub);
  if (!v) return AMEIR_OK;
  if (!*v && allow_empty) return *out = 0, AMEIR_OK;
  if (strcmp(v, "\\t") == 0 || strcmp(v, "tab") == 0) return *out = '\t', AMEIR_OK;
  if (strcmp(v, "comma") == 0) return *out = ',', AMEIR_OK;
  if (strcmp(v, "space") == 0) return *out = ' ', AMEIR_OK;
  if (strcmp(v, "\\\\") == 0) return *out = '\\', AMEIR_OK;
  if (strlen(v) != 1 || v[0] == '\n' || v[0] == '\r')
    return cerr(r, sub, "'%s' must be a single character (or \\t)", v);
  *out = v[0];
  return AMEIR_OK;
}

static ameir_status get_str(rd *r, const char *sub, char **out) {
  const char *v = get(r, sub);
  if (!v) return AMEIR_OK;
  char *c = ameir__strdup(r->ctx, v);
  if (!c) return AMEIR_ENOMEM;
  free(*out);
  *out = c;
  return AMEIR_OK;
}

static void free_list(char **a, int32_t n) {
  if (!a) return;
  for (int32_t i = 0; i < n; i++) free(a[i]);
  free(a);
}

static ameir_status push_str(ameir_context *ctx, char ***a, int32_t *n, const char *v) {
  char **p = ameir__realloc(ctx, *a, (size_t)(*n + 1) * sizeof *p);
  if (!p) return AMEIR_ENOMEM;
  *a = p;
  p[*n] = ameir__strdup(ctx, v);
  if (!p[*n]) return AMEIR_ENOMEM;
  (*n)++;
  return AMEIR_OK;
}

/* A list of strings: `key: [a, b]` or a single scalar `key: a`. Appends to *a. */
static ameir_status get_list(rd *r, const char *sub, char ***a, int32_t *n) {
  const char *v = get(r, sub);
  if (v) return *v ? push_str(r->ctx, a, n, v) : AMEIR_OK;
  char base[256];
  snprintf(base, sizeof base, "%s", sub);
  int32_t cnt = ameir__config_count(r->cfg, full(r, base));
  for (int32_t i = 0; i < cnt; i++) {
    char k[300];
    snprintf(k, sizeof k, "%s.%d", base, (int)i);
    const char *e = get(r, k);
    if (!e) return cerr(r, k, "expected a string");
    ameir_status st = push_str(r->ctx, a, n, e);
    if (st) return st;
  }
  return AMEIR_OK;
}

static ameir_status add_file(rd *r, ameir__schema *s, const char *data_dir, const char *value,
                             int8_t role) {
  ameir__config tmp = *r->cfg;
  if (data_dir) tmp.dir = (char *)data_dir;
  char *p = ameir__config_path(r->ctx, &tmp, value);
  if (!p) return AMEIR_ENOMEM;
  char **nf = ameir__realloc(r->ctx, s->files, (size_t)(s->n_files + 1) * sizeof *nf);
  int8_t *nr = nf ? ameir__realloc(r->ctx, s->role, (size_t)(s->n_files + 1)) : NULL;
  if (nf) s->files = nf;
  if (nr) s->role = nr;
  if (!nf || !nr) {
    free(p);
    return AMEIR_ENOMEM;
  }
  s->files[s->n_files] = p;
  s->role[s->n_files] = role;
  s->n_files++;
  return AMEIR_OK;
}

static ameir_status add_files(rd *r, ameir__schema *s, const char *data_dir, const char *sub, int8_t role,
                              int32_t *added) {
  char **list = NULL;
  int32_t n = 0;
  ameir_status st = get_list(r, sub, &list, &n);
  for (int32_t i = 0; i < n && !st; i++) st = add_file(r, s, data_dir, list[i], role);
  free_list(list, n);
  if (added) *added = n;
  return st;
}

static int parse_transform(const char *v) {
  if (!strcmp(v, "none") || !strcmp(v, "None") || !*v) return AMEIR_DENSE_NONE;
  if (!strcmp(v, "log")) return AMEIR_DENSE_LOG;
  if (!strcmp(v, "minmax") || !strcmp(v, "MinMaxScaler")) return AMEIR_DENSE_MINMAX;
  if (!strcmp(v, "bucket")) return AMEIR_DENSE_BUCKET;
  return -1;
}

/* ---- features ---- */

static const char *const feature_keys[] = {
    "name", "column", "type", "dtype", "transform", "normalizer", "fill_na", "min_count",
    "min_categr_count", "hash_buckets", "multi", "separator", "splitter", "max_len", "padding",
    "share_embedding", "share", "range", "active", NULL};


/* Reads features.<i> into one or more specs (a list `name:` expands). */
static ameir_status read_feature(rd *r, ameir__schema *s, int32_t i) {
  char b[64], k[128];
  snprintf(b, sizeof b, "features.%d", (int)i);
#define FK(x) (snprintf(k, sizeof k, "%s.%s", b, x), k)
  ameir__fspec t;
  memset(&t, 0, sizeof t);
  t.line = line_of(r, b);
  t.kind = -1;
  t.transform = -1;
  t.min_count = -1;
  t.range_lo = t.range_hi = -1;
  t.col = -1;
  t.vocab_of = -1;
  char **names = NULL;
  int32_t n_names = 0;
  char *column = NULL, *type = NULL, *share = NULL;
  int active = 1, multi = 0;
  ameir_status st = AMEIR_OK;
  const char *bare = get(r, b);
  if (bare) {  /* `- C1`: a name with the defaults */
    st = push_str(r->ctx, &names, &n_names, bare);
  } else {
    st = get_list(r, FK("name"), &names, &n_names);
    if (!st && n_names == 0) st = cerr(r, b, "a feature needs a name");
    if (!st) st = get_str(r, FK("column"), &column);
    if (!st) st = get_str(r, FK("type"), &type);
    const char *dtype = st ? NULL : get(r, FK("dtype"));
    if (dtype && strcmp(dtype, "str") && strcmp(dtype, "string") && strcmp(dtype, "int") &&
        strcmp(dtype, "float") && strcmp(dtype, "float32") && strcmp(dtype, "float64") &&
        strcmp(dtype, "int64") && strcmp(dtype, "int32"))
      st = cerr(r, FK("dtype"), "'%s' is not one of str, int, float", dtype);
    const char *tr = st ? NULL : get(r, FK("transform"));
    const char *nz = st ? NULL : get(r, FK("normalizer"));
    if (tr && nz) st = cerr(r, FK("normalizer"), "give transform or normalizer, not both");
    if (!tr) tr = nz;
    if (!st && tr && (t.transform = parse_transform(tr)) < 0)
      st = cerr(r, nz && tr == nz ? FK("normalizer") : FK("transform"),
                "'%s' is not one of none, log, minmax, bucket", tr);
    if (!st) st = get_double(r, FK("fill_na"), -1e30, 1e30, &t.fill_na);
    if (!st && get(r, FK("min_count")) && get(r, FK("min_categr_count")))
      st = cerr(r, FK("min_categr_count"), "give min_count or min_categr_count, not both");
    if (!st) st = get_i32(r, FK("min_count"), 1, INT32_MAX, &t.min_count);
    if (!st) st = get_i32(r, FK("min_categr_count"), 1, INT32_MAX, &t.min_count);
    if (!st) st = get_i32(r, FK("hash_buckets"), 1, INT32_MAX - 1, &t.hash_buckets);
    if (!st) st = get_bool(r, FK("multi"), &multi);
    t.sep = 0;
    if (!st) st = get_char(r, FK("separator"), &t.sep, 0);
    if (!st) st = get_char(r, FK("splitter"), &t.sep, 0);
    if (!st) st = get_i32(r, FK("max_len"), 1, 1 << 20, &t.max_len);
    const char *pad = st ? NULL : get(r, FK("padding"));
    if (pad && strcmp(pad, "pre") && strcmp(pad, "post"))
      st = cerr(r, FK("padding"), "'%s' is not pre or post", pad);
    if (!st) st = get_str(r, FK("share_embedding"), &share);
    if (!st) st = get_str(r, FK("share"), &share);
    if (!st) st = get_bool(r, FK("active"), &active);
    if (!st && has_tree(r, FK("range"))) {
      char rk[160];
      int64_t lo = -1, hi = -1;
      snprintf(rk, sizeof rk, "%s.range", b);
      if (ameir__config_count(r->cfg, full(r, rk)) != 2) {
        st = cerr(r, rk, "expected [first, last] feature indices");
      } else {
        snprintf(rk, sizeof rk, "%s.range.0", b);
        st = get_int(r, rk, 0, INT64_MAX / 2, &lo);
        snprintf(rk, sizeof rk, "%s.range.1", b);
        if (!st) st = get_int(r, rk, 0, INT64_MAX / 2, &hi);
        if (!st && hi < lo) st = cerr(r, rk, "range end %lld before its start %lld", (long long)hi, (long long)lo);
        t.range_lo = lo;
        t.range_hi = hi;
      }
    }
    /* anything else under the entry is unknown */
    if (!st) {
      full(r, b);
      size_t kl = strlen(r->key);
      for (int32_t j = 0; j < r->cfg->n && !st; j++) {
        ameir__kv *kv = &r->cfg->kv[j];
        if (strncmp(kv->key, r->key, kl) || kv->key[kl] != '.') continue;
        const char *rest = kv->key + kl + 1;
        size_t rl = strcspn(rest, ".");
        int ok = 0;
        for (const char *const *fk = feature_keys; *fk; fk++)
          if (strlen(*fk) == rl && strncmp(rest, *fk, rl) == 0) ok = 1;
        if (!ok)
          st = ameir__error(r->ctx, AMEIR_ECONFIG, "%s:%d: %s: unknown key '%.*s' in a feature",
                            r->cfg->path, (int)kv->line, kv->key, (int)rl, rest);
      }
    }
  }
  /* the kind */
  if (!st && type) {
    if (!strcmp(type, "categorical")) t.kind = multi ? AMEIR_FIELD_MULTI : AMEIR_FIELD_CATEGORICAL;
    else if (!strcmp(type, "numeric") || !strcmp(type, "dense")) t.kind = AMEIR_FIELD_DENSE;
    else if (!strcmp(type, "sequence")) t.kind = AMEIR_FIELD_SEQUENCE;
    else st = cerr(r, FK("type"), "'%s' is not one of categorical, numeric, sequence", type);
  } else if (!st && multi) {
    t.kind = AMEIR_FIELD_MULTI;
  }
  if (!st && t.kind == AMEIR_FIELD_DENSE && multi)
    st = cerr(r, FK("multi"), "a numeric feature cannot be multi-valued");
  if (!st && n_names > 1 && column)
    st = cerr(r, FK("column"), "column: needs a single name");
  for (int32_t j = 0; j < n_names && !st && active; j++) {
    ameir__fspec f = t;
    if (f.kind < 0) f.kind = ameir__schema_preset_numeric(s, column ? column : names[j]) ? AMEIR_FIELD_DENSE
                                                                            : AMEIR_FIELD_CATEGORICAL;
    if (f.kind == AMEIR_FIELD_DENSE) {
      if (f.transform < 0) f.transform = s->transform;
      if (f.hash_buckets || f.max_len || f.sep || share) {
        st = cerr(r, b, "'%s': hash_buckets, max_len, separator and share_embedding are for "
                        "categorical features", names[j]);
        break;
      }
      if (f.transform == AMEIR_DENSE_BUCKET) {
        f.kind = AMEIR_FIELD_CATEGORICAL;  /* Kaggle buckets become categorical ids */
        if (f.min_count < 0) f.min_count = s->min_count;
      } else if (f.min_count >= 0) {
        st = cerr(r, b, "'%s': min_count is for categorical (or bucket) features", names[j]);
        break;
      }
    } else {
      if (f.transform >= 0) {
        st = cerr(r, b, "'%s': transform is for numeric features", names[j]);
        break;
      }
      f.transform = AMEIR_DENSE_NONE;
      if (f.min_count < 0) f.min_count = s->min_count;
    }
    if (f.kind == AMEIR_FIELD_MULTI || f.kind == AMEIR_FIELD_SEQUENCE) {
      if (!f.max_len) {
        st = cerr(r, b, "'%s': a multi-valued or sequence feature needs max_len", names[j]);
        break;
      }
      if (!f.sep && s->format == AMEIR__FMT_DELIM) f.sep = '|';
      if (f.sep && f.sep == s->sep) {
        st = cerr(r, b, "'%s': the value separator equals the column separator", names[j]);
        break;
      }
      f.keep_last = f.kind == AMEIR_FIELD_SEQUENCE;
    } else {
      if (f.max_len > 1) {
        st = cerr(r, b, "'%s': max_len is for multi-valued or sequence features", names[j]);
        break;
      }
      f.max_len = 1;
    }
    if (share && strlen(share) >= sizeof f.share) {
      st = cerr(r, b, "share_embedding name too long");
      break;
    }
    if (share) snprintf(f.share, sizeof f.share, "%s", share);
    if (t.range_lo >= 0 && s->format != AMEIR__FMT_LIBFM) {
      st = cerr(r, b, "range: is for libfm files");
      break;
    }
    if (strlen(names[j]) == 0 || strlen(names[j]) > 255) {
      st = cerr(r, b, "feature names must have 1 to 255 bytes");
      break;
    }
    for (int32_t q = 0; q < s->nf; q++)
      if (!strcmp(s->f[q].name, names[j])) {
        st = cerr(r, b, "feature '%s' is defined twice", names[j]);
        break;
      }
    if (st) break;
    f.name = ameir__strdup(r->ctx, names[j]);
    f.column = s->format == AMEIR__FMT_LIBFM ? NULL : ameir__strdup(r->ctx, column ? column : names[j]);
    ameir__fspec *nfp = ameir__realloc(r->ctx, s->f, (size_t)(s->nf + 1) * sizeof *nfp);
    if (!f.name || (s->format != AMEIR__FMT_LIBFM && !f.column) || !nfp) {
      free(f.name);
      free(f.column);
      if (nfp) s->f = nfp;
      st = AMEIR_ENOMEM;
      break;
    }
    s->f = nfp;
    s->f[s->nf++] = f;
  }
#undef FK
  free_list(names, n_names);
  free(column);
  free(type);
  free(share);
  return st;
}

/* ---- presets ---- */

static ameir_status set_columns_criteo(ameir_context *ctx, ameir__schema *s) {
  ameir_status st = push_str(ctx, &s->columns, &s->n_columns, "label");
  char nm[16];
  for (int i = 1; i <= 13 && !st; i++) {
    snprintf(nm, sizeof nm, "I%d", i);
    st = push_str(ctx, &s->columns, &s->n_columns, nm);
  }
  for (int i = 1; i <= 26 && !st; i++) {
    snprintf(nm, sizeof nm, "C%d", i);
    st = push_str(ctx, &s->columns, &s->n_columns, nm);
  }
  return st;
}

/* ---- the section ---- */

static const char *const ignored_sections[] = {"train", "search", "model", "arch", "space", "eval",
                                               "context", NULL};

static ameir_status check_unknown(rd *r) {
  size_t pl = strlen(r->pre);
  for (int32_t i = 0; i < r->cfg->n; i++) {
    ameir__kv *kv = &r->cfg->kv[i];
    if (kv->used || strncmp(kv->key, r->pre, pl) != 0) continue;
    if (!pl) {
      size_t fl = strcspn(kv->key, ".");
      int ign = 0;
      for (const char *const *sct = ignored_sections; *sct; sct++)
        if (strlen(*sct) == fl && strncmp(kv->key, *sct, fl) == 0) ign = 1;
      if (ign) continue;
    }
    return ameir__error(r->ctx, AMEIR_ECONFIG, "%s:%d: unknown key '%s'", r->cfg->path, (int)kv->line,
                        kv->key);
  }
  return AMEIR_OK;
}

static ameir_status read_split(rd *r, ameir__schema *s, const char *data_dir) {
  const char *m = get(r, "split.method");
  if (!m) m = get(r, "split");  /* `split: modulo` */
  int32_t n_valid_files = 0, n_test_files = 0;
  ameir_status st = add_files(r, s, data_dir, "split.valid_files", AMEIR_SPLIT_VALID, &n_valid_files);
  if (!st) st = add_files(r, s, data_dir, "split.test_files", AMEIR_SPLIT_TEST, &n_test_files);
  if (st) return st;
  /* FuxiCTR's train_data / valid_data / test_data */
  const char *fx_valid = get(r, "valid_data"), *fx_test = get(r, "test_data");
  if (fx_valid && *fx_valid) {
    if ((st = add_file(r, s, data_dir, fx_valid, AMEIR_SPLIT_VALID))) return st;
    n_valid_files++;
  }
  if (fx_test && *fx_test) {
    if ((st = add_file(r, s, data_dir, fx_test, AMEIR_SPLIT_TEST))) return st;
    n_test_files++;
  }
  s->has_valid_files = n_valid_files > 0;
  if (!m) m = (n_valid_files || n_test_files) ? "file" : "random";
  if (!strcmp(m, "random")) s->split = AMEIR__SPLIT_RANDOM;
  else if (!strcmp(m, "modulo")) s->split = AMEIR__SPLIT_MODULO;
  else if (!strcmp(m, "file")) s->split = AMEIR__SPLIT_FILE;
  else if (!strcmp(m, "column")) s->split = AMEIR__SPLIT_COLUMN;
  else if (!strcmp(m, "none")) s->split = AMEIR__SPLIT_NONE;
  else
    return cerr(r, get(r, "split.method") ? "split.method" : "split",
                "'%s' is not one of random, modulo, file, column, none", m);
  if (s->split != AMEIR__SPLIT_FILE && (n_valid_files || n_test_files))
    return cerr(r, "split", "valid_files/test_files need method: file");
  if (s->split == AMEIR__SPLIT_FILE && !n_valid_files && !n_test_files)
    return cerr(r, "split", "method file needs test_files (and/or valid_files)");
  int64_t seed = (int64_t)s->seed;
  if ((st = get_int(r, "split.seed", 0, INT64_MAX, &seed))) return st;
  s->seed = (uint64_t)seed;
  s->test = 0.1;
  s->valid = 0.09;  /* 10 % of the 90 % that is not test (the paper's protocol) */
  if ((st = get_double(r, "split.valid", 0, 1, &s->valid))) return st;
  if ((st = get_double(r, "split.test", 0, 1, &s->test))) return st;
  if ((get(r, "split.valid") || get(r, "split.test") || get(r, "split.seed")) &&
      s->split != AMEIR__SPLIT_RANDOM)
    return cerr(r, "split", "seed/valid/test fractions are for method: random");
  if (s->valid + s->test >= 1.0) return cerr(r, "split", "valid + test must be below 1");
  if ((st = get_str(r, "split.column", &s->split_column))) return st;
  s->split_line = line_of(r, "split.column");
  if ((st = get_list(r, "split.valid_values", &s->valid_values, &s->n_valid_values))) return st;
  if ((st = get_list(r, "split.test_values", &s->test_values, &s->n_test_values))) return st;
  if (s->split == AMEIR__SPLIT_COLUMN) {
    if (!s->split_column) return cerr(r, "split", "method column needs column:");
    if (!s->n_valid_values && !s->n_test_values)
      return cerr(r, "split", "method column needs valid_values and/or test_values");
    if (s->format != AMEIR__FMT_DELIM) return cerr(r, "split.method", "%s files have no named columns", s->format_name);
  } else if (s->split_column || s->n_valid_values || s->n_test_values) {
    return cerr(r, "split", "column/valid_values/test_values are for method: column");
  }
  return AMEIR_OK;
}

/* on_bad_row, cache and the default name: every format */
static ameir_status read_misc(rd *r, ameir__schema *s) {
  ameir_context *ctx = r->ctx;
  ameir__config *cfg = r->cfg;
  ameir_status st = AMEIR_OK;
  const char *ob = get(r, "on_bad_row");
  if (ob) {
    if (!strcmp(ob, "skip")) s->skip_bad = 1;
    else if (strcmp(ob, "error") != 0) return cerr(r, "on_bad_row", "'%s' is not error or skip", ob);
  }
  const char *cv = get(r, "cache");
  if (cv) {
    int b;
    if (parse_bool(cv, &b)) return cerr(r, "cache", "expected true/false or {enabled:, dir:}");
    s->cache = b;
  } else {
    int b = 1;
    if ((st = get_bool(r, "cache.enabled", &b))) return st;
    s->cache = b;
    const char *cd = get(r, "cache.dir");
    if (cd && *cd && !(s->cache_dir = ameir__config_path(ctx, cfg, cd))) return AMEIR_ENOMEM;
  }
  if (!s->name) {
    const char *b = strrchr(s->files[0], '/');
    b = b ? b + 1 : s->files[0];
    size_t n = strcspn(b, ".");
    s->name = ameir__malloc(ctx, n + 1);
    if (!s->name) return AMEIR_ENOMEM;
    memcpy(s->name, b, n);
    s->name[n] = 0;
  }
  return st;
}

/* userseq, useritem, session, ml100k, mlsmall, dmr: the format defines the fields (docs/data.md
 * "Retrieval formats" and "Rating logs and DMR rows"); only its own keys are read. */
static ameir_status read_special(rd *r, ameir__schema *s) {
  ameir_context *ctx = r->ctx;
  ameir_status st = AMEIR_OK;
  int fm = s->format, retr = ameir__fmt_retrieval(fm), ml = fm == AMEIR__FMT_ML100K || fm == AMEIR__FMT_MLSMALL;
  s->max_len = 50;
  if ((st = get_i32(r, "max_len", 1, 1 << 16, &s->max_len))) return st;
  s->min_count = ml ? 10 : 1;  /* torch_ref's --min-count 10 for ml100k */
  if (get(r, "min_count") && get(r, "min_categr_count"))
    return cerr(r, "min_categr_count", "give min_count or min_categr_count, not both");
  int mc_given = get(r, "min_count") || get(r, "min_categr_count");
  if ((st = get_i32(r, "min_count", 1, INT32_MAX, &s->min_count))) return st;
  if ((st = get_i32(r, "min_categr_count", 1, INT32_MAX, &s->min_count))) return st;
  if (retr) {
    s->vocab_identity = fm != AMEIR__FMT_SESSION;
    const char *v = get(r, "vocab");
    if (v && !strcmp(v, "identity")) s->vocab_identity = 1;
    else if (v && !strcmp(v, "count")) s->vocab_identity = 0;
    else if (v) return cerr(r, "vocab", "'%s' is not identity or count", v);
    if (s->vocab_identity && mc_given)
      return cerr(r, get(r, "min_count") ? "min_count" : "min_categr_count", "min_count is for vocab: count");
    int uf = 0;
    if ((st = get_bool(r, "user_field", &uf))) return st;
    s->user_field = uf;
  }
  if (fm == AMEIR__FMT_SESSION) {
    s->sep = '\t';
    s->quote = 0;
    s->header = 1;
    if ((st = get_char(r, "separator", &s->sep, 0))) return st;
    int hdr = 1;
    if ((st = get_bool(r, "header", &hdr))) return st;
    s->header = hdr;
    if ((st = get_list(r, "columns", &s->columns, &s->n_columns))) return st;
    s->columns_line = line_of(r, "columns");
    if (!s->header && !s->n_columns) return cerr(r, "header", "a file without a header needs columns: [...]");
    const char *dflt[3] = {"SessionId", "ItemId", "Time"}, *keys[3] = {"session_column", "item_column", "time_column"};
    char **dst[3] = {&s->session_col, &s->item_col, &s->time_col};
    for (int k = 0; k < 3; k++) {
      const char *v = get(r, keys[k]);
      if (!v) v = dflt[k];
      if (!*v && k < 2) return cerr(r, keys[k], "needs a column name");
      if (*v && !(*dst[k] = ameir__strdup(ctx, v))) return AMEIR_ENOMEM;
    }
  }
  if (fm == AMEIR__FMT_DMR) {
    const char *dt = get(r, "dense_transform");
    if (dt && (s->transform = parse_transform(dt)) < 0)
      return cerr(r, "dense_transform", "'%s' is not one of none, log, minmax, bucket", dt);
    if (s->transform == AMEIR_DENSE_BUCKET) return cerr(r, "dense_transform", "price cannot be bucketed");
  }
  if (fm == AMEIR__FMT_ML100K && s->n_files != 3)
    return cerr(r, "files", "ml100k needs 3 files: the ratings (u.data), users (u.user) and items (u.item)");
  if (fm == AMEIR__FMT_MLSMALL && s->n_files != 2)
    return cerr(r, "files", "mlsmall needs 2 files: ratings.csv and movies.csv");
  if ((st = read_misc(r, s))) return st;
  if ((st = check_unknown(r))) return st;
  /* the fields */
  static const char *const ml100k[] = {"user_id", "age", "gender", "occupation", "zip1", "movie_id", NULL};
  static const char *const mlsmall[] = {"user_id", "movie_id", NULL};
  static const char *const dmr[] = {"uid", "cms_segid", "cms_group_id", "final_gender_code", "age_level",
                                    "pvalue_level", "shopping_level", "occupation", "new_user_class_level",
                                    "mid", "cate_id", "campaign_id", "customer", "brand", NULL};
  const char *const *uni = fm == AMEIR__FMT_ML100K ? ml100k : fm == AMEIR__FMT_MLSMALL ? mlsmall
                           : fm == AMEIR__FMT_DMR ? dmr : NULL;
  if (retr) {
    st = ameir__schema_add_field(ctx, s, "hist", AMEIR_FIELD_SEQUENCE, s->max_len, "item");
    if (!st) st = ameir__schema_add_field(ctx, s, "item", AMEIR_FIELD_CATEGORICAL, 1, NULL);
    if (!st && s->user_field) st = ameir__schema_add_field(ctx, s, "user", AMEIR_FIELD_CATEGORICAL, 1, NULL);
  }
  for (int i = 0; uni && uni[i] && !st; i++)
    st = ameir__schema_add_field(ctx, s, uni[i], AMEIR_FIELD_CATEGORICAL, 1, NULL);
  if (ml) {
    /* the genres' length is the item table's largest genre count, known once it is read */
    if (!st) st = ameir__schema_add_field(ctx, s, "genres", AMEIR_FIELD_MULTI, 1, NULL);
    if (!st) st = ameir__schema_add_field(ctx, s, "hist_movie", AMEIR_FIELD_SEQUENCE, s->max_len, "movie_id");
  }
  if (fm == AMEIR__FMT_DMR) {
    if (!st) st = ameir__schema_add_field(ctx, s, "price", AMEIR_FIELD_DENSE, 1, NULL);
    if (!st) st = ameir__schema_add_field(ctx, s, "pid", AMEIR_FIELD_CATEGORICAL, 1, NULL);
    if (!st) st = ameir__schema_add_field(ctx, s, "hist_btag", AMEIR_FIELD_SEQUENCE, s->max_len, NULL);
    if (!st) st = ameir__schema_add_field(ctx, s, "hist_cate", AMEIR_FIELD_SEQUENCE, s->max_len, "cate_id");
    if (!st) st = ameir__schema_add_field(ctx, s, "hist_brand", AMEIR_FIELD_SEQUENCE, s->max_len, "brand");
  }
  if (st) return st;
  s->bound = 1;
  ameir__schema_hash(s);
  return AMEIR_OK;
}

ameir_status ameir__schema_read(ameir_context *ctx, ameir__config *cfg, const char *prefix,
                                ameir__schema *s) {
  memset(s, 0, sizeof *s);
  rd R = {ctx, cfg, prefix, {0}};
  rd *r = &R;
  ameir_status st = AMEIR_OK;
  s->yaml = ameir__strdup(ctx, cfg->path);
  if (!s->yaml) return AMEIR_ENOMEM;
  s->seed = ctx ? ctx->seed : 2021;
  s->min_count = 1;
  s->cache = 1;
  s->sep = ',';
  s->quote = '"';
  s->header = 1;
  s->label_mode = AMEIR__LABEL_01;

  /* format and its preset */
  const char *fmt = get(r, "format");
  if (!fmt) fmt = "csv";
  if (!strcmp(fmt, "criteo")) {
    s->sep = '\t';
    s->quote = 0;
    s->header = 0;
    s->transform = AMEIR_DENSE_LOG;
    st = set_columns_criteo(ctx, s);
    if (!st) st = (s->label = ameir__strdup(ctx, "label")) ? AMEIR_OK : AMEIR_ENOMEM;
  } else if (!strcmp(fmt, "avazu")) {
    st = (s->label = ameir__strdup(ctx, "click")) ? AMEIR_OK : AMEIR_ENOMEM;
    if (!st) st = push_str(ctx, &s->drop, &s->n_drop, "id");
  } else if (!strcmp(fmt, "tsv")) {
    s->sep = '\t';
    s->quote = 0;
  } else if (!strcmp(fmt, "libfm") || !strcmp(fmt, "libsvm")) {
    s->format = AMEIR__FMT_LIBFM;
    s->header = 0;
    s->label_mode = -1;  /* set below */
  } else if (!strcmp(fmt, "userseq")) {
    s->format = AMEIR__FMT_USERSEQ;
  } else if (!strcmp(fmt, "useritem")) {
    s->format = AMEIR__FMT_USERITEM;
  } else if (!strcmp(fmt, "session")) {
    s->format = AMEIR__FMT_SESSION;
  } else if (!strcmp(fmt, "ml100k")) {
    s->format = AMEIR__FMT_ML100K;
  } else if (!strcmp(fmt, "mlsmall")) {
    s->format = AMEIR__FMT_MLSMALL;
  } else if (!strcmp(fmt, "dmr")) {
    s->format = AMEIR__FMT_DMR;
  } else if (strcmp(fmt, "csv") != 0) {
    return cerr(r, "format", "'%s' is not one of criteo, avazu, csv, tsv, libfm, userseq, useritem, session, "
                "ml100k, mlsmall, dmr", fmt);
  }
  if (st) return st;
  s->format_name = ameir__strdup(ctx, fmt);
  if (!s->format_name) return AMEIR_ENOMEM;
  int is_delim = s->format == AMEIR__FMT_DELIM;

  if ((st = get_str(r, "name", &s->name))) return st;

  /* files */
  char *data_dir = NULL;
  const char *dd = get(r, "data_dir");
  if (dd && *dd && !(data_dir = ameir__config_path(ctx, cfg, dd))) return AMEIR_ENOMEM;
  int32_t nfiles = 0;
  st = add_files(r, s, data_dir, "files", -1, &nfiles);
  const char *fx_train = st ? NULL : get(r, "train_data");
  if (fx_train && *fx_train) {
    if (nfiles) st = cerr(r, "train_data", "give files or train_data, not both");
    else st = add_file(r, s, data_dir, fx_train, -1);
  }
  /* ml100k, mlsmall and the retrieval formats split by their own protocol */
  if (!st && s->format <= AMEIR__FMT_LIBFM) st = read_split(r, s, data_dir);
  if (!st && s->format == AMEIR__FMT_DMR) st = read_split(r, s, data_dir);
  if (!st && s->format >= AMEIR__FMT_USERSEQ && s->format != AMEIR__FMT_DMR) s->split = AMEIR__SPLIT_NONE;
  free(data_dir);
  if (st) return st;
  if (s->n_files == 0) return cerr(r, "files", "no data files (files: [...])");
  /* absolute paths: the cache records them, and the same data opened from another directory
   * must find the same cache */
  for (int32_t i = 0; i < s->n_files; i++) {
    char *rp = realpath(s->files[i], NULL);
    if (rp) {
      free(s->files[i]);
      s->files[i] = rp;
    }
  }

  if (s->format >= AMEIR__FMT_USERSEQ) return read_special(r, s);

  /* text layout */
  if (is_delim) {
    if ((st = get_char(r, "separator", &s->sep, 0))) return st;
    if ((st = get_char(r, "quote", &s->quote, 1))) return st;
    if (s->quote && s->quote == s->sep) return cerr(r, "quote", "quote equals the separator");
    int hdr = s->header;
    if ((st = get_bool(r, "header", &hdr))) return st;
    s->header = hdr;
    char **cols = NULL;
    int32_t ncols = 0;
    if ((st = get_list(r, "columns", &cols, &ncols))) return st;
    if (ncols) {
      s->columns_line = line_of(r, "columns");
      free_list(s->columns, s->n_columns);
      s->columns = cols;
      s->n_columns = ncols;
      for (int32_t i = 0; i < ncols; i++)
        for (int32_t j = 0; j < i; j++)
          if (!strcmp(cols[i], cols[j])) return cerr(r, "columns", "column '%s' is listed twice", cols[i]);
    }
    if (!s->header && !s->n_columns) return cerr(r, "header", "a file without a header needs columns: [...]");
  } else {
    static const char *const not_libfm[] = {"separator", "quote", "header", "columns", "drop", NULL};
    for (const char *const *k = not_libfm; *k; k++)
      if (has_tree(r, *k)) return cerr(r, *k, "not a libfm setting");
    if ((st = get_i32(r, "num_fields", 1, 1 << 20, &s->num_fields))) return st;
    s->num_fields_line = line_of(r, "num_fields");
  }

  /* label */
  const char *lname = NULL, *lvalues = NULL, *lsec = "label";
  if (has_tree(r, "label_col")) {
    if (has_tree(r, "label")) return cerr(r, "label_col", "give label or label_col, not both");
    lsec = "label_col";
  }
  char lk[64];
  if ((lname = get(r, lsec)) == NULL) {
    snprintf(lk, sizeof lk, "%s.name", lsec);
    lname = get(r, lk);
    snprintf(lk, sizeof lk, "%s.values", lsec);
    lvalues = get(r, lk);
    snprintf(lk, sizeof lk, "%s.dtype", lsec);
    get(r, lk);  /* accepted (FuxiCTR), labels are always read as numbers */
  }
  s->label_line = line_of(r, lsec);
  if (lname) {
    if (!is_delim) return cerr(r, lsec, "the libfm label is always the first token (give only values:)");
    free(s->label);
    if (!(s->label = ameir__strdup(ctx, lname))) return AMEIR_ENOMEM;
  }
  if (is_delim && !s->label) return cerr(r, "label", "no label column (label: NAME)");
  if (lvalues) {
    snprintf(lk, sizeof lk, "%s.values", lsec);
    if (!strcmp(lvalues, "0/1")) s->label_mode = AMEIR__LABEL_01;
    else if (!strcmp(lvalues, "-1/1")) s->label_mode = AMEIR__LABEL_PM1;
    else if (!strcmp(lvalues, "positive") || !strcmp(lvalues, ">0")) s->label_mode = AMEIR__LABEL_POSITIVE;
    else return cerr(r, lk, "'%s' is not one of 0/1, -1/1, positive", lvalues);
  } else if (s->label_mode < 0) {
    s->label_mode = AMEIR__LABEL_POSITIVE;  /* libfm: -1/1 and 0/1 both work, as torch_ref */
  }

  /* defaults for features */
  if (get(r, "min_count") && get(r, "min_categr_count"))
    return cerr(r, "min_categr_count", "give min_count or min_categr_count, not both");
  if ((st = get_i32(r, "min_count", 1, INT32_MAX, &s->min_count))) return st;
  if ((st = get_i32(r, "min_categr_count", 1, INT32_MAX, &s->min_count))) return st;
  const char *dt = get(r, "dense_transform");
  if (dt && (s->transform = parse_transform(dt)) < 0)
    return cerr(r, "dense_transform", "'%s' is not one of none, log, minmax, bucket", dt);
  if (is_delim) {
    char **drop = NULL;
    int32_t ndrop = 0;
    if ((st = get_list(r, "drop", &drop, &ndrop))) return st;
    if (ndrop) {
      free_list(s->drop, s->n_drop);
      s->drop = drop;
      s->n_drop = ndrop;
      s->drop_line = line_of(r, "drop");
    }
  }

  /* features */
  const char *fsec = "features";
  if (has_tree(r, "feature_cols")) {
    if (has_tree(r, "features")) return cerr(r, "feature_cols", "give features or feature_cols, not both");
    fsec = "feature_cols";
  }
  int32_t nfe = ameir__config_count(cfg, full(r, fsec));
  s->features_line = line_of(r, fsec);
  if (nfe == 0 && get(r, fsec)) return cerr(r, fsec, "expected a list of features");
  if (strcmp(fsec, "features") != 0) {
    /* read feature_cols.<i> through the same code: rename the keys */
    char from[600], to[600];
    snprintf(from, sizeof from, "%sfeature_cols", prefix);
    snprintf(to, sizeof to, "%sfeatures", prefix);
    size_t fl = strlen(from);
    for (int32_t i = 0; i < cfg->n; i++) {
      ameir__kv *kv = &cfg->kv[i];
      if (strncmp(kv->key, from, fl) || (kv->key[fl] && kv->key[fl] != '.')) continue;
      size_t nl = strlen(to) + strlen(kv->key + fl) + 1;
      char *nk = ameir__malloc(ctx, nl);
      if (!nk) return AMEIR_ENOMEM;
      snprintf(nk, nl, "%s%s", to, kv->key + fl);
      free(kv->key);
      kv->key = nk;
    }
  }
  for (int32_t i = 0; i < nfe && !st; i++) st = read_feature(r, s, i);
  if (st) return st;
  if (nfe == 0) s->auto_features = 1;
  else if (s->nf == 0) return cerr(r, "features", "every feature is inactive");
  if (!is_delim) {
    int with = 0;
    for (int32_t i = 0; i < s->nf; i++) {
      with += s->f[i].range_lo >= 0;
      if (s->f[i].kind == AMEIR_FIELD_DENSE || s->f[i].transform == AMEIR_DENSE_BUCKET) {
        s->features_line = s->f[i].line;
        return cerr(r, "features", "'%s': libfm features are categorical (values are feature indices)",
                    s->f[i].name);
      }
      if (s->f[i].kind != AMEIR_FIELD_CATEGORICAL && s->f[i].range_lo < 0)
        return cerr(r, "features", "'%s': a multi-valued libfm feature needs range:", s->f[i].name);
    }
    if (with && with != s->nf) return cerr(r, "features", "give range: for every feature or for none");
    s->libfm_ranges = with > 0;
    if (s->libfm_ranges && s->num_fields) return cerr(r, "num_fields", "not used with ranges");
    if (s->nf && !s->libfm_ranges && s->num_fields && s->num_fields != s->nf)
      return cerr(r, "num_fields", "%d, but %d features are listed", (int)s->num_fields, (int)s->nf);
    for (int32_t i = 0; i < s->nf && s->libfm_ranges; i++)
      for (int32_t j = 0; j < i; j++)
        if (s->f[i].range_lo <= s->f[j].range_hi && s->f[j].range_lo <= s->f[i].range_hi)
          return cerr(r, "features", "ranges of '%s' and '%s' overlap", s->f[j].name, s->f[i].name);
  }

  if ((st = read_misc(r, s))) return st;
  if ((st = check_unknown(r))) return st;

  /* columns known now (preset or columns:): bind early, so schema errors come before any I/O */
  if (is_delim && s->n_columns) {
    s->columns_given = 1;
    if ((st = ameir__schema_bind(ctx, s, s->columns, s->n_columns, "columns"))) return st;
  }
  ameir__schema_hash(s);
  return AMEIR_OK;
}

void ameir__schema_free(ameir__schema *s) {
  if (!s) return;
  free(s->yaml);
  free(s->name);
  free(s->format_name);
  free_list(s->columns, s->n_columns);
  free(s->label);
  for (int32_t i = 0; i < s->nf; i++) {
    free(s->f[i].name);
    free(s->f[i].column);
  }
  free(s->f);
  free_list(s->drop, s->n_drop);
  free_list(s->files, s->n_files);
  free(s->role);
  free(s->split_column);
  free_list(s->valid_values, s->n_valid_values);
  free_list(s->test_values, s->n_test_values);
  free(s->cache_dir);
  free(s->session_col);
  free(s->item_col);
  free(s->time_col);
  memset(s, 0, sizeof *s);
}
