/* YAML configs flattened to dotted keys (see config.h). libyaml's document loader builds the
 * node graph (aliases resolved); we walk it once and keep only scalars, each with its line. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Guards against hostile input: nesting (and alias cycles) and alias bombs. */
#define CFG_MAX_DEPTH 64
#define CFG_MAX_ENTRIES (1 << 18)
#define CFG_MAX_KEY 4096

typedef struct {
  ameir_context *ctx;
  ameir__config *cfg;
  int32_t cap;
  const char *path;
  int32_t line_base;   /* added to node lines (overrides parse a fragment) */
} walker;

static ameir_status add_kv(walker *w, const char *key, const char *value, int32_t line) {
  ameir__config *c = w->cfg;
  if (c->n >= CFG_MAX_ENTRIES)
    return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: too many entries (more than %d; alias bomb?)",
                        w->path, (int)line, CFG_MAX_ENTRIES);
  if (c->n == w->cap) {
    int32_t ncap = w->cap ? w->cap * 2 : 64;
    ameir__kv *p = ameir__realloc(w->ctx, c->kv, (size_t)ncap * sizeof *p);
    if (!p) return AMEIR_ENOMEM;
    c->kv = p;
    w->cap = ncap;
  }
  ameir__kv *kv = &c->kv[c->n];
  kv->key = ameir__strdup(w->ctx, key);
  kv->value = ameir__strdup(w->ctx, value);
  if (!kv->key || !kv->value) {
    free(kv->key);
    free(kv->value);
    return AMEIR_ENOMEM;
  }
  kv->line = line;
  kv->used = 0;
  c->n++;
  return AMEIR_OK;
}

static ameir_status walk(walker *w, yaml_document_t *doc, yaml_node_t *node, char *key, size_t klen,
                         int depth) {
  int32_t line = (int32_t)node->start_mark.line + 1 + w->line_base;
  if (depth > CFG_MAX_DEPTH)
    return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: nesting deeper than %d levels", w->path,
                        (int)line, CFG_MAX_DEPTH);
  switch (node->type) {
    case YAML_SCALAR_NODE:
      if (klen == 0)
        return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: the top level must be a mapping", w->path,
                            (int)line);
      return add_kv(w, key, (const char *)node->data.scalar.value, line);
    case YAML_SEQUENCE_NODE: {
      if (klen == 0)
        return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: the top level must be a mapping", w->path,
                            (int)line);
      int64_t i = 0;
      for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
           it++, i++) {
        int n = snprintf(key + klen, CFG_MAX_KEY - klen, ".%lld", (long long)i);
        if (n < 0 || (size_t)n >= CFG_MAX_KEY - klen)
          return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: key too long", w->path, (int)line);
        yaml_node_t *child = yaml_document_get_node(doc, *it);
        ameir_status st = child ? walk(w, doc, child, key, klen + (size_t)n, depth + 1) : AMEIR_OK;
        key[klen] = 0;
        if (st) return st;
      }
      return AMEIR_OK;
    }
    case YAML_MAPPING_NODE:
      for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (!k || !v) continue;
        int32_t kline = (int32_t)k->start_mark.line + 1 + w->line_base;
        if (k->type != YAML_SCALAR_NODE)
          return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: mapping keys must be plain scalars",
                              w->path, (int)kline);
        const char *ks = (const char *)k->data.scalar.value;
        if (!*ks)
          return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: empty key", w->path, (int)kline);
        int n = snprintf(key + klen, CFG_MAX_KEY - klen, "%s%s", klen ? "." : "", ks);
        if (n < 0 || (size_t)n >= CFG_MAX_KEY - klen)
          return ameir__error(w->ctx, AMEIR_ECONFIG, "%s:%d: key too long", w->path, (int)kline);
        ameir_status st = walk(w, doc, v, key, klen + (size_t)n, depth + 1);
        key[klen] = 0;
        if (st) return st;
      }
      return AMEIR_OK;
    default:
      return AMEIR_OK;
  }
}

static int cmp_kv_index(const void *a, const void *b, void *base) {
  const ameir__kv *kv = base;
  return strcmp(kv[*(const int32_t *)a].key, kv[*(const int32_t *)b].key);
}

/* qsort_r is not portable; a small merge sort of indices keeps this file standard C. */
static void sort_idx(int32_t *idx, int32_t *tmp, int32_t n, const ameir__kv *kv) {
  if (n < 2) return;
  int32_t h = n / 2;
  sort_idx(idx, tmp, h, kv);
  sort_idx(idx + h, tmp, n - h, kv);
  int32_t i = 0, j = h, o = 0;
  while (i < h && j < n)
    tmp[o++] = cmp_kv_index(&idx[i], &idx[j], (void *)kv) <= 0 ? idx[i++] : idx[j++];
  while (i < h) tmp[o++] = idx[i++];
  while (j < n) tmp[o++] = idx[j++];
  memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

/* Duplicate keys are legal for libyaml but not for YAML: reject them (after flattening, so
 * "a.b: 1" next to "a: {b: 2}" is caught too). */
static ameir_status check_duplicates(ameir_context *ctx, const ameir__config *c, int32_t from) {
  int32_t n = c->n - from;
  if (n < 2) return AMEIR_OK;
  int32_t *idx = ameir__malloc(ctx, (size_t)n * 2 * sizeof *idx);
  if (!idx) return AMEIR_ENOMEM;
  for (int32_t i = 0; i < n; i++) idx[i] = from + i;
  sort_idx(idx, idx + n, n, c->kv);
  ameir_status st = AMEIR_OK;
  for (int32_t i = 1; i < n; i++) {
    const ameir__kv *a = &c->kv[idx[i - 1]], *b = &c->kv[idx[i]];
    if (strcmp(a->key, b->key) == 0) {
      const ameir__kv *later = a->line > b->line ? a : b;
      st = ameir__error(ctx, AMEIR_ECONFIG, "%s:%d: duplicate key '%s'", c->path, (int)later->line,
                        later->key);
      break;
    }
  }
  free(idx);
  return st;
}

/* Parses `text` and appends its scalars under `prefix` ("" for the root). */
static ameir_status parse_into(ameir_context *ctx, ameir__config *cfg, const char *text, size_t len,
                               const char *prefix, int32_t line_base, int32_t *cap) {
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) return ameir__error(ctx, AMEIR_ENOMEM, "libyaml: out of memory");
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    const yaml_mark_t *m = parser.problem_mark.line || parser.problem_mark.column ? &parser.problem_mark
                                                                                 : &parser.context_mark;
    ameir_status st = ameir__error(ctx, AMEIR_ECONFIG, "%s:%d: YAML syntax error: %s%s%s", cfg->path,
                                   (int)m->line + 1 + (int)line_base,
                                   parser.problem ? parser.problem : "invalid YAML",
                                   parser.context ? " " : "", parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    return st;
  }
  ameir_status st = AMEIR_OK;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root) {
    char *key = ameir__malloc(ctx, CFG_MAX_KEY);
    if (!key) {
      st = AMEIR_ENOMEM;
    } else {
      snprintf(key, CFG_MAX_KEY, "%s", prefix);
      walker w = {ctx, cfg, *cap, cfg->path, line_base};
      st = walk(&w, &doc, root, key, strlen(key), 0);
      *cap = w.cap;
      free(key);
    }
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return st;
}

static char *dir_of(ameir_context *ctx, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return ameir__strdup(ctx, ".");
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *d = ameir__malloc(ctx, n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = 0;
  }
  return d;
}

static ameir_status parse_text(ameir_context *ctx, const char *text, size_t len, const char *path,
                               const char *dir, ameir__config **out) {
  *out = NULL;
  ameir__config *c = ameir__calloc(ctx, 1, sizeof *c);
  if (!c) return AMEIR_ENOMEM;
  c->path = ameir__strdup(ctx, path);
  c->dir = ameir__strdup(ctx, dir);
  if (!c->path || !c->dir) {
    ameir__config_free(c);
    return AMEIR_ENOMEM;
  }
  int32_t cap = 0;
  ameir_status st = parse_into(ctx, c, text, len, "", 0, &cap);
  if (!st) st = check_duplicates(ctx, c, 0);
  if (st) {
    ameir__config_free(c);
    return st;
  }
  *out = c;
  return AMEIR_OK;
}

ameir_status ameir__config_load(ameir_context *ctx, const char *path, ameir__config **out) {
  *out = NULL;
  if (!path) return ameir__error(ctx, AMEIR_EINVAL, "config path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return ameir__error(ctx, AMEIR_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = ameir__malloc(ctx, cap);
  ameir_status st = buf ? AMEIR_OK : AMEIR_ENOMEM;
  while (!st) {
    if (n == cap) {
      if (cap >= ((size_t)64 << 20)) {
        st = ameir__error(ctx, AMEIR_ECONFIG, "%s: config file larger than 64 MiB", path);
        break;
      }
      char *p = ameir__realloc(ctx, buf, cap * 2);
      if (!p) {
        st = AMEIR_ENOMEM;
        break;
      }
      buf = p;
      cap *= 2;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0) {
      if (ferror(f)) st = ameir__error(ctx, AMEIR_EIO, "%s: read error", path);
      break;
    }
  }
  fclose(f);
  if (!st) {
    char *dir = dir_of(ctx, path);
    st = dir ? parse_text(ctx, buf, n, path, dir, out) : AMEIR_ENOMEM;
    free(dir);
  }
  free(buf);
  return st;
}

ameir_status ameir__config_parse(ameir_context *ctx, const char *yaml, const char *base_dir,
                                 ameir__config **out) {
  *out = NULL;
  if (!yaml) return ameir__error(ctx, AMEIR_EINVAL, "YAML text is NULL");
  return parse_text(ctx, yaml, strlen(yaml), "<string>", base_dir && *base_dir ? base_dir : ".", out);
}

static void remove_key_tree(ameir__config *cfg, const char *key) {
  size_t kl = strlen(key);
  int32_t o = 0;
  for (int32_t i = 0; i < cfg->n; i++) {
    ameir__kv *kv = &cfg->kv[i];
    if (strncmp(kv->key, key, kl) == 0 && (kv->key[kl] == 0 || kv->key[kl] == '.')) {
      free(kv->key);
      free(kv->value);
      continue;
    }
    cfg->kv[o++] = *kv;
  }
  cfg->n = o;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

ameir_status ameir__config_override(ameir_context *ctx, ameir__config *cfg, const char *assignment) {
  const char *eq = assignment ? strchr(assignment, '=') : NULL;
  if (!eq) return ameir__error(ctx, AMEIR_EINVAL, "override '%s': expected key=value", assignment ? assignment : "(null)");
  const char *kb = assignment, *ke = eq;
  while (kb < ke && is_space(*kb)) kb++;
  while (ke > kb && is_space(ke[-1])) ke--;
  if (ke == kb || (size_t)(ke - kb) >= CFG_MAX_KEY)
    return ameir__error(ctx, AMEIR_EINVAL, "override '%s': empty or too long key", assignment);
  char key[CFG_MAX_KEY];
  memcpy(key, kb, (size_t)(ke - kb));
  key[ke - kb] = 0;
  const char *v = eq + 1;
  while (is_space(*v)) v++;
  remove_key_tree(cfg, key);
  /* a scalar at an ancestor ("split: none" under "split.method=modulo") gives way too */
  for (char *d = strchr(key, '.'); d; d = strchr(d + 1, '.')) {
    *d = 0;
    int32_t o = 0;
    for (int32_t i = 0; i < cfg->n; i++) {
      if (strcmp(cfg->kv[i].key, key) == 0) {
        free(cfg->kv[i].key);
        free(cfg->kv[i].value);
        continue;
      }
      cfg->kv[o++] = cfg->kv[i];
    }
    cfg->n = o;
    *d = '.';
  }
  int32_t cap = cfg->n;  /* the array is exactly full: let add_kv grow it */
  if (*v == '[' || *v == '{' || *v == '"' || *v == '\'') {
    /* a flow collection or a quoted scalar: let libyaml read it, as "k: <value>" */
    size_t vl = strlen(v);
    char *doc = ameir__malloc(ctx, vl + 4);
    if (!doc) return AMEIR_ENOMEM;
    memcpy(doc, "v: ", 3);
    memcpy(doc + 3, v, vl + 1);
    ameir__config tmp = {cfg->path, cfg->dir, NULL, 0};
    int32_t tcap = 0;
    ameir_status st = parse_into(ctx, &tmp, doc, vl + 3, "", 0, &tcap);
    free(doc);
    if (st) {
      for (int32_t i = 0; i < tmp.n; i++) {
        free(tmp.kv[i].key);
        free(tmp.kv[i].value);
      }
      free(tmp.kv);
      return ameir__error(ctx, AMEIR_EINVAL, "override '%s': %s", assignment,
                          ctx ? ctx->msg : ameir_last_error());
    }
    walker w = {ctx, cfg, cap, cfg->path, 0};
    for (int32_t i = 0; i < tmp.n && !st; i++) {
      /* tmp keys are "v" or "v.<rest>" */
      char full[CFG_MAX_KEY * 2];
      snprintf(full, sizeof full, "%s%s", key, tmp.kv[i].key + 1);
      st = add_kv(&w, full, tmp.kv[i].value, 0);
    }
    for (int32_t i = 0; i < tmp.n; i++) {
      free(tmp.kv[i].key);
      free(tmp.kv[i].value);
    }
    free(tmp.kv);
    return st;
  }
  walker w = {ctx, cfg, cap, cfg->path, 0};
  size_t vl = strlen(v);
  while (vl && is_space(v[vl - 1])) vl--;
  char *val = ameir__malloc(ctx, vl + 1);
  if (!val) return AMEIR_ENOMEM;
  memcpy(val, v, vl);
  val[vl] = 0;
  ameir_status st = add_kv(&w, key, val, 0);
  free(val);
  return st;
}

ameir__kv *ameir__config_find(ameir__config *cfg, const char *key) {
  if (!cfg || !key) return NULL;
  for (int32_t i = 0; i < cfg->n; i++)
    if (strcmp(cfg->kv[i].key, key) == 0) return &cfg->kv[i];
  return NULL;
}

const char *ameir__config_get(ameir__config *cfg, const char *key) {
  ameir__kv *kv = ameir__config_find(cfg, key);
  if (!kv) return NULL;
  kv->used = 1;
  return kv->value;
}

int32_t ameir__config_count(const ameir__config *cfg, const char *prefix) {
  if (!cfg || !prefix) return 0;
  size_t pl = strlen(prefix);
  int64_t max = -1;
  for (int32_t i = 0; i < cfg->n; i++) {
    const char *k = cfg->kv[i].key;
    if (strncmp(k, prefix, pl) != 0 || k[pl] != '.') continue;
    const char *d = k + pl + 1;
    if (*d < '0' || *d > '9') continue;
    int64_t v = 0;
    while (*d >= '0' && *d <= '9' && v < (1 << 30)) v = v * 10 + (*d++ - '0');
    if (*d != 0 && *d != '.') continue;
    if (v > max) max = v;
  }
  return (int32_t)(max + 1);
}

/* ${VAR} and ${VAR:-default} (default used when VAR is unset or empty), and a leading "~/". */
static char *expand_env(ameir_context *ctx, const char *s) {
  size_t cap = strlen(s) + 64, n = 0;
  char *out = ameir__malloc(ctx, cap);
  if (!out) return NULL;
#define PUT(ptr, len)                                         \
  do {                                                        \
    size_t l_ = (len);                                        \
    if (n + l_ + 1 > cap) {                                   \
      cap = (n + l_ + 1) * 2;                                 \
      char *p_ = ameir__realloc(ctx, out, cap);               \
      if (!p_) {                                              \
        free(out);                                            \
        return NULL;                                          \
      }                                                       \
      out = p_;                                               \
    }                                                         \
    memcpy(out + n, (ptr), l_);                               \
    n += l_;                                                  \
  } while (0)
  if (s[0] == '~' && (s[1] == '/' || s[1] == 0)) {
    const char *home = getenv("HOME");
    if (home) {
      PUT(home, strlen(home));
      s++;
    }
  }
  while (*s) {
    if (s[0] == '$' && s[1] == '{') {
      const char *end = strchr(s + 2, '}');
      if (end) {
        const char *name = s + 2, *def = NULL;
        const char *colon = NULL;
        for (const char *q = name; q < end; q++)
          if (q[0] == ':' && q + 1 < end && q[1] == '-') {
            colon = q;
            break;
          }
        size_t nl = (size_t)((colon ? colon : end) - name);
        if (colon) def = colon + 2;
        char var[256];
        const char *val = NULL;
        if (nl < sizeof var) {
          memcpy(var, name, nl);
          var[nl] = 0;
          val = getenv(var);
        }
        if (val && *val) PUT(val, strlen(val));
        else if (def) PUT(def, (size_t)(end - def));
        s = end + 1;
        continue;
      }
    }
    PUT(s, 1);
    s++;
  }
  out[n] = 0;
  return out;
#undef PUT
}

char *ameir__config_path(ameir_context *ctx, const ameir__config *cfg, const char *value) {
  if (!value) return NULL;
  char *e = expand_env(ctx, value);
  if (!e) return NULL;
  if (e[0] == '/' || !cfg || !cfg->dir || !*cfg->dir || strcmp(cfg->dir, ".") == 0) return e;
  size_t dl = strlen(cfg->dir), el = strlen(e);
  char *p = ameir__malloc(ctx, dl + el + 2);
  if (p) {
    memcpy(p, cfg->dir, dl);
    size_t o = dl;
    if (dl && cfg->dir[dl - 1] != '/') p[o++] = '/';
    memcpy(p + o, e, el + 1);
  }
  free(e);
  return p;
}

void ameir__config_free(ameir__config *cfg) {
  if (!cfg) return;
  for (int32_t i = 0; i < cfg->n; i++) {
    free(cfg->kv[i].key);
    free(cfg->kv[i].value);
  }
  free(cfg->kv);
  free(cfg->path);
  free(cfg->dir);
  free(cfg);
}
