/* Binary column-wise cache of an encoded dataset (format in docs/data.md, "Cache").
 *
 * Written once after a parse, atomically (a temporary file in the same directory, then
 * rename), and memory-mapped on later opens. The header carries the schema hash and the size and
 * modification time of every source file; any difference, any inconsistency (bad magic or
 * version, truncation, checksums, offsets, ids out of range) makes the loader return 0 and the
 * caller parses the text again. Little-endian hosts only (others simply never use a cache). */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_VERSION 2  /* 2: the task, retrieval arrays and counts */
#define ALIGN 64

static const char cache_magic[8] = {'A', 'M', 'E', 'I', 'R', 'D', 'S', '\x1a'};

typedef struct {
  uint64_t magic;
  uint64_t version;
  uint64_t header_size;
  uint64_t file_size;
  uint64_t schema_hash;
  uint64_t n_rows;
  uint64_t skipped;
  uint64_t split_n[3];
  uint64_t n_fields;
  uint64_t n_sources;
  uint64_t meta_offset, meta_size, meta_hash;
  uint64_t label_offset;     /* 0: no labels (retrieval) */
  uint64_t split_offset[3];
  uint64_t task;
  uint64_t target_field;     /* + 1 (0: none) */
  uint64_t n_users, n_items; /* retrieval: users, length of items[] */
  uint64_t user_off_offset, items_offset, row_user_offset, row_pos_offset;  /* retrieval, else 0 */
  uint64_t seq_stats[4];     /* seq_empty, seq_short, seq_clipped, seq_unknown */
  uint64_t reserved[6];
  uint64_t header_hash;  /* of every byte above */
} cache_hdr;

static int little_endian(void) {
  const uint16_t x = 1;
  return *(const uint8_t *)&x == 1;
}

static uint64_t hash64(const void *p, size_t n) {
  /* 8 bytes at a time, then a final mix: fast enough for the metadata block */
  const uint8_t *b = p;
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    h = ameir__mix64(h ^ w);
  }
  uint64_t w = 0;
  for (size_t j = 0; i + j < n; j++) w |= (uint64_t)b[i + j] << (8 * j);
  return ameir__mix64(h ^ w ^ 0xa5a5a5a5a5a5a5a5ull);
}

static uint64_t align_up(uint64_t x) { return (x + ALIGN - 1) & ~(uint64_t)(ALIGN - 1); }

/* ---- path ---- */

static int mkdir_p(const char *dir, mode_t mode) {
  char tmp[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, dir, n + 1);
  for (char *q = tmp + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
    *q = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
  return 0;
}

static char *join(ameir_context *ctx, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *p = ameir__malloc(ctx, la + lb + 2);
  if (!p) return NULL;
  memcpy(p, a, la);
  p[la] = '/';
  memcpy(p + la + 1, b, lb + 1);
  return p;
}

/* Writable for us; for root also by the mode bits, so that read-only data directories (such as
 * a shared data set) stay untouched even though root may write anywhere. */
static int dir_writable(const char *dir) {
  struct stat st;
  if (access(dir, W_OK) != 0 || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  if (geteuid() == 0 && !(st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH))) return 0;
  return 1;
}

char *ameir__cache_path(ameir_context *ctx, const ameir__schema *s) {
  if (!s->cache || !little_endian()) return NULL;
  char dir[4096];
  dir[0] = 0;
  if (s->cache_dir) {
    snprintf(dir, sizeof dir, "%s", s->cache_dir);
    if (mkdir_p(dir, 0755) != 0 || !dir_writable(dir)) {
      ameir__log(ctx, AMEIR_LOG_WARN, "cache dir %s is not writable: caching off", dir);
      return NULL;
    }
  } else {
    const char *f = s->files[0];
    const char *slash = strrchr(f, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash == f ? 1 : slash - f), f);
    else snprintf(dir, sizeof dir, ".");
    if (!dir_writable(dir)) {
      const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
      if (xdg && *xdg == '/') snprintf(dir, sizeof dir, "%s/ameir", xdg);
      else if (home && *home == '/') snprintf(dir, sizeof dir, "%s/.cache/ameir", home);
      else snprintf(dir, sizeof dir, "/tmp/ameir-cache-%lu", (unsigned long)getuid());
      if (mkdir_p(dir, 0700) != 0 || !dir_writable(dir)) {
        snprintf(dir, sizeof dir, "/tmp/ameir-cache-%lu", (unsigned long)getuid());
        struct stat st;
        if (mkdir_p(dir, 0700) != 0 || lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
            st.st_uid != getuid()) {
          ameir__log(ctx, AMEIR_LOG_WARN, "no writable cache directory: caching off");
          return NULL;
        }
      }
    }
  }
  const char *base = strrchr(s->files[0], '/');
  base = base ? base + 1 : s->files[0];
  char name[512];
  snprintf(name, sizeof name, "%.200s.%016llx.ameir-cache", base, (unsigned long long)s->hash);
  return join(ctx, dir, name);
}

/* ---- metadata block ---- */

typedef struct {
  ameir_context *ctx;
  uint8_t *p;
  size_t n, cap;
  int fail;
} wbuf;

static void put(wbuf *w, const void *d, size_t n) {
  if (w->fail) return;
  if (w->n + n > w->cap) {
    size_t nc = (w->cap ? w->cap : 1024);
    while (nc < w->n + n) nc *= 2;
    uint8_t *q = realloc(w->p, nc);
    if (!q) {
      w->fail = 1;
      return;
    }
    w->p = q;
    w->cap = nc;
  }
  memcpy(w->p + w->n, d, n);
  w->n += n;
}
static void put_u64(wbuf *w, uint64_t v) { put(w, &v, 8); }
static void put_str(wbuf *w, const char *s) {
  uint64_t n = strlen(s);
  put_u64(w, n);
  put(w, s, n);
  static const uint8_t zero[8] = {0};
  put(w, zero, (size_t)((8 - n % 8) % 8));
}

typedef struct {
  const uint8_t *p;
  size_t n, o;
  int fail;
} rbuf;

static int get_bytes(rbuf *r, void *d, size_t n) {
  if (r->fail || n > r->n - r->o) return r->fail = 1, -1;
  memcpy(d, r->p + r->o, n);
  r->o += n;
  return 0;
}
static uint64_t get_u64(rbuf *r) {
  uint64_t v = 0;
  get_bytes(r, &v, 8);
  return v;
}
/* a string into a fresh buffer (NULL on failure) */
static char *get_str(rbuf *r, ameir_context *ctx) {
  uint64_t n = get_u64(r);
  uint64_t padded = n + (8 - n % 8) % 8;
  if (r->fail || n > 4096 || padded > r->n - r->o) {
    r->fail = 1;
    return NULL;
  }
  char *s = ameir__malloc(ctx, (size_t)n + 1);
  if (!s) {
    r->fail = 1;
    return NULL;
  }
  memcpy(s, r->p + r->o, (size_t)n);
  s[n] = 0;
  r->o += (size_t)padded;
  return s;
}

typedef struct {
  uint64_t size;
  int64_t mtime_s, mtime_ns;
} src_stat;

static int stat_source(const char *path, src_stat *out) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  out->size = (uint64_t)st.st_size;
  out->mtime_s = (int64_t)st.st_mtim.tv_sec;
  out->mtime_ns = (int64_t)st.st_mtim.tv_nsec;
  return 0;
}

static uint64_t field_bytes(const ameir__field *f, uint64_t n) {
  return f->kind == AMEIR_FIELD_DENSE ? n * sizeof(float) : n * (uint64_t)f->max_len * sizeof(int32_t);
}

/* ---- write ---- */

void *ameir__cache_snapshot(const ameir__schema *s) {
  src_stat *ss = calloc((size_t)(s->n_files ? s->n_files : 1), sizeof *ss);
  if (!ss) return NULL;
  for (int32_t i = 0; i < s->n_files; i++)
    if (stat_source(s->files[i], &ss[i]) != 0) {
      free(ss);
      return NULL;
    }
  return ss;
}

void ameir__cache_write(ameir_context *ctx, const ameir__schema *s, const char *path, const ameir_dataset *ds,
                        const void *snapshot) {
  if (!path || !snapshot) return;
  uint64_t n = (uint64_t)ds->n_rows;
  int32_t nf = ds->n_fields;
  /* layout */
  wbuf w = {ctx, NULL, 0, 0, 0};
  for (int32_t i = 0; i < s->n_files; i++) {
    src_stat now, ss = ((const src_stat *)snapshot)[i];
    if (stat_source(s->files[i], &now) != 0 || now.size != ss.size || now.mtime_s != ss.mtime_s ||
        now.mtime_ns != ss.mtime_ns) {
      ameir__log(ctx, AMEIR_LOG_WARN, "cache not written: %s changed while it was read", s->files[i]);
      free(w.p);
      return;
    }
    put_u64(&w, ss.size);
    put_u64(&w, (uint64_t)ss.mtime_s);
    put_u64(&w, (uint64_t)ss.mtime_ns);
    put_str(&w, s->files[i]);
  }
  put_str(&w, ds->name ? ds->name : "");
  uint64_t off = align_up(sizeof(cache_hdr));
  /* the metadata size is known before the offsets it contains: fields are fixed-size records */
  size_t fields_at = w.n;
  for (int32_t i = 0; i < nf; i++) {
    const ameir__field *f = &ds->fields[i];
    put_str(&w, f->name);
    int32_t i32[8] = {f->kind, f->column, f->max_len, f->hash_buckets, f->min_count, f->transform, 0, 0};
    put(&w, i32, sizeof i32);
    float f32[4] = {f->fill_na, f->t_min, f->t_max, 0};
    put(&w, f32, sizeof f32);
    put(&w, f->share, sizeof f->share);
    put_u64(&w, (uint64_t)f->vocab);
    put_u64(&w, 0); /* data offset, patched below */
    put_u64(&w, 0); /* keys offset (0: none) */
  }
  if (w.fail) {
    free(w.p);
    return;
  }
  cache_hdr h;
  memset(&h, 0, sizeof h);
  memcpy(&h.magic, cache_magic, 8);
  h.version = CACHE_VERSION;
  h.header_size = sizeof h;
  h.schema_hash = ds->schema_hash;
  h.n_rows = n;
  h.skipped = (uint64_t)ds->skipped;
  h.n_fields = (uint64_t)nf;
  h.n_sources = (uint64_t)s->n_files;
  h.meta_offset = off;
  h.meta_size = w.n;
  off = align_up(off + w.n);
  if (ds->label) {
    h.label_offset = off;
    off = align_up(off + n * sizeof(float));
  }
  for (int k = 0; k < 3; k++) {
    h.split_n[k] = (uint64_t)ds->split_n[k];
    h.split_offset[k] = off;
    off = align_up(off + (uint64_t)ds->split_n[k] * sizeof(int64_t));
  }
  h.task = (uint64_t)ds->task;
  h.target_field = (uint64_t)(ds->target_field + 1);
  h.seq_stats[0] = (uint64_t)ds->seq_empty;
  h.seq_stats[1] = (uint64_t)ds->seq_short;
  h.seq_stats[2] = (uint64_t)ds->seq_clipped;
  h.seq_stats[3] = (uint64_t)ds->seq_unknown;
  int retr = ds->task == AMEIR_TASK_RETRIEVAL;
  if (retr) {
    h.n_users = (uint64_t)ds->n_users;
    h.n_items = (uint64_t)ds->user_off[ds->n_users];
    h.user_off_offset = off;
    off = align_up(off + (h.n_users + 1) * sizeof(int64_t));
    h.items_offset = off;
    off = align_up(off + h.n_items * sizeof(int32_t));
    h.row_user_offset = off;
    off = align_up(off + n * sizeof(int32_t));
    h.row_pos_offset = off;
    off = align_up(off + n * sizeof(int32_t));
  }
  uint64_t *data_off = calloc((size_t)(nf ? nf : 1), sizeof *data_off);
  uint64_t *keys_off = calloc((size_t)(nf ? nf : 1), sizeof *keys_off);
  if (!data_off || !keys_off) {
    free(data_off);
    free(keys_off);
    free(w.p);
    return;
  }
  {
    /* patch the offsets into the field records */
    rbuf r = {w.p, w.n, fields_at, 0};
    for (int32_t i = 0; i < nf; i++) {
      const ameir__field *f = &ds->fields[i];
      data_off[i] = off;
      off = align_up(off + field_bytes(f, n));
      if (f->keys && f->vocab > 0) {
        keys_off[i] = off;
        off = align_up(off + (uint64_t)f->vocab * sizeof(uint64_t));
      }
      uint64_t sl = get_u64(&r);
      r.o += (size_t)(sl + (8 - sl % 8) % 8) + 32 + 16 + sizeof f->share + 8;
      memcpy(w.p + r.o, &data_off[i], 8);
      memcpy(w.p + r.o + 8, &keys_off[i], 8);
      r.o += 16;
    }
  }
  h.file_size = off;
  h.meta_hash = hash64(w.p, w.n);
  h.header_hash = hash64(&h, offsetof(cache_hdr, header_hash));

  /* write */
  char *tmp = ameir__malloc(ctx, strlen(path) + 64);
  if (!tmp) {
    free(data_off);
    free(keys_off);
    free(w.p);
    return;
  }
  static unsigned counter;
  snprintf(tmp, strlen(path) + 64, "%s.tmp.%ld.%u", path, (long)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
  int ok = fp != NULL;
  if (!fp && fd >= 0) close(fd);
  static const uint8_t zeros[ALIGN] = {0};
  uint64_t pos = 0;
#define W(ptr, len)                                                   \
  do {                                                                \
    if (ok && (len) != 0 && fwrite((ptr), 1, (size_t)(len), fp) != (size_t)(len)) ok = 0; \
    pos += (uint64_t)(len);                                           \
  } while (0)
#define PAD_TO(at)                                   \
  do {                                               \
    while (ok && pos < (at)) {                       \
      uint64_t k_ = (at) - pos;                      \
      W(zeros, k_ > ALIGN ? ALIGN : k_);             \
    }                                                \
  } while (0)
  if (ok) {
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    W(&h, sizeof h);
    PAD_TO(h.meta_offset);
    W(w.p, w.n);
    if (ds->label) {
      PAD_TO(h.label_offset);
      W(ds->label, n * sizeof(float));
    }
    for (int k = 0; k < 3; k++) {
      PAD_TO(h.split_offset[k]);
      W(ds->split_rows[k], (uint64_t)ds->split_n[k] * sizeof(int64_t));
    }
    if (retr) {
      PAD_TO(h.user_off_offset);
      W(ds->user_off, (h.n_users + 1) * sizeof(int64_t));
      PAD_TO(h.items_offset);
      W(ds->items, h.n_items * sizeof(int32_t));
      PAD_TO(h.row_user_offset);
      W(ds->row_user, n * sizeof(int32_t));
      PAD_TO(h.row_pos_offset);
      W(ds->row_pos, n * sizeof(int32_t));
    }
    for (int32_t i = 0; i < nf; i++) {
      const ameir__field *f = &ds->fields[i];
      PAD_TO(data_off[i]);
      if (f->kind == AMEIR_FIELD_DENSE) W(f->values, field_bytes(f, n));
      else W(f->ids, field_bytes(f, n));
      if (keys_off[i]) {
        PAD_TO(keys_off[i]);
        W(f->keys, (uint64_t)f->vocab * sizeof(uint64_t));
      }
    }
    PAD_TO(h.file_size);
  }
#undef W
#undef PAD_TO
  if (fp && fclose(fp) != 0) ok = 0;
  if (ok && rename(tmp, path) != 0) ok = 0;
  if (!ok) {
    ameir__log(ctx, AMEIR_LOG_WARN, "cache %s not written: %s", path, strerror(errno));
    unlink(tmp);
  } else {
    ameir__log(ctx, AMEIR_LOG_DEBUG, "wrote cache %s (%llu bytes)", path, (unsigned long long)h.file_size);
  }
  free(tmp);
  free(data_off);
  free(keys_off);
  free(w.p);
}

/* ---- load ---- */

#define INVALID(...)                                      \
  do {                                                    \
    ameir__log(ctx, AMEIR_LOG_INFO, __VA_ARGS__);          \
    goto fail;                                            \
  } while (0)

static int in_file(uint64_t off, uint64_t bytes, uint64_t size) {
  return off % ALIGN == 0 && off <= size && bytes <= size - off;
}

int ameir__cache_load(ameir_context *ctx, const ameir__schema *s, const char *path, ameir_dataset *ds) {
  if (!path) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  struct stat st;
  void *map = MAP_FAILED;
  uint64_t size = 0;
  ameir__field *fields = NULL;
  int32_t nf = 0;
  char *name = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return 0;
  }
  size = (uint64_t)st.st_size;
  if (size < sizeof(cache_hdr)) {
    close(fd);
    ameir__log(ctx, AMEIR_LOG_INFO, "cache %s: truncated, rebuilding", path);
    return 0;
  }
  map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return 0;
  const uint8_t *base = map;
  cache_hdr h;
  memcpy(&h, base, sizeof h);
  if (memcmp(&h.magic, cache_magic, 8) != 0) INVALID("cache %s: bad magic, rebuilding", path);
  if (h.version != CACHE_VERSION || h.header_size != sizeof h)
    INVALID("cache %s: version %llu, rebuilding", path, (unsigned long long)h.version);
  if (h.header_hash != hash64(&h, offsetof(cache_hdr, header_hash)))
    INVALID("cache %s: corrupt header, rebuilding", path);
  if (h.file_size != size) INVALID("cache %s: truncated or extended, rebuilding", path);
  if (h.schema_hash != s->hash) INVALID("cache %s: schema changed, rebuilding", path);
  if (h.n_sources != (uint64_t)s->n_files) INVALID("cache %s: other source files, rebuilding", path);
  if (h.n_rows > size / 4 || h.n_fields > 1u << 20 || h.split_n[0] + h.split_n[1] + h.split_n[2] != h.n_rows)
    INVALID("cache %s: inconsistent header, rebuilding", path);
  if (!in_file(h.meta_offset, h.meta_size, size) || hash64(base + h.meta_offset, h.meta_size) != h.meta_hash)
    INVALID("cache %s: corrupt metadata, rebuilding", path);
  uint64_t n = h.n_rows;
  rbuf r = {base + h.meta_offset, (size_t)h.meta_size, 0, 0};
  for (int32_t i = 0; i < s->n_files; i++) {
    src_stat now, was;
    was.size = get_u64(&r);
    was.mtime_s = (int64_t)get_u64(&r);
    was.mtime_ns = (int64_t)get_u64(&r);
    char *p = get_str(&r, ctx);
    int same_path = p && strcmp(p, s->files[i]) == 0;
    free(p);
    if (r.fail) INVALID("cache %s: corrupt metadata, rebuilding", path);
    if (stat_source(s->files[i], &now) != 0) INVALID("cache %s: cannot stat %s", path, s->files[i]);
    if (!same_path) INVALID("cache %s: other source files, rebuilding", path);
    if (now.size != was.size || now.mtime_s != was.mtime_s || now.mtime_ns != was.mtime_ns)
      INVALID("cache %s: %s changed, rebuilding", path, s->files[i]);
  }
  name = get_str(&r, ctx);
  if (!name) INVALID("cache %s: corrupt metadata, rebuilding", path);
  nf = (int32_t)h.n_fields;
  fields = calloc((size_t)(nf ? nf : 1), sizeof *fields);
  if (!fields) goto fail;
  for (int32_t i = 0; i < nf; i++) {
    ameir__field *f = &fields[i];
    f->name = get_str(&r, ctx);
    int32_t i32[8];
    float f32[4];
    get_bytes(&r, i32, sizeof i32);
    get_bytes(&r, f32, sizeof f32);
    get_bytes(&r, f->share, sizeof f->share);
    uint64_t vocab = get_u64(&r), doff = get_u64(&r), koff = get_u64(&r);
    if (r.fail || !f->name) INVALID("cache %s: corrupt metadata, rebuilding", path);
    f->share[sizeof f->share - 1] = 0;
    f->kind = i32[0];
    f->column = i32[1];
    f->max_len = i32[2];
    f->hash_buckets = i32[3];
    f->min_count = i32[4];
    f->transform = i32[5];
    f->fill_na = f32[0];
    f->t_min = f32[1];
    f->t_max = f32[2];
    if (f->kind < 0 || f->kind > AMEIR_FIELD_SEQUENCE || f->max_len < 1 || f->max_len > (1 << 20) ||
        vocab > ((uint64_t)1 << 31))
      INVALID("cache %s: corrupt field %d, rebuilding", path, (int)i);
    f->vocab = (int64_t)vocab;
    if (!in_file(doff, field_bytes(f, n), size)) INVALID("cache %s: field %d out of the file", path, (int)i);
    if (f->kind == AMEIR_FIELD_DENSE) {
      f->values = (const float *)(base + doff);
      continue;
    }
    if (koff && !in_file(koff, vocab * sizeof(uint64_t), size))
      INVALID("cache %s: keys of field %d out of the file", path, (int)i);
    if (koff) f->keys = (uint64_t *)(base + koff);
    if (vocab < 1) INVALID("cache %s: corrupt field %d, rebuilding", path, (int)i);
    const int32_t *ids = (const int32_t *)(base + doff);
    /* ids index embedding tables: a corrupt id must never reach the model */
    int32_t lo = f->max_len > 1 || f->kind == AMEIR_FIELD_MULTI || f->kind == AMEIR_FIELD_SEQUENCE ? -1 : 0;
    int32_t hi = (int32_t)(vocab - 1);
    uint64_t cells = n * (uint64_t)f->max_len, bad = 0;
    for (uint64_t j = 0; j < cells; j++) bad |= (uint64_t)(ids[j] < lo) | (uint64_t)(ids[j] > hi);
    if (bad) INVALID("cache %s: field %d has ids out of range, rebuilding", path, (int)i);
    f->ids = ids;
  }
  int retr = h.task == AMEIR_TASK_RETRIEVAL;
  if ((h.task != AMEIR_TASK_CTR && !retr) || (retr && h.label_offset) || (!retr && !h.label_offset) ||
      (retr && (h.target_field < 1 || h.target_field > (uint64_t)nf)) || (!retr && h.target_field))
    INVALID("cache %s: inconsistent task, rebuilding", path);
  const float *label = NULL;
  if (!retr) {
    if (!in_file(h.label_offset, n * sizeof(float), size)) INVALID("cache %s: labels out of the file", path);
    label = (const float *)(base + h.label_offset);
    for (uint64_t j = 0; j < n; j++)
      if (label[j] != 0.0f && label[j] != 1.0f) INVALID("cache %s: bad label, rebuilding", path);
  }
  const int64_t *user_off = NULL;
  const int32_t *items = NULL, *row_user = NULL, *row_pos = NULL;
  if (retr) {
    /* every index the trainer follows must stay inside its array */
    const ameir__field *t = &fields[h.target_field - 1];
    if (t->kind != AMEIR_FIELD_CATEGORICAL || h.n_users > size / 8 || h.n_items > size / 4 ||
        !in_file(h.user_off_offset, (h.n_users + 1) * sizeof(int64_t), size) ||
        !in_file(h.items_offset, h.n_items * sizeof(int32_t), size) ||
        !in_file(h.row_user_offset, n * sizeof(int32_t), size) || !in_file(h.row_pos_offset, n * sizeof(int32_t), size))
      INVALID("cache %s: retrieval arrays out of the file, rebuilding", path);
    user_off = (const int64_t *)(base + h.user_off_offset);
    items = (const int32_t *)(base + h.items_offset);
    row_user = (const int32_t *)(base + h.row_user_offset);
    row_pos = (const int32_t *)(base + h.row_pos_offset);
    int bad = user_off[0] != 0 || user_off[h.n_users] != (int64_t)h.n_items;
    for (uint64_t u = 0; u < h.n_users && !bad; u++) bad = user_off[u + 1] < user_off[u];
    for (uint64_t j = 0; j < h.n_items && !bad; j++) bad = items[j] < 0 || items[j] >= t->vocab;
    for (uint64_t j = 0; j < n && !bad; j++)
      bad = row_user[j] < 0 || (uint64_t)row_user[j] >= h.n_users || row_pos[j] < 1 ||
            row_pos[j] >= user_off[row_user[j] + 1] - user_off[row_user[j]];
    if (bad) INVALID("cache %s: corrupt retrieval arrays, rebuilding", path);
  }
  for (int k = 0; k < 3; k++) {
    if (!in_file(h.split_offset[k], h.split_n[k] * sizeof(int64_t), size))
      INVALID("cache %s: split out of the file", path);
    const int64_t *rows = (const int64_t *)(base + h.split_offset[k]);
    for (uint64_t j = 0; j < h.split_n[k]; j++)
      if (rows[j] < 0 || (uint64_t)rows[j] >= n || (j && rows[j] <= rows[j - 1]))
        INVALID("cache %s: corrupt split, rebuilding", path);
  }
  /* the three parts must not overlap (their sizes already add up to n) */
  {
    uint8_t *seen = calloc((size_t)(n ? n : 1), 1);
    if (!seen) goto fail;
    int dup = 0;
    for (int k = 0; k < 3 && !dup; k++) {
      const int64_t *rows = (const int64_t *)(base + h.split_offset[k]);
      for (uint64_t j = 0; j < h.split_n[k]; j++) {
        if (seen[rows[j]]) {
          dup = 1;
          break;
        }
        seen[rows[j]] = 1;
      }
    }
    free(seen);
    if (dup) INVALID("cache %s: corrupt split, rebuilding", path);
  }
  ds->n_fields = nf;
  ds->fields = fields;
  ds->n_rows = (int64_t)n;
  ds->label = label;
  for (int k = 0; k < 3; k++) {
    ds->split_rows[k] = (int64_t *)(base + h.split_offset[k]);
    ds->split_n[k] = (int64_t)h.split_n[k];
  }
  ds->skipped = (int64_t)h.skipped;
  ds->schema_hash = h.schema_hash;
  ds->task = (int32_t)h.task;
  ds->target_field = (int32_t)h.target_field - 1;
  ds->n_users = retr ? (int64_t)h.n_users : 0;
  ds->user_off = user_off;
  ds->items = items;
  ds->row_user = row_user;
  ds->row_pos = row_pos;
  ds->seq_empty = (int64_t)h.seq_stats[0];
  ds->seq_short = (int64_t)h.seq_stats[1];
  ds->seq_clipped = (int64_t)h.seq_stats[2];
  ds->seq_unknown = (int64_t)h.seq_stats[3];
  ds->map = map;
  ds->map_size = (size_t)size;
  free(ds->name);
  ds->name = name;
  return 1;
fail:
  if (fields) {
    for (int32_t i = 0; i < nf; i++) free(fields[i].name);
    free(fields);
  }
  free(name);
  if (map != MAP_FAILED) munmap(map, (size_t)size);
  return 0;
}
