/* Shared helpers of the ops tests (tests/ops): the CPU backend instance, random data, double
 * references and finite-difference gradient checks. */
#ifndef AMEIR_TESTS_OPS_UTIL_H
#define AMEIR_TESTS_OPS_UTIL_H

#include <stdint.h>
#include <stdlib.h>

#include "core/backend/ops.h"
#include "core/base/base.h"
#include "test.h"

/* The CPU backend, initialised once for a fake context with 2 threads (kept for the process:
 * tests that change the thread count put it back to 2). */
const ameir_ops *tops_ops(void);
void *tops_st(void);
struct ameir_context *tops_ctx(void);

/* malloc'ed arrays (the test frees them) */
float *tops_randf(uint64_t seed, int64_t n, float lo, float hi);
float *tops_constf(int64_t n, float v);
double *tops_tod(const float *x, int64_t n);
float *tops_dupf(const float *x, int64_t n);
int32_t *tops_randi(uint64_t seed, int64_t n, int32_t lo, int32_t hi);   /* [lo, hi) */
double tops_u01(uint64_t seed, uint64_t i);
/* the valid part of a strided array [rows, cols] (row stride ld) as a dense double array */
double *tops_dense_d(const float *x, int64_t rows, int64_t cols, int64_t ld);

/* |got - ref| <= atol + rtol * max(|got|, |ref|) for every element, else fails naming `what`
 * and the first bad index. */
void tops_check_close(const char *what, const float *got, const double *ref, int64_t n,
                      double rtol, double atol);
/* bit-identical */
void tops_check_same(const char *what, const float *a, const float *b, int64_t n);

/* Central finite differences of a double loss L(u) with respect to x[0..n) (x is perturbed in
 * place and restored), compared with the analytic gradient `grad` (float, from the op).
 * At most `max_checks` indices are checked (spread over the array). */
typedef double (*tops_loss_fn)(void *u);
void tops_fd_check(const char *what, tops_loss_fn loss, void *u, double *x, int64_t n,
                      const float *grad, double rtol, double atol, int64_t max_checks);

/* ---- sequence batches [b, t, d] with lengths (Stage 1 ops) ---- */
/* lengths in [0, t]: 0, 1 and t among the first samples (as b allows), the rest random */
int32_t *tops_lens(uint64_t seed, int64_t b, int64_t t);
/* x [b, t, d] copied into [b, t2, d] (t2 >= t) with the rows >= len filled with NaN (an op
 * that reads padding then shows it) */
float *tops_repad(const float *x, const int32_t *len, int64_t b, int64_t t, int64_t t2, int64_t d);
/* random [b, t, d] whose padding rows are NaN */
float *tops_seq_randf(uint64_t seed, const int32_t *len, int64_t b, int64_t t, int64_t d, float lo,
                      float hi);
/* y [b, t, d] and y2 [b, t2, d]: bit-identical on the valid rows, both zero on the others */
void tops_check_repad(const char *what, const float *y, const float *y2, const int32_t *len,
                      int64_t b, int64_t t, int64_t t2, int64_t d);

#endif
