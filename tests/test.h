/* Minimal test harness (clar-like). A test is a function
 *     void test_<area>_<file>__<case>(void)
 * in tests/<area>/<file>.c; tests/gen_registry.sh collects them, tests/runner.c runs them.
 * Assertions stop the current test (longjmp) and record file:line and the message. */
#ifndef AMEIR_TEST_H
#define AMEIR_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdio.h>

void t__fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4), noreturn))
#endif
    ;
void t__skip(const char *why);
/* Path of ../shared/data as seen from the repository root (AMEIR_DATA_DIR overrides);
 * NULL if it does not exist (tests that need it then skip). */
const char *t_data_dir(void);
/* A fresh temporary directory for this test (removed by the runner afterwards). */
const char *t_tmpdir(void);

#define T_ASSERT(c) \
  do { if (!(c)) t__fail(__FILE__, __LINE__, "assertion failed: %s", #c); } while (0)
#define T_ASSERT_MSG(c, ...) \
  do { if (!(c)) t__fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define T_ASSERT_EQ_INT(a, b) \
  do { long long a_ = (long long)(a), b_ = (long long)(b); \
       if (a_ != b_) t__fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define T_ASSERT_NEAR(a, b, tol) \
  do { double a_ = (double)(a), b_ = (double)(b); \
       if (!(fabs(a_ - b_) <= (tol)) ) \
         t__fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol)); } while (0)
/* relative-or-absolute closeness: |a-b| <= atol + rtol*max(|a|,|b|) */
#define T_ASSERT_CLOSE(a, b, rtol, atol) \
  do { double a_ = (double)(a), b_ = (double)(b); \
       double m_ = fabs(a_) > fabs(b_) ? fabs(a_) : fabs(b_); \
       if (!(fabs(a_ - b_) <= (atol) + (rtol) * m_)) \
         t__fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g", #a, #b, a_, b_); } while (0)
/* an ameir_status call that must succeed; prints ameir_last_error() otherwise */
#define T_OK(call) \
  do { int st_ = (int)(call); \
       if (st_ != 0) t__fail(__FILE__, __LINE__, "%s -> %d (%s)", #call, st_, ameir_last_error()); } while (0)
#define T_SKIP(why) do { t__skip(why); return; } while (0)

#endif
