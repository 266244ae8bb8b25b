/* Backend selection (DESIGN.md section 4, STYLE.md "Backends").
 *
 * "cpu" is built in. "cuda" is the module libameir_cuda.so, found at run time with dlopen in this
 * order:
 *   1. $AMEIR_BACKEND_PATH: a directory holding libameir_cuda.so, or the module file itself;
 *   2. <dir>/ameir/libameir_cuda.so, where <dir> holds the loaded libameir (found with dladdr):
 *      the installed layout, $(LIBDIR)/ameir/;
 *   3. <dir>/libameir_cuda.so: the build tree, where lib/libameir.so and lib/libameir_cuda.so
 *      sit side by side;
 *   4. "libameir_cuda.so" through the dynamic loader's own search (LD_LIBRARY_PATH, ld.so.cache).
 * The first candidate that exists is the one used: if it fails to load, that failure is the
 * error (a broken module is never masked by another one further down the list).
 *
 * Every context gets its own complete copy of the ops table (struct backend_table): members the
 * backend leaves NULL (optional ones) or does not have (a table with a smaller struct_size, from
 * an older module) are filled with the CPU reference's pointers once, here. A module lacking a
 * required member within its struct_size is refused. Caveat: such a
 * fallback reads its pointers as host memory, so it is correct only for ops that a backend with
 * device memory does implement itself; the CUDA module must implement every member that is not
 * optional, and today it refuses to run compute at all (see src/cuda/module.cu).
 *
 * Modules are opened with RTLD_NODELETE: dlclose in ameir__backend_release drops the reference
 * but the code stays mapped, since the CUDA runtime cannot be safely unloaded from a process.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "registry.h"
#include "module.h"

#define CUDA_MODULE_FILE "libameir_cuda.so"
#define MAX_CANDIDATES 4
#define PATH_LEN 4096

/* The table a context points to: a complete copy owned by the registry. `ops` is the first
 * member, so ctx->ops (a pointer to it) also points to the whole struct. */
typedef struct {
  ameir_ops ops;
} backend_table;

/* ---- the members of struct ameir_ops, for filling and checking ---- */
#define OP(m, opt) {offsetof(ameir_ops, m), #m, opt}
static const struct {
  size_t offset;
  const char *name;
  int optional;
} k_members[] = {
    OP(init, 0),          OP(shutdown, 0),      OP(set_threads, 0),
    OP(alloc, 0),         OP(free, 0),          OP(upload, 0),
    OP(download, 0),      OP(memset0, 0),       OP(copy, 0),
    OP(sync, 0),          OP(gemm, 0),          OP(gemm_strided_batched, 0),
    OP(add_bias, 0),      OP(bias_grad, 0),     OP(copy2d, 0),
    OP(axpby, 0),         OP(emb_sum_fwd, 0),   OP(emb_grad_rows, 0),
    OP(act_fwd, 0),       OP(act_bwd, 0),       OP(dice_fwd, 0),
    OP(dice_bwd, 0),      OP(layernorm_fwd, 0), OP(layernorm_bwd, 0),
    OP(dropout_fwd, 0),   OP(dropout_bwd, 0),   OP(hadamard_fwd, 0),
    OP(hadamard_bwd, 0),  OP(fm_fwd, 0),        OP(fm_bwd, 0),
    OP(se_fwd, 0),        OP(se_bwd, 0),        OP(bce_logits, 0),
    OP(adam_dense, 0),    OP(adam_rows, 0),     OP(adam_table_dense, 0),
    OP(sumsq, 1),         OP(seq_mask, 0),      OP(conv1d_fwd, 0),
    OP(conv1d_bwd, 0),    OP(pool3_fwd, 0),     OP(pool3_bwd, 0),
    OP(gru_fwd, 0),       OP(gru_bwd, 0),       OP(mha_fwd, 0),
    OP(mha_bwd, 0),       OP(din_fwd, 0),       OP(din_bwd, 0),
    OP(readout_fwd, 0),   OP(readout_bwd, 0),   OP(dot_rows_fwd, 0),
    OP(dot_rows_bwd, 0),  OP(scratch_bytes, 1), OP(set_thread_scratch, 1),
    OP(host_alloc, 0),    OP(host_free, 0),     OP(upload_async, 0),
    OP(download_async, 0), OP(cross_fwd, 0),     OP(cross_bwd, 0),
    OP(cin_fwd, 0),       OP(cin_bwd, 0),       OP(emb_fields_fwd, 0),
    /* FiBiNET */
    OP(field_scale_fwd, 0), OP(field_scale_bwd, 0),
    /* Caser read-out */
    OP(caser_fwd, 0),     OP(caser_bwd, 0),
};
#undef OP
#define N_MEMBERS (sizeof k_members / sizeof k_members[0])
typedef void (*any_fn)(void);
/* When ops.h grows, list the new member above (with its optional flag): these fail otherwise. */
_Static_assert(offsetof(ameir_ops, init) + N_MEMBERS * sizeof(any_fn) == sizeof(ameir_ops),
               "registry.c: k_members must list every function of struct ameir_ops");
_Static_assert(offsetof(ameir_ops, caser_bwd) + sizeof(any_fn) == sizeof(ameir_ops),
               "registry.c: k_members must end with the last member of struct ameir_ops");

static any_fn member_get(const ameir_ops *t, size_t offset) {
  any_fn f;
  memcpy(&f, (const char *)t + offset, sizeof f);
  return f;
}
static void member_set(ameir_ops *t, size_t offset, any_fn f) {
  memcpy((char *)t + offset, &f, sizeof f);
}

/* Builds ctx's own complete copy of `src`. Members beyond src->struct_size and NULL optional
 * members take the CPU reference's pointer; a NULL required member of a module is an error.
 * The table is thus as complete as the CPU reference: an op the reference itself does not have
 * yet (while the backend is being written) stays NULL, and is reported at DEBUG level and by
 * tests/unit/backend.c (cpu_reference_complete). */
static ameir_status complete_table(ameir_context *ctx, const ameir_ops *src, const char *origin,
                                   backend_table **out) {
  *out = NULL;
  const ameir_ops *ref = ameir__cpu_ops();
  const char *name = src->name ? src->name : "?";
  size_t have = src->struct_size < sizeof(ameir_ops) ? src->struct_size : sizeof(ameir_ops);
  if (have < offsetof(ameir_ops, gemm))
    return ameir__error(ctx, AMEIR_EVERSION,
                        "backend '%s' (%s): its ops table has %zu bytes, fewer than the %zu "
                        "of the memory functions every backend must have",
                        name, origin, have, offsetof(ameir_ops, gemm));
  for (size_t i = 0; i < N_MEMBERS && k_members[i].offset < offsetof(ameir_ops, gemm); i++)
    if (!member_get(src, k_members[i].offset))
      return ameir__error(ctx, AMEIR_EBACKEND, "backend '%s' (%s) lacks the required op '%s'",
                          name, origin, k_members[i].name);
  backend_table *t = ameir__calloc(ctx, 1, sizeof *t);
  if (!t) return AMEIR_ENOMEM;
  memcpy(&t->ops, src, have);
  int filled = 0, missing = 0;
  char missing_names[768] = "";
  for (size_t i = 0; i < N_MEMBERS; i++) {
    size_t off = k_members[i].offset;
    int beyond = off + sizeof(any_fn) > have;
    if (!beyond && member_get(&t->ops, off)) continue;
    any_fn f = NULL;
    if (src != ref) {
      if (!beyond && !k_members[i].optional) {
        free(t);
        return ameir__error(ctx, AMEIR_EBACKEND, "backend '%s' (%s) lacks the required op '%s'",
                            name, origin, k_members[i].name);
      }
      f = ref ? member_get(ref, off) : NULL;
    }
    if (f) {
      member_set(&t->ops, off, f);
      filled++;
    } else {
      missing++;
      size_t len = strlen(missing_names);
      snprintf(missing_names + len, sizeof missing_names - len, " %s", k_members[i].name);
    }
  }
  t->ops.struct_size = (uint32_t)sizeof(ameir_ops);
  if (filled)
    ameir__log(ctx, AMEIR_LOG_DEBUG, "backend '%s': %d op(s) filled with the CPU reference", name,
               filled);
  if (missing)
    ameir__log(ctx, AMEIR_LOG_DEBUG,
               "backend '%s': %d op(s) missing, not in the CPU reference either:%s", name,
               missing, missing_names);
  *out = t;
  return AMEIR_OK;
}

/* snprintf through a wrapper: messages that hold paths are cut at the buffer's end on purpose,
 * which GCC's -Wformat-truncation would otherwise flag at every call. */
static void msgf(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void msgf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

/* ---- host services handed to modules ---- */
static void host_log(const struct ameir_context *ctx, int32_t level, const char *message) {
  ameir__log(ctx, level, "%s", message ? message : "");
}
static int32_t host_set_error(struct ameir_context *ctx, int32_t status, const char *message) {
  return ameir__error(ctx, status, "%s", message ? message : "(no message)");
}

/* ---- finding the CUDA module ---- */
typedef struct {
  char path[MAX_CANDIDATES][PATH_LEN];
  int n;
  char tried[2048];   /* human-readable list of every place looked at */
  char env_note[PATH_LEN + 64];  /* set when AMEIR_BACKEND_PATH names nothing */
} candidates;

static void tried_add(candidates *c, const char *what) {
  size_t len = strlen(c->tried);
  snprintf(c->tried + len, sizeof c->tried - len, "%s%s", len ? ", " : "", what);
}

/* Adds dir/file (or file alone when dir is NULL) as a candidate; lists it as tried if asked. */
static void cand_add(candidates *c, const char *dir, const char *file, int list_it) {
  if (c->n >= MAX_CANDIDATES) return;
  char *dst = c->path[c->n];
  if (dir)
    snprintf(dst, PATH_LEN, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", file);
  else
    snprintf(dst, PATH_LEN, "%s", file);
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->path[i], dst)) return;  /* same place twice */
  if (list_it) tried_add(c, dst);
  c->n++;
}

/* Directory of the object holding this code: libameir.so, or the program libameir.a is in. */
static int self_dir(char *dir, size_t size) {
  Dl_info info;
  union { ameir_status (*fn)(ameir_context *, const char *); void *p; } anchor;
  anchor.fn = ameir__backend_select;
  if (!dladdr(anchor.p, &info) || !info.dli_fname || !info.dli_fname[0]) return 0;
  char real[PATH_MAX];
  const char *p = realpath(info.dli_fname, real) ? real : info.dli_fname;
  const char *slash = strrchr(p, '/');
  if (!slash) return 0;
  size_t len = (size_t)(slash - p);
  if (len == 0) len = 1;  /* "/libameir.so" */
  if (len >= size) return 0;
  memcpy(dir, p, len);
  dir[len] = 0;
  return 1;
}

static void find_candidates(candidates *c) {
  memset(c, 0, sizeof *c);
  const char *env = getenv("AMEIR_BACKEND_PATH");
  if (env && *env) {
    struct stat st;
    if (stat(env, &st) == 0 && S_ISDIR(st.st_mode)) {
      cand_add(c, env, CUDA_MODULE_FILE, 0);
    } else if (stat(env, &st) == 0) {
      /* a bare file name would send dlopen to the loader's search path, not to this file */
      cand_add(c, strchr(env, '/') ? NULL : ".", env, 0);
    } else {
      snprintf(c->env_note, sizeof c->env_note, "AMEIR_BACKEND_PATH=%s does not exist", env);
    }
    char what[PATH_LEN + 64];
    snprintf(what, sizeof what, "AMEIR_BACKEND_PATH=%s%s", env,
             c->env_note[0] ? " (does not exist)" : "");
    tried_add(c, what);
  } else {
    tried_add(c, "AMEIR_BACKEND_PATH (not set)");
  }
  char dir[PATH_LEN - 64];
  if (self_dir(dir, sizeof dir)) {
    char sub[PATH_LEN];
    snprintf(sub, sizeof sub, "%s/ameir", dir);
    cand_add(c, sub, CUDA_MODULE_FILE, 1);
    cand_add(c, dir, CUDA_MODULE_FILE, 1);
  } else {
    tried_add(c, "(directory of libameir unknown)");
  }
  tried_add(c, "the loader's search path (LD_LIBRARY_PATH, ld.so.cache)");
}

/* A loaded module: the dlopen handle and its entry point. */
typedef struct {
  void *handle;
  ameir__module_entry_fn entry;
  char path[PATH_LEN];
} loaded_module;

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && !S_ISDIR(st.st_mode);
}

static ameir_status open_module(const char *path, loaded_module *m, char *msg, size_t msz) {
  dlerror();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!h) {
    const char *err = dlerror();
    msgf(msg, msz,
         "cannot load the CUDA backend module %s: %s (if a CUDA library is named, the CUDA "
         "runtime, cuBLAS or cuDNN is not installed or not on LD_LIBRARY_PATH)",
         path, err ? err : "unknown dlopen error");
    return AMEIR_EUNSUPPORTED;
  }
  dlerror();
  void *sym = dlsym(h, AMEIR_MODULE_ENTRY);
  if (!sym) {
    dlclose(h);
    msgf(msg, msz,
         "%s is not a libameir backend module of this version: it has no entry point %s "
         "(rebuild it with this libameir, `make cuda`)",
         path, AMEIR_MODULE_ENTRY);
    return AMEIR_EVERSION;
  }
  m->handle = h;
  memcpy(&m->entry, &sym, sizeof m->entry);
  snprintf(m->path, sizeof m->path, "%s", path);
  return AMEIR_OK;
}

/* Finds and dlopens the CUDA module. On failure writes why into msg (naming what was tried). */
static ameir_status load_cuda_module(loaded_module *m, char *msg, size_t msz, char *note,
                                     size_t note_size) {
  candidates c;
  find_candidates(&c);
  memset(m, 0, sizeof *m);
  if (note && note_size) snprintf(note, note_size, "%s", c.env_note);
  for (int i = 0; i < c.n; i++)
    if (is_file(c.path[i])) return open_module(c.path[i], m, msg, msz);
  /* last: the plain name through the loader */
  dlerror();
  void *h = dlopen(CUDA_MODULE_FILE, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (h) {
    dlclose(h);  /* found by the loader: open it again through the common path for checks */
    return open_module(CUDA_MODULE_FILE, m, msg, msz);
  }
  const char *err = dlerror();
  if (err && strncmp(err, CUDA_MODULE_FILE ":", strlen(CUDA_MODULE_FILE) + 1) != 0) {
    /* the loader found the module but not something it needs */
    msgf(msg, msz,
         "cannot load the CUDA backend module found by the loader (%s): %s (the CUDA "
         "runtime, cuBLAS or cuDNN is not installed or not on LD_LIBRARY_PATH)",
         CUDA_MODULE_FILE, err);
    return AMEIR_EUNSUPPORTED;
  }
  msgf(msg, msz,
       "CUDA backend module %s not found (tried: %s); build it with `make cuda` where nvcc "
       "exists and install it into the ameir/ directory beside libameir, or set "
       "AMEIR_BACKEND_PATH",
       CUDA_MODULE_FILE, c.tried);
  return AMEIR_EUNSUPPORTED;
}

/* Runs the handshake. On success *ops is the module's table. */
static ameir_status handshake(const loaded_module *m, struct ameir__module_host *host,
                              const ameir_ops **ops, char *reason, size_t reason_size, char *msg,
                              size_t msz) {
  reason[0] = 0;
  memset(host, 0, sizeof *host);
  host->abi_version = AMEIR_OPS_ABI_VERSION;
  host->struct_size = (uint32_t)sizeof *host;
  host->log = host_log;
  host->set_error = host_set_error;
  host->reason = reason;
  host->reason_size = reason_size;
  *ops = NULL;
  int32_t st = m->entry(AMEIR_OPS_ABI_VERSION, ops, host);
  host->reason = NULL;
  host->reason_size = 0;
  if (st == AMEIR_EVERSION) {
    msgf(msg, msz, "CUDA backend module %s refused the handshake: %s", m->path,
         reason[0] ? reason : "incompatible ops ABI version");
    if (!reason[0] || !strstr(reason, "ABI")) {
      size_t len = strlen(msg);
      msgf(msg + len, msz - len, " (module ops ABI %u, libameir ops ABI %u)",
           (unsigned)host->module_abi, (unsigned)AMEIR_OPS_ABI_VERSION);
    }
    return AMEIR_EVERSION;
  }
  if (st != AMEIR_OK) {
    msgf(msg, msz, "CUDA backend unavailable: %s (module %s)",
         reason[0] ? reason : "the module gave no reason", m->path);
    return st < 0 ? st : AMEIR_EBACKEND;
  }
  const ameir_ops *o = *ops;
  if (!o) {
    msgf(msg, msz, "CUDA backend module %s returned no ops table", m->path);
    return AMEIR_EBACKEND;
  }
  if (o->abi_version != AMEIR_OPS_ABI_VERSION || host->module_abi != AMEIR_OPS_ABI_VERSION) {
    msgf(msg, msz,
         "CUDA backend module %s has ops ABI version %u, this libameir needs %u (rebuild "
         "the module with this libameir)",
         m->path, (unsigned)o->abi_version, (unsigned)AMEIR_OPS_ABI_VERSION);
    return AMEIR_EVERSION;
  }
  return AMEIR_OK;
}

/* ---- selection ---- */
static ameir_status start(ameir_context *ctx, const ameir_ops *src, const char *origin,
                          void *module) {
  backend_table *t;
  ameir_status st = complete_table(ctx, src, origin, &t);
  if (st != AMEIR_OK) return st;
  void *state = NULL;
  st = t->ops.init(ctx, ctx->threads > 0 ? ctx->threads : 1, &state);
  if (st != AMEIR_OK) {
    if (!ctx->msg[0])
      ameir__error(ctx, st, "backend '%s' failed to initialise (status %d)", t->ops.name, (int)st);
    free(t);
    return st;
  }
  ctx->ops = &t->ops;
  ctx->bstate = state;
  ctx->module = module;
  return AMEIR_OK;
}

static ameir_status select_cpu(ameir_context *ctx) {
  const ameir_ops *cpu = ameir__cpu_ops();
  if (!cpu) return ameir__error(ctx, AMEIR_EBACKEND, "the CPU backend is missing from this build");
  return start(ctx, cpu, "built in", NULL);
}

static ameir_status select_cuda(ameir_context *ctx) {
  char msg[AMEIR_MSG_MAX], note[PATH_LEN + 64];
  loaded_module m;
  ameir_status st = load_cuda_module(&m, msg, sizeof msg, note, sizeof note);
  if (note[0]) ameir__log(ctx, AMEIR_LOG_WARN, "%s; looked further", note);
  if (st != AMEIR_OK) return ameir__error(ctx, st, "%s", msg);
  struct ameir__module_host host;
  const ameir_ops *ops;
  char reason[768];
  st = handshake(&m, &host, &ops, reason, sizeof reason, msg, sizeof msg);
  if (st != AMEIR_OK) {
    dlclose(m.handle);
    return ameir__error(ctx, st, "%s", msg);
  }
  ctx->msg[0] = 0;
  st = start(ctx, ops, m.path, m.handle);
  if (st != AMEIR_OK) {
    dlclose(m.handle);
    return st;
  }
  char desc[512] = "";
  if (host.describe) host.describe(desc, sizeof desc);
  ameir__log(ctx, AMEIR_LOG_INFO, "backend cuda: %s (%s)", m.path, desc);
  return AMEIR_OK;
}

ameir_status ameir__backend_select(ameir_context *ctx, const char *name) {
  if (!ctx) return ameir__error(NULL, AMEIR_EINVAL, "ameir__backend_select: context is NULL");
  if (ctx->ops) ameir__backend_release(ctx);
  ctx->ops = NULL;
  ctx->bstate = NULL;
  ctx->module = NULL;
  ctx->msg[0] = 0;
  const char *from = "argument";
  if (!name) {
    const char *env = getenv("AMEIR_BACKEND");
    if (env && *env) {
      name = env;
      from = "AMEIR_BACKEND";
    } else {
      name = "auto";
      from = "default";
    }
  }
  if (!strcasecmp(name, "cpu")) {
    ameir_status st = select_cpu(ctx);
    if (st == AMEIR_OK) ameir__log(ctx, AMEIR_LOG_INFO, "backend cpu (asked by %s)", from);
    return st;
  }
  if (!strcasecmp(name, "cuda")) return select_cuda(ctx);
  if (!strcasecmp(name, "auto")) {
    /* Try CUDA quietly: its failure is no error of this call, so neither the context's message
     * nor the thread's keeps it. */
    char saved_tls[AMEIR_MSG_MAX];
    snprintf(saved_tls, sizeof saved_tls, "%s", ameir_last_error());
    ameir_status cuda_st = select_cuda(ctx);
    if (cuda_st == AMEIR_OK) {
      ameir__log(ctx, AMEIR_LOG_INFO, "backend auto: chose cuda (the module loads and a device answers)");
      return AMEIR_OK;
    }
    char why[AMEIR_MSG_MAX];
    snprintf(why, sizeof why, "%s", ctx->msg);
    ctx->msg[0] = 0;
    ameir__error(NULL, AMEIR_OK, "%s", saved_tls);
    ameir_status st = select_cpu(ctx);
    if (st != AMEIR_OK) return st;
    /* A module that is there but broken deserves a warning; no module or no GPU is normal. */
    int32_t level = cuda_st == AMEIR_EUNSUPPORTED ? AMEIR_LOG_INFO : AMEIR_LOG_WARN;
    ameir__log(ctx, level, "backend auto: chose cpu (cuda unavailable: %s)", why);
    return AMEIR_OK;
  }
  return ameir__error(ctx, AMEIR_EINVAL, "unknown backend '%s' (from %s): use cpu, cuda or auto",
                      name, from);
}

void ameir__backend_release(ameir_context *ctx) {
  if (!ctx) return;
  const ameir_ops *ops = ctx->ops;
  if (ops && ops->shutdown) ops->shutdown(ctx->bstate);
  /* Tables set here are always copies; never free the CPU backend's static table should a
   * caller have installed it directly. */
  if (ops && ops != ameir__cpu_ops()) free((backend_table *)(void *)(uintptr_t)ops);
  if (ctx->module) dlclose(ctx->module);
  ctx->ops = NULL;
  ctx->bstate = NULL;
  ctx->module = NULL;
}

void ameir__backend_describe(char *buf, size_t size) {
  if (!buf || !size) return;
  buf[0] = 0;
  size_t len = 0;
#define APPEND(...)                                                   \
  do {                                                                \
    if (len < size) {                                                 \
      int n_ = snprintf(buf + len, size - len, __VA_ARGS__);          \
      if (n_ > 0) len += (size_t)n_ < size - len ? (size_t)n_ : size - len - 1; \
    }                                                                 \
  } while (0)
  const ameir_ops *cpu = ameir__cpu_ops();
  APPEND("backend cpu: built in%s\n", cpu ? "" : " (MISSING from this build)");
  char msg[AMEIR_MSG_MAX], note[PATH_LEN + 64];
  loaded_module m;
  ameir_status st = load_cuda_module(&m, msg, sizeof msg, note, sizeof note);
  if (st != AMEIR_OK) {
    APPEND("backend cuda: unavailable: %s\n", msg);
    return;
  }
  struct ameir__module_host host;
  const ameir_ops *ops;
  char reason[768];
  st = handshake(&m, &host, &ops, reason, sizeof reason, msg, sizeof msg);
  char desc[512] = "";
  if (host.describe) host.describe(desc, sizeof desc);
  if (st == AMEIR_OK)
    APPEND("backend cuda: available: module %s; %s\n", m.path, desc[0] ? desc : "no description");
  else if (st == AMEIR_EUNSUPPORTED && reason[0] && desc[0] && !strstr(desc, reason))
    APPEND("backend cuda: unavailable: %s; module %s; %s\n", reason, m.path, desc);
  else if (desc[0] && st == AMEIR_EUNSUPPORTED)
    APPEND("backend cuda: unavailable: module %s; %s\n", m.path, desc);
  else
    APPEND("backend cuda: unavailable: %s%s%s\n", msg, desc[0] ? "; " : "", desc);
  dlclose(m.handle);
#undef APPEND
}
