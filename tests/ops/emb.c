/* CPU backend: embedding sum lookup and the sparse row gradient. */
#include <string.h>

#include "util.h"

static void check_sum_fwd(int64_t vocab, int64_t dim, int64_t n, int64_t len, uint64_t seed) {
  int64_t ldo = dim + 3;
  float *table = tops_randf(seed, vocab * dim, -1, 1);   /* row 0 non-zero on purpose */
  int32_t *rows = tops_randi(seed + 1, n * len, 0, (int32_t)vocab);
  for (int64_t i = 0; i < n * len; i += 3) rows[i] = 0;   /* padding */
  float *out = tops_randf(seed + 2, n * ldo, -1, 1), *out0 = tops_dupf(out, n * ldo);
  double *ref = calloc((size_t)(n * dim), sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t l = 0; l < len; l++) {
      int32_t r = rows[i * len + l];
      if (r == 0) continue;
      for (int64_t j = 0; j < dim; j++) ref[i * dim + j] += table[r * dim + j];
    }
  T_OK(tops_ops()->emb_sum_fwd(tops_st(), table, dim, rows, n, len, out, ldo));
  float *got = malloc((size_t)(n * dim) * sizeof(float));
  for (int64_t i = 0; i < n; i++) {
    memcpy(got + i * dim, out + i * ldo, (size_t)dim * sizeof(float));
    for (int64_t j = dim; j < ldo; j++) T_ASSERT(out[i * ldo + j] == out0[i * ldo + j]);
  }
  tops_check_close("emb_sum_fwd", got, ref, n * dim, 1e-6, 1e-6);
  free(table), free(rows), free(out), free(out0), free(ref), free(got);
}

void test_ops_emb__sum_fwd(void) {
  check_sum_fwd(50, 8, 7, 1, 1);
  check_sum_fwd(50, 1, 1, 4, 2);
  check_sum_fwd(1000, 33, 64, 5, 3);
  check_sum_fwd(3000, 16, 2000, 3, 4);   /* parallel */
}

/* emb_grad_rows against a float reference summing in ascending pair order: must match
 * bit for bit (the op promises that order). */
static void check_grad_rows(int64_t count, int32_t vocab, int64_t dim, int64_t n_dout,
                            uint64_t seed) {
  int64_t lddo = dim + 2;
  int32_t *rows = tops_randi(seed, count, 0, vocab);
  int32_t *src = tops_randi(seed + 1, count, 0, (int32_t)n_dout);
  float *dout = tops_randf(seed + 2, n_dout * lddo, -1, 1);
  int32_t *uniq = malloc((size_t)count * sizeof(int32_t));
  float *grad = malloc((size_t)(count * dim) * sizeof(float));
  int64_t nu = -1;
  T_OK(tops_ops()->emb_grad_rows(tops_st(), rows, src, count, dout, lddo, dim, uniq, grad, &nu));
  /* reference: dense, summed in pair order */
  float *dense = calloc((size_t)vocab * (size_t)dim, sizeof(float));
  uint8_t *seen = calloc((size_t)vocab, 1);
  for (int64_t p = 0; p < count; p++) {
    int32_t r = rows[p];
    if (r == 0) continue;
    float *d = dense + (int64_t)r * dim;
    const float *g = dout + (int64_t)src[p] * lddo;
    if (!seen[r]) memcpy(d, g, (size_t)dim * sizeof(float));
    else
      for (int64_t j = 0; j < dim; j++) d[j] += g[j];
    seen[r] = 1;
  }
  int64_t want = 0;
  for (int32_t r = 1; r < vocab; r++)
    if (seen[r]) {
      T_ASSERT_MSG(want < nu, "emb_grad_rows: only %lld unique rows", (long long)nu);
      T_ASSERT_EQ_INT(uniq[want], r);
      tops_check_same("emb_grad_rows", grad + want * dim, dense + (int64_t)r * dim, dim);
      want++;
    }
  T_ASSERT_EQ_INT(nu, want);
  free(rows), free(src), free(dout), free(uniq), free(grad), free(dense), free(seen);
}

void test_ops_emb__grad_rows(void) {
  check_grad_rows(1, 5, 4, 1, 10);
  check_grad_rows(40, 6, 3, 10, 11);        /* many repeats */
  check_grad_rows(300, 1000, 17, 100, 12);
  check_grad_rows(4096 * 8, 5000, 16, 4096, 13);
  check_grad_rows(20000, 1 << 22, 8, 20000, 14);   /* wide ids: three radix passes */
}

void test_ops_emb__grad_rows_empty(void) {
  int32_t rows[4] = {0, 0, 0, 0}, src[4] = {0, 1, 2, 3}, uniq[4];
  float dout[8] = {1, 2, 3, 4, 5, 6, 7, 8}, grad[8];
  int64_t nu = -1;
  T_OK(tops_ops()->emb_grad_rows(tops_st(), rows, src, 4, dout, 2, 2, uniq, grad, &nu));
  T_ASSERT_EQ_INT(nu, 0);
  nu = -1;
  T_OK(tops_ops()->emb_grad_rows(tops_st(), rows, src, 0, dout, 2, 2, uniq, grad, &nu));
  T_ASSERT_EQ_INT(nu, 0);
}

/* gradient check: L = sum w * emb_sum_fwd(table); pairs (rows[i,l], i) with dout = w */
typedef struct { int64_t dim, n, len; const int32_t *rows; const double *w; double *table; } emb_u;
static double emb_loss(void *p) {
  emb_u *u = p;
  double l = 0.0;
  for (int64_t i = 0; i < u->n; i++)
    for (int64_t t = 0; t < u->len; t++) {
      int32_t r = u->rows[i * u->len + t];
      if (r == 0) continue;
      for (int64_t j = 0; j < u->dim; j++) l += u->w[i * u->dim + j] * u->table[r * u->dim + j];
    }
  return l;
}

void test_ops_emb__grad_check(void) {
  const int64_t vocab = 12, dim = 5, n = 9, len = 3;
  int32_t *rows = tops_randi(21, n * len, 0, (int32_t)vocab);
  rows[0] = 0, rows[4] = 0, rows[5] = rows[3];   /* padding and a repeat within one sample */
  float *w = tops_randf(22, n * dim, -1, 1), *table = tops_randf(23, vocab * dim, -1, 1);
  int32_t *src = malloc((size_t)(n * len) * sizeof(int32_t)), uniq[64];
  for (int64_t i = 0; i < n * len; i++) src[i] = (int32_t)(i / len);
  float grad[64 * 5];
  int64_t nu = 0;
  T_OK(tops_ops()->emb_grad_rows(tops_st(), rows, src, n * len, w, dim, dim, uniq, grad, &nu));
  float *dense = calloc((size_t)(vocab * dim), sizeof(float));
  for (int64_t u = 0; u < nu; u++) {
    T_ASSERT(uniq[u] > 0 && uniq[u] < vocab);
    if (u > 0) T_ASSERT(uniq[u] > uniq[u - 1]);
    memcpy(dense + uniq[u] * dim, grad + u * dim, (size_t)dim * sizeof(float));
  }
  double *wd = tops_tod(w, n * dim), *td = tops_tod(table, vocab * dim);
  emb_u u = {dim, n, len, rows, wd, td};
  tops_fd_check("emb table", emb_loss, &u, td, vocab * dim, dense, 1e-5, 1e-6, 1000);
  free(rows), free(w), free(table), free(src), free(dense), free(wd), free(td);
}

/* Several univalent fields in one lookup: the same bits as one emb_sum_fwd (len 1) per field,
 * padding (row 0, made non-zero here, and negative ids) gives zeros, and the columns after the
 * fields are left alone; at one thread, two, and a single row. */
void test_ops_emb__fields_fwd_matches_per_field(void) {
  const int64_t shapes[][4] = {{50, 8, 7, 3}, {1000, 16, 513, 39}, {20, 5, 1, 4}, {30, 1, 64, 1}};
  for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
    int64_t vocab = shapes[c][0], dim = shapes[c][1], n = shapes[c][2], f = shapes[c][3];
    int64_t ldo = f * dim + 5;
    float *table = tops_randf(40 + c, vocab * dim, -1, 1);
    int32_t *rows = tops_randi(41 + c, n * f, 0, (int32_t)vocab);
    for (int64_t i = 0; i < n * f; i += 4) rows[i] = i % 8 ? 0 : -3;
    float *want = tops_randf(42 + c, n * ldo, -1, 1), *got = tops_dupf(want, n * ldo);
    for (int64_t j = 0; j < f; j++)
      T_OK(tops_ops()->emb_sum_fwd(tops_st(), table, dim, rows + j * n, n, 1, want + j * dim, ldo));
    for (int threads = 1; threads <= 2; threads++) {
      T_OK(tops_ops()->set_threads(tops_st(), threads));
      float *g = tops_dupf(got, n * ldo);
      T_OK(tops_ops()->emb_fields_fwd(tops_st(), table, dim, rows, n, f, g, ldo));
      tops_check_same("emb_fields_fwd", g, want, n * ldo);
      free(g);
    }
    T_OK(tops_ops()->set_threads(tops_st(), 2));
    free(table), free(rows), free(want), free(got);
  }
}
