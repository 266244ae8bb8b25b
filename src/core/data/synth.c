/* A synthetic CTR dataset drawn from a known teacher (search issue, section 5): tests and the
 * demo use it where the real data is absent, and the search can be checked against the
 * answers planted in it.
 *
 * Teacher: 8 categorical fields c0..c7 with Zipf-like frequencies; each value has a first-order
 * weight and a latent vector (dim 4); the logit adds the first-order weights, three planted
 * Hadamard interactions (c0, c1), (c2, c3), (c4, c5, c6) as the sum of the product of their
 * latent vectors, and a behaviour term: the user's history `hist` (items, most recent last)
 * follows a planted walk item -> item + step, and the target item `item` continuing that walk
 * raises the click probability. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"

#define N_CAT 8
#define LAT 4
#define N_ITEMS 200
#define HIST_T 10

static const int VOCAB[N_CAT] = {60, 40, 120, 30, 80, 25, 50, 300};
static const int PLANT[3][3] = {{0, 1, -1}, {2, 3, -1}, {4, 5, 6}};

/* Zipf-like rank in [0, v): the square of a uniform favours small ranks */
static int zipf(ameir__rng *r, int v) {
  double u = ameir__rng_uniform(r);
  int k = (int)(u * u * u * v);
  return k < v ? k : v - 1;
}

AMEIR_API ameir_status ameir_dataset_generate(ameir_context *ctx, const char *dir, int64_t rows, uint64_t seed) {
  if (!dir || rows < 100 || rows > 100000000)
    return ameir__error(ctx, AMEIR_EINVAL, "ameir_dataset_generate: a directory and 100..1e8 rows are needed");
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) return ameir__error(ctx, AMEIR_EIO, "%s: cannot create: %s", dir, strerror(errno));
  ameir__rng r;
  ameir__rng_seed(&r, seed, 77);
  /* the teacher */
  double *w1[N_CAT], *lat[N_CAT];
  for (int f = 0; f < N_CAT; f++) {
    w1[f] = malloc(sizeof(double) * (size_t)VOCAB[f]);
    lat[f] = malloc(sizeof(double) * (size_t)(VOCAB[f] * LAT));
    if (!w1[f] || !lat[f]) {
      for (int g = 0; g <= f; g++) { free(w1[g]); free(lat[g]); }
      return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
    }
    for (int i = 0; i < VOCAB[f]; i++) w1[f][i] = 0.3 * ameir__rng_normal(&r);
    for (int i = 0; i < VOCAB[f] * LAT; i++) lat[f][i] = 0.9 * ameir__rng_normal(&r);
  }
  size_t dl = strlen(dir);
  char *csv = malloc(dl + 32), *yaml = malloc(dl + 32), *tmp = malloc(dl + 48);
  ameir_status st = AMEIR_OK;
  FILE *f = NULL;
  if (!csv || !yaml || !tmp) { st = ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); goto out; }
  snprintf(csv, dl + 32, "%s/synthetic.csv", dir);
  snprintf(yaml, dl + 32, "%s/synthetic.yaml", dir);
  snprintf(tmp, dl + 48, "%s/synthetic.csv.tmp", dir);
  f = fopen(tmp, "w");
  if (!f) { st = ameir__error(ctx, AMEIR_EIO, "%s: cannot create", tmp); goto out; }
  fprintf(f, "label");
  for (int c = 0; c < N_CAT; c++) fprintf(f, ",c%d", c);
  fprintf(f, ",item,hist\n");
  for (int64_t i = 0; i < rows; i++) {
    int id[N_CAT];
    double logit = -0.8;
    for (int c = 0; c < N_CAT; c++) { id[c] = zipf(&r, VOCAB[c]); logit += w1[c][id[c]]; }
    for (int p = 0; p < 3; p++) {
      double s = 0;
      for (int k = 0; k < LAT; k++) {
        double prod = 1;
        for (int j = 0; j < 3 && PLANT[p][j] >= 0; j++) prod *= lat[PLANT[p][j]][id[PLANT[p][j]] * LAT + k];
        s += prod;
      }
      logit += 1.2 * s;
    }
    /* behaviour: a walk of 1..HIST_T items with a per-row step of 1 or 2 */
    int len = 1 + (int)ameir__rng_below(&r, HIST_T), step = 1 + (int)ameir__rng_below(&r, 2);
    int it = 1 + (int)ameir__rng_below(&r, N_ITEMS), hist[HIST_T];
    for (int t = 0; t < len; t++) { hist[t] = it; it = (it - 1 + step) % N_ITEMS + 1; }
    int follows = ameir__rng_uniform(&r) < 0.5;
    int target = follows ? it : 1 + (int)ameir__rng_below(&r, N_ITEMS);
    if (target == it) logit += 1.5;
    int y = ameir__rng_uniform(&r) < 1.0 / (1.0 + exp(-logit));
    fprintf(f, "%d", y);
    for (int c = 0; c < N_CAT; c++) fprintf(f, ",v%d", id[c]);
    fprintf(f, ",%d,", target);
    for (int t = 0; t < len; t++) fprintf(f, "%s%d", t ? "|" : "", hist[t]);
    fputc('\n', f);
  }
  if (fclose(f) != 0) { f = NULL; st = ameir__error(ctx, AMEIR_EIO, "%s: write failed", tmp); goto out; }
  f = NULL;
  if (rename(tmp, csv) != 0) { st = ameir__error(ctx, AMEIR_EIO, "%s: cannot rename", csv); goto out; }
  f = fopen(yaml, "w");
  if (!f) { st = ameir__error(ctx, AMEIR_EIO, "%s: cannot create", yaml); goto out; }
  fprintf(f,
          "# Written by ameir_dataset_generate (seed %llu, %lld rows). Planted interactions of the teacher:\n"
          "# (c0, c1), (c2, c3), (c4, c5, c6); the target item continuing the walk of `hist` raises the\n"
          "# click probability.\n"
          "dataset:\n"
          "  name: synthetic\n"
          "  files: [synthetic.csv]\n"
          "  format: csv\n"
          "  header: true\n"
          "  label: label\n"
          "  features:\n"
          "    - {name: [c0, c1, c2, c3, c4, c5, c6, c7], type: categorical}\n"
          "    - {name: item, type: categorical}\n"
          "    - {name: hist, type: sequence, separator: \"|\", max_len: %d, share_embedding: item}\n"
          "  split: {method: modulo}\n"
          "\n"
          "train: {model: deepfm, emb: 8, mlp: \"64:relu,32:relu\", batch: 256, lr: 1e-3, epochs: 2}\n",
          (unsigned long long)seed, (long long)rows, HIST_T);
  if (fclose(f) != 0) st = ameir__error(ctx, AMEIR_EIO, "%s: write failed", yaml);
  f = NULL;
out:
  if (f) fclose(f);
  free(csv); free(yaml); free(tmp);
  for (int c = 0; c < N_CAT; c++) { free(w1[c]); free(lat[c]); }
  return st;
}
