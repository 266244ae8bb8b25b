// libameir_cuda.so: the CUDA backend module (DESIGN.md section 4, src/core/backend/module.h).
//
// It exports one symbol, ameir_backend_module_v1 (src/cuda/module.map hides everything else),
// and reaches libameir only through the host services it is handed: it never links against
// libameir, so it serves the shared library and programs linking libameir.a alike.
//
// The ops themselves live in the other src/cuda/*.cu files (cu.h states their conventions);
// this file holds the handshake, the device probe, describe, the state (stream, cuBLAS handle,
// scratch stack, lock), the memory ops and the table. No op uses cuDNN: the convolutions are
// 1-D over short sequences with a per-row length mask and the GRU runs packed sequences of
// ragged length, both simpler as cuBLAS GEMMs plus own kernels; cuDNN is only looked up (with
// dlopen, so the module loads without it) to report its version.
//
// Never aborts, never prints: every failure is a status plus a message through the host.

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "cu.h"

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// Host services, set at each handshake (always the same functions of the libameir that loaded
// us; atomics only so that two contexts created at once do not race formally).
std::atomic<void (*)(const struct ameir_context *, int32_t, const char *)> g_log{nullptr};
std::atomic<int32_t (*)(struct ameir_context *, int32_t, const char *)> g_set_error{nullptr};

void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
void fmt(char *buf, size_t size, const char *f, ...) {
  if (!buf || !size) return;
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, size, f, ap);
  va_end(ap);
}

int32_t vfail(struct ameir_context *ctx, int32_t status, const char *f, va_list ap) {
  char msg[768];
  vsnprintf(msg, sizeof msg, f, ap);
  auto set = g_set_error.load();
  return set ? set(ctx, status, msg) : status;
}

int32_t fail(struct ameir_context *ctx, int32_t status, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
int32_t fail(struct ameir_context *ctx, int32_t status, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int32_t st = vfail(ctx, status, f, ap);
  va_end(ap);
  return st;
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

// Turns a failed CUDA call into AMEIR_EBACKEND (AMEIR_ENOMEM for memory) with the runtime's
// own text, and clears the runtime's last error so the next call starts clean. A sticky error
// (an illegal address in a kernel) cannot be cleared: every later call fails the same way,
// and the message says the context is lost.
int32_t cuda_fail(struct ameir_context *ctx, cudaError_t e, const char *what) {
  (void)cudaGetLastError();
  int32_t st = e == cudaErrorMemoryAllocation ? AMEIR_ENOMEM : AMEIR_EBACKEND;
  return fail(ctx, st, "CUDA: %s failed: %s (%s)", what, cudaGetErrorString(e),
              cudaGetErrorName(e));
}

// ---- lifetime ----
void destroy_state(cuda_state *s) {
  if (!s) return;
  cudaError_t e = s->stream ? cudaStreamSynchronize(s->stream) : cudaSuccess;
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    log_msg(s->ctx, AMEIR_LOG_WARN, "CUDA: shutting the backend down: %s", cudaGetErrorString(e));
  }
  for (int i = 0; i < s->n_chunks; i++) cudaFree(s->chunks[i].base);
  if (s->pinned) cudaFreeHost(s->pinned);
  if (s->blas) cublasDestroy(s->blas);
  if (s->stream) cudaStreamDestroy(s->stream);
  (void)cudaGetLastError();
  delete s;
}

int32_t op_init(struct ameir_context *ctx, int32_t threads, void **state) {
  (void)threads;  // the CPU thread count does not apply to the device
  *state = nullptr;
  auto *s = new (std::nothrow) cuda_state();
  if (!s) return fail(ctx, AMEIR_ENOMEM, "out of memory creating the CUDA backend state");
  s->ctx = ctx;
  s->device = 0;
  cudaError_t e = cudaSetDevice(s->device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&s->sm_count, cudaDevAttrMultiProcessorCount, 0);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaMallocHost(&s->pinned, 64);
  if (e != cudaSuccess) {
    int32_t st = cuda_fail(ctx, e, "creating the device context, stream and staging of device 0");
    destroy_state(s);
    return st;
  }
  cublasStatus_t be = cublasCreate(&s->blas);
  if (be == CUBLAS_STATUS_SUCCESS) be = cublasSetStream(s->blas, s->stream);
  // fp32 everywhere: no TF32 tensor-core rounding, so results match the CPU to ~1e-6
  if (be == CUBLAS_STATUS_SUCCESS) be = cublasSetMathMode(s->blas, CUBLAS_PEDANTIC_MATH);
  if (be != CUBLAS_STATUS_SUCCESS) {
    int32_t st = fail(ctx, AMEIR_EBACKEND, "cuBLAS: creating the handle failed: %s (%s)",
                      cublasGetStatusString(be), cublasGetStatusName(be));
    if (be != CUBLAS_STATUS_SUCCESS && s->blas) {
      cublasDestroy(s->blas);
      s->blas = nullptr;
    }
    destroy_state(s);
    return st;
  }
  *state = s;
  return AMEIR_OK;
}

void op_shutdown(void *state) { destroy_state(static_cast<cuda_state *>(state)); }

int32_t op_set_threads(void *state, int32_t threads) {
  (void)state;
  (void)threads;
  return AMEIR_OK;
}

// ---- memory ----
int32_t op_alloc(void *state, size_t bytes, void **dev) {
  CU_ENTER(state);
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
  if (!dev) return;
  CU_ENTER(state);
  // cudaFree waits for the device, so memory still read by queued kernels is not reused early
  cudaError_t e = cudaFree(dev);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    log_msg(s->ctx, AMEIR_LOG_WARN, "CUDA: cudaFree failed: %s", cudaGetErrorString(e));
  }
}

// upload and download wait for the copy: the caller may reuse or read its host buffer as soon
// as they return (the core passes pageable memory).
int32_t op_upload(void *state, void *dst, const void *src, size_t bytes) {
  CU_ENTER(state);
  if (!bytes) return AMEIR_OK;
  CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream),
           "cudaMemcpyAsync (upload)");
  CU_CHECK(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (upload)");
  return AMEIR_OK;
}

int32_t op_download(void *state, void *dst, const void *src, size_t bytes) {
  CU_ENTER(state);
  if (!bytes) return AMEIR_OK;
  CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream),
           "cudaMemcpyAsync (download)");
  CU_CHECK(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (download)");
  return AMEIR_OK;
}

// Pinned host memory for the pipelined staging (upload_async/download_async): the copies
// then run as DMA behind the queued kernels instead of through the driver's bounce buffer.
int32_t op_host_alloc(void *state, size_t bytes, void **host) {
  CU_ENTER(state);
  *host = nullptr;
  cudaError_t e = cudaHostAlloc(host, bytes ? bytes : 1, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    *host = nullptr;
    (void)cudaGetLastError();
    int32_t st = e == cudaErrorMemoryAllocation ? AMEIR_ENOMEM : AMEIR_EBACKEND;
    return fail(s->ctx, st, "CUDA: cudaHostAlloc of %zu bytes failed: %s (%s)", bytes,
                cudaGetErrorString(e), cudaGetErrorName(e));
  }
  return AMEIR_OK;
}

void op_host_free(void *state, void *host) {
  if (!host) return;
  CU_ENTER(state);
  // waits for the device: a copy still queued from this buffer finishes first
  cudaError_t e = cudaFreeHost(host);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    log_msg(s->ctx, AMEIR_LOG_WARN, "CUDA: cudaFreeHost failed: %s", cudaGetErrorString(e));
  }
}

// queued behind the work already on the stream; the caller syncs before touching `src`/`dst`
int32_t op_upload_async(void *state, void *dst, const void *src, size_t bytes) {
  CU_ENTER(state);
  if (!bytes) return AMEIR_OK;
  CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s->stream),
           "cudaMemcpyAsync (asynchronous upload)");
  return AMEIR_OK;
}

int32_t op_download_async(void *state, void *dst, const void *src, size_t bytes) {
  CU_ENTER(state);
  if (!bytes) return AMEIR_OK;
  CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s->stream),
           "cudaMemcpyAsync (asynchronous download)");
  return AMEIR_OK;
}

int32_t op_memset0(void *state, void *dev, size_t bytes) {
  CU_ENTER(state);
  if (!bytes) return AMEIR_OK;
  CU_CHECK(cudaMemsetAsync(dev, 0, bytes, s->stream), "cudaMemsetAsync");
  return AMEIR_OK;
}

int32_t op_copy(void *state, void *dst, const void *src, size_t bytes) {
  CU_ENTER(state);
  if (!bytes) return AMEIR_OK;
  CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream),
           "cudaMemcpyAsync (device to device)");
  return AMEIR_OK;
}

int32_t op_sync(void *state) {
  CU_ENTER(state);
  CU_CHECK(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize");
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
  t.host_alloc = op_host_alloc;
  t.host_free = op_host_free;
  t.upload_async = op_upload_async;
  t.download_async = op_download_async;
  t.gemm = cu_gemm;
  t.gemm_strided_batched = cu_gemm_strided_batched;
  t.add_bias = cu_add_bias;
  t.bias_grad = cu_bias_grad;
  t.copy2d = cu_copy2d;
  t.axpby = cu_axpby;
  t.emb_sum_fwd = cu_emb_sum_fwd;
  t.emb_grad_rows = cu_emb_grad_rows;
  t.act_fwd = cu_act_fwd;
  t.act_bwd = cu_act_bwd;
  t.dice_fwd = cu_dice_fwd;
  t.dice_bwd = cu_dice_bwd;
  t.layernorm_fwd = cu_layernorm_fwd;
  t.layernorm_bwd = cu_layernorm_bwd;
  t.dropout_fwd = cu_dropout_fwd;
  t.dropout_bwd = cu_dropout_bwd;
  t.hadamard_fwd = cu_hadamard_fwd;
  t.hadamard_bwd = cu_hadamard_bwd;
  t.fm_fwd = cu_fm_fwd;
  t.fm_bwd = cu_fm_bwd;
  t.se_fwd = cu_se_fwd;
  t.se_bwd = cu_se_bwd;
  t.bce_logits = cu_bce_logits;
  t.adam_dense = cu_adam_dense;
  t.adam_rows = cu_adam_rows;
  t.adam_table_dense = cu_adam_table_dense;
  t.sumsq = cu_sumsq;
  t.seq_mask = cu_seq_mask;
  t.conv1d_fwd = cu_conv1d_fwd;
  t.conv1d_bwd = cu_conv1d_bwd;
  t.pool3_fwd = cu_pool3_fwd;
  t.pool3_bwd = cu_pool3_bwd;
  t.gru_fwd = cu_gru_fwd;
  t.gru_bwd = cu_gru_bwd;
  t.mha_fwd = cu_mha_fwd;
  t.mha_bwd = cu_mha_bwd;
  t.din_fwd = cu_din_fwd;
  t.din_bwd = cu_din_bwd;
  t.readout_fwd = cu_readout_fwd;
  t.readout_bwd = cu_readout_bwd;
  t.dot_rows_fwd = cu_dot_rows_fwd;
  t.dot_rows_bwd = cu_dot_rows_bwd;
  t.cross_fwd = cu_cross_fwd;
  t.cross_bwd = cu_cross_bwd;
  t.cin_fwd = cu_cin_fwd;
  t.cin_bwd = cu_cin_bwd;
  t.emb_fields_fwd = cu_emb_fields_fwd;
  t.field_scale_fwd = cu_field_scale_fwd;   // FiBiNET
  t.field_scale_bwd = cu_field_scale_bwd;
  // Caser read-out
  t.caser_fwd = cu_caser_fwd;
  t.caser_bwd = cu_caser_bwd;
  // scratch_bytes / set_thread_scratch stay NULL: a caller's host block cannot hold device
  // buffers, so the core refuses caller workspaces on this backend (src/core/train/predict.c).
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
  // cuDNN: no op needs it (see the top of this file); report the one the loader would find
  char dnn_text[64] = "cuDNN not found (no op uses it)";
  if (void *h = dlopen("libcudnn.so.9", RTLD_LAZY | RTLD_LOCAL)) {
    size_t (*get)(void) = nullptr;
    void *sym = dlsym(h, "cudnnGetVersion");
    memcpy(&get, &sym, sizeof get);
    if (get) {
      size_t dnn = get();  // 9.19.0 -> 91900
      fmt(dnn_text, sizeof dnn_text, "cuDNN %zu.%zu.%zu (no op uses it)", dnn / 10000,
          (dnn % 10000) / 100, dnn % 100);
    }
    dlclose(h);
  }
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
      "CUDA runtime %s (built with %d.%d), driver %s, cuBLAS %d.%d.%d, %s; %s", rts,
      CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10, drvs, bl_major, bl_minor, bl_patch,
      dnn_text, dev);
}

}  // namespace

// ---- services of cu.h ----
int32_t cu_fail(cuda_state *s, int32_t status, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int32_t st = vfail(s ? s->ctx : nullptr, status, f, ap);
  va_end(ap);
  return st;
}

int32_t cu_cuda_fail(cuda_state *s, cudaError_t e, const char *what) {
  return cuda_fail(s ? s->ctx : nullptr, e, what);
}

int32_t cu_blas_fail(cuda_state *s, cublasStatus_t e, const char *what) {
  (void)cudaGetLastError();
  int32_t st = e == CUBLAS_STATUS_ALLOC_FAILED ? AMEIR_ENOMEM : AMEIR_EBACKEND;
  return fail(s ? s->ctx : nullptr, st, "cuBLAS: %s failed: %s (%s)", what,
              cublasGetStatusString(e), cublasGetStatusName(e));
}

int32_t cu_fetch_small(cuda_state *s, void *host_dst, const void *dev_src, size_t bytes) {
  if (bytes > 64) return cu_fail(s, AMEIR_EINVAL, "cuda: cu_fetch_small of %zu bytes", bytes);
  CU_CHECK(cudaMemcpyAsync(s->pinned, dev_src, bytes, cudaMemcpyDeviceToHost, s->stream),
           "cudaMemcpyAsync (result to host)");
  CU_CHECK(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (result to host)");
  memcpy(host_dst, s->pinned, bytes);
  return AMEIR_OK;
}

// The scratch stack. Pushes go to the top chunk; one that does not fit moves to the next chunk
// (allocated, or replaced by a bigger one, only when nothing in it is in use). Memory released
// by a scope may still be read by kernels queued before: reuse is safe because every kernel
// runs on the one stream, and a chunk is only freed after the stream is drained. When the
// outermost scope ends with more than one chunk, they are merged into one chunk of the high
// water mark, so a steady training loop ends up with one allocation and no cudaMalloc per step.
cu_scratch_scope::cu_scratch_scope(cuda_state *s)
    : s_(s), chunk_(s->top_chunk), off_(s->top_off), in_use_(s->in_use), status_(AMEIR_OK) {
  s->depth++;
}

cu_scratch_scope::~cu_scratch_scope() {
  cuda_state *s = s_;
  s->top_chunk = chunk_;
  s->top_off = off_;
  s->in_use = in_use_;
  if (--s->depth == 0 && s->n_chunks > 1) {
    if (cudaStreamSynchronize(s->stream) == cudaSuccess) {
      for (int i = 0; i < s->n_chunks; i++) cudaFree(s->chunks[i].base);
      s->n_chunks = 0;
      size_t cap = s->high_water + s->high_water / 4 + (1u << 20);
      void *p = nullptr;
      if (cudaMalloc(&p, cap) == cudaSuccess) {
        s->chunks[0].base = static_cast<char *>(p);
        s->chunks[0].cap = cap;
        s->n_chunks = 1;
      }
    }
    (void)cudaGetLastError();  // a failure here only costs an allocation at the next push
    s->top_chunk = 0;
    s->top_off = 0;
  }
}

void *cu_scratch_scope::get(size_t bytes) {
  cuda_state *s = s_;
  size_t need = (bytes + 255) & ~(size_t)255;
  if (!need) need = 256;
  int c = s->top_chunk;
  size_t off = s->top_off;
  if (c < s->n_chunks && off + need <= s->chunks[c].cap) {
    s->top_off = off + need;
  } else {
    // next chunk: the ones above the top hold nothing in use
    c = (c < s->n_chunks && off > 0) ? c + 1 : c;
    if (c >= (int)(sizeof s->chunks / sizeof s->chunks[0])) {
      status_ = cu_fail(s, AMEIR_ENOMEM, "cuda: scratch stack exhausted (%d chunks)", c);
      return nullptr;
    }
    if (c < s->n_chunks && s->chunks[c].cap < need) {
      cudaError_t e = cudaStreamSynchronize(s->stream);
      if (e != cudaSuccess) {
        status_ = cuda_fail(s->ctx, e, "cudaStreamSynchronize (scratch)");
        return nullptr;
      }
      for (int i = c; i < s->n_chunks; i++) cudaFree(s->chunks[i].base);
      s->n_chunks = c;
    }
    if (c >= s->n_chunks) {
      size_t prev = c > 0 ? s->chunks[c - 1].cap : 0;
      size_t cap = need > 2 * prev ? need : 2 * prev;
      if (cap < (4u << 20)) cap = 4u << 20;
      void *p = nullptr;
      cudaError_t e = cudaMalloc(&p, cap);
      if (e != cudaSuccess) {
        status_ = cuda_fail(s->ctx, e, "cudaMalloc (scratch)");
        return nullptr;
      }
      s->chunks[c].base = static_cast<char *>(p);
      s->chunks[c].cap = cap;
      s->n_chunks = c + 1;
    }
    s->top_chunk = c;
    off = 0;
    s->top_off = need;
  }
  s->in_use += need;
  if (s->in_use > s->high_water) s->high_water = s->in_use;
  return s->chunks[c].base + off;
}

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
  return AMEIR_OK;
}
