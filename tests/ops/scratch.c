/* CPU backend: a thread's own scratch block (set_thread_scratch) and the bounds of
 * scratch_bytes. For every forward op that takes scratch, over batches with padding, full
 * batches and several thread counts: a block of exactly the bound serves the op (the bound
 * holds for every len[]), the op takes its scratch from it, and its results are those of a
 * call without one, bit for bit; a block too small fails with AMEIR_EINVAL and allocates
 * nothing in its place. */
#define _POSIX_C_SOURCE 200809L   /* posix_memalign */
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { B = 24, T = 12, D = 16, A1 = 10, A2 = 6 };

typedef struct {
  int32_t op, arg1, arg2;
  const char *name;
} fwd_case;

/* Runs one op on (x, len) into y (save buffers its own). */
static int32_t run_op(const fwd_case *c, const float *x, const int32_t *len, const float *p,
                      const float *q, float *y, float *save) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  switch (c->op) {
    case AMEIR_SCRATCH_CONV1D_FWD:
      return o->conv1d_fwd(st, x, len, B, T, D, p, p + (int64_t)D * D * c->arg1, c->arg1, c->arg2, y);
    case AMEIR_SCRATCH_MHA_FWD: return o->mha_fwd(st, x, len, B, T, D, c->arg1, p, y, save);
    case AMEIR_SCRATCH_GRU_FWD: return o->gru_fwd(st, x, len, B, T, D, p, y, save);
    default:   /* DIN: the layer's scaled rows and the read-out's pooled vector at once */
      return o->din_fwd(st, x, len, B, T, D, q, D, c->arg1, c->arg2, p, y + B * T * D, D, y, save);
  }
}

static int64_t n_params(const fwd_case *c) {
  switch (c->op) {
    case AMEIR_SCRATCH_CONV1D_FWD: return (int64_t)D * D * c->arg1 + D;
    case AMEIR_SCRATCH_MHA_FWD: return ameir__mha_params(D);
    case AMEIR_SCRATCH_GRU_FWD: return 2 * ameir__gru_params(D);
    default: return ameir__din_params(D, c->arg1, c->arg2);
  }
}

static int64_t n_save(const fwd_case *c) {
  switch (c->op) {
    case AMEIR_SCRATCH_MHA_FWD: return ameir__mha_save(B, T, D, c->arg1);
    case AMEIR_SCRATCH_GRU_FWD: return ameir__gru_save(B, T, D);
    case AMEIR_SCRATCH_DIN_FWD: return ameir__din_save(B, T, D, c->arg1, c->arg2);
    default: return 1;
  }
}

void test_ops_scratch__thread_block_of_the_bound_serves_every_forward(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  T_ASSERT(o->scratch_bytes && o->set_thread_scratch);
  static const fwd_case cases[] = {
      {AMEIR_SCRATCH_CONV1D_FWD, 1, 1, "conv1"},   {AMEIR_SCRATCH_CONV1D_FWD, 3, 1, "conv3"},
      {AMEIR_SCRATCH_CONV1D_FWD, 5, 2, "dconv5"},  {AMEIR_SCRATCH_CONV1D_FWD, 7, 2, "dconv7"},
      {AMEIR_SCRATCH_MHA_FWD, 2, 0, "sa2"},        {AMEIR_SCRATCH_MHA_FWD, 4, 0, "sa4"},
      {AMEIR_SCRATCH_GRU_FWD, 0, 0, "gru"},        {AMEIR_SCRATCH_DIN_FWD, A1, A2, "din"},
  };
  static const int threads[3] = {1, 2, 4};
  int32_t *lens[3];
  lens[0] = tops_lens(7, B, T);                      /* padding, empty and full samples */
  lens[1] = malloc(sizeof(int32_t) * B);             /* every position valid */
  lens[2] = malloc(sizeof(int32_t) * B);             /* all one long */
  for (int i = 0; i < B; i++) lens[1][i] = T, lens[2][i] = 1;
  float *q = tops_randf(3, B * D, -1.f, 1.f);
  int64_t ny = B * T * D + B * D;
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    const fwd_case *c = &cases[ci];
    float *p = tops_randf(11 + ci, n_params(c), -0.3f, 0.3f);
    float *save = tops_constf(n_save(c), 0.f);
    float *want = tops_constf(ny, 0.f), *got = tops_constf(ny, 0.f);
    for (int ti = 0; ti < 3; ti++) {
      T_OK(o->set_threads(st, threads[ti]));
      size_t bound = o->scratch_bytes(st, c->op, B, T, D, c->arg1, c->arg2);
      T_ASSERT_MSG(bound > 0 && bound % 64 == 0, "%s: bound %zu", c->name, bound);
      /* a bound holds for fewer rows too: it grows with the batch */
      T_ASSERT(o->scratch_bytes(st, c->op, B / 2, T, D, c->arg1, c->arg2) <= bound);
      unsigned char *block = NULL;
      T_ASSERT(posix_memalign((void **)&block, 64, bound) == 0);
      for (int li = 0; li < 3; li++) {
        float *x = tops_seq_randf(100 + li, lens[li], B, T, D, -1.f, 1.f);
        memset(want, 0, sizeof(float) * (size_t)ny);
        memset(got, 0, sizeof(float) * (size_t)ny);
        T_OK(run_op(c, x, lens[li], p, q, want, save));
        memset(block, 0xA5, bound);
        T_OK(o->set_thread_scratch(st, block, bound));
        int32_t rc = run_op(c, x, lens[li], p, q, got, save);
        T_OK(o->set_thread_scratch(st, NULL, 0));
        T_ASSERT_MSG(rc == 0, "%s, %d threads, lengths %d: %d (%s)", c->name, threads[ti], li, (int)rc,
                     ameir_last_error());
        tops_check_same(c->name, got, want, ny);
        size_t used = 0;   /* the op wrote into the block: its scratch came from there */
        for (size_t i = 0; i < bound && !used; i++) used = block[i] != 0xA5;
        T_ASSERT_MSG(used, "%s: the block was not used", c->name);
        free(x);
      }
      /* too small: refused, nothing allocated instead */
      float *x = tops_seq_randf(100, lens[0], B, T, D, -1.f, 1.f);
      T_OK(o->set_thread_scratch(st, block, 64));
      int32_t rc = run_op(c, x, lens[0], p, q, got, save);
      T_OK(o->set_thread_scratch(st, NULL, 0));
      T_ASSERT_EQ_INT(rc, AMEIR_EINVAL);
      T_ASSERT_MSG(strstr(ameir_last_error(), "bytes of scratch"), "%s: %s", c->name, ameir_last_error());
      /* cleared: the op takes its scratch as before */
      T_OK(run_op(c, x, lens[0], p, q, got, save));
      free(x);
      free(block);
    }
    free(p);
    free(save);
    free(want);
    free(got);
  }
  T_OK(o->set_threads(st, 2));
  for (int i = 0; i < 3; i++) free(lens[i]);
  free(q);
}

void test_ops_scratch__bounds_of_no_scratch_and_unknown_ops(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  T_ASSERT_EQ_INT(o->scratch_bytes(st, AMEIR_SCRATCH_CONV1D_FWD, 0, T, D, 3, 1), 0);   /* empty batch */
  T_ASSERT_EQ_INT(o->scratch_bytes(st, AMEIR_SCRATCH_MHA_FWD, B, 0, D, 2, 0), 0);
  T_ASSERT(o->scratch_bytes(st, 0, B, T, D, 0, 0) == SIZE_MAX);
  T_ASSERT(o->scratch_bytes(st, 99, B, T, D, 0, 0) == SIZE_MAX);
  /* an unaligned block is aligned inside: its usable part is what is left */
  unsigned char *raw = malloc(4096 + 64);
  T_ASSERT(raw != NULL);
  unsigned char *odd = raw + ((64 - (uintptr_t)raw % 64) % 64) + 1;
  size_t bound = o->scratch_bytes(st, AMEIR_SCRATCH_GRU_FWD, 2, 3, 4, 0, 0);
  T_ASSERT(bound > 0 && bound + 63 <= 4096);
  int32_t len[2] = {3, 1};
  float *x = tops_randf(5, 2 * 3 * 4, -1.f, 1.f), *p = tops_randf(6, 2 * ameir__gru_params(4), -0.3f, 0.3f);
  float y[24], y2[24], save[2 * 3 * 2 * 5 * 2];
  T_OK(o->gru_fwd(st, x, len, 2, 3, 4, p, y, save));
  T_OK(o->set_thread_scratch(st, odd, bound + 63));
  int32_t rc = o->gru_fwd(st, x, len, 2, 3, 4, p, y2, save);
  T_OK(o->set_thread_scratch(st, NULL, 0));
  T_OK(rc);
  tops_check_same("gru, unaligned block", y2, y, 24);
  free(raw);
  free(x);
  free(p);
}
