/* Byte sources (plain, xz, gzip; detected by magic bytes, not by name) and a line reader over
 * big buffers: lines are handed out in place, never copied, and the buffer grows only for a
 * line longer than it. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#ifndef SRC_IN_SIZE  /* the fuzz build makes it small */
#define SRC_IN_SIZE (1u << 20)
#endif

enum { SRC_PLAIN, SRC_XZ, SRC_GZ };

struct ameir__src {
  int fd;
  int kind;
  const char *path;
  uint8_t *in;        /* compressed input buffer */
  size_t in_len, in_pos;
  int in_eof;
  lzma_stream xz;
  z_stream gz;
  int done;           /* decoder reached the end of the data */
};

static ameir_status read_in(ameir_context *ctx, ameir__src *s) {
  if (s->in_pos < s->in_len || s->in_eof) return AMEIR_OK;
  ssize_t r;
  do r = read(s->fd, s->in, SRC_IN_SIZE);
  while (r < 0 && errno == EINTR);
  if (r < 0) return ameir__error(ctx, AMEIR_EIO, "%s: read error: %s", s->path, strerror(errno));
  s->in_len = (size_t)r;
  s->in_pos = 0;
  if (r == 0) s->in_eof = 1;
  return AMEIR_OK;
}

ameir_status ameir__src_open(ameir_context *ctx, const char *path, ameir__src **out) {
  *out = NULL;
  int fd;
  do fd = open(path, O_RDONLY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return ameir__error(ctx, AMEIR_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    close(fd);
    return ameir__error(ctx, AMEIR_EIO, "%s: not a regular file", path);
  }
  ameir__src *s = ameir__calloc(ctx, 1, sizeof *s);
  uint8_t *in = ameir__malloc(ctx, SRC_IN_SIZE);
  if (!s || !in) {
    free(s);
    free(in);
    close(fd);
    return AMEIR_ENOMEM;
  }
  s->fd = fd;
  s->path = path;
  s->in = in;
  ameir_status stt = read_in(ctx, s);
  if (stt) {
    ameir__src_close(s);
    return stt;
  }
  static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
  if (s->in_len >= 6 && memcmp(s->in, xz_magic, 6) == 0) {
    s->kind = SRC_XZ;
    lzma_stream init = LZMA_STREAM_INIT;
    s->xz = init;
    lzma_ret r = lzma_stream_decoder(&s->xz, UINT64_MAX, LZMA_CONCATENATED);
    if (r != LZMA_OK) {
      ameir__src_close(s);
      return ameir__error(ctx, AMEIR_ENOMEM, "%s: cannot start the xz decoder (%d)", path, (int)r);
    }
  } else if (s->in_len >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
    s->kind = SRC_GZ;
    memset(&s->gz, 0, sizeof s->gz);
    if (inflateInit2(&s->gz, 15 + 32) != Z_OK) {
      s->kind = SRC_PLAIN;  /* nothing to end */
      ameir__src_close(s);
      return ameir__error(ctx, AMEIR_ENOMEM, "%s: cannot start the gzip decoder", path);
    }
  } else {
    s->kind = SRC_PLAIN;
  }
  *out = s;
  return AMEIR_OK;
}

/* Reads up to cap bytes; *got = 0 only at the end of the data. */
ameir_status ameir__src_read(ameir_context *ctx, ameir__src *s, char *buf, size_t cap, size_t *got) {
  *got = 0;
  if (s->done || cap == 0) return AMEIR_OK;
  ameir_status st;
  if (s->kind == SRC_PLAIN) {
    size_t n = 0;
    while (n < cap) {
      if (s->in_pos < s->in_len) {
        size_t k = s->in_len - s->in_pos;
        if (k > cap - n) k = cap - n;
        memcpy(buf + n, s->in + s->in_pos, k);
        s->in_pos += k;
        n += k;
        continue;
      }
      if (s->in_eof) break;
      if (cap - n >= SRC_IN_SIZE) {  /* large request: read straight into the caller's buffer */
        ssize_t r;
        do r = read(s->fd, buf + n, cap - n);
        while (r < 0 && errno == EINTR);
        if (r < 0) return ameir__error(ctx, AMEIR_EIO, "%s: read error: %s", s->path, strerror(errno));
        if (r == 0) {
          s->in_eof = 1;
          break;
        }
        n += (size_t)r;
        continue;
      }
      if ((st = read_in(ctx, s))) return st;
    }
    if (n == 0) s->done = 1;
    *got = n;
    return AMEIR_OK;
  }
  if (s->kind == SRC_XZ) {
    s->xz.next_out = (uint8_t *)buf;
    s->xz.avail_out = cap;
    while (s->xz.avail_out > 0) {
      if ((st = read_in(ctx, s))) return st;
      s->xz.next_in = s->in + s->in_pos;
      s->xz.avail_in = s->in_len - s->in_pos;
      lzma_ret r = lzma_code(&s->xz, s->in_eof ? LZMA_FINISH : LZMA_RUN);
      s->in_pos = s->in_len - s->xz.avail_in;
      if (r == LZMA_STREAM_END) {
        s->done = 1;
        break;
      }
      if (r != LZMA_OK) {
        if (r == LZMA_BUF_ERROR && s->in_eof)
          return ameir__error(ctx, AMEIR_EFORMAT, "%s: truncated xz file", s->path);
        if (r == LZMA_MEM_ERROR) return ameir__error(ctx, AMEIR_ENOMEM, "%s: xz: out of memory", s->path);
        return ameir__error(ctx, AMEIR_EFORMAT, "%s: corrupt xz data (liblzma error %d)", s->path, (int)r);
      }
    }
    *got = cap - s->xz.avail_out;
    return AMEIR_OK;
  }
  /* gzip, possibly several members one after another (as `cat a.gz b.gz` makes) */
  s->gz.next_out = (Bytef *)buf;
  s->gz.avail_out = (uInt)(cap > (1u << 30) ? (1u << 30) : cap);
  uInt want = s->gz.avail_out;
  while (s->gz.avail_out > 0) {
    if ((st = read_in(ctx, s))) return st;
    s->gz.next_in = s->in + s->in_pos;
    s->gz.avail_in = (uInt)(s->in_len - s->in_pos);
    uInt before_in = s->gz.avail_in, before_out = s->gz.avail_out;
    int r = inflate(&s->gz, Z_NO_FLUSH);
    s->in_pos = s->in_len - s->gz.avail_in;
    if (r == Z_STREAM_END) {
      if ((st = read_in(ctx, s))) return st;
      if (s->in_pos == s->in_len && s->in_eof) {
        s->done = 1;
        break;
      }
      inflateReset(&s->gz);  /* another member follows */
      continue;
    }
    if (r == Z_MEM_ERROR) return ameir__error(ctx, AMEIR_ENOMEM, "%s: gzip: out of memory", s->path);
    if (r != Z_OK && r != Z_BUF_ERROR)
      return ameir__error(ctx, AMEIR_EFORMAT, "%s: corrupt gzip data (%s)", s->path,
                          s->gz.msg ? s->gz.msg : "zlib error");
    if (s->gz.avail_in == before_in && s->gz.avail_out == before_out && s->in_eof &&
        s->in_pos == s->in_len) {
      if (s->gz.total_in == 0 && s->gz.total_out == 0) { /* the input ended between members */
        s->done = 1;
        break;
      }
      return ameir__error(ctx, AMEIR_EFORMAT, "%s: truncated gzip file", s->path);
    }
  }
  *got = want - s->gz.avail_out;
  return AMEIR_OK;
}

void ameir__src_close(ameir__src *s) {
  if (!s) return;
  if (s->kind == SRC_XZ) lzma_end(&s->xz);
  if (s->kind == SRC_GZ) inflateEnd(&s->gz);
  if (s->fd >= 0) close(s->fd);
  free(s->in);
  free(s);
}

/* ---- lines ---- */

ameir_status ameir__lines_open(ameir_context *ctx, ameir__lines *L, const char *path, size_t bufsize) {
  memset(L, 0, sizeof *L);
  L->path = path;
  L->cap = bufsize < 4096 ? 4096 : bufsize;
  L->buf = ameir__malloc(ctx, L->cap + 1);
  if (!L->buf) return AMEIR_ENOMEM;
  ameir_status st = ameir__src_open(ctx, path, &L->src);
  if (st) {
    free(L->buf);
    L->buf = NULL;
  }
  return st;
}

void ameir__lines_close(ameir__lines *L) {
  ameir__src_close(L->src);
  free(L->buf);
  memset(L, 0, sizeof *L);
}

/* Next line without its "\n" (and "\r"), NUL-terminated in place; *line = NULL at the end. */
ameir_status ameir__lines_next(ameir_context *ctx, ameir__lines *L, char **line, size_t *len) {
  *line = NULL;
  *len = 0;
  for (;;) {
    char *b = L->buf + L->pos;
    char *nl = L->end > L->pos ? memchr(b, '\n', L->end - L->pos) : NULL;
    if (nl || (L->eof && L->end > L->pos)) {
      size_t n = nl ? (size_t)(nl - b) : L->end - L->pos;
      L->pos += n + (nl ? 1 : 0);
      if (n && b[n - 1] == '\r') n--;
      b[n] = 0;  /* the '\n' (or the spare byte after the buffer) */
      L->lineno++;
      *line = b;
      *len = n;
      return AMEIR_OK;
    }
    if (L->eof) return AMEIR_OK;
    /* keep the partial line, move it to the front, grow if it fills the buffer */
    size_t rest = L->end - L->pos;
    if (L->pos > 0) {
      memmove(L->buf, L->buf + L->pos, rest);
      L->pos = 0;
      L->end = rest;
    }
    if (L->end == L->cap) {
      if (L->cap >= ((size_t)1 << 31))
        return ameir__error(ctx, AMEIR_EFORMAT, "%s:%lld: line longer than 2 GiB", L->path,
                            (long long)L->lineno + 1);
      char *nb = ameir__realloc(ctx, L->buf, L->cap * 2 + 1);
      if (!nb) return AMEIR_ENOMEM;
      L->buf = nb;
      L->cap *= 2;
    }
    size_t got;
    ameir_status st = ameir__src_read(ctx, L->src, L->buf + L->end, L->cap - L->end, &got);
    if (st) return st;
    if (got == 0) L->eof = 1;
    L->end += got;
  }
}
