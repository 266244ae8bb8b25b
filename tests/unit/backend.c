/* Backend selection: cpu, cuda (absent, broken or refusing here), auto, AMEIR_BACKEND and
 * AMEIR_BACKEND_PATH, and the module handshake, checked with small fake modules compiled on the
 * fly (skipped where no C compiler is found). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "ameir/ameir.h"
#include "core/base/base.h"
#include "core/backend/module.h"
#include "core/backend/registry.h"

/* ---- environment: every case starts from the caller's AMEIR_BACKEND* unset ---- */
static void env_clean(void) {
  unsetenv("AMEIR_BACKEND");
  unsetenv("AMEIR_BACKEND_PATH");
}

static int mentions_any(const char *msg, const char *const *words, int n) {
  for (int i = 0; i < n; i++)
    if (strstr(msg, words[i])) return 1;
  return 0;
}

/* ---- log capture for selections made on a bare context ---- */
static char g_log[8192];
static void capture(int32_t level, const char *message, void *user) {
  (void)user;
  size_t len = strlen(g_log);
  snprintf(g_log + len, sizeof g_log - len, "[%d] %s\n", (int)level, message);
}
static void bare_context(struct ameir_context *c) {
  memset(c, 0, sizeof *c);
  c->threads = 1;
  c->seed = 2021;
  c->deterministic = 1;
  c->log_level = AMEIR_LOG_DEBUG;
  c->log_fn = capture;
  g_log[0] = 0;
}

void test_unit_backend__cpu_selects(void) {
  env_clean();
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "cpu"));
  T_ASSERT(ctx != NULL);
  T_ASSERT(!strcmp(ameir_context_backend(ctx), "cpu"));
  T_ASSERT(!strcmp(ameir_context_last_error(ctx), ""));
  const ameir_ops *ops = ctx->ops;
  T_ASSERT(ops && ops->struct_size == sizeof(ameir_ops));
  T_ASSERT(ops->abi_version == AMEIR_OPS_ABI_VERSION);
  T_ASSERT(ops->init && ops->alloc && ops->gemm && ops->sumsq);
  T_ASSERT(ops != ameir__cpu_ops());  /* a per-context copy */
  T_ASSERT(ctx->module == NULL);
  /* the table is usable: a round trip through backend memory */
  void *dev = NULL;
  float in[4] = {1, 2, 3, 4}, out[4] = {0};
  T_OK(ops->alloc(ctx->bstate, sizeof in, &dev));
  T_OK(ops->upload(ctx->bstate, dev, in, sizeof in));
  T_OK(ops->download(ctx->bstate, out, dev, sizeof out));
  ops->free(ctx->bstate, dev);
  T_ASSERT(!memcmp(in, out, sizeof in));
  ameir_context_free(ctx);
  ameir_context_free(NULL);
}

/* Every member of struct ameir_ops that is not optional exists in the CPU reference: it is the
 * fallback of every other backend, so an op missing there is missing everywhere. */
void test_unit_backend__cpu_reference_complete(void) {
  env_clean();
  struct ameir_context c;
  bare_context(&c);
  T_OK(ameir__backend_select(&c, "cpu"));
  /* the context's completed table has every member */
  typedef void (*fnp)(void);
  const char *base = (const char *)c.ops;
  for (size_t off = offsetof(ameir_ops, init); off < sizeof(ameir_ops); off += sizeof(fnp)) {
    fnp fn;
    memcpy(&fn, base + off, sizeof fn);
    T_ASSERT_MSG(fn != NULL, "cpu ops member at offset %zu is NULL", off);
  }
  ameir__backend_release(&c);
  const char *m = strstr(g_log, "missing, not in the CPU reference either:");
  T_ASSERT_MSG(m == NULL, "the CPU backend lacks ops that ops.h requires:%.*s",
               m ? (int)strcspn(m + 41, "\n") : 0, m ? m + 41 : "");
}

void test_unit_backend__cpu_name_case_insensitive(void) {
  env_clean();
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "CPU"));
  T_ASSERT(!strcmp(ameir_context_backend(ctx), "cpu"));
  ameir_context_free(ctx);
}

/* "cuda" on this machine: not built, not found, no driver, no device, or (with a GPU) the
 * module's compute ops still missing. Each is AMEIR_EUNSUPPORTED with a message saying which;
 * once the CUDA backend is complete, a GPU machine may give a working context instead. */
static void check_cuda_refusal(ameir_status st, ameir_context *ctx) {
  if (st == AMEIR_OK) {
    T_ASSERT(ctx && !strcmp(ameir_context_backend(ctx), "cuda"));
    ameir_context_free(ctx);
    return;
  }
  const char *msg = ameir_last_error();
  T_ASSERT_MSG(st == AMEIR_EUNSUPPORTED, "status %d (%s): %s", (int)st, ameir_status_str(st), msg);
  T_ASSERT(ctx == NULL);
  static const char *const why[] = {"not found", "driver", "device", "not implemented",
                                    "cannot load"};
  T_ASSERT_MSG(strstr(msg, "CUDA") && mentions_any(msg, why, 5), "unclear message: %s", msg);
}

void test_unit_backend__cuda_unsupported_here(void) {
  env_clean();
  ameir_context *ctx = (ameir_context *)1;
  ameir_status st = ameir_context_create(&ctx, "cuda");
  check_cuda_refusal(st, ctx);
  if (st != AMEIR_OK && strstr(ameir_last_error(), "not found"))
    T_ASSERT_MSG(strstr(ameir_last_error(), "AMEIR_BACKEND_PATH") &&
                     strstr(ameir_last_error(), "libameir_cuda.so"),
                 "the message should name the places tried: %s", ameir_last_error());
}

/* The module this tree built (make cuda), loaded through AMEIR_BACKEND_PATH=lib. */
void test_unit_backend__cuda_built_module(void) {
  env_clean();
  struct stat st_;
  if (stat("lib/libameir_cuda.so", &st_) != 0) T_SKIP("lib/libameir_cuda.so not built (no nvcc)");
  setenv("AMEIR_BACKEND_PATH", "lib", 1);
  ameir_context *ctx = NULL;
  ameir_status st = ameir_context_create(&ctx, "cuda");
  char msg[AMEIR_MSG_MAX];
  snprintf(msg, sizeof msg, "%s", ameir_last_error());
  env_clean();
  check_cuda_refusal(st, ctx);
  if (st != AMEIR_OK)
    T_ASSERT_MSG(strstr(msg, "lib/libameir_cuda.so"), "the message should name the module: %s",
                 msg);
}

void test_unit_backend__auto_gives_cpu_quietly(void) {
  env_clean();
  ameir_context *ctx = NULL;
  T_OK(ameir_context_create(&ctx, "auto"));
  const char *name = ameir_context_backend(ctx);
  T_ASSERT(!strcmp(name, "cpu") || !strcmp(name, "cuda"));
  T_ASSERT_MSG(!strcmp(ameir_context_last_error(ctx), ""), "auto left an error: %s",
               ameir_context_last_error(ctx));
  ameir_context_free(ctx);
  T_OK(ameir_context_create(&ctx, NULL));  /* NULL = auto */
  ameir_context_free(ctx);
}

void test_unit_backend__auto_logs_choice(void) {
  env_clean();
  struct ameir_context c;
  bare_context(&c);
  T_OK(ameir__backend_select(&c, "auto"));
  T_ASSERT(c.ops != NULL);
  if (!strcmp(c.ops->name, "cpu"))
    T_ASSERT_MSG(strstr(g_log, "[2] backend auto: chose cpu (cuda unavailable: "), "log: %s", g_log);
  else
    T_ASSERT_MSG(strstr(g_log, "chose cuda"), "log: %s", g_log);
  T_ASSERT_MSG(c.msg[0] == 0, "auto left an error: %s", c.msg);
  ameir__backend_release(&c);
  T_ASSERT(c.ops == NULL && c.bstate == NULL && c.module == NULL);
  ameir__backend_release(&c);  /* twice is harmless */
}

void test_unit_backend__env_overrides(void) {
  env_clean();
  setenv("AMEIR_BACKEND", "cpu", 1);
  ameir_context *ctx = NULL;
  ameir_status st = ameir_context_create(&ctx, NULL);
  env_clean();
  T_OK(st);
  T_ASSERT(!strcmp(ameir_context_backend(ctx), "cpu"));
  ameir_context_free(ctx);

  setenv("AMEIR_BACKEND", "quantum", 1);
  ctx = (ameir_context *)1;
  st = ameir_context_create(&ctx, NULL);
  env_clean();
  T_ASSERT_EQ_INT(st, AMEIR_EINVAL);
  T_ASSERT(ctx == NULL);
  T_ASSERT_MSG(strstr(ameir_last_error(), "quantum") && strstr(ameir_last_error(), "AMEIR_BACKEND"),
               "message: %s", ameir_last_error());

  /* an explicit name wins over the variable */
  setenv("AMEIR_BACKEND", "quantum", 1);
  st = ameir_context_create(&ctx, "cpu");
  env_clean();
  T_OK(st);
  ameir_context_free(ctx);
}

void test_unit_backend__bogus_name(void) {
  env_clean();
  ameir_context *ctx = (ameir_context *)1;
  T_ASSERT_EQ_INT(ameir_context_create(&ctx, "tpu"), AMEIR_EINVAL);
  T_ASSERT(ctx == NULL);
  T_ASSERT_MSG(strstr(ameir_last_error(), "'tpu'") && strstr(ameir_last_error(), "cpu, cuda or auto"),
               "message: %s", ameir_last_error());
  T_ASSERT_EQ_INT(ameir_context_create(&ctx, ""), AMEIR_EINVAL);
  T_ASSERT_EQ_INT(ameir_context_create(NULL, "cpu"), AMEIR_EINVAL);
}

void test_unit_backend__bogus_module_file(void) {
  env_clean();
  char path[600];
  snprintf(path, sizeof path, "%s/libameir_cuda.so", t_tmpdir());
  FILE *f = fopen(path, "w");
  T_ASSERT(f != NULL);
  fputs("this is not a shared object\n", f);
  fclose(f);
  setenv("AMEIR_BACKEND_PATH", path, 1);
  ameir_context *ctx = (ameir_context *)1;
  ameir_status st = ameir_context_create(&ctx, "cuda");
  char msg[AMEIR_MSG_MAX];
  snprintf(msg, sizeof msg, "%s", ameir_last_error());
  /* the directory form finds the same file */
  setenv("AMEIR_BACKEND_PATH", t_tmpdir(), 1);
  ameir_status st2 = ameir_context_create(&ctx, "cuda");
  char msg2[AMEIR_MSG_MAX];
  snprintf(msg2, sizeof msg2, "%s", ameir_last_error());
  /* "auto" falls back to the CPU even so */
  ameir_status st3 = ameir_context_create(&ctx, "auto");
  env_clean();
  T_ASSERT_EQ_INT(st, AMEIR_EUNSUPPORTED);
  T_ASSERT_MSG(strstr(msg, path) && strstr(msg, "cannot load"), "message: %s", msg);
  T_ASSERT_EQ_INT(st2, AMEIR_EUNSUPPORTED);
  T_ASSERT_MSG(strstr(msg2, path), "message: %s", msg2);
  T_OK(st3);
  T_ASSERT(!strcmp(ameir_context_backend(ctx), "cpu"));
  ameir_context_free(ctx);
}

void test_unit_backend__missing_module_path(void) {
  env_clean();
  setenv("AMEIR_BACKEND_PATH", "/nonexistent/ameir-test/libameir_cuda.so", 1);
  ameir_context *ctx = NULL;
  ameir_status st = ameir_context_create(&ctx, "cuda");
  char msg[AMEIR_MSG_MAX];
  snprintf(msg, sizeof msg, "%s", ameir_last_error());
  env_clean();
  if (st == AMEIR_OK) { ameir_context_free(ctx); T_SKIP("a CUDA module was found elsewhere"); }
  T_ASSERT_EQ_INT(st, AMEIR_EUNSUPPORTED);
  if (strstr(msg, "not found"))
    T_ASSERT_MSG(strstr(msg, "/nonexistent/ameir-test/libameir_cuda.so (does not exist)"),
                 "message: %s", msg);
}

void test_unit_backend__describe(void) {
  env_clean();
  char buf[4096];
  ameir__backend_describe(buf, sizeof buf);
  T_ASSERT_MSG(strstr(buf, "backend cpu: built in\n") == buf, "describe: %s", buf);
  T_ASSERT_MSG(strstr(buf, "backend cuda: "), "describe: %s", buf);
  char small[16];
  ameir__backend_describe(small, sizeof small);  /* truncates, stays terminated */
  T_ASSERT(strlen(small) < sizeof small);
}

/* ---- fake modules: the handshake and the table filling, without a GPU ---- */
static const char *k_fake_src =
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <stdio.h>\n"
    "#include \"core/backend/module.h\"\n"
    "static int32_t f_init(struct ameir_context *c, int32_t t, void **s) {\n"
    "  (void)c; (void)t; *s = malloc(8); return *s ? 0 : AMEIR_ENOMEM; }\n"
    "static void f_shutdown(void *s) { free(s); }\n"
    "static int32_t f_threads(void *s, int32_t t) { (void)s; (void)t; return 0; }\n"
    "static int32_t f_alloc(void *s, size_t b, void **d) { (void)s; *d = malloc(b ? b : 1); return 0; }\n"
    "static void f_free(void *s, void *d) { (void)s; free(d); }\n"
    "static int32_t f_cp(void *s, void *d, const void *x, size_t b) { (void)s; memcpy(d, x, b); return 0; }\n"
    "static int32_t f_set0(void *s, void *d, size_t b) { (void)s; memset(d, 0, b); return 0; }\n"
    "static int32_t f_sync(void *s) { (void)s; return 0; }\n"
    "static ameir_ops T;\n"
    "#ifndef NO_ENTRY\n"
    "__attribute__((visibility(\"default\")))\n"
    "int32_t ameir_backend_module_v1(uint32_t abi, const ameir_ops **ops,\n"
    "                                struct ameir__module_host *h) {\n"
    "  h->module_abi = MODULE_ABI;\n"
    "  if (abi != MODULE_ABI) {\n"
    "    snprintf(h->reason, h->reason_size, \"the module was built for ops ABI version %u, \"\n"
    "             \"libameir has ops ABI version %u\", (unsigned)MODULE_ABI, (unsigned)abi);\n"
    "    return AMEIR_EVERSION; }\n"
    "#ifdef NO_DEVICE\n"
    "  snprintf(h->reason, h->reason_size, \"no CUDA device: fake module\");\n"
    "  return AMEIR_EUNSUPPORTED;\n"
    "#endif\n"
    "  T.abi_version = MODULE_ABI; T.struct_size = TABLE_SIZE; T.name = \"fake\";\n"
    "  T.init = f_init; T.shutdown = f_shutdown; T.set_threads = f_threads;\n"
    "  T.alloc = f_alloc; T.free = f_free; T.upload = f_cp; T.download = f_cp;\n"
    "  T.memset0 = f_set0; T.copy = f_cp; T.sync = f_sync;\n"
    "  *ops = &T; return 0; }\n"
    "#else\n"
    "__attribute__((visibility(\"default\"))) int something_else(void) { return 1; }\n"
    "#endif\n";

static int have_cc(void) {
  return system("cc --version >/dev/null 2>&1") == 0;
}

/* Builds a fake module with the given -D flags into the test's temporary directory. */
static const char *build_fake(const char *tag, const char *defines) {
  static char so[700];
  char src[700], cmd[2400];
  snprintf(src, sizeof src, "%s/fake.c", t_tmpdir());
  FILE *f = fopen(src, "w");
  T_ASSERT(f != NULL);
  fputs(k_fake_src, f);
  fclose(f);
  snprintf(so, sizeof so, "%s/fake_%s.so", t_tmpdir(), tag);
  snprintf(cmd, sizeof cmd,
           "cc -std=c11 -shared -fPIC -fvisibility=hidden -Iinclude -Isrc %s -o '%s' '%s' 2>&1",
           defines, so, src);
  T_ASSERT_MSG(system(cmd) == 0, "could not build the fake module: %s", cmd);
  return so;
}

static ameir_status create_with_module(const char *so, ameir_context **ctx, char *msg, size_t n) {
  env_clean();
  setenv("AMEIR_BACKEND_PATH", so, 1);
  ameir_status st = ameir_context_create(ctx, "cuda");
  snprintf(msg, n, "%s", ameir_last_error());
  env_clean();
  return st;
}

void test_unit_backend__module_abi_mismatch(void) {
  if (!have_cc()) T_SKIP("no C compiler to build a fake module");
  const char *so = build_fake("abi", "-DMODULE_ABI=99 -DTABLE_SIZE='sizeof(ameir_ops)'");
  ameir_context *ctx = NULL;
  char msg[AMEIR_MSG_MAX];
  ameir_status st = create_with_module(so, &ctx, msg, sizeof msg);
  T_ASSERT_EQ_INT(st, AMEIR_EVERSION);
  T_ASSERT(ctx == NULL);
  char host[32];
  snprintf(host, sizeof host, "version %d", AMEIR_OPS_ABI_VERSION);
  T_ASSERT_MSG(strstr(msg, "version 99") && strstr(msg, host) && strstr(msg, so),
               "message should give both versions and the module: %s", msg);
}

void test_unit_backend__module_without_entry(void) {
  if (!have_cc()) T_SKIP("no C compiler to build a fake module");
  const char *so = build_fake("noentry", "-DNO_ENTRY");
  ameir_context *ctx = NULL;
  char msg[AMEIR_MSG_MAX];
  ameir_status st = create_with_module(so, &ctx, msg, sizeof msg);
  T_ASSERT_EQ_INT(st, AMEIR_EVERSION);
  T_ASSERT_MSG(strstr(msg, AMEIR_MODULE_ENTRY) && strstr(msg, so), "message: %s", msg);
}

void test_unit_backend__module_no_device(void) {
  if (!have_cc()) T_SKIP("no C compiler to build a fake module");
  char defs[128];
  snprintf(defs, sizeof defs, "-DMODULE_ABI=%d -DTABLE_SIZE='sizeof(ameir_ops)' -DNO_DEVICE",
           AMEIR_OPS_ABI_VERSION);
  const char *so = build_fake("nodev", defs);
  ameir_context *ctx = NULL;
  char msg[AMEIR_MSG_MAX];
  ameir_status st = create_with_module(so, &ctx, msg, sizeof msg);
  T_ASSERT_EQ_INT(st, AMEIR_EUNSUPPORTED);
  T_ASSERT_MSG(strstr(msg, "no CUDA device: fake module") && strstr(msg, so), "message: %s", msg);
}

void test_unit_backend__module_missing_required_op(void) {
  if (!have_cc()) T_SKIP("no C compiler to build a fake module");
  char defs[128];
  /* a full-size table whose compute ops are NULL: gemm is required */
  snprintf(defs, sizeof defs, "-DMODULE_ABI=%d -DTABLE_SIZE='sizeof(ameir_ops)'",
           AMEIR_OPS_ABI_VERSION);
  const char *so = build_fake("noreq", defs);
  ameir_context *ctx = NULL;
  char msg[AMEIR_MSG_MAX];
  ameir_status st = create_with_module(so, &ctx, msg, sizeof msg);
  T_ASSERT_EQ_INT(st, AMEIR_EBACKEND);
  T_ASSERT_MSG(strstr(msg, "lacks the required op 'gemm'"), "message: %s", msg);
}

/* An older, smaller table (memory ops only): the core fills the rest from the CPU reference. */
void test_unit_backend__module_small_table_filled(void) {
  if (!have_cc()) T_SKIP("no C compiler to build a fake module");
  char defs[160];
  snprintf(defs, sizeof defs, "-DMODULE_ABI=%d -DTABLE_SIZE='offsetof(ameir_ops, gemm)'",
           AMEIR_OPS_ABI_VERSION);
  const char *so = build_fake("small", defs);
  ameir_context *ctx = NULL;
  char msg[AMEIR_MSG_MAX];
  ameir_status st = create_with_module(so, &ctx, msg, sizeof msg);
  T_ASSERT_MSG(st == AMEIR_OK, "status %d: %s", (int)st, msg);
  T_ASSERT(!strcmp(ameir_context_backend(ctx), "fake"));
  const ameir_ops *cpu = ameir__cpu_ops();
  T_ASSERT(ctx->ops->struct_size == sizeof(ameir_ops));
  T_ASSERT(ctx->ops->alloc != cpu->alloc);  /* the module's own */
  T_ASSERT(ctx->ops->gemm == cpu->gemm);    /* filled */
  T_ASSERT(ctx->ops->sumsq == cpu->sumsq);
  T_ASSERT(ctx->ops->adam_table_dense == cpu->adam_table_dense);
  /* every member beyond the module's table is the reference's */
  T_ASSERT(!memcmp((const char *)ctx->ops + offsetof(ameir_ops, gemm),
                   (const char *)cpu + offsetof(ameir_ops, gemm),
                   sizeof(ameir_ops) - offsetof(ameir_ops, gemm)));
  T_ASSERT(ctx->module != NULL);
  void *dev = NULL;
  T_OK(ctx->ops->alloc(ctx->bstate, 64, &dev));
  T_OK(ctx->ops->memset0(ctx->bstate, dev, 64));
  ctx->ops->free(ctx->bstate, dev);
  ameir_context_free(ctx);
}
