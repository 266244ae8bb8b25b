/* Binding a schema to the columns of the files (header or schema columns), automatic features,
 * shared vocabularies, and the schema hash that names the cache. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find_name(char *const *a, int32_t n, const char *name) {
  for (int32_t i = 0; i < n; i++)
    if (strcmp(a[i], name) == 0) return i;
  return -1;
}

/* ---- hash ---- */

static uint64_t h_str(uint64_t h, const char *s) {
  h = ameir__hash_bytes(h, s ? s : "\x01(null)", s ? strlen(s) : 7);
  return ameir__hash_bytes(h, "\0", 1);
}
static uint64_t h_i64(uint64_t h, int64_t v) { return ameir__hash_bytes(h, &v, sizeof v); }
static uint64_t h_dbl(uint64_t h, double v) { return ameir__hash_bytes(h, &v, sizeof v); }

void ameir__schema_hash(ameir__schema *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = h_i64(h, AMEIR__DATA_ENCODING);
  h = h_str(h, s->format_name);
  h = h_i64(h, s->format);
  h = h_i64(h, s->sep);
  h = h_i64(h, s->quote);
  h = h_i64(h, s->header);
  h = h_i64(h, s->n_columns);
  for (int32_t i = 0; i < s->n_columns; i++) h = h_str(h, s->columns[i]);
  h = h_str(h, s->label);
  h = h_i64(h, s->label_mode);
  h = h_i64(h, s->auto_features);
  h = h_i64(h, s->n_drop);
  for (int32_t i = 0; i < s->n_drop; i++) h = h_str(h, s->drop[i]);
  h = h_i64(h, s->min_count);
  h = h_i64(h, s->transform);
  h = h_i64(h, s->libfm_ranges);
  h = h_i64(h, s->num_fields);
  h = h_i64(h, s->nf);
  for (int32_t i = 0; i < s->nf; i++) {
    const ameir__fspec *f = &s->f[i];
    h = h_str(h, f->name);
    h = h_str(h, f->column);
    h = h_i64(h, f->kind);
    h = h_i64(h, f->transform);
    h = h_dbl(h, f->fill_na);
    h = h_i64(h, f->min_count);
    h = h_i64(h, f->hash_buckets);
    h = h_i64(h, f->max_len);
    h = h_i64(h, f->keep_last);
    h = h_i64(h, f->sep);
    h = h_str(h, f->share);
    h = h_i64(h, f->range_lo);
    h = h_i64(h, f->range_hi);
  }
  h = h_i64(h, s->n_files);
  for (int32_t i = 0; i < s->n_files; i++) {
    h = h_str(h, s->files[i]);
    h = h_i64(h, s->role[i]);
  }
  h = h_i64(h, s->split);
  if (s->split == AMEIR__SPLIT_RANDOM) {
    h = h_i64(h, (int64_t)s->seed);
    h = h_dbl(h, s->valid);
    h = h_dbl(h, s->test);
  }
  h = h_str(h, s->split_column);
  h = h_i64(h, s->n_valid_values);
  for (int32_t i = 0; i < s->n_valid_values; i++) h = h_str(h, s->valid_values[i]);
  h = h_i64(h, s->n_test_values);
  for (int32_t i = 0; i < s->n_test_values; i++) h = h_str(h, s->test_values[i]);
  h = h_i64(h, s->has_valid_files);
  h = h_i64(h, s->skip_bad);
  if (s->format >= AMEIR__FMT_USERSEQ) {
    h = h_i64(h, s->max_len);
    h = h_i64(h, s->vocab_identity);
    h = h_str(h, s->session_col);
    h = h_str(h, s->item_col);
    h = h_str(h, s->time_col);
  }
  s->hash = ameir__mix64(h);
}

/* ---- binding ---- */

static ameir_status unknown_column(ameir_context *ctx, const ameir__schema *s, int32_t line,
                                   const char *what, const char *name, char *const *cols, int32_t ncols,
                                   const char *where) {
  char list[400];
  size_t o = 0;
  list[0] = 0;
  for (int32_t i = 0; i < ncols && o + 8 < sizeof list; i++) {
    int n = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", cols[i]);
    if (n < 0) break;
    o += (size_t)n;
  }
  if (o >= sizeof list - 8) snprintf(list + sizeof list - 8, 8, "...");
  return ameir__error(ctx, AMEIR_ECONFIG, "%s:%d: %s: unknown column '%s' (columns of %s: %s)", s->yaml,
                      (int)line, what, name, where, list);
}

static ameir_status resolve_shares(ameir_context *ctx, ameir__schema *s) {
  for (int32_t i = 0; i < s->nf; i++) {
    ameir__fspec *f = &s->f[i];
    f->vocab_of = i;
    if (!f->share[0]) continue;
    int32_t t = -1;
    for (int32_t j = 0; j < s->nf; j++)
      if (!strcmp(s->f[j].name, f->share)) t = j;
    if (t < 0 || t == i)
      return ameir__error(ctx, AMEIR_ECONFIG, "%s:%d: '%s': share_embedding names no other feature ('%s')",
                          s->yaml, (int)f->line, f->name, f->share);
    const ameir__fspec *g = &s->f[t];
    if (g->kind == AMEIR_FIELD_DENSE || g->share[0])
      return ameir__error(ctx, AMEIR_ECONFIG,
                          "%s:%d: '%s': share_embedding target '%s' must be a categorical feature that "
                          "does not share itself",
                          s->yaml, (int)f->line, f->name, f->share);
    if (g->transform == AMEIR_DENSE_BUCKET || f->transform == AMEIR_DENSE_BUCKET)
      return ameir__error(ctx, AMEIR_ECONFIG, "%s:%d: '%s': bucket features cannot share embeddings",
                          s->yaml, (int)f->line, f->name);
    f->vocab_of = t;
    f->hash_buckets = g->hash_buckets;
    f->min_count = g->min_count;
  }
  return AMEIR_OK;
}

static ameir_status add_auto(ameir_context *ctx, ameir__schema *s, const char *name, int32_t col,
                             int numeric) {
  ameir__fspec f;
  memset(&f, 0, sizeof f);
  f.line = s->features_line;
  f.kind = numeric ? AMEIR_FIELD_DENSE : AMEIR_FIELD_CATEGORICAL;
  f.transform = numeric ? s->transform : AMEIR_DENSE_NONE;
  if (f.transform == AMEIR_DENSE_BUCKET) f.kind = AMEIR_FIELD_CATEGORICAL;
  f.min_count = s->min_count;
  f.max_len = 1;
  f.range_lo = f.range_hi = -1;
  f.col = col;
  f.vocab_of = -1;
  f.name = ameir__strdup(ctx, name);
  f.column = name && s->format == AMEIR__FMT_DELIM ? ameir__strdup(ctx, name) : NULL;
  ameir__fspec *p = ameir__realloc(ctx, s->f, (size_t)(s->nf + 1) * sizeof *p);
  if (!f.name || (s->format == AMEIR__FMT_DELIM && !f.column) || !p) {
    free(f.name);
    free(f.column);
    if (p) s->f = p;
    return AMEIR_ENOMEM;
  }
  s->f = p;
  s->f[s->nf++] = f;
  return AMEIR_OK;
}

ameir_status ameir__schema_add_field(ameir_context *ctx, ameir__schema *s, const char *name, int32_t kind,
                                     int32_t max_len, const char *share) {
  ameir_status st = add_auto(ctx, s, name, -1, kind == AMEIR_FIELD_DENSE);
  if (st) return st;
  ameir__fspec *f = &s->f[s->nf - 1];
  f->kind = kind;
  f->max_len = max_len;
  f->keep_last = kind == AMEIR_FIELD_SEQUENCE;
  f->vocab_of = s->nf - 1;
  if (share) {
    snprintf(f->share, sizeof f->share, "%s", share);
    for (int32_t j = 0; j < s->nf - 1; j++)
      if (!strcmp(s->f[j].name, share)) f->vocab_of = j;
  }
  return AMEIR_OK;
}

ameir_status ameir__schema_bind(ameir_context *ctx, ameir__schema *s, char *const *cols, int32_t ncols,
                                const char *where) {
  int32_t li = find_name(cols, ncols, s->label);
  if (li < 0) return unknown_column(ctx, s, s->label_line, "label", s->label, cols, ncols, where);
  for (int32_t i = 0; i < s->n_drop; i++)
    if (find_name(cols, ncols, s->drop[i]) < 0 && s->drop_line)
      return unknown_column(ctx, s, s->drop_line, "drop", s->drop[i], cols, ncols, where);
  int32_t sc = -1;
  if (s->split_column && (sc = find_name(cols, ncols, s->split_column)) < 0)
    return unknown_column(ctx, s, s->split_line, "split.column", s->split_column, cols, ncols, where);
  if (s->auto_features && s->nf == 0) {
    for (int32_t i = 0; i < ncols; i++) {
      if (i == li || i == sc || find_name(s->drop, s->n_drop, cols[i]) >= 0) continue;
      ameir_status st = add_auto(ctx, s, cols[i], i, ameir__schema_preset_numeric(s, cols[i]));
      if (st) return st;
    }
    if (s->nf == 0)
      return ameir__error(ctx, AMEIR_ECONFIG, "%s:%d: no feature columns left in %s", s->yaml,
                          (int)s->features_line, where);
  } else {
    for (int32_t i = 0; i < s->nf; i++) {
      ameir__fspec *f = &s->f[i];
      f->col = find_name(cols, ncols, f->column);
      if (f->col < 0) return unknown_column(ctx, s, f->line, f->name, f->column, cols, ncols, where);
      if (f->col == li)
        return ameir__error(ctx, AMEIR_ECONFIG, "%s:%d: '%s': the label column cannot be a feature",
                            s->yaml, (int)f->line, f->name);
    }
  }
  s->label_col = li;
  s->split_col = sc;
  s->bound = 1;
  return resolve_shares(ctx, s);
}

ameir_status ameir__schema_bind_libfm(ameir_context *ctx, ameir__schema *s, int32_t nfeat,
                                      const char *file, int64_t line) {
  s->bound = 1;
  s->label_col = 0;
  s->split_col = -1;
  if (s->libfm_ranges) {
    for (int32_t i = 0; i < s->nf; i++) s->f[i].col = -1;
    return resolve_shares(ctx, s);
  }
  int32_t want = s->num_fields ? s->num_fields : s->nf;
  if (want && nfeat != want)
    return ameir__error(ctx, AMEIR_EFORMAT, "%s:%lld: %d features, the schema has %d", file,
                        (long long)line, (int)nfeat, (int)want);
  if (s->nf == 0) {
    for (int32_t i = 0; i < nfeat; i++) {
      char nm[32];
      snprintf(nm, sizeof nm, "f%d", (int)i);
      ameir_status st = add_auto(ctx, s, nm, i, 0);
      if (st) return st;
    }
  }
  for (int32_t i = 0; i < s->nf; i++) s->f[i].col = i;
  return resolve_shares(ctx, s);
}

