/* Small public accessors of a dataset that the loaders do not need. */
#include "dataset.h"

AMEIR_API int32_t ameir_dataset_task(const ameir_dataset *ds) { return ds ? ds->task : -1; }
