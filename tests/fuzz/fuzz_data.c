/* libFuzzer target of the data layer (`make fuzz`): every input is
 *   - a data file, opened through a small YAML per format (criteo, csv with every kind of field,
 *     libfm positional and with ranges, userseq, useritem, session, ml100k, mlsmall, dmr), with
 *     on_bad_row error and skip, caching off; a dataset that opens is opened again with open_like
 *     and its own fields as the schema, which must give the same rows and ids;
 *   - YAML text for the config parser and the dataset schema reader (no file is read: a config
 *     may name any path), and an override string.
 * Any status is fine; a crash, a sanitizer report, a leak or a hang is a bug. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ameir/ameir.h"
#include "core/data/internal.h"
#include "core/io/config.h"

static char dir[256], path[300];

static const char *const configs[] = {
    "dataset: {files: [in], format: criteo, cache: false, split: modulo}\n",
    "dataset: {files: [in], format: criteo, cache: false, on_bad_row: skip, min_count: 2, dense_transform: bucket}\n",
    "dataset: {files: [in], format: csv, label: y, cache: false, on_bad_row: skip}\n",
    "dataset:\n"
    "  files: [in]\n"
    "  label: {name: y, values: positive}\n"
    "  cache: false\n"
    "  split: {method: random, seed: 3}\n"
    "  features:\n"
    "    - a\n"
    "    - {name: b, type: numeric, transform: minmax}\n"
    "    - {name: c, type: sequence, max_len: 3, share: a}\n"
    "    - {name: d, multi: true, max_len: 2, hash_buckets: 7}\n"
    "    - {name: e, type: numeric, transform: bucket, min_count: 2}\n",
    "dataset: {files: [in], format: tsv, header: false, columns: [y, a, b], label: y, cache: false,"
    " split: {method: column, column: b, test_values: ['1']}}\n",
    "dataset: {files: [in], format: libfm, cache: false, on_bad_row: skip}\n",
    "dataset: {files: [in], format: libfm, cache: false, label: {values: '-1/1'}, features: "
    "[{name: a, range: [0, 9]}, {name: b, multi: true, max_len: 3, range: [10, 99]}]}\n",
    "dataset: {files: [in], format: userseq, cache: false, max_len: 4}\n",
    "dataset: {files: [in], format: userseq, cache: false, vocab: count, min_count: 2, on_bad_row: skip}\n",
    "dataset: {files: [in], format: useritem, cache: false, max_len: 3, on_bad_row: skip}\n",
    "dataset: {files: [in], format: useritem, cache: false, vocab: count}\n",
    "dataset: {files: [in], format: session, cache: false, separator: ',', on_bad_row: skip}\n",
    "dataset: {files: [in], format: session, cache: false, header: false, columns: [SessionId, ItemId, Time],"
    " vocab: identity}\n",
    "dataset: {files: [in, in, in], format: ml100k, cache: false, min_count: 1, max_len: 3, on_bad_row: skip}\n",
    "dataset: {files: [in, in], format: mlsmall, cache: false, min_count: 1, on_bad_row: skip}\n",
    "dataset: {files: [in], format: dmr, cache: false, max_len: 5, split: modulo, on_bad_row: skip}\n",
    "dataset: {files: [in], format: dmr, cache: false, split: none}\n",
};

static void setup(void) {
  if (dir[0]) return;
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/ameir-fuzz-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(dir)) abort();
  snprintf(path, sizeof path, "%s/in", dir);
}

static void fuzz_yaml(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return;
  memcpy(text, data, size);
  text[size] = 0;
  ameir__config *cfg = NULL;
  if (ameir__config_parse(NULL, text, dir, &cfg) == AMEIR_OK) {
    int has = 0;
    for (int32_t i = 0; i < cfg->n; i++) has |= strncmp(cfg->kv[i].key, "dataset.", 8) == 0;
    ameir__schema s;
    ameir__schema_read(NULL, cfg, has ? "dataset." : "", &s);
    ameir__schema_free(&s);
    ameir__config_override(NULL, cfg, text);  /* the input as "key.path=value" */
    ameir__config_free(cfg);
  }
  free(text);
}

/* open_like with the dataset's own fields as the schema: the same rows and the same ids */
static void check_open_like(const ameir_dataset *ds, const char *config) {
  const char *files[] = {"in", "in", "in"};
  int32_t nf = 1;
  for (const char *p = strstr(config, "files: [in"); p && *p != ']'; p++) nf += *p == ',';
  ameir_dataset *again = NULL;
  if (ameir__dataset_open_like(&again, NULL, ds->fields, ds->n_fields, config, dir, files, nf) != AMEIR_OK)
    abort();
  if (again->n_rows != ds->n_rows || again->split_n[AMEIR_SPLIT_TEST] != ds->n_rows) abort();
  for (int32_t i = 0; i < ds->n_fields; i++) {
    const ameir__field *a = &ds->fields[i], *b = &again->fields[i];
    if (a->vocab != b->vocab) abort();
    if (a->ids && memcmp(a->ids, b->ids, (size_t)ds->n_rows * (size_t)a->max_len * sizeof *a->ids)) abort();
  }
  ameir_dataset_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup();
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
    ameir_dataset *ds = NULL;
    if (ameir_dataset_open_yaml(&ds, NULL, configs[i], dir, NULL, 0) == AMEIR_OK) {
      /* touch what a model reads */
      int64_t sum = 0;
      for (int32_t k = 0; k < 3; k++)
        for (int64_t r = 0; r < ds->split_n[k]; r++) sum += ds->split_rows[k][r] < ds->n_rows;
      if (sum != ds->n_rows) abort();
      if (ds->n_fields > 0) check_open_like(ds, configs[i]);  /* (libfm lines without features) */
      ameir_dataset_free(ds);
    }
  }
  fuzz_yaml(data, size);
  return 0;
}
