/* Internal base services: errors, logging, allocation, RNG, the context's private layout. */
#ifndef AMEIR_CORE_BASE_H
#define AMEIR_CORE_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ameir/context.h"
#include "../backend/ops.h"

#define AMEIR_MSG_MAX 1024

struct ameir_context {
  const ameir_ops *ops;      /* the backend vtable */
  void *bstate;              /* the backend's state */
  void *module;              /* dlopen handle of a backend module, or NULL */
  int32_t threads;
  uint64_t seed;
  int32_t log_level;
  int32_t deterministic;
  ameir_log_fn log_fn;
  void *log_user;
  ameir_progress_fn progress_fn;
  void *progress_user;
  char msg[AMEIR_MSG_MAX];   /* last error */
};

/* Sets the last error of ctx (or the thread's when ctx is NULL) and returns status, so a
 * failure is reported in one expression: return ameir__error(ctx, AMEIR_EIO, "%s: ...", p); */
ameir_status ameir__error(ameir_context *ctx, ameir_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
ameir_status ameir__verror(ameir_context *ctx, ameir_status status, const char *fmt, va_list ap);
/* Prefixes the current message of ctx with more context ("while loading X: <old message>"). */
void ameir__error_prefix(ameir_context *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void ameir__log(const ameir_context *ctx, int32_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Progress report; returns non-zero if the caller asked to cancel. */
int32_t ameir__progress(const ameir_context *ctx, const char *stage, int64_t done, int64_t total,
                        double metric);

/* Allocation that sets AMEIR_ENOMEM in ctx on failure (returns NULL). */
void *ameir__malloc(ameir_context *ctx, size_t bytes);
void *ameir__calloc(ameir_context *ctx, size_t n, size_t size);
void *ameir__realloc(ameir_context *ctx, void *p, size_t bytes);
char *ameir__strdup(ameir_context *ctx, const char *s);

/* ---- RNG: counter-based (Philox-like quality via splitmix64 mixing), reproducible across
 * backends and thread counts: the value for (key, counter) is a pure function. ---- */
static inline uint64_t ameir__mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline uint64_t ameir__hash2(uint64_t key, uint64_t counter) {
  return ameir__mix64(key ^ ameir__mix64(counter + 0x632be59bd9b4e019ull));
}
/* uniform in [0,1) with 24 bits */
static inline float ameir__u01f(uint64_t key, uint64_t counter) {
  return (float)(ameir__hash2(key, counter) >> 40) * (1.0f / 16777216.0f);
}

/* A sequential stream (xoshiro256**) for host-side draws: init, shuffles, sampling. */
typedef struct { uint64_t s[4]; } ameir__rng;
void ameir__rng_seed(ameir__rng *r, uint64_t seed, uint64_t stream);
uint64_t ameir__rng_next(ameir__rng *r);
double ameir__rng_uniform(ameir__rng *r);                 /* [0,1) 53 bits */
double ameir__rng_normal(ameir__rng *r);                  /* N(0,1), Box-Muller, no caching */
uint64_t ameir__rng_below(ameir__rng *r, uint64_t n);     /* unbiased [0,n) */

double ameir__now(void);   /* monotonic seconds */

#define AMEIR_UNUSED(x) ((void)(x))

#endif
