/* Backend selection: the CPU backend is built in; others are modules loaded with dlopen. */
#ifndef AMEIR_CORE_REGISTRY_H
#define AMEIR_CORE_REGISTRY_H

#include "../base/base.h"

/* Selects the backend `name` ("cpu", "cuda", "auto"; NULL = getenv("AMEIR_BACKEND") or "auto"),
 * loading a module when needed, checks its ABI handshake, fills missing optional ops with the
 * CPU reference, and initialises it for ctx->threads. On success sets ctx->ops, ctx->bstate and
 * ctx->module and logs the choice. On failure sets the error in ctx and leaves them NULL. */
ameir_status ameir__backend_select(ameir_context *ctx, const char *name);

/* Shuts the backend down and unloads its module. */
void ameir__backend_release(ameir_context *ctx);

/* One line per known backend module for ameir_build_info(): name, path, versions, device, or
 * why it is unavailable. Writes into buf (NUL-terminated). */
void ameir__backend_describe(char *buf, size_t size);

#endif
