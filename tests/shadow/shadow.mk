# rules: tests/shadow, the shadow backend (tests/shadow/README.md).
# `make shadow` builds build/shadow/libameir_cuda.so: a stand-in for the CUDA module that runs
# the CPU ops (src/cpu, compiled into it) behind tagged device pointers the core cannot
# dereference. Point the core at it with AMEIR_BACKEND_PATH=build/shadow AMEIR_BACKEND=cuda.
# Included by the top Makefile, whose variables (CPU_SRC, LIB_CFLAGS, BLAS_LIBS, ...) it uses.

SHADOW_DIR := build/shadow
SHADOW_LIB := $(SHADOW_DIR)/libameir_cuda.so
SHADOW_CPU_OBJ := $(patsubst src/cpu/%.c,$(SHADOW_DIR)/obj/cpu/%.o,$(CPU_SRC))
SHADOW_OBJ := $(SHADOW_CPU_OBJ) $(SHADOW_DIR)/obj/shadow.o
# Headers every object may read (the .d files below give the exact lists once built).
SHADOW_HDR := $(wildcard src/cpu/*.h) src/core/backend/ops.h src/core/base/base.h \
              $(wildcard include/ameir/*.h)

.PHONY: shadow
shadow: $(SHADOW_LIB)

# The same flags as the library's objects (LIB_CFLAGS: -fPIC, -fvisibility=hidden, BLAS, -O2).
$(SHADOW_CPU_OBJ): $(SHADOW_DIR)/obj/cpu/%.o: src/cpu/%.c $(SHADOW_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

$(SHADOW_DIR)/obj/shadow.o: tests/shadow/shadow.c src/core/backend/module.h $(SHADOW_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -MMD -MP -c $< -o $@

# Exports the entry point only (src/cuda/module.map); -z defs: everything resolved at link
# time, without libameir (the CPU sources' ameir__error is in shadow.c).
$(SHADOW_LIB): $(SHADOW_OBJ) src/cuda/module.map
	$(CC) -shared -fopenmp -Wl,--version-script=src/cuda/module.map -Wl,-z,defs \
	  -o $@ $(SHADOW_OBJ) $(BLAS_LIBS) -fopenmp -lm -lpthread $(LDFLAGS)
	@bad=$$(nm -D --defined-only $@ | awk '{print $$3}' | grep -vx ameir_backend_module_v1 || true); \
	if [ -n "$$bad" ]; then echo "$@ must export its entry point only, not:"; echo "$$bad"; \
	  rm -f $@; exit 1; fi

-include $(wildcard $(SHADOW_DIR)/obj/*.d $(SHADOW_DIR)/obj/cpu/*.d)
