/* libameir: reading values from the YAML configuration files the library uses, so programs can
 * keep their own settings (model name, output directory) in the same file. */
#ifndef AMEIR_CONFIG_H
#define AMEIR_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Reads one scalar of a YAML file by its dotted key ("train.model", "dataset.files.0").
 *  @param buf receives the NUL-terminated value (truncated to size).
 *  @return AMEIR_OK; AMEIR_ENOTFOUND (no such key: buf is set to ""); AMEIR_EIO; AMEIR_ECONFIG
 *  (YAML syntax error, with file and line); AMEIR_EINVAL (NULL argument, or size 0).
 *  Thread safety: safe. Since 0.1. */
AMEIR_API ameir_status ameir_config_get_string(ameir_context *ctx, const char *path, const char *key,
                                               char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
