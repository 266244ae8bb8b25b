/* libameir version: the one place the version numbers live (the Makefile reads them). */
#ifndef AMEIR_VERSION_H
#define AMEIR_VERSION_H

#define AMEIR_VERSION_MAJOR 0
#define AMEIR_VERSION_MINOR 2
#define AMEIR_VERSION_PATCH 0

#define AMEIR_STR_HELPER_(x) #x
#define AMEIR_STR_(x) AMEIR_STR_HELPER_(x)
/** "MAJOR.MINOR.PATCH" of the headers in use (compare with ameir_version_string()). */
#define AMEIR_VERSION_STRING \
  AMEIR_STR_(AMEIR_VERSION_MAJOR) "." AMEIR_STR_(AMEIR_VERSION_MINOR) "." AMEIR_STR_(AMEIR_VERSION_PATCH)
/** One integer, MAJOR*10000 + MINOR*100 + PATCH, for #if comparisons. */
#define AMEIR_VERSION_NUMBER (AMEIR_VERSION_MAJOR * 10000 + AMEIR_VERSION_MINOR * 100 + AMEIR_VERSION_PATCH)

#endif
