/* Status texts, versions and the build description. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base.h"
#include "../backend/registry.h"
#include "cpu/info.h"

AMEIR_API const char *ameir_status_str(ameir_status status) {
  switch (status) {
    case AMEIR_OK: return "success";
    case AMEIR_EINVAL: return "invalid argument";
    case AMEIR_ENOMEM: return "out of memory";
    case AMEIR_EIO: return "input/output error";
    case AMEIR_EFORMAT: return "malformed data or file";
    case AMEIR_ECONFIG: return "invalid configuration";
    case AMEIR_EVERSION: return "incompatible version";
    case AMEIR_EBACKEND: return "compute backend failure";
    case AMEIR_EUNSUPPORTED: return "not supported here";
    case AMEIR_ECANCELLED: return "cancelled";
    case AMEIR_ESTATE: return "invalid state for this call";
    case AMEIR_ENOTFOUND: return "not found";
    case AMEIR_ENUMERIC: return "numeric failure (NaN or infinity)";
    default: return "unknown status code";
  }
}

AMEIR_API const char *ameir_version_string(void) { return AMEIR_VERSION_STRING; }

AMEIR_API uint32_t ameir_version_number(void) { return (uint32_t)AMEIR_VERSION_NUMBER; }

#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown compiler"
#endif

static char g_info[8192];
static pthread_once_t g_info_once = PTHREAD_ONCE_INIT;

static void build_info(void) {
  size_t len = 0;
  int n = snprintf(g_info, sizeof g_info,
                   "libameir %s (ops ABI %d)\n"
                   "compiler: %s\n"
                   "%s\n",
                   AMEIR_VERSION_STRING, AMEIR_OPS_ABI_VERSION, COMPILER, ameir__cpu_describe());
  if (n > 0) len = (size_t)n < sizeof g_info ? (size_t)n : sizeof g_info - 1;
  ameir__backend_describe(g_info + len, sizeof g_info - len);
  /* no trailing newline */
  len = strlen(g_info);
  while (len && g_info[len - 1] == '\n') g_info[--len] = 0;
}

AMEIR_API const char *ameir_build_info(void) {
  pthread_once(&g_info_once, build_info);
  return g_info;
}
