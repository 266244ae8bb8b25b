/* The CPU backend: the ops table, lifetime, memory, scratch, shared reductions. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/* The thread count of the backend's own parallel regions is passed with num_threads clauses
 * (never omp_set_num_threads). OpenBLAS, however, has only a process-wide setting:
 * openblas_set_num_threads() (with the OpenMP build of OpenBLAS it also sets the calling
 * thread's OpenMP default). init and set_threads call it, so the last context to set its thread
 * count decides how many threads every BLAS call of the process uses. This is the documented
 * effect of the context's "threads" option. */
static void cpu_apply_threads(cpu_state *st, int32_t threads) {
  if (threads <= 0) threads = omp_get_num_procs();
  if (threads < 1) threads = 1;
  st->threads = threads;
  openblas_set_num_threads(threads);
}

static int32_t cpu_init(struct ameir_context *ctx, int32_t threads, void **state) {
  if (!state) return ameir__error(ctx, AMEIR_EINVAL, "cpu backend: init: state is NULL");
  *state = NULL;
  cpu_state *st = calloc(1, sizeof *st);
  if (!st) return ameir__error(ctx, AMEIR_ENOMEM, "cpu backend: out of memory in init");
  st->ctx = ctx;
  st->blas_nested = openblas_get_parallel() != 1;   /* 0 sequential, 1 pthreads, 2 OpenMP */
  cpu_apply_threads(st, threads);
  *state = st;
  return 0;
}

static void cpu_shutdown(void *state) {
  cpu_state *st = state;
  if (!st) return;
  free(st->scratch);
  free(st);
}

static int32_t cpu_set_threads(void *state, int32_t threads) {
  cpu_apply_threads(state, threads);
  return 0;
}

/* ---- memory ---- */

static int32_t cpu_alloc(void *state, size_t bytes, void **dev) {
  cpu_state *st = state;
  void *p = NULL;
  /* round up so vectorised tails may be read as whole cache lines by future kernels */
  size_t sz = bytes ? (bytes + 63) & ~(size_t)63 : 64;
  if (sz < bytes || posix_memalign(&p, 64, sz) != 0) {
    *dev = NULL;
    return ameir__error(st->ctx, AMEIR_ENOMEM, "cpu backend: out of memory allocating %zu bytes",
                        bytes);
  }
  *dev = p;
  return 0;
}

static void cpu_free(void *state, void *dev) {
  AMEIR_UNUSED(state);
  free(dev);
}

static int32_t cpu_upload(void *state, void *dst, const void *src, size_t bytes) {
  AMEIR_UNUSED(state);
  if (bytes) memcpy(dst, src, bytes);
  return 0;
}

static int32_t cpu_memset0(void *state, void *dev, size_t bytes) {
  AMEIR_UNUSED(state);
  if (bytes) memset(dev, 0, bytes);
  return 0;
}

static int32_t cpu_copy(void *state, void *dst, const void *src, size_t bytes) {
  AMEIR_UNUSED(state);
  if (bytes && dst != src) memmove(dst, src, bytes);
  return 0;
}

static int32_t cpu_sync(void *state) {
  AMEIR_UNUSED(state);
  return 0;
}

/* ---- scratch ----
 * The calling thread's own block (set_thread_scratch): while it is set for a state, the ops of
 * that state running on this thread take it as their scratch and allocate none. Every op takes
 * its scratch on its calling thread (outside its parallel regions), so thread-local storage
 * reaches it, and concurrent calls on other threads keep their own blocks or the cached one. */
static _Thread_local struct {
  const cpu_state *st;   /* the state it is set for, NULL: none */
  char *buf;             /* 64-byte aligned */
  size_t size;
  int taken;             /* an op holds it (cpu_scratch_get without cpu_scratch_put yet) */
} t_block;
static _Thread_local int32_t t_scratch_status;

int32_t cpu_scratch_status(void) { return t_scratch_status ? t_scratch_status : AMEIR_ENOMEM; }

static int32_t cpu_set_thread_scratch(void *state, void *buf, size_t size) {
  memset(&t_block, 0, sizeof t_block);
  if (!buf) return 0;
  uintptr_t b0 = (uintptr_t)buf, b = (b0 + 63) & ~(uintptr_t)63;
  t_block.st = state;
  t_block.buf = (char *)b;
  t_block.size = size > (size_t)(b - b0) ? size - (size_t)(b - b0) : 0;
  return 0;
}

static size_t cpu_scratch_bytes(void *state, int32_t op, int64_t b, int64_t t, int64_t d,
                                int32_t arg1, int32_t arg2) {
  const cpu_state *st = state;
  switch (op) {
    case AMEIR_SCRATCH_CONV1D_FWD: return cpu_conv1d_fwd_bound(b, t, d, arg1, arg2);
    case AMEIR_SCRATCH_MHA_FWD: return cpu_mha_fwd_bound(b, t, d, arg1, st->threads);
    case AMEIR_SCRATCH_GRU_FWD: return cpu_gru_fwd_bound(b, t, d);
    case AMEIR_SCRATCH_DIN_FWD: return cpu_din_fwd_bound(b, t, d, arg1, arg2);
    default: return SIZE_MAX;
  }
}

void *cpu_scratch_get(cpu_state *st, size_t bytes) {
  if (bytes == 0) bytes = 64;
  if (t_block.st == st && t_block.buf) {   /* the caller's block: never an allocation */
    if (t_block.taken || bytes > t_block.size) {
      t_scratch_status = AMEIR_EINVAL;
      if (t_block.taken)
        ameir__error(st->ctx, AMEIR_EINVAL,
                     "cpu backend: an op asked for scratch while the thread's block is taken");
      else
        ameir__error(st->ctx, AMEIR_EINVAL,
                     "cpu backend: an op needs %zu bytes of scratch, the thread's block (from "
                     "the caller's workspace) holds %zu",
                     bytes, t_block.size);
      return NULL;
    }
    t_block.taken = 1;
    return t_block.buf;
  }
  atomic_int *busy = &st->scratch_busy;
  if (atomic_exchange(busy, 1) == 0) {
    if (st->scratch_size >= bytes) return st->scratch;
    free(st->scratch);
    st->scratch = NULL;
    st->scratch_size = 0;
    size_t sz = bytes + bytes / 4;   /* grow with some headroom */
    void *p = NULL;
    if (posix_memalign(&p, 64, sz) == 0) {
      st->scratch = p;
      st->scratch_size = sz;
      return p;
    }
    atomic_store(busy, 0);
  } else {
    /* another call is using the cached buffer: a private one */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) == 0) return p;
  }
  t_scratch_status = AMEIR_ENOMEM;
  ameir__error(st->ctx, AMEIR_ENOMEM, "cpu backend: out of memory allocating %zu bytes of scratch",
               bytes);
  return NULL;
}

void cpu_scratch_put(cpu_state *st, void *p) {
  if (!p) return;
  if (t_block.taken && p == t_block.buf) t_block.taken = 0;
  else if (p == st->scratch) atomic_store(&st->scratch_busy, 0);
  else free(p);
}

/* ---- instruction set ---- */

int cpu_avx512(void) {
#if CPU_X86_AVX512
  static atomic_int cached = -1;   /* every thread computes the same value */
  int c = atomic_load_explicit(&cached, memory_order_relaxed);
  if (c < 0) {
    __builtin_cpu_init();
    c = __builtin_cpu_supports("avx512f") ? 1 : 0;
    atomic_store_explicit(&cached, c, memory_order_relaxed);
  }
  return c;
#else
  return 0;
#endif
}

/* ---- shared column reduction ---- */

/* part[0..n) = sum of rows [lo, hi) of x, rows in ascending order. */
static void colsum_rows(const float *x, int64_t ldx, int64_t lo, int64_t hi, int64_t n,
                        float *part) {
  for (int64_t j = 0; j < n; j++) part[j] = 0.0f;
  for (int64_t i = lo; i < hi; i++) {
    const float *r = x + i * ldx;
#pragma omp simd
    for (int64_t j = 0; j < n; j++) part[j] += r[j];
  }
}

/* the partials of chunks [c0, c1) of nc over m rows */
static void colsum_chunks(const float *x, int64_t ldx, int64_t m, int64_t nc, int64_t c0,
                          int64_t c1, int64_t n, float *part) {
  for (int64_t c = c0; c < c1; c++) {
    int64_t lo, hi;
    cpu_chunk_range(m, nc, c, &lo, &hi);
    colsum_rows(x, ldx, lo, hi, n, part + c * n);
  }
}

void cpu_colsum_acc_buf(cpu_state *st, const float *x, int64_t ldx, int64_t m, int64_t n,
                        float *out, float *part) {
  if (m <= 0 || n <= 0) return;
  int64_t nc = cpu_chunks(m);
  int nt = cpu_nt_items(st, m * n, nc);
  CPU_PAR_RANGE(nt, nc, c0, c1, tid, colsum_chunks(x, ldx, m, nc, c0, c1, n, part));
  for (int64_t c = 1; c < nc; c++)
#pragma omp simd
    for (int64_t j = 0; j < n; j++) part[j] += part[c * n + j];
  for (int64_t j = 0; j < n; j++) out[j] += part[j];
}

int32_t cpu_colsum_acc(cpu_state *st, const float *x, int64_t ldx, int64_t m, int64_t n,
                       float *out) {
  if (m <= 0 || n <= 0) return 0;
  int64_t nc = cpu_chunks(m);
  if (nc == 1) {   /* one chunk: no scratch, column blocks on the stack */
    float part[256];
    for (int64_t j0 = 0; j0 < n; j0 += 256) {
      int64_t nb = n - j0 < 256 ? n - j0 : 256;
      colsum_rows(x + j0, ldx, 0, m, nb, part);
      for (int64_t j = 0; j < nb; j++) out[j0 + j] += part[j];
    }
    return 0;
  }
  float *part = cpu_scratch_get(st, (size_t)(nc * n) * sizeof(float));
  if (!part) return cpu_scratch_status();
  cpu_colsum_acc_buf(st, x, ldx, m, n, out, part);
  cpu_scratch_put(st, part);
  return 0;
}

/* ---- the table ---- */

static const ameir_ops cpu_ops = {
    .abi_version = AMEIR_OPS_ABI_VERSION,
    .struct_size = (uint32_t)sizeof(ameir_ops),
    .name = "cpu",
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .set_threads = cpu_set_threads,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_upload,   /* host and device memory are the same here */
    .memset0 = cpu_memset0,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .gemm = ameir__cpu_gemm,
    .gemm_strided_batched = ameir__cpu_gemm_strided_batched,
    .add_bias = ameir__cpu_add_bias,
    .bias_grad = ameir__cpu_bias_grad,
    .copy2d = ameir__cpu_copy2d,
    .axpby = ameir__cpu_axpby,
    .emb_sum_fwd = ameir__cpu_emb_sum_fwd,
    .emb_grad_rows = ameir__cpu_emb_grad_rows,
    .act_fwd = ameir__cpu_act_fwd,
    .act_bwd = ameir__cpu_act_bwd,
    .dice_fwd = ameir__cpu_dice_fwd,
    .dice_bwd = ameir__cpu_dice_bwd,
    .layernorm_fwd = ameir__cpu_layernorm_fwd,
    .layernorm_bwd = ameir__cpu_layernorm_bwd,
    .dropout_fwd = ameir__cpu_dropout_fwd,
    .dropout_bwd = ameir__cpu_dropout_bwd,
    .hadamard_fwd = ameir__cpu_hadamard_fwd,
    .hadamard_bwd = ameir__cpu_hadamard_bwd,
    .fm_fwd = ameir__cpu_fm_fwd,
    .fm_bwd = ameir__cpu_fm_bwd,
    .se_fwd = ameir__cpu_se_fwd,
    .se_bwd = ameir__cpu_se_bwd,
    .bce_logits = ameir__cpu_bce_logits,
    .adam_dense = ameir__cpu_adam_dense,
    .adam_rows = ameir__cpu_adam_rows,
    .adam_table_dense = ameir__cpu_adam_table_dense,
    .sumsq = ameir__cpu_sumsq,
    .seq_mask = ameir__cpu_seq_mask,
    .conv1d_fwd = ameir__cpu_conv1d_fwd,
    .conv1d_bwd = ameir__cpu_conv1d_bwd,
    .pool3_fwd = ameir__cpu_pool3_fwd,
    .pool3_bwd = ameir__cpu_pool3_bwd,
    .gru_fwd = ameir__cpu_gru_fwd,
    .gru_bwd = ameir__cpu_gru_bwd,
    .mha_fwd = ameir__cpu_mha_fwd,
    .mha_bwd = ameir__cpu_mha_bwd,
    .din_fwd = ameir__cpu_din_fwd,
    .din_bwd = ameir__cpu_din_bwd,
    .readout_fwd = ameir__cpu_readout_fwd,
    .readout_bwd = ameir__cpu_readout_bwd,
    .dot_rows_fwd = ameir__cpu_dot_rows_fwd,
    .dot_rows_bwd = ameir__cpu_dot_rows_bwd,
    .scratch_bytes = cpu_scratch_bytes,
    .set_thread_scratch = cpu_set_thread_scratch,
    /* host and device memory are the same: ordinary memory and plain copies */
    .host_alloc = cpu_alloc,
    .host_free = cpu_free,
    .upload_async = cpu_upload,
    .download_async = cpu_upload,
    .cross_fwd = ameir__cpu_cross_fwd,
    .cross_bwd = ameir__cpu_cross_bwd,
    .cin_fwd = ameir__cpu_cin_fwd,
    .cin_bwd = ameir__cpu_cin_bwd,
    .emb_fields_fwd = ameir__cpu_emb_fields_fwd,
    /* FiBiNET */
    .field_scale_fwd = ameir__cpu_field_scale_fwd,
    .field_scale_bwd = ameir__cpu_field_scale_bwd,
    /* Caser read-out */
    .caser_fwd = ameir__cpu_caser_fwd,
    .caser_bwd = ameir__cpu_caser_bwd,
};

const ameir_ops *ameir__cpu_ops(void) { return &cpu_ops; }
