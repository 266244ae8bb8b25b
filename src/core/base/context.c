/* The context: backend choice, options, callbacks, last error. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"
#include "../backend/registry.h"

static int32_t default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > 1024) n = 1024;
  return (int32_t)n;
}

AMEIR_API ameir_status ameir_context_create(ameir_context **out, const char *backend) {
  if (!out) return ameir__error(NULL, AMEIR_EINVAL, "ameir_context_create: out is NULL");
  *out = NULL;
  ameir_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return ameir__error(NULL, AMEIR_ENOMEM, "out of memory creating a context");
  ctx->threads = default_threads();
  ctx->seed = 2021;
  ctx->log_level = AMEIR_LOG_INFO;
  ctx->deterministic = 1;
  ameir_status st = ameir__backend_select(ctx, backend);
  if (st != AMEIR_OK) {
    /* the message lives in ctx; move it to the thread's slot before freeing */
    ameir__error(NULL, st, "%s", ctx->msg);
    free(ctx);
    return st;
  }
  *out = ctx;
  return AMEIR_OK;
}

AMEIR_API void ameir_context_free(ameir_context *ctx) {
  if (!ctx) return;
  ameir__backend_release(ctx);
  free(ctx);
}

AMEIR_API const char *ameir_context_backend(const ameir_context *ctx) {
  return ctx && ctx->ops ? ctx->ops->name : "";
}

AMEIR_API const char *ameir_context_last_error(const ameir_context *ctx) {
  return ctx ? ctx->msg : ameir_last_error();
}

AMEIR_API ameir_status ameir_context_set_int(ameir_context *ctx, const char *key, int64_t value) {
  if (!ctx || !key) return ameir__error(ctx, AMEIR_EINVAL, "ameir_context_set_int: NULL argument");
  if (!strcmp(key, "threads")) {
    if (value < 1 || value > 1024)
      return ameir__error(ctx, AMEIR_EINVAL, "threads must be in [1, 1024], got %lld", (long long)value);
    ctx->threads = (int32_t)value;
    if (ctx->ops && ctx->ops->set_threads) return ctx->ops->set_threads(ctx->bstate, ctx->threads);
    return AMEIR_OK;
  }
  if (!strcmp(key, "seed")) {
    if (value < 0) return ameir__error(ctx, AMEIR_EINVAL, "seed must be >= 0, got %lld", (long long)value);
    ctx->seed = (uint64_t)value;
    return AMEIR_OK;
  }
  if (!strcmp(key, "log_level")) {
    if (value < AMEIR_LOG_ERROR || value > AMEIR_LOG_DEBUG)
      return ameir__error(ctx, AMEIR_EINVAL, "log_level must be in [0, 3], got %lld", (long long)value);
    ctx->log_level = (int32_t)value;
    return AMEIR_OK;
  }
  if (!strcmp(key, "deterministic")) {
    if (value != 0 && value != 1)
      return ameir__error(ctx, AMEIR_EINVAL, "deterministic must be 0 or 1, got %lld", (long long)value);
    ctx->deterministic = (int32_t)value;
    return AMEIR_OK;
  }
  return ameir__error(ctx, AMEIR_ENOTFOUND, "unknown context option '%s' (threads, seed, log_level, deterministic)", key);
}

AMEIR_API ameir_status ameir_context_get_int(const ameir_context *ctx, const char *key, int64_t *value) {
  if (!ctx || !key || !value) return AMEIR_EINVAL;
  if (!strcmp(key, "threads")) *value = ctx->threads;
  else if (!strcmp(key, "seed")) *value = (int64_t)ctx->seed;
  else if (!strcmp(key, "log_level")) *value = ctx->log_level;
  else if (!strcmp(key, "deterministic")) *value = ctx->deterministic;
  else return AMEIR_ENOTFOUND;
  return AMEIR_OK;
}

AMEIR_API void ameir_context_set_log_callback(ameir_context *ctx, ameir_log_fn fn, void *user_data) {
  if (!ctx) return;
  ctx->log_fn = fn;
  ctx->log_user = user_data;
}

AMEIR_API void ameir_context_set_progress_callback(ameir_context *ctx, ameir_progress_fn fn,
                                                   void *user_data) {
  if (!ctx) return;
  ctx->progress_fn = fn;
  ctx->progress_user = user_data;
}
