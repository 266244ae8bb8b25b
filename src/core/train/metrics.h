/* Evaluation metrics over host arrays. */
#ifndef AMEIR_CORE_METRICS_H
#define AMEIR_CORE_METRICS_H

#include <stdint.h>

/* Exact ROC AUC with average ranks for ties (equals sklearn's roc_auc_score). NaN when one
 * class is absent. Sorts a copy; returns -2 on allocation failure. */
double ameir__auc(const float *y, const float *p, int64_t n);
/* Mean binary log loss with p clipped to [1e-7, 1 - 1e-7] (as torch_ref). */
double ameir__logloss(const float *y, const float *p, int64_t n);

#endif
