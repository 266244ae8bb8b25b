/* libameir: the context. It owns the compute backend, the thread count, the random seed, the
 * callbacks and the last error message. Every other handle is created from a context and must be
 * freed before it.
 *
 * Thread safety: a context may be shared by handles used from different threads only for
 * read-only calls (model prediction). Setters must not race with other calls on the context.
 */
#ifndef AMEIR_CONTEXT_H
#define AMEIR_CONTEXT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Creates a context.
 *  @param out      receives the new context; set to NULL on failure.
 *  @param backend  "cpu", "cuda" or "auto" (NULL means "auto", or the AMEIR_BACKEND environment
 *                  variable when set). "auto" picks CUDA when libameir_cuda.so loads and a device
 *                  answers, else the CPU, and logs the choice.
 *  @return AMEIR_OK; AMEIR_EINVAL (unknown backend name, NULL out); AMEIR_EUNSUPPORTED ("cuda"
 *          without the module, the driver or a device; the message says which);
 *          AMEIR_EVERSION (a module of another ABI version); AMEIR_ENOMEM.
 *  Failures are described by ameir_last_error(). Since 0.1. */
AMEIR_API ameir_status ameir_context_create(ameir_context **out, const char *backend);

/** Frees the context. Every handle made from it must have been freed. NULL is a no-op. */
AMEIR_API void ameir_context_free(ameir_context *ctx);

/** Name of the backend in use ("cpu" or "cuda"). Borrowed, valid while ctx lives. Since 0.1. */
AMEIR_API const char *ameir_context_backend(const ameir_context *ctx);

/** Message of the last failure of a call made with this context (or a handle made from it).
 *  Never NULL; "" if there was none. Borrowed until the next failing call. Since 0.1. */
AMEIR_API const char *ameir_context_last_error(const ameir_context *ctx);

/* Integer options of a context (pinned names; ameir_context_get_int returns the value in
 * effect):
 *   "threads"  worker threads for the CPU backend and BLAS, 1..1024; default: the number of
 *              online cores. The CPU backend sets OpenBLAS's (process-wide) thread count to this
 *              value when it runs a BLAS call, so do not mix with another BLAS user in one process
 *              with a different count.
 *   "seed"     seed of every random draw (initialisation, shuffling, dropout, sampling);
 *              default 2021. Same seed and thread count give bit-identical results.
 *   "log_level" highest AMEIR_LOG_* level passed to the log callback; default AMEIR_LOG_INFO.
 *   "deterministic" 1 (default): reductions in a fixed order. */

/** Sets an integer option. @return AMEIR_OK; AMEIR_ENOTFOUND (unknown key); AMEIR_EINVAL (value
 *  out of range; the message gives the bounds). Since 0.1. */
AMEIR_API ameir_status ameir_context_set_int(ameir_context *ctx, const char *key, int64_t value);

/** Reads an integer option in effect. @return AMEIR_OK or AMEIR_ENOTFOUND. Since 0.1. */
AMEIR_API ameir_status ameir_context_get_int(const ameir_context *ctx, const char *key,
                                             int64_t *value);

/** Installs (or, with fn NULL, removes) the log callback. Without one the library is silent. */
AMEIR_API void ameir_context_set_log_callback(ameir_context *ctx, ameir_log_fn fn, void *user_data);

/** Installs (or removes) the progress callback used by long calls made with this context
 *  (training, evaluation, search). Returning non-zero from it cancels the call. Since 0.1. */
AMEIR_API void ameir_context_set_progress_callback(ameir_context *ctx, ameir_progress_fn fn,
                                                   void *user_data);

#ifdef __cplusplus
}
#endif

#endif
