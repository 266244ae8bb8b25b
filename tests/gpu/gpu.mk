# rules: tests/gpu (included by the top Makefile). Device checks, run where a GPU is; not part
# of `make test`:
#   build/gpu/parity [MODULE_PATH]   the parity oracle: every op of the module against the CPU
#                                    reference (default lib/libameir_cuda.so; --cpu-vs-cpu tests
#                                    the harness itself, --filter SUBSTR picks cases)
#   build/gpu/cuda_module [MODULE]   the module's handshake and memory ops
#   build/gpu/threads [MODULE]       one model predicting from several threads; pipelined scores
# All print "N passed, N failed" last and exit 77 (skip) where no device answers.
# The oracle links lib/libameir.a statically: ameir__cpu_ops(), an internal symbol, is reachable
# there (the shared library hides it).

GPU_CFLAGS := -std=c11 $(WARN) -O2 -g -Iinclude -Isrc

.PHONY: gpu-tests
gpu-tests: build/gpu/parity build/gpu/cuda_module build/gpu/threads

build/gpu/parity: tests/gpu/parity.c $(STLIB) src/core/backend/ops.h src/core/backend/module.h \
                  src/core/base/base.h
	@mkdir -p build/gpu
	$(CC) $(GPU_CFLAGS) -o $@ tests/gpu/parity.c $(STLIB) $(LIB_LIBS)

build/gpu/cuda_module: tests/gpu/cuda_module.c src/core/backend/ops.h src/core/backend/module.h
	@mkdir -p build/gpu
	$(CC) $(GPU_CFLAGS) -o $@ tests/gpu/cuda_module.c -ldl

build/gpu/threads: tests/gpu/threads.c tests/model/synth.c tests/model/synth.h $(STLIB)
	@mkdir -p build/gpu
	$(CC) $(GPU_CFLAGS) -Itests -o $@ tests/gpu/threads.c tests/model/synth.c $(STLIB) $(LIB_LIBS)
