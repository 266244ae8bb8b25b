/* The contract between libameir and a backend module loaded with dlopen (libameir_cuda.so).
 *
 * A module exports exactly one symbol, the entry point AMEIR_MODULE_ENTRY:
 *
 *   int32_t ameir_backend_module_v1(uint32_t host_abi, const ameir_ops **ops,
 *                                   struct ameir__module_host *host);
 *
 * The host (libameir) fills the first part of `host` (its services) and calls the entry point
 * with host_abi = AMEIR_OPS_ABI_VERSION. The module then:
 *   1. sets host->module_abi to the AMEIR_OPS_ABI_VERSION it was built with, host->describe to
 *      its describe callback (or NULL), and keeps host->log / host->set_error for its ops;
 *   2. refuses a different host_abi: writes a message naming both numbers into host->reason and
 *      returns AMEIR_EVERSION;
 *   3. probes its runtime (driver, devices). If it cannot run here it writes why into
 *      host->reason ("no CUDA driver ...", "no CUDA device ...") and returns AMEIR_EUNSUPPORTED;
 *   4. otherwise sets *ops to its table (static, valid while the module is loaded) and returns
 *      AMEIR_OK. On any other return the host ignores *ops (a module may still set it: the
 *      CUDA module does while its compute ops are missing, for tests/gpu/cuda_module.c).
 * The entry point must be cheap and may be called several times (once per context, and by
 * ameir_build_info). It never aborts and never prints.
 *
 * The layout of struct ameir__module_host is part of the entry point's name (_v1): members are
 * only ever added at its end, and struct_size says how much of it the other side has. The ops
 * table itself is versioned by AMEIR_OPS_ABI_VERSION (the handshake above) and by its own
 * struct_size (the host fills what a smaller table lacks; see registry.c).
 *
 * A module never includes base.h: it reaches the core only through these services, so it has no
 * link-time dependency on libameir (it is loaded into processes that link libameir statically,
 * too).
 */
#ifndef AMEIR_CORE_MODULE_H
#define AMEIR_CORE_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "ops.h"

#define AMEIR_MODULE_ENTRY "ameir_backend_module_v1"

struct ameir_context;

struct ameir__module_host {
  /* ---- filled by the host before the call ---- */
  uint32_t abi_version;  /* AMEIR_OPS_ABI_VERSION of the host (equal to the host_abi argument) */
  uint32_t struct_size;  /* sizeof(struct ameir__module_host) as the host was compiled */
  /* Logs a message through the context's callback (ctx may be NULL: then nothing is logged).
   * level: AMEIR_LOG_*. */
  void (*log)(const struct ameir_context *ctx, int32_t level, const char *message);
  /* Records message as the last error of ctx (of the calling thread when ctx is NULL) and
   * returns status, so an op can `return host->set_error(ctx, AMEIR_EBACKEND, buf);`. */
  int32_t (*set_error)(struct ameir_context *ctx, int32_t status, const char *message);
  /* Where the entry point writes why it refused (NUL-terminated, at most reason_size bytes). */
  char *reason;
  size_t reason_size;

  /* ---- filled by the module during the call ---- */
  uint32_t module_abi;   /* AMEIR_OPS_ABI_VERSION the module was built with */
  uint32_t reserved_;
  /* Writes one line (no newline) of versions and devices ("CUDA runtime 13.0, driver 12.8,
   * cuBLAS 13.0.0, cuDNN 9.19.0; 1 device: NVIDIA H100 (sm_90, 79 GiB)") into buf. May be
   * called whatever the entry point returned, as long as the module is loaded. */
  void (*describe)(char *buf, size_t size);
};

typedef int32_t (*ameir__module_entry_fn)(uint32_t host_abi, const ameir_ops **ops,
                                          struct ameir__module_host *host);

#ifdef __cplusplus
}
#endif

#endif
