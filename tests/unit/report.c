/* The search report: report.yaml parses back (through the library's own YAML reader) to the
 * values written, report.html is self-contained and escapes what it shows, write errors are
 * AMEIR_EIO, and empty or NaN inputs are drawn without crashing. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "ameir/ameir.h"
#include "core/base/base.h"
#include "core/io/config.h"
#include "core/search/report.h"

static const char *ARCH_TEXT =
    "blocks: (conv3, relu, ln) zero\nreadout: sum last\ninteractions: (c0, c1) (c2, c3, c4)\n"
    "mlp: (200, relu) (80, swish)\nshortcut: se\n";

/* A report with steps 1-3 and the derivation run; the caller frees *arch. */
typedef struct {
  ameir__search_report r;
  double samples[3][50];
  char *top_arch[3][3];
  double top_metric[3][3];
} fixture;

static void fixture_init(fixture *f, ameir_arch **arch) {
  memset(f, 0, sizeof *f);
  T_OK(ameir_arch_parse(arch, NULL, ARCH_TEXT));
  ameir__search_report *r = &f->r;
  r->dataset = "a<b & \"c\" \\d";
  r->config = "configs/x.yaml";
  r->task = AMEIR_TASK_CTR;
  r->metric_name = "auc";
  r->seed = 18446744073709551615ull;
  r->threads = 4;
  r->from_scratch = 0;
  static char *texts[3] = {"blocks: (conv3, relu, ln) zero\nreadout: sum\n", "  leading spaces\nno newline",
                           "two newlines\n\n"};
  for (int s = 1; s <= 3; s++) {
    ameir__step_report *st = &r->step[s];
    st->ran = 1;
    st->seconds = 10.5 * s;
    st->arch = (char *)ARCH_TEXT;
    st->valid_metric = 0.7 + 0.01 * s;
    st->params = 1000000 + s;
    st->flops = 2000 + s;
    st->n_samples = 50;
    st->sample_metric = f->samples[s - 1];
    for (int i = 0; i < 50; i++) f->samples[s - 1][i] = 0.6 + 0.002 * ((i * 7) % 50);
    st->n_top = 3;
    st->top_arch = f->top_arch[s - 1];
    st->top_metric = f->top_metric[s - 1];
    for (int i = 0; i < 3; i++) {
      f->top_arch[s - 1][i] = texts[i];
      f->top_metric[s - 1][i] = 0.7 - 0.001 * i;
    }
  }
  r->step[2].cycles = 3;
  r->step[2].cycle_candidates[0] = 10;
  r->step[2].cycle_candidates[1] = 20;
  r->step[2].cycle_candidates[2] = 30;
  r->step[4].ran = 1;
  r->step[4].seconds = 99;
  r->step[4].params = 77;
  r->step[4].flops = 88;
  r->step[4].valid_metric = 0.75;
  r->final_arch = *arch;
  r->test_names[0] = "auc";
  r->test_names[1] = "logloss";
  r->test_metric[0] = 0.8125;
  r->test_metric[1] = NAN;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  T_ASSERT_MSG(f, "%s: cannot open", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  T_ASSERT(s && fread(s, 1, (size_t)n, f) == (size_t)n);
  s[n] = 0;
  fclose(f);
  return s;
}

static int count(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p++) n++;
  return n;
}

#define T_KEY(cfg, key, want)                                                                 \
  do {                                                                                        \
    const char *v_ = ameir__config_get(cfg, key);                                             \
    T_ASSERT_MSG(v_ && strcmp(v_, want) == 0, "%s: got '%s', want '%s'", key, v_ ? v_ : "(missing)", want); \
  } while (0)

void test_unit_report__yaml_roundtrip(void) {
  fixture f;
  ameir_arch *arch = NULL;
  fixture_init(&f, &arch);
  f.top_arch[0][2] = "ctl\x01char";   /* no literal block for this one: quoted */
  char path[600];
  snprintf(path, sizeof path, "%s/report.yaml", t_tmpdir());
  T_OK(ameir__report_write_yaml(NULL, &f.r, path));
  ameir__config *cfg = NULL;
  T_OK(ameir__config_load(NULL, path, &cfg));
  T_KEY(cfg, "dataset", "a<b & \"c\" \\d");
  T_KEY(cfg, "task", "ctr");
  T_KEY(cfg, "metric", "auc");
  T_KEY(cfg, "seed", "18446744073709551615");
  T_KEY(cfg, "threads", "4");
  T_KEY(cfg, "from_scratch", "false");
  for (int s = 1; s <= 3; s++) {
    char key[64];
    snprintf(key, sizeof key, "steps.step%d.valid_metric", s);
    const char *v = ameir__config_get(cfg, key);
    T_ASSERT_MSG(v, "%s missing", key);
    T_ASSERT_NEAR(strtod(v, NULL), 0.7 + 0.01 * s, 1e-6);
    snprintf(key, sizeof key, "steps.step%d.arch", s);
    T_KEY(cfg, key, ARCH_TEXT);
    snprintf(key, sizeof key, "steps.step%d.samples", s);
    T_KEY(cfg, key, "50");
    snprintf(key, sizeof key, "steps.step%d.params", s);
    T_ASSERT_EQ_INT(strtoll(ameir__config_get(cfg, key), NULL, 10), 1000000 + s);
    snprintf(key, sizeof key, "steps.step%d.top.1.arch", s);
    T_KEY(cfg, key, "  leading spaces\nno newline");
    snprintf(key, sizeof key, "steps.step%d.top.2.metric", s);
    T_ASSERT_NEAR(strtod(ameir__config_get(cfg, key), NULL), 0.698, 1e-6);
  }
  T_KEY(cfg, "steps.step2.top.2.arch", "two newlines\n\n");
  T_KEY(cfg, "steps.step1.top.2.arch", "ctl\x01char");
  T_KEY(cfg, "steps.step1.top.0.arch", "blocks: (conv3, relu, ln) zero\nreadout: sum\n");
  T_KEY(cfg, "steps.step2.cycles", "3");
  T_ASSERT_EQ_INT(ameir__config_count(cfg, "steps.step2.cycle_candidates"), 3);
  T_KEY(cfg, "steps.step2.cycle_candidates.2", "30");
  T_ASSERT(ameir__config_get(cfg, "steps.step1.cycles") == NULL);
  char *derived = NULL;
  T_OK(ameir_arch_to_string(arch, &derived));
  T_KEY(cfg, "derived.arch", derived);
  ameir_free(derived);
  T_KEY(cfg, "derived.params", "77");
  T_KEY(cfg, "derived.flops", "88");
  T_ASSERT_NEAR(strtod(ameir__config_get(cfg, "test.auc"), NULL), 0.8125, 1e-9);
  T_KEY(cfg, "test.logloss", ".nan");
  ameir__config_free(cfg);
  ameir_arch_free(arch);
}

void test_unit_report__html_content(void) {
  fixture f;
  ameir_arch *arch = NULL;
  fixture_init(&f, &arch);
  char path[600];
  snprintf(path, sizeof path, "%s/report.html", t_tmpdir());
  T_OK(ameir__report_write_html(NULL, &f.r, path));
  char *h = slurp(path);
  T_ASSERT(strncmp(h, "<!DOCTYPE html>", 15) == 0);
  T_ASSERT(strstr(h, "</html>"));
  T_ASSERT(strstr(h, "<svg"));
  T_ASSERT(strstr(h, "a&lt;b &amp; &quot;c&quot; \\d"));
  T_ASSERT(!strstr(h, "a<b"));
  T_ASSERT_EQ_INT(count(h, "class=\"hist\""), 3);
  T_ASSERT_EQ_INT(count(h, "class=\"arch\""), 1);
  T_ASSERT(strstr(h, ">200 relu<"));
  T_ASSERT(strstr(h, ">80 swish<"));
  T_ASSERT(strstr(h, "conv3 / relu / ln"));
  T_ASSERT(strstr(h, "class=\"s1 zero\""));
  T_ASSERT(strstr(h, "c0 &#8857; c1"));
  T_ASSERT(strstr(h, "c2 &#8857; c3 &#8857; c4"));
  T_ASSERT(strstr(h, "SE shortcut"));
  T_ASSERT(strstr(h, "read-out: sum last"));
  T_ASSERT(!strstr(h, "http") && !strstr(h, "<script") && !strstr(h, "<link"));
  T_ASSERT(strstr(h, "n/a"));   /* the NaN logloss */
  free(h);
  ameir_arch_free(arch);
}

void test_unit_report__write_error_is_eio(void) {
  fixture f;
  ameir_arch *arch = NULL;
  fixture_init(&f, &arch);
  char path[600];
  snprintf(path, sizeof path, "%s/no/such/dir/report.yaml", t_tmpdir());
  T_ASSERT_EQ_INT(ameir__report_write_yaml(NULL, &f.r, path), AMEIR_EIO);
  T_ASSERT(strstr(ameir_last_error(), "no/such/dir/report.yaml"));
  snprintf(path, sizeof path, "%s/no/such/dir/report.html", t_tmpdir());
  T_ASSERT_EQ_INT(ameir__report_write_html(NULL, &f.r, path), AMEIR_EIO);
  T_ASSERT(strstr(ameir_last_error(), "report.html"));
  ameir_arch_free(arch);
}

/* No samples, all-equal samples, NaN metrics, no derived architecture, steps that did not run. */
void test_unit_report__degenerate(void) {
  fixture f;
  ameir_arch *arch = NULL;
  fixture_init(&f, &arch);
  ameir__search_report *r = &f.r;
  r->final_arch = NULL;
  r->step[4].ran = 0;
  r->step[1].n_samples = 0;
  r->step[1].sample_metric = NULL;
  r->step[1].n_top = 0;
  r->step[1].valid_metric = NAN;
  for (int i = 0; i < 50; i++) f.samples[1][i] = 0.5;
  f.samples[1][3] = NAN;
  r->step[3].ran = 0;
  r->test_metric[0] = NAN;
  char yp[600], hp[600];
  snprintf(yp, sizeof yp, "%s/r.yaml", t_tmpdir());
  snprintf(hp, sizeof hp, "%s/r.html", t_tmpdir());
  T_OK(ameir__report_write_yaml(NULL, r, yp));
  T_OK(ameir__report_write_html(NULL, r, hp));
  ameir__config *cfg = NULL;
  T_OK(ameir__config_load(NULL, yp, &cfg));
  T_KEY(cfg, "steps.step1.valid_metric", ".nan");
  T_KEY(cfg, "steps.step1.samples", "0");
  T_ASSERT(ameir__config_get(cfg, "steps.step3.seconds") == NULL);
  T_ASSERT(ameir__config_get(cfg, "derived.arch") == NULL);
  T_KEY(cfg, "test.auc", ".nan");
  ameir__config_free(cfg);
  char *h = slurp(hp);
  T_ASSERT_EQ_INT(count(h, "class=\"hist\""), 2);
  T_ASSERT(strstr(h, "no samples"));
  T_ASSERT(strstr(h, "(49 samples)"));   /* the NaN sample is left out */
  T_ASSERT(!strstr(h, "class=\"arch\""));
  T_ASSERT(strstr(h, "No architecture"));
  free(h);

  /* nothing ran at all: still two valid documents */
  ameir__search_report empty = {0};
  empty.dataset = "d";
  T_OK(ameir__report_write_yaml(NULL, &empty, yp));
  T_OK(ameir__report_write_html(NULL, &empty, hp));
  T_OK(ameir__config_load(NULL, yp, &cfg));
  T_KEY(cfg, "dataset", "d");
  T_ASSERT(ameir__config_get(cfg, "test") == NULL);
  ameir__config_free(cfg);
  ameir_arch_free(arch);
}

/* Architectures without Stage 1, with extras, or with nothing but blocks still draw. */
void test_unit_report__diagram_variants(void) {
  static const char *texts[] = {
      "readout: field\nmlp: (400, relu) (400, relu) (400, relu)\nextras: linear fm\n",
      "blocks: (gru, identity, none)\nreadout: att\n", ""};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    ameir_arch *a = NULL;
    T_OK(ameir_arch_parse(&a, NULL, texts[i]));
    ameir__search_report r = {0};
    r.dataset = "d";
    r.task = AMEIR_TASK_RETRIEVAL;
    r.final_arch = a;
    char hp[600];
    snprintf(hp, sizeof hp, "%s/v%zu.html", t_tmpdir(), i);
    T_OK(ameir__report_write_html(NULL, &r, hp));
    char *h = slurp(hp);
    T_ASSERT(strstr(h, "class=\"arch\""));
    T_ASSERT(strstr(h, "output (user vector)"));
    if (i == 0) T_ASSERT(strstr(h, "linear + FM") && count(h, ">400 relu<") == 3);
    if (i == 1) T_ASSERT(strstr(h, "gru / identity / none"));
    free(h);
    ameir_arch_free(a);
  }
}
