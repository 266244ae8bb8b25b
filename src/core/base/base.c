/* Errors, logging, allocation, RNG. */
#define _POSIX_C_SOURCE 200809L
#include "base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char tls_msg[AMEIR_MSG_MAX];

AMEIR_API const char *ameir_last_error(void) { return tls_msg; }

ameir_status ameir__verror(ameir_context *ctx, ameir_status status, const char *fmt, va_list ap) {
  char *dst = ctx ? ctx->msg : tls_msg;
  char tmp[AMEIR_MSG_MAX];
  /* format into a temporary first: the arguments may point into the old message */
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  memcpy(dst, tmp, sizeof tmp);
  if (ctx) memcpy(tls_msg, tmp, sizeof tmp);
  if (ctx) ameir__log(ctx, AMEIR_LOG_DEBUG, "error %d: %s", (int)status, tmp);
  return status;
}

ameir_status ameir__error(ameir_context *ctx, ameir_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ameir__verror(ctx, status, fmt, ap);
  va_end(ap);
  return status;
}

void ameir__error_prefix(ameir_context *ctx, const char *fmt, ...) {
  char *dst = ctx ? ctx->msg : tls_msg;
  char out[AMEIR_MSG_MAX], old[AMEIR_MSG_MAX];
  memcpy(old, dst, sizeof old);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, sizeof out, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  size_t used = (size_t)n < sizeof out ? (size_t)n : sizeof out - 1;
  size_t rest = sizeof out - used;
  if (rest > 3) {
    memcpy(out + used, ": ", 2);
    size_t len = strnlen(old, sizeof old - 1);
    if (len > rest - 3) len = rest - 3;
    memcpy(out + used + 2, old, len);
    out[used + 2 + len] = 0;
  }
  memcpy(dst, out, sizeof out);
  if (ctx) memcpy(tls_msg, out, sizeof out);
}

void ameir__log(const ameir_context *ctx, int32_t level, const char *fmt, ...) {
  if (!ctx || !ctx->log_fn || level > ctx->log_level) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ctx->log_fn(level, buf, ctx->log_user);
}

int32_t ameir__progress(const ameir_context *ctx, const char *stage, int64_t done, int64_t total,
                        double metric) {
  if (!ctx || !ctx->progress_fn) return 0;
  return ctx->progress_fn(stage, done, total, metric, ctx->progress_user);
}

void *ameir__malloc(ameir_context *ctx, size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) ameir__error(ctx, AMEIR_ENOMEM, "out of memory allocating %zu bytes", bytes);
  return p;
}

void *ameir__calloc(ameir_context *ctx, size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) ameir__error(ctx, AMEIR_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
  return p;
}

void *ameir__realloc(ameir_context *ctx, void *old, size_t bytes) {
  void *p = realloc(old, bytes ? bytes : 1);
  if (!p) ameir__error(ctx, AMEIR_ENOMEM, "out of memory allocating %zu bytes", bytes);
  return p;
}

char *ameir__strdup(ameir_context *ctx, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ameir__malloc(ctx, n);
  if (p) memcpy(p, s, n);
  return p;
}

AMEIR_API void ameir_free(void *ptr) { free(ptr); }

void ameir__rng_seed(ameir__rng *r, uint64_t seed, uint64_t stream) {
  uint64_t k = ameir__mix64(seed) ^ ameir__mix64(stream * 0xd1342543de82ef95ull + 1);
  for (int i = 0; i < 4; i++) {
    k = ameir__mix64(k);
    r->s[i] = k;
  }
  if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ameir__rng_next(ameir__rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double ameir__rng_uniform(ameir__rng *r) { return (double)(ameir__rng_next(r) >> 11) * 0x1.0p-53; }

double ameir__rng_normal(ameir__rng *r) {
  double u1 = ameir__rng_uniform(r), u2 = ameir__rng_uniform(r);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t ameir__rng_below(ameir__rng *r, uint64_t n) {
  if (n <= 1) return 0;
  uint64_t lim = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = ameir__rng_next(r);
  while (x >= lim);
  return x % n;
}

double ameir__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
