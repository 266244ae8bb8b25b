SHELL := /bin/bash
# libameir build. `make` builds the libraries and the `ameir` program; `make test` runs the unit
# tests under AddressSanitizer + UndefinedBehaviorSanitizer; `make demo` runs the main job.
# See README.md. Variables: PREFIX, LIBDIR, INCLUDEDIR, PKGCONFIGDIR, DESTDIR, CC, NVCC,
# CUDA_ARCHS.

VERSION_H := include/ameir/version.h
V_MAJOR := $(shell sed -n 's/^\#define AMEIR_VERSION_MAJOR \([0-9]*\)/\1/p' $(VERSION_H))
V_MINOR := $(shell sed -n 's/^\#define AMEIR_VERSION_MINOR \([0-9]*\)/\1/p' $(VERSION_H))
V_PATCH := $(shell sed -n 's/^\#define AMEIR_VERSION_PATCH \([0-9]*\)/\1/p' $(VERSION_H))
VERSION := $(V_MAJOR).$(V_MINOR).$(V_PATCH)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
# GPU architectures of the CUDA module: real code for sm_80 and sm_90, PTX for newer chips.
CUDA_ARCHS ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90

DEPS_PKGS := yaml-0.1 liblzma zlib
BLAS_CFLAGS := $(shell $(PKG_CONFIG) --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-openmp)
BLAS_LIBS := $(shell $(PKG_CONFIG) --libs openblas 2>/dev/null || echo -lopenblas)
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEPS_PKGS) 2>/dev/null)
DEP_LIBS := $(shell $(PKG_CONFIG) --libs $(DEPS_PKGS) 2>/dev/null || echo -lyaml -llzma -lz)

OPT ?= -O2
WARN := -Wall -Wextra -Werror -Wno-unused-parameter
BASE_CFLAGS := -std=c11 $(WARN) -g -fPIC -fopenmp -Iinclude -Isrc -DAMEIR_BUILDING
LIB_CFLAGS := $(BASE_CFLAGS) $(OPT) -fvisibility=hidden $(BLAS_CFLAGS) $(DEP_CFLAGS) $(CFLAGS)
LIB_LIBS := $(BLAS_LIBS) $(DEP_LIBS) -fopenmp -lm -ldl -lpthread

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

CORE_SRC := $(sort $(shell find src/core -name '*.c'))
CPU_SRC := $(sort $(wildcard src/cpu/*.c))
LIB_SRC := $(CORE_SRC) $(CPU_SRC)
LIB_OBJ := $(patsubst src/%.c,build/obj/%.o,$(LIB_SRC))
SAN_OBJ := $(patsubst src/%.c,build/san/%.o,$(LIB_SRC))

TEST_SRC := $(sort $(shell find tests -mindepth 2 -name '*.c' -not -path 'tests/fuzz/*' -not -path 'tests/gpu/*' -not -path 'tests/shadow/*' -not -path 'tests/header/*'))

SONAME := libameir.so.$(V_MAJOR)
SHLIB := lib/libameir.so.$(VERSION)
STLIB := lib/libameir.a
CUDA_SRC := $(wildcard src/cuda/*.cu)
CUDA_LIB := lib/libameir_cuda.so

EXAMPLES_SRC := $(sort $(wildcard examples/ameir/*.c))

.PHONY: all lib cuda test test-fast check check-exports header-test install uninstall clean deps demo bench fuzz \
        abi-dump abi-check

all: lib build/ameir cuda

lib: $(SHLIB) lib/libameir.so lib/libameir.so.$(V_MAJOR) $(STLIB)

build/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

build/san/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O1 $(SAN) $(BLAS_CFLAGS) $(DEP_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(SHLIB): $(LIB_OBJ) lib/libameir.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libameir.map -Wl,--no-undefined \
	  -o $@ $(LIB_OBJ) $(LIB_LIBS) $(LDFLAGS)

lib/libameir.so.$(V_MAJOR): $(SHLIB)
	ln -sf libameir.so.$(VERSION) $@
lib/libameir.so: $(SHLIB)
	ln -sf libameir.so.$(VERSION) $@

$(STLIB): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

# The `ameir` program, linked against the shared library in lib/.
build/ameir: $(EXAMPLES_SRC) $(wildcard examples/ameir/*.h) lib
	@mkdir -p build
	$(CC) -std=c11 $(WARN) $(OPT) -g -Iinclude -o $@ $(EXAMPLES_SRC) -Llib -lameir -Wl,-rpath,'$$ORIGIN/../lib' -lm

ifneq ($(NVCC),)
cuda: $(CUDA_LIB)
NVCC_FLAGS := -O2 -std=c++17 -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror \
              -Werror all-warnings -Iinclude -Isrc $(CUDA_ARCHS) $(NVCCFLAGS)
CUDA_OBJ := $(patsubst src/cuda/%.cu,build/cuda/%.o,$(CUDA_SRC))
build/cuda/%.o: src/cuda/%.cu src/cuda/cu.h $(wildcard src/cuda/*.cuh) src/core/backend/ops.h src/core/backend/module.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@
# The CUDA runtime is linked statically (nvcc's default), cuBLAS dynamically; cuDNN is not
# linked (no op uses it; module.cu looks it up with dlopen to report its version). The version
# script exports the entry point only; -z defs catches an unresolved symbol at build time.
$(CUDA_LIB): $(CUDA_OBJ) src/cuda/module.map
	$(NVCC) $(CUDA_ARCHS) -shared -Xlinker --version-script=src/cuda/module.map \
	  -Xlinker -z,defs -o $@ $(CUDA_OBJ) -lcublas -ldl
	@bad=$$(nm -D --defined-only $@ | awk '{print $$3}' | grep -vx ameir_backend_module_v1 || true); \
	if [ -n "$$bad" ]; then echo "$@ must export its entry point only, not:"; echo "$$bad"; \
	  rm -f $@; exit 1; fi
else
cuda:
	@echo "nvcc not found: skipped lib/libameir_cuda.so (the CPU backend is complete without it)"
endif

# ---- benchmarks (programs that print figures; bench/*.sh run them next to the reference) ----
build/serve_bench: bench/serve_bench.c lib
	@mkdir -p build
	$(CC) -std=c11 $(WARN) $(OPT) -Iinclude -o $@ bench/serve_bench.c -Llib -lameir -Wl,-rpath,'$$ORIGIN/../lib'

# the CPU backend's GEMM next to sgemm (internal vtable: links the static library)
build/gemm_bench: bench/gemm_bench.c lib
	@mkdir -p build
	$(CC) -std=c11 $(WARN) $(OPT) -Iinclude -Isrc $(BLAS_CFLAGS) -o $@ bench/gemm_bench.c lib/libameir.a $(LIB_LIBS)

bench: all build/serve_bench build/gemm_bench
	build/gemm_bench 2
	bash bench/bench_ctr.sh 2 1
	bash bench/bench_seq.sh 2 1

# ---- tests ----
build/tests/registry.c: $(TEST_SRC) tests/gen_registry.sh
	@mkdir -p build/tests
	sh tests/gen_registry.sh $(TEST_SRC) > $@

build/tests/run-san: $(SAN_OBJ) $(TEST_SRC) tests/runner.c tests/test.h build/tests/registry.c
	$(CC) $(BASE_CFLAGS) -O1 $(SAN) -Itests $(BLAS_CFLAGS) $(DEP_CFLAGS) -o $@ tests/runner.c \
	  build/tests/registry.c $(TEST_SRC) $(SAN_OBJ) $(LIB_LIBS)

build/tests/run: $(LIB_OBJ) $(TEST_SRC) tests/runner.c tests/test.h build/tests/registry.c
	$(CC) $(BASE_CFLAGS) $(OPT) -Itests $(BLAS_CFLAGS) $(DEP_CFLAGS) -o $@ tests/runner.c \
	  build/tests/registry.c $(TEST_SRC) $(LIB_OBJ) $(LIB_LIBS)

# `make test`: everything, sanitizers on. T=name filters tests by substring.
test: deps-check all shadow build/tests/run-san
	@$(MAKE) --no-print-directory check-exports abi-check header-test check
	set -o pipefail; ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 OMP_WAIT_POLICY=passive \
	  ./build/tests/run-san $(T) 2>&1 | tee build/tests/last.log

test-fast: shadow build/tests/run
	./build/tests/run $(T)

# `make check`: install into a temporary prefix, build and run examples/predict.c against it
# through pkg-config (shared and static), uninstall, check nothing is left (tests/install/run.sh).
check:
	@MAKE="$(MAKE)" CC="$(CC)" bash tests/install/run.sh

check-exports: $(SHLIB)
	@bad=$$(nm -D --defined-only $(SHLIB) | awk '{print $$3}' | grep -v '^ameir_' | grep -v '^AMEIR_' || true); \
	if [ -n "$$bad" ]; then echo "non-ameir symbols exported:"; echo "$$bad"; exit 1; fi; \
	if readelf -d $(SHLIB) | grep NEEDED | grep -Ei 'cuda|cublas|cudnn'; then \
	  echo "libameir.so must not link CUDA"; exit 1; fi; \
	echo "check-exports: only ameir_* symbols exported, no CUDA NEEDED"

HEADERS := $(sort $(wildcard include/ameir/*.h))
header-test:
	@mkdir -p build/hdr
	@for h in $(HEADERS); do b=$$(basename $$h .h); \
	  printf '#include "ameir/%s.h"\nint main(void){return 0;}\n' $$b > build/hdr/$$b.c; \
	  cp build/hdr/$$b.c build/hdr/$$b.cpp; \
	  $(CC) -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c build/hdr/$$b.c -o build/hdr/$$b.c99.o || exit 1; \
	  $(CC) -std=c11 -Wall -Wextra -pedantic -Werror -Iinclude -c build/hdr/$$b.c -o build/hdr/$$b.c11.o || exit 1; \
	  c++ -std=c++11 -Wall -Wextra -pedantic -Werror -Iinclude -c build/hdr/$$b.cpp -o build/hdr/$$b.cxx.o || exit 1; \
	done; echo "header-test: each header compiles alone as C99, C11 and C++11"

# ---- ABI gate (STYLE.md "ABI discipline", abi/README.md) ----
# `make abi-dump` writes the baseline abi/libameir.abi with abidw (Debian abigail-tools): the
# exported functions with their types, without paths, source locations or DT_NEEDED, so the
# same sources give the same file anywhere. `make abi-check` (part of `make test`) compares
# the built library with it through abidiff and fails on anything but added functions.
ABIDW ?= abidw
ABIDIFF ?= abidiff
ABI_BASELINE := abi/libameir.abi
ABIDW_FLAGS := --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed --drop-undefined-syms \
               --headers-dir include/ameir

abi-dump: $(SHLIB)
	$(ABIDW) $(ABIDW_FLAGS) --out-file $(ABI_BASELINE) $(SHLIB)
	@echo "abi-dump: wrote $(ABI_BASELINE) ($$(grep -c '<elf-symbol ' $(ABI_BASELINE)) symbols); commit it"

abi-check: $(SHLIB)
	@ABIDIFF="$(ABIDIFF)" bash abi/check.sh $(ABI_BASELINE) $(SHLIB) include/ameir

# ---- fuzzing ----
# `make fuzz`: every tests/fuzz/fuzz_<name>.c built with clang's libFuzzer (ASan + UBSan) against
# the sources of the layers the parsers live in, then run for FUZZ_SECONDS each on its seeds
# tests/fuzz/corpus_<name>/ (inputs it finds go to build/fuzz/corpus_<name>/; a crash leaves
# crash-* in the current directory and fails the target).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-pass-failed
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_LIB_SRC := $(LIB_SRC)
FUZZ_OBJ := $(patsubst src/%.c,build/fuzz/obj/%.o,$(FUZZ_LIB_SRC))

$(FUZZ_OBJ): build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(BASE_CFLAGS) -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) $(BLAS_CFLAGS) $(DEP_CFLAGS) -DAMEIR__LINE_BUF=4096 -DSRC_IN_SIZE=4096 \
	  -MMD -MP -c $< -o $@

$(FUZZ_BIN): build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(BASE_CFLAGS) -O1 -fsanitize=fuzzer $(FUZZ_SAN) $(DEP_CFLAGS) -o $@ $< $(FUZZ_OBJ) \
	  $(LIB_LIBS)

fuzz: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_BIN); do n=$${t#build/fuzz/fuzz_}; mkdir -p build/fuzz/corpus_$$n; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 build/fuzz/corpus_$$n \
	    tests/fuzz/corpus_$$n; done

# `make fuzz-ci` (.ci/run): the same targets and flags, for CI. Every target runs its full
# FUZZ_SECONDS even when an earlier one failed; its output goes to build/fuzz/<name>.log and the
# input of a crash, leak, timeout or out-of-memory to build/fuzz/crashes/<name>/. Prints one line
# per target (exit status, executions, corpus size) and, for a failure, the end of its log (the
# sanitizer's stack) and the input as hex; fails if any target failed.
.PHONY: fuzz-ci
fuzz-ci: $(FUZZ_BIN)
	@fail=""; for t in $(FUZZ_BIN); do n=$${t#build/fuzz/fuzz_}; \
	  rm -rf build/fuzz/crashes/$$n; mkdir -p build/fuzz/corpus_$$n build/fuzz/crashes/$$n; log=build/fuzz/$$n.log; \
	  echo "fuzz-ci: $$t for $(FUZZ_SECONDS) s"; rc=0; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crashes/$$n/ build/fuzz/corpus_$$n tests/fuzz/corpus_$$n >$$log 2>&1 || rc=$$?; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -n 1); \
	  secs=$$(sed -n 's/.*Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' $$log | tail -n 1); \
	  echo "fuzz-ci: $$n: exit $$rc, $${execs:-?} executions in $${secs:-?} s, corpus $$(ls build/fuzz/corpus_$$n | wc -l) files"; \
	  if [ $$rc != 0 ]; then fail="$$fail $$n"; tail -n 80 $$log | sed 's/^/    /'; \
	    for f in build/fuzz/crashes/$$n/*; do [ -f "$$f" ] && { echo "    input $$f:"; od -A d -t x1z -v "$$f" | head -n 40 | sed 's/^/    /'; }; done; fi; \
	done; if [ -n "$$fail" ]; then echo "fuzz-ci: FAILED:$$fail"; exit 1; fi; echo "fuzz-ci: every target ran $(FUZZ_SECONDS) s without a finding"

# ---- install ----
# Regenerated on every install: it records PREFIX, LIBDIR and INCLUDEDIR of that install.
.PHONY: pkgconfig/ameir.pc
pkgconfig/ameir.pc: pkgconfig/ameir.pc.in $(VERSION_H) Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	  -e 's|@BLAS_LIBS@|$(BLAS_LIBS)|' $< > $@

install: all pkgconfig/ameir.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/ameir $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/ameir/
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libameir.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libameir.so.$(V_MAJOR)
	ln -sf libameir.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libameir.so
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	install -m 644 pkgconfig/ameir.pc $(DESTDIR)$(PKGCONFIGDIR)/
	if [ -f $(CUDA_LIB) ]; then install -d $(DESTDIR)$(LIBDIR)/ameir && install -m 755 $(CUDA_LIB) $(DESTDIR)$(LIBDIR)/ameir/; fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libameir.so* $(DESTDIR)$(LIBDIR)/libameir.a
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/ameir.pc
	rm -rf $(DESTDIR)$(INCLUDEDIR)/ameir $(DESTDIR)$(LIBDIR)/ameir

# ---- dependencies ----
# libopenblas-openmp-dev names the OpenMP flavour: libopenblas-dev alone pulls the pthreads one.
APT_PKGS := build-essential pkg-config abigail-tools python3 libopenblas-dev libopenblas-openmp-dev libopenblas0-openmp \
            libyaml-dev liblzma-dev zlib1g-dev
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "missing:$$missing"; echo "run: sudo apt-get install -y$$missing"; exit 1; fi

deps-check:
	@$(PKG_CONFIG) --exists yaml-0.1 liblzma zlib || { echo "missing libraries: run 'make deps'"; exit 1; }

DATA ?= ../shared/data
# The main job: DeepFM on Frappe from ../shared/data; where that is absent (a user's fresh clone),
# on a synthetic dataset the library writes itself, saying so.
demo: deps all
	@sh examples/demo.sh

clean:
	rm -rf build lib/*.so* lib/*.a pkgconfig/ameir.pc

# The shadow backend (tests/shadow: the CPU ops behind a module whose device pointers the core
# cannot dereference) and the GPU checks (tests/gpu: parity oracle, end-to-end, benchmarks).
include tests/shadow/shadow.mk
include tests/gpu/gpu.mk

-include $(shell find build/obj build/san build/fuzz/obj -name '*.d' 2>/dev/null)
