/* The parity oracle: proves that a backend module (libameir_cuda.so) computes what the CPU
 * reference computes, op by op, forward and backward (not part of `make test`; run where a GPU is):
 *
 *   make build/gpu/parity            (tests/gpu/gpu.mk; links lib/libameir.a statically)
 *   ./build/gpu/parity [MODULE_PATH] [--filter SUBSTR]     default lib/libameir_cuda.so
 *   ./build/gpu/parity --cpu-vs-cpu [--filter SUBSTR]      two CPU instances (tests the harness)
 *
 * The CPU table comes from ameir__cpu_ops(); the module's from dlopen and its entry point, called
 * with this program's own host services (as tests/gpu/cuda_module.c does). Every case builds its
 * inputs on the host, then runs the same function once per backend: allocate with ops->alloc,
 * upload, run the op(s), download, free. Device pointers are only ever handled through the table.
 * A forward/backward pair runs in one go, each backend's backward consuming its own save buffer
 * (saves are private to a backend and are not compared, except where ops.h pins their content:
 * Dice's (mean, inv_std) after a training forward, and the max-pool argmax at valid positions).
 *
 * Every output array is compared whole (including the gaps of strided outputs, which must stay
 * untouched, and the padding positions of sequence outputs, which must be 0 on both): error =
 * max_i |cpu_i - dev_i| / max(max_i |cpu_i|, 1e-6), below 1e-4 unless a case says otherwise.
 * Integer outputs (uniq rows and their count, argmax, dropout masks) must be identical. Inputs
 * carry NaN wherever an op must not read (row-stride gaps, sequence padding, C of a GEMM with
 * beta 0, y of axpby with beta 0), so a backend that reads them fails the comparison.
 *
 * Prints one line per case ("ok   <op> <params> err=<e>" or "FAIL ..." with the worst element
 * and the backend's error text), then "N passed, N failed" alone on the last line; exit 0 when
 * none failed, 1 otherwise, 77 when the module refuses to run here (no device: "skip: <reason>",
 * "0 passed, 0 failed, 1 skipped"). A crash prints "FAIL crashed (signal N) in <case>" first.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/backend/module.h"
#include "core/base/base.h"

/* Adding a member to struct ameir_ops must add its cases here (and to k_covered below). The
 * asynchronous staging members of ABI version 2 (host_alloc, host_free, upload_async,
 * download_async) have no case here yet. */
typedef void (*any_fn_)(void);
_Static_assert(offsetof(ameir_ops, caser_bwd) + sizeof(any_fn_) == sizeof(ameir_ops),
               "parity.c: struct ameir_ops grew: give the new op cases and list it in k_covered");

#define TOL 1e-4

/* ================================================================ backends ================= */

#define MAXPTR 64

typedef struct {
  const char *label;   /* "cpu", "cuda", "cpu2" */
  ameir_ops ops;       /* own copy: members beyond a module's struct_size are NULL */
  void *st;
  struct ameir_context ctx;   /* receives error messages (ctx.msg) */
  int32_t threads;
  int is_cpu;          /* set_threads before each run: OpenBLAS's thread count is process-wide */
  /* the current run */
  void *ptr[MAXPTR];
  int np;
  int phase;           /* ops called so far in this run */
  int failed, fail_phase;
  char why[1400];
  double secs;         /* wall time in runs */
} backend;

static backend g_ref, g_dev;
static const char *g_filter;
static int g_pass, g_fail;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void be_fail(backend *b, int phase, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void be_fail(backend *b, int phase, const char *fmt, ...) {
  if (b->failed) return;
  b->failed = 1;
  b->fail_phase = phase;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->why, sizeof b->why, fmt, ap);
  va_end(ap);
}

static void be_begin(backend *b) {
  b->np = 0;
  b->phase = 0;
  b->failed = 0;
  b->fail_phase = 0;
  b->why[0] = 0;
  b->ctx.msg[0] = 0;
  if (b->is_cpu && b->ops.set_threads) b->ops.set_threads(b->st, b->threads);
  b->secs -= now_s();
}

static void be_end(backend *b) {
  for (int i = 0; i < b->np; i++) b->ops.free(b->st, b->ptr[i]);
  b->np = 0;
  b->secs += now_s();
}

/* Device memory of `bytes` (uninitialised); NULL once the run has failed. */
static void *be_alloc(backend *b, size_t bytes) {
  if (b->failed) return NULL;
  if (b->np == MAXPTR) {
    be_fail(b, 0, "harness: more than %d buffers in one run", MAXPTR);
    return NULL;
  }
  void *p = NULL;
  b->ctx.msg[0] = 0;
  int32_t rc = b->ops.alloc(b->st, bytes, &p);
  if (rc || !p) {
    be_fail(b, 0, "alloc of %zu bytes returned %d: %s", bytes, (int)rc, b->ctx.msg);
    return NULL;
  }
  b->ptr[b->np++] = p;
  return p;
}

/* Device copy of host[bytes]. */
static void *be_up(backend *b, const void *host, size_t bytes) {
  void *p = be_alloc(b, bytes);
  if (!p || !bytes) return p;
  b->ctx.msg[0] = 0;
  int32_t rc = b->ops.upload(b->st, p, host, bytes);
  if (rc) be_fail(b, 0, "upload of %zu bytes returned %d: %s", bytes, (int)rc, b->ctx.msg);
  return p;
}

/* host[bytes] = dev: also after a failed op (the outputs of earlier ops are still wanted). */
static void be_down(backend *b, void *host, const void *dev, size_t bytes) {
  if (!dev || !bytes) return;
  b->ctx.msg[0] = 0;
  int32_t rc = b->ops.download(b->st, host, dev, bytes);
  if (rc) be_fail(b, 0, "download of %zu bytes returned %d: %s", bytes, (int)rc, b->ctx.msg);
}

static void be_sync(backend *b, const char *op) {
  b->ctx.msg[0] = 0;
  int32_t rc = b->ops.sync(b->st);
  if (rc) be_fail(b, b->phase, "sync after %s returned %d: %s", op, (int)rc, b->ctx.msg);
}

/* Calls member `m` of b's table, unless the run has failed already. */
#define OPCALL(b, m, ...)                                                                     \
  do {                                                                                        \
    backend *b_ = (b);                                                                        \
    if (b_->failed) break;                                                                    \
    b_->phase++;                                                                              \
    if (!b_->ops.m) {                                                                         \
      be_fail(b_, b_->phase, "op " #m " is NULL in the %s table", b_->label);                 \
      break;                                                                                  \
    }                                                                                         \
    b_->ctx.msg[0] = 0;                                                                       \
    int32_t rc_ = b_->ops.m(b_->st, __VA_ARGS__);                                             \
    if (rc_) be_fail(b_, b_->phase, #m " returned %d: %s", (int)rc_, b_->ctx.msg);            \
    else be_sync(b_, #m);                                                                     \
  } while (0)

#define UPF(b, h, n) ((float *)be_up((b), (h), (size_t)(n) * sizeof(float)))
#define UPI(b, h, n) ((int32_t *)be_up((b), (h), (size_t)(n) * sizeof(int32_t)))
#define DOWNF(b, h, d, n) be_down((b), (h), (d), (size_t)(n) * sizeof(float))
#define DOWNI(b, h, d, n) be_down((b), (h), (d), (size_t)(n) * sizeof(int32_t))

/* ================================================================ host data ================ */

static uint64_t g_rng;
static uint64_t rnext(void) { return ameir__mix64(g_rng++); }
static double ru(void) { return (double)(rnext() >> 11) * 0x1p-53; }
static float rf(float lo, float hi) { return (float)(lo + (hi - lo) * ru()); }
static int32_t ri(int64_t lo, int64_t hi) {   /* [lo, hi) */
  return (int32_t)(lo + (int64_t)(ru() * (double)(hi - lo)));
}

#define MAXH 128
static void *g_h[MAXH];
static int g_nh;

static void *hmalloc(size_t bytes) {
  if (g_nh == MAXH) {
    fprintf(stderr, "parity: harness: more than %d host arrays in one case\n", MAXH);
    exit(2);
  }
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "parity: out of host memory (%zu bytes)\n", bytes);
    exit(2);
  }
  g_h[g_nh++] = p;
  return p;
}
static void hfree_all(void) {
  for (int i = 0; i < g_nh; i++) free(g_h[i]);
  g_nh = 0;
}

static float *hrand(int64_t n, float lo, float hi) {
  float *x = hmalloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) x[i] = rf(lo, hi);
  return x;
}
static float *hconst(int64_t n, float v) {
  float *x = hmalloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) x[i] = v;
  return x;
}
static float *hdup(const float *s, int64_t n) {
  float *x = hmalloc((size_t)n * sizeof(float));
  if (n) memcpy(x, s, (size_t)n * sizeof(float));
  return x;
}
static int32_t *hrandi(int64_t n, int64_t lo, int64_t hi) {
  int32_t *x = hmalloc((size_t)n * sizeof(int32_t));
  for (int64_t i = 0; i < n; i++) x[i] = ri(lo, hi);
  return x;
}
/* rows x cols matrix with row stride ld >= cols: gaps NaN (must not be read) */
static float *hmat(int64_t rows, int64_t cols, int64_t ld, float lo, float hi) {
  float *x = hconst(rows * ld, NAN);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) x[i * ld + j] = rf(lo, hi);
  return x;
}
/* lengths in [0, t]: t, 0, 1, t among the first samples (as b allows), the rest random; all t
 * when full */
static int32_t *hlens(int64_t b, int64_t t, int full) {
  int32_t *l = hrandi(b, 0, t + 1);
  static const int pick[4] = {2, 0, 1, 2};   /* 2 = t */
  for (int64_t i = 0; i < b; i++)
    if (full || (i < 4 && pick[i] == 2)) l[i] = (int32_t)t;
    else if (i < 4) l[i] = pick[i];
  return l;
}
/* [b, t, d] random with the padding rows NaN */
static float *hseq(const int32_t *len, int64_t b, int64_t t, int64_t d, float lo, float hi) {
  float *x = hrand(b * t * d, lo, hi);
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = (int64_t)len[i] * d; j < t * d; j++) x[i * t * d + j] = NAN;
  return x;
}

/* ================================================================ comparison =============== */

typedef struct {
  char op[48];
  char par[240];
  double tol;
  int phase;        /* this line fails with a backend error raised in ops 1..phase of the run */
  double err;       /* max relative error over the outputs compared */
  int bad;
  char worst[400];  /* the worst element of the worst output */
} line_t;

/* the ops every full run must exercise (coverage check at the end) */
static const char *const k_covered[] = {
    "gemm",          "gemm_strided_batched", "add_bias",     "bias_grad",     "copy2d",
    "axpby",         "emb_sum_fwd",          "emb_grad_rows", "act_fwd",      "act_bwd",
    "dice_fwd",      "dice_bwd",             "layernorm_fwd", "layernorm_bwd", "dropout_fwd",
    "dropout_bwd",   "hadamard_fwd",         "hadamard_bwd", "fm_fwd",        "fm_bwd",
    "se_fwd",        "se_bwd",               "bce_logits",   "adam_dense",    "adam_rows",
    "adam_table_dense", "sumsq",             "seq_mask",     "conv1d_fwd",    "conv1d_bwd",
    "pool3_fwd",     "pool3_bwd",            "gru_fwd",      "gru_bwd",       "mha_fwd",
    "mha_bwd",       "din_fwd",              "din_bwd",      "readout_fwd",   "readout_bwd",
    "dot_rows_fwd",  "dot_rows_bwd",         "cross_fwd",    "cross_bwd",     "cin_fwd",
    "cin_bwd",       "emb_fields_fwd",
    /* FiBiNET */
    "field_scale_fwd", "field_scale_bwd",
    /* Caser read-out */
    "caser_fwd",     "caser_bwd",
};
#define N_COVERED (sizeof k_covered / sizeof k_covered[0])
static int g_count[N_COVERED];

static void count_op(const char *op) {
  for (size_t i = 0; i < N_COVERED; i++)
    if (!strcmp(k_covered[i], op)) g_count[i]++;
}

/* The case running now, for the crash handler: a crash names it (the result lines only come
 * after both backends ran). */
static char g_case[600];
static int want_match(const char *ops, const char *par);
static struct sigaction g_old_act[NSIG];

static void on_crash(int sig, siginfo_t *info, void *uctx) {
  (void)uctx;
  char buf[700];
  size_t n = 0;
  char num[8];
  int v = sig, k = 0;
  do num[k++] = (char)('0' + v % 10); while ((v /= 10) && k < 7);
  for (const char *p = "FAIL crashed (signal "; *p; p++) buf[n++] = *p;
  while (k) buf[n++] = num[--k];
  for (const char *p = ") in "; *p; p++) buf[n++] = *p;
  for (const char *p = g_case; *p && n < sizeof buf - 2; p++) buf[n++] = *p;
  buf[n++] = '\n';
  ssize_t w = write(1, buf, n);
  (void)w;
  /* the previous handler (default, or AddressSanitizer's) takes over: a fault re-executes the
   * faulting instruction on return; a signal that was sent is sent again */
  sigaction(sig, &g_old_act[sig], NULL);
  if (info->si_code <= 0) raise(sig);
}

static void crash_handlers(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  snprintf(g_case, sizeof g_case, "setup");
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, &g_old_act[sigs[i]]);
  }
}

/* Does the filter select a case with these ops ("a b c") and parameters? If so, it is the case
 * that runs next. */
static int want(const char *ops, const char *par) {
  if (!g_filter || want_match(ops, par)) {
    snprintf(g_case, sizeof g_case, "%s %s", ops, par);
    return 1;
  }
  return 0;
}

static int want_match(const char *ops, const char *par) {
  char buf[512];
  const char *p = ops;
  while (*p) {
    size_t n = strcspn(p, " ");
    snprintf(buf, sizeof buf, "%.*s %s", (int)n, p, par);
    if (strstr(buf, g_filter)) return 1;
    p += n;
    while (*p == ' ') p++;
  }
  return 0;
}

/* Seeds the host RNG from the case's name: a case draws the same data whatever runs before. */
static void case_seed(const char *ops, const char *par) {
  uint64_t h = 1469598103934665603ull;
  for (const char *s = ops; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  for (const char *s = par; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  g_rng = h;
}

static void line_begin(line_t *L, const char *op, const char *par, double tol, int phase) {
  memset(L, 0, sizeof *L);
  snprintf(L->op, sizeof L->op, "%s", op);
  snprintf(L->par, sizeof L->par, "%s", par);
  L->tol = tol;
  L->phase = phase;
}

static void note(line_t *L, double err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(line_t *L, double err, const char *fmt, ...) {
  if (err != err) err = INFINITY;
  if (!(err < L->tol)) L->bad = 1;
  if (err > L->err || !L->worst[0]) {
    L->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->worst, sizeof L->worst, fmt, ap);
    va_end(ap);
  }
}

/* Relative error of dev against ref over n floats (NaN in both places counts as equal). */
static void cmp_f(line_t *L, const char *what, const float *ref, const float *dev, int64_t n) {
  double mx = 0.0, md = 0.0;
  int64_t wi = -1;
  for (int64_t i = 0; i < n; i++) {
    double a = ref[i];
    if (a == a && fabs(a) > mx) mx = fabs(a);
  }
  for (int64_t i = 0; i < n; i++) {
    double a = ref[i], b = dev[i], d;
    if (a != a || b != b) d = (a != a && b != b) ? 0.0 : INFINITY;
    else if (isinf(a) || isinf(b)) d = a == b ? 0.0 : INFINITY;
    else d = fabs(a - b);
    if (d > md || wi < 0) {
      md = d;
      wi = i;
    }
    if (isinf(d)) break;
  }
  if (wi < 0) return;
  double err = md / (mx > 1e-6 ? mx : 1e-6);
  note(L, err, "worst %s index %lld: cpu=%.9g dev=%.9g", what, (long long)wi, (double)ref[wi],
       (double)dev[wi]);
}

static void cmp_d(line_t *L, const char *what, double ref, double dev) {
  double d = (ref != ref || dev != dev) ? ((ref != ref && dev != dev) ? 0.0 : INFINITY)
                                        : fabs(ref - dev);
  double err = d / (fabs(ref) > 1e-6 ? fabs(ref) : 1e-6);
  note(L, err, "%s: cpu=%.17g dev=%.17g", what, ref, dev);
}

static void cmp_i32(line_t *L, const char *what, const int32_t *ref, const int32_t *dev,
                    int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (ref[i] != dev[i]) {
      note(L, INFINITY, "%s index %lld differs: cpu=%d dev=%d", what, (long long)i, (int)ref[i],
           (int)dev[i]);
      return;
    }
  note(L, 0.0, "%s", what);
}

static void cmp_u8(line_t *L, const char *what, const uint8_t *ref, const uint8_t *dev, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (ref[i] != dev[i]) {
      note(L, INFINITY, "%s index %lld differs: cpu=%d dev=%d", what, (long long)i, (int)ref[i],
           (int)dev[i]);
      return;
    }
  note(L, 0.0, "%s", what);
}

static void cmp_i64(line_t *L, const char *what, int64_t ref, int64_t dev) {
  note(L, ref == dev ? 0.0 : INFINITY, "%s: cpu=%lld dev=%lld", what, (long long)ref,
       (long long)dev);
}

static int line_end(line_t *L) {
  count_op(L->op);
  const backend *bs[2] = {&g_ref, &g_dev};
  char errs[3000] = "";
  for (int i = 0; i < 2; i++) {
    const backend *b = bs[i];
    if (b->failed && b->fail_phase <= L->phase) {
      size_t n = strlen(errs);
      snprintf(errs + n, sizeof errs - n, "\n     %s: %s", b->label, b->why);
      L->bad = 1;
    }
  }
  if (!L->bad) {
    g_pass++;
    printf("ok   %s %s err=%.3g\n", L->op, L->par, L->err);
  } else {
    g_fail++;
    printf("FAIL %s %s err=%.3g (%s)%s\n", L->op, L->par, L->err, L->worst[0] ? L->worst : "-",
           errs);
  }
  fflush(stdout);
  return !L->bad;
}

/* Runs `body` (a statement using `B`, the backend) for the reference and then the device. */
#define BOTH(body)            \
  do {                        \
    backend *B = &g_ref;      \
    be_begin(B);              \
    body;                     \
    be_end(B);                \
    B = &g_dev;               \
    be_begin(B);              \
    body;                     \
    be_end(B);                \
  } while (0)

/* ================================================================ dense ops ================ */

static int g_nan_beta0 = 1;   /* C of beta-0 GEMMs and y of beta-0 axpby start as NaN */

static void run_gemm(backend *b, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, int64_t na, const float *bm, int64_t ldb,
                     int64_t nb, float beta, float *c, int64_t ldc, int64_t nc) {
  float *A = UPF(b, a, na), *Bm = UPF(b, bm, nb), *C = UPF(b, c, nc);
  OPCALL(b, gemm, ta, tb, m, n, k, alpha, A, lda, Bm, ldb, beta, C, ldc);
  DOWNF(b, c, C, nc);
}

static void case_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, float beta,
                      int pad) {
  char par[240];
  int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  int64_t lda = (ac > 1 ? ac : 1) + (pad ? 3 : 0), ldb = (bc > 1 ? bc : 1) + (pad ? 5 : 0);
  int64_t ldc = (n > 1 ? n : 1) + (pad ? 2 : 0);
  snprintf(par, sizeof par,
           "ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g beta=%g lda=%lld ldb=%lld ldc=%lld",
           ta, tb, (long long)m, (long long)n, (long long)k, alpha, beta, (long long)lda,
           (long long)ldb, (long long)ldc);
  if (!want("gemm", par)) return;
  case_seed("gemm", par);
  int64_t na = ar * lda, nb = br * ldb, nc = m * ldc;
  float *a = hmat(ar, ac, lda, -1, 1), *bm = hmat(br, bc, ldb, -1, 1);
  float *c0 = hmat(m, n, ldc, -1, 1);
  for (int64_t i = 0; i < m; i++)   /* the gaps of C must stay as they are: finite */
    for (int64_t j = n; j < ldc; j++) c0[i * ldc + j] = 7.0f;
  if (beta == 0.0f && g_nan_beta0)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) c0[i * ldc + j] = NAN;
  float *c[2] = {hdup(c0, nc), hdup(c0, nc)};
  int w = 0;
  BOTH(run_gemm(B, ta, tb, m, n, k, alpha, a, lda, na, bm, ldb, nb, beta, c[w++], ldc, nc));
  line_t L;
  line_begin(&L, "gemm", par, TOL, 1);
  cmp_f(&L, "c", c[0], c[1], nc);
  line_end(&L);
  hfree_all();
}

static void run_gemm_batched(backend *b, int ta, int tb, int64_t m, int64_t n, int64_t k,
                             float alpha, const float *a, int64_t lda, int64_t sa, int64_t na,
                             const float *bm, int64_t ldb, int64_t sb, int64_t nb, float beta,
                             float *c, int64_t ldc, int64_t sc, int64_t nc, int64_t batch) {
  float *A = UPF(b, a, na), *Bm = UPF(b, bm, nb), *C = UPF(b, c, nc);
  OPCALL(b, gemm_strided_batched, ta, tb, m, n, k, alpha, A, lda, sa, Bm, ldb, sb, beta, C, ldc,
         sc, batch);
  DOWNF(b, c, C, nc);
}

static void case_gemm_batched(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                              float beta, int pad, int64_t batch) {
  char par[240];
  int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  int64_t lda = ac + (pad ? 3 : 0), ldb = bc + (pad ? 1 : 0), ldc = n + (pad ? 2 : 0);
  int64_t sa = ar * lda + (pad ? 5 : 0), sb = br * ldb + (pad ? 7 : 0);
  int64_t sc = m * ldc + (pad ? 3 : 0);
  snprintf(par, sizeof par,
           "ta=%d tb=%d m=%lld n=%lld k=%lld batch=%lld alpha=%g beta=%g ld=%lld,%lld,%lld "
           "stride=%lld,%lld,%lld",
           ta, tb, (long long)m, (long long)n, (long long)k, (long long)batch, alpha, beta,
           (long long)lda, (long long)ldb, (long long)ldc, (long long)sa, (long long)sb,
           (long long)sc);
  if (!want("gemm_strided_batched", par)) return;
  case_seed("gemm_strided_batched", par);
  int64_t na = sa * batch, nb = sb * batch, nc = sc * batch;
  float *a = hconst(na, NAN), *bm = hconst(nb, NAN), *c0 = hconst(nc, 7.0f);
  for (int64_t q = 0; q < batch; q++) {
    for (int64_t i = 0; i < ar; i++)
      for (int64_t j = 0; j < ac; j++) a[q * sa + i * lda + j] = rf(-1, 1);
    for (int64_t i = 0; i < br; i++)
      for (int64_t j = 0; j < bc; j++) bm[q * sb + i * ldb + j] = rf(-1, 1);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++)
        c0[q * sc + i * ldc + j] = beta == 0.0f && g_nan_beta0 ? NAN : rf(-1, 1);
  }
  float *c[2] = {hdup(c0, nc), hdup(c0, nc)};
  int w = 0;
  BOTH(run_gemm_batched(B, ta, tb, m, n, k, alpha, a, lda, sa, na, bm, ldb, sb, nb, beta, c[w++],
                        ldc, sc, nc, batch));
  line_t L;
  line_begin(&L, "gemm_strided_batched", par, TOL, 1);
  cmp_f(&L, "c", c[0], c[1], nc);
  line_end(&L);
  hfree_all();
}

static void run_add_bias(backend *b, float *y, int64_t ldy, const float *bias, int64_t m,
                         int64_t n) {
  float *Y = UPF(b, y, m * ldy), *Bi = UPF(b, bias, n);
  OPCALL(b, add_bias, Y, ldy, Bi, m, n);
  DOWNF(b, y, Y, m * ldy);
}

static void case_add_bias(int64_t m, int64_t n, int64_t ldy) {
  char par[240];
  snprintf(par, sizeof par, "m=%lld n=%lld ldy=%lld", (long long)m, (long long)n, (long long)ldy);
  if (!want("add_bias", par)) return;
  case_seed("add_bias", par);
  float *y0 = hrand(m * ldy, -1, 1), *bias = hrand(n, -1, 1);
  float *y[2] = {hdup(y0, m * ldy), hdup(y0, m * ldy)};
  int w = 0;
  BOTH(run_add_bias(B, y[w++], ldy, bias, m, n));
  line_t L;
  line_begin(&L, "add_bias", par, TOL, 1);
  cmp_f(&L, "y", y[0], y[1], m * ldy);
  line_end(&L);
  hfree_all();
}

static void run_bias_grad(backend *b, const float *dy, int64_t lddy, float *db, int64_t m,
                          int64_t n) {
  float *DY = UPF(b, dy, m * lddy), *DB = UPF(b, db, n);
  OPCALL(b, bias_grad, DY, lddy, DB, m, n);
  DOWNF(b, db, DB, n);
}

static void case_bias_grad(int64_t m, int64_t n, int64_t lddy) {
  char par[240];
  snprintf(par, sizeof par, "m=%lld n=%lld lddy=%lld", (long long)m, (long long)n, (long long)lddy);
  if (!want("bias_grad", par)) return;
  case_seed("bias_grad", par);
  float *dy = hmat(m, n, lddy, -1, 1), *db0 = hrand(n, -1, 1);
  float *db[2] = {hdup(db0, n), hdup(db0, n)};
  int w = 0;
  BOTH(run_bias_grad(B, dy, lddy, db[w++], m, n));
  line_t L;
  line_begin(&L, "bias_grad", par, TOL, 1);
  cmp_f(&L, "dbias", db[0], db[1], n);
  line_end(&L);
  hfree_all();
}

static void run_copy2d(backend *b, float *dst, int64_t ldd, const float *src, int64_t lds,
                       int64_t m, int64_t n, int acc) {
  float *D = UPF(b, dst, m * ldd), *S = UPF(b, src, m * lds);
  OPCALL(b, copy2d, D, ldd, S, lds, m, n, acc);
  DOWNF(b, dst, D, m * ldd);
}

static void case_copy2d(int64_t m, int64_t n, int64_t ldd, int64_t lds, int acc) {
  char par[240];
  snprintf(par, sizeof par, "m=%lld n=%lld ldd=%lld lds=%lld accumulate=%d", (long long)m,
           (long long)n, (long long)ldd, (long long)lds, acc);
  if (!want("copy2d", par)) return;
  case_seed("copy2d", par);
  float *src = hmat(m, n, lds, -1, 1), *d0 = hrand(m * ldd, -1, 1);
  float *d[2] = {hdup(d0, m * ldd), hdup(d0, m * ldd)};
  int w = 0;
  BOTH(run_copy2d(B, d[w++], ldd, src, lds, m, n, acc));
  line_t L;
  line_begin(&L, "copy2d", par, TOL, 1);
  cmp_f(&L, "dst", d[0], d[1], m * ldd);
  line_end(&L);
  hfree_all();
}

static void run_axpby(backend *b, int64_t n, float alpha, const float *x, float beta, float *y) {
  float *X = UPF(b, x, n), *Y = UPF(b, y, n);
  OPCALL(b, axpby, n, alpha, X, beta, Y);
  DOWNF(b, y, Y, n);
}

static void case_axpby(int64_t n, float alpha, float beta) {
  char par[240];
  snprintf(par, sizeof par, "n=%lld alpha=%g beta=%g", (long long)n, alpha, beta);
  if (!want("axpby", par)) return;
  case_seed("axpby", par);
  float *x = hrand(n, -1, 1), *y0 = beta == 0.0f && g_nan_beta0 ? hconst(n, NAN) : hrand(n, -1, 1);
  float *y[2] = {hdup(y0, n), hdup(y0, n)};
  int w = 0;
  BOTH(run_axpby(B, n, alpha, x, beta, y[w++]));
  line_t L;
  line_begin(&L, "axpby", par, TOL, 1);
  cmp_f(&L, "y", y[0], y[1], n);
  line_end(&L);
  hfree_all();
}

/* ================================================================ embeddings =============== */

static void run_emb_sum(backend *b, const float *table, int64_t nrows, int64_t dim,
                        const int32_t *rows, int64_t n, int64_t len, float *out, int64_t ldo) {
  float *T = UPF(b, table, nrows * dim), *O = UPF(b, out, n * ldo);
  int32_t *R = UPI(b, rows, n * len);
  OPCALL(b, emb_sum_fwd, T, dim, R, n, len, O, ldo);
  DOWNF(b, out, O, n * ldo);
}

static void case_emb_sum(int64_t nrows, int64_t dim, int64_t n, int64_t len, int64_t ldo) {
  char par[240];
  snprintf(par, sizeof par, "table=%lldx%lld n=%lld len=%lld ldo=%lld", (long long)nrows,
           (long long)dim, (long long)n, (long long)len, (long long)ldo);
  if (!want("emb_sum_fwd", par)) return;
  case_seed("emb_sum_fwd", par);
  float *table = hrand(nrows * dim, -1, 1);
  int32_t *rows = hrandi(n * len, 1, nrows);
  for (int64_t i = 0; i < n * len; i++)
    if (ru() < 0.25) rows[i] = 0;   /* padding */
  if (n > 1)
    for (int64_t l = 0; l < len; l++) rows[1 * len + l] = 0;   /* a sample with nothing */
  float *o0 = hrand(n * ldo, -1, 1);
  float *o[2] = {hdup(o0, n * ldo), hdup(o0, n * ldo)};
  int w = 0;
  BOTH(run_emb_sum(B, table, nrows, dim, rows, n, len, o[w++], ldo));
  line_t L;
  line_begin(&L, "emb_sum_fwd", par, TOL, 1);
  cmp_f(&L, "out", o[0], o[1], n * ldo);
  line_end(&L);
  hfree_all();
}

static void run_emb_fields(backend *b, const float *table, int64_t nrows, int64_t dim,
                           const int32_t *rows, int64_t n, int64_t f, float *out, int64_t ldo) {
  float *T = UPF(b, table, nrows * dim), *O = UPF(b, out, n * ldo);
  int32_t *R = UPI(b, rows, n * f);
  OPCALL(b, emb_fields_fwd, T, dim, R, n, f, O, ldo);
  DOWNF(b, out, O, n * ldo);
}

static void case_emb_fields(int64_t nrows, int64_t dim, int64_t n, int64_t f, int64_t ldo) {
  char par[240];
  snprintf(par, sizeof par, "table=%lldx%lld n=%lld f=%lld ldo=%lld", (long long)nrows, (long long)dim,
           (long long)n, (long long)f, (long long)ldo);
  if (!want("emb_fields_fwd", par)) return;
  case_seed("emb_fields_fwd", par);
  float *table = hrand(nrows * dim, -1, 1);
  int32_t *rows = hrandi(n * f, 1, nrows);
  for (int64_t i = 0; i < n * f; i++)
    if (ru() < 0.2) rows[i] = 0;   /* padding */
  float *o0 = hrand(n * ldo, -1, 1);   /* the columns past f*dim must stay as they are */
  float *o[2] = {hdup(o0, n * ldo), hdup(o0, n * ldo)};
  int w = 0;
  BOTH(run_emb_fields(B, table, nrows, dim, rows, n, f, o[w++], ldo));
  line_t L;
  line_begin(&L, "emb_fields_fwd", par, 1e-12, 1);   /* copies: exact */
  cmp_f(&L, "out", o[0], o[1], n * ldo);
  line_end(&L);
  hfree_all();
}

static void run_emb_grad(backend *b, const int32_t *rows, const int32_t *src, int64_t count,
                         const float *dout, int64_t ndout, int64_t lddo, int64_t dim,
                         int32_t *uniq, float *grad, int64_t *n_uniq) {
  int32_t *R = UPI(b, rows, count), *S = UPI(b, src, count);
  float *D = UPF(b, dout, ndout * lddo);
  int32_t *U = be_alloc(b, (size_t)count * sizeof(int32_t));
  float *G = be_alloc(b, (size_t)(count * dim) * sizeof(float));
  *n_uniq = -1;
  OPCALL(b, emb_grad_rows, R, S, count, D, lddo, dim, U, G, n_uniq);
  int64_t nu = *n_uniq;
  if (nu < 0 || nu > count) nu = 0;
  DOWNI(b, uniq, U, nu);
  DOWNF(b, grad, G, nu * dim);
}

/* rows: a hot row (`hot` pairs), row-0 pairs (frac0), the rest uniform in [1, nrows) */
static void case_emb_grad(int64_t count, int64_t dim, int64_t nrows, int64_t hot, double frac0,
                          int64_t ndout, int64_t lddo) {
  char par[240];
  snprintf(par, sizeof par, "count=%lld dim=%lld rows<%lld hot=%lld zero=%.2f dout=%lldx%lld",
           (long long)count, (long long)dim, (long long)nrows, (long long)hot, frac0,
           (long long)ndout, (long long)lddo);
  if (!want("emb_grad_rows", par)) return;
  case_seed("emb_grad_rows", par);
  int32_t *rows = hrandi(count, 1, nrows), *src = hrandi(count, 0, ndout);
  int32_t hot_row = ri(1, nrows);
  for (int64_t i = 0; i < count; i++) {
    double u = ru();
    if (u < frac0) rows[i] = 0;
    else if (hot && u < frac0 + (double)hot / (double)count) rows[i] = hot_row;
  }
  float *dout = hmat(ndout, dim, lddo, -1, 1);
  int32_t *uq[2] = {hmalloc((size_t)count * 4), hmalloc((size_t)count * 4)};
  float *g[2] = {hconst(count * dim, NAN), hconst(count * dim, NAN)};
  int64_t nu[2];
  int w = 0;
  BOTH((run_emb_grad(B, rows, src, count, dout, ndout, lddo, dim, uq[w], g[w], &nu[w]), w++));
  line_t L;
  line_begin(&L, "emb_grad_rows", par, TOL, 1);
  cmp_i64(&L, "n_uniq", nu[0], nu[1]);
  if (nu[0] == nu[1] && nu[0] >= 0) {
    cmp_i32(&L, "uniq_rows", uq[0], uq[1], nu[0]);
    cmp_f(&L, "grad", g[0], g[1], nu[0] * dim);
  }
  line_end(&L);
  hfree_all();
}

/* ================================================================ activations ============== */

static const char *const k_act[] = {"identity", "relu", "gelu", "swish", "sigmoid"};

static void run_act(backend *b, int act, const float *x, const float *dy, int64_t n, float *y,
                    float *dx) {
  float *X = UPF(b, x, n), *Y = UPF(b, y, n), *DY = UPF(b, dy, n), *DX = UPF(b, dx, n);
  OPCALL(b, act_fwd, act, X, Y, n);
  OPCALL(b, act_bwd, act, X, Y, DY, DX, n);
  DOWNF(b, y, Y, n);
  DOWNF(b, dx, DX, n);
}

static void case_act(int act, int64_t n) {
  char par[240];
  snprintf(par, sizeof par, "act=%s n=%lld", k_act[act], (long long)n);
  if (!want("act_fwd act_bwd", par)) return;
  case_seed("act", par);
  float *x = hrand(n, -7, 7), *dy = hrand(n, -1, 1);
  for (int64_t i = 0; i < n; i += 17) x[i] = 0.0f;   /* after a dropout, say */
  float *y0 = hrand(n, -1, 1), *dx0 = hrand(n, -1, 1);
  float *y[2] = {hdup(y0, n), hdup(y0, n)}, *dx[2] = {hdup(dx0, n), hdup(dx0, n)};
  int w = 0;
  BOTH((run_act(B, act, x, dy, n, y[w], dx[w]), w++));
  line_t L;
  line_begin(&L, "act_fwd", par, TOL, 1);
  cmp_f(&L, "y", y[0], y[1], n);
  line_end(&L);
  line_begin(&L, "act_bwd", par, TOL, 2);
  cmp_f(&L, "dx", dx[0], dx[1], n);
  line_end(&L);
  hfree_all();
}

typedef struct {
  float *y, *rm, *rv, *save, *dx, *dalpha;
} dice_out;

static void run_dice(backend *b, const float *x, const float *dy, int64_t m, int64_t n,
                     const float *alpha, float eps, int training, dice_out o) {
  float *X = UPF(b, x, m * n), *Y = UPF(b, o.y, m * n), *A = UPF(b, alpha, n);
  float *RM = UPF(b, o.rm, n), *RV = UPF(b, o.rv, n), *S = be_alloc(b, (size_t)(2 * n) * 4);
  OPCALL(b, dice_fwd, X, Y, m, n, A, RM, RV, eps, training, S);
  float *DY = NULL, *DX = NULL, *DA = NULL;
  if (training) {
    DY = UPF(b, dy, m * n);
    DX = UPF(b, o.dx, m * n);
    DA = UPF(b, o.dalpha, n);
    OPCALL(b, dice_bwd, X, DY, DX, m, n, A, DA, eps, S);
  }
  DOWNF(b, o.y, Y, m * n);
  DOWNF(b, o.rm, RM, n);
  DOWNF(b, o.rv, RV, n);
  if (training) {
    DOWNF(b, o.save, S, 2 * n);
    DOWNF(b, o.dx, DX, m * n);
    DOWNF(b, o.dalpha, DA, n);
  }
}

static void case_dice(int64_t m, int64_t n, int training, float eps) {
  char par[240];
  snprintf(par, sizeof par, "m=%lld n=%lld %s eps=%g", (long long)m, (long long)n,
           training ? "training" : "inference", eps);
  if (!want(training ? "dice_fwd dice_bwd" : "dice_fwd", par)) return;
  case_seed("dice", par);
  float *x = hrand(m * n, -2, 2);
  for (int64_t i = 0; i < m; i++)   /* columns with their own offsets and scales */
    for (int64_t j = 0; j < n; j++)
      x[i * n + j] = x[i * n + j] * (0.5f + (float)(j % 5)) + 0.3f * (float)(j % 3);
  float *dy = hrand(m * n, -1, 1), *alpha = hrand(n, -0.5f, 0.5f);
  float *rm0 = hrand(n, -0.5f, 0.5f), *rv0 = hrand(n, 0.5f, 2.0f);
  float *y0 = hrand(m * n, -1, 1), *dx0 = hrand(m * n, -1, 1), *da0 = hrand(n, -1, 1);
  dice_out o[2];
  for (int i = 0; i < 2; i++) {
    o[i].y = hdup(y0, m * n);
    o[i].rm = hdup(rm0, n);
    o[i].rv = hdup(rv0, n);
    o[i].save = hconst(2 * n, NAN);
    o[i].dx = hdup(dx0, m * n);
    o[i].dalpha = hdup(da0, n);
  }
  int w = 0;
  BOTH(run_dice(B, x, dy, m, n, alpha, eps, training, o[w++]));
  line_t L;
  line_begin(&L, "dice_fwd", par, TOL, 1);
  cmp_f(&L, "y", o[0].y, o[1].y, m * n);
  cmp_f(&L, "running_mean", o[0].rm, o[1].rm, n);
  cmp_f(&L, "running_var", o[0].rv, o[1].rv, n);
  if (training) cmp_f(&L, "save(mean,inv_std)", o[0].save, o[1].save, 2 * n);
  line_end(&L);
  if (training) {
    line_begin(&L, "dice_bwd", par, TOL, 2);
    cmp_f(&L, "dx", o[0].dx, o[1].dx, m * n);
    cmp_f(&L, "dalpha", o[0].dalpha, o[1].dalpha, n);
    line_end(&L);
  }
  hfree_all();
}

/* ================================================================ layernorm, dropout ======= */

typedef struct {
  float *y, *dx, *dg, *db;
} ln_out;

static void run_ln(backend *b, const float *x, const float *dy, int64_t m, int64_t n,
                   const float *g, const float *be, float eps, ln_out o) {
  float *X = UPF(b, x, m * n), *Y = UPF(b, o.y, m * n), *G = UPF(b, g, n), *Be = UPF(b, be, n);
  float *S = be_alloc(b, (size_t)(2 * m) * 4);
  float *DY = UPF(b, dy, m * n), *DX = UPF(b, o.dx, m * n), *DG = UPF(b, o.dg, n),
        *DB = UPF(b, o.db, n);
  OPCALL(b, layernorm_fwd, X, Y, m, n, G, Be, eps, S);
  OPCALL(b, layernorm_bwd, X, DY, DX, m, n, G, DG, DB, S);
  DOWNF(b, o.y, Y, m * n);
  DOWNF(b, o.dx, DX, m * n);
  DOWNF(b, o.dg, DG, n);
  DOWNF(b, o.db, DB, n);
}

static void case_ln(int64_t m, int64_t n) {
  char par[240];
  snprintf(par, sizeof par, "m=%lld n=%lld", (long long)m, (long long)n);
  if (!want("layernorm_fwd layernorm_bwd", par)) return;
  case_seed("layernorm", par);
  float *x = hrand(m * n, -2, 3), *dy = hrand(m * n, -1, 1);
  float *g = hrand(n, 0.5f, 1.5f), *be = hrand(n, -0.5f, 0.5f);
  float *y0 = hrand(m * n, -1, 1), *dx0 = hrand(m * n, -1, 1), *dg0 = hrand(n, -1, 1),
        *db0 = hrand(n, -1, 1);
  ln_out o[2];
  for (int i = 0; i < 2; i++)
    o[i] = (ln_out){hdup(y0, m * n), hdup(dx0, m * n), hdup(dg0, n), hdup(db0, n)};
  int w = 0;
  BOTH(run_ln(B, x, dy, m, n, g, be, 1e-5f, o[w++]));
  line_t L;
  line_begin(&L, "layernorm_fwd", par, TOL, 1);
  cmp_f(&L, "y", o[0].y, o[1].y, m * n);
  line_end(&L);
  line_begin(&L, "layernorm_bwd", par, TOL, 2);
  cmp_f(&L, "dx", o[0].dx, o[1].dx, m * n);
  cmp_f(&L, "dgamma", o[0].dg, o[1].dg, n);
  cmp_f(&L, "dbeta", o[0].db, o[1].db, n);
  line_end(&L);
  hfree_all();
}

static void run_dropout(backend *b, const float *x, const float *dy, int64_t n, float p,
                        uint64_t seed, uint64_t off, float *y, uint8_t *mask, float *dx) {
  float *X = UPF(b, x, n), *Y = UPF(b, y, n), *DY = UPF(b, dy, n), *DX = UPF(b, dx, n);
  uint8_t *M = be_up(b, mask, (size_t)n);
  OPCALL(b, dropout_fwd, X, Y, M, n, p, seed, off);
  OPCALL(b, dropout_bwd, DY, DX, M, n, p);
  DOWNF(b, y, Y, n);
  be_down(b, mask, M, (size_t)n);
  DOWNF(b, dx, DX, n);
}

static void case_dropout(int64_t n, float p, uint64_t seed, uint64_t off) {
  char par[240];
  snprintf(par, sizeof par, "n=%lld p=%g seed=%llu offset=%llu", (long long)n, p,
           (unsigned long long)seed, (unsigned long long)off);
  if (!want("dropout_fwd dropout_bwd", par)) return;
  case_seed("dropout", par);
  float *x = hrand(n, -2, 2), *dy = hrand(n, -1, 1), *y0 = hrand(n, -1, 1), *dx0 = hrand(n, -1, 1);
  float *y[2] = {hdup(y0, n), hdup(y0, n)}, *dx[2] = {hdup(dx0, n), hdup(dx0, n)};
  uint8_t *mk[2] = {hmalloc((size_t)n), hmalloc((size_t)n)};
  memset(mk[0], 0xcd, (size_t)n);
  memset(mk[1], 0xcd, (size_t)n);
  int w = 0;
  BOTH((run_dropout(B, x, dy, n, p, seed, off, y[w], mk[w], dx[w]), w++));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) kept += mk[0][i] == 1;
  char par2[300];
  snprintf(par2, sizeof par2, "%s kept=%.3f", par, (double)kept / (double)n);
  line_t L;
  line_begin(&L, "dropout_fwd", par2, TOL, 1);
  cmp_u8(&L, "mask", mk[0], mk[1], n);
  cmp_f(&L, "y", y[0], y[1], n);
  line_end(&L);
  line_begin(&L, "dropout_bwd", par2, TOL, 2);
  cmp_f(&L, "dx", dx[0], dx[1], n);
  line_end(&L);
  hfree_all();
}

/* ================================================================ interactions ============= */

typedef struct {
  float *out, *de;
} had_out;

static void run_hadamard(backend *b, const float *e, int64_t lde, int64_t bsz, int64_t k,
                         const int32_t *fields, const int32_t *order, int64_t ni, int64_t mo,
                         int64_t ldo, const float *dout, int64_t lddo, had_out o) {
  float *E = UPF(b, e, bsz * lde), *O = UPF(b, o.out, bsz * ldo);
  int32_t *Fi = UPI(b, fields, ni * mo), *Or = UPI(b, order, ni);
  float *DO = UPF(b, dout, bsz * lddo), *DE = UPF(b, o.de, bsz * lde);
  OPCALL(b, hadamard_fwd, E, lde, bsz, k, Fi, Or, ni, mo, O, ldo);
  OPCALL(b, hadamard_bwd, E, lde, bsz, k, Fi, Or, ni, mo, DO, lddo, DE);
  DOWNF(b, o.out, O, bsz * ldo);
  DOWNF(b, o.de, DE, bsz * lde);
}

static void case_hadamard(int64_t bsz, int64_t f, int64_t k, int64_t ni, int64_t mo, int64_t lde,
                          int64_t ldo, int64_t lddo) {
  char par[240];
  snprintf(par, sizeof par,
           "b=%lld f=%lld k=%lld n_inter=%lld max_order=%lld lde=%lld ldo=%lld lddo=%lld",
           (long long)bsz, (long long)f, (long long)k, (long long)ni, (long long)mo,
           (long long)lde, (long long)ldo, (long long)lddo);
  if (!want("hadamard_fwd hadamard_bwd", par)) return;
  case_seed("hadamard", par);
  float *e = hmat(bsz, f * k, lde, -1.5f, 1.5f);
  int32_t *fields = hmalloc((size_t)(ni * mo) * 4), *order = hmalloc((size_t)ni * 4);
  for (int64_t i = 0; i < ni; i++) {
    order[i] = mo == 1 ? 1 : (int32_t)(i % 5 == 3 ? ri(1, mo + 1) : mo);   /* mostly full */
    for (int64_t o = 0; o < mo; o++) fields[i * mo + o] = o < order[i] ? ri(0, f) : -1;
    if (i == 1 && order[i] >= 2) fields[i * mo + 1] = fields[i * mo];   /* a repeated field */
  }
  float *dout = hmat(bsz, ni * k, lddo, -1, 1);
  float *o0 = hrand(bsz * ldo, -1, 1), *de0 = hrand(bsz * lde, -1, 1);
  had_out o[2];
  for (int i = 0; i < 2; i++) o[i] = (had_out){hdup(o0, bsz * ldo), hdup(de0, bsz * lde)};
  int w = 0;
  BOTH(run_hadamard(B, e, lde, bsz, k, fields, order, ni, mo, ldo, dout, lddo, o[w++]));
  line_t L;
  line_begin(&L, "hadamard_fwd", par, TOL, 1);
  cmp_f(&L, "out", o[0].out, o[1].out, bsz * ldo);
  line_end(&L);
  line_begin(&L, "hadamard_bwd", par, TOL, 2);
  cmp_f(&L, "de", o[0].de, o[1].de, bsz * lde);
  line_end(&L);
  hfree_all();
}

static void run_fm(backend *b, const float *e, int64_t lde, int64_t bsz, int64_t f, int64_t k,
                   int acc, const float *dout, float *out, float *de) {
  float *E = UPF(b, e, bsz * lde), *O = UPF(b, out, bsz), *DO = UPF(b, dout, bsz),
        *DE = UPF(b, de, bsz * lde);
  OPCALL(b, fm_fwd, E, lde, bsz, f, k, O, acc);
  OPCALL(b, fm_bwd, E, lde, bsz, f, k, DO, DE);
  DOWNF(b, out, O, bsz);
  DOWNF(b, de, DE, bsz * lde);
}

static void case_fm(int64_t bsz, int64_t f, int64_t k, int64_t lde, int acc) {
  char par[240];
  snprintf(par, sizeof par, "b=%lld f=%lld k=%lld lde=%lld accumulate=%d", (long long)bsz,
           (long long)f, (long long)k, (long long)lde, acc);
  if (!want("fm_fwd fm_bwd", par)) return;
  case_seed("fm", par);
  float *e = hmat(bsz, f * k, lde, -1, 1), *dout = hrand(bsz, -1, 1);
  float *o0 = hrand(bsz, -1, 1), *de0 = hrand(bsz * lde, -1, 1);
  float *o[2] = {hdup(o0, bsz), hdup(o0, bsz)};
  float *de[2] = {hdup(de0, bsz * lde), hdup(de0, bsz * lde)};
  int w = 0;
  BOTH((run_fm(B, e, lde, bsz, f, k, acc, dout, o[w], de[w]), w++));
  line_t L;
  line_begin(&L, "fm_fwd", par, TOL, 1);
  cmp_f(&L, "out", o[0], o[1], bsz);
  line_end(&L);
  line_begin(&L, "fm_bwd", par, TOL, 2);
  cmp_f(&L, "de", de[0], de[1], bsz * lde);
  line_end(&L);
  hfree_all();
}

/* outputs of the SE pair: out, dq, dv, dw1, db1, dw2, db2 */
enum { SE_OUT, SE_DQ, SE_DV, SE_DW1, SE_DB1, SE_DW2, SE_DB2, SE_N };

static void run_se(backend *b, const float *q, int64_t ldq, int64_t bsz, int64_t s, int64_t k,
                   const float *v, const float *w1, const float *b1, int64_t r, const float *w2,
                   const float *b2, int64_t ldo, const float *dout, int64_t lddo, float **o,
                   const int64_t *sz) {
  float *Q = UPF(b, q, bsz * ldq), *V = UPF(b, v, k), *W1 = UPF(b, w1, r * s),
        *B1 = UPF(b, b1, r), *W2 = UPF(b, w2, s * r), *B2 = UPF(b, b2, s);
  float *S = be_alloc(b, (size_t)(bsz * (2 * s + r)) * 4), *DO = UPF(b, dout, bsz * lddo);
  float *D[SE_N];
  for (int j = 0; j < SE_N; j++) D[j] = UPF(b, o[j], sz[j]);
  OPCALL(b, se_fwd, Q, ldq, bsz, s, k, V, W1, B1, r, W2, B2, D[SE_OUT], ldo, S);
  OPCALL(b, se_bwd, Q, ldq, bsz, s, k, V, W1, B1, r, W2, B2, DO, lddo, S, D[SE_DQ], D[SE_DV],
         D[SE_DW1], D[SE_DB1], D[SE_DW2], D[SE_DB2]);
  for (int j = 0; j < SE_N; j++) DOWNF(b, o[j], D[j], sz[j]);
}

static void case_se(int64_t bsz, int64_t s, int64_t k, int64_t r, int64_t ldq, int64_t ldo,
                    int64_t lddo) {
  char par[240];
  snprintf(par, sizeof par, "b=%lld s=%lld k=%lld r=%lld ldq=%lld ldo=%lld lddo=%lld",
           (long long)bsz, (long long)s, (long long)k, (long long)r, (long long)ldq,
           (long long)ldo, (long long)lddo);
  if (!want("se_fwd se_bwd", par)) return;
  case_seed("se", par);
  float *q = hmat(bsz, s * k, ldq, -1, 1), *v = hrand(k, -1, 1);
  float *w1 = hrand(r * s, -0.5f, 0.5f), *b1 = hrand(r, -0.2f, 0.3f);
  float *w2 = hrand(s * r, -0.5f, 0.5f), *b2 = hrand(s, -0.3f, 0.3f);
  float *dout = hmat(bsz, k, lddo, -1, 1);
  const int64_t sz[SE_N] = {bsz * ldo, bsz * ldq, k, r * s, r, s * r, s};
  static const char *const nm[SE_N] = {"out", "dq", "dv", "dw1", "db1", "dw2", "db2"};
  float *o[2][SE_N];
  for (int j = 0; j < SE_N; j++) {
    o[0][j] = hrand(sz[j], -1, 1);
    o[1][j] = hdup(o[0][j], sz[j]);
  }
  int w = 0;
  BOTH(run_se(B, q, ldq, bsz, s, k, v, w1, b1, r, w2, b2, ldo, dout, lddo, o[w++], sz));
  line_t L;
  line_begin(&L, "se_fwd", par, TOL, 1);
  cmp_f(&L, nm[SE_OUT], o[0][SE_OUT], o[1][SE_OUT], sz[SE_OUT]);
  line_end(&L);
  line_begin(&L, "se_bwd", par, TOL, 2);
  for (int j = SE_DQ; j < SE_N; j++) cmp_f(&L, nm[j], o[0][j], o[1][j], sz[j]);
  line_end(&L);
  hfree_all();
}

/* ================================================================ loss, optimisers ========= */

static void run_bce(backend *b, const float *logit, const float *y, int64_t n, float scale,
                    double *loss, float *dl, float *prob) {
  float *X = UPF(b, logit, n), *Y = UPF(b, y, n);
  float *DL = dl ? UPF(b, dl, n) : NULL, *P = prob ? UPF(b, prob, n) : NULL;
  *loss = NAN;
  OPCALL(b, bce_logits, X, Y, n, scale, loss, DL, P);
  if (dl) DOWNF(b, dl, DL, n);
  if (prob) DOWNF(b, prob, P, n);
}

static void case_bce(int64_t n, int with_dl, int with_prob, float lim) {
  char par[240];
  snprintf(par, sizeof par, "n=%lld dlogit=%s prob=%s logits=+-%g", (long long)n,
           with_dl ? "yes" : "NULL", with_prob ? "yes" : "NULL", lim);
  if (!want("bce_logits", par)) return;
  case_seed("bce", par);
  float *x = hrand(n, -lim, lim), *y = hrand(n, 0, 1);
  for (int64_t i = 0; i < n; i++) y[i] = y[i] < 0.3f ? 1.0f : 0.0f;
  float *d0 = hrand(n, -1, 1), *p0 = hrand(n, -1, 1);
  float *dl[2] = {hdup(d0, n), hdup(d0, n)}, *pr[2] = {hdup(p0, n), hdup(p0, n)};
  double loss[2];
  int w = 0;
  BOTH((run_bce(B, x, y, n, 1.0f / (float)n, &loss[w], with_dl ? dl[w] : NULL,
                with_prob ? pr[w] : NULL),
        w++));
  line_t L;
  line_begin(&L, "bce_logits", par, TOL, 1);
  cmp_d(&L, "loss", loss[0], loss[1]);
  if (with_dl) cmp_f(&L, "dlogit", dl[0], dl[1], n);
  if (with_prob) cmp_f(&L, "prob", pr[0], pr[1], n);
  line_end(&L);
  hfree_all();
}

typedef struct {
  float lr, b1, b2, eps, l2;
  int64_t t;
} adam_hp;

/* p - p0: the update itself (the parameters dwarf it) */
static float *hdelta(const float *p, const float *p0, int64_t n) {
  float *d = hmalloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) d[i] = p[i] - p0[i];
  return d;
}

static void adam_init(int64_t n, const adam_hp *h, float **p, float **m, float **v) {
  *p = hrand(n, -0.05f, 0.05f);
  if (h->t == 1) {
    *m = hconst(n, 0.0f);
    *v = hconst(n, 0.0f);
  } else {
    *m = hrand(n, -0.01f, 0.01f);
    *v = hrand(n, 0.0f, 1e-4f);
  }
}

static void adam_cmp(line_t *L, const float *p0, float *const p[2], float *const m[2],
                     float *const v[2], int64_t n) {
  cmp_f(L, "update", hdelta(p[0], p0, n), hdelta(p[1], p0, n), n);
  cmp_f(L, "p", p[0], p[1], n);
  cmp_f(L, "m", m[0], m[1], n);
  cmp_f(L, "v", v[0], v[1], n);
}

static void run_adam_dense(backend *b, float *p, const float *g, float *m, float *v, int64_t n,
                           const adam_hp *h) {
  float *P = UPF(b, p, n), *G = UPF(b, g, n), *M = UPF(b, m, n), *V = UPF(b, v, n);
  OPCALL(b, adam_dense, P, G, M, V, n, h->lr, h->b1, h->b2, h->eps, h->l2, h->t);
  DOWNF(b, p, P, n);
  DOWNF(b, m, M, n);
  DOWNF(b, v, V, n);
}

static void case_adam_dense(int64_t n, int64_t t, float l2) {
  adam_hp h = {0.01f, 0.9f, 0.999f, 1e-8f, l2, t};
  char par[240];
  snprintf(par, sizeof par, "n=%lld t=%lld lr=%g l2=%g", (long long)n, (long long)t, h.lr, l2);
  if (!want("adam_dense", par)) return;
  case_seed("adam_dense", par);
  float *p0, *m0, *v0;
  adam_init(n, &h, &p0, &m0, &v0);
  float *g = hrand(n, -0.01f, 0.01f);
  float *p[2] = {hdup(p0, n), hdup(p0, n)}, *m[2] = {hdup(m0, n), hdup(m0, n)},
        *v[2] = {hdup(v0, n), hdup(v0, n)};
  int w = 0;
  BOTH((run_adam_dense(B, p[w], g, m[w], v[w], n, &h), w++));
  line_t L;
  line_begin(&L, "adam_dense", par, TOL, 1);
  adam_cmp(&L, p0, p, m, v, n);
  line_end(&L);
  hfree_all();
}

/* n_rows ascending unique rows in [lo, hi) */
static int32_t *huniq(int64_t n_rows, int64_t lo, int64_t hi) {
  int32_t *r = hmalloc((size_t)(n_rows > 0 ? n_rows : 1) * 4);
  int64_t need = n_rows, left = hi - lo, k = 0;
  for (int64_t x = lo; x < hi && need > 0; x++, left--)
    if (ru() * (double)left < (double)need) {   /* selection sampling */
      r[k++] = (int32_t)x;
      need--;
    }
  return r;
}

/* adam_rows (lazy: only the listed rows move) and adam_table_dense (every row moves, the unlisted
 * ones with g = 0) take the same arguments but the table's row count */
static void run_adam_sparse(backend *b, int table_dense, float *table, int64_t nrows, int64_t dim,
                            const int32_t *rows, const float *g, int64_t n_rows, float *m, float *v,
                            const adam_hp *h) {
  int64_t n = nrows * dim;
  float *T = UPF(b, table, n), *G = UPF(b, g, n_rows * dim), *M = UPF(b, m, n), *V = UPF(b, v, n);
  int32_t *R = UPI(b, rows, n_rows);
  if (table_dense)
    OPCALL(b, adam_table_dense, T, nrows, dim, R, G, n_rows, M, V, h->lr, h->b1, h->b2, h->eps,
           h->l2, h->t);
  else
    OPCALL(b, adam_rows, T, dim, R, G, n_rows, M, V, h->lr, h->b1, h->b2, h->eps, h->l2, h->t);
  DOWNF(b, table, T, n);
  DOWNF(b, m, M, n);
  DOWNF(b, v, V, n);
}

static void case_adam_sparse(int table_dense, int64_t nrows, int64_t dim, int64_t n_rows,
                             int64_t t, float l2) {
  const char *op = table_dense ? "adam_table_dense" : "adam_rows";
  adam_hp h = {0.01f, 0.9f, 0.999f, 1e-8f, l2, t};
  char par[240];
  snprintf(par, sizeof par, "table=%lldx%lld n_rows=%lld t=%lld l2=%g", (long long)nrows,
           (long long)dim, (long long)n_rows, (long long)t, l2);
  if (!want(op, par)) return;
  case_seed(op, par);
  int64_t n = nrows * dim;
  float *p0, *m0, *v0;
  adam_init(n, &h, &p0, &m0, &v0);
  int32_t *rows = huniq(n_rows, 1, nrows);
  float *g = hrand(n_rows * dim, -0.01f, 0.01f);
  float *p[2] = {hdup(p0, n), hdup(p0, n)}, *m[2] = {hdup(m0, n), hdup(m0, n)},
        *v[2] = {hdup(v0, n), hdup(v0, n)};
  int w = 0;
  BOTH((run_adam_sparse(B, table_dense, p[w], nrows, dim, rows, g, n_rows, m[w], v[w], &h), w++));
  line_t L;
  line_begin(&L, op, par, TOL, 1);
  adam_cmp(&L, p0, p, m, v, n);
  line_end(&L);
  hfree_all();
}

static void run_sumsq(backend *b, const float *x, int64_t n, double *out) {
  float *X = UPF(b, x, n);
  *out = NAN;
  OPCALL(b, sumsq, X, n, out);
}

static void case_sumsq(int64_t n) {
  char par[240];
  snprintf(par, sizeof par, "n=%lld", (long long)n);
  if (!want("sumsq", par)) return;
  case_seed("sumsq", par);
  float *x = hrand(n, -3, 3);
  double s[2];
  int w = 0;
  BOTH((run_sumsq(B, x, n, &s[w]), w++));
  line_t L;
  line_begin(&L, "sumsq", par, TOL, 1);
  cmp_d(&L, "sumsq", s[0], s[1]);
  line_end(&L);
  hfree_all();
}

/* ================================================================ sequence ops ============= */

static void seq_par(char *par, size_t size, int64_t b, int64_t t, int64_t d, const int32_t *len,
                    const char *more) {
  int64_t tot = 0, z = 0;
  for (int64_t i = 0; i < b; i++) {
    tot += len[i];
    z += len[i] == 0;
  }
  snprintf(par, size, "b=%lld t=%lld d=%lld%s%s (fill %.2f, %lld empty)", (long long)b,
           (long long)t, (long long)d, more[0] ? " " : "", more,
           (double)tot / (double)(b * t > 0 ? b * t : 1), (long long)z);
}

/* The lengths are drawn before the parameter string names the case: draw them from the
 * shape alone. */
static int32_t *seq_lens(const char *op, int64_t b, int64_t t, int full) {
  char key[96];
  snprintf(key, sizeof key, "%lld %lld %d", (long long)b, (long long)t, full);
  case_seed(op, key);
  return hlens(b, t, full);
}

static void run_seq_mask(backend *b, const float *x, const int32_t *len, int64_t bs, int64_t t,
                         int64_t d, float *y, int inplace) {
  int64_t n = bs * t * d;
  int32_t *Lp = UPI(b, len, bs);
  float *X = UPF(b, x, n), *Y = inplace ? X : UPF(b, y, n);
  OPCALL(b, seq_mask, Y, X, Lp, bs, t, d);
  DOWNF(b, y, Y, n);
}

static void case_seq_mask(int64_t b, int64_t t, int64_t d, int inplace) {
  int32_t *len = seq_lens("seq_mask", b, t, 0);
  char par[240];
  seq_par(par, sizeof par, b, t, d, len, inplace ? "in-place" : "");
  if (!want("seq_mask", par)) {
    hfree_all();
    return;
  }
  int64_t n = b * t * d;
  float *x = hseq(len, b, t, d, -1, 1), *y0 = hrand(n, -1, 1);
  float *y[2] = {hdup(y0, n), hdup(y0, n)};
  int w = 0;
  BOTH(run_seq_mask(B, x, len, b, t, d, y[w++], inplace));
  line_t L;
  line_begin(&L, "seq_mask", par, TOL, 1);
  cmp_f(&L, "y", y[0], y[1], n);
  line_end(&L);
  hfree_all();
}

typedef struct {
  float *y, *dx, *dw, *db;
} conv_out;

static void run_conv(backend *b, const float *x, const int32_t *len, int64_t bs, int64_t t,
                     int64_t d, const float *w, const float *bias, int32_t k, int32_t dil,
                     const float *dy, conv_out o) {
  int64_t n = bs * t * d, nw = d * d * k;
  int32_t *Lp = UPI(b, len, bs);
  float *X = UPF(b, x, n), *W = UPF(b, w, nw), *Bi = UPF(b, bias, d), *Y = UPF(b, o.y, n);
  float *DY = UPF(b, dy, n), *DX = UPF(b, o.dx, n), *DW = UPF(b, o.dw, nw), *DB = UPF(b, o.db, d);
  OPCALL(b, conv1d_fwd, X, Lp, bs, t, d, W, Bi, k, dil, Y);
  OPCALL(b, conv1d_bwd, X, Lp, bs, t, d, W, k, dil, DY, DX, DW, DB);
  DOWNF(b, o.y, Y, n);
  DOWNF(b, o.dx, DX, n);
  DOWNF(b, o.dw, DW, nw);
  DOWNF(b, o.db, DB, d);
}

static void case_conv(int64_t b, int64_t t, int64_t d, int32_t k, int32_t dil, int full) {
  int32_t *len = seq_lens("conv1d", b, t, full);
  char more[64], par[240];
  snprintf(more, sizeof more, "k=%d dil=%d", (int)k, (int)dil);
  seq_par(par, sizeof par, b, t, d, len, more);
  if (!want("conv1d_fwd conv1d_bwd", par)) {
    hfree_all();
    return;
  }
  int64_t n = b * t * d, nw = d * d * k;
  float sc = 1.0f / sqrtf((float)(d * k));
  float *x = hseq(len, b, t, d, -1, 1), *dy = hseq(len, b, t, d, -1, 1);
  float *w = hrand(nw, -sc, sc), *bias = hrand(d, -0.5f, 0.5f);
  float *y0 = hrand(n, -1, 1), *dx0 = hrand(n, -1, 1);
  float *dw0 = hrand(nw, -1, 1), *db0 = hrand(d, -1, 1);
  conv_out o[2];
  for (int i = 0; i < 2; i++)
    o[i] = (conv_out){hdup(y0, n), hdup(dx0, n), hdup(dw0, nw), hdup(db0, d)};
  int wi = 0;
  BOTH(run_conv(B, x, len, b, t, d, w, bias, k, dil, dy, o[wi++]));
  line_t L;
  line_begin(&L, "conv1d_fwd", par, TOL, 1);
  cmp_f(&L, "y", o[0].y, o[1].y, n);
  line_end(&L);
  line_begin(&L, "conv1d_bwd", par, TOL, 2);
  cmp_f(&L, "dx", o[0].dx, o[1].dx, n);
  cmp_f(&L, "dw", o[0].dw, o[1].dw, nw);
  cmp_f(&L, "dbias", o[0].db, o[1].db, d);
  line_end(&L);
  hfree_all();
}

static void run_pool(backend *b, int kind, const float *x, const int32_t *len, int64_t bs,
                     int64_t t, int64_t d, const float *dy, float *y, int32_t *arg, float *dx) {
  int64_t n = bs * t * d;
  int32_t *Lp = UPI(b, len, bs);
  float *X = UPF(b, x, n), *Y = UPF(b, y, n), *DY = UPF(b, dy, n), *DX = UPF(b, dx, n);
  int32_t *S = kind ? be_alloc(b, (size_t)n * 4) : NULL;
  OPCALL(b, pool3_fwd, kind, X, Lp, bs, t, d, Y, S);
  OPCALL(b, pool3_bwd, kind, Lp, bs, t, d, DY, S, DX);
  DOWNF(b, y, Y, n);
  if (kind) DOWNI(b, arg, S, n);
  DOWNF(b, dx, DX, n);
}

static void case_pool(int kind, int64_t b, int64_t t, int64_t d, int ties) {
  int32_t *len = seq_lens("pool3", b, t, 0);
  char more[64], par[240];
  snprintf(more, sizeof more, "%s%s", kind ? "max" : "avg", ties ? " ties" : "");
  seq_par(par, sizeof par, b, t, d, len, more);
  if (!want("pool3_fwd pool3_bwd", par)) {
    hfree_all();
    return;
  }
  int64_t n = b * t * d;
  float *x = hseq(len, b, t, d, -1, 1), *dy = hseq(len, b, t, d, -1, 1);
  if (ties)   /* few distinct values: the first maximum in window order wins */
    for (int64_t i = 0; i < n; i++)
      if (x[i] == x[i]) x[i] = (float)ri(-1, 2);
  float *y0 = hrand(n, -1, 1), *dx0 = hrand(n, -1, 1);
  float *y[2] = {hdup(y0, n), hdup(y0, n)}, *dx[2] = {hdup(dx0, n), hdup(dx0, n)};
  int32_t *arg[2] = {hmalloc((size_t)n * 4), hmalloc((size_t)n * 4)};
  int w = 0;
  BOTH((run_pool(B, kind, x, len, b, t, d, dy, y[w], arg[w], dx[w]), w++));
  line_t L;
  line_begin(&L, "pool3_fwd", par, TOL, 1);
  cmp_f(&L, "y", y[0], y[1], n);
  if (kind)   /* the argmax is defined at the valid positions only */
    for (int64_t i = 0; i < b && !L.bad; i++) {
      char what[64];
      snprintf(what, sizeof what, "argmax(sample %lld)", (long long)i);
      cmp_i32(&L, what, arg[0] + i * t * d, arg[1] + i * t * d, (int64_t)len[i] * d);
    }
  line_end(&L);
  line_begin(&L, "pool3_bwd", par, TOL, 2);
  cmp_f(&L, "dx", dx[0], dx[1], n);
  line_end(&L);
  hfree_all();
}

/* Caser read-out: out, its argmaxes, then dx and dp (both accumulated onto random starts) */
static void run_caser(backend *b, const float *x, const int32_t *len, int64_t bs, int64_t t, int64_t d,
                      int32_t l, int32_t nv, int32_t nh, int64_t ldo, const float *p, const float *dout,
                      float *out, int32_t *arg, float *dx, float *dp) {
  int64_t n = bs * t * d, np = ameir__caser_params(l, d, nv, nh), na = bs * l * nh;
  int32_t *Lp = UPI(b, len, bs);
  float *X = UPF(b, x, n), *P = UPF(b, p, np), *O = UPF(b, out, bs * ldo), *DO = UPF(b, dout, bs * ldo);
  float *DX = UPF(b, dx, n), *DP = UPF(b, dp, np);
  int32_t *S = be_alloc(b, (size_t)(na > 0 ? na : 1) * 4);
  OPCALL(b, caser_fwd, X, Lp, bs, t, d, l, nv, nh, P, O, ldo, S);
  OPCALL(b, caser_bwd, X, Lp, bs, t, d, l, nv, nh, P, DO, ldo, S, DX, DP);
  DOWNF(b, out, O, bs * ldo);
  DOWNI(b, arg, S, na);
  DOWNF(b, dx, DX, n);
  DOWNF(b, dp, DP, np);
}

/* ties: x and the parameters small integers, so that windows tie exactly on both backends and
 * the first maximum must win on both */
static void case_caser(int64_t b, int64_t t, int64_t d, int32_t l, int32_t nv, int32_t nh, int64_t ldo, int ties) {
  int32_t *len = seq_lens("caser", b, t, 0);
  char more[96], par[240];
  snprintf(more, sizeof more, "l=%d nv=%d nh=%d ldo=%lld%s", (int)l, (int)nv, (int)nh, (long long)ldo,
           ties ? " ties" : "");
  seq_par(par, sizeof par, b, t, d, len, more);
  if (!want("caser_fwd caser_bwd", par)) {
    hfree_all();
    return;
  }
  int64_t n = b * t * d, np = ameir__caser_params(l, d, nv, nh), w_ = ameir__caser_width(l, d, nv, nh);
  float *x = hseq(len, b, t, d, -1, 1), *p = hrand(np, -0.5f, 0.5f), *dout = hmat(b, w_, ldo, -1, 1);
  if (ties) {
    for (int64_t i = 0; i < n; i++)
      if (x[i] == x[i]) x[i] = (float)ri(-1, 2);
    for (int64_t i = 0; i < np; i++) p[i] = (float)ri(-1, 2);
  }
  float *o0 = hrand(b * ldo, -1, 1), *dx0 = hrand(n, -1, 1), *dp0 = hrand(np, -1, 1);
  float *out[2] = {hdup(o0, b * ldo), hdup(o0, b * ldo)}, *dx[2] = {hdup(dx0, n), hdup(dx0, n)};
  float *dp[2] = {hdup(dp0, np), hdup(dp0, np)};
  int32_t *arg[2] = {hmalloc((size_t)(b * l * nh + 1) * 4), hmalloc((size_t)(b * l * nh + 1) * 4)};
  int w = 0;
  BOTH((run_caser(B, x, len, b, t, d, l, nv, nh, ldo, p, dout, out[w], arg[w], dx[w], dp[w]), w++));
  line_t L;
  line_begin(&L, "caser_fwd", par, TOL, 1);
  cmp_f(&L, "out", out[0], out[1], b * ldo);
  cmp_i32(&L, "argmax", arg[0], arg[1], b * l * nh);
  line_end(&L);
  line_begin(&L, "caser_bwd", par, TOL, 2);
  cmp_f(&L, "dx", dx[0], dx[1], n);
  cmp_f(&L, "dp", dp[0], dp[1], np);
  line_end(&L);
  hfree_all();
}

typedef struct {
  float *y, *dx, *dp;
} seq_out;

static void run_gru(backend *b, const float *x, const int32_t *len, int64_t bs, int64_t t,
                    int64_t d, const float *p, const float *dy, seq_out o) {
  int64_t n = bs * t * d, np = 2 * ameir__gru_params(d);
  int32_t *Lp = UPI(b, len, bs);
  float *X = UPF(b, x, n), *P = UPF(b, p, np), *Y = UPF(b, o.y, n);
  float *S = be_alloc(b, (size_t)ameir__gru_save(bs, t, d) * 4);
  float *DY = UPF(b, dy, n), *DX = UPF(b, o.dx, n), *DP = UPF(b, o.dp, np);
  OPCALL(b, gru_fwd, X, Lp, bs, t, d, P, Y, S);
  OPCALL(b, gru_bwd, X, Lp, bs, t, d, P, DY, S, DX, DP);
  DOWNF(b, o.y, Y, n);
  DOWNF(b, o.dx, DX, n);
  DOWNF(b, o.dp, DP, np);
}

static void case_gru(int64_t b, int64_t t, int64_t d, int full) {
  int32_t *len = seq_lens("gru", b, t, full);
  char par[240];
  seq_par(par, sizeof par, b, t, d, len, "");
  if (!want("gru_fwd gru_bwd", par)) {
    hfree_all();
    return;
  }
  int64_t n = b * t * d, np = 2 * ameir__gru_params(d);
  float sc = 1.0f / sqrtf((float)(d / 2));
  float *x = hseq(len, b, t, d, -1, 1), *dy = hseq(len, b, t, d, -1, 1), *p = hrand(np, -sc, sc);
  float *y0 = hrand(n, -1, 1), *dx0 = hrand(n, -1, 1), *dp0 = hrand(np, -1, 1);
  seq_out o[2];
  for (int i = 0; i < 2; i++) o[i] = (seq_out){hdup(y0, n), hdup(dx0, n), hdup(dp0, np)};
  int w = 0;
  BOTH(run_gru(B, x, len, b, t, d, p, dy, o[w++]));
  line_t L;
  line_begin(&L, "gru_fwd", par, TOL, 1);
  cmp_f(&L, "y", o[0].y, o[1].y, n);
  line_end(&L);
  line_begin(&L, "gru_bwd", par, TOL, 2);
  cmp_f(&L, "dx", o[0].dx, o[1].dx, n);
  cmp_f(&L, "dp", o[0].dp, o[1].dp, np);
  line_end(&L);
  hfree_all();
}

static void run_mha(backend *b, const float *x, const int32_t *len, int64_t bs, int64_t t,
                    int64_t d, int32_t h, const float *p, const float *dy, seq_out o) {
  int64_t n = bs * t * d, np = ameir__mha_params(d);
  int32_t *Lp = UPI(b, len, bs);
  float *X = UPF(b, x, n), *P = UPF(b, p, np), *Y = UPF(b, o.y, n);
  float *S = be_alloc(b, (size_t)ameir__mha_save(bs, t, d, h) * 4);
  float *DY = UPF(b, dy, n), *DX = UPF(b, o.dx, n), *DP = UPF(b, o.dp, np);
  OPCALL(b, mha_fwd, X, Lp, bs, t, d, h, P, Y, S);
  OPCALL(b, mha_bwd, X, Lp, bs, t, d, h, P, DY, S, DX, DP);
  DOWNF(b, o.y, Y, n);
  DOWNF(b, o.dx, DX, n);
  DOWNF(b, o.dp, DP, np);
}

static void case_mha(int64_t b, int64_t t, int64_t d, int32_t h) {
  int32_t *len = seq_lens("mha", b, t, 0);
  char more[32], par[240];
  snprintf(more, sizeof more, "heads=%d", (int)h);
  seq_par(par, sizeof par, b, t, d, len, more);
  if (!want("mha_fwd mha_bwd", par)) {
    hfree_all();
    return;
  }
  int64_t n = b * t * d, np = ameir__mha_params(d);
  float sc = 1.5f / sqrtf((float)d);
  float *x = hseq(len, b, t, d, -1, 1), *dy = hseq(len, b, t, d, -1, 1), *p = hrand(np, -sc, sc);
  float *y0 = hrand(n, -1, 1), *dx0 = hrand(n, -1, 1), *dp0 = hrand(np, -1, 1);
  seq_out o[2];
  for (int i = 0; i < 2; i++) o[i] = (seq_out){hdup(y0, n), hdup(dx0, n), hdup(dp0, np)};
  int w = 0;
  BOTH(run_mha(B, x, len, b, t, d, h, p, dy, o[w++]));
  line_t L;
  line_begin(&L, "mha_fwd", par, TOL, 1);
  cmp_f(&L, "y", o[0].y, o[1].y, n);
  line_end(&L);
  line_begin(&L, "mha_bwd", par, TOL, 2);
  cmp_f(&L, "dx", o[0].dx, o[1].dx, n);
  cmp_f(&L, "dp", o[0].dp, o[1].dp, np);
  line_end(&L);
  hfree_all();
}

typedef struct {
  float *pooled, *scaled, *dx, *dq, *dp;
} din_out;

typedef struct {
  int64_t b, t, d, ldq, ldp;
  int32_t a1, a2;
  int pooled, scaled;
} din_shape;

static void run_din(backend *b, const din_shape *s, const float *x, const int32_t *len,
                    const float *q, const float *p, const float *dpo, const float *dsc,
                    din_out o) {
  int64_t n = s->b * s->t * s->d, np = ameir__din_params(s->d, s->a1, s->a2);
  int32_t *Lp = UPI(b, len, s->b);
  float *X = UPF(b, x, n), *Q = UPF(b, q, s->b * s->ldq), *P = UPF(b, p, np);
  float *PO = s->pooled ? UPF(b, o.pooled, s->b * s->ldp) : NULL;
  float *SC = s->scaled ? UPF(b, o.scaled, n) : NULL;
  float *S = be_alloc(b, (size_t)ameir__din_save(s->b, s->t, s->d, s->a1, s->a2) * 4);
  float *DPO = s->pooled ? UPF(b, dpo, s->b * s->ldp) : NULL;
  float *DSC = s->scaled ? UPF(b, dsc, n) : NULL;
  float *DX = UPF(b, o.dx, n), *DQ = UPF(b, o.dq, s->b * s->ldq), *DP = UPF(b, o.dp, np);
  OPCALL(b, din_fwd, X, Lp, s->b, s->t, s->d, Q, s->ldq, s->a1, s->a2, P, PO, s->ldp, SC, S);
  OPCALL(b, din_bwd, X, Lp, s->b, s->t, s->d, Q, s->ldq, s->a1, s->a2, P, DPO, s->ldp, DSC, S, DX,
         DQ, DP);
  if (PO) DOWNF(b, o.pooled, PO, s->b * s->ldp);
  if (SC) DOWNF(b, o.scaled, SC, n);
  DOWNF(b, o.dx, DX, n);
  DOWNF(b, o.dq, DQ, s->b * s->ldq);
  DOWNF(b, o.dp, DP, np);
}

static void case_din(din_shape s) {
  int32_t *len = seq_lens("din", s.b, s.t, 0);
  char more[160], par[240];
  snprintf(more, sizeof more, "a1=%d a2=%d ldq=%lld ldp=%lld pooled=%s scaled=%s", (int)s.a1,
           (int)s.a2, (long long)s.ldq, (long long)s.ldp, s.pooled ? "yes" : "NULL",
           s.scaled ? "yes" : "NULL");
  seq_par(par, sizeof par, s.b, s.t, s.d, len, more);
  if (!want("din_fwd din_bwd", par)) {
    hfree_all();
    return;
  }
  int64_t n = s.b * s.t * s.d, np = ameir__din_params(s.d, s.a1, s.a2);
  float *x = hseq(len, s.b, s.t, s.d, -1, 1), *q = hmat(s.b, s.d, s.ldq, -1, 1);
  float *p = hrand(np, -0.5f, 0.5f);
  float *dpo = hmat(s.b, s.d, s.ldp, -1, 1), *dsc = hseq(len, s.b, s.t, s.d, -1, 1);
  float *po0 = hrand(s.b * s.ldp, -1, 1), *sc0 = hrand(n, -1, 1), *dx0 = hrand(n, -1, 1);
  float *dq0 = hrand(s.b * s.ldq, -1, 1), *dp0 = hrand(np, -1, 1);
  din_out o[2];
  for (int i = 0; i < 2; i++)
    o[i] = (din_out){hdup(po0, s.b * s.ldp), hdup(sc0, n), hdup(dx0, n), hdup(dq0, s.b * s.ldq),
                     hdup(dp0, np)};
  int w = 0;
  BOTH(run_din(B, &s, x, len, q, p, dpo, dsc, o[w++]));
  line_t L;
  line_begin(&L, "din_fwd", par, TOL, 1);
  if (s.pooled) cmp_f(&L, "pooled", o[0].pooled, o[1].pooled, s.b * s.ldp);
  if (s.scaled) cmp_f(&L, "scaled", o[0].scaled, o[1].scaled, n);
  line_end(&L);
  line_begin(&L, "din_bwd", par, TOL, 2);
  cmp_f(&L, "dx", o[0].dx, o[1].dx, n);
  cmp_f(&L, "dq", o[0].dq, o[1].dq, s.b * s.ldq);
  cmp_f(&L, "dp", o[0].dp, o[1].dp, np);
  line_end(&L);
  hfree_all();
}

typedef struct {
  float *sum, *last, *dx;
} ro_out;

static void run_readout(backend *b, const float *x, const int32_t *len, int64_t bs, int64_t t,
                        int64_t d, int64_t lds, int64_t ldl, int ws, int wl, const float *dsum,
                        const float *dlast, ro_out o) {
  int64_t n = bs * t * d;
  int32_t *Lp = UPI(b, len, bs);
  float *X = UPF(b, x, n);
  float *S = ws ? UPF(b, o.sum, bs * lds) : NULL, *La = wl ? UPF(b, o.last, bs * ldl) : NULL;
  float *DS = ws ? UPF(b, dsum, bs * lds) : NULL, *DL = wl ? UPF(b, dlast, bs * ldl) : NULL;
  float *DX = UPF(b, o.dx, n);
  OPCALL(b, readout_fwd, X, Lp, bs, t, d, S, lds, La, ldl);
  OPCALL(b, readout_bwd, Lp, bs, t, d, DS, lds, DL, ldl, DX);
  if (ws) DOWNF(b, o.sum, S, bs * lds);
  if (wl) DOWNF(b, o.last, La, bs * ldl);
  DOWNF(b, o.dx, DX, n);
}

static void case_readout(int64_t b, int64_t t, int64_t d, int64_t lds, int64_t ldl, int ws,
                         int wl) {
  int32_t *len = seq_lens("readout", b, t, 0);
  char more[96], par[240];
  snprintf(more, sizeof more, "sum=%s lds=%lld last=%s ldl=%lld", ws ? "yes" : "NULL",
           (long long)lds, wl ? "yes" : "NULL", (long long)ldl);
  seq_par(par, sizeof par, b, t, d, len, more);
  if (!want("readout_fwd readout_bwd", par)) {
    hfree_all();
    return;
  }
  int64_t n = b * t * d;
  float *x = hseq(len, b, t, d, -1, 1);
  float *dsum = hmat(b, d, lds, -1, 1), *dlast = hmat(b, d, ldl, -1, 1);
  float *s0 = hrand(b * lds, -1, 1), *l0 = hrand(b * ldl, -1, 1), *dx0 = hrand(n, -1, 1);
  ro_out o[2];
  for (int i = 0; i < 2; i++) o[i] = (ro_out){hdup(s0, b * lds), hdup(l0, b * ldl), hdup(dx0, n)};
  int w = 0;
  BOTH(run_readout(B, x, len, b, t, d, lds, ldl, ws, wl, dsum, dlast, o[w++]));
  line_t L;
  line_begin(&L, "readout_fwd", par, TOL, 1);
  if (ws) cmp_f(&L, "sum", o[0].sum, o[1].sum, b * lds);
  if (wl) cmp_f(&L, "last", o[0].last, o[1].last, b * ldl);
  line_end(&L);
  line_begin(&L, "readout_bwd", par, TOL, 2);
  cmp_f(&L, "dx", o[0].dx, o[1].dx, n);
  line_end(&L);
  hfree_all();
}

static void run_dot_rows(backend *b, const float *e, int64_t nrows, int64_t k, const int32_t *rows,
                         int64_t bs, int64_t c, const float *u, const float *ds, float *s,
                         float *du, float *g) {
  float *E = UPF(b, e, nrows * k), *U = UPF(b, u, bs * k), *S = UPF(b, s, bs * c);
  int32_t *R = UPI(b, rows, bs * c);
  float *DS = UPF(b, ds, bs * c), *DU = UPF(b, du, bs * k), *G = UPF(b, g, bs * c * k);
  OPCALL(b, dot_rows_fwd, E, k, R, bs, c, U, S);
  OPCALL(b, dot_rows_bwd, E, k, R, bs, c, U, DS, DU, G);
  DOWNF(b, s, S, bs * c);
  DOWNF(b, du, DU, bs * k);
  DOWNF(b, g, G, bs * c * k);
}

static void case_dot_rows(int64_t nrows, int64_t k, int64_t b, int64_t c) {
  char par[240];
  snprintf(par, sizeof par, "table=%lldx%lld b=%lld c=%lld", (long long)nrows, (long long)k,
           (long long)b, (long long)c);
  if (!want("dot_rows_fwd dot_rows_bwd", par)) return;
  case_seed("dot_rows", par);
  float *e = hrand(nrows * k, -1, 1), *u = hrand(b * k, -1, 1), *ds = hrand(b * c, -1, 1);
  int32_t *rows = hrandi(b * c, 0, nrows);
  float *s0 = hrand(b * c, -1, 1), *du0 = hrand(b * k, -1, 1), *g0 = hrand(b * c * k, -1, 1);
  float *s[2] = {hdup(s0, b * c), hdup(s0, b * c)}, *du[2] = {hdup(du0, b * k), hdup(du0, b * k)};
  float *g[2] = {hdup(g0, b * c * k), hdup(g0, b * c * k)};
  int w = 0;
  BOTH((run_dot_rows(B, e, nrows, k, rows, b, c, u, ds, s[w], du[w], g[w]), w++));
  line_t L;
  line_begin(&L, "dot_rows_fwd", par, TOL, 1);
  cmp_f(&L, "s", s[0], s[1], b * c);
  line_end(&L);
  line_begin(&L, "dot_rows_bwd", par, TOL, 2);
  cmp_f(&L, "du", du[0], du[1], b * k);
  cmp_f(&L, "g", g[0], g[1], b * c * k);
  line_end(&L);
  hfree_all();
}

/* ================================================================ baseline models ========== */

/* An output of a strided op: its gaps GAP7 (they must stay), its rows NaN where the op writes
 * without reading (overwrite) or random where it adds (accumulate). */
#define GAP7 7.0f
static float *hout(int64_t rows, int64_t cols, int64_t ld, int accumulate) {
  float *x = hconst(rows * ld, GAP7);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) x[i * ld + j] = accumulate ? rf(-1, 1) : NAN;
  return x;
}

/* outputs of the cross pair */
enum { CR_Y, CR_DX0, CR_DXL, CR_DW, CR_DB, CR_N };
/* row strides of the cross pair: x0, xl, y, dy, dx0, dxl */
enum { LD_X0, LD_XL, LD_Y, LD_DY, LD_DX0, LD_DXL, LD_N };

static void run_cross(backend *b, const float *x0, const float *xl, int same, int64_t bs,
                      int64_t d, const int64_t *ld, const float *w, const float *bias,
                      const float *dy, float **o, const int64_t *sz) {
  float *X0 = UPF(b, x0, bs * ld[LD_X0]);
  float *XL = same ? X0 : UPF(b, xl, bs * ld[LD_XL]);   /* the first layer: one buffer */
  float *W = UPF(b, w, d), *Bi = UPF(b, bias, d), *DY = UPF(b, dy, bs * ld[LD_DY]);
  float *D[CR_N];
  for (int j = 0; j < CR_N; j++) D[j] = UPF(b, o[j], sz[j]);
  OPCALL(b, cross_fwd, X0, ld[LD_X0], XL, ld[LD_XL], W, Bi, bs, d, D[CR_Y], ld[LD_Y]);
  OPCALL(b, cross_bwd, X0, ld[LD_X0], XL, ld[LD_XL], W, bs, d, DY, ld[LD_DY], D[CR_DX0],
         ld[LD_DX0], D[CR_DXL], ld[LD_DXL], D[CR_DW], D[CR_DB]);
  for (int j = 0; j < CR_N; j++) DOWNF(b, o[j], D[j], sz[j]);
}

static void case_cross(int64_t bs, int64_t d, int same, int pad) {
  int64_t ld[LD_N] = {d + (pad ? 3 : 0), d + (pad ? 1 : 0), d + (pad ? 2 : 0),
                      d + (pad ? 5 : 0), d + (pad ? 1 : 0), d + (pad ? 4 : 0)};
  if (same) ld[LD_XL] = ld[LD_X0];
  char par[240];
  snprintf(par, sizeof par, "b=%lld d=%lld xl=%s ld=%lld,%lld,%lld dld=%lld,%lld,%lld",
           (long long)bs, (long long)d, same ? "x0" : "own", (long long)ld[LD_X0],
           (long long)ld[LD_XL], (long long)ld[LD_Y], (long long)ld[LD_DY], (long long)ld[LD_DX0],
           (long long)ld[LD_DXL]);
  if (!want("cross_fwd cross_bwd", par)) return;
  case_seed("cross", par);
  float *x0 = hmat(bs, d, ld[LD_X0], -1, 1);
  float *xl = same ? x0 : hmat(bs, d, ld[LD_XL], -1, 1);
  float *w = hrand(d, -0.3f, 0.3f), *bias = hrand(d, -1, 1), *dy = hmat(bs, d, ld[LD_DY], -1, 1);
  const int64_t sz[CR_N] = {bs * ld[LD_Y], bs * ld[LD_DX0], bs * ld[LD_DXL], d, d};
  float *init[CR_N] = {hout(bs, d, ld[LD_Y], 0), hout(bs, d, ld[LD_DX0], 1),
                       hout(bs, d, ld[LD_DXL], 0), hrand(d, -1, 1), hrand(d, -1, 1)};
  static const char *const nm[CR_N] = {"y", "dx0", "dxl", "dw", "dbias"};
  float *o[2][CR_N];
  for (int j = 0; j < CR_N; j++) {
    o[0][j] = hdup(init[j], sz[j]);
    o[1][j] = hdup(init[j], sz[j]);
  }
  int w_ = 0;
  BOTH(run_cross(B, x0, xl, same, bs, d, ld, w, bias, dy, o[w_++], sz));
  line_t L;
  line_begin(&L, "cross_fwd", par, TOL, 1);
  cmp_f(&L, nm[CR_Y], o[0][CR_Y], o[1][CR_Y], sz[CR_Y]);
  line_end(&L);
  line_begin(&L, "cross_bwd", par, TOL, 2);
  for (int j = CR_DX0; j < CR_N; j++) cmp_f(&L, nm[j], o[0][j], o[1][j], sz[j]);
  line_end(&L);
  hfree_all();
}

typedef struct {
  int64_t b, h, f, k, h_out;
  int same;   /* x == x0 (the first layer, h == f) */
  int pad;    /* row strides wider than the rows */
} cin_shape;

/* outputs of the CIN pair */
enum { CI_Y, CI_DX, CI_DX0, CI_DW, CI_N };
/* row strides of the CIN pair: x, x0, y, dy, dx, dx0 */
enum { CL_X, CL_X0, CL_Y, CL_DY, CL_DX, CL_DX0, CL_N };

static void run_cin(backend *b, const cin_shape *s, const int64_t *ld, const float *x,
                    const float *x0, const float *w, const float *dy, float **o,
                    const int64_t *sz) {
  const int64_t bs = s->b;
  float *X = UPF(b, x, bs * ld[CL_X]);
  float *X0 = s->same ? X : UPF(b, x0, bs * ld[CL_X0]);
  float *W = UPF(b, w, s->h_out * s->h * s->f), *DY = UPF(b, dy, bs * ld[CL_DY]);
  float *D[CI_N];
  for (int j = 0; j < CI_N; j++) D[j] = UPF(b, o[j], sz[j]);
  OPCALL(b, cin_fwd, X, ld[CL_X], s->h, X0, ld[CL_X0], s->f, bs, s->k, W, s->h_out, D[CI_Y],
         ld[CL_Y]);
  OPCALL(b, cin_bwd, X, ld[CL_X], s->h, X0, ld[CL_X0], s->f, bs, s->k, W, s->h_out, DY,
         ld[CL_DY], D[CI_DX], ld[CL_DX], D[CI_DX0], ld[CL_DX0], D[CI_DW]);
  for (int j = 0; j < CI_N; j++) DOWNF(b, o[j], D[j], sz[j]);
}

static void case_cin(cin_shape s) {
  const int64_t hk = s.h * s.k, fk = s.f * s.k, ok = s.h_out * s.k, hf = s.h * s.f;
  int64_t ld[CL_N] = {hk + (s.pad ? 3 : 0), fk + (s.pad ? 1 : 0), ok + (s.pad ? 2 : 0),
                      ok + (s.pad ? 5 : 0), hk + (s.pad ? 1 : 0), fk + (s.pad ? 4 : 0)};
  if (s.same) ld[CL_X0] = ld[CL_X];
  char par[240];
  snprintf(par, sizeof par,
           "b=%lld h=%lld f=%lld k=%lld h_out=%lld x0=%s ld=%lld,%lld,%lld dld=%lld,%lld,%lld",
           (long long)s.b, (long long)s.h, (long long)s.f, (long long)s.k, (long long)s.h_out,
           s.same ? "x" : "own", (long long)ld[CL_X], (long long)ld[CL_X0], (long long)ld[CL_Y],
           (long long)ld[CL_DY], (long long)ld[CL_DX], (long long)ld[CL_DX0]);
  if (!want("cin_fwd cin_bwd", par)) return;
  case_seed("cin", par);
  const int64_t bs = s.b;
  float *x = hmat(bs, hk, ld[CL_X], -1, 1), *x0 = s.same ? x : hmat(bs, fk, ld[CL_X0], -1, 1);
  float *w = hrand(s.h_out * hf, -0.3f, 0.3f), *dy = hmat(bs, ok, ld[CL_DY], -1, 1);
  const int64_t sz[CI_N] = {bs * ld[CL_Y], bs * ld[CL_DX], bs * ld[CL_DX0], s.h_out * hf};
  float *init[CI_N] = {hout(bs, ok, ld[CL_Y], 0), hout(bs, hk, ld[CL_DX], 0),
                       hout(bs, fk, ld[CL_DX0], 1), hrand(s.h_out * hf, -1, 1)};
  static const char *const nm[CI_N] = {"y", "dx", "dx0", "dw"};
  float *o[2][CI_N];
  for (int j = 0; j < CI_N; j++) {
    o[0][j] = hdup(init[j], sz[j]);
    o[1][j] = hdup(init[j], sz[j]);
  }
  int w_ = 0;
  BOTH(run_cin(B, &s, ld, x, x0, w, dy, o[w_++], sz));
  line_t L;
  line_begin(&L, "cin_fwd", par, TOL, 1);
  cmp_f(&L, nm[CI_Y], o[0][CI_Y], o[1][CI_Y], sz[CI_Y]);
  line_end(&L);
  line_begin(&L, "cin_bwd", par, TOL, 2);
  for (int j = CI_DX; j < CI_N; j++) cmp_f(&L, nm[j], o[0][j], o[1][j], sz[j]);
  line_end(&L);
  hfree_all();
}

/* outputs of the field_scale pair */
enum { FS_Y, FS_DX, FS_DS, FS_N };

static void run_field_scale(backend *b, int64_t bs, int64_t f, int64_t k, const int64_t *ld,
                            const float *x, const float *sc, const float *dy, int with_dx,
                            float **o, const int64_t *sz) {
  float *X = UPF(b, x, bs * ld[0]), *S = UPF(b, sc, bs * f), *DY = UPF(b, dy, bs * ld[2]);
  float *D[FS_N];
  for (int j = 0; j < FS_N; j++) D[j] = UPF(b, o[j], sz[j]);
  OPCALL(b, field_scale_fwd, X, ld[0], S, bs, f, k, D[FS_Y], ld[1]);
  OPCALL(b, field_scale_bwd, X, ld[0], S, bs, f, k, DY, ld[2], with_dx ? D[FS_DX] : NULL, ld[3],
         D[FS_DS]);
  for (int j = 0; j < FS_N; j++) DOWNF(b, o[j], D[j], sz[j]);
}

static void case_field_scale(int64_t bs, int64_t f, int64_t k, int pad, int with_dx) {
  const int64_t w = f * k;
  const int64_t ld[4] = {w + (pad ? 3 : 0), w + (pad ? 1 : 0), w + (pad ? 2 : 0), w + (pad ? 5 : 0)};
  char par[240];
  snprintf(par, sizeof par, "b=%lld f=%lld k=%lld ld=%lld,%lld dld=%lld,%lld dx=%d", (long long)bs,
           (long long)f, (long long)k, (long long)ld[0], (long long)ld[1], (long long)ld[2],
           (long long)ld[3], with_dx);
  if (!want("field_scale_fwd field_scale_bwd", par)) return;
  case_seed("field_scale", par);
  float *x = hmat(bs, w, ld[0], -1, 1), *sc = hrand(bs * f, -1, 2), *dy = hmat(bs, w, ld[2], -1, 1);
  const int64_t sz[FS_N] = {bs * ld[1], bs * ld[3], bs * f};
  float *init[FS_N] = {hout(bs, w, ld[1], 0), hout(bs, w, ld[3], 1), hconst(bs * f, NAN)};
  static const char *const nm[FS_N] = {"y", "dx", "ds"};
  float *o[2][FS_N];
  for (int j = 0; j < FS_N; j++) {
    o[0][j] = hdup(init[j], sz[j]);
    o[1][j] = hdup(init[j], sz[j]);
  }
  int w_ = 0;
  BOTH(run_field_scale(B, bs, f, k, ld, x, sc, dy, with_dx, o[w_++], sz));
  line_t L;
  line_begin(&L, "field_scale_fwd", par, TOL, 1);
  cmp_f(&L, nm[FS_Y], o[0][FS_Y], o[1][FS_Y], sz[FS_Y]);
  line_end(&L);
  line_begin(&L, "field_scale_bwd", par, TOL, 2);
  for (int j = FS_DX; j < FS_N; j++) cmp_f(&L, nm[j], o[0][j], o[1][j], sz[j]);
  line_end(&L);
  hfree_all();
}

/* ================================================================ memory ops =============== */

/* Checks of the device backend's memory ops alone (nothing to compare with the CPU). */
static void mem_line(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mem_line(int ok, const char *fmt, ...) {
  char par[240];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(par, sizeof par, fmt, ap);
  va_end(ap);
  backend *b = &g_dev;
  if (ok && !b->failed) {
    g_pass++;
    printf("ok   mem %s\n", par);
  } else {
    g_fail++;
    printf("FAIL mem %s%s%s\n", par, b->failed ? ": " : "", b->failed ? b->why : "");
  }
  fflush(stdout);
}

static void mem_checks(void) {
  if (!want("mem", "alloc upload download copy memset0")) return;
  backend *b = &g_dev;
  static const size_t sizes[] = {0, 1, 3, 7, 64, 1000003};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    g_rng = 0x3e3e + n;
    uint8_t *src = hmalloc(n + 1), *dst = hmalloc(n + 1);
    for (size_t j = 0; j < n; j++) src[j] = (uint8_t)rnext();
    memset(dst, 0x5a, n + 1);
    be_begin(b);
    uint8_t *d = be_up(b, src, n);
    be_down(b, dst, d, n);
    be_end(b);
    mem_line(d && ((uintptr_t)d % 64) == 0, "alloc %zu bytes is 64-byte aligned", n);
    mem_line(!memcmp(src, dst, n) && dst[n] == 0x5a, "upload/download round trip of %zu bytes", n);
    hfree_all();
  }
  /* copy at odd offsets and sizes, memset0 of an odd interior range */
  static const size_t cs[][3] = {{0, 0, 0}, {1, 3, 1}, {3, 1, 7}, {5, 11, 1001}, {0, 64, 100003}};
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    size_t doff = cs[i][0], soff = cs[i][1], n = cs[i][2], tot = n + 128;
    g_rng = 0x4c4c + i;
    uint8_t *a = hmalloc(tot), *c = hmalloc(tot), *want_ = hmalloc(tot), *got = hmalloc(tot);
    for (size_t j = 0; j < tot; j++) {
      a[j] = (uint8_t)rnext();
      c[j] = (uint8_t)rnext();
    }
    memcpy(want_, c, tot);
    memcpy(want_ + doff, a + soff, n);
    be_begin(b);
    uint8_t *A = be_up(b, a, tot), *C = be_up(b, c, tot);
    if (!b->failed) {
      int32_t rc = b->ops.copy(b->st, C + doff, A + soff, n);
      if (rc) be_fail(b, 1, "copy returned %d: %s", (int)rc, b->ctx.msg);
      be_sync(b, "copy");
    }
    be_down(b, got, C, tot);
    be_end(b);
    mem_line(!memcmp(want_, got, tot), "copy of %zu bytes, dst+%zu <- src+%zu", n, doff, soff);

    size_t zoff = doff + 3, zn = n ? n | 1 : 0;   /* odd sizes */
    memcpy(want_, c, tot);
    memset(want_ + zoff, 0, zn);
    be_begin(b);
    C = be_up(b, c, tot);
    if (!b->failed) {
      int32_t rc = b->ops.memset0(b->st, C + zoff, zn);
      if (rc) be_fail(b, 1, "memset0 returned %d: %s", (int)rc, b->ctx.msg);
      be_sync(b, "memset0");
    }
    be_down(b, got, C, tot);
    be_end(b);
    mem_line(!memcmp(want_, got, tot), "memset0 of %zu bytes at +%zu (neighbours kept)", zn, zoff);
    hfree_all();
  }
  b->ops.free(b->st, NULL);
  mem_line(1, "free(NULL)");
}

/* ================================================================ the cases ================ */

static void all_cases(void) {
  mem_checks();

  /* GEMM: every trans combination x beta 0/1/0.5, small odd shapes (the CPU's k == 1, n == 1,
   * m == 1 paths among them) and realistic ones (MLP layers, their weight gradients, the output
   * layer), row strides larger than the widths on every other one */
  static const int64_t small[][3] = {{1, 3, 7}, {7, 1, 3}, {3, 7, 1},
                                     {7, 3, 5}, {1, 1, 1}, {33, 65, 129}};
  static const int64_t big[][3] = {{512, 200, 400}, {1024, 1, 400}, {400, 300, 512},
                                   {1, 256, 400},   {1024, 64, 1},  {256, 400, 64}};
  static const float betas[3] = {0.0f, 1.0f, 0.5f};
  int gi = 0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int bi = 0; bi < 3; bi++, gi++) {
        const int64_t *s = small[gi % 6], *l = big[(gi + ta) % 6];
        case_gemm(ta, tb, s[0], s[1], s[2], 1.0f, betas[bi], gi % 2);
        case_gemm(ta, tb, l[0], l[1], l[2], 0.75f, betas[bi], (gi + 1) % 2);
      }
  case_gemm(0, 1, 7, 5, 0, 1.0f, 0.5f, 1);   /* k = 0: C = beta C */
  case_gemm(1, 0, 9, 4, 3, 0.0f, 0.5f, 0);   /* alpha = 0 */

  /* batched: attention-sized matrices, tiny ones, and one above the CPU's small-matrix cut */
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      case_gemm_batched(ta, tb, 50, 50, 16, 0.25f, (ta ^ tb) ? 0.0f : 1.0f, 1, 7);
      case_gemm_batched(ta, tb, 3, 7, 1, 1.0f, 0.5f, ta, 3);
    }
  case_gemm_batched(0, 1, 128, 96, 64, 1.0f, 0.0f, 1, 3);
  case_gemm_batched(1, 1, 16, 8, 4, 1.0f, 1.0f, 0, 1);

  case_add_bias(1, 1, 1);
  case_add_bias(3, 7, 9);
  case_add_bias(1024, 400, 400);
  case_add_bias(256, 16, 40);
  case_bias_grad(1, 3, 3);
  case_bias_grad(7, 1, 2);
  case_bias_grad(1024, 400, 416);
  case_bias_grad(300, 16, 16);
  case_copy2d(1, 1, 1, 1, 0);
  case_copy2d(3, 7, 7, 7, 0);
  case_copy2d(3, 7, 10, 8, 1);
  case_copy2d(1024, 64, 400, 64, 0);   /* into the MLP input */
  case_copy2d(1024, 64, 64, 400, 1);   /* its gradient back out */
  case_copy2d(257, 16, 16, 16, 1);
  case_axpby(1, 2.0f, 0.0f);
  case_axpby(7, 1.0f, 1.0f);
  case_axpby(100003, -0.5f, 0.5f);
  case_axpby(100003, 1.5f, 0.0f);

  case_emb_sum(10, 4, 1, 1, 4);
  case_emb_sum(50, 16, 7, 3, 19);
  case_emb_sum(5000, 64, 1024, 1, 39 * 64);
  case_emb_sum(2000, 16, 512, 20, 80);
  case_emb_fields(10, 4, 1, 1, 4);
  case_emb_fields(50, 3, 7, 5, 19);
  case_emb_fields(100000, 16, 4096, 39, 39 * 16 + 13);   /* Criteo's univalent fields, dense after */
  case_emb_grad(1, 4, 10, 0, 0.0, 1, 4);
  case_emb_grad(3, 16, 10, 0, 0.34, 3, 17);
  case_emb_grad(7, 3, 10, 0, 1.0, 7, 3);   /* row 0 only: nothing */
  case_emb_grad(20000, 16, 100000, 5000, 0.1, 1024, 16 * 39);   /* a hot row 5000 times */
  case_emb_grad(3072, 64, 50, 0, 0.2, 1024, 64);                /* few rows, many repeats */
  case_emb_grad(4000, 4, 1 << 30, 1500, 0.05, 4000, 4);          /* row ids up to 2^30 */

  for (int a = 0; a < AMEIR_ACT_DICE; a++) {
    case_act(a, 7);
    case_act(a, 100003);
  }
  case_act(AMEIR_ACT_RELU, 1);
  case_dice(7, 3, 1, 1e-8f);
  case_dice(3, 7, 0, 1e-8f);
  case_dice(1, 1, 0, 1e-5f);
  case_dice(1024, 200, 1, 1e-8f);
  case_dice(512, 36, 0, 1e-8f);
  case_dice(256, 80, 1, 1e-5f);

  case_ln(1, 3);
  case_ln(7, 1);
  case_ln(3, 7);
  case_ln(1024, 400);
  case_ln(12800, 16);   /* B*T rows of a sequence block */

  case_dropout(1, 0.5f, 42, 3);
  case_dropout(7, 0.1f, 7, 0);
  case_dropout(100003, 0.0f, 0x12345678abcdull, 77);
  case_dropout(100003, 0.1f, 0xd40b0ull, 10000000000ull);
  case_dropout(100003, 0.5f, 99, 5);
  case_dropout(262147, 0.5f, 0xffffffffffffffffull, (1ull << 33) + 1);

  case_hadamard(1, 3, 1, 1, 2, 3, 1, 1);
  case_hadamard(7, 5, 3, 6, 3, 17, 20, 19);
  case_hadamard(512, 39, 16, 100, 2, 39 * 16, 100 * 16 + 32, 100 * 16);
  case_hadamard(256, 20, 64, 50, 3, 20 * 64 + 8, 50 * 64, 50 * 64 + 4);
  case_fm(1, 1, 1, 1, 0);
  case_fm(7, 3, 5, 16, 1);
  case_fm(1024, 39, 16, 39 * 16 + 16, 0);
  case_fm(256, 10, 64, 10 * 64, 1);
  case_se(1, 1, 1, 1, 1, 1, 1);
  case_se(7, 3, 5, 2, 16, 7, 8);
  case_se(1024, 40, 16, 13, 40 * 16 + 16, 16, 20);
  case_se(256, 20, 64, 4, 20 * 64, 64 + 3, 64);

  case_bce(1, 1, 1, 8);
  case_bce(7, 1, 0, 8);
  case_bce(100003, 0, 0, 8);
  case_bce(100003, 1, 1, 30);
  case_bce(4099, 0, 1, 3);
  case_adam_dense(1, 1, 0.0f);
  case_adam_dense(7, 100, 0.01f);
  case_adam_dense(100003, 1, 0.01f);
  case_adam_dense(100003, 100, 0.0f);
  case_adam_sparse(0, 10, 4, 1, 1, 0.0f);
  case_adam_sparse(0, 50, 16, 7, 100, 0.01f);
  case_adam_sparse(0, 2000, 64, 500, 100, 0.01f);
  case_adam_sparse(0, 100000, 16, 300, 1, 0.0f);
  case_adam_sparse(1, 1, 4, 0, 1, 0.0f);
  case_adam_sparse(1, 2, 1, 1, 1, 0.01f);
  case_adam_sparse(1, 7, 3, 3, 100, 0.0f);
  case_adam_sparse(1, 5000, 16, 700, 100, 0.01f);
  case_adam_sparse(1, 20000, 64, 2000, 1, 0.01f);
  case_sumsq(1);
  case_sumsq(7);
  case_sumsq(100003);
  case_sumsq((1 << 21) + 5);

  case_seq_mask(1, 1, 1, 0);
  case_seq_mask(7, 3, 5, 0);
  case_seq_mask(256, 50, 16, 0);
  case_seq_mask(512, 50, 64, 1);
  case_conv(1, 1, 1, 1, 1, 0);
  case_conv(7, 3, 5, 3, 1, 0);
  case_conv(7, 7, 3, 5, 2, 0);
  case_conv(256, 50, 16, 3, 1, 0);
  case_conv(128, 50, 64, 5, 2, 0);
  case_conv(64, 50, 16, 1, 1, 1);   /* every position valid: the CPU's direct path */
  case_conv(64, 50, 16, 1, 1, 0);
  case_conv(32, 50, 4, 3, 2, 0);
  for (int kind = 0; kind < 2; kind++) {
    case_pool(kind, 1, 1, 1, 0);
    case_pool(kind, 7, 3, 5, 0);
    case_pool(kind, 256, 50, 16, 0);
    case_pool(kind, 128, 50, 64, 0);
  }
  case_pool(1, 64, 50, 16, 1);
  case_caser(1, 1, 1, 1, 1, 1, 2, 0);
  case_caser(7, 3, 5, 3, 2, 3, 3 * 3 + 2 * 5 + 4, 0);   /* rows shorter than L, a strided output */
  case_caser(256, 50, 64, 5, 5, 2, 5 * 2 + 5 * 64, 0);  /* Beauty's shape (AMEIR appendix C.2) */
  case_caser(256, 50, 64, 5, 0, 2, 10, 0);
  case_caser(128, 20, 16, 8, 4, 0, 64, 0);
  case_caser(64, 10, 8, 4, 2, 3, 4 * 3 + 2 * 8, 1);
  case_gru(1, 1, 2, 0);
  case_gru(7, 3, 4, 0);
  case_gru(7, 7, 6, 0);
  case_gru(256, 50, 16, 0);
  case_gru(128, 50, 64, 0);
  case_gru(64, 50, 4, 1);
  case_mha(1, 1, 1, 1);
  case_mha(7, 3, 4, 2);
  case_mha(7, 7, 4, 4);
  case_mha(256, 50, 16, 2);
  case_mha(128, 50, 64, 4);
  case_mha(64, 50, 16, 1);
  case_mha(32, 50, 4, 1);
  case_din((din_shape){1, 1, 1, 1, 1, 1, 1, 1, 1});
  case_din((din_shape){7, 3, 4, 6, 5, 5, 3, 1, 1});
  case_din((din_shape){256, 50, 16, 48, 64, 36, 16, 1, 0});
  case_din((din_shape){128, 50, 64, 64, 64, 80, 40, 0, 1});
  case_din((din_shape){64, 50, 4, 9, 7, 8, 4, 1, 1});
  case_readout(1, 1, 1, 1, 1, 1, 1);
  case_readout(7, 3, 5, 7, 9, 1, 1);
  case_readout(256, 50, 16, 64, 16, 1, 0);
  case_readout(256, 50, 64, 64, 72, 0, 1);
  case_readout(7, 7, 3, 3, 3, 1, 1);
  case_dot_rows(1, 1, 1, 1);
  case_dot_rows(10, 3, 7, 3);
  case_dot_rows(1000, 16, 512, 1);
  case_dot_rows(5000, 64, 256, 11);
  case_dot_rows(100000, 16, 1024, 5);

  /* DCN cross layers: one row, odd widths, wider strides, the first layer (xl == x0), a batch
   * of many row chunks; xDeepFM CIN layers: the same, plus x == x0 (the first layer), the
   * realistic Criteo width (39 fields of 16) and a shape whose outer products need several
   * chunks of rows on both backends */
  case_cross(1, 1, 0, 0);
  case_cross(1, 7, 0, 1);
  case_cross(7, 13, 0, 1);
  case_cross(7, 13, 1, 1);
  case_cross(300, 37, 0, 1);
  case_cross(1024, 39 * 16 + 13, 0, 0);
  case_cross(4096, 400, 1, 1);
  case_cin((cin_shape){1, 1, 1, 1, 1, 0, 0});
  case_cin((cin_shape){1, 3, 4, 5, 2, 0, 1});
  case_cin((cin_shape){7, 5, 3, 3, 4, 0, 1});
  case_cin((cin_shape){9, 4, 4, 7, 6, 1, 1});
  case_cin((cin_shape){256, 16, 10, 8, 16, 0, 0});
  case_cin((cin_shape){300, 20, 20, 10, 32, 1, 1});
  case_cin((cin_shape){512, 64, 39, 16, 64, 0, 1});
  case_cin((cin_shape){256, 200, 39, 16, 200, 0, 0});
  case_cin((cin_shape){150, 256, 40, 16, 16, 0, 1});   /* CPU: 13 blocks; CUDA: 2 chunks */
  /* FiBiNET's SENET re-weighting: one row, one field, strided rows, ds without dx, the Criteo
   * shape (39 fields of 16) */
  case_field_scale(1, 1, 1, 0, 1);
  case_field_scale(7, 3, 5, 1, 1);
  case_field_scale(9, 4, 0, 1, 1);
  case_field_scale(33, 10, 8, 1, 0);
  case_field_scale(4096, 39, 16, 0, 1);
}

/* ================================================================ setup ==================== */

static char g_hosterr[1024];

static void h_log(const struct ameir_context *ctx, int32_t level, const char *msg) {
  (void)ctx;
  printf("     log[%d] %s\n", (int)level, msg ? msg : "");
}
static int32_t h_set_error(struct ameir_context *ctx, int32_t status, const char *msg) {
  snprintf(ctx ? ctx->msg : g_hosterr, AMEIR_MSG_MAX, "%s", msg ? msg : "(no message)");
  return status;
}

/* --cpu-vs-cpu: the second instance's "device" buffers have exactly the size asked (the CPU
 * backend rounds up to 64 bytes), so that AddressSanitizer sees a harness buffer too small for
 * what an op touches. */
static int32_t exact_alloc(void *state, size_t bytes, void **dev) {
  (void)state;
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) {
    *dev = NULL;
    return AMEIR_ENOMEM;
  }
  *dev = p;
  return 0;
}

static int cpu_backend(backend *b, const char *label, int32_t threads) {
  memset(b, 0, sizeof *b);
  b->label = label;
  b->ops = *ameir__cpu_ops();
  b->is_cpu = 1;
  b->threads = threads;
  b->ctx.ops = ameir__cpu_ops();
  b->ctx.threads = threads;
  int32_t rc = b->ops.init(&b->ctx, threads, &b->st);
  if (rc) {
    printf("FAIL init of the %s backend: %d: %s\n0 passed, 1 failed\n", label, (int)rc, b->ctx.msg);
    return 0;
  }
  b->ctx.bstate = b->st;
  return 1;
}

/* Loads the module; returns 0 when ready, else the exit status (after printing why). */
static int module_backend(backend *b, const char *path) {
  memset(b, 0, sizeof *b);
  b->label = "dev";
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("FAIL cannot load %s: %s\n0 passed, 1 failed\n", path, dlerror());
    return 1;
  }
  ameir__module_entry_fn entry;
  void *sym = dlsym(h, AMEIR_MODULE_ENTRY);
  if (!sym) {
    printf("FAIL %s has no %s\n0 passed, 1 failed\n", path, AMEIR_MODULE_ENTRY);
    return 1;
  }
  memcpy(&entry, &sym, sizeof entry);
  static char reason[768];
  struct ameir__module_host host;
  memset(&host, 0, sizeof host);
  host.abi_version = AMEIR_OPS_ABI_VERSION;
  host.struct_size = sizeof host;
  host.log = h_log;
  host.set_error = h_set_error;
  host.reason = reason;
  host.reason_size = sizeof reason;
  const ameir_ops *ops = NULL;
  int32_t st = entry(AMEIR_OPS_ABI_VERSION, &ops, &host);
  char desc[512] = "";
  if (host.describe) host.describe(desc, sizeof desc);
  printf("     module %s: %s\n", path, desc[0] ? desc : "(no describe)");
  if (st == AMEIR_EUNSUPPORTED) {
    printf("skip: %s\n0 passed, 0 failed, 1 skipped\n", reason[0] ? reason : "(no reason given)");
    return 77;
  }
  if (st != AMEIR_OK || !ops) {
    printf("FAIL entry point returned %d (ops %s): %s\n0 passed, 1 failed\n", (int)st,
           ops ? "set" : "NULL", reason);
    return 1;
  }
  if (ops->abi_version != AMEIR_OPS_ABI_VERSION || ops->struct_size < offsetof(ameir_ops, gemm)) {
    printf("FAIL module table: abi_version %u, struct_size %u (host: %u, %zu)\n"
           "0 passed, 1 failed\n",
           (unsigned)ops->abi_version, (unsigned)ops->struct_size, (unsigned)AMEIR_OPS_ABI_VERSION,
           sizeof(ameir_ops));
    return 1;
  }
  /* members beyond the module's struct_size stay NULL: their cases fail, naming the op */
  size_t have = ops->struct_size < sizeof(ameir_ops) ? ops->struct_size : sizeof(ameir_ops);
  memcpy(&b->ops, ops, have);
  b->label = b->ops.name ? b->ops.name : "dev";
  if (!b->ops.init || !b->ops.alloc || !b->ops.free || !b->ops.upload || !b->ops.download ||
      !b->ops.memset0 || !b->ops.copy || !b->ops.sync) {
    printf("FAIL the module's table lacks a lifetime or memory op\n0 passed, 1 failed\n");
    return 1;
  }
  b->threads = 0;
  int32_t rc = b->ops.init(&b->ctx, 0, &b->st);
  if (rc) {
    printf("FAIL init of the module's backend: %d: %s\n0 passed, 1 failed\n", (int)rc, b->ctx.msg);
    return 1;
  }
  b->ctx.bstate = b->st;
  return 0;
}

int main(int argc, char **argv) {
  const char *path = "lib/libameir_cuda.so";
  int cpu2 = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--cpu-vs-cpu")) cpu2 = 1;
    else if (!strcmp(argv[i], "--filter") && i + 1 < argc) g_filter = argv[++i];
    else if (!strcmp(argv[i], "--no-nan-beta0")) g_nan_beta0 = 0;
    else if (argv[i][0] == '-') {
      fprintf(stderr,
              "usage: %s [MODULE_PATH] [--cpu-vs-cpu] [--filter SUBSTR] [--no-nan-beta0]\n",
              argv[0]);
      return 2;
    } else path = argv[i];
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  crash_handlers();
  long procs = sysconf(_SC_NPROCESSORS_ONLN);
  if (procs < 1) procs = 1;
  if (!cpu_backend(&g_ref, "cpu", (int32_t)procs)) return 1;
  if (cpu2) {
    /* another thread count: results must not depend on it (ops.h; sgemm aside) */
    int32_t t2 = procs == 3 ? 2 : 3;
    if (!cpu_backend(&g_dev, "cpu2", t2)) return 1;
    g_dev.ops.alloc = exact_alloc;
    printf("     cpu (%d threads) against cpu2 (%d threads)\n", (int)procs, (int)t2);
  } else {
    int st = module_backend(&g_dev, path);
    if (st) return st;
    printf("     cpu (%d threads) against %s\n", (int)procs, g_dev.label);
  }
  double t0 = now_s();
  all_cases();
  if (!g_filter)
    for (size_t i = 0; i < N_COVERED; i++)
      if (!g_count[i]) {
        g_fail++;
        printf("FAIL coverage: op %s ran in no case\n", k_covered[i]);
      }
  printf("     time: %.1f s in all, %.1f s in %s runs, %.1f s in %s runs\n", now_s() - t0,
         g_ref.secs, g_ref.label, g_dev.secs, g_dev.label);
  g_ref.ops.shutdown(g_ref.st);
  g_dev.ops.shutdown(g_dev.st);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
