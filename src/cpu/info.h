/* What the CPU backend runs on, for ameir_build_info(): the BLAS library and its configuration,
 * and the CPU features detected at run time. Declared here so that core code can print it without
 * including a BLAS header (DESIGN.md section 2: src/core reaches BLAS only through src/cpu). */
#ifndef AMEIR_CPU_INFO_H
#define AMEIR_CPU_INFO_H

/* One line, no newline: "OpenBLAS 0.3.21 ... (core Haswell, openmp); cpu: avx2 yes, ...".
 * Static storage, built on the first call; thread safe; never NULL. */
const char *ameir__cpu_describe(void);

#endif
