/* Malformed input: every case is an error naming file and line (and column or key), or, with
 * on_bad_row: skip, a counted skip. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "test.h"

#define T_ERR(call, code, text)                                                              \
  do {                                                                                       \
    ameir_status st_ = (call);                                                               \
    T_ASSERT_MSG(st_ == (code), "%s -> %d, expected %d (%s)", #call, (int)st_, (int)(code),   \
                 td_err(NULL));                                                              \
    T_ASSERT_MSG(strstr(td_err(NULL), (text)), "message '%s' lacks '%s'", td_err(NULL), (text)); \
  } while (0)

static ameir_dataset *ds;

/* a Criteo line with the given label, I2 text and number of fields (40 = well formed) */
static void criteo_line(char *buf, size_t n, const char *label, const char *i2, int fields) {
  size_t o = (size_t)snprintf(buf, n, "%s\t1\t%s", label, i2);
  for (int f = 3; f < fields; f++) o += (size_t)snprintf(buf + o, n - o, "\t%s", f < 14 ? "1" : "0a0b0c0d");
  snprintf(buf + o, n - o, "\n");
}

static const char *criteo_file(const char *name, const char *bad_line) {
  char text[4096], line[600];
  text[0] = 0;
  for (int i = 0; i < 4; i++) {
    if (i == 2 && bad_line) strcat(text, bad_line);
    criteo_line(line, sizeof line, i % 2 ? "1" : "0", "5", 40);
    strcat(text, line);
  }
  return td_write(name, text);
}

void test_data_errors__column_count(void) {
  char bad[600];
  criteo_line(bad, sizeof bad, "0", "5", 39);
  criteo_file("cc.tsv", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [cc.tsv], format: criteo}\n", NULL), AMEIR_EFORMAT,
        "cc.tsv:3: 39 columns, expected 40");
  T_ASSERT(ds == NULL);
  criteo_line(bad, sizeof bad, "0", "5", 41);
  criteo_file("cc2.tsv", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [cc2.tsv], format: criteo}\n", NULL), AMEIR_EFORMAT,
        "cc2.tsv:3: 41 columns, expected 40");
}

void test_data_errors__not_a_number(void) {
  char bad[600];
  criteo_line(bad, sizeof bad, "1", "abc", 40);
  criteo_file("nn.tsv", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [nn.tsv], format: criteo}\n", NULL), AMEIR_EFORMAT,
        "nn.tsv:3: column 3 (I2): 'abc' is not a number");
  criteo_line(bad, sizeof bad, "1", "1e999", 40);
  criteo_file("nn2.tsv", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [nn2.tsv], format: criteo}\n", NULL), AMEIR_EFORMAT,
        "nn2.tsv:3: column 3 (I2)");
  criteo_line(bad, sizeof bad, "1", "inf", 40);
  criteo_file("nn3.tsv", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [nn3.tsv], format: criteo}\n", NULL), AMEIR_EFORMAT,
        "'inf' is not a number");
}

void test_data_errors__label(void) {
  char bad[600];
  criteo_line(bad, sizeof bad, "2", "5", 40);
  criteo_file("lb.tsv", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [lb.tsv], format: criteo}\n", NULL), AMEIR_EFORMAT,
        "lb.tsv:3: label '2' is not 0 or 1");
  criteo_line(bad, sizeof bad, "", "5", 40);
  criteo_file("lb2.tsv", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [lb2.tsv], format: criteo}\n", NULL), AMEIR_EFORMAT,
        "lb2.tsv:3: missing label");
  td_write("lb.libfm", "1 1:1\n-1 2:1\n0 3:1\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [lb.libfm], format: libfm, label: {values: '-1/1'}}\n", NULL),
        AMEIR_EFORMAT, "lb.libfm:3: label '0' is not -1 or 1");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [lb.libfm], format: libfm, label: {values: '0/1'}}\n", NULL),
        AMEIR_EFORMAT, "lb.libfm:2: label '-1' is not 0 or 1");
  td_write("lb.csv", "y,v\n1,a\nyes,b\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [lb.csv], label: y}\n", NULL), AMEIR_EFORMAT,
        "lb.csv:3: label 'yes' is not a number");
}

void test_data_errors__schema(void) {
  td_write("sc.csv", "y,a,b\n1,x,2\n");
  /* unknown column: the YAML file, the line of the feature, the name */
  T_ERR(td_open(&ds, NULL,
                "dataset:\n"
                "  files: [sc.csv]\n"
                "  label: y\n"
                "  features:\n"
                "    - {name: a}\n"
                "    - {name: nope}\n",
                NULL),
        AMEIR_ECONFIG, "<string>:6: nope: unknown column 'nope'");
  T_ERR(td_open(&ds, NULL, "dataset:\n  files: [sc.csv]\n  label: clicked\n", NULL), AMEIR_ECONFIG,
        "<string>:3: label: unknown column 'clicked'");
  /* unknown keys */
  T_ERR(td_open(&ds, NULL, "dataset:\n  files: [sc.csv]\n  label: y\n  splitt: {method: modulo}\n", NULL),
        AMEIR_ECONFIG, "<string>:4: unknown key 'dataset.splitt.method'");
  T_ERR(td_open(&ds, NULL,
                "dataset:\n  files: [sc.csv]\n  label: y\n  features:\n    - {name: a, min_cnt: 3}\n", NULL),
        AMEIR_ECONFIG, "<string>:5: dataset.features.0.min_cnt: unknown key 'min_cnt'");
  T_ERR(td_open(&ds, NULL, "files: [sc.csv]\nlabel: y\nlabell: x\ntrain: {lr: 1}\n", NULL), AMEIR_ECONFIG,
        "<string>:3: unknown key 'labell'");
  /* bad values */
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y, min_count: 0}\n", NULL), AMEIR_ECONFIG,
        "dataset.min_count: '0' is not an integer");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y, format: parquet}\n", NULL), AMEIR_ECONFIG,
        "dataset.format: 'parquet' is not one of");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y, split: {method: modulo, valid: 0.2}}\n", NULL),
        AMEIR_ECONFIG, "dataset.split: seed/valid/test fractions are for method: random");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y, features: [{name: b, type: numeric, transform: sqrt}]}\n",
                NULL),
        AMEIR_ECONFIG, "'sqrt' is not one of none, log, minmax, bucket");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y, features: [{name: a, multi: true}]}\n", NULL),
        AMEIR_ECONFIG, "needs max_len");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y, features: [a, a]}\n", NULL), AMEIR_ECONFIG,
        "feature 'a' is defined twice");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y, features: [{name: a, share_embedding: zz}]}\n",
                NULL),
        AMEIR_ECONFIG, "share_embedding names no other feature");
  T_ERR(td_open(&ds, NULL, "dataset: {label: y}\n", NULL), AMEIR_ECONFIG, "no data files");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], label: y\n", NULL), AMEIR_ECONFIG, "YAML syntax error");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [sc.csv], format: libfm, features: [{name: a, type: numeric}]}\n",
                NULL),
        AMEIR_ECONFIG, "libfm features are categorical");
  T_ERR(td_open(&ds, NULL,
                "dataset: {files: [sc.csv], format: libfm, features: [{name: a, range: [0, 5]}, "
                "{name: b, range: [5, 9]}]}\n",
                NULL),
        AMEIR_ECONFIG, "overlap");
  /* the file-based API names the file */
  const char *y = td_write("bad.yaml", "dataset:\n  files: [sc.csv]\n  label: y\n  on_bad_row: ignore\n");
  T_ERR(ameir_dataset_open(&ds, NULL, y), AMEIR_ECONFIG, "bad.yaml:4: dataset.on_bad_row: 'ignore'");
  T_ERR(ameir_dataset_open(&ds, NULL, td_path("missing.yaml")), AMEIR_EIO, "missing.yaml");
}

void test_data_errors__unreadable(void) {
  T_ERR(td_open(&ds, NULL, "dataset: {files: [no_such.csv], label: y}\n", NULL), AMEIR_EIO, "no_such.csv: cannot open");
  T_ERR(td_open(&ds, NULL, "dataset: {files: ['.'], label: y}\n", NULL), AMEIR_EIO, "not a regular file");
  /* truncated compressed files */
  char text[20000];
  size_t o = (size_t)snprintf(text, sizeof text, "y,v\n");
  for (int i = 0; i < 1000; i++) o += (size_t)snprintf(text + o, sizeof text - o, "%d,value%d\n", i % 2, i);
  const char *xz = td_write_xz("t.csv.xz", text);
  const char *gz = td_write_gz("t.csv.gz", text);
  T_ASSERT(truncate(xz, 200) == 0);
  T_ASSERT(truncate(gz, 200) == 0);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [t.csv.xz], label: y, cache: false}\n", NULL), AMEIR_EFORMAT,
        "t.csv.xz: truncated xz file");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [t.csv.gz], label: y, cache: false}\n", NULL), AMEIR_EFORMAT,
        "t.csv.gz: truncated gzip file");
  /* corrupt xz payload */
  const char *xz2 = td_write_xz("c.csv.xz", text);
  FILE *f = fopen(xz2, "r+b");
  T_ASSERT(f);
  fseek(f, 100, SEEK_SET);
  fputc('Z', f);
  fputc('Z', f);
  fclose(f);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [c.csv.xz], label: y}\n", NULL), AMEIR_EFORMAT, "c.csv.xz: corrupt xz");
}

void test_data_errors__libfm(void) {
  td_write("a.libfm", "1 1:1 2:1\n0 3:1 4:1\n\n1 5:1\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [a.libfm], format: libfm}\n", NULL), AMEIR_EFORMAT,
        "a.libfm:4: 1 features, expected 2");
  td_write("b.libfm", "1 1:1 2:1\n0 x:1 4:1\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [b.libfm], format: libfm}\n", NULL), AMEIR_EFORMAT,
        "b.libfm:2: feature 1: 'x:1' is not index:value");
  td_write("c.libfm", "1 1:1 12:1\n0 3:1 40:1\n");
  T_ERR(td_open(&ds, NULL,
                "dataset: {files: [c.libfm], format: libfm, features: [{name: a, range: [0, 9]}, "
                "{name: b, range: [10, 19]}]}\n",
                NULL),
        AMEIR_EFORMAT, "c.libfm:2: feature index 40 is in no feature's range");
  td_write("d.libfm", "1 1:1 2:1\n");
  T_ERR(td_open(&ds, NULL,
                "dataset: {files: [d.libfm], format: libfm, features: [{name: a, range: [0, 9]}]}\n", NULL),
        AMEIR_EFORMAT, "d.libfm:1: two indices for the univalent feature 'a'");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [d.libfm], format: libfm, num_fields: 3}\n", NULL), AMEIR_EFORMAT,
        "d.libfm:1: 2 features, the schema has 3");
}

void test_data_errors__csv(void) {
  td_write("h1.csv", "y,a\n1,x\n");
  td_write("h2.csv", "y,b\n1,x\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [h1.csv, h2.csv], label: y}\n", NULL), AMEIR_EFORMAT,
        "h2.csv:1: the header differs");
  td_write("q.csv", "y,a\n1,\"x\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [q.csv], label: y}\n", NULL), AMEIR_EFORMAT,
        "q.csv:2: column 2: unterminated quote");
  td_write("q2.csv", "y,a\n1,\"x\"y\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [q2.csv], label: y}\n", NULL), AMEIR_EFORMAT,
        "q2.csv:2: column 2: text after the closing quote");
  td_write("e.csv", "y,a\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [e.csv], label: y}\n", NULL), AMEIR_EFORMAT, "no data rows");
  td_write("nh.csv", "1,a\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [nh.csv], label: y, header: false}\n", NULL), AMEIR_ECONFIG,
        "needs columns");
  td_write("hc.csv", "y,a,b\n1,a,b\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [hc.csv], label: y, columns: [y, a]}\n", NULL), AMEIR_EFORMAT,
        "hc.csv:1: the header has 3 columns, the schema's columns 2");
}

void test_data_errors__skip_bad_rows(void) {
  /* 12 lines, 2 bad: the 10 good ones are numbered 0..9 for the modulo split */
  char text[16384], line[600];
  text[0] = 0;
  for (int i = 0; i < 12; i++) {
    if (i == 3) criteo_line(line, sizeof line, "0", "5", 38);
    else if (i == 7) criteo_line(line, sizeof line, "0", "x", 40);
    else criteo_line(line, sizeof line, i % 2 ? "1" : "0", "5", 40);
    strcat(text, line);
  }
  td_write("sk.tsv", text);
  ameir_dataset *d = NULL;
  T_OK(td_open(&d, NULL, "dataset: {files: [sk.tsv], format: criteo, on_bad_row: skip, split: modulo}\n", NULL));
  T_ASSERT_EQ_INT(ameir_dataset_skipped_rows(d), 2);
  T_ASSERT_EQ_INT(ameir_dataset_rows(d, -1), 10);
  T_ASSERT_EQ_INT(ameir_dataset_rows(d, AMEIR_SPLIT_TRAIN), 8);
  T_ASSERT_EQ_INT(ameir_dataset_rows(d, AMEIR_SPLIT_VALID), 1);
  T_ASSERT_EQ_INT(ameir_dataset_rows(d, AMEIR_SPLIT_TEST), 1);
  ameir_dataset_free(d);
  /* every row bad */
  td_write("allbad.tsv", "1\t2\n3\t4\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [allbad.tsv], format: criteo, on_bad_row: skip}\n", NULL),
        AMEIR_EFORMAT, "no data rows (2 skipped)");
}
