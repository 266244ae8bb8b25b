// libameir_cuda.so: the CUDA backend module (DESIGN.md section 4, src/core/backend/module.h).
//
// It exports one symbol, ameir_backend_module_v1 (src/cuda/module.map hides everything else),
// and reaches libameir only through the host services it is handed: it never links against
// libameir, so it serves the shared library and programs linking libameir.a alike.
//
// State of this module today:
// - the handshake, the device probe and the describe callback are complete;
// - the memory ops (alloc/free/upload/download/memset0/copy/sync) are implemented, each CUDA
//   call checked and turned into AMEIR_EBACKEND carrying cudaGetErrorString's text;
// - the compute ops are NULL: the CUDA issue fills them (cuBLAS for GEMM, cuDNN for the GRU and
//   convolutions, own kernels for the rest). The core would fill NULL *optional* members with
//   the CPU reference, but CPU code cannot read device pointers, so until every required op is
//   here the entry point refuses AFTER confirming that a device exists, with AMEIR_EUNSUPPORTED
//   "CUDA compute ops not implemented yet" (AMEIR_CUDA_COMPUTE_READY below). "auto" then falls
//   back to the CPU quietly. It still hands out its table in that case, so that a test holding
//   its own host services (tests/gpu/cuda_module.c) can exercise the memory ops on a device.
//
// Never aborts, never prints: every failure is a status plus a message through the host.

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/backend/module.h"

// Set to 1 by the CUDA issue once every required op of struct ameir_ops is implemented here.
#define AMEIR_CUDA_COMPUTE_READY 0

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// Host services, set at each handshake (always the same functions of the libameir that loaded
// us; atomics only so that two contexts created at once do not race formally).
std::atomic<void (*)(const struct ameir_context *, int32_t, const char *)> g_log{nullptr};
std::atomic<int32_t (*)(struct ameir_context *, int32_t, const char *)> g_set_error{nullptr};

struct cuda_state {
  struct ameir_context *ctx;
  int device;
  cudaStream_t stream;
};

void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
void fmt(char *buf, size_t size, const char *f, ...) {
  if (!buf || !size) return;
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, size, f, ap);
  va_end(ap);
}

int32_t fail(struct ameir_context *ctx, int32_t status, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
int32_t fail(struct ameir_context *ctx, int32_t status, const char *f, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, f);
  vsnprintf(msg, sizeof msg, f, ap);
  va_end(ap);
  auto set = g_set_error.load();
  return set ? set(ctx, status, msg) : status;
}

void log_msg(struct ameir_context *ctx, int32_t level, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
void log_msg(struct ameir_context *ctx, int32_t level, const char *f, ...) {
  auto log = g_log.load();
  if (!log) return;
  char msg[768];
  va_list ap;
  va_start(ap, f);
  vsnprintf(msg, sizeof msg, f, ap);
  va_end(ap);
  log(ctx, level, msg);
}

// Turns a failed CUDA call into AMEIR_EBACKEND with the runtime's own text, and clears the
// runtime's last error so the next call starts clean.
int32_t cuda_fail(struct ameir_context *ctx, cudaError_t e, const char *what) {
  (void)cudaGetLastError();
  return fail(ctx, AMEIR_EBACKEND, "CUDA: %s failed: %s (%s)", what, cudaGetErrorString(e),
              cudaGetErrorName(e));
}

#define CHECK(st, call, what)                                      \
  do {                                                             \
    cudaError_t e_ = (call);                                       \
    if (e_ != cudaSuccess) return cuda_fail((st)->ctx, e_, what);  \
  } while (0)

// ---- lifetime ----
int32_t op_init(struct ameir_context *ctx, int32_t threads, void **state) {
  (void)threads;  // the CPU thread count does not apply to the device
  *state = nullptr;
  auto *s = static_cast<cuda_state *>(calloc(1, sizeof(cuda_state)));
  if (!s) return fail(ctx, AMEIR_ENOMEM, "out of memory creating the CUDA backend state");
  s->ctx = ctx;
  s->device = 0;
  cudaError_t e = cudaSetDevice(s->device);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    free(s);
    return cuda_fail(ctx, e, "creating the device context and stream of device 0");
  }
  *state = s;
  return AMEIR_OK;
}

void op_shutdown(void *state) {
  auto *s = static_cast<cuda_state *>(state);
  if (!s) return;
  cudaError_t e = cudaStreamSynchronize(s->stream);
  if (e == cudaSuccess) e = cudaStreamDestroy(s->stream);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    log_msg(s->ctx, AMEIR_LOG_WARN, "CUDA: shutting the backend down: %s", cudaGetErrorString(e));
  }
  free(s);
}

int32_t op_set_threads(void *state, int32_t threads) {
  (void)state;
  (void)threads;
  return AMEIR_OK;
}

// ---- memory ----
int32_t op_alloc(void *state, size_t bytes, void **dev) {
  auto *s = static_cast<cuda_state *>(state);
  *dev = nullptr;
  cudaError_t e = cudaMalloc(dev, bytes ? bytes : 1);  // 256-byte aligned, above the 64 asked
  if (e != cudaSuccess) {
    *dev = nullptr;
    (void)cudaGetLastError();
    int32_t st = e == cudaErrorMemoryAllocation ? AMEIR_ENOMEM : AMEIR_EBACKEND;
    return fail(s->ctx, st, "CUDA: cudaMalloc of %zu bytes failed: %s (%s)", bytes,
                cudaGetErrorString(e), cudaGetErrorName(e));
  }
  return AMEIR_OK;
}

void op_free(void *state, void *dev) {
  auto *s = static_cast<cuda_state *>(state);
  if (!dev) return;
  cudaError_t e = cudaFree(dev);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    log_msg(s ? s->ctx : nullptr, AMEIR_LOG_WARN, "CUDA: cudaFree failed: %s",
            cudaGetErrorString(e));
  }
}

// upload and download wait for the copy: the caller may reuse or read its host buffer as soon
// as they return (the core passes pageable memory).
int32_t op_upload(void *state, void *dst, const void *src, size_t bytes) {
  auto *s = static_cast<cuda_state *>(state);
  if (!bytes) return AMEIR_OK;
  CHECK(s, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream),
        "cudaMemcpyAsync (upload)");
  CHECK(s, cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (upload)");
  return AMEIR_OK;
}

int32_t op_download(void *state, void *dst, const void *src, size_t bytes) {
  auto *s = static_cast<cuda_state *>(state);
  if (!bytes) return AMEIR_OK;
  CHECK(s, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream),
        "cudaMemcpyAsync (download)");
  CHECK(s, cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (download)");
  return AMEIR_OK;
}

int32_t op_memset0(void *state, void *dev, size_t bytes) {
  auto *s = static_cast<cuda_state *>(state);
  if (!bytes) return AMEIR_OK;
  CHECK(s, cudaMemsetAsync(dev, 0, bytes, s->stream), "cudaMemsetAsync");
  return AMEIR_OK;
}

int32_t op_copy(void *state, void *dst, const void *src, size_t bytes) {
  auto *s = static_cast<cuda_state *>(state);
  if (!bytes) return AMEIR_OK;
  CHECK(s, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream),
        "cudaMemcpyAsync (device to device)");
  return AMEIR_OK;
}

int32_t op_sync(void *state) {
  auto *s = static_cast<cuda_state *>(state);
  CHECK(s, cudaStreamSynchronize(s->stream), "cudaStreamSynchronize");
  return AMEIR_OK;
}

ameir_ops make_table() {
  ameir_ops t;
  memset(&t, 0, sizeof t);
  t.abi_version = AMEIR_OPS_ABI_VERSION;
  t.struct_size = (uint32_t)sizeof(ameir_ops);
  t.name = "cuda";
  t.init = op_init;
  t.shutdown = op_shutdown;
  t.set_threads = op_set_threads;
  t.alloc = op_alloc;
  t.free = op_free;
  t.upload = op_upload;
  t.download = op_download;
  t.memset0 = op_memset0;
  t.copy = op_copy;
  t.sync = op_sync;
  // Compute ops (gemm ... sumsq): NULL until the CUDA issue implements them; see the comment at
  // the top of this file for why the module refuses to run meanwhile.
  return t;
}

const ameir_ops *table() {
  static const ameir_ops t = make_table();  // thread-safe initialisation (C++11)
  return &t;
}

// "13.0" from 13000
void cuda_version_text(int v, char *buf, size_t size) {
  if (v <= 0)
    fmt(buf, size, "none");
  else
    fmt(buf, size, "%d.%d", v / 1000, (v % 1000) / 10);
}

// Why this machine cannot run CUDA, or "" if a device answers (then *count is set).
void probe(int *count, char *why, size_t size) {
  *count = 0;
  why[0] = 0;
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);  // 0 when no driver is installed
  char rts[16], drvs[16];
  cuda_version_text(rt, rts, sizeof rts);
  cuda_version_text(drv, drvs, sizeof drvs);
  cudaError_t e = cudaGetDeviceCount(count);
  (void)cudaGetLastError();
  if (e == cudaSuccess && *count > 0) return;
  *count = 0;
  if (e == cudaErrorInsufficientDriver && drv == 0)
    fmt(why, size, "no CUDA driver: libcuda.so.1 (the NVIDIA driver) is not installed or not "
        "on the loader path");
  else if (e == cudaErrorInsufficientDriver)
    fmt(why, size, "no usable CUDA driver: driver %s is older than the CUDA %s runtime this "
        "module was built with", drvs, rts);
  else if (e == cudaErrorStubLibrary)
    fmt(why, size, "no CUDA driver: the libcuda.so found is the toolkit's stub, not the NVIDIA "
        "driver");
  else if (e == cudaSuccess || e == cudaErrorNoDevice)
    fmt(why, size, "no CUDA device: driver %s answers but reports no device (check "
        "CUDA_VISIBLE_DEVICES and nvidia-smi)", drvs);
  else
    fmt(why, size, "no CUDA device usable: cudaGetDeviceCount failed: %s (%s; driver %s, "
        "runtime %s)", cudaGetErrorString(e), cudaGetErrorName(e), drvs, rts);
}

void describe(char *buf, size_t size) {
  if (!buf || !size) return;
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  char rts[16], drvs[16];
  cuda_version_text(rt, rts, sizeof rts);
  cuda_version_text(drv, drvs, sizeof drvs);
  int bl_major = 0, bl_minor = 0, bl_patch = 0;
  cublasGetProperty(MAJOR_VERSION, &bl_major);
  cublasGetProperty(MINOR_VERSION, &bl_minor);
  cublasGetProperty(PATCH_LEVEL, &bl_patch);
  size_t dnn = cudnnGetVersion();  // 9.19.0 -> 91900
  int n = 0;
  char why[384];
  probe(&n, why, sizeof why);
  char dev[256] = "";
  if (n > 0) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess)
      fmt(dev, sizeof dev, "%d device(s), 0: %s (sm_%d%d, %.1f GiB)", n, p.name, p.major, p.minor,
          (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    else
      fmt(dev, sizeof dev, "%d device(s)", n);
    (void)cudaGetLastError();
  } else {
    fmt(dev, sizeof dev, "%s", why);
  }
  fmt(buf, size,
      "CUDA runtime %s (built with %d.%d), driver %s, cuBLAS %d.%d.%d, cuDNN %zu.%zu.%zu "
      "(built with %d.%d.%d); %s",
      rts, CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10, drvs, bl_major, bl_minor,
      bl_patch, dnn / 10000, (dnn % 10000) / 100, dnn % 100, CUDNN_MAJOR, CUDNN_MINOR,
      CUDNN_PATCHLEVEL, dev);
}

}  // namespace

// The one exported symbol: the handshake of src/core/backend/module.h.
EXPORT int32_t ameir_backend_module_v1(uint32_t host_abi, const ameir_ops **ops,
                                       struct ameir__module_host *host) {
  if (ops) *ops = nullptr;
  if (!host || !ops) return AMEIR_EINVAL;
  // The host struct only grows at its end: read and write only the part both sides know.
  const size_t need = offsetof(struct ameir__module_host, describe) + sizeof host->describe;
  char *reason = host->reason;
  size_t reason_size = host->reason_size;
  if (reason && reason_size) reason[0] = 0;
  if (host->struct_size < need) {
    fmt(reason, reason_size, "host services struct of %u bytes, the module needs %zu",
        (unsigned)host->struct_size, need);
    return AMEIR_EVERSION;
  }
  host->module_abi = AMEIR_OPS_ABI_VERSION;
  host->describe = describe;
  if (host_abi != AMEIR_OPS_ABI_VERSION || host->abi_version != AMEIR_OPS_ABI_VERSION) {
    fmt(reason, reason_size,
        "the module was built for ops ABI version %u, libameir has ops ABI version %u (rebuild "
        "the module with this libameir)",
        (unsigned)AMEIR_OPS_ABI_VERSION, (unsigned)host_abi);
    return AMEIR_EVERSION;
  }
  g_log.store(host->log);
  g_set_error.store(host->set_error);

  int count = 0;
  char why[384];
  probe(&count, why, sizeof why);
  if (count == 0) {
    fmt(reason, reason_size, "%s", why);
    return AMEIR_EUNSUPPORTED;
  }
  *ops = table();
#if !AMEIR_CUDA_COMPUTE_READY
  {
    cudaDeviceProp p;
    const char *name = cudaGetDeviceProperties(&p, 0) == cudaSuccess ? p.name : "?";
    (void)cudaGetLastError();
    fmt(reason, reason_size,
        "CUDA compute ops not implemented yet (found %d device(s), 0: %s; this module has the "
        "memory ops only): use the cpu backend",
        count, name);
    return AMEIR_EUNSUPPORTED;
  }
#else
  return AMEIR_OK;
#endif
}
