// The CUDA backend: dense linear algebra (cuBLAS sgemm) and the simple dense helpers (bias,
// bias gradient, strided copies, axpby). Reference: src/cpu/cpu_blas.c.
//
// Choices that matter
// - The ops are row-major with row strides; cuBLAS is column-major. A row-major X[r, c] with
//   stride ld is the column-major X^T with the same ld, so C^T = op(B)^T op(A)^T is one column-
//   major sgemm with the operands swapped: (trans_b, trans_a, n, m, k, B, ldb, A, lda, C, ldc).
//   The argument checks are the CPU's (gemm_check), so both backends refuse the same calls.
// - k == 0 or alpha == 0 never calls cuBLAS: C = beta*C by an own kernel that, like the CPU's
//   scale_c, writes zeros for beta == 0 without reading C (NaN in C is not propagated) and
//   leaves C untouched for beta == 1; A and B are not read.
// - bias_grad is a fixed-shape column reduction: column tiles x fixed row chunks (a function of
//   m only), each chunk reduced by a fixed tree in shared memory, then the chunk partials summed
//   in chunk order. No atomics: the bits depend on the shape only.
// - 2-D element-wise kernels index a flat m*n range; they divide in 32 bits when the range
//   fits (64-bit division costs several times as much).
#include <climits>

#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

// ---- C = beta * C over batch matrices [m, n] (row stride ldc, matrix stride sc) ----
template <typename I>
__global__ void k_scale_c(float *c, int64_t ldc, int64_t sc, I m, I n, I total, float beta) {
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (I)blockDim.x * gridDim.x) {
    I j = idx % n, r = idx / n;
    I i = r % m, b = r / m;
    float *p = c + (int64_t)b * sc + (int64_t)i * ldc + (int64_t)j;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

int32_t scale_c(cuda_state *s, float *c, int64_t ldc, int64_t sc, int64_t m, int64_t n,
                int64_t batch, float beta) {
  if (beta == 1.0f) return 0;
  int64_t total = m * n * batch;
  if (total <= 0) return 0;
  if (total <= (int64_t)UINT32_MAX)
    k_scale_c<uint32_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        c, ldc, sc, (uint32_t)m, (uint32_t)n, (uint32_t)total, beta);
  else
    k_scale_c<int64_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(c, ldc, sc, m, n, total,
                                                                       beta);
  CU_LAUNCHED("cuda gemm: scale kernel");
  return 0;
}

int32_t gemm_check(cuda_state *s, const char *op, int32_t ta, int32_t tb, int64_t m, int64_t n,
                   int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  int64_t acols = ta ? m : k, bcols = tb ? k : n;
  if (m < 0 || n < 0 || k < 0 || m > INT_MAX || n > INT_MAX || k > INT_MAX)
    return cu_fail(s, AMEIR_EINVAL, "cuda %s: bad shape m=%lld n=%lld k=%lld", op, (long long)m,
                   (long long)n, (long long)k);
  if (lda < (acols > 1 ? acols : 1) || ldb < (bcols > 1 ? bcols : 1) || ldc < (n > 1 ? n : 1) ||
      lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX)
    return cu_fail(s, AMEIR_EINVAL,
                   "cuda %s: bad leading dimension lda=%lld ldb=%lld ldc=%lld for "
                   "m=%lld n=%lld k=%lld trans=%d,%d",
                   op, (long long)lda, (long long)ldb, (long long)ldc, (long long)m, (long long)n,
                   (long long)k, (int)ta, (int)tb);
  return 0;
}

// ---- y[i, j] += bias[j] ----
template <typename I>
__global__ void k_add_bias(float *y, int64_t ldy, const float *bias, I n, I total) {
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (I)blockDim.x * gridDim.x) {
    I i = idx / n, j = idx - i * n;
    y[(int64_t)i * ldy + (int64_t)j] += bias[j];
  }
}

// ---- dst[i, j] += src[i, j] ----
template <typename I>
__global__ void k_copy2d_acc(float *dst, int64_t ldd, const float *src, int64_t lds, I n,
                             I total) {
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (I)blockDim.x * gridDim.x) {
    I i = idx / n, j = idx - i * n;
    dst[(int64_t)i * ldd + (int64_t)j] += src[(int64_t)i * lds + (int64_t)j];
  }
}

// ---- y = alpha x + beta y (beta == 0: y not read) ----
__global__ void k_axpby(int64_t n, float alpha, const float *x, float beta, float *y) {
  if (beta == 0.0f) {
    CU_GRID_STRIDE(i, n) y[i] = alpha * x[i];
  } else {
    CU_GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta * y[i];
  }
}

// ---- column sums: tiles of cw columns (a power of two <= 32) x ry = 256/cw row lanes (the
// tiling of cu_dev.cuh) ----
// Block (tile, chunk): out[chunk * n + j] = sum of rows [lo, hi) of column j (direct: += into
// out[j] when there is one chunk). Thread (tx, ty) sums rows lo+ty, lo+ty+ry, ... ascending,
// then a tree over ty in a fixed order.
__global__ void k_colsum_part(const float *x, int64_t ldx, int64_t m, int64_t n, int cw,
                              int64_t ntiles, int64_t nchunks, float *out, int direct) {
  __shared__ float sh[COL_THREADS];
  const int ry = COL_THREADS / cw;
  const int tx = threadIdx.x % cw, ty = threadIdx.x / cw;
  for (int64_t blk = blockIdx.x; blk < ntiles * nchunks; blk += gridDim.x) {
    int64_t tile = blk % ntiles, c = blk / ntiles;
    int64_t lo = chunk_lo(m, nchunks, c), hi = chunk_lo(m, nchunks, c + 1);
    int64_t j = tile * cw + tx;
    float acc = 0.0f;
    if (j < n) {
      const float *p = x + j;
      for (int64_t i = lo + ty; i < hi; i += ry) acc += p[i * ldx];
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    col_tree<1>(sh, cw, ry, ty);
    if (ty == 0 && j < n) {
      if (direct) out[j] += sh[tx];
      else out[c * n + j] = sh[tx];
    }
    __syncthreads();  // sh is reused by the next tile
  }
}

// out[j] += sum over chunks c (ascending) of part[c * n + j]
__global__ void k_colsum_combine(const float *part, int64_t n, int64_t nchunks, float *out) {
  CU_GRID_STRIDE(j, n) {
    float acc = 0.0f;
    for (int64_t c = 0; c < nchunks; c++) acc += part[c * n + j];
    out[j] += acc;
  }
}

}  // namespace

int32_t cu_gemm(void *state, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                float *c, int64_t ldc) {
  CU_ENTER(state);
  CU_TRY(gemm_check(s, "gemm", trans_a, trans_b, m, n, k, lda, ldb, ldc));
  if (m == 0 || n == 0) return 0;
  if (k == 0 || alpha == 0.0f) return scale_c(s, c, ldc, 0, m, n, 1, beta);
  CU_BLAS(cublasSgemm(s->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                      trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha, b,
                      (int)ldb, a, (int)lda, &beta, c, (int)ldc),
          "cublasSgemm");
  return 0;
}

int32_t cu_gemm_strided_batched(void *state, int32_t trans_a, int32_t trans_b, int64_t m,
                                int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                                int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b,
                                float beta, float *c, int64_t ldc, int64_t stride_c,
                                int64_t batch_count) {
  CU_ENTER(state);
  CU_TRY(gemm_check(s, "gemm_strided_batched", trans_a, trans_b, m, n, k, lda, ldb, ldc));
  if (batch_count < 0)
    return cu_fail(s, AMEIR_EINVAL, "cuda gemm_strided_batched: batch_count %lld < 0",
                   (long long)batch_count);
  if (m == 0 || n == 0 || batch_count == 0) return 0;
  if (k == 0 || alpha == 0.0f) return scale_c(s, c, ldc, stride_c, m, n, batch_count, beta);
  // cuBLAS counts batches in int: a larger count goes in pieces
  for (int64_t off = 0; off < batch_count; off += INT_MAX) {
    int64_t cnt = batch_count - off < INT_MAX ? batch_count - off : INT_MAX;
    CU_BLAS(cublasSgemmStridedBatched(
                s->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                (int)n, (int)m, (int)k, &alpha, b + off * stride_b, (int)ldb,
                (long long)stride_b, a + off * stride_a, (int)lda, (long long)stride_a, &beta,
                c + off * stride_c, (int)ldc, (long long)stride_c, (int)cnt),
            "cublasSgemmStridedBatched");
  }
  return 0;
}

int32_t cu_add_bias(void *state, float *y, int64_t ldy, const float *bias, int64_t m, int64_t n) {
  CU_ENTER(state);
  if (m <= 0 || n <= 0) return 0;
  int64_t total = m * n;
  if (total <= (int64_t)UINT32_MAX)
    k_add_bias<uint32_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        y, ldy, bias, (uint32_t)n, (uint32_t)total);
  else
    k_add_bias<int64_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(y, ldy, bias, n, total);
  CU_LAUNCHED("cuda add_bias kernel");
  return 0;
}

int32_t cu_bias_grad(void *state, const float *dy, int64_t lddy, float *dbias, int64_t m,
                     int64_t n) {
  CU_ENTER(state);
  if (m <= 0 || n <= 0) return 0;
  col_tiling t = make_tiling(m, n);
  unsigned grid = cu_blocks(t.ntiles * t.nchunks, 1);
  if (t.nchunks == 1) {
    k_colsum_part<<<grid, COL_THREADS, 0, s->stream>>>(dy, lddy, m, n, t.cw, t.ntiles, 1, dbias,
                                                      1);
    CU_LAUNCHED("cuda bias_grad: column-sum kernel");
    return 0;
  }
  cu_scratch_scope sc(s);
  float *part = static_cast<float *>(sc.get((size_t)(t.nchunks * n) * sizeof(float)));
  if (!part) return sc.status();
  k_colsum_part<<<grid, COL_THREADS, 0, s->stream>>>(dy, lddy, m, n, t.cw, t.ntiles, t.nchunks,
                                                    part, 0);
  CU_LAUNCHED("cuda bias_grad: column-sum kernel");
  k_colsum_combine<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(part, n, t.nchunks, dbias);
  CU_LAUNCHED("cuda bias_grad: combine kernel");
  return 0;
}

int32_t cu_copy2d(void *state, float *dst, int64_t ldd, const float *src, int64_t lds, int64_t m,
                  int64_t n, int32_t accumulate) {
  CU_ENTER(state);
  if (m <= 0 || n <= 0) return 0;
  if (!accumulate) {
    if (dst == src && ldd == lds) return 0;
    if (ldd == n && lds == n)
      CU_CHECK(cudaMemcpyAsync(dst, src, (size_t)(m * n) * sizeof(float),
                               cudaMemcpyDeviceToDevice, s->stream),
               "cudaMemcpyAsync (copy2d)");
    else
      CU_CHECK(cudaMemcpy2DAsync(dst, (size_t)ldd * sizeof(float), src,
                                 (size_t)lds * sizeof(float), (size_t)n * sizeof(float),
                                 (size_t)m, cudaMemcpyDeviceToDevice, s->stream),
               "cudaMemcpy2DAsync (copy2d)");
    return 0;
  }
  int64_t total = m * n;
  if (total <= (int64_t)UINT32_MAX)
    k_copy2d_acc<uint32_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(
        dst, ldd, src, lds, (uint32_t)n, (uint32_t)total);
  else
    k_copy2d_acc<int64_t><<<cu_blocks(total), CU_THREADS, 0, s->stream>>>(dst, ldd, src, lds, n,
                                                                          total);
  CU_LAUNCHED("cuda copy2d kernel");
  return 0;
}

int32_t cu_axpby(void *state, int64_t n, float alpha, const float *x, float beta, float *y) {
  CU_ENTER(state);
  if (n <= 0) return 0;
  k_axpby<<<cu_blocks(n), CU_THREADS, 0, s->stream>>>(n, alpha, x, beta, y);
  CU_LAUNCHED("cuda axpby kernel");
  return 0;
}
