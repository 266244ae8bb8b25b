/* CPU backend: the table, lifetime, threads, memory. */
#include <string.h>

#include "util.h"

void test_ops_mem__table_complete(void) {
  const ameir_ops *o = ameir__cpu_ops();
  T_ASSERT_EQ_INT(o->abi_version, AMEIR_OPS_ABI_VERSION);
  T_ASSERT_EQ_INT(o->struct_size, sizeof(ameir_ops));
  T_ASSERT(o->name && strcmp(o->name, "cpu") == 0);
  /* every member after name is a function pointer, and the CPU reference sets every one */
  typedef void (*fnp)(void);
  const char *base = (const char *)o;
  size_t first = offsetof(ameir_ops, init);
  size_t total = (sizeof(ameir_ops) - first) / sizeof(fnp);
  T_ASSERT_EQ_INT(first + total * sizeof(fnp), sizeof(ameir_ops));
  for (size_t off = first; off < sizeof(ameir_ops); off += sizeof(fnp)) {
    fnp fn;
    memcpy(&fn, base + off, sizeof fn);
    T_ASSERT_MSG(fn != NULL, "ops member at offset %zu (of %zu) is NULL", off, sizeof(ameir_ops));
  }
}

void test_ops_mem__lifetime_threads(void) {
  struct ameir_context ctx;
  memset(&ctx, 0, sizeof ctx);
  const ameir_ops *o = ameir__cpu_ops();
  void *st = NULL;
  T_OK(o->init(&ctx, 3, &st));
  T_ASSERT(st != NULL);
  T_OK(o->set_threads(st, 1));
  T_OK(o->set_threads(st, 0));   /* 0 = all processors */
  T_OK(o->sync(st));
  o->shutdown(st);
  o->shutdown(NULL);
  T_OK(tops_ops()->set_threads(tops_st(), 2));   /* the shared instance's count again */
}

void test_ops_mem__roundtrip(void) {
  const ameir_ops *o = tops_ops();
  void *st = tops_st();
  static const size_t sizes[] = {0, 1, 63, 64, 1000, 1 << 20};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t n = sizes[s];
    void *a = NULL, *b = NULL;
    T_OK(o->alloc(st, n, &a));
    T_OK(o->alloc(st, n, &b));
    T_ASSERT(a != NULL && ((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0);
    unsigned char *h = malloc(n + 1), *back = malloc(n + 1);
    for (size_t i = 0; i < n; i++) h[i] = (unsigned char)(i * 7 + 1);
    T_OK(o->upload(st, a, h, n));
    T_OK(o->copy(st, b, a, n));
    T_OK(o->download(st, back, b, n));
    T_ASSERT(n == 0 || memcmp(h, back, n) == 0);
    T_OK(o->memset0(st, a, n));
    T_OK(o->download(st, back, a, n));
    for (size_t i = 0; i < n; i++) T_ASSERT(back[i] == 0);
    o->free(st, a);
    o->free(st, b);
    free(h), free(back);
  }
  o->free(st, NULL);
}

void test_ops_mem__enomem(void) {
#if defined(__SANITIZE_ADDRESS__)
  T_SKIP("AddressSanitizer aborts on impossible allocations");
#else
  void *p = (void *)1;
  T_ASSERT_EQ_INT(tops_ops()->alloc(tops_st(), (size_t)1 << 62, &p), AMEIR_ENOMEM);
  T_ASSERT(p == NULL);
  T_ASSERT(strstr(tops_ctx()->msg, "out of memory") != NULL);
#endif
}
