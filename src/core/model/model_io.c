/* Model files, format version 1 (docs/model-format.md):
 *
 *   "AMEIRMDL" u32 version u32 0x01020304 (endianness) u64 payload_bytes
 *   payload: sections, each u32 tag, u64 length, bytes
 *     'ARCH' architecture text     'OPTS' options "key=value\n"...
 *     'SCHM' schema: u32 n_fields, then per field: u32 name_len, name, i32 kind, i64 vocab,
 *            i32 max_len, i32 hash_buckets, i32 transform, f32 fill_na, f32 t_min, f32 t_max,
 *            u32 share_len, share (the field whose table it shares), u64 keys[vocab]
 *            (categorical kinds only), and u64 schema_hash at the end
 *     'PARM' f32 flat parameters  'STAT' f32 Dice statistics  'EMBD' f32 table  'LINR' f32 table
 *     'STEP' i64 optimiser steps
 *   u64 FNV-1a hash of the payload
 *
 * Written to PATH.tmp.<pid> and renamed over PATH, so a crash never leaves a half-written file.
 * Readers refuse unknown versions, other byte orders, short files and checksum mismatches. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

#define CK(x) do { ameir_status st__ = (x); if (st__) return st__; } while (0)
#define MODEL_MAGIC "AMEIRMDL"
/* 2: a sum-pooled behaviour field (readout `field`) with `share:` reads the shared field's
 *    embedding rows; a version-1 file has its own rows for it (read as such: see below). */
#define MODEL_VERSION 2u
#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

typedef struct { unsigned char *p; size_t n, cap; int oom; } wbuf;

static void wput(wbuf *w, const void *src, size_t n) {
  if (w->oom) return;
  if (w->n + n > w->cap) {
    size_t nc = w->cap ? w->cap : 4096;
    while (nc < w->n + n) nc *= 2;
    unsigned char *np = realloc(w->p, nc);
    if (!np) { w->oom = 1; return; }
    w->p = np;
    w->cap = nc;
  }
  memcpy(w->p + w->n, src, n);
  w->n += n;
}
static void wu32(wbuf *w, uint32_t v) { wput(w, &v, 4); }
static void wi32(wbuf *w, int32_t v) { wput(w, &v, 4); }
static void wu64(wbuf *w, uint64_t v) { wput(w, &v, 8); }
static void wi64(wbuf *w, int64_t v) { wput(w, &v, 8); }
static void wf32(wbuf *w, float v) { wput(w, &v, 4); }
static void wsec(wbuf *w, uint32_t tag, const void *data, size_t n) { wu32(w, tag); wu64(w, n); wput(w, data, n); }

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
  return h;
}

static ameir_status download_alloc(ameir_model *m, const float *dev, size_t count, float **out) {
  *out = malloc(4 * count + 4);
  if (!*out) return ameir__error(m->ctx, AMEIR_ENOMEM, "out of memory");
  ameir_status st = m->ops->download(m->bs, *out, dev, 4 * count);
  if (st) { free(*out); *out = NULL; }
  return st;
}

/* The schema travels with the model: the model keeps the dataset fields it was built from. */

AMEIR_API ameir_status ameir_model_save(const ameir_model *cm, const char *path) {
  ameir_model *m = (ameir_model *)cm;
  if (!m || !path) return ameir__error(m ? m->ctx : NULL, AMEIR_EINVAL, "ameir_model_save: NULL argument");
  ameir_context *ctx = m->ctx;
  wbuf pay = {0};
  char *arch = NULL;
  if (ameir_arch_to_string(m->arch, &arch)) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  wsec(&pay, TAG('A', 'R', 'C', 'H'), arch, strlen(arch));
  free(arch);
  static const char *const keys[] = {"emb", "batch", "eval_batch", "epochs", "max_steps", "patience", "lr",
                                     "l2", "beta1", "beta2", "eps", "init_std", "init_range", "lr_schedule",
                                     "optimizer", "init", "mlp_init", "early_metric", "shuffle", "restore_best",
                                     "loss"};
  wbuf opts = {0};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    char v[64];
    if (ameir_model_get_option(m, keys[i], v, sizeof v)) continue;
    wput(&opts, keys[i], strlen(keys[i]));
    wput(&opts, "=", 1);
    wput(&opts, v, strlen(v));
    wput(&opts, "\n", 1);
  }
  wsec(&pay, TAG('O', 'P', 'T', 'S'), opts.p ? (const void *)opts.p : "", opts.n);
  free(opts.p);
  wbuf sch = {0};
  wu32(&sch, (uint32_t)m->n_schema_fields);
  for (int32_t i = 0; i < m->n_schema_fields; i++) {
    const ameir__field *f = &m->schema[i];
    uint32_t nl = (uint32_t)strlen(f->name);
    wu32(&sch, nl);
    wput(&sch, f->name, nl);
    wi32(&sch, f->kind);
    wi64(&sch, f->vocab);
    wi32(&sch, f->max_len);
    wi32(&sch, f->hash_buckets);
    wi32(&sch, f->transform);
    wf32(&sch, f->fill_na);
    wf32(&sch, f->t_min);
    wf32(&sch, f->t_max);
    uint32_t sl = (uint32_t)strnlen(f->share, sizeof f->share);
    wu32(&sch, sl);   /* the field whose vocabulary and table this one shares */
    wput(&sch, f->share, sl);
    if (f->kind != AMEIR_FIELD_DENSE) {
      for (int64_t k = 0; k < f->vocab; k++) wu64(&sch, f->keys ? f->keys[k] : 0);
    }
  }
  wu64(&sch, m->schema_hash);
  if (sch.oom) { free(sch.p); free(pay.p); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
  wsec(&pay, TAG('S', 'C', 'H', 'M'), sch.p, sch.n);
  free(sch.p);
  float *h = NULL;
  ameir_status st = download_alloc(m, m->P, (size_t)m->n_params, &h);
  if (!st) { wsec(&pay, TAG('P', 'A', 'R', 'M'), h, 4 * (size_t)m->n_params); free(h); }
  if (!st) st = download_alloc(m, m->stats, (size_t)m->n_stats, &h);
  if (!st) { wsec(&pay, TAG('S', 'T', 'A', 'T'), h, 4 * (size_t)m->n_stats); free(h); }
  if (!st) st = download_alloc(m, m->E, (size_t)(m->emb_rows * m->opt.emb), &h);
  if (!st) { wsec(&pay, TAG('E', 'M', 'B', 'D'), h, 4 * (size_t)(m->emb_rows * m->opt.emb)); free(h); }
  if (!st && m->L) {
    st = download_alloc(m, m->L, (size_t)m->emb_rows, &h);
    if (!st) { wsec(&pay, TAG('L', 'I', 'N', 'R'), h, 4 * (size_t)m->emb_rows); free(h); }
  }
  wsec(&pay, TAG('S', 'T', 'E', 'P'), &m->step, 8);
  {   /* the task and, for retrieval, the next-item field (absent: CTR, as files before it) */
    int32_t task[2] = {m->task, m->item_field};
    wsec(&pay, TAG('T', 'A', 'S', 'K'), task, sizeof task);
  }
  if (m->ds_config) {   /* the dataset config: lets `predict` encode raw files the same way */
    wbuf dc = {0};
    wu32(&dc, (uint32_t)m->n_ds_overrides);
    wu32(&dc, (uint32_t)strlen(m->ds_config));
    wput(&dc, m->ds_config, strlen(m->ds_config));
    for (int32_t i = 0; i < m->n_ds_overrides; i++) {
      wu32(&dc, (uint32_t)strlen(m->ds_overrides[i]));
      wput(&dc, m->ds_overrides[i], strlen(m->ds_overrides[i]));
    }
    if (dc.oom) pay.oom = 1;
    else wsec(&pay, TAG('D', 'C', 'F', 'G'), dc.p, dc.n);
    free(dc.p);
  }
  if (st || pay.oom) { free(pay.p); return st ? st : ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }

  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) { free(pay.p); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) { free(tmp); free(pay.p); return ameir__error(ctx, AMEIR_EIO, "%s: cannot create", path); }
  wbuf hdr = {0};
  wput(&hdr, MODEL_MAGIC, 8);
  wu32(&hdr, MODEL_VERSION);
  wu32(&hdr, 0x01020304u);
  wu64(&hdr, pay.n);
  uint64_t sum = fnv1a(pay.p, pay.n);
  int ok = !hdr.oom && fwrite(hdr.p, 1, hdr.n, f) == hdr.n && fwrite(pay.p, 1, pay.n, f) == pay.n &&
           fwrite(&sum, 1, 8, f) == 8 && fflush(f) == 0 && fsync(fileno(f)) == 0;
  ok = (fclose(f) == 0) && ok;
  free(hdr.p);
  free(pay.p);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    free(tmp);
    return ameir__error(ctx, AMEIR_EIO, "%s: write failed", path);
  }
  free(tmp);
  return AMEIR_OK;
}

/* ---- reading ---- */
typedef struct { const unsigned char *p; size_t n, pos; int bad; } rbuf;
static int rget(rbuf *r, void *dst, size_t n) {
  if (r->bad || r->n - r->pos < n) { r->bad = 1; memset(dst, 0, n); return 0; }
  memcpy(dst, r->p + r->pos, n);
  r->pos += n;
  return 1;
}
static uint32_t ru32(rbuf *r) { uint32_t v; rget(r, &v, 4); return v; }
static int32_t ri32(rbuf *r) { int32_t v; rget(r, &v, 4); return v; }
static uint64_t ru64(rbuf *r) { uint64_t v; rget(r, &v, 8); return v; }
static int64_t ri64(rbuf *r) { int64_t v; rget(r, &v, 8); return v; }
static float rf32(rbuf *r) { float v; rget(r, &v, 4); return v; }

ameir_status ameir__model_create_from_schema(ameir_model **out, ameir_context *ctx, const ameir_arch *arch,
                                             ameir_dataset *stub, const char *opts_text);

static void stub_free(ameir_dataset *ds) {
  if (!ds) return;
  for (int32_t i = 0; i < ds->n_fields; i++) { free(ds->fields[i].name); free(ds->fields[i].keys); }
  free(ds->fields);
}

AMEIR_API ameir_status ameir_model_load(ameir_model **out, ameir_context *ctx, const char *path) {
  if (!out || !ctx || !path) return ameir__error(ctx, AMEIR_EINVAL, "ameir_model_load: NULL argument");
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return ameir__error(ctx, AMEIR_EIO, "%s: cannot open", path);
  unsigned char hdr[24];
  if (fread(hdr, 1, 24, f) != 24) { fclose(f); return ameir__error(ctx, AMEIR_EFORMAT, "%s: too short for a model file", path); }
  if (memcmp(hdr, MODEL_MAGIC, 8)) { fclose(f); return ameir__error(ctx, AMEIR_EFORMAT, "%s: not a libameir model file (bad magic)", path); }
  uint32_t ver, endian;
  uint64_t plen;
  memcpy(&ver, hdr + 8, 4);
  memcpy(&endian, hdr + 12, 4);
  memcpy(&plen, hdr + 16, 8);
  if (endian != 0x01020304u) { fclose(f); return ameir__error(ctx, AMEIR_EFORMAT, "%s: written on a machine of the other byte order", path); }
  if (ver > MODEL_VERSION) { fclose(f); return ameir__error(ctx, AMEIR_EVERSION, "%s: model format %u is newer than this library's %u", path, ver, MODEL_VERSION); }
  if (ver == 0) { fclose(f); return ameir__error(ctx, AMEIR_EFORMAT, "%s: bad model format version 0", path); }
  /* never trust a length before checking it against the bytes present */
  long fsize = -1;
  if (fseek(f, 0, SEEK_END) == 0) fsize = ftell(f);
  if (fsize < 0 || fseek(f, 24, SEEK_SET) != 0) { fclose(f); return ameir__error(ctx, AMEIR_EIO, "%s: cannot seek", path); }
  if (plen > (uint64_t)fsize || (uint64_t)fsize - 24 < plen + 8) {
    fclose(f);
    return ameir__error(ctx, AMEIR_EFORMAT, "%s: truncated (%ld bytes, the header announces %llu)", path, fsize,
                        (unsigned long long)(plen + 32));
  }
  unsigned char *pay = malloc((size_t)plen + 8);
  if (!pay) { fclose(f); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory reading %s", path); }
  size_t got = fread(pay, 1, (size_t)plen + 8, f);
  fclose(f);
  if (got != plen + 8) { free(pay); return ameir__error(ctx, AMEIR_EFORMAT, "%s: truncated (%zu of %llu bytes)", path, got, (unsigned long long)(plen + 8)); }
  uint64_t sum;
  memcpy(&sum, pay + plen, 8);
  if (sum != fnv1a(pay, (size_t)plen)) { free(pay); return ameir__error(ctx, AMEIR_EFORMAT, "%s: checksum mismatch (damaged file)", path); }
  /* sections */
  rbuf r = {pay, (size_t)plen, 0, 0};
  const unsigned char *sec[10] = {0};
  size_t seclen[10] = {0};
  static const uint32_t tags[10] = {TAG('A', 'R', 'C', 'H'), TAG('O', 'P', 'T', 'S'), TAG('S', 'C', 'H', 'M'), TAG('P', 'A', 'R', 'M'),
                                    TAG('S', 'T', 'A', 'T'), TAG('E', 'M', 'B', 'D'), TAG('L', 'I', 'N', 'R'), TAG('S', 'T', 'E', 'P'),
                                    TAG('D', 'C', 'F', 'G'), TAG('T', 'A', 'S', 'K')};
  while (r.pos < r.n && !r.bad) {
    uint32_t tag = ru32(&r);
    uint64_t len = ru64(&r);
    if (r.bad || len > r.n - r.pos) { r.bad = 1; break; }
    for (int i = 0; i < 10; i++) if (tags[i] == tag) { sec[i] = r.p + r.pos; seclen[i] = (size_t)len; }
    r.pos += (size_t)len;   /* unknown sections are skipped: later minor versions may add some */
  }
  ameir_status st = AMEIR_OK;
  for (int i = 0; i < 6 && !r.bad; i++) if (!sec[i]) r.bad = 1;
  if (r.bad) { free(pay); return ameir__error(ctx, AMEIR_EFORMAT, "%s: malformed section table", path); }
  char *arch_text = malloc(seclen[0] + 1), *opts = malloc(seclen[1] + 1);
  ameir_arch *arch = NULL;
  ameir_dataset stub;
  memset(&stub, 0, sizeof stub);
  ameir_model *m = NULL;
  if (!arch_text || !opts) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); goto done; }
  memcpy(arch_text, sec[0], seclen[0]); arch_text[seclen[0]] = 0;
  memcpy(opts, sec[1], seclen[1]); opts[seclen[1]] = 0;
  st = ameir_arch_parse(&arch, ctx, arch_text);
  if (st) { ameir__error_prefix(ctx, "%s", path); goto done; }
  rbuf s = {sec[2], seclen[2], 0, 0};
  uint32_t nf = ru32(&s);
  if (nf > 100000) s.bad = 1;
  stub.ctx = ctx;
  stub.fields = s.bad ? NULL : calloc(nf + 1, sizeof *stub.fields);
  if (!s.bad && !stub.fields) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); goto done; }
  for (uint32_t i = 0; i < nf && !s.bad; i++) {
    ameir__field *fd = &stub.fields[i];
    stub.n_fields = (int32_t)i + 1;
    uint32_t nl = ru32(&s);
    if (nl > 4096 || nl > s.n - s.pos) { s.bad = 1; break; }
    fd->name = malloc(nl + 1);
    if (!fd->name) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); goto done; }
    rget(&s, fd->name, nl);
    fd->name[nl] = 0;
    fd->kind = ri32(&s);
    fd->vocab = ri64(&s);
    fd->max_len = ri32(&s);
    fd->hash_buckets = ri32(&s);
    fd->transform = ri32(&s);
    fd->fill_na = rf32(&s);
    fd->t_min = rf32(&s);
    fd->t_max = rf32(&s);
    uint32_t sl = ru32(&s);
    if (sl >= sizeof fd->share || sl > s.n - s.pos) { s.bad = 1; break; }
    rget(&s, fd->share, sl);
    fd->share[sl] = 0;
    if (fd->kind < AMEIR_FIELD_CATEGORICAL || fd->kind > AMEIR_FIELD_SEQUENCE || fd->vocab < 0 || fd->max_len < 0 || fd->max_len > 100000) { s.bad = 1; break; }
    if (fd->kind != AMEIR_FIELD_DENSE) {
      if ((uint64_t)fd->vocab > (s.n - s.pos) / 8) { s.bad = 1; break; }
      fd->keys = malloc(8 * (size_t)fd->vocab + 8);
      if (!fd->keys) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); goto done; }
      rget(&s, fd->keys, 8 * (size_t)fd->vocab);
    }
  }
  stub.schema_hash = ru64(&s);
  stub.task = AMEIR_TASK_CTR;
  stub.target_field = -1;
  if (sec[9]) {
    int32_t task[2];
    if (seclen[9] != sizeof task) s.bad = 1;
    else {
      memcpy(task, sec[9], sizeof task);
      if (task[0] == AMEIR_TASK_RETRIEVAL && task[1] >= 0 && task[1] < (int32_t)nf) { stub.task = task[0]; stub.target_field = task[1]; }
      else if (task[0] != AMEIR_TASK_CTR) s.bad = 1;
    }
  }
  if (s.bad) { st = ameir__error(ctx, AMEIR_EFORMAT, "%s: malformed schema section", path); goto done; }
  /* version 1 gave a sum-pooled behaviour field rows of its own even with `share:`: without the
   * share, the layout is that one (Stage 1 kept sharing, so only readout `field` is affected) */
  if (ver == 1 && (arch->readout & AMEIR_READOUT_FIELD))
    for (int32_t i = 0; i < stub.n_fields; i++)
      if (stub.fields[i].kind == AMEIR_FIELD_SEQUENCE) stub.fields[i].share[0] = 0;
  st = ameir__model_create_from_schema(&m, ctx, arch, &stub, opts);
  if (st) { ameir__error_prefix(ctx, "%s", path); goto done; }
  if (seclen[3] != 4 * (size_t)m->n_params || seclen[4] != 4 * (size_t)m->n_stats ||
      seclen[5] != 4 * (size_t)(m->emb_rows * m->opt.emb) || (m->L && (!sec[6] || seclen[6] != 4 * (size_t)m->emb_rows))) {
    st = ameir__error(ctx, AMEIR_EFORMAT, "%s: tensor sizes do not match the architecture", path);
    goto done;
  }
  st = m->ops->upload(m->bs, m->P, sec[3], seclen[3]);
  if (!st && seclen[4]) st = m->ops->upload(m->bs, m->stats, sec[4], seclen[4]);
  if (!st) st = m->ops->upload(m->bs, m->E, sec[5], seclen[5]);
  if (!st && m->L) st = m->ops->upload(m->bs, m->L, sec[6], seclen[6]);
  if (!st && sec[7] && seclen[7] == 8) memcpy(&m->step, sec[7], 8);
  if (!st) m->started = 1;   /* trained weights: options must not re-draw them */
  if (!st && sec[8]) {
    rbuf c = {sec[8], seclen[8], 0, 0};
    uint32_t no = ru32(&c), tl = ru32(&c);
    if (!c.bad && no <= 4096 && tl <= c.n - c.pos) {
      m->ds_config = malloc((size_t)tl + 1);
      m->ds_overrides = calloc((size_t)no + 1, sizeof *m->ds_overrides);
      if (!m->ds_config || !m->ds_overrides) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); goto done; }
      rget(&c, m->ds_config, tl);
      m->ds_config[tl] = 0;
      for (uint32_t i = 0; i < no && !c.bad; i++) {
        uint32_t ol = ru32(&c);
        if (c.bad || ol > c.n - c.pos) { c.bad = 1; break; }
        if (!(m->ds_overrides[i] = malloc((size_t)ol + 1))) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); goto done; }
        rget(&c, m->ds_overrides[i], ol);
        m->ds_overrides[i][ol] = 0;
        m->n_ds_overrides = (int32_t)i + 1;
      }
    } else {
      c.bad = 1;
    }
    if (c.bad) { st = ameir__error(ctx, AMEIR_EFORMAT, "%s: malformed dataset-config section", path); goto done; }
  }
done:
  free(arch_text);
  free(opts);
  ameir_arch_free(arch);
  stub_free(&stub);
  free(pay);
  if (st) { ameir_model_free(m); return st; }
  *out = m;
  return AMEIR_OK;
}
