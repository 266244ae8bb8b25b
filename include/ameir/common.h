/* libameir: status codes, export macro, versions and the opaque handle types.
 *
 * Every fallible call returns an ameir_status: 0 (AMEIR_OK) on success, a negative AMEIR_E*
 * value on failure. The values are pinned: they never change and are never reused. A detailed
 * message for the last failure is kept per context (ameir_context_last_error) and, for calls
 * made without a context, per thread (ameir_last_error). The library never prints, aborts or
 * exits; it logs only through the callback installed with ameir_context_set_log_callback.
 */
#ifndef AMEIR_COMMON_H
#define AMEIR_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#if defined(_WIN32)
#  if defined(AMEIR_BUILDING)
#    define AMEIR_API __declspec(dllexport)
#  else
#    define AMEIR_API
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define AMEIR_API __attribute__((visibility("default")))
#else
#  define AMEIR_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define AMEIR_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#  define AMEIR_DEPRECATED(msg)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every fallible call: AMEIR_OK (0) or a negative AMEIR_E* code. */
typedef int32_t ameir_status;

/* Pinned values: never renumbered, never reused (tests/unit/enums.c checks them). */
#define AMEIR_OK           0  /**< success */
#define AMEIR_EINVAL      -1  /**< an argument is invalid (NULL where not allowed, out of range) */
#define AMEIR_ENOMEM      -2  /**< an allocation failed */
#define AMEIR_EIO         -3  /**< a file could not be opened, read or written */
#define AMEIR_EFORMAT     -4  /**< malformed input data or file (the message names file and line) */
#define AMEIR_ECONFIG     -5  /**< invalid configuration (the message names the key) */
#define AMEIR_EVERSION    -6  /**< a file or module of a newer or incompatible version */
#define AMEIR_EBACKEND    -7  /**< the compute backend failed (the message has the runtime's text) */
#define AMEIR_EUNSUPPORTED -8 /**< the request is valid but not available here (e.g. no GPU) */
#define AMEIR_ECANCELLED  -9  /**< a progress callback returned non-zero */
#define AMEIR_ESTATE     -10  /**< the handle is not in a state that allows the call */
#define AMEIR_ENOTFOUND  -11  /**< a named item (field, key, preset, file) does not exist */
#define AMEIR_ENUMERIC   -12  /**< training diverged (a loss or gradient became NaN or infinite) */

/** Static English text for a status code ("invalid argument", ...); never NULL.
 *  Thread safety: safe from any thread. Since 0.1. */
AMEIR_API const char *ameir_status_str(ameir_status status);

/** Version of the library actually loaded, "MAJOR.MINOR.PATCH". Static, never NULL. Since 0.1. */
AMEIR_API const char *ameir_version_string(void);

/** The version as AMEIR_VERSION_NUMBER computes it, for the loaded library. Since 0.1. */
AMEIR_API uint32_t ameir_version_number(void);

/** A static multi-line text describing the build: version, compiler, BLAS, CPU features used
 *  at run time, and which backend modules are known (and, for CUDA, whether it loads). The
 *  string is built on first call and then kept; never NULL. Thread safety: safe. Since 0.1. */
AMEIR_API const char *ameir_build_info(void);

/** Message of the last failure of a call made on this thread without a context (for instance
 *  ameir_context_create). Never NULL; "" if none. Valid until the next failing call on the same
 *  thread. Since 0.1. */
AMEIR_API const char *ameir_last_error(void);

/** Frees memory the library returned to the caller as "free with ameir_free" (strings such as
 *  ameir_arch_to_string's output). NULL is a no-op. Since 0.1. */
AMEIR_API void ameir_free(void *ptr);

/* Opaque handles. Each has a create/open/load function and exactly one _free; _free(NULL) is a
 * no-op. None of their layouts is public, so they can grow without breaking the ABI. */
typedef struct ameir_context ameir_context;   /**< backend, threads, seed, callbacks, last error */
typedef struct ameir_dataset ameir_dataset;   /**< a schema plus loaded, encoded, split rows */
typedef struct ameir_arch ameir_arch;         /**< an architecture in the paper's notation */
typedef struct ameir_model ameir_model;       /**< a trainable / trained fixed architecture */
typedef struct ameir_space ameir_space;       /**< a search space */
typedef struct ameir_supernet ameir_supernet; /**< the one-shot model */
typedef struct ameir_searcher ameir_searcher; /**< the three-step search */

/** Log levels passed to the log callback. */
#define AMEIR_LOG_ERROR 0
#define AMEIR_LOG_WARN  1
#define AMEIR_LOG_INFO  2
#define AMEIR_LOG_DEBUG 3

/** Log callback: level (AMEIR_LOG_*), a NUL-terminated message without trailing newline, and
 *  the user_data given when it was installed. Called from the thread that made the call. */
typedef void (*ameir_log_fn)(int32_t level, const char *message, void *user_data);

/** Progress callback for long calls: stage name ("train", "eval", ...), work done and total
 *  (total may be 0 when unknown), a current metric (NaN if none) and user_data. Returning
 *  non-zero cancels the call, which then returns AMEIR_ECANCELLED. */
typedef int32_t (*ameir_progress_fn)(const char *stage, int64_t done, int64_t total, double metric,
                                     void *user_data);

#ifdef __cplusplus
}
#endif

#endif
