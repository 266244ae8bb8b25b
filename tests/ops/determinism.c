/* CPU backend: reductions are bit-identical run to run, and (except through sgemm) across
 * thread counts. */
#include <string.h>

#include "util.h"

enum { M = 3000, N = 40, K = 8, S = 6, R = 3 };

/* runs every reduction op once and concatenates the outputs into out (caller frees) */
static float *run_all(int with_gemm, int64_t *len) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  int64_t cap = 4 * M * N + 8 * N + M * S * K + S * K + 64 + 4 * (R * S + R + S);
  float *out = calloc((size_t)cap, sizeof(float)), *w = out;
  float *x = tops_randf(1, M * N, -2, 2), *dy = tops_randf(2, M * N, -1, 1);
  float *g = tops_randf(3, N, 0.5f, 1.5f), *b = tops_randf(4, N, -1, 1);
  float *save = malloc((size_t)(2 * M) * sizeof(float)), *y = malloc((size_t)(M * N) * 4);
  /* bias_grad */
  T_OK(o->bias_grad(st, dy, N, w, M, N));
  w += N;
  /* layernorm bwd */
  T_OK(o->layernorm_fwd(st, x, y, M, N, g, b, 1e-5f, save));
  T_OK(o->layernorm_bwd(st, x, dy, w, M, N, g, w + M * N, w + M * N + N, save));
  w += M * N + 2 * N;
  /* dice fwd (batch statistics) + bwd */
  float rm[N] = {0}, rv[N], dsave[2 * N];
  for (int j = 0; j < N; j++) rv[j] = 1;
  T_OK(o->dice_fwd(st, x, w, M, N, b, rm, rv, 1e-8f, 1, dsave));
  w += M * N;
  T_OK(o->dice_bwd(st, x, dy, w, M, N, b, w + M * N, 1e-8f, dsave));
  w += M * N + N;
  memcpy(w, rm, sizeof rm), w += N;
  memcpy(w, rv, sizeof rv), w += N;
  /* bce loss (as floats of the double) and sumsq */
  double loss, ss;
  T_OK(o->bce_logits(st, x, dy, M * N, 1.0f, &loss, NULL, NULL));
  T_OK(o->sumsq(st, x, M * N, &ss));
  memcpy(w, &loss, sizeof loss), w += 2;
  memcpy(w, &ss, sizeof ss), w += 2;
  /* emb_grad_rows: M*K pairs over few rows (long segments) */
  int32_t *rows = tops_randi(5, M * K, 0, 50), *src = tops_randi(6, M * K, 0, M);
  int32_t *uniq = malloc((size_t)(M * K) * sizeof(int32_t));
  float *eg = malloc((size_t)(M * K) * K * sizeof(float));
  int64_t nu = 0;
  T_OK(o->emb_grad_rows(st, rows, src, M * K, dy, N, K, uniq, eg, &nu));
  T_ASSERT(nu <= 49);
  memcpy(w, eg, (size_t)(nu * K) * sizeof(float)), w += nu * K;
  if (with_gemm) {   /* SE backward: dv is a chunked reduction, the rest goes through sgemm */
    float *q = tops_randf(7, M * S * K, -1, 1), *v = tops_randf(8, K, -1, 1);
    float *w1 = tops_randf(9, R * S, -1, 1), *b1 = tops_randf(10, R, 0, 1);
    float *w2 = tops_randf(11, S * R, -1, 1), *b2 = tops_randf(12, S, -1, 1);
    float *so = malloc((size_t)(M * K) * sizeof(float));
    float *ss2 = malloc((size_t)(M * (2 * S + R)) * sizeof(float));
    T_OK(o->se_fwd(st, q, S * K, M, S, K, v, w1, b1, R, w2, b2, so, K, ss2));
    float *dq = w;
    w += M * S * K;
    T_OK(o->se_bwd(st, q, S * K, M, S, K, v, w1, b1, R, w2, b2, dy, N, ss2, dq, w, w + K,
                   w + K + R * S, w + K + R * S + R, w + K + 2 * R * S + R));
    w += K + 2 * R * S + R + S;
    free(q), free(v), free(w1), free(b1), free(w2), free(b2), free(so), free(ss2);
  }
  T_ASSERT(w - out <= cap);
  *len = w - out;
  free(x), free(dy), free(g), free(b), free(save), free(y), free(rows), free(src), free(uniq);
  free(eg);
  return out;
}

void test_ops_determinism__same_threads(void) {
  int64_t n1, n2;
  float *a = run_all(1, &n1), *b = run_all(1, &n2);
  T_ASSERT_EQ_INT(n1, n2);
  tops_check_same("run twice", a, b, n1);
  free(a), free(b);
}

void test_ops_determinism__any_threads(void) {
  int64_t n1, n2, n3;
  T_OK(tops_ops()->set_threads(tops_st(), 1));
  float *a = run_all(0, &n1);
  T_OK(tops_ops()->set_threads(tops_st(), 3));
  float *b = run_all(0, &n2);
  T_OK(tops_ops()->set_threads(tops_st(), 2));
  float *c = run_all(0, &n3);
  T_ASSERT(n1 == n2 && n2 == n3);
  tops_check_same("1 vs 3 threads", a, b, n1);
  tops_check_same("1 vs 2 threads", a, c, n1);
  free(a), free(b), free(c);
}
