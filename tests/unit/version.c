/* Versions, status texts and the build description. */
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"

void test_unit_version__string_matches_macros(void) {
  char expect[64];
  snprintf(expect, sizeof expect, "%d.%d.%d", AMEIR_VERSION_MAJOR, AMEIR_VERSION_MINOR,
           AMEIR_VERSION_PATCH);
  T_ASSERT_MSG(!strcmp(ameir_version_string(), expect), "'%s' vs '%s'", ameir_version_string(),
               expect);
  T_ASSERT(!strcmp(AMEIR_VERSION_STRING, expect));
}

void test_unit_version__number_matches_macros(void) {
  T_ASSERT_EQ_INT(ameir_version_number(), AMEIR_VERSION_NUMBER);
  T_ASSERT_EQ_INT(ameir_version_number(),
                  AMEIR_VERSION_MAJOR * 10000 + AMEIR_VERSION_MINOR * 100 + AMEIR_VERSION_PATCH);
}

static const ameir_status k_codes[] = {
    AMEIR_OK,           AMEIR_EINVAL,     AMEIR_ENOMEM,   AMEIR_EIO,     AMEIR_EFORMAT,
    AMEIR_ECONFIG,      AMEIR_EVERSION,   AMEIR_EBACKEND, AMEIR_EUNSUPPORTED,
    AMEIR_ECANCELLED,   AMEIR_ESTATE,     AMEIR_ENOTFOUND, AMEIR_ENUMERIC,
};
#define N_CODES ((int)(sizeof k_codes / sizeof k_codes[0]))

void test_unit_version__status_str_distinct(void) {
  const char *unknown = ameir_status_str(-999);
  T_ASSERT(unknown && unknown[0]);
  for (int i = 0; i < N_CODES; i++) {
    const char *s = ameir_status_str(k_codes[i]);
    T_ASSERT_MSG(s && s[0], "status %d has no text", (int)k_codes[i]);
    T_ASSERT_MSG(strcmp(s, unknown) != 0, "status %d reads as unknown", (int)k_codes[i]);
    for (int j = 0; j < i; j++)
      T_ASSERT_MSG(strcmp(s, ameir_status_str(k_codes[j])) != 0, "statuses %d and %d share '%s'",
                   (int)k_codes[i], (int)k_codes[j], s);
  }
}

void test_unit_version__status_str_unknown(void) {
  const char *u = ameir_status_str(-999);
  T_ASSERT(u && strstr(u, "unknown"));
  T_ASSERT(!strcmp(ameir_status_str(12345), u));
  T_ASSERT(!strcmp(ameir_status_str(1), u));
  T_ASSERT(!strcmp(ameir_status_str(AMEIR_ENUMERIC - 1), u));
}

void test_unit_version__build_info(void) {
  const char *info = ameir_build_info();
  T_ASSERT(info != NULL);
  T_ASSERT_MSG(strstr(info, ameir_version_string()) != NULL, "no version in: %s", info);
  T_ASSERT_MSG(strstr(info, "compiler:") != NULL, "no compiler in: %s", info);
  T_ASSERT_MSG(strstr(info, "BLAS:") != NULL, "no BLAS in: %s", info);
  T_ASSERT_MSG(strstr(info, "backend cpu:") != NULL, "no cpu line in: %s", info);
  T_ASSERT_MSG(strstr(info, "backend cuda:") != NULL, "no cuda line in: %s", info);
  T_ASSERT(info[strlen(info) - 1] != '\n');
  T_ASSERT(ameir_build_info() == info);  /* built once, then kept */
}
