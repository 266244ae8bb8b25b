/* Public dataset API: config -> schema -> (cache | parse + encode + cache) -> ameir_dataset. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *const other_sections[] = {"train", "search", "model", "arch", "space", "eval",
                                             "context", NULL};

static int has_dataset_section(const ameir__config *cfg) {
  for (int32_t i = 0; i < cfg->n; i++)
    if (strncmp(cfg->kv[i].key, "dataset.", 8) == 0) return 1;
  return 0;
}

static ameir_status apply_override(ameir_context *ctx, ameir__config *cfg, const char *prefix,
                                   const char *o) {
  if (!o) return ameir__error(ctx, AMEIR_EINVAL, "override is NULL");
  int prefixed = !*prefix || strncmp(o, prefix, strlen(prefix)) == 0;
  size_t fl = strcspn(o, ".=");
  for (const char *const *sct = other_sections; *sct && !prefixed; sct++)
    if (strlen(*sct) == fl && strncmp(o, *sct, fl) == 0) prefixed = 1;
  if (prefixed) return ameir__config_override(ctx, cfg, o);
  size_t n = strlen(prefix) + strlen(o) + 1;
  char *full = ameir__malloc(ctx, n);
  if (!full) return AMEIR_ENOMEM;
  snprintf(full, n, "%s%s", prefix, o);
  ameir_status st = ameir__config_override(ctx, cfg, full);
  free(full);
  return st;
}

AMEIR_API void ameir_dataset_free(ameir_dataset *ds) {
  if (!ds) return;
  int mapped = ds->map != NULL;
  for (int32_t i = 0; ds->fields && i < ds->n_fields; i++) {
    ameir__field *f = &ds->fields[i];
    free(f->name);
    if (!mapped) {
      free(f->keys);
      free((void *)f->ids);
      free((void *)f->values);
    }
  }
  free(ds->fields);
  if (!mapped) {
    free((void *)ds->label);
    for (int k = 0; k < 3; k++) free(ds->split_rows[k]);
    free((void *)ds->user_off);
    free((void *)ds->items);
    free((void *)ds->row_user);
    free((void *)ds->row_pos);
  }
  if (mapped) munmap(ds->map, ds->map_size);
  free(ds->owned);
  free(ds->name);
  free(ds->config_text);
  for (int32_t i = 0; i < ds->n_config_overrides; i++) free(ds->config_overrides[i]);
  free(ds->config_overrides);
  free(ds);
}

/* Text -> ds by the format's reader. */
static ameir_status parse_into(ameir_context *ctx, ameir__schema *s, ameir_dataset *ds) {
  if (ameir__fmt_retrieval(s->format)) return ameir__seq_load(ctx, s, ds);
  ameir__build b;
  memset(&b, 0, sizeof b);
  ameir_status st;
  if (s->format == AMEIR__FMT_ML100K || s->format == AMEIR__FMT_MLSMALL) st = ameir__movielens_parse(ctx, s, &b);
  else if (s->format == AMEIR__FMT_DMR) st = ameir__dmr_parse(ctx, s, &b);
  else st = ameir__parse_files(ctx, s, &b);
  if (!st) st = ameir__build_finish(&b, ds);
  ameir__build_free(&b);
  return st;
}

/* Reads the schema, with the overrides applied. On failure s is freed. */
static ameir_status read_schema(ameir_context *ctx, ameir__config *cfg, const char *const *overrides,
                                int32_t n_overrides, ameir__schema *s) {
  const char *prefix = has_dataset_section(cfg) ? "dataset." : "";
  ameir_status st = AMEIR_OK;
  memset(s, 0, sizeof *s);
  for (int32_t i = 0; i < n_overrides && !st; i++) st = apply_override(ctx, cfg, prefix, overrides[i]);
  if (!st) st = ameir__schema_read(ctx, cfg, prefix, s);
  if (st) ameir__schema_free(s);
  return st;
}

static ameir_dataset *new_dataset(ameir_context *ctx, const ameir__schema *s) {
  ameir_dataset *ds = ameir__calloc(ctx, 1, sizeof *ds);
  if (!ds) return NULL;
  ds->ctx = ctx;
  ds->task = AMEIR_TASK_CTR;
  ds->target_field = -1;
  if (!(ds->name = ameir__strdup(ctx, s->name))) {
    free(ds);
    return NULL;
  }
  return ds;
}

static void log_open(ameir_context *ctx, const ameir_dataset *ds) {
  ameir__log(ctx, AMEIR_LOG_INFO, "dataset %s: %lld rows (train %lld, valid %lld, test %lld), %d fields, "
             "%lld skipped, %s in %.3f s", ds->name, (long long)ds->n_rows, (long long)ds->split_n[0],
             (long long)ds->split_n[1], (long long)ds->split_n[2], (int)ds->n_fields, (long long)ds->skipped,
             ds->from_cache ? "from the cache" : "parsed", ds->load_seconds);
}

static ameir_status open_config(ameir_dataset **out, ameir_context *ctx, ameir__config *cfg,
                                const char *const *overrides, int32_t n_overrides, double t0) {
  ameir__schema s;
  ameir_status st = read_schema(ctx, cfg, overrides, n_overrides, &s);
  if (st) return st;
  ameir_dataset *ds = new_dataset(ctx, &s);
  if (!ds) {
    ameir__schema_free(&s);
    return AMEIR_ENOMEM;
  }
  char *cpath = ameir__cache_path(ctx, &s);
  if (cpath && ameir__cache_load(ctx, &s, cpath, ds)) {
    ds->from_cache = 1;
  } else {
    void *snap = cpath ? ameir__cache_snapshot(&s) : NULL;
    st = parse_into(ctx, &s, ds);
    if (!st && cpath) ameir__cache_write(ctx, &s, cpath, ds, snap);
    free(snap);
  }
  free(cpath);
  ameir__schema_free(&s);
  if (st) {
    ameir_dataset_free(ds);
    return st;
  }
  ds->load_seconds = ameir__now() - t0;
  log_open(ctx, ds);
  *out = ds;
  return AMEIR_OK;
}

ameir_status ameir__dataset_open_like(ameir_dataset **out, ameir_context *ctx, const ameir__field *schema,
                                      int32_t n_fields, const char *yaml, const char *base_dir,
                                      const char *const *files, int32_t n_files) {
  return ameir__dataset_open_like_ov(out, ctx, schema, n_fields, yaml, NULL, 0, base_dir, files, n_files);
}

ameir_status ameir__dataset_open_like_ov(ameir_dataset **out, ameir_context *ctx, const ameir__field *schema,
                                         int32_t n_fields, const char *yaml, const char *const *overrides,
                                         int32_t n_overrides, const char *base_dir, const char *const *files,
                                         int32_t n_files) {
  if (!out) return ameir__error(ctx, AMEIR_EINVAL, "open_like: out is NULL");
  *out = NULL;
  if (!schema || n_fields < 1 || !yaml || !files || n_files < 1)
    return ameir__error(ctx, AMEIR_EINVAL, "open_like: needs a schema, a config and files");
  for (int32_t i = 0; i < n_files; i++)
    if (!files[i] || !*files[i]) return ameir__error(ctx, AMEIR_EINVAL, "open_like: file %d is empty", (int)i);
  double t0 = ameir__now();
  ameir__config *cfg = NULL;
  ameir_status st = ameir__config_parse(ctx, yaml, base_dir, &cfg);
  ameir__schema s;
  if (!st) st = read_schema(ctx, cfg, overrides, n_overrides, &s);
  if (st) {
    ameir__config_free(cfg);
    return st;
  }
  /* the given files replace the config's, all in the test split */
  char **paths = ameir__calloc(ctx, (size_t)n_files, sizeof *paths);
  int8_t *role = ameir__malloc(ctx, (size_t)n_files);
  for (int32_t i = 0; paths && role && i < n_files; i++) {
    if (!(paths[i] = ameir__config_path(ctx, cfg, files[i]))) break;
    role[i] = -1;
  }
  ameir__config_free(cfg);
  int ok = paths && role && paths[n_files - 1];
  for (int32_t i = 0; i < s.n_files; i++) free(s.files[i]);
  free(s.files);
  free(s.role);
  s.files = paths;
  s.role = role;
  s.n_files = paths ? n_files : 0;
  if (!ok) {
    ameir__schema_free(&s);
    return AMEIR_ENOMEM;
  }
  s.split = AMEIR__SPLIT_NONE;
  s.cache = 0;
  s.fixed = schema;
  s.n_fixed = n_fields;
  ameir_dataset *ds = new_dataset(ctx, &s);
  if (!ds) st = AMEIR_ENOMEM;
  if (!st) st = parse_into(ctx, &s, ds);  /* the fields are checked against `schema` once known */
  ameir__schema_free(&s);
  if (st) {
    ameir_dataset_free(ds);
    return st;
  }
  ds->load_seconds = ameir__now() - t0;
  log_open(ctx, ds);
  *out = ds;
  return AMEIR_OK;
}

ameir_status ameir__dataset_keep_config(ameir_dataset *ds, const char *yaml, const char *const *overrides,
                                        int32_t n_overrides) {
  ds->config_text = ameir__strdup(ds->ctx, yaml);
  if (!ds->config_text) return AMEIR_ENOMEM;
  if (n_overrides > 0) {
    ds->config_overrides = ameir__calloc(ds->ctx, (size_t)n_overrides, sizeof *ds->config_overrides);
    if (!ds->config_overrides) return AMEIR_ENOMEM;
    ds->n_config_overrides = n_overrides;
    for (int32_t i = 0; i < n_overrides; i++)
      if (!(ds->config_overrides[i] = ameir__strdup(ds->ctx, overrides[i]))) return AMEIR_ENOMEM;
  }
  return AMEIR_OK;
}

/* The whole text of a (small) config file, or NULL. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t n = 0, cap = 0, r;
  do {
    if (n + 4096 + 1 > cap) {
      cap = cap ? 2 * cap : 16384;
      char *nb = cap > (16u << 20) ? NULL : realloc(buf, cap);
      if (!nb) { free(buf); fclose(f); return NULL; }
      buf = nb;
    }
    r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
  } while (r > 0);
  fclose(f);
  buf[n] = 0;
  return buf;
}

AMEIR_API ameir_status ameir_dataset_open(ameir_dataset **out, ameir_context *ctx, const char *path) {
  if (!out) return ameir__error(ctx, AMEIR_EINVAL, "ameir_dataset_open: out is NULL");
  *out = NULL;
  double t0 = ameir__now();
  ameir__config *cfg = NULL;
  ameir_status st = ameir__config_load(ctx, path, &cfg);
  if (!st) st = open_config(out, ctx, cfg, NULL, 0, t0);
  ameir__config_free(cfg);
  if (!st) {
    char *text = slurp(path);   /* kept for models made from it; not fatal when unreadable now */
    if (text) {
      st = ameir__dataset_keep_config(*out, text, NULL, 0);
      free(text);
      if (st) { ameir_dataset_free(*out); *out = NULL; }
    }
  }
  return st;
}

AMEIR_API ameir_status ameir_dataset_open_yaml(ameir_dataset **out, ameir_context *ctx, const char *yaml,
                                               const char *base_dir, const char *const *overrides,
                                               int32_t n_overrides) {
  if (!out) return ameir__error(ctx, AMEIR_EINVAL, "ameir_dataset_open_yaml: out is NULL");
  *out = NULL;
  if (n_overrides < 0 || (n_overrides > 0 && !overrides))
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_dataset_open_yaml: bad overrides");
  double t0 = ameir__now();
  ameir__config *cfg = NULL;
  ameir_status st = ameir__config_parse(ctx, yaml, base_dir, &cfg);
  if (!st) st = open_config(out, ctx, cfg, overrides, n_overrides, t0);
  ameir__config_free(cfg);
  if (!st && (st = ameir__dataset_keep_config(*out, yaml, overrides, n_overrides))) {
    ameir_dataset_free(*out);
    *out = NULL;
  }
  return st;
}

AMEIR_API int64_t ameir_dataset_rows(const ameir_dataset *ds, int32_t split) {
  if (!ds) return -1;
  if (split == -1) return ds->n_rows;
  if (split < 0 || split > 2) return -1;
  return ds->split_n[split];
}

AMEIR_API int32_t ameir_dataset_fields(const ameir_dataset *ds) { return ds ? ds->n_fields : 0; }

AMEIR_API const char *ameir_dataset_field_name(const ameir_dataset *ds, int32_t i) {
  return ds && i >= 0 && i < ds->n_fields ? ds->fields[i].name : NULL;
}

AMEIR_API int32_t ameir_dataset_field_kind(const ameir_dataset *ds, int32_t i) {
  return ds && i >= 0 && i < ds->n_fields ? ds->fields[i].kind : -1;
}

AMEIR_API int64_t ameir_dataset_field_vocab(const ameir_dataset *ds, int32_t i) {
  if (!ds || i < 0 || i >= ds->n_fields) return 0;
  return ds->fields[i].kind == AMEIR_FIELD_DENSE ? 0 : ds->fields[i].vocab;
}

AMEIR_API int64_t ameir_dataset_skipped_rows(const ameir_dataset *ds) { return ds ? ds->skipped : 0; }

AMEIR_API double ameir_dataset_load_seconds(const ameir_dataset *ds, int32_t *from_cache) {
  if (from_cache) *from_cache = ds ? ds->from_cache : 0;
  return ds ? ds->load_seconds : 0;
}
