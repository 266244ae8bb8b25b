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
  }
  if (mapped) munmap(ds->map, ds->map_size);
  free(ds->owned);
  free(ds->name);
  free(ds);
}

static ameir_status open_config(ameir_dataset **out, ameir_context *ctx, ameir__config *cfg,
                                const char *const *overrides, int32_t n_overrides, double t0) {
  const char *prefix = has_dataset_section(cfg) ? "dataset." : "";
  ameir_status st = AMEIR_OK;
  for (int32_t i = 0; i < n_overrides && !st; i++) st = apply_override(ctx, cfg, prefix, overrides[i]);
  if (st) return st;
  ameir__schema s;
  st = ameir__schema_read(ctx, cfg, prefix, &s);
  if (st) {
    ameir__schema_free(&s);
    return st;
  }
  ameir_dataset *ds = ameir__calloc(ctx, 1, sizeof *ds);
  if (!ds) {
    ameir__schema_free(&s);
    return AMEIR_ENOMEM;
  }
  ds->ctx = ctx;
  ds->name = ameir__strdup(ctx, s.name);
  if (!ds->name) st = AMEIR_ENOMEM;
  char *cpath = st ? NULL : ameir__cache_path(ctx, &s);
  if (!st && cpath && ameir__cache_load(ctx, &s, cpath, ds)) {
    ds->from_cache = 1;
  } else if (!st) {
    void *snap = cpath ? ameir__cache_snapshot(&s) : NULL;
    ameir__build b;
    memset(&b, 0, sizeof b);
    st = ameir__parse_files(ctx, &s, &b);
    if (!st) st = ameir__build_finish(&b, ds);
    ameir__build_free(&b);
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
  ameir__log(ctx, AMEIR_LOG_INFO, "dataset %s: %lld rows (train %lld, valid %lld, test %lld), %d fields, "
             "%lld skipped, %s in %.3f s", ds->name, (long long)ds->n_rows, (long long)ds->split_n[0],
             (long long)ds->split_n[1], (long long)ds->split_n[2], (int)ds->n_fields, (long long)ds->skipped,
             ds->from_cache ? "from the cache" : "parsed", ds->load_seconds);
  *out = ds;
  return AMEIR_OK;
}

AMEIR_API ameir_status ameir_dataset_open(ameir_dataset **out, ameir_context *ctx, const char *path) {
  if (!out) return ameir__error(ctx, AMEIR_EINVAL, "ameir_dataset_open: out is NULL");
  *out = NULL;
  double t0 = ameir__now();
  ameir__config *cfg = NULL;
  ameir_status st = ameir__config_load(ctx, path, &cfg);
  if (!st) st = open_config(out, ctx, cfg, NULL, 0, t0);
  ameir__config_free(cfg);
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
