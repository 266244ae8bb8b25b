// Shared internals of the CUDA backend module (libameir_cuda.so). Not a public header.
//
// Conventions every src/cuda/*.cu file follows
// - Each op of struct ameir_ops is a function cu_<member> with the member's exact signature,
//   defined in one of the files below and wired into the table by module.cu. Semantics are those
//   written in src/core/backend/ops.h; the CPU backend (src/cpu) is the reference the parity
//   oracle (tests/gpu/parity.c) compares against, op by op.
// - Every op starts with CU_ENTER(state): it takes the state's (recursive) lock, so one backend
//   instance may be called from several host threads (a model serving predict from many
//   threads); the work itself is queued on the state's one stream, so it runs in call order.
// - Every op enqueues on s->stream only, never on the legacy default stream, and never
//   synchronises unless it must hand a value to the host (emb_grad_rows' count, the loss,
//   sumsq). Every launch is followed by CU_LAUNCHED, every runtime call wrapped in CU_CHECK,
//   every cuBLAS call in CU_BLAS: a failure becomes AMEIR_EBACKEND (AMEIR_ENOMEM for memory)
//   with the runtime's text, through the host's set_error. Nothing aborts, nothing prints.
// - Deterministic: no floating-point atomics. A reduction's order depends on the shape only
//   (fixed block sizes, tree reductions in a fixed order), so two runs give the same bits.
// - Temporary device memory comes from the state's scratch stack (cu_scratch below), never
//   from cudaMalloc in an op. Pushes are released when the cu_scratch_scope ends; since every
//   kernel runs on the one stream, memory released by one op and reused by the next is safe.
#ifndef AMEIR_CUDA_CU_H
#define AMEIR_CUDA_CU_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

#include "core/backend/module.h"

struct cuda_state {
  struct ameir_context *ctx;
  int device;
  int sm_count;
  cudaStream_t stream;
  cublasHandle_t blas;
  std::recursive_mutex mu;
  // scratch stack: chunks that never move while in use; see cu_scratch_*
  struct chunk {
    char *base;
    size_t cap;
  } chunks[16];
  int n_chunks;
  int top_chunk;     // chunk the next push goes to
  size_t top_off;    // offset in it
  size_t high_water; // most bytes in use at once (the size a consolidation allocates)
  size_t in_use;
  int depth;         // open scopes
  // pinned host staging for values an op hands to the host (counts, losses)
  void *pinned;
};

// ---- errors (module.cu) ----
int32_t cu_fail(cuda_state *s, int32_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int32_t cu_cuda_fail(cuda_state *s, cudaError_t e, const char *what);
int32_t cu_blas_fail(cuda_state *s, cublasStatus_t e, const char *what);

#define CU_ENTER(state)                                   \
  cuda_state *s = static_cast<cuda_state *>(state);       \
  std::lock_guard<std::recursive_mutex> cu_lock_(s->mu)

#define CU_CHECK(call, what)                                 \
  do {                                                       \
    cudaError_t e_ = (call);                                 \
    if (e_ != cudaSuccess) return cu_cuda_fail(s, e_, what); \
  } while (0)

// after every <<<>>> launch: catches bad configurations and earlier asynchronous faults
#define CU_LAUNCHED(what) CU_CHECK(cudaGetLastError(), what)

#define CU_BLAS(call, what)                                            \
  do {                                                                 \
    cublasStatus_t e_ = (call);                                        \
    if (e_ != CUBLAS_STATUS_SUCCESS) return cu_blas_fail(s, e_, what); \
  } while (0)

// propagate a status from a helper that already set the error
#define CU_TRY(call)              \
  do {                            \
    int32_t st_ = (call);         \
    if (st_ != 0) return st_;     \
  } while (0)

// ---- launch helpers ----
constexpr int CU_THREADS = 256;
// blocks for a grid-stride loop over n items (capped; kernels must loop)
static inline unsigned cu_blocks(int64_t n, int threads = CU_THREADS) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535LL * 8) b = 65535LL * 8;
  return (unsigned)b;
}
#define CU_GRID_STRIDE(i, n)                                                            \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n); \
       i += (int64_t)blockDim.x * gridDim.x)

// ---- scratch stack (module.cu) ----
// Usage inside an op (after CU_ENTER):
//   cu_scratch_scope sc(s);
//   float *tmp = (float *)sc.get(bytes);  if (!tmp) return sc.status();
// Pointers stay valid until the scope ends; scopes nest (an op may call another op).
class cu_scratch_scope {
 public:
  explicit cu_scratch_scope(cuda_state *s);
  ~cu_scratch_scope();
  void *get(size_t bytes);  // 256-byte aligned; nullptr on failure (error set)
  int32_t status() const { return status_; }
  cu_scratch_scope(const cu_scratch_scope &) = delete;
  cu_scratch_scope &operator=(const cu_scratch_scope &) = delete;

 private:
  cuda_state *s_;
  int chunk_;
  size_t off_, in_use_;
  int32_t status_;
};

// Waits for the stream and copies `bytes` from device src to host dst through the state's
// pinned staging buffer (at most 64 bytes): for counts and losses.
int32_t cu_fetch_small(cuda_state *s, void *host_dst, const void *dev_src, size_t bytes);

// ---- ops (signatures of struct ameir_ops), by file ----
extern "C++" {
// cu_blas.cu
int32_t cu_gemm(void *, int32_t, int32_t, int64_t, int64_t, int64_t, float, const float *, int64_t,
                const float *, int64_t, float, float *, int64_t);
int32_t cu_gemm_strided_batched(void *, int32_t, int32_t, int64_t, int64_t, int64_t, float,
                                const float *, int64_t, int64_t, const float *, int64_t, int64_t,
                                float, float *, int64_t, int64_t, int64_t);
int32_t cu_add_bias(void *, float *, int64_t, const float *, int64_t, int64_t);
int32_t cu_bias_grad(void *, const float *, int64_t, float *, int64_t, int64_t);
int32_t cu_copy2d(void *, float *, int64_t, const float *, int64_t, int64_t, int64_t, int32_t);
int32_t cu_axpby(void *, int64_t, float, const float *, float, float *);
// cu_act.cu
int32_t cu_act_fwd(void *, int32_t, const float *, float *, int64_t);
int32_t cu_act_bwd(void *, int32_t, const float *, const float *, const float *, float *, int64_t);
int32_t cu_dice_fwd(void *, const float *, float *, int64_t, int64_t, const float *, float *,
                    float *, float, int32_t, float *);
int32_t cu_dice_bwd(void *, const float *, const float *, float *, int64_t, int64_t, const float *,
                    float *, float, const float *);
int32_t cu_layernorm_fwd(void *, const float *, float *, int64_t, int64_t, const float *,
                         const float *, float, float *);
int32_t cu_layernorm_bwd(void *, const float *, const float *, float *, int64_t, int64_t,
                         const float *, float *, float *, const float *);
int32_t cu_dropout_fwd(void *, const float *, float *, uint8_t *, int64_t, float, uint64_t,
                       uint64_t);
int32_t cu_dropout_bwd(void *, const float *, float *, const uint8_t *, int64_t, float);
int32_t cu_bce_logits(void *, const float *, const float *, int64_t, float, double *, float *,
                      float *);
int32_t cu_adam_dense(void *, float *, const float *, float *, float *, int64_t, float, float,
                      float, float, float, int64_t);
int32_t cu_adam_rows(void *, float *, int64_t, const int32_t *, const float *, int64_t, float *,
                     float *, float, float, float, float, float, int64_t);
int32_t cu_adam_table_dense(void *, float *, int64_t, int64_t, const int32_t *, const float *,
                            int64_t, float *, float *, float, float, float, float, float, int64_t);
int32_t cu_sumsq(void *, const float *, int64_t, double *);
// cu_emb.cu
int32_t cu_emb_sum_fwd(void *, const float *, int64_t, const int32_t *, int64_t, int64_t, float *,
                       int64_t);
int32_t cu_emb_fields_fwd(void *, const float *, int64_t, const int32_t *, int64_t, int64_t, float *,
                          int64_t);
int32_t cu_emb_grad_rows(void *, const int32_t *, const int32_t *, int64_t, const float *, int64_t,
                         int64_t, int32_t *, float *, int64_t *);
int32_t cu_dot_rows_fwd(void *, const float *, int64_t, const int32_t *, int64_t, int64_t,
                        const float *, float *);
int32_t cu_dot_rows_bwd(void *, const float *, int64_t, const int32_t *, int64_t, int64_t,
                        const float *, const float *, float *, float *);
int32_t cu_hadamard_fwd(void *, const float *, int64_t, int64_t, int64_t, const int32_t *,
                        const int32_t *, int64_t, int64_t, float *, int64_t);
int32_t cu_hadamard_bwd(void *, const float *, int64_t, int64_t, int64_t, const int32_t *,
                        const int32_t *, int64_t, int64_t, const float *, int64_t, float *);
int32_t cu_fm_fwd(void *, const float *, int64_t, int64_t, int64_t, int64_t, float *, int32_t);
int32_t cu_fm_bwd(void *, const float *, int64_t, int64_t, int64_t, int64_t, const float *,
                  float *);
int32_t cu_se_fwd(void *, const float *, int64_t, int64_t, int64_t, int64_t, const float *,
                  const float *, const float *, int64_t, const float *, const float *, float *,
                  int64_t, float *);
int32_t cu_se_bwd(void *, const float *, int64_t, int64_t, int64_t, int64_t, const float *,
                  const float *, const float *, int64_t, const float *, const float *,
                  const float *, int64_t, const float *, float *, float *, float *, float *,
                  float *, float *);
// cu_seq.cu
int32_t cu_seq_mask(void *, float *, const float *, const int32_t *, int64_t, int64_t, int64_t);
int32_t cu_conv1d_fwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t,
                      const float *, const float *, int32_t, int32_t, float *);
int32_t cu_conv1d_bwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t,
                      const float *, int32_t, int32_t, const float *, float *, float *, float *);
int32_t cu_pool3_fwd(void *, int32_t, const float *, const int32_t *, int64_t, int64_t, int64_t,
                     float *, int32_t *);
int32_t cu_pool3_bwd(void *, int32_t, const int32_t *, int64_t, int64_t, int64_t, const float *,
                     const int32_t *, float *);
int32_t cu_readout_fwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t, float *,
                       int64_t, float *, int64_t);
int32_t cu_readout_bwd(void *, const int32_t *, int64_t, int64_t, int64_t, const float *, int64_t,
                       const float *, int64_t, float *);
// cu_gru.cu
int32_t cu_gru_fwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t,
                   const float *, float *, float *);
int32_t cu_gru_bwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t,
                   const float *, const float *, const float *, float *, float *);
// cu_attn.cu
int32_t cu_mha_fwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t, int32_t,
                   const float *, float *, float *);
int32_t cu_mha_bwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t, int32_t,
                   const float *, const float *, const float *, float *, float *);
int32_t cu_din_fwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t,
                   const float *, int64_t, int32_t, int32_t, const float *, float *, int64_t,
                   float *, float *);
int32_t cu_din_bwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t,
                   const float *, int64_t, int32_t, int32_t, const float *, const float *,
                   int64_t, const float *, const float *, float *, float *, float *);
// cu_zoo.cu
int32_t cu_cross_fwd(void *, const float *, int64_t, const float *, int64_t, const float *,
                     const float *, int64_t, int64_t, float *, int64_t);
int32_t cu_cross_bwd(void *, const float *, int64_t, const float *, int64_t, const float *,
                     int64_t, int64_t, const float *, int64_t, float *, int64_t, float *, int64_t,
                     float *, float *);
int32_t cu_cin_fwd(void *, const float *, int64_t, int64_t, const float *, int64_t, int64_t,
                   int64_t, int64_t, const float *, int64_t, float *, int64_t);
int32_t cu_cin_bwd(void *, const float *, int64_t, int64_t, const float *, int64_t, int64_t,
                   int64_t, int64_t, const float *, int64_t, const float *, int64_t, float *,
                   int64_t, float *, int64_t, float *);
// cu_fibinet.cu
int32_t cu_field_scale_fwd(void *, const float *, int64_t, const float *, int64_t, int64_t,
                           int64_t, float *, int64_t);
int32_t cu_field_scale_bwd(void *, const float *, int64_t, const float *, int64_t, int64_t,
                           int64_t, const float *, int64_t, float *, int64_t, float *);
// cu_caser.cu (Caser read-out)
int32_t cu_caser_fwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t, int32_t,
                     int32_t, int32_t, const float *, float *, int64_t, int32_t *);
int32_t cu_caser_bwd(void *, const float *, const int32_t *, int64_t, int64_t, int64_t, int32_t,
                     int32_t, int32_t, const float *, const float *, int64_t, const int32_t *,
                     float *, float *);
}

#endif
