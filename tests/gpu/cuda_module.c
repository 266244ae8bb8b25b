/* Device check of libameir_cuda.so's memory ops, run where a GPU is (not part of `make test`):
 *
 *   cc -std=c11 -Iinclude -Isrc tests/gpu/cuda_module.c -ldl -o build/cuda_module
 *   ./build/cuda_module lib/libameir_cuda.so
 *
 * It loads the module itself with its own host services (src/core/backend/module.h), so it can
 * test the memory ops while the module still refuses compute (src/cuda/module.cu). Prints one
 * line per check and ends with "N passed, N failed"; exit status 0 when all passed, 77 when
 * there is no usable device (skip).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/module.h"

static char g_err[1024];
static int32_t g_err_status;
static int g_pass, g_fail;

static void h_log(const struct ameir_context *ctx, int32_t level, const char *msg) {
  (void)ctx;
  printf("     log[%d] %s\n", (int)level, msg);
}
static int32_t h_set_error(struct ameir_context *ctx, int32_t status, const char *msg) {
  (void)ctx;
  g_err_status = status;
  snprintf(g_err, sizeof g_err, "%s", msg);
  return status;
}

#define CHECK(cond, ...)                              \
  do {                                                \
    if (cond) {                                       \
      g_pass++;                                       \
      printf("ok   " __VA_ARGS__);                    \
    } else {                                          \
      g_fail++;                                       \
      printf("FAIL " __VA_ARGS__);                    \
      printf("     last error %d: %s\n", (int)g_err_status, g_err); \
    }                                                 \
    printf("\n");                                     \
  } while (0)

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "lib/libameir_cuda.so";
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("cannot load %s: %s\n0 passed, 1 failed\n", path, dlerror());
    return 1;
  }
  ameir__module_entry_fn entry;
  void *sym = dlsym(h, AMEIR_MODULE_ENTRY);
  memcpy(&entry, &sym, sizeof entry);
  if (!sym) {
    printf("%s has no %s\n0 passed, 1 failed\n", path, AMEIR_MODULE_ENTRY);
    return 1;
  }
  char reason[768] = "";
  struct ameir__module_host host;
  memset(&host, 0, sizeof host);
  host.abi_version = AMEIR_OPS_ABI_VERSION;
  host.struct_size = sizeof host;
  host.log = h_log;
  host.set_error = h_set_error;
  host.reason = reason;
  host.reason_size = sizeof reason;

  /* a host of another ABI is refused, with both numbers */
  const ameir_ops *ops = NULL;
  int32_t st = entry(AMEIR_OPS_ABI_VERSION + 1, &ops, &host);
  char other[16];
  snprintf(other, sizeof other, "%d", AMEIR_OPS_ABI_VERSION + 1);
  CHECK(st == AMEIR_EVERSION && ops == NULL && strstr(reason, other), "ABI mismatch refused: %s",
        reason);

  st = entry(AMEIR_OPS_ABI_VERSION, &ops, &host);
  char desc[512] = "";
  if (host.describe) host.describe(desc, sizeof desc);
  printf("     describe: %s\n", desc);
  printf("     entry: %d, reason: %s\n", (int)st, reason);
  if (!ops) {
    printf("skip: no usable device (%s)\n%d passed, %d failed, 1 skipped\n", reason, g_pass, g_fail);
    return g_fail ? 1 : 77;
  }
  CHECK(st == AMEIR_OK || (st == AMEIR_EUNSUPPORTED && strstr(reason, "not implemented yet")),
        "handshake with a device: %d", (int)st);
  CHECK(ops->abi_version == AMEIR_OPS_ABI_VERSION && ops->struct_size == sizeof(ameir_ops) &&
            !strcmp(ops->name, "cuda"),
        "table header");

  void *state = NULL;
  st = ops->init(NULL, 4, &state);
  CHECK(st == 0 && state, "init");
  if (!state) goto done;

  enum { N = 1 << 20 };
  float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
  for (int i = 0; i < N; i++) a[i] = (float)i * 0.5f - 3.0f;
  void *d1 = NULL, *d2 = NULL;
  CHECK(ops->alloc(state, N * sizeof(float), &d1) == 0 && d1, "alloc 4 MiB");
  CHECK(ops->alloc(state, N * sizeof(float), &d2) == 0 && d2, "alloc 4 MiB");
  CHECK(((uintptr_t)d1 % 64) == 0, "alloc is 64-byte aligned");
  CHECK(ops->upload(state, d1, a, N * sizeof(float)) == 0, "upload");
  CHECK(ops->copy(state, d2, d1, N * sizeof(float)) == 0, "copy device to device");
  CHECK(ops->sync(state) == 0, "sync");
  memset(b, 0, N * sizeof *b);
  CHECK(ops->download(state, b, d2, N * sizeof(float)) == 0 && !memcmp(a, b, N * sizeof *b),
        "download gives back what was uploaded");
  CHECK(ops->memset0(state, d2, 1000 * sizeof(float)) == 0, "memset0");
  CHECK(ops->download(state, b, d2, N * sizeof(float)) == 0, "download after memset0");
  int zero_ok = 1;
  for (int i = 0; i < N; i++)
    if (b[i] != (i < 1000 ? 0.0f : a[i])) zero_ok = 0;
  CHECK(zero_ok, "memset0 cleared exactly the first 1000 floats");
  CHECK(ops->upload(state, d1, a, 0) == 0 && ops->download(state, b, d1, 0) == 0, "zero bytes");

  /* failures become statuses with the runtime's text, never an abort */
  void *huge = NULL;
  g_err[0] = 0;
  st = ops->alloc(state, (size_t)1 << 50, &huge);
  CHECK(st == AMEIR_ENOMEM && huge == NULL && strstr(g_err, "cudaMalloc"),
        "alloc of 1 PiB fails cleanly: %s", g_err);
  g_err[0] = 0;
  st = ops->download(state, b, (const void *)(uintptr_t)0x10, 64);
  CHECK(st == AMEIR_EBACKEND && strstr(g_err, "CUDA:"), "download from a bad pointer: %s", g_err);
  /* the stream still works after a failed call */
  CHECK(ops->download(state, b, d1, N * sizeof(float)) == 0 && !memcmp(a, b, N * sizeof *b),
        "usable after an error");

  ops->free(state, d1);
  ops->free(state, d2);
  ops->free(state, NULL);
  ops->shutdown(state);
  free(a);
  free(b);
done:
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
