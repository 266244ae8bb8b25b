// Helpers shared by the kernel files of the CUDA backend (src/cuda/cu_*.cu): device functions,
// the kernels more than one op file launches, and the host-side launch helpers that go with
// them. Not a public header; include it after cuda/cu.h.
//
// Everything here lives in an anonymous namespace and is inline or a template: each translation
// unit gets its own copy (no symbol collides at link time, none is exported), a helper a file
// does not use costs nothing and does not warn, and a kernel is only emitted where it is
// launched (a plain __global__ function would be compiled into every file that includes this).
// The arithmetic of each helper is exactly that of the copies it replaces (same operations in
// the same order); where the copies differed, the difference is a parameter.
#ifndef AMEIR_CUDA_CU_DEV_CUH
#define AMEIR_CUDA_CU_DEV_CUH

#include <cmath>
#include <type_traits>

#include "cuda/cu.h"

namespace {

// ---- scalar functions ----

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- sequences: len[] stays on the device ----

// len[i] clamped to [0, t]: a bad length never makes a kernel read or write outside its rows
__device__ __forceinline__ int64_t seq_len(const int32_t *len, int64_t i, int64_t t) {
  int64_t l = len[i];
  return l < 0 ? 0 : (l > t ? t : l);
}

// base[0] = 0, base[i+1] = base[i] + seq_len(len, i, t) (the packed row bases): one block of
// THREADS threads, a Hillis-Steele scan in shared memory per chunk of THREADS lengths. The
// callers choose THREADS (cu_attn 1024, cu_gru 512); the sums are exact int64 either way.
template <int THREADS>
__global__ void k_seq_base(const int32_t *len, int64_t b, int64_t t, int64_t *base) {
  __shared__ int64_t sh[THREADS];
  const int tid = threadIdx.x;
  int64_t carry = 0;
  if (tid == 0) base[0] = 0;
  for (int64_t c0 = 0; c0 < b; c0 += THREADS) {
    int64_t i = c0 + tid;
    sh[tid] = i < b ? seq_len(len, i, t) : 0;
    __syncthreads();
    for (int off = 1; off < THREADS; off <<= 1) {
      int64_t add = tid >= off ? sh[tid - off] : 0;
      __syncthreads();
      sh[tid] += add;
      __syncthreads();
    }
    if (i < b) base[i + 1] = carry + sh[tid];
    carry += sh[THREADS - 1];
    __syncthreads();  // sh is refilled by the next chunk
  }
}

// base[0..b] on the device (one block of THREADS threads on the state's stream)
template <int THREADS>
int32_t launch_seq_base(cuda_state *s, const int32_t *len, int64_t b, int64_t t, int64_t *base,
                        const char *what) {
  k_seq_base<THREADS><<<1, THREADS, 0, s->stream>>>(len, b, t, base);
  CU_LAUNCHED(what);
  return 0;
}

// y = x masked over [b*t, d] rows: positions >= len written 0 (x == y allowed: each element is
// read and written by one thread). A template only so that it is compiled where it is launched.
template <typename T>
__global__ void k_seq_mask(T *y, const T *x, const int32_t *len, int64_t b, int64_t t,
                           int64_t d) {
  CU_GRID_STRIDE(i, b * t * d) {
    int64_t row = i / d, pos = row % t, bb = row / t;
    y[i] = pos < seq_len(len, bb, t) ? x[i] : T(0);
  }
}

// ---- teams: groups of T lanes (T a power of two <= 32, aligned in the warp) ----

// smallest power of two >= n, at most 32 (team width for a reduction over n items)
inline int team_width(int64_t n) {
  int t = 1;
  while (t < 32 && t < n) t <<= 1;
  return t;
}

// Calls f(std::integral_constant<int, T>) for the team width T (1, 2, ..., 32).
template <class F>
void with_team(int t, F &&f) {
  switch (t) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 16: f(std::integral_constant<int, 16>{}); break;
    default: f(std::integral_constant<int, 32>{}); break;
  }
}

// Sum over the T lanes of a team (every lane of the warp must call it). The xor butterfly
// leaves the same bits in every lane of the team (float addition commutes exactly). WIDTH is
// the shuffles' segment width: T by default, 32 where a file's copy shuffled over the whole
// warp (cu_act's row groups, cu_attn's warp sums); offsets below T read the same lanes either
// way.
template <int T, int WIDTH = T>
__device__ __forceinline__ float team_sum(float v) {
#pragma unroll
  for (int o = T / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o, WIDTH);
  return v;
}

// Teams of T lanes over `items` items, the loop bound uniform per warp (so every lane of a warp
// reaches the shuffles): body(item, lane, valid).
template <int T, class B>
__device__ __forceinline__ void team_loop(int64_t items, B &&body) {
  const int lw = (int)(threadIdx.x & 31);
  const int lane = lw % T;
  const int64_t tpw = 32 / T;
  const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t w = warp; w * tpw < items; w += warps) {
    const int64_t it = w * tpw + lw / T;
    body(it, lane, it < items);
  }
}

// ---- column reductions: fixed-shape, no atomics (cu_blas's bias_grad, cu_act's Dice and
// LayerNorm). Blocks of COL_THREADS threads; a block reduces a tile of cw columns (a power of
// two <= 32) x ry = COL_THREADS / cw row lanes over one chunk of rows; the number of chunks
// depends on m only, so the bits depend on the shape only ----

constexpr int COL_THREADS = 256;
constexpr int64_t COL_CHUNK_ROWS = 256;  // rows per chunk (before the cap below)
constexpr int64_t COL_MAX_CHUNKS = 64;

struct col_tiling {
  int cw;
  int64_t ntiles, nchunks;
};

inline col_tiling make_tiling(int64_t m, int64_t n) {
  col_tiling t;
  t.cw = 1;
  while (t.cw < 32 && t.cw < n) t.cw *= 2;
  t.ntiles = (n + t.cw - 1) / t.cw;
  int64_t nc = (m + COL_CHUNK_ROWS - 1) / COL_CHUNK_ROWS;
  t.nchunks = nc < 1 ? 1 : nc > COL_MAX_CHUNKS ? COL_MAX_CHUNKS : nc;
  return t;
}

// first row of chunk c of nc over m rows (chunk c is [chunk_lo(c), chunk_lo(c + 1)))
__host__ __device__ __forceinline__ int64_t chunk_lo(int64_t m, int64_t nc, int64_t c) {
  return m * c / nc;
}

// The fixed tree over the ry row lanes of a tile, for NQ quantities at once: quantity q of
// thread (tx, ty) sits at sh[q * COL_THREADS + threadIdx.x] (threadIdx.x = ty * cw + tx); the
// tile's sums land in sh[q * COL_THREADS + tx]. Every thread of the block must call it.
template <int NQ, typename T>
__device__ __forceinline__ void col_tree(T *sh, int cw, int ry, int ty) {
  for (int st = ry / 2; st > 0; st >>= 1) {
    if (ty < st) {
#pragma unroll
      for (int q = 0; q < NQ; q++)
        sh[q * COL_THREADS + threadIdx.x] += sh[q * COL_THREADS + threadIdx.x + st * cw];
    }
    __syncthreads();
  }
}

// ---- scratch ----

// p = count elements of T from the scratch stack; false (the error set) on failure. A chain
// `if (!take(sc, a, n) || !take(sc, b, m)) return sc.status();` stops at the first failure.
template <typename T>
bool take(cu_scratch_scope &sc, T *&p, int64_t count) {
  p = static_cast<T *>(sc.get((size_t)count * sizeof(T)));
  return p != nullptr;
}

}  // namespace

#endif
