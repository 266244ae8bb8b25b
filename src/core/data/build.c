/* Columns under construction -> the final dataset: vocabularies from the train rows (values
 * counted >= min_count, sorted by key, ids 1..k; 0 = OOV), ids remapped in place, train-only
 * transforms (minmax), split row lists. */
#define _DEFAULT_SOURCE
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- the key map ---- */

/* Tables of more than 4 MiB are mmap'ed with transparent huge pages asked for: lookups are random,
 * and with 4 KiB pages every one of them would also miss the TLB. */
#define KMAP_BIG ((uint64_t)4 << 20)

static ameir__kslot *slots_alloc(ameir_context *ctx, uint64_t n) {
  uint64_t bytes = n * sizeof(ameir__kslot);
  if (bytes < KMAP_BIG) return ameir__calloc(ctx, (size_t)n, sizeof(ameir__kslot));
  void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    ameir__error(ctx, AMEIR_ENOMEM, "out of memory allocating %llu bytes", (unsigned long long)bytes);
    return NULL;
  }
#ifdef MADV_HUGEPAGE
  madvise(p, (size_t)bytes, MADV_HUGEPAGE);
#endif
  return p;
}

static void slots_free(ameir__kslot *t, uint64_t n) {
  if (!t) return;
  if (n * sizeof(ameir__kslot) < KMAP_BIG) free(t);
  else munmap(t, (size_t)(n * sizeof(ameir__kslot)));
}

static ameir_status kmap_grow(ameir_context *ctx, ameir__kmap *m) {
  uint64_t nc = m->cap ? m->cap * 2 : 1024;
  ameir__kslot *t = slots_alloc(ctx, nc);
  if (!t) return AMEIR_ENOMEM;
  uint64_t mask = nc - 1;
  for (uint64_t i = 0; i < m->cap; i++) {
    if (!m->tab[i].idx1) continue;
    uint64_t h = ameir__kmap_hash(m->tab[i].key) & mask;
    while (t[h].idx1) h = (h + 1) & mask;
    t[h] = m->tab[i];
  }
  slots_free(m->tab, m->cap);
  m->tab = t;
  m->cap = nc;
  return AMEIR_OK;
}

ameir_status ameir__kmap_add(ameir_context *ctx, ameir__kmap *m, uint64_t key, uint64_t h, int count,
                             int32_t *local) {
  if (2 * (m->n + 1) > m->cap) {
    ameir_status st = kmap_grow(ctx, m);
    if (st) return st;
  }
  uint64_t mask = m->cap - 1;
  h &= mask;
  for (;;) {
    ameir__kslot *s = &m->tab[h];
    if (!s->idx1) break;
    if (s->key == key) {
      if (count && s->count != UINT32_MAX) s->count++;
      *local = (int32_t)(s->idx1 - 1);
      return AMEIR_OK;
    }
    h = (h + 1) & mask;
  }
  if (m->n >= (uint64_t)INT32_MAX - 1)
    return ameir__error(ctx, AMEIR_EFORMAT, "more than 2^31 distinct values in one field");
  m->tab[h].key = key;
  m->tab[h].idx1 = (uint32_t)(m->n + 1);
  m->tab[h].count = count ? 1 : 0;
  *local = (int32_t)m->n;
  m->n++;
  return AMEIR_OK;
}

void ameir__kmap_free(ameir__kmap *m) {
  slots_free(m->tab, m->cap);
  memset(m, 0, sizeof *m);
}

/* ---- builder ---- */

/* open_like: the config's fields must be the schema's (names, kinds, lengths, shares); the
 * transform parameters come from the schema. */
static ameir_status apply_fixed(ameir_context *ctx, ameir__schema *s) {
  if (s->nf != s->n_fixed)
    return ameir__error(ctx, AMEIR_ECONFIG, "%s: the config has %d fields, the schema %d", s->yaml, (int)s->nf,
                        (int)s->n_fixed);
  for (int32_t i = 0; i < s->nf; i++) {
    ameir__fspec *f = &s->f[i];
    const ameir__field *F = &s->fixed[i];
    const char *why = NULL;
    if (!F->name || strcmp(F->name, f->name)) why = "another name";
    else if (F->kind != f->kind) why = "another kind";
    /* ml100k / mlsmall size their genres field from the item table: take the schema's */
    if (!why && F->kind == AMEIR_FIELD_MULTI && s->format >= AMEIR__FMT_ML100K && F->max_len >= 1)
      f->max_len = F->max_len;
    if (!why && F->kind != AMEIR_FIELD_DENSE) {
      if (F->max_len != f->max_len) why = "another max_len";
      else if (strcmp(F->share, f->share)) why = "another share_embedding";
      else if (F->hash_buckets != f->hash_buckets) why = "other hash_buckets";
      else if (F->hash_buckets && F->vocab != (int64_t)F->hash_buckets + 1) why = "a bad vocabulary";
      else if (F->vocab < 1 || F->vocab > INT32_MAX) why = "a bad vocabulary";
      else if (!F->hash_buckets && !f->share[0] && F->vocab > 1 && !F->keys) why = "no vocabulary keys";
      f->transform = F->transform;  /* bucket codes become categorical ids */
    } else if (!why) {
      f->transform = F->transform;
      f->fill_na = F->fill_na;
    }
    if (why)
      return ameir__error(ctx, AMEIR_ECONFIG, "%s: field %d ('%s') differs from the schema's ('%s'): %s",
                          s->yaml, (int)i, f->name, F->name ? F->name : "?", why);
  }
  return AMEIR_OK;
}

ameir_status ameir__build_init(ameir_context *ctx, ameir__build *b, ameir__schema *s) {
  memset(b, 0, sizeof *b);
  if (s->fixed) {
    ameir_status st = apply_fixed(ctx, s);
    if (st) return st;
  }
  b->ctx = ctx;
  b->s = s;
  b->col = ameir__calloc(ctx, (size_t)(s->nf ? s->nf : 1), sizeof *b->col);
  return b->col ? AMEIR_OK : AMEIR_ENOMEM;
}

ameir_status ameir__build_reserve(ameir__build *b) {
  if (b->n < b->cap) return AMEIR_OK;
  int64_t nc = b->cap ? b->cap * 2 : 4096;
  ameir_context *ctx = b->ctx;
  float *l = ameir__realloc(ctx, b->label, (size_t)nc * sizeof *l);
  if (!l) return AMEIR_ENOMEM;
  b->label = l;
  uint8_t *p = ameir__realloc(ctx, b->part, (size_t)nc);
  if (!p) return AMEIR_ENOMEM;
  b->part = p;
  for (int32_t i = 0; i < b->s->nf; i++) {
    const ameir__fspec *f = &b->s->f[i];
    ameir__col *c = &b->col[i];
    if (f->kind == AMEIR_FIELD_DENSE) {
      float *v = ameir__realloc(ctx, c->values, (size_t)nc * sizeof *v);
      if (!v) return AMEIR_ENOMEM;
      c->values = v;
    } else {
      int32_t *v = ameir__realloc(ctx, c->ids, (size_t)nc * (size_t)f->max_len * sizeof *v);
      if (!v) return AMEIR_ENOMEM;
      c->ids = v;
    }
  }
  b->cap = nc;
  return AMEIR_OK;
}

void ameir__build_free(ameir__build *b) {
  if (!b->s) return;
  free(b->label);
  free(b->part);
  if (b->col) {
    for (int32_t i = 0; i < b->s->nf; i++) {
      free(b->col[i].ids);
      free(b->col[i].values);
      ameir__kmap_free(&b->col[i].map);
    }
    free(b->col);
  }
  memset(b, 0, sizeof *b);
}

typedef struct {
  uint64_t key;
  uint32_t local;
} kl_pair;

static int cmp_pair(const void *a, const void *b) {
  uint64_t x = ((const kl_pair *)a)->key, y = ((const kl_pair *)b)->key;
  return x < y ? -1 : x > y;
}

ameir_status ameir__build_vocab(ameir_context *ctx, const ameir__kmap *m, int32_t min_count, int32_t **remap,
                                uint64_t **keys, int64_t *vocab) {
  uint64_t k = 0;
  for (uint64_t i = 0; i < m->cap; i++) k += m->tab[i].idx1 && m->tab[i].count >= (uint32_t)min_count;
  kl_pair *pairs = ameir__malloc(ctx, (size_t)(k ? k : 1) * sizeof *pairs);
  *remap = ameir__calloc(ctx, (size_t)(m->n ? m->n : 1), sizeof **remap);
  *keys = ameir__malloc(ctx, (size_t)(k + 1) * sizeof **keys);
  if (!pairs || !*remap || !*keys) {
    free(pairs);
    return AMEIR_ENOMEM;
  }
  uint64_t o = 0;
  for (uint64_t i = 0; i < m->cap; i++)
    if (m->tab[i].idx1 && m->tab[i].count >= (uint32_t)min_count)
      pairs[o++] = (kl_pair){m->tab[i].key, m->tab[i].idx1 - 1};
  qsort(pairs, (size_t)k, sizeof *pairs, cmp_pair);
  (*keys)[0] = 0;
  for (uint64_t i = 0; i < k; i++) {
    (*remap)[pairs[i].local] = (int32_t)(i + 1);
    (*keys)[i + 1] = pairs[i].key;
  }
  *vocab = (int64_t)k + 1;
  free(pairs);
  return AMEIR_OK;
}

ameir_status ameir__fixed_remap(ameir_context *ctx, const ameir__kmap *m, const uint64_t *keys, int64_t vocab,
                                int32_t **remap) {
  /* the schema's keys sorted with their ids (a model file's keys are sorted already; do not rely
   * on it), then a binary search per value of the map */
  int64_t k = vocab > 1 ? vocab - 1 : 0;
  kl_pair *pairs = ameir__malloc(ctx, (size_t)(k ? k : 1) * sizeof *pairs);
  *remap = ameir__calloc(ctx, (size_t)(m->n ? m->n : 1), sizeof **remap);
  if (!pairs || !*remap) {
    free(pairs);
    return AMEIR_ENOMEM;
  }
  for (int64_t i = 0; i < k; i++) pairs[i] = (kl_pair){keys[i + 1], (uint32_t)(i + 1)};
  qsort(pairs, (size_t)k, sizeof *pairs, cmp_pair);
  for (uint64_t i = 0; i < m->cap; i++) {
    if (!m->tab[i].idx1) continue;
    uint64_t key = m->tab[i].key;
    int64_t lo = 0, hi = k - 1;
    int32_t id = 0;
    while (lo <= hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (pairs[mid].key == key) {
        id = (int32_t)pairs[mid].local;
        break;
      }
      if (pairs[mid].key < key) lo = mid + 1;
      else hi = mid - 1;
    }
    (*remap)[m->tab[i].idx1 - 1] = id;
  }
  free(pairs);
  return AMEIR_OK;
}

static inline ameir_status put_id(ameir__build *b, int32_t fi, const ameir__fspec *f, uint64_t key, int train,
                                  int32_t *dst) {
  uint64_t h = ameir__kmap_hash(key);
  if (f->hash_buckets) {
    *dst = 1 + (int32_t)(h % (uint64_t)f->hash_buckets);
    return AMEIR_OK;
  }
  return ameir__kmap_add(b->ctx, &b->col[f->vocab_of].map, key, h, train && f->vocab_of == fi, dst);
}

ameir_status ameir__build_commit(ameir__build *b, const ameir__row *row) {
  const ameir__schema *s = b->s;
  ameir_status st = ameir__build_reserve(b);
  if (st) return st;
  int64_t i = b->n;
  int train = row->part == AMEIR_SPLIT_TRAIN;
  b->label[i] = row->y;
  b->part[i] = (uint8_t)row->part;
  /* the maps are big and cold: fetch every field's slot before the first lookup */
  for (int32_t fi = 0; fi < s->nf; fi++) {
    const ameir__fspec *f = &s->f[fi];
    if (f->kind == AMEIR_FIELD_CATEGORICAL && f->max_len == 1 && !f->hash_buckets)
      ameir__kmap_prefetch(&b->col[f->vocab_of].map, ameir__kmap_hash(row->key[fi]));
  }
  for (int32_t fi = 0; fi < s->nf; fi++) {
    const ameir__fspec *f = &s->f[fi];
    ameir__col *c = &b->col[fi];
    if (f->kind == AMEIR_FIELD_DENSE) {
      double v = row->val[fi];
      if (f->transform == AMEIR_DENSE_LOG) v = log1p(v > 0 ? v : 0);
      if (f->transform == AMEIR_DENSE_MINMAX && train) {
        if (!c->have_minmax || v < c->tmin) c->tmin = v;
        if (!c->have_minmax || v > c->tmax) c->tmax = v;
        c->have_minmax = 1;
      }
      c->values[i] = (float)v;
    } else if (f->max_len == 1 && f->kind == AMEIR_FIELD_CATEGORICAL) {
      if ((st = put_id(b, fi, f, row->key[fi], train, &c->ids[i]))) return st;
    } else {
      int64_t L = f->max_len, cnt = row->mcnt[fi];
      int64_t start = f->keep_last && cnt > L ? cnt - L : 0;
      int64_t take = cnt < L ? cnt : L;
      int32_t *dst = c->ids + i * L;
      for (int64_t j = 0; j < take; j++)
        if ((st = put_id(b, fi, f, row->mkeys[row->moff[fi] + start + j], train, &dst[j]))) return st;
      for (int64_t j = take; j < L; j++) dst[j] = -1;
    }
  }
  b->n++;
  return AMEIR_OK;
}

ameir_status ameir__build_finish(ameir__build *b, ameir_dataset *ds) {
  ameir_context *ctx = b->ctx;
  const ameir__schema *s = b->s;
  int64_t n = b->n;
  int32_t nf = s->nf;
  ameir_status st = AMEIR_OK;
  int32_t **remap = ameir__calloc(ctx, (size_t)(nf ? nf : 1), sizeof *remap);
  ds->fields = ameir__calloc(ctx, (size_t)(nf ? nf : 1), sizeof *ds->fields);
  if (!remap || !ds->fields) {
    free(remap);
    return AMEIR_ENOMEM;
  }
  ds->n_fields = nf;
  for (int32_t i = 0; i < nf && !st; i++) {
    const ameir__fspec *f = &s->f[i];
    ameir__field *F = &ds->fields[i];
    F->name = ameir__strdup(ctx, f->name);
    if (!F->name) st = AMEIR_ENOMEM;
    F->kind = f->kind;
    F->column = f->col;
    F->max_len = f->max_len;
    F->hash_buckets = f->hash_buckets;
    F->min_count = f->min_count;
    memcpy(F->share, f->share, sizeof F->share);
    F->transform = f->transform;
    F->fill_na = (float)f->fill_na;
  }
  /* vocabularies of the fields that own one */
  for (int32_t i = 0; i < nf && !st; i++) {
    const ameir__fspec *f = &s->f[i];
    if (f->kind == AMEIR_FIELD_DENSE || f->hash_buckets || f->vocab_of != i) continue;
    if (s->fixed) {
      const ameir__field *F = &s->fixed[i];
      ameir__field *D = &ds->fields[i];
      st = ameir__fixed_remap(ctx, &b->col[i].map, F->keys, F->vocab, &remap[i]);
      if (!st && !(D->keys = ameir__malloc(ctx, (size_t)F->vocab * sizeof *D->keys))) st = AMEIR_ENOMEM;
      if (!st) {
        if (F->vocab > 1) memcpy(D->keys + 1, F->keys + 1, (size_t)(F->vocab - 1) * sizeof *D->keys);
        D->keys[0] = 0;
        D->vocab = F->vocab;
      }
      continue;
    }
    st = ameir__build_vocab(ctx, &b->col[i].map, f->min_count, &remap[i], &ds->fields[i].keys,
                            &ds->fields[i].vocab);
  }
  for (int32_t i = 0; i < nf && !st; i++) {
    const ameir__fspec *f = &s->f[i];
    ameir__field *F = &ds->fields[i];
    ameir__col *c = &b->col[i];
    if (f->kind == AMEIR_FIELD_DENSE) {
      float *v = c->values;
      if (f->transform == AMEIR_DENSE_MINMAX) {
        double lo = c->have_minmax ? c->tmin : 0, hi = c->have_minmax ? c->tmax : 1;
        if (s->fixed) lo = s->fixed[i].t_min, hi = s->fixed[i].t_max;
        F->t_min = (float)lo;
        F->t_max = (float)hi;
        double span = hi - lo;
        for (int64_t r = 0; r < n; r++) {
          double x = span > 0 ? ((double)v[r] - lo) / span : 0;
          v[r] = (float)(x < 0 ? 0 : x > 1 ? 1 : x);
        }
      }
      F->values = v;
      c->values = NULL;
      continue;
    }
    int64_t cells = n * f->max_len;
    int32_t *ids = c->ids;
    if (f->hash_buckets) {
      F->vocab = (int64_t)f->hash_buckets + 1;
    } else {
      const int32_t *r = remap[f->vocab_of];
      for (int64_t j = 0; j < cells; j++)
        if (ids[j] >= 0) ids[j] = r[ids[j]];
      if (f->vocab_of != i) {
        const ameir__field *T = &ds->fields[f->vocab_of];
        F->vocab = T->vocab;
        F->keys = ameir__malloc(ctx, (size_t)T->vocab * sizeof *F->keys);
        if (!F->keys) {
          st = AMEIR_ENOMEM;
          break;
        }
        memcpy(F->keys, T->keys, (size_t)T->vocab * sizeof *F->keys);
      }
    }
    int32_t *shrunk = realloc(ids, (size_t)(cells ? cells : 1) * sizeof *ids);
    F->ids = shrunk ? shrunk : ids;
    c->ids = NULL;
  }
  for (int32_t i = 0; i < nf; i++) free(remap[i]);
  free(remap);
  if (st) return st;
  /* labels and the split */
  float *lab = realloc(b->label, (size_t)(n ? n : 1) * sizeof *lab);
  ds->label = lab ? lab : b->label;
  b->label = NULL;
  ds->n_rows = n;
  int64_t cnt[3] = {0, 0, 0};
  for (int64_t r = 0; r < n; r++) cnt[b->part[r]]++;
  for (int k = 0; k < 3; k++) {
    ds->split_rows[k] = ameir__malloc(ctx, (size_t)(cnt[k] ? cnt[k] : 1) * sizeof(int64_t));
    if (!ds->split_rows[k]) return AMEIR_ENOMEM;
    ds->split_n[k] = 0;
  }
  for (int64_t r = 0; r < n; r++) {
    int k = b->part[r];
    ds->split_rows[k][ds->split_n[k]++] = r;
  }
  ds->skipped = b->skipped;
  ds->schema_hash = s->hash;
  return AMEIR_OK;
}
