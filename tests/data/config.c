/* The YAML reader: flattening to dotted keys with lines, overrides, paths, errors. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "core/io/config.h"

static const char *val(ameir__config *c, const char *k) {
  const char *v = ameir__config_get(c, k);
  return v ? v : "(none)";
}

void test_data_config__flatten(void) {
  const char *y =
      "dataset:\n"
      "  name: criteo\n"
      "  files: [a.tsv, b.tsv]\n"
      "  features:\n"
      "    - {name: C1, min_count: 2}\n"
      "    - name: I1\n"
      "      transform: log\n"
      "  base: &b {x: 1}\n"
      "  copy: *b\n"
      "train: {epochs: 3}\n";
  ameir__config *c = NULL;
  T_OK(ameir__config_parse(NULL, y, "/some/dir", &c));
  T_ASSERT(!strcmp(val(c, "dataset.name"), "criteo"));
  T_ASSERT(!strcmp(val(c, "dataset.files.1"), "b.tsv"));
  T_ASSERT(!strcmp(val(c, "dataset.features.0.min_count"), "2"));
  T_ASSERT(!strcmp(val(c, "dataset.features.1.transform"), "log"));
  T_ASSERT(!strcmp(val(c, "dataset.copy.x"), "1"));
  T_ASSERT(!strcmp(val(c, "train.epochs"), "3"));
  T_ASSERT_EQ_INT(ameir__config_count(c, "dataset.files"), 2);
  T_ASSERT_EQ_INT(ameir__config_count(c, "dataset.features"), 2);
  T_ASSERT_EQ_INT(ameir__config_count(c, "dataset.name"), 0);
  T_ASSERT_EQ_INT(ameir__config_find(c, "dataset.features.1.transform")->line, 7);
  T_ASSERT_EQ_INT(ameir__config_find(c, "dataset.files.0")->line, 3);
  T_ASSERT(!strcmp(c->dir, "/some/dir"));
  T_ASSERT(!strcmp(c->path, "<string>"));
  ameir__config_free(c);
}

void test_data_config__overrides(void) {
  ameir__config *c = NULL;
  T_OK(ameir__config_parse(NULL, "a:\n  b: 1\n  c: [x, y, z]\n", NULL, &c));
  T_OK(ameir__config_override(NULL, c, "a.b=2"));
  T_OK(ameir__config_override(NULL, c, " a.c = [p, q] "));
  T_OK(ameir__config_override(NULL, c, "a.d={e: 5, f: [1]}"));
  T_OK(ameir__config_override(NULL, c, "a.g=\"quoted: yes\""));
  T_ASSERT(!strcmp(val(c, "a.b"), "2"));
  T_ASSERT_EQ_INT(ameir__config_count(c, "a.c"), 2);
  T_ASSERT(!strcmp(val(c, "a.c.1"), "q"));
  T_ASSERT(!strcmp(val(c, "a.d.e"), "5"));
  T_ASSERT(!strcmp(val(c, "a.d.f.0"), "1"));
  T_ASSERT(!strcmp(val(c, "a.g"), "quoted: yes"));
  T_ASSERT_EQ_INT(ameir__config_override(NULL, c, "no-equals"), AMEIR_EINVAL);
  ameir__config_free(c);
}

void test_data_config__paths_and_env(void) {
  ameir__config *c = NULL;
  T_OK(ameir__config_parse(NULL, "k: v\n", "/base", &c));
  setenv("AMEIR_TEST_DIR_X", "/data/x", 1);
  unsetenv("AMEIR_TEST_DIR_UNSET");
  char *p = ameir__config_path(NULL, c, "${AMEIR_TEST_DIR_X}/f.tsv");
  T_ASSERT(p && !strcmp(p, "/data/x/f.tsv"));
  free(p);
  p = ameir__config_path(NULL, c, "${AMEIR_TEST_DIR_UNSET:-../d}/f.tsv");
  T_ASSERT(p && !strcmp(p, "/base/../d/f.tsv"));
  free(p);
  p = ameir__config_path(NULL, c, "rel/f.tsv");
  T_ASSERT(p && !strcmp(p, "/base/rel/f.tsv"));
  free(p);
  p = ameir__config_path(NULL, c, "/abs/f.tsv");
  T_ASSERT(p && !strcmp(p, "/abs/f.tsv"));
  free(p);
  ameir__config_free(c);
}

void test_data_config__errors(void) {
  ameir__config *c = NULL;
  T_ASSERT_EQ_INT(ameir__config_parse(NULL, "a: 1\nb: [1, 2\nc: 3\n", NULL, &c), AMEIR_ECONFIG);
  T_ASSERT(c == NULL);
  T_ASSERT_MSG(strstr(ameir_last_error(), "<string>:"), "%s", ameir_last_error());
  T_ASSERT_EQ_INT(ameir__config_parse(NULL, "a: 1\nb: 2\na: 3\n", NULL, &c), AMEIR_ECONFIG);
  T_ASSERT_MSG(strstr(ameir_last_error(), "<string>:3: duplicate key 'a'"), "%s", ameir_last_error());
  T_ASSERT_EQ_INT(ameir__config_parse(NULL, "- just\n- a list\n", NULL, &c), AMEIR_ECONFIG);
  T_ASSERT_EQ_INT(ameir__config_load(NULL, "/nonexistent/x.yaml", &c), AMEIR_EIO);
  T_ASSERT_MSG(strstr(ameir_last_error(), "/nonexistent/x.yaml"), "%s", ameir_last_error());
  /* alias cycles and bombs stop at the limits instead of recursing forever */
  if (ameir__config_parse(NULL, "a: &x [*x]\n", NULL, &c) == AMEIR_OK) ameir__config_free(c);
  c = NULL;
  const char *bomb =
      "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
  T_ASSERT_EQ_INT(ameir__config_parse(NULL, bomb, NULL, &c), AMEIR_ECONFIG);
  T_ASSERT(c == NULL);
  /* an empty document is an empty config */
  T_OK(ameir__config_parse(NULL, "", NULL, &c));
  T_ASSERT_EQ_INT(c->n, 0);
  ameir__config_free(c);
}
