/* Public access to config values (include/ameir/config.h). */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ameir/config.h"

AMEIR_API ameir_status ameir_config_get_string(ameir_context *ctx, const char *path, const char *key,
                                               char *buf, size_t size) {
  if (!path || !key || !buf || !size) return ameir__error(ctx, AMEIR_EINVAL, "ameir_config_get_string: NULL argument");
  buf[0] = 0;
  ameir__config *cfg = NULL;
  ameir_status st = ameir__config_load(ctx, path, &cfg);
  if (st) return st;
  const char *v = ameir__config_get(cfg, key);
  if (v) snprintf(buf, size, "%s", v);
  else st = ameir__error(ctx, AMEIR_ENOTFOUND, "%s: no key '%s'", path, key);
  ameir__config_free(cfg);
  return st;
}
