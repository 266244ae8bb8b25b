/* The real data files (shared/data) through the example configs: row counts, split sizes and
 * vocabularies as torch_ref.py computes them on the same split, and the cache speed-up. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "test.h"

#define NEED_DATA() \
  do { if (!td_data_dir()) T_SKIP("no shared data directory"); } while (0)

static int64_t vocab_rows(const ameir_dataset *ds) {
  /* embedding rows as torch_ref counts them: one padding row + every field's vocabulary */
  int64_t n = 1;
  for (int32_t i = 0; i < ameir_dataset_fields(ds); i++) n += ameir_dataset_field_vocab(ds, i);
  return n;
}

/* The checksum tests/data's Python cross-check computes over torch_ref's ids (file order). */
static uint64_t id_checksum(const ameir_dataset *ds) {
  uint64_t h = 0;
  for (int32_t f = 0; f < ds->n_fields; f++)
    if (ds->fields[f].ids)
      for (int64_t r = 0; r < ds->n_rows; r++) h = h * 1000003ull + (uint64_t)(ds->fields[f].ids[r] + 7);
  return h;
}

static void check_splits_ascending(const ameir_dataset *ds) {
  for (int k = 0; k < 3; k++)
    for (int64_t i = 1; i < ds->split_n[k]; i++) T_ASSERT(ds->split_rows[k][i] > ds->split_rows[k][i - 1]);
}

void test_data_real__criteo(void) {
  NEED_DATA();
  ameir_dataset *ds = NULL;
  T_OK(td_open_example(&ds, NULL, "criteo", 0));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 8000);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TRAIN), 6400);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_VALID), 800);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 800);
  T_ASSERT_EQ_INT(ameir_dataset_skipped_rows(ds), 0);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 39);
  /* torch_ref --min-count 2: field_vocab of C1..C26, 9,115 embedding rows */
  static const int64_t cv[26] = {74,  269, 464, 580, 33,  9,   1076, 43,  4,   733, 934, 477, 851,
                                 23,  789, 532, 10,  547, 187, 5,    503, 8,   13,  522, 35,  393};
  for (int i = 0; i < 13; i++) T_ASSERT_EQ_INT(ameir_dataset_field_kind(ds, i), AMEIR_FIELD_DENSE);
  for (int i = 0; i < 26; i++) T_ASSERT_EQ_INT(ameir_dataset_field_vocab(ds, 13 + i), cv[i]);
  T_ASSERT_EQ_INT(vocab_rows(ds), 9115);
  /* the ids themselves equal torch_ref's (numpy unique/searchsorted over the 8-byte values) */
  T_ASSERT(id_checksum(ds) == 13335354858970652766ull);
  /* first line: 0 1 1 5 0 1382 4 15 2 181 1 2 <empty> 2 68fd1e64 ... */
  T_ASSERT_NEAR(ds->label[0], 0, 0);
  T_ASSERT_NEAR(ds->fields[0].values[0], (float)log1p(1.0), 0);
  T_ASSERT_NEAR(ds->fields[4].values[0], (float)log1p(1382.0), 0);
  T_ASSERT_NEAR(ds->fields[11].values[0], 0, 0);
  T_ASSERT_EQ_INT(ds->fields[13].keys[ds->fields[13].ids[0]], 0x3638666431653634ull);
  double pos = 0;
  for (int64_t i = 0; i < ds->n_rows; i++) pos += ds->label[i];
  T_ASSERT(pos > 0.2 * 8000 && pos < 0.3 * 8000);
  check_splits_ascending(ds);
  T_ASSERT_EQ_INT(ds->split_rows[AMEIR_SPLIT_TEST][0], 9);
  ameir_dataset_free(ds);
}

void test_data_real__frappe(void) {
  NEED_DATA();
  ameir_dataset *ds = NULL;
  T_OK(td_open_example(&ds, NULL, "frappe", 0));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 68655);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TRAIN), 54925);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_VALID), 6865);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 6865);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 10);
  /* REFERENCE.md: "--min-count 10 leaves 3,002 of the 5,382 feature ids": 3,002 embedding rows =
   * padding row + 10 fields x (kept values + 1 OOV) = 1 + 2,991 + 10 */
  static const int64_t fv[10] = {435, 2324, 8, 8, 3, 4, 3, 9, 63, 144};
  int64_t sum = 0;
  for (int i = 0; i < 10; i++) {
    T_ASSERT_EQ_INT(ameir_dataset_field_vocab(ds, i), fv[i]);
    sum += fv[i];
  }
  T_ASSERT_EQ_INT(sum, 3001);
  T_ASSERT_EQ_INT(vocab_rows(ds), 3002);
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 0), "user"));
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 9), "city"));
  T_ASSERT(id_checksum(ds) == 7764610600348900290ull);
  /* first line of the test file starts the second file: -1 204:1 4798:1 ... */
  T_ASSERT_NEAR(ds->label[45759], 0, 0);
  T_ASSERT_EQ_INT(ds->fields[0].keys[ds->fields[0].ids[45759]], 204);
  double pos = 0;
  for (int64_t i = 0; i < ds->n_rows; i++) pos += ds->label[i];
  T_ASSERT(fabs(pos / 68655 - 1.0 / 3) < 0.01);
  check_splits_ascending(ds);
  ameir_dataset_free(ds);
}

void test_data_real__avazu_ipinyou_talkingdata(void) {
  NEED_DATA();
  ameir_dataset *ds = NULL;
  T_OK(td_open_example(&ds, NULL, "avazu", 0));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 8000);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 800);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 22);
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 0), "hour"));
  T_ASSERT_EQ_INT(vocab_rows(ds), 527);
  T_ASSERT(id_checksum(ds) == 18030641634726684454ull);
  ameir_dataset_free(ds);

  T_OK(td_open_example(&ds, NULL, "ipinyou", 0));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 21261 + 18746);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 18746);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_VALID), 2126);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 16);
  T_ASSERT_EQ_INT(vocab_rows(ds), 464);
  T_ASSERT_EQ_INT(ds->split_rows[AMEIR_SPLIT_TEST][0], 21261);
  ameir_dataset_free(ds);

  T_OK(td_open_example(&ds, NULL, "talkingdata", 0));
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, -1), 80138);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 5);
  T_ASSERT(!strcmp(ameir_dataset_field_name(ds, 4), "channel"));
  T_ASSERT_EQ_INT(vocab_rows(ds), 911);
  double pos = 0;
  for (int64_t i = 0; i < ds->n_rows; i++) pos += ds->label[i];
  T_ASSERT_EQ_INT((int64_t)pos, 187);
  ameir_dataset_free(ds);
}

/* First open (parse + encode + cache write) vs later opens (mmap); the best of a few. */
static void speedup(const char *name, double *parse_s, double *load_s) {
  ameir_dataset *ds = NULL;
  T_OK(td_open_example(&ds, NULL, name, 1));
  int32_t fc = 1;
  *parse_s = ameir_dataset_load_seconds(ds, &fc);
  T_ASSERT(fc == 0);
  ameir_dataset_free(ds);
  *load_s = 1e9;
  for (int i = 0; i < 5; i++) {
    T_OK(td_open_example(&ds, NULL, name, 1));
    double t = ameir_dataset_load_seconds(ds, &fc);
    T_ASSERT(fc == 1);
    if (t < *load_s) *load_s = t;
    ameir_dataset_free(ds);
  }
  if (getenv("AMEIR_TEST_VERBOSE"))
    fprintf(stderr, "  %s: parse %.2f ms, cache load %.2f ms (%.0fx)\n", name, *parse_s * 1e3, *load_s * 1e3,
            *parse_s / *load_s);
}

void test_data_real__cache_speedup(void) {
  NEED_DATA();
  double p, l;
  speedup("criteo", &p, &l);
  T_ASSERT_MSG(p >= 10 * l, "criteo: parse %.4f s, cache %.4f s", p, l);
  speedup("frappe", &p, &l);
  T_ASSERT_MSG(p >= 10 * l, "frappe: parse %.4f s, cache %.4f s", p, l);
}
