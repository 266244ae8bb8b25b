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
