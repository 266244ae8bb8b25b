/* Serving: predictions on rows held in memory, encoded (ids and raw numbers) or as text lines
 * of the training format, and caller-provided workspaces that make a prediction allocate
 * nothing (include/ameir/model.h). */
#define _GNU_SOURCE   /* memfd_create */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../model/model.h"
#include "../data/internal.h"
#include "../io/config.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)

static int32_t field_width(const ameir__field *f) { return f->max_len > 0 ? f->max_len : 1; }

/* Rows of one call that a caller's workspace can hold: the staging code keeps row-times-field
 * positions in int32 (src_fm, the sequence positions). */
static int64_t max_rows(const ameir_model *m) {
  int64_t per = m->n_cat + m->lin_total + 2 * (int64_t)m->n_seq * m->seq_t + 1;
  return INT32_MAX / per;
}

static ameir_status need_ctr(const ameir_model *m, const char *fn) {
  if (m->task == AMEIR_TASK_CTR) return AMEIR_OK;
  return ameir__error(m->ctx, AMEIR_EUNSUPPORTED, "%s: a retrieval model ranks items: use ameir_model_topk", fn);
}

/* ---------------- layout of an encoded row ---------------- */

AMEIR_API ameir_status ameir_model_input_layout(const ameir_model *m, int32_t *n_fields, int32_t *n_ids,
                                                int32_t *n_dense) {
  if (!m) return ameir__error(NULL, AMEIR_EINVAL, "ameir_model_input_layout: model is NULL");
  CK(need_ctr(m, "ameir_model_input_layout"));
  int32_t ni = 0, nd = 0;
  for (int32_t i = 0; i < m->n_schema_fields; i++) {
    if (m->schema[i].kind == AMEIR_FIELD_DENSE) nd++;
    else ni += field_width(&m->schema[i]);
  }
  if (n_fields) *n_fields = m->n_schema_fields;
  if (n_ids) *n_ids = ni;
  if (n_dense) *n_dense = nd;
  return AMEIR_OK;
}

AMEIR_API ameir_status ameir_model_input_field(const ameir_model *m, int32_t field, const char **name,
                                               int32_t *kind, int32_t *column, int32_t *width, int64_t *vocab) {
  if (!m) return ameir__error(NULL, AMEIR_EINVAL, "ameir_model_input_field: model is NULL");
  CK(need_ctr(m, "ameir_model_input_field"));
  if (field < 0 || field >= m->n_schema_fields)
    return ameir__error(m->ctx, AMEIR_EINVAL, "field %d outside [0, %d)", (int)field, (int)m->n_schema_fields);
  int32_t col = 0;
  const ameir__field *f = &m->schema[field];
  int dense = f->kind == AMEIR_FIELD_DENSE;
  for (int32_t i = 0; i < field; i++)   /* the columns before it of its own array */
    if ((m->schema[i].kind == AMEIR_FIELD_DENSE) == dense) col += dense ? 1 : field_width(&m->schema[i]);
  if (name) *name = f->name;
  if (kind) *kind = f->kind;
  if (column) *column = col;
  if (width) *width = dense ? 1 : field_width(f);
  if (vocab) *vocab = dense ? 0 : f->vocab;
  return AMEIR_OK;
}

/* A raw number as the data layer encodes a text value of the field (src/core/data/build.c):
 * missing (NaN) takes fill_na, then the field's transform, in double like the loader. */
static float dense_encode(const ameir__field *f, float x) {
  double v = isnan(x) ? (double)f->fill_na : (double)x;
  if (f->transform == AMEIR_DENSE_LOG) return (float)log1p(v > 0 ? v : 0);
  if (f->transform == AMEIR_DENSE_MINMAX) {
    double lo = f->t_min, hi = f->t_max, span = hi - lo;
    double t = span > 0 ? ((double)(float)v - lo) / span : 0;   /* the loader keeps x as float first */
    return (float)(t < 0 ? 0 : t > 1 ? 1 : t);
  }
  return (float)v;
}

/* The caller's rows as a dataset of n rows in the layout ameir__model_stage reads (one id
 * array per field, one value array per dense field) and rows[] = 0..n-1, all taken from `a`.
 * While `a` measures (base NULL) nothing is written: only the bytes are counted. */
static ameir_status build_rows(const ameir_model *m, ameir__arena *a, int64_t n, const int32_t *ids,
                               const float *dense, ameir_dataset *ds, int64_t **rows_out) {
  int32_t nf = m->n_schema_fields, n_ids = 0, n_dense = 0;
  for (int32_t i = 0; i < nf; i++) {
    if (m->schema[i].kind == AMEIR_FIELD_DENSE) n_dense++;
    else n_ids += field_width(&m->schema[i]);
  }
  int measuring = !a->base;
  ameir__field *fs = ameir__arena_take(a, sizeof(ameir__field) * (size_t)nf);
  int64_t *rows = ameir__arena_take(a, sizeof(int64_t) * (size_t)n);
  if (!measuring && (!fs || !rows)) return ameir__error(m->ctx, AMEIR_EINVAL, "the workspace is too small");
  if (!measuring) {
    memcpy(fs, m->schema, sizeof(ameir__field) * (size_t)nf);   /* names and vocabularies shared */
    for (int64_t r = 0; r < n; r++) rows[r] = r;
  }
  int32_t icol = 0, dcol = 0;
  for (int32_t i = 0; i < nf; i++) {
    const ameir__field *f = &m->schema[i];
    if (f->kind == AMEIR_FIELD_DENSE) {
      float *v = ameir__arena_take(a, sizeof(float) * (size_t)n);
      if (!measuring) {
        if (!v) return ameir__error(m->ctx, AMEIR_EINVAL, "the workspace is too small");
        for (int64_t r = 0; r < n; r++) v[r] = dense_encode(f, dense[r * n_dense + dcol]);
        fs[i].values = v;
        fs[i].ids = NULL;
      }
      dcol++;
      continue;
    }
    int64_t w = field_width(f);
    int32_t *d = ameir__arena_take(a, sizeof(int32_t) * (size_t)(n * w));
    if (!measuring) {
      if (!d) return ameir__error(m->ctx, AMEIR_EINVAL, "the workspace is too small");
      for (int64_t r = 0; r < n; r++) memcpy(d + r * w, ids + r * n_ids + icol, sizeof(int32_t) * (size_t)w);
      fs[i].ids = d;
      fs[i].values = NULL;
    }
    icol += (int32_t)w;
  }
  if (measuring) return AMEIR_OK;
  memset(ds, 0, sizeof *ds);
  ds->ctx = m->ctx;
  ds->n_fields = nf;
  ds->fields = fs;
  ds->n_rows = n;
  ds->task = AMEIR_TASK_CTR;
  ds->target_field = -1;
  ds->schema_hash = m->schema_hash;
  *rows_out = rows;
  return AMEIR_OK;
}

/* Bytes of a caller's workspace for n rows: the row buffers and an inference-only model
 * workspace, measured by the code that later carves them, plus 63 for aligning the block. */
static size_t measure(const ameir_model *m, int64_t n) {
  ameir__arena a = {NULL, 0, 0};
  build_rows(m, &a, n, NULL, NULL, NULL, NULL);
  ameir_model c;
  ameir__model_clone_ws(m, &c);
  c.arena = &a;
  c.ws_infer = 1;
  ameir__model_alloc_workspace(&c, n);   /* measuring cannot fail */
  return a.used > SIZE_MAX - 63 ? SIZE_MAX : a.used + 63;
}

/* Why m cannot predict in a caller's workspace, or NULL. A device backend's buffers cannot
 * live in a host block; the Stage-1 kernels that take scratch of their own take it from the
 * block too, where the backend can bound it and be handed it (ops->scratch_bytes and
 * ops->set_thread_scratch: ameir__stage1_kernel_scratch). */
static const char *no_caller_ws(const ameir_model *m, char *why, size_t size) {
  const char *layer;
  if (strcmp(m->ops->name, "cpu") != 0)
    snprintf(why, size, "the %s backend's buffers cannot live in it (CPU backend only)", m->ops->name);
  else if (ameir__stage1_kernel_scratch(m, 1, &layer) == SIZE_MAX)
    snprintf(why, size, "the model has %s, whose kernel takes scratch memory that the %s backend %s", layer,
             m->ops->name, !m->ops->scratch_bytes || !m->ops->set_thread_scratch
                               ? "cannot take from a caller's block (no scratch_bytes/set_thread_scratch)"
                               : "cannot bound");
  else if (m->arch->n_cin || m->arch->n_autoint)   /* their CPU kernels take scratch of their own */
    snprintf(why, size, "the model has a%s tower, whose kernel takes scratch memory of its own",
             m->arch->n_cin ? " CIN" : "n AutoInt");
  else
    return NULL;
  return why;
}

AMEIR_API size_t ameir_model_workspace_size(const ameir_model *m, int64_t batch) {
  char why[256];
  if (!m || m->task != AMEIR_TASK_CTR || batch < 1 || batch > max_rows(m) || no_caller_ws(m, why, sizeof why)) return 0;
  return measure(m, batch);
}

AMEIR_API ameir_status ameir_model_predict(const ameir_model *m, int64_t n, const int32_t *ids, const float *dense,
                                           float *out, void *workspace, size_t workspace_size) {
  if (!m) return ameir__error(NULL, AMEIR_EINVAL, "ameir_model_predict: model is NULL");
  ameir_context *ctx = m->ctx;
  CK(need_ctr(m, "ameir_model_predict"));
  if (n < 0) return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict: n = %lld < 0", (long long)n);
  if (n == 0) return AMEIR_OK;
  int32_t n_ids, n_dense;
  CK(ameir_model_input_layout(m, NULL, &n_ids, &n_dense));
  if (!out || (n_ids && !ids) || (n_dense && !dense))
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict: NULL %s", !out ? "out" : n_ids && !ids ? "ids" : "dense");
  ameir_dataset ds;
  int64_t *rows = NULL;
  if (!workspace) {
    /* the model's kept workspaces, as predict_split; the rows in a block of their own */
    ameir__arena a = {NULL, 0, 0};
    build_rows(m, &a, n, NULL, NULL, NULL, NULL);
    void *block = a.used <= SIZE_MAX - 64 ? malloc(a.used + 64) : NULL;
    if (!block) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory for %lld rows", (long long)n);
    a.base = (char *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
    a.cap = a.used;
    a.used = 0;
    ameir_status st = build_rows(m, &a, n, ids, dense, &ds, &rows);
    ameir_model *c = NULL;
    if (!st) st = ameir__model_ws_acquire(m, &c);
    if (!st) {
      st = ameir__model_score_rows(c, &ds, rows, n, out, NULL);
      ameir__model_ws_release(m, c);
    }
    free(block);
    return st;
  }
  char why[256];
  if (no_caller_ws(m, why, sizeof why))
    return ameir__error(ctx, AMEIR_EUNSUPPORTED, "ameir_model_predict: no caller's workspace: %s; pass workspace NULL", why);
  if (n > max_rows(m))
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict: %lld rows exceed the %lld of one call with a workspace",
                        (long long)n, (long long)max_rows(m));
  size_t need = measure(m, n);
  if (workspace_size < need)
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict: the workspace has %zu bytes, %lld rows need %zu "
                        "(ameir_model_workspace_size)", workspace_size, (long long)n, need);
  /* Everything below comes from the caller's block: the row buffers, then a copy of the model
   * on the stack whose workspace is carved from the rest, the Stage-1 kernels' scratch
   * included (the forward hands it to the backend for this thread). No malloc, no ops->alloc. */
  uintptr_t b0 = (uintptr_t)workspace, b = (b0 + 63) & ~(uintptr_t)63;
  ameir__arena a = {(char *)b, workspace_size - (size_t)(b - b0), 0};
  CK(build_rows(m, &a, n, ids, dense, &ds, &rows));
  ameir_model c;
  ameir__model_clone_ws(m, &c);
  c.arena = &a;
  c.ws_infer = 1;
  CK(ameir__model_alloc_workspace(&c, n));
  CK(ameir__model_stage_async(&c, &ds, rows, n, AMEIR__STAGE_SCORE, c.host_stage));
  CK(ameir__model_forward(&c, n, 0, NULL));
  return c.ops->download(c.bs, out, c.prob, sizeof(float) * (size_t)n);
}

/* ---------------- text rows ---------------- */

/* The model's dataset configuration with its stored overrides, read as ameir_dataset_open_yaml
 * reads it (src/core/data/dataset.c: an override without the "dataset." prefix gets it when
 * the config has a dataset section, unless it names another section). */
static ameir_status read_config_schema(const ameir_model *m, ameir__schema *s) {
  static const char *const other_sections[] = {"train", "search", "model", "arch", "space", "eval", "context", NULL};
  ameir_context *ctx = m->ctx;
  ameir__config *cfg = NULL;
  memset(s, 0, sizeof *s);
  CK(ameir__config_parse(ctx, m->ds_config, NULL, &cfg));
  const char *prefix = "";
  for (int32_t i = 0; i < cfg->n; i++)
    if (!strncmp(cfg->kv[i].key, "dataset.", 8)) { prefix = "dataset."; break; }
  ameir_status st = AMEIR_OK;
  for (int32_t i = 0; i < m->n_ds_overrides && !st; i++) {
    const char *o = m->ds_overrides[i];
    int prefixed = !*prefix || !strncmp(o, prefix, strlen(prefix));
    size_t fl = strcspn(o, ".=");
    for (const char *const *sct = other_sections; *sct && !prefixed; sct++)
      if (strlen(*sct) == fl && !strncmp(o, *sct, fl)) prefixed = 1;
    if (prefixed) { st = ameir__config_override(ctx, cfg, o); continue; }
    size_t len = strlen(prefix) + strlen(o) + 1;
    char *full = malloc(len);
    if (!full) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); break; }
    snprintf(full, len, "%s%s", prefix, o);
    st = ameir__config_override(ctx, cfg, full);
    free(full);
  }
  if (!st) st = ameir__schema_read(ctx, cfg, prefix, s);
  ameir__config_free(cfg);
  if (st) ameir__schema_free(s);
  return st;
}

/* The parser names the in-memory file and its line ("/proc/self/fd/7:3: ..."): the caller
 * knows rows. Rewrites the message to "row I: ..." (or "header: ..."). */
static void name_rows(ameir_context *ctx, const char *path, int header) {
  const char *msg = ameir_context_last_error(ctx);
  char old[AMEIR_MSG_MAX], out[AMEIR_MSG_MAX];
  snprintf(old, sizeof old, "%s", msg);
  const char *hit = strstr(old, path);
  if (!hit) return;
  size_t pl = strlen(path), pre = (size_t)(hit - old);
  const char *rest = hit + pl;
  char *end = NULL;
  long long line = rest[0] == ':' ? strtoll(rest + 1, &end, 10) : 0;
  if (end && end > rest + 1 && *end == ':' && line >= 1) {
    long long row = line - 1 - (header ? 1 : 0);
    if (row < 0) snprintf(out, sizeof out, "%.*sheader:%s", (int)pre, old, end + 1);
    else snprintf(out, sizeof out, "%.*srow %lld:%s", (int)pre, old, row, end + 1);
  } else {
    snprintf(out, sizeof out, "%.*s%s%s", (int)pre, old, header ? "the header" : "the rows", rest);
  }
  ameir__error(ctx, AMEIR_EFORMAT, "%s", out);   /* sets the context's and the thread's message */
}

static ameir_status write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return AMEIR_EIO;
    p += w;
    n -= (size_t)w;
  }
  return AMEIR_OK;
}

static int blank_libfm(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\v' && s[i] != '\f') return 0;
  return 1;
}

AMEIR_API ameir_status ameir_model_predict_text(const ameir_model *m, const char *header, int64_t n,
                                                const char *const *lines, float *out) {
  if (!m) return ameir__error(NULL, AMEIR_EINVAL, "ameir_model_predict_text: model is NULL");
  ameir_context *ctx = m->ctx;
  CK(need_ctr(m, "ameir_model_predict_text"));
  if (n < 0 || (n > 0 && (!lines || !out)))
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict_text: %s", n < 0 ? "n < 0" : "NULL lines or out");
  if (!m->ds_config)
    return ameir__error(ctx, AMEIR_ESTATE, "the model carries no dataset configuration (it was made from a dataset not opened from YAML)");
  ameir__schema s;
  CK(read_config_schema(m, &s));
  int32_t format = s.format, has_header = s.header, columns_given = s.n_columns > 0;
  char fmt_name[32];
  snprintf(fmt_name, sizeof fmt_name, "%s", s.format_name ? s.format_name : "?");
  ameir__schema_free(&s);
  if (format != AMEIR__FMT_DELIM && format != AMEIR__FMT_LIBFM)
    return ameir__error(ctx, AMEIR_EUNSUPPORTED, "ameir_model_predict_text: the %s format builds its rows from "
                        "several files or lines; score a file with ameir_model_predict_file", fmt_name);
  if (header && !has_header)
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict_text: the model's %s files have no header line; pass header NULL", fmt_name);
  if (!header && has_header && !columns_given)
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict_text: the model's %s files start with a header line "
                        "that names the columns (no columns: in the config); pass it as header", fmt_name);
  if (header && (!*header || strchr(header, '\n')))
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict_text: the header is empty or holds a line break");
  /* the rows must come back one for one: the reader skips empty lines and splits at '\n' */
  size_t total = header ? strlen(header) + 1 : 0;
  for (int64_t i = 0; i < n; i++) {
    if (!lines[i]) return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_predict_text: row %lld is NULL", (long long)i);
    size_t len = strlen(lines[i]);
    if (memchr(lines[i], '\n', len))
      return ameir__error(ctx, AMEIR_EFORMAT, "row %lld: a line break inside the row", (long long)i);
    size_t l2 = len && lines[i][len - 1] == '\r' ? len - 1 : len;   /* the reader drops a final '\r' */
    if (format == AMEIR__FMT_DELIM ? l2 == 0 : blank_libfm(lines[i], l2))
      return ameir__error(ctx, AMEIR_EFORMAT, "row %lld: empty", (long long)i);
    total += len + 1;
  }
  if (n == 0) return AMEIR_OK;
  /* The data layer reads files: the lines go into an anonymous in-memory file (nothing on disk)
   * that it opens by its /proc path, and it encodes them exactly as ameir_model_predict_file. */
  int fd = memfd_create("ameir-rows", MFD_CLOEXEC);
  if (fd < 0) return ameir__error(ctx, AMEIR_EIO, "ameir_model_predict_text: memfd_create: %s", strerror(errno));
  char *buf = malloc(total ? total : 1);
  ameir_status st = buf ? AMEIR_OK : ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  size_t pos = 0;
  if (!st && header) {
    size_t hl = strlen(header);
    memcpy(buf, header, hl);
    buf[hl] = '\n';
    pos = hl + 1;
  }
  for (int64_t i = 0; !st && i < n; i++) {
    size_t len = strlen(lines[i]);
    memcpy(buf + pos, lines[i], len);
    buf[pos + len] = '\n';
    pos += len + 1;
  }
  if (!st && write_all(fd, buf, pos)) st = ameir__error(ctx, AMEIR_EIO, "ameir_model_predict_text: writing the rows: %s", strerror(errno));
  free(buf);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  /* every bad row is an error (not skipped: each line has its score); a config that lists its
   * columns reads rows without the header line the files carry */
  int32_t no = m->n_ds_overrides;
  const char **ov = malloc(sizeof *ov * (size_t)(no + 2));
  if (!st && !ov) st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  ameir_dataset *ds = NULL;
  if (!st) {
    for (int32_t i = 0; i < no; i++) ov[i] = m->ds_overrides[i];
    ov[no++] = "on_bad_row=error";
    if (has_header && !header) ov[no++] = "header=false";
    const char *files[1] = {path};
    st = ameir__dataset_open_like_ov(&ds, ctx, m->schema, m->n_schema_fields, m->ds_config, ov, no, NULL, files, 1);
    if (st) name_rows(ctx, path, header != NULL);
  }
  free(ov);
  close(fd);
  if (!st && ds->split_n[AMEIR_SPLIT_TEST] != n)
    st = ameir__error(ctx, AMEIR_EFORMAT, "ameir_model_predict_text: %lld rows read from %lld lines",
                      (long long)ds->split_n[AMEIR_SPLIT_TEST], (long long)n);
  if (!st) st = ameir_model_predict_split(m, ds, AMEIR_SPLIT_TEST, 0, n, out);
  ameir_dataset_free(ds);
  return st;
}
