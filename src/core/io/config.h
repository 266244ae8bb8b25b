/* A YAML file flattened to dotted keys, the form every config reader here uses.
 *   dataset:
 *     files: [a.tsv, b.tsv]          -> "dataset.files.0" = "a.tsv", "dataset.files.1" = "b.tsv"
 *     features:
 *       - {name: C1, min_count: 2}   -> "dataset.features.0.name" = "C1", ...min_count = "2"
 * Every entry remembers the line it came from, so errors can name file, line and key. */
#ifndef AMEIR_CORE_CONFIG_H
#define AMEIR_CORE_CONFIG_H

#include "../base/base.h"

typedef struct ameir__kv {
  char *key;
  char *value;
  int32_t line;     /* 1-based line in the YAML text */
  int32_t used;     /* set by readers, to report unknown keys */
} ameir__kv;

typedef struct ameir__config {
  char *path;       /* the file, or "<string>" */
  char *dir;        /* directory relative paths resolve against */
  ameir__kv *kv;
  int32_t n;
} ameir__config;

/* Parses a YAML file / text. AMEIR_EIO (cannot read), AMEIR_ECONFIG (YAML syntax: file:line). */
ameir_status ameir__config_load(ameir_context *ctx, const char *path, ameir__config **out);
ameir_status ameir__config_parse(ameir_context *ctx, const char *yaml, const char *base_dir,
                                 ameir__config **out);
/* Applies "a.b.c=value" overrides (replacing or adding keys). AMEIR_EINVAL if no '='. */
ameir_status ameir__config_override(ameir_context *ctx, ameir__config *cfg, const char *assignment);
/* Value of a key, or NULL; marks it used. */
const char *ameir__config_get(ameir__config *cfg, const char *key);
/* The entry of a key (for its line), or NULL. */
ameir__kv *ameir__config_find(ameir__config *cfg, const char *key);
/* Number of elements of a sequence at prefix ("dataset.files" -> 2), 0 if none. */
int32_t ameir__config_count(const ameir__config *cfg, const char *prefix);
/* Resolves a path from the config against cfg->dir (absolute paths unchanged); caller frees. */
char *ameir__config_path(ameir_context *ctx, const ameir__config *cfg, const char *value);
void ameir__config_free(ameir__config *cfg);

#endif
