/* Parameter initialisers of appendix D, drawn on the host from the context's seed. */
#ifndef AMEIR_CORE_INIT_H
#define AMEIR_CORE_INIT_H

#include "../base/base.h"

/* U(-bound, bound) */
void ameir__init_uniform(ameir__rng *r, float *p, int64_t n, double bound);
/* N(0, std^2) */
void ameir__init_normal(ameir__rng *r, float *p, int64_t n, double std);
/* He normal for a [rows, fan_in] weight: N(0, 2 / fan_in) */
void ameir__init_he_normal(ameir__rng *r, float *w, int64_t rows, int64_t fan_in);
/* Orthogonal (Saxe et al.) [rows, cols] matrix scaled by gain: the Q of a QR decomposition of
 * a Gaussian matrix, with the sign fix that makes it uniformly distributed (as
 * torch.nn.init.orthogonal_). Rows are orthonormal when rows <= cols, columns otherwise.
 * Returns AMEIR_ENOMEM on allocation failure. */
ameir_status ameir__init_orthogonal(ameir__rng *r, float *w, int64_t rows, int64_t cols, double gain);

#endif
