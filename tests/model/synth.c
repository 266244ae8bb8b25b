#define _POSIX_C_SOURCE 200809L
#include "synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdlib.h>

ameir_dataset *synth_dataset(ameir_context *ctx, int64_t n, int nf, int voc, int multi, int nd, uint64_t seed) {
  ameir_dataset *ds = calloc(1, sizeof *ds);
  int total = nf + (multi ? 1 : 0) + nd;
  ds->ctx = ctx;
  ds->n_fields = total;
  ds->fields = calloc((size_t)total, sizeof *ds->fields);
  ds->n_rows = n;
  float *label = malloc(sizeof(float) * (size_t)n);
  ameir__rng r;
  ameir__rng_seed(&r, seed, 7);
  double *w = malloc(sizeof(double) * (size_t)(nf * (voc + 1)));
  for (int i = 0; i < nf * (voc + 1); i++) w[i] = ameir__rng_normal(&r) * 0.8;
  int32_t **ids = calloc((size_t)total, sizeof *ids);
  float **vals = calloc((size_t)total, sizeof *vals);
  for (int f = 0; f < total; f++) {
    ameir__field *fd = &ds->fields[f];
    char name[16];
    snprintf(name, sizeof name, f < nf ? "C%d" : (multi && f == nf) ? "M%d" : "D%d", f);
    fd->name = strdup(name);
    if (f < nf) { fd->kind = AMEIR_FIELD_CATEGORICAL; fd->vocab = voc + 1; fd->max_len = 1; ids[f] = malloc(4 * (size_t)n); }
    else if (multi && f == nf) { fd->kind = AMEIR_FIELD_MULTI; fd->vocab = voc + 1; fd->max_len = 3; ids[f] = malloc(4 * 3 * (size_t)n); }
    else { fd->kind = AMEIR_FIELD_DENSE; vals[f] = malloc(4 * (size_t)n); }
  }
  for (int64_t i = 0; i < n; i++) {
    double logit = -0.3;
    int32_t c0 = 0, c1 = 0;
    for (int f = 0; f < nf; f++) {
      /* Zipf-ish: square of a uniform favours small ids */
      double u = ameir__rng_uniform(&r);
      int32_t id = 1 + (int32_t)(u * u * voc);
      if (id > voc) id = voc;
      if (ameir__rng_uniform(&r) < 0.02) id = 0;
      ids[f][i] = id;
      logit += w[f * (voc + 1) + id];
      if (f == 0) c0 = id;
      if (f == 1) c1 = id;
    }
    if (nf >= 2) logit += ((c0 + c1) % 3 == 0) ? 1.2 : -0.4;   /* a planted interaction */
    if (multi) {
      int len = 1 + (int)ameir__rng_below(&r, 3);
      for (int l = 0; l < 3; l++) {
        int32_t id = l < len ? 1 + (int32_t)ameir__rng_below(&r, (uint64_t)voc) : -1;
        ids[nf][i * 3 + l] = id;
        if (id > 0 && id % 2) logit += 0.3;
      }
    }
    for (int f = nf + (multi ? 1 : 0); f < total; f++) {
      float v = (float)ameir__rng_uniform(&r);
      vals[f][i] = v;
      logit += 1.5 * (v - 0.5);
    }
    label[i] = ameir__rng_uniform(&r) < 1.0 / (1.0 + exp(-logit)) ? 1.f : 0.f;
  }
  for (int f = 0; f < total; f++) { ds->fields[f].ids = ids[f]; ds->fields[f].values = vals[f]; }
  free(ids);
  free(vals);
  free(w);
  ds->label = label;
  for (int s = 0; s < 3; s++) ds->split_rows[s] = malloc(8 * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    int s = i % 10 == 9 ? 2 : i % 10 == 8 ? 1 : 0;
    ds->split_rows[s][ds->split_n[s]++] = i;
  }
  ds->schema_hash = 42;
  ds->target_field = -1;
  return ds;
}

void synth_free(ameir_dataset *ds) {
  if (!ds) return;
  for (int f = 0; f < ds->n_fields; f++) {
    free(ds->fields[f].name);
    free((void *)ds->fields[f].ids);
    free((void *)ds->fields[f].values);
    free(ds->fields[f].keys);
  }
  free(ds->fields);
  free((void *)ds->label);
  free((void *)ds->user_off); free((void *)ds->items); free((void *)ds->row_user); free((void *)ds->row_pos);
  for (int s = 0; s < 3; s++) free(ds->split_rows[s]);
  free(ds);
}

ameir_dataset *synth_seq_dataset(ameir_context *ctx, int64_t n, int nf, int voc, int T, int min_len, uint64_t seed) {
  ameir_dataset *ds = synth_dataset(ctx, n, nf, voc, 0, 0, seed);
  int old = ds->n_fields;
  ds->fields = realloc(ds->fields, sizeof *ds->fields * (size_t)(old + 2));
  ds->n_fields = old + 2;
  ameir__rng r;
  ameir__rng_seed(&r, seed, 99);
  float *label = (float *)ds->label;
  for (int k = 0; k < 2; k++) {
    ameir__field *f = &ds->fields[old + k];
    memset(f, 0, sizeof *f);
    f->name = strdup(k ? "hist_c1" : "hist_c0");
    f->kind = AMEIR_FIELD_SEQUENCE;
    f->vocab = voc + 1;
    f->max_len = T;
    snprintf(f->share, sizeof f->share, "%s", k ? "C1" : "C0");
    f->ids = malloc(sizeof(int32_t) * (size_t)(n * T));
  }
  int32_t *h0 = (int32_t *)ds->fields[old].ids, *h1 = (int32_t *)ds->fields[old + 1].ids;
  const int32_t *c0 = ds->fields[0].ids;
  for (int64_t i = 0; i < n; i++) {
    int len = min_len + (int)ameir__rng_below(&r, (uint64_t)(T - min_len) + 1);
    int hit = 0;
    for (int t = 0; t < T; t++) {
      int32_t a = -1, b = -1;
      if (t < len) {
        a = 1 + (int32_t)ameir__rng_below(&r, (uint64_t)voc);
        b = 1 + (int32_t)ameir__rng_below(&r, (uint64_t)voc);
        hit |= a == c0[i];
      }
      h0[i * T + t] = a;
      h1[i * T + t] = b;
    }
    /* re-draw the label with a strong behaviour signal */
    double logit = hit ? 2.5 : -2.5;
    label[i] = ameir__rng_uniform(&r) < 1.0 / (1.0 + exp(-logit)) ? 1.f : 0.f;
  }
  return ds;
}

ameir_dataset *synth_retrieval(ameir_context *ctx, int64_t n_users, int V, int T, uint64_t seed) {
  ameir__rng r;
  ameir__rng_seed(&r, seed, 5);
  int64_t *off = malloc(sizeof(int64_t) * (size_t)(n_users + 1));
  int32_t *items = malloc(sizeof(int32_t) * (size_t)(n_users * 14));
  off[0] = 0;
  for (int64_t u = 0; u < n_users; u++) {
    int m = 6 + (int)ameir__rng_below(&r, 9), step = 1 + (int)ameir__rng_below(&r, 2);
    int32_t it = 1 + (int32_t)ameir__rng_below(&r, (uint64_t)V);
    for (int i = 0; i < m; i++) {
      items[off[u] + i] = it;
      it = (int32_t)((it - 1 + step) % V) + 1;
      if (ameir__rng_uniform(&r) < 0.1) it = 1 + (int32_t)ameir__rng_below(&r, (uint64_t)V);   /* noise */
    }
    off[u + 1] = off[u] + m;
  }
  return synth_retrieval_seqs(ctx, items, off, n_users, V, T);
}

ameir_dataset *synth_retrieval_seqs(ameir_context *ctx, int32_t *items, int64_t *off, int64_t n_users, int V, int T) {
  int64_t n_rows = 0;
  for (int64_t u = 0; u < n_users; u++) n_rows += off[u + 1] - off[u] - 1;   /* t = 1..m-1: m-3 training prefixes, one valid, one test */
  ameir_dataset *ds = calloc(1, sizeof *ds);
  ds->ctx = ctx;
  ds->task = AMEIR_TASK_RETRIEVAL;
  ds->n_fields = 2;
  ds->fields = calloc(2, sizeof *ds->fields);
  ds->target_field = 1;
  ameir__field *h = &ds->fields[0], *t = &ds->fields[1];
  h->name = strdup("hist"); h->kind = AMEIR_FIELD_SEQUENCE; h->vocab = V + 1; h->max_len = T;
  snprintf(h->share, sizeof h->share, "item");
  t->name = strdup("item"); t->kind = AMEIR_FIELD_CATEGORICAL; t->vocab = V + 1; t->max_len = 1;
  int32_t *hid = malloc(sizeof(int32_t) * (size_t)(n_rows * T)), *tid = malloc(sizeof(int32_t) * (size_t)n_rows);
  int32_t *ru = malloc(sizeof(int32_t) * (size_t)n_rows), *rp = malloc(sizeof(int32_t) * (size_t)n_rows);
  for (int s = 0; s < 3; s++) ds->split_rows[s] = malloc(sizeof(int64_t) * (size_t)n_rows);
  int64_t row = 0;
  for (int pass = 0; pass < 3; pass++)   /* train rows first, then valid, then test (file order) */
    for (int64_t u = 0; u < n_users; u++) {
      int64_t m = off[u + 1] - off[u];
      for (int64_t tt = 1; tt < m; tt++) {
        int part = tt == m - 1 ? 2 : tt == m - 2 ? 1 : 0;
        if (part != pass) continue;
        int64_t first = tt > T ? tt - T : 0;
        for (int k = 0; k < T; k++) hid[row * T + k] = first + k < tt ? items[off[u] + first + k] : -1;
        tid[row] = items[off[u] + tt];
        ru[row] = (int32_t)u;
        rp[row] = (int32_t)tt;
        ds->split_rows[part][ds->split_n[part]++] = row;
        row++;
      }
    }
  h->ids = hid;
  t->ids = tid;
  ds->n_rows = n_rows;
  ds->n_users = n_users;
  ds->user_off = off;
  ds->items = items;
  ds->row_user = ru;
  ds->row_pos = rp;
  ds->schema_hash = 43;
  return ds;
}
