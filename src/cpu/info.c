/* ameir__cpu_describe: the BLAS in use and the CPU features found at run time. */
#include "info.h"

#include <pthread.h>
#include <stdio.h>

#include <cblas.h>

static char g_desc[512];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const char *yes_no(int v) { return v ? "yes" : "no"; }

static void build(void) {
  const char *config = openblas_get_config();
  const char *core = openblas_get_corename();
  int par = openblas_get_parallel();  /* 0 sequential, 1 pthreads, 2 OpenMP */
  const char *threading = par == 2 ? "openmp" : par == 1 ? "pthreads" : "sequential";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  snprintf(g_desc, sizeof g_desc,
           "BLAS: %s (core %s, %s threading); cpu: avx2 %s, avx512f %s, avx512bf16 %s, "
           "amx-bf16 %s",
           config ? config : "OpenBLAS", core ? core : "?", threading,
           yes_no(__builtin_cpu_supports("avx2")), yes_no(__builtin_cpu_supports("avx512f")),
#if defined(__clang__)   /* clang 14 does not know these feature names */
           "unknown", "unknown");
#else
           yes_no(__builtin_cpu_supports("avx512bf16")), yes_no(__builtin_cpu_supports("amx-bf16")));
#endif
#else
  snprintf(g_desc, sizeof g_desc, "BLAS: %s (core %s, %s threading); cpu: not x86",
           config ? config : "OpenBLAS", core ? core : "?", threading);
#endif
}

const char *ameir__cpu_describe(void) {
  pthread_once(&g_once, build);
  return g_desc;
}
