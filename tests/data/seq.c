/* Behaviour data: the retrieval formats (userseq, useritem, session: torch_ref's leave-one-out
 * protocol), ml100k / mlsmall and dmr (CTR with behaviours), their bad input, the cache of a
 * retrieval dataset, open_like, and the real files through the example configs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "test.h"
#include "core/base/base.h"
#include "core/data/internal.h"

#define T_ERR(call, code, text)                                                              \
  do {                                                                                       \
    ameir_status st_ = (call);                                                               \
    T_ASSERT_MSG(st_ == (code), "%s -> %d, expected %d (%s)", #call, (int)st_, (int)(code),   \
                 td_err(NULL));                                                              \
    T_ASSERT_MSG(strstr(td_err(NULL), (text)), "message '%s' lacks '%s'", td_err(NULL), (text)); \
  } while (0)

#define NEED_DATA() \
  do { if (!td_data_dir()) T_SKIP("no shared data directory"); } while (0)

static void ids_eq(const int32_t *got, const int32_t *want, int n, int line) {
  for (int i = 0; i < n; i++)
    if (got[i] != want[i]) t__fail(__FILE__, line, "id %d: %d != %d", i, (int)got[i], (int)want[i]);
}
#define IDS(got, ...)                                                       \
  do {                                                                      \
    const int32_t want_[] = {__VA_ARGS__};                                  \
    ids_eq((got), want_, (int)(sizeof want_ / sizeof *want_), __LINE__);    \
  } while (0)

static void rows_eq(const ameir_dataset *ds, int k, const int64_t *want, int64_t n) {
  T_ASSERT_EQ_INT(ds->split_n[k], n);
  for (int64_t i = 0; i < n; i++) T_ASSERT_EQ_INT(ds->split_rows[k][i], want[i]);
}

/* Every row's history is the last T items before its target, its target the item at row_pos. */
static void check_rows(const ameir_dataset *ds) {
  const ameir__field *H = &ds->fields[0], *I = &ds->fields[ds->target_field];
  int64_t T = H->max_len;
  for (int64_t r = 0; r < ds->n_rows; r++) {
    int64_t u = ds->row_user[r], a = ds->user_off[u], t = ds->row_pos[r];
    T_ASSERT(t >= 1 && a + t < ds->user_off[u + 1]);
    T_ASSERT_EQ_INT(I->ids[r], ds->items[a + t]);
    int64_t from = t > T ? t - T : 0;
    for (int64_t j = 0; j < T; j++)
      T_ASSERT_EQ_INT(H->ids[r * T + j], from + j < t ? ds->items[a + from + j] : -1);
  }
}

/* users u1 (5 items), u2 (2), u3 (none: skipped), u4 (1), u5 (7) */
static const char *USERSEQ = "u1 5 3 8 1 9\nu2 4 2\nu3\n\nu4 7\nu5 1 2 3 4 5 6 7\n";

static void check_small(const ameir_dataset *ds) {
  T_ASSERT_EQ_INT(ds->task, AMEIR_TASK_RETRIEVAL);
  T_ASSERT(ds->label == NULL);
  T_ASSERT_EQ_INT(ds->n_fields, 2);
  T_ASSERT_EQ_INT(ds->target_field, 1);
  const ameir__field *H = &ds->fields[0], *I = &ds->fields[1];
  T_ASSERT(!strcmp(H->name, "hist") && !strcmp(I->name, "item"));
  T_ASSERT_EQ_INT(H->kind, AMEIR_FIELD_SEQUENCE);
  T_ASSERT_EQ_INT(I->kind, AMEIR_FIELD_CATEGORICAL);
  T_ASSERT(!strcmp(H->share, "item"));
  T_ASSERT_EQ_INT(H->max_len, 3);
  /* identity: ids = the file's, candidates 1..max id */
  T_ASSERT_EQ_INT(I->vocab, 10);
  T_ASSERT_EQ_INT(H->vocab, 10);
  for (int k = 1; k < 10; k++) T_ASSERT_EQ_INT(I->keys[k], k);
  T_ASSERT_EQ_INT(ds->n_rows, 11);
  static const int64_t tr[] = {0, 1, 4, 5, 6, 7, 8}, va[] = {2, 9}, te[] = {3, 10};
  rows_eq(ds, AMEIR_SPLIT_TRAIN, tr, 7);
  rows_eq(ds, AMEIR_SPLIT_VALID, va, 2);
  rows_eq(ds, AMEIR_SPLIT_TEST, te, 2);
  IDS(H->ids, 5, -1, -1, 5, 3, -1, 5, 3, 8, 3, 8, 1, /* u1: t = 1, 2, valid, test (cut to 3) */
      4, -1, -1,                                    /* u2: one training row */
      1, -1, -1, 1, 2, -1, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6);
  IDS(I->ids, 3, 8, 1, 9, 2, 2, 3, 4, 5, 6, 7);
  T_ASSERT_EQ_INT(ds->n_users, 4);
  static const int64_t off[] = {0, 5, 7, 8, 15};
  for (int u = 0; u <= 4; u++) T_ASSERT_EQ_INT(ds->user_off[u], off[u]);
  IDS(ds->items, 5, 3, 8, 1, 9, 4, 2, 7, 1, 2, 3, 4, 5, 6, 7);
  IDS(ds->row_user, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3);
  IDS(ds->row_pos, 1, 2, 3, 4, 1, 1, 2, 3, 4, 5, 6);
  T_ASSERT_EQ_INT(ds->seq_empty, 1);
  T_ASSERT_EQ_INT(ds->seq_short, 2);    /* u2 (training row only) and u4 (no row) */
  T_ASSERT_EQ_INT(ds->seq_clipped, 4);  /* u1's test row, u5's t = 4, 5, 6 */
  T_ASSERT_EQ_INT(ds->seq_unknown, 0);
  T_ASSERT_EQ_INT(ds->skipped, 1);
  check_rows(ds);
}

void test_data_seq__userseq_protocol(void) {
  td_write("u.txt", USERSEQ);
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq, max_len: 3}\n", NULL));
  check_small(ds);
  T_ASSERT_EQ_INT(ameir_dataset_fields(ds), 2);
  T_ASSERT_EQ_INT(ameir_dataset_field_vocab(ds, 1), 10);
  ameir_dataset_free(ds);
  /* the default history length is 50 */
  T_OK(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq}\n", NULL));
  T_ASSERT_EQ_INT(ds->fields[0].max_len, 50);
  T_ASSERT_EQ_INT(ds->seq_clipped, 0);
  check_rows(ds);
  ameir_dataset_free(ds);
}

void test_data_seq__useritem_same_rows(void) {
  td_write("ui.txt", "u1 5\nu1 3\nu1 8 1700000000\nu1 1\nu1 9\nu2 4\nu2 2\nu3\nu4 7\n"
                     "u5 1\nu5 2\nu5 3\nu5 4\nu5 5\nu5 6\nu5 7\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [ui.txt], format: useritem, max_len: 3}\n", NULL));
  check_small(ds);
  ameir_dataset_free(ds);
  /* xz, and several files: users do not continue into the next file */
  td_write_xz("a.txt.xz", "x 1\nx 2\n");
  td_write("b.txt", "y 3\ny 4\ny 5\n");
  T_OK(td_open(&ds, NULL, "dataset: {files: [a.txt.xz, b.txt], format: useritem}\n", NULL));
  T_ASSERT_EQ_INT(ds->n_users, 2);
  T_ASSERT_EQ_INT(ds->n_rows, 3);
  T_ASSERT_EQ_INT(ds->seq_short, 1);
  ameir_dataset_free(ds);
  td_write("c.txt", "x 6\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [a.txt.xz, c.txt], format: useritem}\n", NULL), AMEIR_EFORMAT,
        "c.txt:1: user 'x' appears again");
}

void test_data_seq__useritem_not_grouped(void) {
  td_write("g.txt", "a 1\na 2\nb 3\na 4\n");
  ameir_dataset *ds = NULL;
  T_ERR(td_open(&ds, NULL, "dataset: {files: [g.txt], format: useritem}\n", NULL), AMEIR_EFORMAT,
        "g.txt:4: user 'a' appears again after other users");
  T_ASSERT(ds == NULL);
  /* an order error is not a bad row: skip does not hide it */
  T_ERR(td_open(&ds, NULL, "dataset: {files: [g.txt], format: useritem, on_bad_row: skip}\n", NULL),
        AMEIR_EFORMAT, "g.txt:4:");
}

void test_data_seq__bad_ids(void) {
  ameir_dataset *ds = NULL;
  td_write("bad.txt", "u1 1 2 3\nu2 1 x2 3\nu3 4 5 6\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [bad.txt], format: userseq}\n", NULL), AMEIR_EFORMAT,
        "bad.txt:2: column 3: 'x2' is not an item id");
  T_OK(td_open(&ds, NULL, "dataset: {files: [bad.txt], format: userseq, on_bad_row: skip}\n", NULL));
  T_ASSERT_EQ_INT(ds->n_users, 2);  /* the whole line goes */
  T_ASSERT_EQ_INT(ds->skipped, 1);
  T_ASSERT_EQ_INT(ds->n_rows, 4);
  IDS(ds->items, 1, 2, 3, 4, 5, 6);
  ameir_dataset_free(ds);
  td_write("bad2.txt", "u1 1\nu1 2.5\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [bad2.txt], format: useritem}\n", NULL), AMEIR_EFORMAT,
        "bad2.txt:2: column 2: '2.5' is not an item id");
  td_write("bad3.txt", "u1 -4 1\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [bad3.txt], format: userseq}\n", NULL), AMEIR_EFORMAT,
        "bad3.txt:1: column 2: '-4' is not an item id");
  /* identity ids: 1 .. 2^24 - 1 (0 is the padding id) */
  td_write("bad4.txt", "u1 1 0 2\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [bad4.txt], format: userseq}\n", NULL), AMEIR_EFORMAT,
        "bad4.txt:1: column 3: item id 0 is out of range");
  td_write("bad5.txt", "u1 1 99999999999 99999999999 2\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [bad5.txt], format: userseq}\n", NULL), AMEIR_EFORMAT,
        "item id 99999999999 is out of range");
  /* with a sorted vocabulary any integer is a value */
  T_OK(td_open(&ds, NULL, "dataset: {files: [bad5.txt], format: userseq, vocab: count}\n", NULL));
  T_ASSERT_EQ_INT(ds->fields[1].vocab, 3);  /* counted: 1 and 99999999999; 2 only as a test target */
  T_ASSERT_EQ_INT(ds->fields[1].keys[2], 99999999999ll);
  T_ASSERT_EQ_INT(ds->n_rows, 2);           /* train and valid; the test row's target is unknown */
  T_ASSERT_EQ_INT(ds->seq_unknown, 1);
  ameir_dataset_free(ds);
}

void test_data_seq__too_few_items_and_no_rows(void) {
  ameir_dataset *ds = NULL;
  td_write("few.txt", "a 1 2\nb 3\nc 4 5\n");
  T_OK(td_open(&ds, NULL, "dataset: {files: [few.txt], format: userseq}\n", NULL));
  T_ASSERT_EQ_INT(ds->n_rows, 2);
  T_ASSERT_EQ_INT(ds->split_n[AMEIR_SPLIT_TRAIN], 2);
  T_ASSERT_EQ_INT(ds->split_n[AMEIR_SPLIT_TEST], 0);
  T_ASSERT_EQ_INT(ds->seq_short, 3);
  T_ASSERT_EQ_INT(ds->n_users, 3);
  check_rows(ds);
  ameir_dataset_free(ds);
  td_write("none.txt", "a 1\nb\nc 2\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [none.txt], format: userseq}\n", NULL), AMEIR_EFORMAT,
        "no rows (2 users");
}

/* vocab: count is counted over the training positions: a held-out target seen nowhere else is
 * out of the vocabulary, and its row is dropped (counted); OOV history items are id 0. */
void test_data_seq__unknown_heldout_items(void) {
  td_write("c.txt", "u1 10 20 30 40\nu2 10 30 20\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [c.txt], format: userseq, vocab: count}\n", NULL));
  const ameir__field *I = &ds->fields[1];
  T_ASSERT_EQ_INT(I->vocab, 3);
  T_ASSERT_EQ_INT(I->keys[1], 10);
  T_ASSERT_EQ_INT(I->keys[2], 20);
  T_ASSERT_EQ_INT(ds->n_rows, 2);
  T_ASSERT_EQ_INT(ds->seq_unknown, 3);
  T_ASSERT_EQ_INT(ds->skipped, 3);
  static const int64_t tr[] = {0}, te[] = {1};
  rows_eq(ds, AMEIR_SPLIT_TRAIN, tr, 1);
  rows_eq(ds, AMEIR_SPLIT_VALID, NULL, 0);
  rows_eq(ds, AMEIR_SPLIT_TEST, te, 1);
  IDS(ds->items, 1, 2, 0, 0, 1, 0, 2);
  IDS(ds->fields[0].ids + 50, 1, 0, -1);  /* u2's test row: 10, then 30 (OOV) */
  IDS(I->ids, 2, 2);
  check_rows(ds);
  ameir_dataset_free(ds);
  /* min_count over the training positions */
  td_write("c2.txt", "u1 10 20 10 20 10 30 40\nu2 20 30\n");
  T_OK(td_open(&ds, NULL, "dataset: {files: [c2.txt], format: userseq, vocab: count, min_count: 3}\n", NULL));
  T_ASSERT_EQ_INT(ds->fields[1].vocab, 3);  /* 10 (3 times), 20 (3 times: u2's count too) */
  ameir_dataset_free(ds);
}

void test_data_seq__session(void) {
  /* clicks of a session out of time order; an unsorted file, raw ids, a sorted vocabulary */
  td_write("s.tsv", "SessionId\tItemId\tTime\n"
                    "s1\t300\t5.0\n"
                    "s1\t100\t1.5\n"
                    "s1\t200\t3\n"
                    "s2\t100\t2\n"
                    "s2\t300\t1\n"
                    "s3\t500\t1\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [s.tsv], format: session}\n", NULL));
  const ameir__field *I = &ds->fields[1];
  T_ASSERT_EQ_INT(ds->n_users, 3);
  IDS(ds->items, 1, 0, 2, 2, 1, 0);  /* s1: 100 200 300; s2: 300 100; s3: 500 (no row) */
  T_ASSERT_EQ_INT(I->vocab, 3);
  T_ASSERT_EQ_INT(I->keys[1], 100);
  T_ASSERT_EQ_INT(I->keys[2], 300);
  T_ASSERT_EQ_INT(ds->n_rows, 2);    /* s1's valid row (target 200, OOV) is dropped */
  T_ASSERT_EQ_INT(ds->seq_unknown, 1);
  T_ASSERT_EQ_INT(ds->seq_short, 2);
  T_ASSERT_EQ_INT(ds->split_rows[AMEIR_SPLIT_TEST][0], 0);
  T_ASSERT_EQ_INT(ds->split_rows[AMEIR_SPLIT_TRAIN][0], 1);
  IDS(ds->fields[0].ids, 1, 0, -1);
  check_rows(ds);
  ameir_dataset_free(ds);
  /* DIGINETICA's layout: ';', other names, identity ids, no time column (file order) */
  td_write("d.csv", "session_id;user_id;item_id;timeframe;eventdate\n"
                    "1;NA;7;300;2016-05-09\n1;NA;8;100;2016-05-09\n1;NA;9;200;2016-05-09\n");
  const char *y = "dataset: {files: [d.csv], format: session, separator: ';', session_column: session_id,"
                  " item_column: item_id, time_column: timeframe, vocab: identity}\n";
  T_OK(td_open(&ds, NULL, y, NULL));
  IDS(ds->items, 8, 9, 7);
  T_ASSERT_EQ_INT(ds->fields[1].vocab, 10);
  ameir_dataset_free(ds);
  T_OK(td_open(&ds, NULL, y, (const char *[]){"time_column=", NULL}));
  IDS(ds->items, 7, 8, 9);
  ameir_dataset_free(ds);
  /* errors: a column the header does not have, a session split in two, a bad time */
  T_ERR(td_open(&ds, NULL, y, (const char *[]){"item_column=item", NULL}), AMEIR_ECONFIG,
        "item_column: unknown column 'item' (columns of");
  td_write("e.tsv", "SessionId\tItemId\tTime\na\t1\t1\nb\t2\t1\na\t3\t2\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [e.tsv], format: session}\n", NULL), AMEIR_EFORMAT,
        "e.tsv:4: session 'a' appears again after other sessions");
  td_write("f.tsv", "SessionId\tItemId\tTime\na\t1\tnoon\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [f.tsv], format: session}\n", NULL), AMEIR_EFORMAT,
        "f.tsv:2: column 3 (Time): 'noon' is not a time");
  td_write("h.tsv", "SessionId\tItemId\tTime\na\t1\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [h.tsv], format: session}\n", NULL), AMEIR_EFORMAT,
        "h.tsv:2: 2 columns, expected 3");
}

void test_data_seq__config_errors(void) {
  td_write("u.txt", USERSEQ);
  ameir_dataset *ds = NULL;
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq, vocab: big}\n", NULL), AMEIR_ECONFIG,
        "vocab: 'big' is not identity or count");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq, min_count: 2}\n", NULL), AMEIR_ECONFIG,
        "min_count is for vocab: count");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq, split: modulo}\n", NULL), AMEIR_ECONFIG,
        "unknown key 'dataset.split'");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq, label: y}\n", NULL), AMEIR_ECONFIG,
        "unknown key 'dataset.label'");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq, max_len: 0}\n", NULL), AMEIR_ECONFIG,
        "max_len: '0' is not an integer");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: ml100k}\n", NULL), AMEIR_ECONFIG,
        "ml100k needs 3 files");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: dmr, split: {method: column, column: c, "
                          "test_values: [a]}}\n", NULL), AMEIR_ECONFIG, "dmr files have no named columns");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: sessions}\n", NULL), AMEIR_ECONFIG,
        "'sessions' is not one of");
}

/* the cache keeps the task, the retrieval arrays and the counts; it is checked like the rest */
void test_data_seq__cache_roundtrip(void) {
  td_write("u.txt", USERSEQ);
  const char *y = "dataset: {files: [u.txt], format: userseq, max_len: 3}\n";
  ameir_dataset *a = NULL, *b = NULL;
  T_OK(td_open(&a, NULL, y, NULL));
  T_ASSERT(!a->from_cache);
  T_OK(td_open(&b, NULL, y, NULL));
  T_ASSERT(b->from_cache && b->map);
  check_small(b);
  ameir_dataset_free(b);
  /* a CTR dataset's cache says so */
  td_write("k.csv", "y,a\n1,x\n0,y\n");
  T_OK(td_open(&b, NULL, "dataset: {files: [k.csv], label: y, split: none}\n", NULL));
  ameir_dataset_free(b);
  T_OK(td_open(&b, NULL, "dataset: {files: [k.csv], label: y, split: none}\n", NULL));
  T_ASSERT(b->from_cache);
  T_ASSERT_EQ_INT(b->task, AMEIR_TASK_CTR);
  T_ASSERT_EQ_INT(b->target_field, -1);
  T_ASSERT(b->items == NULL && b->user_off == NULL);
  ameir_dataset_free(b);
  /* a row position out of its user: rebuilt from the text, never trusted */
  char dir[1100], path[2400];
  snprintf(dir, sizeof dir, "%s/cache", t_tmpdir());
  DIR *d = opendir(dir);
  T_ASSERT(d);
  struct dirent *e;
  path[0] = 0;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, "u.txt.", 6) && strstr(e->d_name, ".ameir-cache"))
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
  closedir(d);
  T_ASSERT(path[0]);
  FILE *f = fopen(path, "r+b");
  T_ASSERT(f);
  uint64_t hdr[40];
  T_ASSERT(fread(hdr, 8, 40, f) == 40);
  T_ASSERT_EQ_INT(hdr[1], 2);            /* cache format version */
  T_ASSERT_EQ_INT(hdr[19], AMEIR_TASK_RETRIEVAL);
  int32_t bad = 5;                       /* u1 has 5 items: positions 1..4 */
  T_ASSERT(fseek(f, (long)hdr[26], SEEK_SET) == 0);
  T_ASSERT(fwrite(&bad, 4, 1, f) == 1);
  fclose(f);
  T_OK(td_open(&b, NULL, y, NULL));
  T_ASSERT(!b->from_cache);
  check_small(b);
  ameir_dataset_free(b);
  ameir_dataset_free(a);
}

void test_data_seq__mlsmall_protocol(void) {
  td_write("ratings.csv", "userId,movieId,rating,timestamp\n"
                          "1,10,4.0,100\n1,20,3.5,100\n2,10,5.0,50\n1,30,4.5,200\n2,20,1.0,300\n");
  td_write("movies.csv", "movieId,title,genres\n"
                         "10,\"Movie, The (1999)\",Comedy|Drama\n20,Other (2000),Drama\n"
                         "30,Third,(no genres listed)\n");
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [ratings.csv, movies.csv], format: mlsmall, min_count: 1}\n",
               NULL));
  T_ASSERT_EQ_INT(ds->task, AMEIR_TASK_CTR);
  T_ASSERT_EQ_INT(ds->target_field, -1);
  T_ASSERT_EQ_INT(ds->n_rows, 5);
  /* time order (ties: file order): (2,10,50) (1,10,100) (1,20,100) (1,30,200) (2,20,300);
   * int(5 * 0.8) = 4 train, int(0.5) = 0 valid, 1 test */
  T_ASSERT_EQ_INT(ds->split_n[0], 4);
  T_ASSERT_EQ_INT(ds->split_n[1], 0);
  T_ASSERT_EQ_INT(ds->split_rows[2][0], 4);
  static const float y[] = {1, 1, 0, 1, 0};
  for (int i = 0; i < 5; i++) T_ASSERT_NEAR(ds->label[i], y[i], 0);
  T_ASSERT_EQ_INT(ds->n_fields, 4);
  const ameir__field *U = &ds->fields[0], *M = &ds->fields[1], *G = &ds->fields[2], *H = &ds->fields[3];
  T_ASSERT(!strcmp(H->name, "hist_movie") && !strcmp(H->share, "movie_id"));
  IDS(U->ids, 2, 1, 1, 1, 2);
  IDS(M->ids, 1, 1, 2, 3, 2);
  /* genres: as long as the longest list; "(no genres listed)" is a long string: a hashed key */
  T_ASSERT_EQ_INT(G->kind, AMEIR_FIELD_MULTI);
  T_ASSERT_EQ_INT(G->max_len, 2);
  T_ASSERT_EQ_INT(G->vocab, 4);
  IDS(G->ids, 1, 2, 1, 2, 2, -1, 3, -1, 2, -1);
  /* behaviours: strictly earlier timestamps only (the tie at 100 sees nothing) */
  T_ASSERT_EQ_INT(H->max_len, 50);
  T_ASSERT_EQ_INT(H->vocab, M->vocab);
  IDS(H->ids + 0 * 50, -1);
  IDS(H->ids + 1 * 50, -1);
  IDS(H->ids + 2 * 50, -1);
  IDS(H->ids + 3 * 50, 1, 2, -1);
  IDS(H->ids + 4 * 50, 1, -1);
  ameir_dataset_free(ds);
  /* a rating of a movie the table does not have */
  td_write("ratings2.csv", "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,99,3.5,100\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [ratings2.csv, movies.csv], format: mlsmall}\n", NULL),
        AMEIR_EFORMAT, "ratings2.csv:3: movie 99 is not in");
  T_OK(td_open(&ds, NULL, "dataset: {files: [ratings2.csv, movies.csv], format: mlsmall, on_bad_row: skip}\n",
               NULL));
  T_ASSERT_EQ_INT(ds->n_rows, 1);
  T_ASSERT_EQ_INT(ds->skipped, 1);
  ameir_dataset_free(ds);
}

static void dmr_line(char *buf, size_t cap, int real, int btag2, int cate_id, int brand, int label) {
  size_t o = 0;
  /* btag, cate, brand, mask, match_mask: 50 each, left-padded */
  for (int blk = 0; blk < 5; blk++)
    for (int j = 0; j < 50; j++) {
      int on = j >= 50 - real, v = 0;
      if (on && blk == 0) v = j == 48 ? btag2 : 1;
      if (on && blk == 1) v = j < 47 || real == 50 ? 11 : 11 + (j - 47);
      if (on && blk == 2) v = j < 47 || real == 50 ? 21 : 21 + (j - 47);
      if (blk >= 3) v = on;
      o += (size_t)snprintf(buf + o, cap - o, "%d,", v);
    }
  o += (size_t)snprintf(buf + o, cap - o, "1000,0,4,2,4,0,3,0,4,7000,%d,182,114,%d,0.5,1,%d\n", cate_id, brand, label);
}

void test_data_seq__dmr(void) {
  static char text[8192], line[2048];
  size_t o = 0;
  for (int i = 0; i < 267; i++)  /* a header: DeepCTR's copy has one */
    o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i ? "," : "", i < 250 ? "h" : "c");
  text[o++] = '\n';
  text[o] = 0;
  dmr_line(line, sizeof line, 3, 2, 12, 23, 1);  /* history 11 12 13 / 21 22 23, btag 1 2 1 */
  strcat(text, line);
  dmr_line(line, sizeof line, 50, 1, 11, 21, 0);
  strcat(text, line);
  td_write("dmr.txt", text);
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, "dataset: {files: [dmr.txt], format: dmr, max_len: 2, split: none}\n", NULL));
  T_ASSERT_EQ_INT(ds->n_rows, 2);
  T_ASSERT_EQ_INT(ds->n_fields, 19);
  T_ASSERT_NEAR(ds->label[0], 1, 0);
  T_ASSERT_NEAR(ds->label[1], 0, 0);
  const ameir__field *cate = &ds->fields[10], *brand = &ds->fields[13], *price = &ds->fields[14];
  const ameir__field *hb = &ds->fields[16], *hc = &ds->fields[17], *hr = &ds->fields[18];
  T_ASSERT(!strcmp(cate->name, "cate_id") && !strcmp(brand->name, "brand") && !strcmp(price->name, "price"));
  T_ASSERT(!strcmp(hc->share, "cate_id") && !strcmp(hr->share, "brand") && !hb->share[0]);
  T_ASSERT_EQ_INT(price->kind, AMEIR_FIELD_DENSE);
  T_ASSERT_NEAR(price->values[0], 0.5, 0);
  T_ASSERT_EQ_INT(cate->vocab, 3);  /* 11, 12 */
  /* the last 2 real positions, left-aligned, through the target's vocabulary */
  IDS(hc->ids, 2, 0, 1, 1);         /* 12, 13 (not a cate_id value: OOV); 11, 11 */
  IDS(hr->ids, 0, 2, 1, 1);         /* 22 (OOV), 23; 21, 21 */
  IDS(hb->ids, 2, 1, 1, 1);         /* own vocabulary: 1 -> 1, 2 -> 2 */
  ameir_dataset_free(ds);
  /* a mask that is not 0/1; a short line */
  char bad[4096];
  dmr_line(line, sizeof line, 3, 2, 12, 23, 1);
  snprintf(bad, sizeof bad, "%s", line);
  char *m = bad;
  for (int c = 0; c < 150; c++) m = strchr(m, ',') + 1;
  m[0] = '7';
  td_write("dmr2.txt", bad);
  T_ERR(td_open(&ds, NULL, "dataset: {files: [dmr2.txt], format: dmr, split: none}\n", NULL), AMEIR_EFORMAT,
        "dmr2.txt:1: column 151 (mask): '7' is not 0 or 1");
  td_write("dmr3.txt", "1,2,3\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [dmr3.txt], format: dmr, split: none}\n", NULL), AMEIR_EFORMAT,
        "dmr3.txt:1: 3 columns, expected 267");
}

/* open_like: the vocabularies of a schema, every row in test, no cache */
void test_data_seq__open_like_csv(void) {
  td_write("tr.csv", "y,a,n,t\n1,x,1,p|q\n0,y,3,q\n1,x,5,r\n");
  const char *y = "dataset:\n"
                  "  files: [tr.csv]\n"
                  "  label: y\n"
                  "  features:\n"
                  "    - a\n"
                  "    - {name: n, type: numeric, transform: minmax}\n"
                  "    - {name: t, multi: true, max_len: 2}\n"
                  "  split: none\n";
  ameir_dataset *tr = NULL, *ds = NULL;
  T_OK(td_open(&tr, NULL, y, NULL));
  td_write("new.csv", "y,a,n,t\n0,y,4,r|zz\n1,new,9,\n");
  const char *files[] = {"new.csv"};
  T_OK(ameir__dataset_open_like(&ds, NULL, tr->fields, tr->n_fields, y, t_tmpdir(), files, 1));
  T_ASSERT_EQ_INT(ds->n_rows, 2);
  T_ASSERT_EQ_INT(ds->split_n[AMEIR_SPLIT_TEST], 2);
  T_ASSERT_EQ_INT(ds->split_n[AMEIR_SPLIT_TRAIN], 0);
  T_ASSERT(!ds->from_cache);
  const ameir__field *a = &ds->fields[0], *n = &ds->fields[1], *t = &ds->fields[2];
  T_ASSERT_EQ_INT(a->vocab, tr->fields[0].vocab);
  IDS(a->ids, 2, 0);                      /* y; "new" was never seen */
  T_ASSERT_NEAR(n->values[0], 0.75, 1e-6);  /* (4 - 1) / (5 - 1): the schema's min and max */
  T_ASSERT_NEAR(n->values[1], 1, 0);        /* clipped */
  IDS(t->ids, 3, 0, -1, -1);
  ameir_dataset_free(ds);
  /* nothing was cached for the new file */
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/cache", t_tmpdir());
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) T_ASSERT(strncmp(e->d_name, "new.csv", 7) != 0);
  if (d) closedir(d);
  /* a config that does not match the schema */
  T_ERR(ameir__dataset_open_like(&ds, NULL, tr->fields, tr->n_fields - 1, y, t_tmpdir(), files, 1), AMEIR_ECONFIG,
        "the config has 3 fields, the schema 2");
  const char *y2 = "dataset: {files: [tr.csv], label: y, features: [a, n, t], split: none}\n";
  T_ERR(ameir__dataset_open_like(&ds, NULL, tr->fields, tr->n_fields, y2, t_tmpdir(), files, 1), AMEIR_ECONFIG,
        "field 1 ('n') differs from the schema's ('n'): another kind");
  T_ASSERT(ds == NULL);
  ameir_dataset_free(tr);
}

void test_data_seq__open_like_retrieval(void) {
  td_write("u.txt", USERSEQ);
  const char *y = "dataset: {files: [u.txt], format: userseq, max_len: 3}\n";
  ameir_dataset *tr = NULL, *ds = NULL;
  T_OK(td_open(&tr, NULL, y, NULL));
  td_write("v.txt", "x 1 2 12 3\n");  /* 12 is not in the trained vocabulary (1..9) */
  const char *files[] = {"v.txt"};
  T_OK(ameir__dataset_open_like(&ds, NULL, tr->fields, tr->n_fields, y, t_tmpdir(), files, 1));
  T_ASSERT_EQ_INT(ds->fields[1].vocab, 10);
  T_ASSERT_EQ_INT(ds->n_rows, 2);         /* t = 1 and the test row; the valid row's target is unknown */
  T_ASSERT_EQ_INT(ds->split_n[AMEIR_SPLIT_TEST], 2);
  T_ASSERT_EQ_INT(ds->seq_unknown, 1);
  IDS(ds->items, 1, 2, 0, 3);
  IDS(ds->fields[0].ids, 1, -1, -1, 1, 2, 0);
  check_rows(ds);
  ameir_dataset_free(ds);
  ameir_dataset_free(tr);
}

/* `user_field: true`: a third, categorical field "user" whose id per row is its user's (the
 * vocabulary of the user ids, in key order); the cache keeps it; open_like maps a known user to
 * the trained id and an unknown one to 0; other formats refuse the key. */
void test_data_seq__user_field(void) {
  td_write("u.txt", USERSEQ);
  const char *y = "dataset: {files: [u.txt], format: userseq, max_len: 3, user_field: true}\n";
  ameir_dataset *ds = NULL, *c = NULL, *lk = NULL;
  T_OK(td_open(&ds, NULL, y, NULL));
  T_ASSERT_EQ_INT(ds->n_fields, 3);
  const ameir__field *U = &ds->fields[2];
  T_ASSERT(!strcmp(U->name, "user"));
  T_ASSERT_EQ_INT(U->kind, AMEIR_FIELD_CATEGORICAL);
  T_ASSERT_EQ_INT(U->vocab, 5);    /* u1 u2 u4 u5 (u3 has no items) + OOV */
  /* the rows are those of check_small: u1 x4, u2 x1, u5 x6 */
  T_ASSERT_EQ_INT(ds->n_rows, 11);
  for (int64_t r = 0; r < ds->n_rows; r++) {
    int32_t id = U->ids[r];
    T_ASSERT(id >= 1 && id < 5);
    for (int64_t q = 0; q < ds->n_rows; q++) T_ASSERT((U->ids[q] == id) == (ds->row_user[q] == ds->row_user[r]));
  }
  /* the same history, item and splits as without the field */
  T_OK(td_open(&c, NULL, "dataset: {files: [u.txt], format: userseq, max_len: 3}\n", NULL));
  for (int64_t r = 0; r < ds->n_rows * 3; r++) T_ASSERT_EQ_INT(ds->fields[0].ids[r], c->fields[0].ids[r]);
  T_ASSERT(ds->schema_hash != c->schema_hash);
  ameir_dataset_free(c);
  c = NULL;
  T_OK(td_open(&c, NULL, y, NULL));   /* from the cache */
  T_ASSERT(c->from_cache);
  T_ASSERT_EQ_INT(c->n_fields, 3);
  for (int64_t r = 0; r < ds->n_rows; r++) T_ASSERT_EQ_INT(c->fields[2].ids[r], U->ids[r]);
  ameir_dataset_free(c);
  /* open_like: u5 is known, x is not */
  td_write("v.txt", "x 1 2 3\nu5 4 5 6\n");
  const char *files[] = {"v.txt"};
  T_OK(ameir__dataset_open_like(&lk, NULL, ds->fields, ds->n_fields, y, t_tmpdir(), files, 1));
  T_ASSERT_EQ_INT(lk->n_fields, 3);
  T_ASSERT_EQ_INT(lk->fields[2].vocab, 5);
  int32_t u5 = U->ids[ds->n_rows - 1];
  for (int64_t r = 0; r < lk->n_rows; r++) T_ASSERT_EQ_INT(lk->fields[2].ids[r], lk->row_user[r] == 0 ? 0 : u5);
  ameir_dataset_free(lk);
  /* a schema without the user field does not fit a config with it */
  lk = NULL;
  ameir_dataset *plain = NULL;
  T_OK(td_open(&plain, NULL, "dataset: {files: [u.txt], format: userseq, max_len: 3}\n", NULL));
  T_ERR(ameir__dataset_open_like(&lk, NULL, plain->fields, plain->n_fields, y, t_tmpdir(), files, 1), AMEIR_ECONFIG,
        "the schema is not a");
  ameir_dataset_free(plain);
  ameir_dataset_free(ds);
  /* bad values and formats */
  T_ERR(td_open(&ds, NULL, "dataset: {files: [u.txt], format: userseq, user_field: maybe}\n", NULL), AMEIR_ECONFIG,
        "user_field");
  td_write("k.csv", "y,a\n1,x\n0,y\n");
  T_ERR(td_open(&ds, NULL, "dataset: {files: [k.csv], label: y, split: none, user_field: true}\n", NULL), AMEIR_ECONFIG,
        "unknown key 'dataset.user_field'");
}

/* ---- the real files ---- */

void test_data_seq__real_amazon_beauty(void) {
  NEED_DATA();
  ameir_dataset *ds = NULL;
  T_OK(td_open_example(&ds, NULL, "amazon_beauty", 0));
  /* REFERENCE.md: 17,891 users, 12,101 items, 104,872 training prefixes, 17,891 valid and test */
  T_ASSERT_EQ_INT(ds->task, AMEIR_TASK_RETRIEVAL);
  T_ASSERT_EQ_INT(ds->n_users, 17891);
  T_ASSERT_EQ_INT(ds->fields[ds->target_field].vocab - 1, 12101);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TRAIN), 104872);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_VALID), 17891);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 17891);
  T_ASSERT_EQ_INT(ds->user_off[ds->n_users], 158545);  /* interactions */
  T_ASSERT_EQ_INT(ds->skipped, 0);
  T_ASSERT_EQ_INT(ds->seq_short, 0);
  /* the first line is "1 1 2 3 4 5": train 1 -> 2, 1 2 -> 3; valid 1 2 3 -> 4; test 1 2 3 4 -> 5 */
  const int32_t *H = ds->fields[0].ids, *I = ds->fields[1].ids;
  IDS(H, 1, -1);
  IDS(H + 50, 1, 2, -1);
  IDS(H + 100, 1, 2, 3, -1);
  IDS(H + 150, 1, 2, 3, 4, -1);
  IDS(I, 2, 3, 4, 5);
  T_ASSERT_EQ_INT(ds->split_rows[AMEIR_SPLIT_VALID][0], 2);
  T_ASSERT_EQ_INT(ds->split_rows[AMEIR_SPLIT_TEST][0], 3);
  /* every test row: the user's last item after all the others, the most recent 50 as history */
  int64_t longest = -1;
  for (int64_t i = 0; i < ds->split_n[AMEIR_SPLIT_TEST]; i++) {
    int64_t r = ds->split_rows[AMEIR_SPLIT_TEST][i], u = ds->row_user[r];
    int64_t m = ds->user_off[u + 1] - ds->user_off[u];
    T_ASSERT_EQ_INT(u, i);
    T_ASSERT_EQ_INT(ds->row_pos[r], m - 1);
    if (m > 51 && (longest < 0 || m > ds->user_off[longest + 1] - ds->user_off[longest])) longest = u;
  }
  T_ASSERT(longest >= 0);
  check_rows(ds);  /* every row, and the cut to 50 of the long ones */
  T_ASSERT(ds->seq_clipped > 0);
  ameir_dataset_free(ds);
}

void test_data_seq__real_retrieval_configs(void) {
  NEED_DATA();
  static const struct {
    const char *name;
    int64_t users, items, train, eval, shortu;
  } want[] = {
      {"amazon_sports", 28479, 18357, 151822, 28479, 0},
      {"amazon_toys", 15530, 11924, 87221, 15530, 0},
      {"yelp", 24345, 20033, 179835, 24345, 0},
      {"amazon_video_games", 24811, 23715, 154624, 24722, 89},
      {"amazon_beauty_bert4rec", 32181, 54542, 186159, 32181, 0},
  };
  for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
    ameir_dataset *ds = NULL;
    T_OK(td_open_example(&ds, NULL, want[k].name, 0));
    T_ASSERT_MSG(ds->n_users == want[k].users && ds->fields[1].vocab - 1 == want[k].items &&
                 ds->split_n[0] == want[k].train && ds->split_n[1] == want[k].eval &&
                 ds->split_n[2] == want[k].eval && ds->seq_short == want[k].shortu,
                 "%s: %lld users, %lld items, %lld / %lld / %lld rows, %lld short", want[k].name,
                 (long long)ds->n_users, (long long)ds->fields[1].vocab - 1, (long long)ds->split_n[0],
                 (long long)ds->split_n[1], (long long)ds->split_n[2], (long long)ds->seq_short);
    ameir_dataset_free(ds);
  }
  /* sessions: every row consistent; no session appears twice */
  static const char *const sess[] = {"yoochoose", "diginetica"};
  for (int k = 0; k < 2; k++) {
    ameir_dataset *ds = NULL;
    T_OK(td_open_example(&ds, NULL, sess[k], 0));
    T_ASSERT(ds->n_rows > 1000 && ds->split_n[AMEIR_SPLIT_TEST] > 500);
    check_rows(ds);
    ameir_dataset_free(ds);
  }
}

void test_data_seq__real_ml100k(void) {
  NEED_DATA();
  ameir_dataset *ds = NULL;
  T_OK(td_open_example(&ds, NULL, "ml100k", 0));
  /* REFERENCE.md: 64,793 / 8,099 / 8,100 rows; field sizes 596, 8, 3, 22, 20, 1012, 19 with OOV */
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TRAIN), 64793);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_VALID), 8099);
  T_ASSERT_EQ_INT(ameir_dataset_rows(ds, AMEIR_SPLIT_TEST), 8100);
  T_ASSERT_EQ_INT(ds->split_rows[AMEIR_SPLIT_TEST][0], 64793 + 8099);
  static const int64_t sizes[] = {596, 8, 3, 22, 20, 1012, 19};
  static const char *const names[] = {"user_id", "age", "gender", "occupation", "zip1", "movie_id", "genres",
                                      "hist_movie"};
  T_ASSERT_EQ_INT(ds->n_fields, 8);
  int64_t rows = 1;
  for (int i = 0; i < 8; i++) T_ASSERT(!strcmp(ds->fields[i].name, names[i]));
  for (int i = 0; i < 7; i++) {
    T_ASSERT_EQ_INT(ameir_dataset_field_vocab(ds, i), sizes[i]);
    rows += sizes[i];
  }
  T_ASSERT_EQ_INT(rows, 1681);  /* torch_ref's embedding rows */
  const ameir__field *G = &ds->fields[6], *H = &ds->fields[7];
  T_ASSERT_EQ_INT(G->kind, AMEIR_FIELD_MULTI);
  T_ASSERT_EQ_INT(G->max_len, 6);
  T_ASSERT_EQ_INT(H->kind, AMEIR_FIELD_SEQUENCE);
  T_ASSERT_EQ_INT(H->max_len, 50);
  T_ASSERT(!strcmp(H->share, "movie_id"));
  /* the ids and histories equal torch_ref's (a pure-Python make_ml100k replica, same checksum) */
  uint64_t h = 0;
  int64_t empty = 0;
  for (int64_t r = 0; r < ds->n_rows; r++) {
    empty += H->ids[r * 50] == -1;
    for (int j = 0; j < 50; j++) h = h * 1000003ull + (uint64_t)(H->ids[r * 50 + j] + 7);
  }
  T_ASSERT(h == 11452594121855769528ull);
  T_ASSERT_EQ_INT(empty, 1710);
  static const int fl[] = {0, 1, 2, 4, 5};
  static const uint64_t fsum[] = {9117123699966498252ull, 10801665404576908777ull, 16100452154871673422ull,
                                  17146136038430418272ull, 17814138396583087061ull};
  for (int k = 0; k < 5; k++) {
    h = 0;
    for (int64_t r = 0; r < ds->n_rows; r++) h = h * 1000003ull + (uint64_t)(ds->fields[fl[k]].ids[r] + 7);
    T_ASSERT_MSG(h == fsum[k], "field %s", ds->fields[fl[k]].name);
  }
  double pos = 0;
  for (int64_t r = 0; r < ds->n_rows; r++) pos += ds->label[r];
  T_ASSERT_EQ_INT((int64_t)pos, 45202);
  ameir_dataset_free(ds);
}

void test_data_seq__real_mlsmall_alimama(void) {
  NEED_DATA();
  ameir_dataset *ds = NULL;
  T_OK(td_open_example(&ds, NULL, "mlsmall", 0));
  T_ASSERT_EQ_INT(ds->n_rows, 80535);  /* int(0.8 n), int(0.1 n), the rest */
  T_ASSERT_EQ_INT(ds->split_n[0], 64428);
  T_ASSERT_EQ_INT(ds->split_n[1], 8053);
  T_ASSERT_EQ_INT(ds->split_n[2], 8054);
  T_ASSERT_EQ_INT(ds->n_fields, 4);
  T_ASSERT_EQ_INT(ds->skipped, 0);
  ameir_dataset_free(ds);
  T_OK(td_open_example(&ds, NULL, "alimama", 0));
  T_ASSERT_EQ_INT(ds->n_rows, 500);
  T_ASSERT_EQ_INT(ds->split_n[0], 400);
  T_ASSERT_EQ_INT(ds->n_fields, 19);
  /* line 60 has 22 padded positions: its 28 real ones come first, then -1 */
  const ameir__field *hc = &ds->fields[17];
  T_ASSERT(hc->ids[59 * 50 + 27] >= 0);
  T_ASSERT_EQ_INT(hc->ids[59 * 50 + 28], -1);
  T_ASSERT(hc->ids[0 * 50 + 49] >= 0);
  ameir_dataset_free(ds);
}

/* open_like on Criteo with its own fields as the schema: the same ids */
void test_data_seq__open_like_criteo(void) {
  NEED_DATA();
  ameir_dataset *a = NULL, *b = NULL;
  T_OK(td_open_example(&a, NULL, "criteo", 0));
  FILE *f = fopen("examples/configs/criteo.yaml", "rb");
  T_ASSERT(f);
  char yaml[16384];
  size_t n = fread(yaml, 1, sizeof yaml - 1, f);
  fclose(f);
  yaml[n] = 0;
  char file[4200];
  snprintf(file, sizeof file, "%s/criteo/criteo_kaggle_train_head_rows0001-8000.tsv.xz", td_data_dir());
  const char *files[] = {file};
  T_OK(ameir__dataset_open_like(&b, NULL, a->fields, a->n_fields, yaml, "examples/configs", files, 1));
  T_ASSERT_EQ_INT(b->n_rows, a->n_rows);
  T_ASSERT_EQ_INT(b->split_n[AMEIR_SPLIT_TEST], 8000);
  for (int32_t i = 0; i < a->n_fields; i++) {
    const ameir__field *x = &a->fields[i], *y = &b->fields[i];
    T_ASSERT_EQ_INT(x->vocab, y->vocab);
    if (x->kind == AMEIR_FIELD_DENSE)
      T_ASSERT(memcmp(x->values, y->values, (size_t)a->n_rows * 4) == 0);
    else
      T_ASSERT_MSG(memcmp(x->ids, y->ids, (size_t)a->n_rows * 4) == 0, "field %s", x->name);
  }
  T_ASSERT(memcmp(a->label, b->label, (size_t)a->n_rows * 4) == 0);
  ameir_dataset_free(b);
  ameir_dataset_free(a);
}
