// CUDA backend: embedding sum lookup (emb_sum_fwd), its sparse row gradient (emb_grad_rows) and
// the retrieval head's row dot products (dot_rows_fwd/bwd). Reference: src/cpu/cpu_emb.c and the
// dot_rows ops of src/cpu/cpu_seq.c.
//
// Choices that matter
// - emb_grad_rows sorts instead of scattering: hot rows (a gender or country id) appear
//   thousands of times in one batch, so float atomics would both storm on a few addresses and
//   make the sums depend on timing. A stable CUB radix sort of (row, dout row) pairs keeps each
//   row's pairs in ascending pair order; flags + an exclusive scan find the segments; then one
//   team of lanes per unique row sums its pairs sequentially in that order, starting from 0 (so
//   the sums are the CPU's, which copies the first pair and adds the rest, bit for bit: no
//   products, so no FMA contraction either). Pairs whose row is <= 0 (padding) get key 0 and
//   sort to the front, where the segment pass skips them. The sort payload is the dout row
//   itself (one indirection less in the gather), as on the CPU.
// - emb_grad_rows must hand its count to the host anyway, so it also checks src_index there:
//   the first bad pair (integer atomicMin: order-free) is fetched with the count in one
//   synchronisation; such pairs are dropped before the gather so nothing reads out of bounds.
// - The segment sums run with a device-side count (no extra synchronisation before the gather);
//   their teams are as wide as the dimension (1..32 lanes, then 2 or 4 columns per lane). A hot
//   row is one long sequential chain, so the pair loop works in rounds of 16-32 pairs whose
//   dout loads are all in flight together (and the next round's indices already loaded), while
//   the adds stay in pair order.
// - Dot products reduce over k with a fixed xor butterfly inside a team of lanes: the bits
//   depend on k only.
#include <cub/cub.cuh>

#include <type_traits>

#include "cuda/cu.h"
#include "cuda/cu_dev.cuh"

namespace {

// ---- emb_sum_fwd: one thread per output element, columns fastest (coalesced table reads) ----
__global__ void emb_sum_kernel(const float *table, int64_t dim, const int32_t *rows, int64_t n,
                               int64_t len, float *out, int64_t ldo) {
  CU_GRID_STRIDE(idx, n * dim) {
    int64_t i = idx / dim, j = idx - i * dim;
    const int32_t *ri = rows + i * len;
    float acc = 0.0f;
    for (int64_t l = 0; l < len; l++) {
      int32_t r = ri[l];
      if (r > 0) acc += table[(int64_t)r * dim + j];   // <= 0: padding, never read
    }
    out[i * ldo + j] = acc;
  }
}

// ---- emb_fields_fwd: one thread per output element, columns fastest ----
__global__ void emb_fields_kernel(const float *table, int64_t dim, const int32_t *rows, int64_t n,
                                  int64_t f, float *out, int64_t ldo) {
  CU_GRID_STRIDE(idx, n * f * dim) {
    int64_t i = idx / (f * dim), rem = idx - i * f * dim, j = rem / dim, k = rem - j * dim;
    int32_t r = rows[j * n + i];
    out[i * ldo + j * dim + k] = r > 0 ? table[(int64_t)r * dim + k] : 0.0f;
  }
}

// ---- emb_grad_rows ----
struct grad_meta {
  int32_t n_uniq;      // unique non-zero rows (written by the scatter pass)
  uint32_t first_bad;  // first pair with row > 0 and src_index < 0; 0xFFFFFFFF: none
};

// key = row for a valid pair, 0 for padding (and for a bad pair, reported later)
__global__ void grad_keys_kernel(const int32_t *rows, const int32_t *src, int64_t count,
                                 uint32_t *keys, grad_meta *meta) {
  CU_GRID_STRIDE(i, count) {
    int32_t r = rows[i];
    uint32_t key = 0;
    if (r > 0) {
      if (src[i] >= 0)
        key = (uint32_t)r;
      else
        atomicMin(&meta->first_bad, (unsigned)i);   // integer: the result is order-free
    }
    keys[i] = key;
  }
}

// flags[i] = 1 where a segment of a non-zero row starts in the sorted keys
__global__ void grad_heads_kernel(const uint32_t *skeys, int64_t count, int32_t *flags) {
  CU_GRID_STRIDE(i, count) {
    uint32_t k = skeys[i];
    flags[i] = (k != 0u && (i == 0 || skeys[i - 1] != k)) ? 1 : 0;
  }
}

__global__ void grad_scatter_kernel(const uint32_t *skeys, const int32_t *flags,
                                    const int32_t *pos, int64_t count, int32_t *uniq_rows,
                                    int32_t *seg_start, grad_meta *meta) {
  CU_GRID_STRIDE(i, count) {
    if (flags[i]) {
      uniq_rows[pos[i]] = (int32_t)skeys[i];
      seg_start[pos[i]] = (int32_t)i;
    }
    if (i == count - 1) meta->n_uniq = pos[i] + flags[i];
  }
}

// One team of T lanes per unique row u: grad[u, :] = sum of its pairs' dout rows, taken in
// ascending (sorted, stable) pair order. Segments of non-zero rows run to the end of the sorted
// array (key 0 sorts first), so the last one ends at count.
// COLS: columns per lane per pass (1 up to dim 32, then 2 or 4); GRAD_UNROLL: pairs whose
// loads are in flight together (about 32 loads per lane).
template <int T, int COLS>
__global__ void grad_sum_kernel(const grad_meta *meta, const int32_t *seg_start, int64_t count,
                                const int32_t *ssrc, const float *dout, int64_t lddo,
                                int64_t dim, float *grad) {
  constexpr int GRAD_COLS = COLS;
  constexpr int GRAD_UNROLL = COLS == 1 ? 32 : 16;
  const int64_t n = meta->n_uniq;
  const int lane = (int)(threadIdx.x % T);
  const int64_t team = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / T;
  const int64_t teams = ((int64_t)gridDim.x * blockDim.x) / T;
  for (int64_t u = team; u < n; u += teams) {
    const int64_t lo = seg_start[u], hi = u + 1 < n ? (int64_t)seg_start[u + 1] : count;
    float *g = grad + u * dim;
    for (int64_t j0 = 0; j0 < dim; j0 += (int64_t)T * GRAD_COLS) {
      float acc[GRAD_COLS];
      bool in[GRAD_COLS];
#pragma unroll
      for (int c = 0; c < GRAD_COLS; c++) {
        acc[c] = 0.0f;
        in[c] = j0 + lane + (int64_t)c * T < dim;
      }
      // rounds of GRAD_UNROLL pairs: the next round's dout rows are looked up while this
      // round's loads are in flight; the adds stay in pair order
      int64_t p = lo;
      int32_t nxt[GRAD_UNROLL];
      if (p + GRAD_UNROLL <= hi) {
#pragma unroll
        for (int q = 0; q < GRAD_UNROLL; q++) nxt[q] = ssrc[p + q];
      }
      for (; p + GRAD_UNROLL <= hi; p += GRAD_UNROLL) {
        int64_t base[GRAD_UNROLL];
#pragma unroll
        for (int q = 0; q < GRAD_UNROLL; q++) base[q] = (int64_t)nxt[q] * lddo + j0 + lane;
        if (p + 2 * GRAD_UNROLL <= hi) {
#pragma unroll
          for (int q = 0; q < GRAD_UNROLL; q++) nxt[q] = ssrc[p + GRAD_UNROLL + q];
        }
        float val[GRAD_UNROLL][GRAD_COLS];
#pragma unroll
        for (int q = 0; q < GRAD_UNROLL; q++)
#pragma unroll
          for (int c = 0; c < GRAD_COLS; c++)
            val[q][c] = in[c] ? dout[base[q] + (int64_t)c * T] : 0.0f;
#pragma unroll
        for (int q = 0; q < GRAD_UNROLL; q++)
#pragma unroll
          for (int c = 0; c < GRAD_COLS; c++) acc[c] += val[q][c];
      }
      for (; p < hi; p++) {
        int64_t base = (int64_t)ssrc[p] * lddo + j0 + lane;
#pragma unroll
        for (int c = 0; c < GRAD_COLS; c++)
          if (in[c]) acc[c] += dout[base + (int64_t)c * T];
      }
#pragma unroll
      for (int c = 0; c < GRAD_COLS; c++)
        if (in[c]) g[j0 + lane + (int64_t)c * T] = acc[c];
    }
  }
}

// ---- dot_rows ----
// One team of T lanes per (b, j) pair: s[b*c + j] = e[rows[b*c + j], :] . u[b, :]. The loop runs
// over whole warps (team_loop) so every lane reaches the shuffles.
template <int T>
__global__ void dot_rows_fwd_kernel(const float *e, int64_t k, const int32_t *rows, int64_t c,
                                    int64_t items, const float *u, float *sc) {
  team_loop<T>(items, [&](int64_t it, int lane, bool ok) {
    float v = 0.0f;
    if (ok) {
      int32_t r = rows[it];
      if (r >= 0) {   // a negative row (never valid) reads nothing instead of out of bounds
        const float *er = e + (int64_t)r * k;
        const float *ub = u + (it / c) * k;
        for (int64_t q = lane; q < k; q += T) v += er[q] * ub[q];
      }
    }
    v = team_sum<T>(v);
    if (ok && lane == 0) sc[it] = v;
  });
}

// One thread per (b, q): du[b, q] = sum_j ds[b,j] e[rows[b,j], q] in j order (overwrite), and
// the per-pair table gradient g[b*c + j, q] = ds[b,j] u[b,q] (overwrite).
__global__ void dot_rows_bwd_kernel(const float *e, int64_t k, const int32_t *rows, int64_t b,
                                    int64_t c, const float *u, const float *ds, float *du,
                                    float *g) {
  CU_GRID_STRIDE(idx, b * k) {
    const int64_t bb = idx / k, q = idx - bb * k;
    const float ub = u[idx];
    float o = 0.0f;
    for (int64_t j = 0; j < c; j++) {
      const int64_t p = bb * c + j;
      const float w = ds[p];
      const int32_t r = rows[p];
      if (r >= 0) o += w * e[(int64_t)r * k + q];
      g[p * k + q] = w * ub;
    }
    du[idx] = o;
  }
}

}  // namespace

int32_t cu_emb_sum_fwd(void *state, const float *table, int64_t dim, const int32_t *rows,
                       int64_t n, int64_t len, float *out, int64_t ldo) {
  CU_ENTER(state);
  if (n <= 0 || dim <= 0) return AMEIR_OK;
  emb_sum_kernel<<<cu_blocks(n * dim), CU_THREADS, 0, s->stream>>>(table, dim, rows, n, len, out,
                                                                   ldo);
  CU_LAUNCHED("emb_sum_fwd kernel");
  return AMEIR_OK;
}

int32_t cu_emb_fields_fwd(void *state, const float *table, int64_t dim, const int32_t *rows,
                          int64_t n, int64_t f, float *out, int64_t ldo) {
  CU_ENTER(state);
  if (n <= 0 || dim <= 0 || f <= 0) return AMEIR_OK;
  emb_fields_kernel<<<cu_blocks(n * f * dim), CU_THREADS, 0, s->stream>>>(table, dim, rows, n, f,
                                                                         out, ldo);
  CU_LAUNCHED("emb_fields_fwd kernel");
  return AMEIR_OK;
}

int32_t cu_emb_grad_rows(void *state, const int32_t *rows, const int32_t *src_index,
                         int64_t count, const float *dout, int64_t lddo, int64_t dim,
                         int32_t *uniq_rows, float *grad, int64_t *n_uniq) {
  CU_ENTER(state);
  *n_uniq = 0;
  if (count <= 0) return AMEIR_OK;
  if (count > INT32_MAX)
    return cu_fail(s, AMEIR_EINVAL, "cuda emb_grad_rows: count %lld too large",
                   (long long)count);
  const int ni = (int)count;

  // temporary storage of the sort and the scan, sized first (null pointer: size query)
  size_t sort_bytes = 0, scan_bytes = 0;
  CU_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, (const uint32_t *)nullptr,
                                           (uint32_t *)nullptr, (const int32_t *)nullptr,
                                           (int32_t *)nullptr, ni, 0, 31, s->stream),
           "cub::DeviceRadixSort::SortPairs (size query)");
  CU_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, (const int32_t *)nullptr,
                                         (int32_t *)nullptr, ni, s->stream),
           "cub::DeviceScan::ExclusiveSum (size query)");
  size_t temp_bytes = sort_bytes > scan_bytes ? sort_bytes : scan_bytes;

  cu_scratch_scope sc(s);
  const size_t ib = (size_t)count * sizeof(int32_t);
  auto *meta = static_cast<grad_meta *>(sc.get(sizeof(grad_meta)));
  auto *keys = static_cast<uint32_t *>(sc.get(ib));
  auto *skeys = static_cast<uint32_t *>(sc.get(ib));
  auto *ssrc = static_cast<int32_t *>(sc.get(ib));
  auto *pos = static_cast<int32_t *>(sc.get(ib));
  auto *seg = static_cast<int32_t *>(sc.get(ib));
  void *temp = sc.get(temp_bytes);
  if (!meta || !keys || !skeys || !ssrc || !pos || !seg || !temp) return sc.status();
  // the unsorted keys are dead once sorted: their buffer holds the segment flags after
  auto *flags = reinterpret_cast<int32_t *>(keys);

  // n_uniq = -1 (always overwritten), first_bad = none
  CU_CHECK(cudaMemsetAsync(meta, 0xFF, sizeof(grad_meta), s->stream),
           "cudaMemsetAsync (emb_grad_rows)");
  const unsigned nb = cu_blocks(count);
  grad_keys_kernel<<<nb, CU_THREADS, 0, s->stream>>>(rows, src_index, count, keys, meta);
  CU_LAUNCHED("emb_grad_rows keys kernel");
  // row ids are non-negative int32: 31 key bits. Stable: equal rows keep ascending pair order.
  CU_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, (const uint32_t *)keys, skeys,
                                           src_index, ssrc, ni, 0, 31, s->stream),
           "cub::DeviceRadixSort::SortPairs");
  grad_heads_kernel<<<nb, CU_THREADS, 0, s->stream>>>(skeys, count, flags);
  CU_LAUNCHED("emb_grad_rows segment heads kernel");
  CU_CHECK(cub::DeviceScan::ExclusiveSum(temp, temp_bytes, (const int32_t *)flags, pos, ni,
                                         s->stream),
           "cub::DeviceScan::ExclusiveSum");
  grad_scatter_kernel<<<nb, CU_THREADS, 0, s->stream>>>(skeys, flags, pos, count, uniq_rows, seg,
                                                        meta);
  CU_LAUNCHED("emb_grad_rows scatter kernel");
  // teams as wide as the dimension up to 32 lanes, then 2 or 4 columns per lane
  auto launch_sum = [&](auto tc, auto cc) {
    constexpr int T = decltype(tc)::value, COLS = decltype(cc)::value;
    grad_sum_kernel<T, COLS><<<cu_blocks(count * T), CU_THREADS, 0, s->stream>>>(
        meta, seg, count, ssrc, dout, lddo, dim, grad);
  };
  if (dim <= 32)
    with_team(team_width(dim), [&](auto tc) { launch_sum(tc, std::integral_constant<int, 1>{}); });
  else if (dim <= 64)
    launch_sum(std::integral_constant<int, 32>{}, std::integral_constant<int, 2>{});
  else
    launch_sum(std::integral_constant<int, 32>{}, std::integral_constant<int, 4>{});
  CU_LAUNCHED("emb_grad_rows segment sum kernel");

  grad_meta h;
  CU_TRY(cu_fetch_small(s, &h, meta, sizeof h));
  if (h.first_bad != 0xFFFFFFFFu) {
    int32_t bad = 0;
    CU_TRY(cu_fetch_small(s, &bad, src_index + h.first_bad, sizeof bad));
    return cu_fail(s, AMEIR_EINVAL, "cuda emb_grad_rows: src_index[%lld] = %d < 0",
                   (long long)h.first_bad, (int)bad);
  }
  *n_uniq = h.n_uniq;
  return AMEIR_OK;
}

int32_t cu_dot_rows_fwd(void *state, const float *e, int64_t k, const int32_t *rows, int64_t b,
                        int64_t c, const float *u, float *sc) {
  CU_ENTER(state);
  if (b <= 0 || c <= 0) return AMEIR_OK;
  const int64_t items = b * c;
  with_team(team_width(k), [&](auto tc) {
    constexpr int T = decltype(tc)::value;
    dot_rows_fwd_kernel<T><<<cu_blocks(items * T), CU_THREADS, 0, s->stream>>>(e, k, rows, c,
                                                                               items, u, sc);
  });
  CU_LAUNCHED("dot_rows_fwd kernel");
  return AMEIR_OK;
}

int32_t cu_dot_rows_bwd(void *state, const float *e, int64_t k, const int32_t *rows, int64_t b,
                        int64_t c, const float *u, const float *ds, float *du, float *g) {
  CU_ENTER(state);
  if (b <= 0 || k <= 0) return AMEIR_OK;
  dot_rows_bwd_kernel<<<cu_blocks(b * k), CU_THREADS, 0, s->stream>>>(e, k, rows, b, c, u, ds, du,
                                                                      g);
  CU_LAUNCHED("dot_rows_bwd kernel");
  return AMEIR_OK;
}
