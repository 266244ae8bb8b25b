/* Test runner: runs all registered tests (or those whose name contains an argument), each
 * in-process, and ends with the line "N passed, N failed" (", N skipped" when some skip). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "ameir/common.h"

typedef struct { const char *name; void (*fn)(void); } t_entry;
extern const t_entry t__registry[];
extern const int t__registry_count;

static jmp_buf t_jmp;
static char t_msg[2048];
static int t_skipped;
static char t_tmp[512];

void t__fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  int n = snprintf(t_msg, sizeof t_msg, "%s:%d: ", file, line);
  va_start(ap, fmt);
  vsnprintf(t_msg + n, sizeof t_msg - (size_t)n, fmt, ap);
  va_end(ap);
  longjmp(t_jmp, 1);
}

void t__skip(const char *why) {
  t_skipped = 1;
  snprintf(t_msg, sizeof t_msg, "%s", why);
}

const char *t_data_dir(void) {
  static char buf[1024];
  const char *e = getenv("AMEIR_DATA_DIR");
  snprintf(buf, sizeof buf, "%s", e && *e ? e : "../shared/data");
  struct stat st;
  if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
  return buf;
}

const char *t_tmpdir(void) {
  if (!t_tmp[0]) {
    snprintf(t_tmp, sizeof t_tmp, "/tmp/ameir-test-XXXXXX");
    if (!mkdtemp(t_tmp)) t__fail(__FILE__, __LINE__, "mkdtemp failed");
  }
  return t_tmp;
}

static void rm_tmp(void) {
  if (t_tmp[0]) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t_tmp);
    if (system(cmd) != 0) { /* best effort */ }
    t_tmp[0] = 0;
  }
}

int main(int argc, char **argv) {
  static volatile int passed, failed, skipped;
  int list = argc > 1 && strcmp(argv[1], "--list") == 0;
  for (volatile int i = 0; i < t__registry_count; i++) {
    const t_entry *t = &t__registry[i];
    if (list) { printf("%s\n", t->name); continue; }
    if (argc > 1) {
      int match = 0;
      for (int a = 1; a < argc; a++) if (strstr(t->name, argv[a])) match = 1;
      if (!match) continue;
    }
    t_skipped = 0;
    t_msg[0] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (setjmp(t_jmp) == 0) {
      t->fn();
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
      if (t_skipped) { skipped++; printf("skip %s (%s)\n", t->name, t_msg); }
      else { passed++; printf("ok   %s (%.2fs)\n", t->name, s); }
    } else {
      failed++;
      printf("FAIL %s\n     %s\n", t->name, t_msg);
    }
    fflush(stdout);
    rm_tmp();
  }
  if (list) return 0;
  if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  else printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
