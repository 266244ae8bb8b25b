/* An in-memory CTR dataset with a planted signal, built directly in the internal layout so the
 * model tests do not depend on the loaders. */
#ifndef AMEIR_TEST_SYNTH_H
#define AMEIR_TEST_SYNTH_H

#include "core/data/dataset.h"

/* n rows, nf univalent fields of vocabulary voc (+1 OOV), one multi field (len 3) if multi,
 * nd dense fields; label = Bernoulli(sigmoid(w[f][id] + pair(0,1) + dense)); modulo split. */
ameir_dataset *synth_dataset(ameir_context *ctx, int64_t n, int nf, int voc, int multi, int nd, uint64_t seed);
void synth_free(ameir_dataset *ds);

#endif

/* Like synth_dataset with nf >= 2 univalent fields plus two behaviour fields "hist_c0" (shares
 * C0's table) and "hist_c1" (shares C1's) of max length T, ragged (length 0..T); the label
 * depends on whether the target C0 occurs in the history, so Stage 1 has something to learn. */
ameir_dataset *synth_seq_dataset(ameir_context *ctx, int64_t n, int nf, int voc, int T, int min_len, uint64_t seed);

/* A retrieval dataset (leave-one-out, every prefix a training row, as torch_ref's userseq):
 * n_users users of 6..14 items over V items; each user walks item -> item + step (mod V, step
 * 1 or 2 per user), so the next item is predictable from the last ones. */
ameir_dataset *synth_retrieval(ameir_context *ctx, int64_t n_users, int V, int T, uint64_t seed);
/* The same from given sequences: user u's items are items[off[u] .. off[u + 1]) (each user >= 2
 * items); the dataset takes both arrays (malloc'd). Rows: every user's training rows, then the
 * valid rows, then the test rows, each in user order. */
ameir_dataset *synth_retrieval_seqs(ameir_context *ctx, int32_t *items, int64_t *off, int64_t n_users, int V, int T);
