/* Helpers of the data tests: small files in the test's temporary directory (plain, gzip, xz)
 * and opening a dataset from YAML text with its cache kept in that directory. */
#ifndef AMEIR_TESTS_DATA_HELPERS_H
#define AMEIR_TESTS_DATA_HELPERS_H

#include <stdint.h>

#include "ameir/dataset.h"
#include "core/data/dataset.h"

/* Writes text to t_tmpdir()/name; returns the full path (static storage, 8 slots in turn). */
const char *td_write(const char *name, const char *text);
const char *td_write_gz(const char *name, const char *text);
const char *td_write_xz(const char *name, const char *text);
/* Path of t_tmpdir()/name (same storage rules). */
const char *td_path(const char *name);
/* Opens YAML text with base_dir = t_tmpdir() and "cache.dir=<tmpdir>/cache" plus the given
 * overrides (NULL-terminated list, may be NULL). */
ameir_status td_open(ameir_dataset **ds, ameir_context *ctx, const char *yaml, const char *const *ov);
/* Last error text (context or thread). */
const char *td_err(ameir_context *ctx);
/* Absolute path of the shared data directory, or NULL. */
const char *td_data_dir(void);
/* Opens examples/configs/<name>.yaml on the real data with the cache in t_tmpdir()/cache (or off). */
ameir_status td_open_example(ameir_dataset **ds, ameir_context *ctx, const char *name, int cache);
/* Sets a file's modification time to `sec` seconds after the epoch. */
void td_touch(const char *path, long sec);

#endif
