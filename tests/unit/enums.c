/* Pins the value of every public constant of the headers under include/ameir/ (STYLE.md "ABI discipline"):
 * these numbers are stored in files and compiled into callers, so they never change and are never
 * reused. A new constant must be added here; the `all_listed` case finds one that was not. */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"

typedef struct {
  const char *group;
  const char *name;
  long long value;   /* the macro as compiled */
  long long pinned;  /* the value it must keep */
} pin;

#define P(group, name, v) {group, #name, (long long)(name), (long long)(v)}

static const pin k_pins[] = {
    P("status", AMEIR_OK, 0),
    P("status", AMEIR_EINVAL, -1),
    P("status", AMEIR_ENOMEM, -2),
    P("status", AMEIR_EIO, -3),
    P("status", AMEIR_EFORMAT, -4),
    P("status", AMEIR_ECONFIG, -5),
    P("status", AMEIR_EVERSION, -6),
    P("status", AMEIR_EBACKEND, -7),
    P("status", AMEIR_EUNSUPPORTED, -8),
    P("status", AMEIR_ECANCELLED, -9),
    P("status", AMEIR_ESTATE, -10),
    P("status", AMEIR_ENOTFOUND, -11),
    P("status", AMEIR_ENUMERIC, -12),
    P("log", AMEIR_LOG_ERROR, 0),
    P("log", AMEIR_LOG_WARN, 1),
    P("log", AMEIR_LOG_INFO, 2),
    P("log", AMEIR_LOG_DEBUG, 3),
    P("split", AMEIR_SPLIT_TRAIN, 0),
    P("split", AMEIR_SPLIT_VALID, 1),
    P("split", AMEIR_SPLIT_TEST, 2),
    P("field", AMEIR_FIELD_CATEGORICAL, 0),
    P("field", AMEIR_FIELD_MULTI, 1),
    P("field", AMEIR_FIELD_DENSE, 2),
    P("field", AMEIR_FIELD_SEQUENCE, 3),
    P("task", AMEIR_TASK_CTR, 0),
    P("task", AMEIR_TASK_RETRIEVAL, 1),
    P("step", AMEIR_STEP_BLOCKS, 1),
    P("step", AMEIR_STEP_INTERACTIONS, 2),
    P("step", AMEIR_STEP_MLP, 3),
    P("step", AMEIR_STEP_DERIVE, 4),
    P("metric", AMEIR_METRIC_AUC, 1),
    P("metric", AMEIR_METRIC_LOGLOSS, 2),
    P("metric", AMEIR_METRIC_LOSS, 3),
    P("metric", AMEIR_METRIC_CTR, 4),
    P("metric", AMEIR_METRIC_ROWS, 5),
    P("metric", AMEIR_METRIC_GAUC, 6),
    P("metric", AMEIR_METRIC_HR5, 7),
    P("metric", AMEIR_METRIC_NDCG5, 8),
    P("metric", AMEIR_METRIC_HR10, 9),
    P("metric", AMEIR_METRIC_NDCG10, 10),
    P("metric", AMEIR_METRIC_MRR, 11),
    P("metric", AMEIR_METRIC_HR20, 12),
    P("metric", AMEIR_METRIC_NDCG20, 13),
};
#define N_PINS ((int)(sizeof k_pins / sizeof k_pins[0]))

/* Numeric macros that are not pinned constants: they move with each release. */
static const char *const k_not_pinned[] = {"AMEIR_VERSION_MAJOR", "AMEIR_VERSION_MINOR",
                                           "AMEIR_VERSION_PATCH"};

void test_unit_enums__values_pinned(void) {
  for (int i = 0; i < N_PINS; i++)
    T_ASSERT_MSG(k_pins[i].value == k_pins[i].pinned, "%s is %lld, pinned at %lld",
                 k_pins[i].name, k_pins[i].value, k_pins[i].pinned);
}

void test_unit_enums__no_repeat_within_group(void) {
  for (int i = 0; i < N_PINS; i++)
    for (int j = i + 1; j < N_PINS; j++)
      if (!strcmp(k_pins[i].group, k_pins[j].group))
        T_ASSERT_MSG(k_pins[i].value != k_pins[j].value, "%s and %s share the value %lld",
                     k_pins[i].name, k_pins[j].name, k_pins[i].value);
}

void test_unit_enums__status_codes_negative(void) {
  for (int i = 0; i < N_PINS; i++)
    if (!strcmp(k_pins[i].group, "status") && strcmp(k_pins[i].name, "AMEIR_OK") != 0)
      T_ASSERT_MSG(k_pins[i].value < 0, "%s must be negative", k_pins[i].name);
}

static int is_listed(const char *name) {
  for (int i = 0; i < N_PINS; i++)
    if (!strcmp(k_pins[i].name, name)) return 1;
  for (size_t i = 0; i < sizeof k_not_pinned / sizeof k_not_pinned[0]; i++)
    if (!strcmp(k_not_pinned[i], name)) return 1;
  return 0;
}

/* Every `#define AMEIR_NAME <integer>` in the public headers is listed above. */
void test_unit_enums__all_listed(void) {
  DIR *d = opendir("include/ameir");
  if (!d) T_SKIP("include/ameir not found (run from the repository root)");
  struct dirent *e;
  int headers = 0, seen = 0;
  char missing[1024] = "";
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 3 || strcmp(e->d_name + n - 2, ".h") != 0) continue;
    char path[512];
    snprintf(path, sizeof path, "include/ameir/%s", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    headers++;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
      char name[128];
      long long v;
      if (sscanf(line, " #define %127s %lld", name, &v) != 2) continue;
      if (strncmp(name, "AMEIR_", 6) != 0) continue;
      seen++;
      if (!is_listed(name) && strlen(missing) + strlen(name) + 3 < sizeof missing) {
        strcat(missing, " ");
        strcat(missing, name);
      }
    }
    fclose(f);
  }
  closedir(d);
  T_ASSERT(headers > 0);
  T_ASSERT_MSG(seen >= N_PINS, "found only %d numeric constants in the headers", seen);
  T_ASSERT_MSG(!missing[0], "public constants not pinned in tests/unit/enums.c:%s", missing);
}
