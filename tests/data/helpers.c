/* Helpers of the data tests (see helpers.h). */
#define _GNU_SOURCE
#include "helpers.h"

#include <fcntl.h>
#include <limits.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "test.h"
#include "core/base/base.h"

static char slots[8][1024];
static int slot;

const char *td_path(const char *name) {
  char *p = slots[slot++ & 7];
  snprintf(p, sizeof slots[0], "%s/%s", t_tmpdir(), name);
  return p;
}

const char *td_write(const char *name, const char *text) {
  const char *p = td_path(name);
  FILE *f = fopen(p, "wb");
  T_ASSERT_MSG(f, "cannot write %s", p);
  fwrite(text, 1, strlen(text), f);
  fclose(f);
  return p;
}

const char *td_write_gz(const char *name, const char *text) {
  const char *p = td_path(name);
  gzFile g = gzopen(p, "wb");
  T_ASSERT_MSG(g, "cannot write %s", p);
  gzwrite(g, text, (unsigned)strlen(text));
  gzclose(g);
  return p;
}

const char *td_write_xz(const char *name, const char *text) {
  const char *p = td_path(name);
  size_t n = strlen(text), cap = n + n / 2 + 1024, out = 0;
  uint8_t *buf = malloc(cap);
  T_ASSERT(buf);
  lzma_ret r = lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, (const uint8_t *)text, n, buf, &out, cap);
  if (r != LZMA_OK) free(buf);
  T_ASSERT_MSG(r == LZMA_OK, "xz encode: %d", (int)r);
  FILE *f = fopen(p, "wb");
  if (!f) free(buf);
  T_ASSERT_MSG(f, "cannot write %s", p);
  fwrite(buf, 1, out, f);
  fclose(f);
  free(buf);
  return p;
}

ameir_status td_open(ameir_dataset **ds, ameir_context *ctx, const char *yaml, const char *const *ov) {
  const char *all[32];
  char cache[1100];
  int n = 0;
  snprintf(cache, sizeof cache, "cache.dir=%s/cache", t_tmpdir());
  all[n++] = cache;
  for (int i = 0; ov && ov[i] && n < 32; i++) all[n++] = ov[i];
  return ameir_dataset_open_yaml(ds, ctx, yaml, t_tmpdir(), all, n);
}

const char *td_err(ameir_context *ctx) { return ctx ? ctx->msg : ameir_last_error(); }

const char *td_data_dir(void) {
  static char buf[PATH_MAX];
  const char *d = t_data_dir();
  if (!d || !realpath(d, buf)) return NULL;
  return buf;
}

ameir_status td_open_example(ameir_dataset **ds, ameir_context *ctx, const char *name, int cache) {
  char path[512], dd[PATH_MAX + 16], cd[1100];
  snprintf(path, sizeof path, "examples/configs/%s.yaml", name);
  snprintf(dd, sizeof dd, "data_dir=%s", td_data_dir());
  if (cache) snprintf(cd, sizeof cd, "cache.dir=%s/cache", t_tmpdir());
  else snprintf(cd, sizeof cd, "cache.enabled=false");
  /* the file's own text, so that the overrides apply (ameir_dataset_open takes none) */
  FILE *f = fopen(path, "rb");
  T_ASSERT_MSG(f, "cannot read %s (run from the repository root)", path);
  char text[16384];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  const char *ov[] = {dd, cd};
  return ameir_dataset_open_yaml(ds, ctx, text, "examples/configs", ov, 2);
}

void td_touch(const char *path, long sec) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = sec;
  ts[0].tv_nsec = ts[1].tv_nsec = 0;
  T_ASSERT(utimensat(AT_FDCWD, path, ts, 0) == 0);
}
