/* The binary cache: written on the first open, memory-mapped later, rebuilt when a source file
 * or the schema changes, and when the cache file is truncated or corrupt (never a crash). */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "test.h"

static const char *YAML =
    "dataset:\n"
    "  files: [k.csv, k2.csv.gz]\n"
    "  label: y\n"
    "  features:\n"
    "    - {name: a, min_count: 1}\n"
    "    - {name: n, type: numeric, transform: minmax}\n"
    "    - {name: t, multi: true, max_len: 3}\n"
    "  split: modulo\n";

static void write_data(int variant) {
  char text[65536];
  size_t o = (size_t)snprintf(text, sizeof text, "y,a,n,t\n");
  for (int i = 0; i < 500; i++)
    o += (size_t)snprintf(text + o, sizeof text - o, "%d,a%d,%d,x%d|y%d\n", (i * 7 + variant) % 3 == 0,
                          (i * 13 + variant) % 37, i % 17, i % 5, i % 3);
  td_write("k.csv", text);
  td_write_gz("k2.csv.gz", "y,a,n,t\n1,a1,3,x1\n0,zz,4,\n");
}

/* the one *.ameir-cache file in dir (static storage), or NULL */
static const char *cache_file(const char *dir) {
  static char path[2048];
  DIR *d = opendir(dir);
  if (!d) return NULL;
  const char *found = NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n > 12 && !strcmp(e->d_name + n - 12, ".ameir-cache")) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      found = path;
    }
  }
  closedir(d);
  return found;
}

static int count_caches(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) n += strstr(e->d_name, ".ameir-cache") != NULL;
  closedir(d);
  return n;
}

static void same(const ameir_dataset *a, const ameir_dataset *b) {
  T_ASSERT_EQ_INT(a->n_rows, b->n_rows);
  T_ASSERT_EQ_INT(a->n_fields, b->n_fields);
  T_ASSERT(memcmp(a->label, b->label, (size_t)a->n_rows * sizeof(float)) == 0);
  for (int k = 0; k < 3; k++) {
    T_ASSERT_EQ_INT(a->split_n[k], b->split_n[k]);
    T_ASSERT(memcmp(a->split_rows[k], b->split_rows[k], (size_t)a->split_n[k] * 8) == 0);
  }
  for (int32_t i = 0; i < a->n_fields; i++) {
    const ameir__field *x = &a->fields[i], *y = &b->fields[i];
    T_ASSERT(!strcmp(x->name, y->name));
    T_ASSERT_EQ_INT(x->kind, y->kind);
    T_ASSERT_EQ_INT(x->vocab, y->vocab);
    T_ASSERT_EQ_INT(x->max_len, y->max_len);
    T_ASSERT_EQ_INT(x->transform, y->transform);
    T_ASSERT_NEAR(x->t_min, y->t_min, 0);
    T_ASSERT_NEAR(x->t_max, y->t_max, 0);
    if (x->kind == AMEIR_FIELD_DENSE) {
      T_ASSERT(memcmp(x->values, y->values, (size_t)a->n_rows * 4) == 0);
    } else {
      T_ASSERT(memcmp(x->ids, y->ids, (size_t)a->n_rows * (size_t)x->max_len * 4) == 0);
      T_ASSERT(memcmp(x->keys, y->keys, (size_t)x->vocab * 8) == 0);
    }
  }
  T_ASSERT(!strcmp(a->name, b->name));
  T_ASSERT_EQ_INT(a->skipped, b->skipped);
}

static ameir_dataset *open_ok(int expect_cache) {
  ameir_dataset *ds = NULL;
  T_OK(td_open(&ds, NULL, YAML, NULL));
  int32_t fc = -1;
  ameir_dataset_load_seconds(ds, &fc);
  T_ASSERT_MSG(fc == expect_cache, "from_cache %d, expected %d", (int)fc, expect_cache);
  return ds;
}

void test_data_cache__roundtrip(void) {
  write_data(0);
  ameir_dataset *a = open_ok(0);
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/cache", t_tmpdir());
  T_ASSERT(cache_file(dir) != NULL);
  ameir_dataset *b = open_ok(1);
  T_ASSERT(b->map != NULL);
  same(a, b);
  T_ASSERT_EQ_INT(ameir_dataset_rows(b, AMEIR_SPLIT_TEST), 50);
  ameir_dataset_free(a);
  ameir_dataset_free(b);
  /* a changed schema is another cache; the old one stays valid */
  ameir_dataset *c = NULL;
  T_OK(td_open(&c, NULL, YAML, (const char *[]){"split.method=random", NULL}));
  T_ASSERT(!c->from_cache);
  ameir_dataset_free(c);
  T_ASSERT_EQ_INT(count_caches(dir), 2);
  ameir_dataset_free(open_ok(1));
  /* caching off: nothing written */
  T_OK(td_open(&c, NULL, YAML, (const char *[]){"cache=false", "split.method=none", NULL}));
  T_ASSERT(!c->from_cache);
  ameir_dataset_free(c);
  T_ASSERT_EQ_INT(count_caches(dir), 2);
}

void test_data_cache__default_dir(void) {
  write_data(0);
  ameir_dataset *ds = NULL;
  /* no cache.dir: next to the first data file (the test directory is writable) */
  T_OK(ameir_dataset_open_yaml(&ds, NULL, YAML, t_tmpdir(), NULL, 0));
  ameir_dataset_free(ds);
  T_ASSERT(cache_file(t_tmpdir()) != NULL);
  T_OK(ameir_dataset_open_yaml(&ds, NULL, YAML, t_tmpdir(), NULL, 0));
  T_ASSERT(ds->from_cache);
  ameir_dataset_free(ds);
  /* a read-only data directory: $XDG_CACHE_HOME/ameir */
  char ro[1100], xdg[1100], yaml[600];
  snprintf(ro, sizeof ro, "%s/ro", t_tmpdir());
  snprintf(xdg, sizeof xdg, "%s/xdg", t_tmpdir());
  T_ASSERT(mkdir(ro, 0755) == 0);
  char src[1200];
  snprintf(src, sizeof src, "%s/ro/r.csv", t_tmpdir());
  FILE *f = fopen(src, "w");
  T_ASSERT(f);
  fputs("y,v\n1,a\n0,b\n", f);
  fclose(f);
  T_ASSERT(chmod(ro, 0555) == 0);
  const char *old = getenv("XDG_CACHE_HOME");
  char *saved = old ? strdup(old) : NULL;
  setenv("XDG_CACHE_HOME", xdg, 1);
  snprintf(yaml, sizeof yaml, "dataset: {files: [ro/r.csv], label: y, split: none}\n");
  ameir_status st = ameir_dataset_open_yaml(&ds, NULL, yaml, t_tmpdir(), NULL, 0);
  if (saved) setenv("XDG_CACHE_HOME", saved, 1);
  else unsetenv("XDG_CACHE_HOME");
  free(saved);
  chmod(ro, 0755);
  T_OK(st);
  ameir_dataset_free(ds);
  char xa[1200];
  snprintf(xa, sizeof xa, "%s/ameir", xdg);
  T_ASSERT_EQ_INT(count_caches(ro), 0);
  T_ASSERT_EQ_INT(count_caches(xa), 1);
}

void test_data_cache__source_changes(void) {
  write_data(0);
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/cache", t_tmpdir());
  ameir_dataset_free(open_ok(0));
  ameir_dataset_free(open_ok(1));
  /* other content and time */
  write_data(1);
  td_touch(td_path("k.csv"), 1000000000);
  ameir_dataset *a = open_ok(0);
  ameir_dataset *b = open_ok(1);
  same(a, b);
  ameir_dataset_free(a);
  ameir_dataset_free(b);
  /* only the modification time of the second file */
  td_touch(td_path("k2.csv.gz"), 1000000001);
  ameir_dataset_free(open_ok(0));
  ameir_dataset_free(open_ok(1));
  /* a size change */
  td_write_gz("k2.csv.gz", "y,a,n,t\n1,a1,3,x1\n0,zz,4,\n1,a2,5,y\n");
  ameir_dataset *c = open_ok(0);
  T_ASSERT_EQ_INT(c->n_rows, 503);
  ameir_dataset_free(c);
  T_ASSERT_EQ_INT(count_caches(dir), 1);   /* rebuilt in place */
}

static void corrupt_at(const char *path, long off, const void *bytes, size_t n) {
  FILE *f = fopen(path, "r+b");
  T_ASSERT(f);
  fseek(f, off, SEEK_SET);
  fwrite(bytes, 1, n, f);
  fclose(f);
}

void test_data_cache__corrupt(void) {
  write_data(0);
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/cache", t_tmpdir());
  ameir_dataset *ref = open_ok(0);
  const char *cf = cache_file(dir);
  T_ASSERT(cf);
  char path[2048];
  snprintf(path, sizeof path, "%s", cf);
  struct stat st;
  T_ASSERT(stat(path, &st) == 0);
  long size = (long)st.st_size;
  /* truncated at several points, then rebuilt (and equal to the reference) */
  long cuts[] = {0, 10, 200, size / 2, size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    T_ASSERT(truncate(path, cuts[i]) == 0);
    ameir_dataset *d = open_ok(0);
    same(ref, d);
    ameir_dataset_free(d);
    ameir_dataset_free(open_ok(1));
  }
  /* flipped bytes: header, metadata, ids (out of range), labels, split rows, the tail */
  int32_t big = 0x7fffffff;
  float two = 2.0f;
  int64_t neg = -5;
  struct { long off; const void *b; size_t n; } hits[] = {
      {0, "XXXX", 4},            /* magic */
      {40, "\x01", 1},           /* header field under the header checksum */
      {256, "\xff\xff", 2},      /* metadata */
  };
  for (size_t i = 0; i < sizeof hits / sizeof *hits; i++) {
    corrupt_at(path, hits[i].off, hits[i].b, hits[i].n);
    ameir_dataset *d = open_ok(0);
    same(ref, d);
    ameir_dataset_free(d);
  }
  /* data sections: find them from the mapped reference layout */
  ameir_dataset *m = open_ok(1);
  long label_off = (long)((const char *)m->label - (const char *)m->map);
  long ids_off = (long)((const char *)m->fields[0].ids - (const char *)m->map);
  long multi_off = (long)((const char *)m->fields[2].ids - (const char *)m->map);
  long split_off = (long)((const char *)m->split_rows[0] - (const char *)m->map);
  ameir_dataset_free(m);
  struct { long off; const void *b; size_t n; } data_hits[] = {
      {ids_off + 40, &big, 4},
      {multi_off + 8, "\xfe\xff\xff\xff", 4},   /* -2: below the padding value */
      {label_off + 12, &two, 4},
      {split_off + 16, &neg, 8},
  };
  for (size_t i = 0; i < sizeof data_hits / sizeof *data_hits; i++) {
    corrupt_at(path, data_hits[i].off, data_hits[i].b, data_hits[i].n);
    ameir_dataset *d = open_ok(0);
    same(ref, d);
    ameir_dataset_free(d);
  }
  /* not a cache at all */
  FILE *f = fopen(path, "wb");
  T_ASSERT(f);
  for (int i = 0; i < 5000; i++) fputc(i * 31, f);
  fclose(f);
  ameir_dataset *d = open_ok(0);
  same(ref, d);
  ameir_dataset_free(d);
  ameir_dataset_free(ref);
}
