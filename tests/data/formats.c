/* Loaders on small files written by the tests: CSV/TSV with and without header, quoting,
 * multi-valued and sequence fields, shared vocabularies, libFM (positional and index ranges),
 * plain/gzip/xz, several files, dense transforms, hashing, splits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "test.h"
#include "core/base/base.h"
#include "core/data/internal.h"

static int32_t field_index(const ameir_dataset *ds, const char *name) {
  for (int32_t i = 0; i < ameir_dataset_fields(ds); i++)
    if (!strcmp(ameir_dataset_field_name(ds, i), name)) return i;
  t__fail(__FILE__, __LINE__, "no field %s", name);
  return -1;
}

static const ameir__field *F(const ameir_dataset *ds, const char *name) {
  return &ds->fields[field_index(ds, name)];
}

void test_data_formats__csv_header(void) {
  td_write("a.csv",
           "label,a,b,x\n"
           "1,foo,3.5,z\n"
           "0,bar,,z\n"
           "1,foo,2e1,y\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL,
               "dataset:\n"
               "  files: [a.csv]\n"
               "  format: csv\n"
               "  label: label\n"
               "  features:\n"
               "    - {name: a}\n"
               "    - {name: b, type: numeric, fill_na: -1}\n"
               "  split: none\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 3);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TRAIN), 3);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 2);
  T_ASSERT_EQ_INT(ameir_dataset_field_kind(ds, 0), AMEIR_FIELD_CATEGORICAL);
  T_ASSERT_EQ_INT(ameir_dataset_field_kind(ds, 1), AMEIR_FIELD_DENSE);
  T_ASSERT_EQ_INT(ameir_dataset_field_vocab(ds, 0), 3);  /* OOV, bar, foo */
  T_ASSERT_EQ_INT(ameir_dataset_field_vocab(ds, 1), 0);
  T_ASSERT(ameir_dataset_field_name(ds, 2) == NULL);
  T_ASSERT_EQ_INT(ameir_dataset_field_kind(ds, 2), -1);
  const ameir__field *a = F(ds, "a"), *b = F(ds, "b");
  T_ASSERT_EQ_INT(a->ids[0], 2);
  T_ASSERT_EQ_INT(a->ids[1], 1);
  T_ASSERT_EQ_INT(a->ids[2], 2);
  T_ASSERT(a->keys[1] < a->keys[2]);  /* sorted by key: "bar" < "foo" */
  T_ASSERT_NEAR(b->values[0], 3.5, 0);
  T_ASSERT_NEAR(b->values[1], -1, 0);
  T_ASSERT_NEAR(b->values[2], 20, 0);
  T_ASSERT_NEAR(ds->label[0], 1, 0);
  T_ASSERT_NEAR(ds->label[1], 0, 0);
  T_ASSERT(!strcmp(ds->name, "a"));
  ameir_dataset_free(ds);
}

void test_data_formats__tsv_multi_sequence_share(void) {
  td_write("s.tsv",
           "1\tu1\ta|b|c\ti1^i2^i3^i4\ti2\n"
           "0\tu2\t\ti9\ti1\n"
           "1\tu1\tc\t\ti2\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL,
               "dataset:\n"
               "  files: s.tsv\n"
               "  format: tsv\n"
               "  header: false\n"
               "  columns: [y, user, tags, hist, item]\n"
               "  label: y\n"
               "  features:\n"
               "    - user\n"
               "    - {name: tags, type: categorical, multi: true, separator: '|', max_len: 2}\n"
               "    - {name: item}\n"
               "    - {name: hist, type: sequence, splitter: '^', max_len: 3, share_embedding: item}\n"
               "  split: {method: none}\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 3);
  const ameir__field *tags = F(ds, "tags"), *hist = F(ds, "hist"), *item = F(ds, "item");
  T_ASSERT_EQ_INT(tags->kind, AMEIR_FIELD_MULTI);
  T_ASSERT_EQ_INT(hist->kind, AMEIR_FIELD_SEQUENCE);
  T_ASSERT_EQ_INT(tags->max_len, 2);
  T_ASSERT_EQ_INT(tags->vocab, 4);            /* OOV, a, b, c */
  /* multi keeps the first max_len values */
  T_ASSERT_EQ_INT(tags->ids[0], 1);
  T_ASSERT_EQ_INT(tags->ids[1], 2);
  T_ASSERT_EQ_INT(tags->ids[2], -1);          /* empty -> padding only */
  T_ASSERT_EQ_INT(tags->ids[3], -1);
  T_ASSERT_EQ_INT(tags->ids[4], 3);
  T_ASSERT_EQ_INT(tags->ids[5], -1);
  /* the sequence uses item's vocabulary (i1, i2; counted from item only) and keeps the last 3 */
  T_ASSERT_EQ_INT(item->vocab, 3);
  T_ASSERT_EQ_INT(hist->vocab, 3);
  T_ASSERT(!strcmp(hist->share, "item"));
  T_ASSERT(hist->keys[1] == item->keys[1] && hist->keys[2] == item->keys[2]);
  T_ASSERT_EQ_INT(hist->ids[0], 2);           /* i2 */
  T_ASSERT_EQ_INT(hist->ids[1], 0);           /* i3: not an item value -> OOV */
  T_ASSERT_EQ_INT(hist->ids[2], 0);           /* i4 */
  T_ASSERT_EQ_INT(hist->ids[3], 0);           /* i9 */
  T_ASSERT_EQ_INT(hist->ids[4], -1);
  T_ASSERT_EQ_INT(hist->ids[6], -1);          /* empty sequence */
  T_ASSERT_EQ_INT(item->ids[0], 2);
  T_ASSERT_EQ_INT(item->ids[1], 1);
  ameir_dataset_free(ds);
}

void test_data_formats__csv_quotes(void) {
  td_write("q.csv",
           "y,name,n\n"
           "1,\"a,b\",1\n"
           "0,\"say \"\"hi\"\"\",2\n"
           "1,a,3\n"
           "0,\"a,b\",\"4\"\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [q.csv], label: y, split: none, features: [name, {name: n, type: numeric}]}\n",
               NULL));
  const ameir__field *nm = F(ds, "name"), *n = F(ds, "n");
  T_ASSERT_EQ_INT(nm->vocab, 4);
  T_ASSERT_EQ_INT(nm->ids[0], nm->ids[3]);
  T_ASSERT(nm->ids[0] != nm->ids[2]);
  T_ASSERT_EQ_INT(nm->keys[nm->ids[2]], ameir__str_key("a", 1));
  T_ASSERT_EQ_INT(nm->keys[nm->ids[0]], ameir__str_key("a,b", 3));
  T_ASSERT(nm->keys[nm->ids[1]] == ameir__str_key("say \"hi\"", 8));
  T_ASSERT_NEAR(n->values[3], 4, 0);
  ameir_dataset_free(ds);
}

void test_data_formats__libfm_positional(void) {
  td_write("p.libfm",
           "-1 3:1 10:1\n"
           "\n"
           "1 4:1 11:0.5\n"
           "1  3:1\t10:1  \n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [p.libfm], format: libfm, label: {values: '-1/1'}, split: none}\n", NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 3);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 2);
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 0), "f0"));
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 1), "f1"));
  const ameir__field *f0 = &ds->fields[0];
  T_ASSERT_EQ_INT(f0->vocab, 3);
  T_ASSERT_EQ_INT(f0->keys[1], 3);   /* libfm values are the indices, sorted numerically */
  T_ASSERT_EQ_INT(f0->keys[2], 4);
  T_ASSERT_EQ_INT(f0->ids[0], 1);
  T_ASSERT_EQ_INT(f0->ids[1], 2);
  T_ASSERT_NEAR(ds->label[0], 0, 0);
  T_ASSERT_NEAR(ds->label[1], 1, 0);
  ameir_dataset_free(ds);
  /* default label mode: > 0 is 1 (0/1 and -1/1 both work) */
  td_write("p01.libfm", "0 1:1\n1 2:1\n");
  T_OK(td_open(&ds, NULL, "dataset: {files: [p01.libfm], format: libfm, split: none, "
                          "features: [only]}\n", NULL));
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 0), "only"));
  T_ASSERT_NEAR(ds->label[1], 1, 0);
  ameir_dataset_free(ds);
}

void test_data_formats__libfm_ranges(void) {
  td_write("r.libfm",
           "1 3:1 12:1 11:1 25:1\n"
           "0 4:1 20:1\n"
           "1 15:1 3:1 13:1 14:1 16:1\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL,
               "dataset:\n"
               "  files: [r.libfm]\n"
               "  format: libfm\n"
               "  features:\n"
               "    - {name: u, range: [0, 9]}\n"
               "    - {name: ctx, range: [20, 29]}\n"
               "    - {name: tags, range: [10, 19], multi: true, max_len: 3}\n"
               "  split: none\n",
               NULL));
  const ameir__field *u = F(ds, "u"), *ctx = F(ds, "ctx"), *tags = F(ds, "tags");
  T_ASSERT_EQ_INT(u->column, -1);
  T_ASSERT_EQ_INT(u->vocab, 3);
  T_ASSERT_EQ_INT(tags->vocab, 6);  /* 11..15: 16 is cut by max_len before it is counted */
  T_ASSERT_EQ_INT(tags->ids[0], 2);                    /* 12 */
  T_ASSERT_EQ_INT(tags->ids[1], 1);                    /* 11 */
  T_ASSERT_EQ_INT(tags->ids[2], -1);
  T_ASSERT_EQ_INT(tags->ids[3], -1);                   /* row 1: none */
  T_ASSERT_EQ_INT(tags->ids[6], 5);                    /* 15, 13, 14 (first 3 kept) */
  T_ASSERT_EQ_INT(tags->ids[7], 3);
  T_ASSERT_EQ_INT(tags->ids[8], 4);
  /* ctx is absent in row 2: "absent" is a value of its own (sorted last) */
  T_ASSERT_EQ_INT(ctx->vocab, 4);
  T_ASSERT_EQ_INT(ctx->ids[0], 2);
  T_ASSERT_EQ_INT(ctx->ids[1], 1);
  T_ASSERT_EQ_INT(ctx->ids[2], 3);
  ameir_dataset_free(ds);
}

void test_data_formats__compressed_and_concatenated(void) {
  td_write("c1.csv", "y,v\n1,a\n0,b\n");
  td_write_gz("c2.csv.gz", "y,v\n1,c\n0,a\n1,a\n");
  td_write_xz("c3.csv.xz", "y,v\n0,d\n");
  /* a compressed file is recognised by its bytes, not its name */
  td_write_gz("c4.csv", "y,v\n1,e\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [c1.csv, c2.csv.gz, c3.csv.xz, c4.csv], label: y, split: none}\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 7);
  const ameir__field *v = F(ds, "v");
  const char *expect = "abcaade";
  for (int i = 0; i < 7; i++) T_ASSERT_EQ_INT(v->keys[v->ids[i]], ameir__str_key(expect + i, 1));
  T_ASSERT_NEAR(ds->label[2], 1, 0);
  T_ASSERT_NEAR(ds->label[5], 0, 0);
  ameir_dataset_free(ds);
  /* gzip members one after another and a big xz file that spans several reads */
  char *big = malloc(3u << 20);
  T_ASSERT(big);
  size_t o = (size_t)sprintf(big, "y,v\n");
  for (int i = 0; i < 200000; i++) o += (size_t)sprintf(big + o, "%d,v%d\n", i % 2, i % 1000);
  td_write_xz("big.csv.xz", big);
  free(big);
  T_OK(td_open(&ds, NULL, "dataset: {files: [big.csv.xz], label: y, split: modulo}\n", NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 200000);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 20000);
  T_ASSERT_EQ_INT(ds->fields[0].vocab, 801);  /* i % 1000 with i % 10 < 8 in train rows */
  ameir_dataset_free(ds);
}

void test_data_formats__dense_transforms(void) {
  /* 10 rows, modulo: rows 8 (valid) and 9 (test) are not train rows */
  td_write("d.csv",
           "y,x\n"
           "1,0\n0,1\n1,2\n0,3\n1,10\n0,-4\n1,\n0,100\n1,1000\n0,-50\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL,
               "dataset:\n"
               "  files: [d.csv]\n"
               "  label: y\n"
               "  features:\n"
               "    - {name: lg, column: x, type: numeric, transform: log}\n"
               "    - {name: mm, column: x, type: numeric, transform: minmax, fill_na: 5}\n"
               "    - {name: bk, column: x, type: numeric, transform: bucket}\n"
               "    - {name: raw, column: x, type: numeric}\n"
               "  split: modulo\n",
               NULL));
  const ameir__field *lg = F(ds, "lg"), *mm = F(ds, "mm"), *bk = F(ds, "bk"), *raw = F(ds, "raw");
  T_ASSERT_NEAR(lg->values[0], 0, 0);
  T_ASSERT_NEAR(lg->values[2], (float)log1p(2.0), 0);
  T_ASSERT_NEAR(lg->values[5], 0, 0);                  /* negative -> 0 */
  T_ASSERT_NEAR(lg->values[6], 0, 0);                  /* missing -> 0 */
  T_ASSERT_NEAR(lg->values[8], (float)log1p(1000.0), 0);
  /* minmax over the train rows 0..7: min -4, max 100 (missing filled with 5 first) */
  T_ASSERT_NEAR(mm->t_min, -4, 0);
  T_ASSERT_NEAR(mm->t_max, 100, 0);
  T_ASSERT_NEAR(mm->values[0], 4.0 / 104, 1e-6);
  T_ASSERT_NEAR(mm->values[6], 9.0 / 104, 1e-6);
  T_ASSERT_NEAR(mm->values[8], 1, 0);                  /* clipped */
  T_ASSERT_NEAR(mm->values[9], 0, 0);
  T_ASSERT_EQ_INT(mm->transform, AMEIR_DENSE_MINMAX);
  /* bucket -> categorical: codes trunc(x) + 16 for x <= 2, floor(ln(x)^2) + 16 above, 0 missing */
  T_ASSERT_EQ_INT(bk->kind, AMEIR_FIELD_CATEGORICAL);
  T_ASSERT_EQ_INT(bk->transform, AMEIR_DENSE_BUCKET);
  T_ASSERT_EQ_INT(ameir_dataset_field_kind(ds, field_index(ds, "bk")), AMEIR_FIELD_CATEGORICAL);
  T_ASSERT_EQ_INT(bk->keys[bk->ids[0]], 16);
  T_ASSERT_EQ_INT(bk->keys[bk->ids[3]], 16 + 1);       /* ln(3)^2 = 1.2 */
  T_ASSERT_EQ_INT(bk->keys[bk->ids[4]], 16 + 5);       /* ln(10)^2 = 5.3 */
  T_ASSERT_EQ_INT(bk->keys[bk->ids[5]], 16 - 4);
  T_ASSERT_EQ_INT(bk->keys[bk->ids[6]], 0);            /* missing */
  T_ASSERT_EQ_INT(bk->keys[bk->ids[7]], 16 + 21);      /* ln(100)^2 = 21.2 */
  T_ASSERT_EQ_INT(bk->ids[8], 0);                      /* 1000 only in a valid row -> OOV */
  T_ASSERT_EQ_INT(bk->ids[9], 0);
  T_ASSERT_NEAR(raw->values[6], 0, 0);
  T_ASSERT_NEAR(raw->values[5], -4, 0);
  ameir_dataset_free(ds);
}

void test_data_formats__min_count_and_hashing(void) {
  td_write("m.csv",
           "y,v,h\n"
           "1,a,x\n0,a,y\n1,b,x\n0,c,z\n1,a,x\n0,b,y\n1,d,x\n0,b,x\n1,e,q\n0,a,x\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL,
               "dataset:\n"
               "  files: [m.csv]\n"
               "  label: y\n"
               "  features: [{name: v, min_count: 2}, {name: h, hash_buckets: 5}]\n"
               "  split: modulo\n",
               NULL));
  const ameir__field *v = F(ds, "v"), *h = F(ds, "h");
  /* train rows 0..7: a x3, b x3, c x1, d x1 -> a, b kept */
  T_ASSERT_EQ_INT(v->vocab, 3);
  T_ASSERT_EQ_INT(v->ids[0], 1);
  T_ASSERT_EQ_INT(v->ids[2], 2);
  T_ASSERT_EQ_INT(v->ids[3], 0);   /* rare */
  T_ASSERT_EQ_INT(v->ids[8], 0);   /* e: only in a valid row */
  T_ASSERT_EQ_INT(v->ids[9], 1);
  T_ASSERT_EQ_INT(h->vocab, 6);
  T_ASSERT(h->keys == NULL);
  for (int i = 0; i < 10; i++) T_ASSERT(h->ids[i] >= 1 && h->ids[i] <= 5);
  T_ASSERT_EQ_INT(h->ids[0], h->ids[2]);
  T_ASSERT_EQ_INT(h->ids[0], (int)(1 + ameir__mix64(ameir__str_key("x", 1)) % 5));
  ameir_dataset_free(ds);
}

static void write_rows(const char *name, int n, int offset) {
  char buf[8192];
  size_t o = (size_t)snprintf(buf, sizeof buf, "y,v,fold\n");
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%d,v%d,%s\n", (i + offset) % 2, (i + offset) % 7,
                          (i % 3 == 0) ? "f0" : (i % 3 == 1) ? "f1" : "f2");
  td_write(name, buf);
}

void test_data_formats__splits(void) {
  write_rows("t1.csv", 25, 0);
  write_rows("t2.csv", 12, 100);
  ameir_dataset *ds = NULL;
  /* modulo over the concatenation: 37 rows, tests 9,19,29 valid 8,18,28 */
  T_OK(td_open(&ds, NULL, "dataset: {files: [t1.csv, t2.csv], label: y, split: modulo}\n", NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 0), 31);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 1), 3);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 2), 3);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 3), -1);
  T_ASSERT_EQ_INT(ds->split_rows[2][2], 29);
  T_ASSERT_EQ_INT(ds->split_rows[1][0], 8);
  T_ASSERT_EQ_INT(ds->split_rows[0][8], 10);
  ameir_dataset_free(ds);
  /* file: the test file, and i % 10 == 9 of the others for validation (torch_ref --split lastfile) */
  T_OK(td_open(&ds, NULL, "dataset: {files: [t1.csv], label: y, split: {method: file, test_files: [t2.csv]}}\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 0), 23);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 1), 2);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 2), 12);
  T_ASSERT_EQ_INT(ds->split_rows[2][0], 25);
  ameir_dataset_free(ds);
  /* FuxiCTR's train_data / valid_data / test_data */
  T_OK(td_open(&ds, NULL, "dataset: {train_data: t1.csv, valid_data: t2.csv, test_data: t2.csv, label: y}\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 0), 25);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 1), 12);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 2), 12);
  ameir_dataset_free(ds);
  /* column */
  T_OK(td_open(&ds, NULL,
               "dataset: {files: [t1.csv], label: y,\n"
               "          split: {method: column, column: fold, valid_values: f1, test_values: [f2]}}\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 0), 9);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 1), 8);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, 2), 8);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 1);  /* the split column is not a feature */
  ameir_dataset_free(ds);
  /* random: the seed from the context unless split.seed; same seed -> same split */
  char buf[200000];
  size_t o = (size_t)snprintf(buf, sizeof buf, "y,v\n");
  for (int i = 0; i < 10000; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "%d,%d\n", i % 2, i % 13);
  td_write("rnd.csv", buf);
  struct ameir_context c1, c2;
  memset(&c1, 0, sizeof c1);
  memset(&c2, 0, sizeof c2);
  c1.seed = 1;
  c2.seed = 2;
  ameir_dataset *a = NULL, *b = NULL, *d = NULL;
  T_OK(td_open(&a, &c1, "dataset: {files: [rnd.csv], label: y}\n", NULL));
  T_OK(td_open(&b, &c1, "dataset: {files: [rnd.csv], label: y, split: {method: random, seed: 1}}\n", NULL));
  T_OK(td_open(&d, &c2, "dataset: {files: [rnd.csv], label: y, split: {method: random}}\n", NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(a, 0) + ameir_dataset_rows(a, 1) + ameir_dataset_rows(a, 2), 10000);
  T_ASSERT(ameir_dataset_rows(a, 2) > 900 && ameir_dataset_rows(a, 2) < 1100);  /* test 10 % */
  T_ASSERT(ameir_dataset_rows(a, 1) > 800 && ameir_dataset_rows(a, 1) < 1000);  /* valid 9 % */
  T_ASSERT_EQ_INT(ameir_dataset_rows(a, 2), ameir_dataset_rows(b, 2));
  T_ASSERT(memcmp(a->split_rows[2], b->split_rows[2], (size_t)a->split_n[2] * 8) == 0);
  T_ASSERT(ameir_dataset_rows(d, 2) != ameir_dataset_rows(a, 2) ||
           memcmp(a->split_rows[2], d->split_rows[2], (size_t)a->split_n[2] * 8) != 0);
  for (int k = 0; k < 3; k++)
    for (int64_t i = 1; i < a->split_n[k]; i++) T_ASSERT(a->split_rows[k][i] > a->split_rows[k][i - 1]);
  ameir_dataset_free(a);
  ameir_dataset_free(b);
  ameir_dataset_free(d);
  T_OK(td_open(&a, NULL, "dataset: {files: [rnd.csv], label: y, split: {method: random, valid: 0.2, test: 0}}\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(a, 2), 0);
  T_ASSERT(ameir_dataset_rows(a, 1) > 1850 && ameir_dataset_rows(a, 1) < 2150);
  ameir_dataset_free(a);
}

void test_data_formats__presets(void) {
  /* Criteo: negative ints, empty values (also trailing ones), 8-hex categoricals */
  td_write("c.tsv",
           "0\t1\t-1\t\t5\t0\t1\t2\t3\t4\t5\t6\t\t7\t68fd1e64\t80e26c9b\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n"
           "1\t\t-2\t3\t\t\t\t\t\t\t\t\t\t\t68fd1e64\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\ta\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [c.tsv], format: criteo, split: none}\n", NULL));
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 39);
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 0), "I1"));
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 13), "C1"));
  T_ASSERT_EQ_INT(ameir_dataset_field_kind(ds, 12), AMEIR_FIELD_DENSE);
  const ameir__field *i2 = F(ds, "I2"), *c1 = F(ds, "C1"), *c2 = F(ds, "C2"), *c26 = F(ds, "C26");
  T_ASSERT_NEAR(i2->values[0], 0, 0);        /* log(1 + max(-1, 0)) */
  T_ASSERT_NEAR(F(ds, "I1")->values[0], (float)log1p(1.0), 0);
  T_ASSERT_EQ_INT(c1->vocab, 2);
  T_ASSERT_EQ_INT(c1->keys[1], 0x3638666431653634ull);   /* "68fd1e64" as big-endian bytes */
  T_ASSERT_EQ_INT(c2->vocab, 3);                         /* "" (key 0) and 80e26c9b */
  T_ASSERT_EQ_INT(c2->keys[1], 0);
  T_ASSERT_EQ_INT(c2->ids[1], 1);
  T_ASSERT_EQ_INT(c26->ids[0], 1);                       /* "" */
  T_ASSERT_EQ_INT(c26->ids[1], 2);                       /* "a" */
  ameir_dataset_free(ds);
  /* Avazu: id does not fit an int64 and is dropped; hour is a string value */
  td_write("av.csv",
           "id,click,hour,C1\n"
           "10000169349117863715,0,14102100,1005\n"
           "1000009418151094273,1,14102100,1002\n");
  T_OK(td_open(&ds, NULL, "dataset: {files: [av.csv], format: avazu, split: none}\n", NULL));
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 2);
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 0), "hour"));
  T_ASSERT_EQ_INT(F(ds, "hour")->vocab, 2);
  T_ASSERT_NEAR(ds->label[1], 1, 0);
  ameir_dataset_free(ds);
  /* ... unless asked for, as a string */
  T_OK(td_open(&ds, NULL, "dataset: {files: [av.csv], format: avazu, split: none, features: [id, C1]}\n", NULL));
  T_ASSERT_EQ_INT(F(ds, "id")->vocab, 3);
  ameir_dataset_free(ds);
}

void test_data_formats__fuxictr_vocabulary(void) {
  td_write("fx.csv", "clk,a,b,c,d\n1,x,y,1.5,q\n0,x,z,2.5,q\n");
  const char *yaml =
      "# FuxiCTR-style names, no dataset: section, other sections ignored\n"
      "train: {epochs: 1}\n"
      "train_data: fx.csv\n"
      "label_col: {name: clk, dtype: float}\n"
      "min_categr_count: 1\n"
      "feature_cols:\n"
      "  - {name: [a, b], active: true, dtype: str, type: categorical}\n"
      "  - {name: c, active: true, dtype: float, type: numeric, normalizer: minmax}\n"
      "  - {name: d, active: false, dtype: str, type: categorical}\n"
      "split: none\n";
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, yaml, NULL));
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 3);
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 1), "b"));
  T_ASSERT_EQ_INT(ameir_dataset_field_kind(ds, 2), AMEIR_FIELD_DENSE);
  T_ASSERT_NEAR(F(ds, "c")->values[1], 1, 0);
  ameir_dataset_free(ds);
}

void test_data_formats__overrides(void) {
  write_rows("o.csv", 20, 0);
  ameir_dataset *ds = NULL;
  const char *ov[] = {"split.method=modulo", "dataset.features=[v]", NULL};
  T_OK(td_open(&ds, NULL, "dataset: {files: [o.csv], label: y, split: none}\n", ov));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 2);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 1);
  ameir_dataset_free(ds);
}

void test_data_formats__bom_crlf_no_final_newline(void) {
  td_write("w.csv", "\xef\xbb\xbfy,v,n\r\n1,a,1.5\r\n0,b,2\r\n1,a,-3");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [w.csv], label: y, split: none, features: [v, {name: n, type: numeric}]}\n",
               NULL));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 3);
  T_ASSERT_EQ_INT(F(ds, "v")->vocab, 3);
  T_ASSERT_NEAR(F(ds, "n")->values[1], 2, 0);
  T_ASSERT_NEAR(F(ds, "n")->values[2], -3, 0);
  ameir_dataset_free(ds);
}

void test_data_formats__numbers(void) {
  static const struct { const char *s; int r; double v; } cases[] = {
      {"0", 0, 0},          {"-12", 0, -12},        {"+7", 0, 7},          {"260.0", 0, 260},
      {"1e3", 0, 1000},     {"-2.5E-2", 0, -0.025}, {".5", 0, 0.5},        {"5.", 0, 5},
      {" 42 ", 0, 42},      {"", 1, 0},             {"NaN", 1, 0},         {"NA", 1, 0},
      {"null", 1, 0},       {"abc", -1, 0},         {"1e", -1, 0},         {"--1", -1, 0},
      {"inf", -1, 0},       {"1e400", -1, 0},       {"0x10", -1, 0},       {"1.2.3", -1, 0},
      {"12345678901234567890123", 0, 1.2345678901234568e22}, {"1e-400", 0, 0}, {".", -1, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    double v = -999;
    int r = ameir__parse_number(cases[i].s, strlen(cases[i].s), &v);
    T_ASSERT_MSG(r == cases[i].r, "'%s': %d, expected %d", cases[i].s, r, cases[i].r);
    if (r == 0) T_ASSERT_MSG(v == cases[i].v || fabs(v - cases[i].v) <= 1e-15 * fabs(cases[i].v),
                             "'%s': %.17g", cases[i].s, v);
  }
}
