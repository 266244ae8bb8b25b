/* Architectures: parse and print the paper's notation (see include/ameir/arch.h). */
#define _POSIX_C_SOURCE 200809L
#include "arch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdarg.h>

static const char *const ACT_NAMES[] = {"identity", "relu", "gelu", "swish", "sigmoid", "dice"};
static const char *const LAYER_NAMES[] = {"zero",   "conv1",    "conv3",    "dconv3", "dconv5",
                                          "dconv7", "avgpool3", "maxpool3", "gru",    "sa2",
                                          "sa4",    "target_att"};

const char *ameir__act_name(int32_t act) {
  return act >= 0 && act < AMEIR_ACT_COUNT_ ? ACT_NAMES[act] : "?";
}

int32_t ameir__act_parse(const char *s) {
  for (int32_t i = 0; i < AMEIR_ACT_COUNT_; i++)
    if (!strcasecmp(s, ACT_NAMES[i])) return i;
  if (!strcasecmp(s, "silu")) return AMEIR_ACT_SWISH;
  if (!strcasecmp(s, "id") || !strcasecmp(s, "linear") || !strcasecmp(s, "none")) return AMEIR_ACT_IDENTITY;
  return -1;
}

const char *ameir__layer_name(int32_t layer) {
  return layer >= 0 && layer < AMEIR_LAYER_COUNT_ ? LAYER_NAMES[layer] : "?";
}

int32_t ameir__layer_parse(const char *s) {
  for (int32_t i = 0; i < AMEIR_LAYER_COUNT_; i++)
    if (!strcasecmp(s, LAYER_NAMES[i])) return i;
  static const struct { const char *alias; int32_t layer; } aliases[] = {
      {"avg3", AMEIR_LAYER_AVGPOOL3}, {"max3", AMEIR_LAYER_MAXPOOL3}, {"bigru", AMEIR_LAYER_GRU},
      {"att2", AMEIR_LAYER_SA2},      {"att4", AMEIR_LAYER_SA4},      {"skip", AMEIR_LAYER_ZERO},
      {"din", AMEIR_LAYER_TARGET_ATT}};
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (!strcasecmp(s, aliases[i].alias)) return aliases[i].layer;
  return -1;
}

void ameir_arch_free(ameir_arch *a) {
  if (!a) return;
  for (int32_t i = 0; i < a->n_inter; i++)
    for (int32_t j = 0; j < a->inter[i].order; j++) free(a->inter[i].fields[j]);
  free(a->blocks);
  free(a->inter);
  free(a->mlp);
  free(a->cin);
  free(a);
}

/* ---- tokenizer over one line: words, '(', ')', ',' ---- */
typedef struct {
  const char *s;   /* line start */
  size_t pos, len;
  int line;
  char tok[128];
  int kind;        /* 0 end, 'w' word, '(' ')' ',' */
  size_t tok_col;
} lexer;

static void lex_next(lexer *lx) {
  while (lx->pos < lx->len && isspace((unsigned char)lx->s[lx->pos])) lx->pos++;
  lx->tok_col = lx->pos + 1;
  if (lx->pos >= lx->len) { lx->kind = 0; lx->tok[0] = 0; return; }
  char c = lx->s[lx->pos];
  if (c == '(' || c == ')' || c == ',' || c == '[' || c == ']') {
    lx->kind = c == '[' ? '(' : c == ']' ? ')' : c;
    lx->tok[0] = c; lx->tok[1] = 0;
    lx->pos++;
    return;
  }
  size_t n = 0;
  while (lx->pos < lx->len) {
    c = lx->s[lx->pos];
    if (isspace((unsigned char)c) || c == '(' || c == ')' || c == ',' || c == '[' || c == ']') break;
    if (n + 1 < sizeof lx->tok) lx->tok[n++] = c;
    lx->pos++;
  }
  lx->tok[n] = 0;
  lx->kind = 'w';
}

#define PERR(lx, ...) \
  ameir__error(ctx, AMEIR_EFORMAT, "arch line %d, column %zu: %s", (lx)->line, (lx)->tok_col, \
               (snprintf(errbuf, sizeof errbuf, __VA_ARGS__), errbuf))

/* Reads a parenthesised tuple of words into items; returns count or -1 */
static int read_tuple(lexer *lx, char items[][128], int max) {
  /* current token is '(' */
  int n = 0;
  lex_next(lx);
  while (lx->kind == 'w') {
    if (n >= max) return -1;
    snprintf(items[n++], 128, "%s", lx->tok);
    lex_next(lx);
    if (lx->kind == ',') lex_next(lx);
  }
  if (lx->kind != ')') return -1;
  lex_next(lx);
  return n;
}

/* A line `key: ON` or `key: none` into *flag (1 for ON); what explains ON in the message. */
static ameir_status parse_switch(ameir_context *ctx, lexer *lx, const char *key, const char *on, const char *what,
                                 int32_t *flag) {
  char errbuf[256];
  if (lx->kind != 'w' || (strcasecmp(lx->tok, on) && strcasecmp(lx->tok, "none")))
    return PERR(lx, "%s takes '%s' (%s) or 'none'", key, on, what);
  *flag = !strcasecmp(lx->tok, on);
  lex_next(lx);
  if (lx->kind) return PERR(lx, "unexpected '%s' after %s", lx->tok, key);
  return AMEIR_OK;
}

static ameir_status parse_line(ameir_context *ctx, ameir_arch *a, lexer *lx, const char *key) {
  char errbuf[256];
  char items[AMEIR_ARCH_MAX_ORDER + 1][128];
  lex_next(lx);
  if (!strcmp(key, "blocks")) {
    while (lx->kind) {
      if (lx->kind == ',') { lex_next(lx); continue; }
      ameir__block b = {AMEIR_LAYER_ZERO, AMEIR_ACT_IDENTITY, AMEIR_NORM_NONE};
      if (lx->kind == 'w') {
        if (ameir__layer_parse(lx->tok) != AMEIR_LAYER_ZERO)
          return PERR(lx, "a block is '(layer, activation, norm)' or 'zero', got '%s'", lx->tok);
        lex_next(lx);
      } else if (lx->kind == '(') {
        int n = read_tuple(lx, items, 3);
        if (n < 1) return PERR(lx, "bad block tuple: expected '(layer, activation, norm)'");
        b.layer = ameir__layer_parse(items[0]);
        if (b.layer < 0) return PERR(lx, "unknown layer '%s' (conv1 conv3 dconv3 dconv5 dconv7 avgpool3 maxpool3 gru sa2 sa4 target_att zero)", items[0]);
        if (n >= 2) {
          b.act = ameir__act_parse(items[1]);
          if (b.act < 0 || b.act == AMEIR_ACT_DICE || b.act == AMEIR_ACT_SIGMOID)
            return PERR(lx, "block activation must be relu, gelu, swish or identity, got '%s'", items[1]);
        }
        if (n >= 3) {
          if (!strcasecmp(items[2], "ln") || !strcasecmp(items[2], "layernorm")) b.norm = AMEIR_NORM_LN;
          else if (!strcasecmp(items[2], "none")) b.norm = AMEIR_NORM_NONE;
          else return PERR(lx, "block norm must be ln or none, got '%s'", items[2]);
        }
      } else {
        return PERR(lx, "unexpected '%s' in blocks", lx->tok);
      }
      ameir__block *nb = realloc(a->blocks, sizeof *nb * (size_t)(a->n_blocks + 1));
      if (!nb) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      a->blocks = nb;
      a->blocks[a->n_blocks++] = b;
    }
    return AMEIR_OK;
  }
  if (!strcmp(key, "interactions")) {
    while (lx->kind) {
      if (lx->kind == ',') { lex_next(lx); continue; }
      if (lx->kind != '(') return PERR(lx, "an interaction is a tuple of field names '(A, B)'");
      int n = read_tuple(lx, items, AMEIR_ARCH_MAX_ORDER);
      if (n < 1) return PERR(lx, "bad interaction tuple (1 to %d field names)", AMEIR_ARCH_MAX_ORDER);
      ameir__inter *ni = realloc(a->inter, sizeof *ni * (size_t)(a->n_inter + 1));
      if (!ni) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      a->inter = ni;
      ameir__inter *it = &a->inter[a->n_inter++];
      memset(it, 0, sizeof *it);
      for (int i = 0; i < n; i++) {
        it->fields[i] = strdup(items[i]);
        if (!it->fields[i]) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
        it->order = i + 1;
      }
    }
    return AMEIR_OK;
  }
  if (!strcmp(key, "mlp")) {
    while (lx->kind) {
      if (lx->kind == ',') { lex_next(lx); continue; }
      if (lx->kind != '(') return PERR(lx, "an MLP layer is '(width, activation)'");
      int n = read_tuple(lx, items, 2);
      if (n != 2) return PERR(lx, "an MLP layer is '(width, activation)'");
      char *end;
      long w = strtol(items[0], &end, 10);
      if (*end || w < 1 || w > 1 << 20) return PERR(lx, "bad MLP width '%s'", items[0]);
      int32_t act = ameir__act_parse(items[1]);
      if (act < 0) return PERR(lx, "unknown activation '%s' (relu gelu swish identity sigmoid dice)", items[1]);
      ameir__mlp_layer *nm = realloc(a->mlp, sizeof *nm * (size_t)(a->n_mlp + 1));
      if (!nm) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      a->mlp = nm;
      a->mlp[a->n_mlp].width = (int32_t)w;
      a->mlp[a->n_mlp].act = act;
      a->n_mlp++;
    }
    return AMEIR_OK;
  }
  if (!strcmp(key, "readout")) {
    a->readout = 0;
    for (; lx->kind; lex_next(lx)) {
      if (lx->kind == ',') continue;
      if (lx->kind != 'w') return PERR(lx, "readout takes words: sum last att");
      if (!strcasecmp(lx->tok, "sum")) a->readout |= AMEIR_READOUT_SUM;
      else if (!strcasecmp(lx->tok, "last")) a->readout |= AMEIR_READOUT_LAST;
      else if (!strcasecmp(lx->tok, "att") || !strcasecmp(lx->tok, "din")) a->readout |= AMEIR_READOUT_ATT;
      else if (!strcasecmp(lx->tok, "field")) a->readout |= AMEIR_READOUT_FIELD;
      else if (!strcasecmp(lx->tok, "caser")) a->readout |= AMEIR_READOUT_CASER;
      else if (!strcasecmp(lx->tok, "none")) continue;
      else return PERR(lx, "unknown readout '%s' (sum last att caser, or field)", lx->tok);
    }
    if ((a->readout & AMEIR_READOUT_FIELD) && a->readout != AMEIR_READOUT_FIELD)
      return PERR(lx, "readout 'field' (behaviours as sum-pooled fields) excludes sum, last, att and caser");
    return AMEIR_OK;
  }
  if (!strcmp(key, "shortcut")) {
    if (lx->kind != 'w') return PERR(lx, "shortcut is se or none");
    if (!strcasecmp(lx->tok, "se")) a->shortcut = AMEIR_SHORTCUT_SE;
    else if (!strcasecmp(lx->tok, "none")) a->shortcut = AMEIR_SHORTCUT_NONE;
    else return PERR(lx, "shortcut is se or none, got '%s'", lx->tok);
    lex_next(lx);
    if (lx->kind) return PERR(lx, "unexpected '%s' after shortcut", lx->tok);
    return AMEIR_OK;
  }
  if (!strcmp(key, "extras")) {
    a->extras = 0;
    for (; lx->kind; lex_next(lx)) {
      if (lx->kind == ',') continue;
      if (lx->kind != 'w') return PERR(lx, "extras takes words: linear fm");
      if (!strcasecmp(lx->tok, "linear")) a->extras |= AMEIR_EXTRA_LINEAR;
      else if (!strcasecmp(lx->tok, "fm")) a->extras |= AMEIR_EXTRA_FM;
      else if (!strcasecmp(lx->tok, "none")) continue;
      else return PERR(lx, "unknown extra '%s' (linear fm)", lx->tok);
    }
    return AMEIR_OK;
  }
  if (!strcmp(key, "cross") || !strcmp(key, "fibinet")) {   /* one number in a range */
    int fib = key[0] == 'f';
    long max = fib ? AMEIR_ARCH_MAX_FIBINET : AMEIR_ARCH_MAX_TOWER;
    char *end;
    long n = lx->kind == 'w' ? strtol(lx->tok, &end, 10) : -1;
    if (lx->kind != 'w' || *end || n < 0 || n > max)
      return fib ? PERR(lx, "fibinet takes the SENET reduction ratio (1 to %ld; 0 for none)", max)
                 : PERR(lx, "cross takes the number of cross layers (0 to %ld)", max);
    *(fib ? &a->fibinet : &a->n_cross) = (int32_t)n;
    lex_next(lx);
    if (lx->kind) return PERR(lx, "unexpected '%s' after %s", lx->tok, key);
    return AMEIR_OK;
  }
  if (!strcmp(key, "products"))
    return parse_switch(ctx, lx, key, "inner", "IPNN's pairwise inner products into the MLP input", &a->inner_products);
  if (!strcmp(key, "autoint")) {
    char *end;
    long n = lx->kind == 'w' ? strtol(lx->tok, &end, 10) : -1;
    if (lx->kind != 'w' || *end || n < 0 || n > AMEIR_ARCH_MAX_TOWER)
      return PERR(lx, "autoint takes the number of self-attention layers (0 to %d), then optionally an activation", AMEIR_ARCH_MAX_TOWER);
    a->n_autoint = (int32_t)n;
    a->autoint_act = AMEIR_ACT_RELU;
    lex_next(lx);
    if (lx->kind == 'w') {
      int32_t act = ameir__act_parse(lx->tok);
      if (act < 0 || act == AMEIR_ACT_DICE || act == AMEIR_ACT_SIGMOID)
        return PERR(lx, "autoint's activation must be relu, gelu, swish or identity, got '%s'", lx->tok);
      a->autoint_act = act;
      lex_next(lx);
    }
    if (lx->kind) return PERR(lx, "unexpected '%s' after autoint", lx->tok);
    return AMEIR_OK;
  }
  if (!strcmp(key, "cin")) {
    free(a->cin);
    a->cin = NULL;
    a->n_cin = 0;
    for (; lx->kind; lex_next(lx)) {
      if (lx->kind == ',') continue;
      if (lx->kind == 'w' && !strcasecmp(lx->tok, "none")) continue;
      char *end;
      long w = lx->kind == 'w' ? strtol(lx->tok, &end, 10) : -1;
      if (lx->kind != 'w' || *end || w < 1 || w > 4096)
        return PERR(lx, "cin takes the widths of its layers (1 to 4096), got '%s'", lx->tok);
      if (a->n_cin == AMEIR_ARCH_MAX_TOWER) return PERR(lx, "cin has at most %d layers", AMEIR_ARCH_MAX_TOWER);
      int32_t *nc = realloc(a->cin, sizeof *nc * (size_t)(a->n_cin + 1));
      if (!nc) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
      a->cin = nc;
      a->cin[a->n_cin++] = (int32_t)w;
    }
    return AMEIR_OK;
  }
  if (!strcmp(key, "positions"))
    return parse_switch(ctx, lx, key, "learned", "a position embedding added to every behaviour element", &a->positions);
  if (!strcmp(key, "cloze")) {
    char *end;
    double v = lx->kind == 'w' ? strtod(lx->tok, &end) : -1;
    if (lx->kind != 'w' || *end || !(v > 0 && v <= 1))
      return PERR(lx, "cloze takes the mask probability of masked-item training, a number in (0, 1] (BERT4Rec: 0.2)");
    a->cloze = v;
    a->cloze_last = AMEIR_CLOZE_LAST_DEFAULT;
    lex_next(lx);
    if (lx->kind == ',') lex_next(lx);
    if (lx->kind) {   /* the share of rows that mask only their last item */
      double w = lx->kind == 'w' ? strtod(lx->tok, &end) : -1;
      if (lx->kind != 'w' || *end || !(w >= 0 && w <= 1))
        return PERR(lx, "cloze's second number is the share of rows that mask only their last item, in [0, 1] (default 0.1)");
      a->cloze_last = w;
      lex_next(lx);
    }
    if (lx->kind) return PERR(lx, "unexpected '%s' after cloze", lx->tok);
    return AMEIR_OK;
  }
  if (!strcmp(key, "caser")) {
    /* L [NV [NH]]: Markov order, vertical filters, horizontal filters per height */
    static const char *const what[3] = {"the Markov order L", "the vertical filters NV", "the horizontal filters NH"};
    int32_t v[3] = {5, 5, 2}, n = 0;
    for (; lx->kind; lex_next(lx)) {
      if (lx->kind == ',') continue;
      if (n == 3) return PERR(lx, "caser takes 'L NV NH' (3 numbers), got more");
      char *end;
      long x = lx->kind == 'w' ? strtol(lx->tok, &end, 10) : -1;
      if (lx->kind != 'w' || *end || x < (n ? 0 : 1) || x > (n ? 4096 : AMEIR_CASER_MAX_L))
        return PERR(lx, "caser: %s must be %d to %d, got '%s'", what[n], n ? 0 : 1, n ? 4096 : AMEIR_CASER_MAX_L, lx->tok);
      v[n++] = (int32_t)x;
    }
    if (!n) return PERR(lx, "caser takes 'L NV NH': the Markov order, vertical and horizontal filters");
    if (!v[1] && !v[2]) return PERR(lx, "caser needs a filter: NV and NH are both 0");
    a->caser_l = v[0];
    a->caser_nv = v[1];
    a->caser_nh = v[2];
    return AMEIR_OK;
  }
  return PERR(lx, "unknown key '%s' (blocks readout interactions mlp shortcut extras cross cin autoint products fibinet cloze caser positions)", key);
}

AMEIR_API ameir_status ameir_arch_parse(ameir_arch **out, ameir_context *ctx, const char *text) {
  if (!out || !text) return ameir__error(ctx, AMEIR_EINVAL, "ameir_arch_parse: NULL argument");
  *out = NULL;
  ameir_arch *a = calloc(1, sizeof *a);
  if (!a) return ameir__error(ctx, AMEIR_ENOMEM, "out of memory");
  a->readout = AMEIR_READOUT_SUM | AMEIR_READOUT_LAST | AMEIR_READOUT_ATT;
  const char *p = text;
  int line = 0;
  while (*p) {
    line++;
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    const char *hash = memchr(p, '#', len);
    size_t l = hash ? (size_t)(hash - p) : len;
    size_t i = 0;
    while (i < l && isspace((unsigned char)p[i])) i++;
    if (i < l) {
      const char *colon = memchr(p + i, ':', l - i);
      if (!colon) {
        ameir_arch_free(a);
        return ameir__error(ctx, AMEIR_EFORMAT, "arch line %d: expected 'key: value'", line);
      }
      char key[32];
      size_t kl = (size_t)(colon - (p + i));
      while (kl && isspace((unsigned char)p[i + kl - 1])) kl--;
      if (kl >= sizeof key) kl = sizeof key - 1;
      memcpy(key, p + i, kl);
      key[kl] = 0;
      lexer lx = {.s = p, .pos = (size_t)(colon - p) + 1, .len = l, .line = line};
      ameir_status st = parse_line(ctx, a, &lx, key);
      if (st) { ameir_arch_free(a); return st; }
    }
    p += len;
    if (*p == '\n') p++;
  }
  if (a->caser_l && !(a->readout & AMEIR_READOUT_CASER)) {
    ameir_arch_free(a);
    return ameir__error(ctx, AMEIR_EFORMAT, "arch: a 'caser:' line sizes the Caser read-out, but the readout line has no 'caser'");
  }
  if ((a->readout & AMEIR_READOUT_CASER) && !a->caser_l) {   /* AMEIR appendix C.2's Beauty setting */
    a->caser_l = 5;
    a->caser_nv = 5;
    a->caser_nh = 2;
  }
  *out = a;
  return AMEIR_OK;
}

AMEIR_API ameir_status ameir_arch_load(ameir_arch **out, ameir_context *ctx, const char *path) {
  if (!out || !path) return ameir__error(ctx, AMEIR_EINVAL, "ameir_arch_load: NULL argument");
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return ameir__error(ctx, AMEIR_EIO, "%s: cannot open", path);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      if (cap > (64u << 20)) { free(buf); fclose(f); return ameir__error(ctx, AMEIR_EFORMAT, "%s: too large for an architecture file", path); }
      char *nb = realloc(buf, cap);
      if (!nb) { free(buf); fclose(f); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
      buf = nb;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) { free(buf); return ameir__error(ctx, AMEIR_EIO, "%s: read error", path); }
  buf[n] = 0;
  ameir_status st = ameir_arch_parse(out, ctx, buf);
  free(buf);
  if (st) ameir__error_prefix(ctx, "%s", path);
  return st;
}

ameir_status ameir__mlp_parse(ameir_context *ctx, const char *text, ameir__mlp_layer **out, int32_t *n) {
  *out = NULL;
  *n = 0;
  ameir__mlp_layer *v = NULL;
  int32_t cnt = 0;
  const char *p = text;
  while (*p == ' ') p++;
  if (!strcmp(p, "none")) return AMEIR_OK;   /* no hidden layer: the output layer reads h0 */
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    char *end;
    long w = strtol(p, &end, 10);
    if (end == p || w < 1 || w > (1 << 20)) {
      free(v);
      return ameir__error(ctx, AMEIR_EFORMAT, "MLP '%s': expected a width at '%s'", text, p);
    }
    p = end;
    int32_t act = AMEIR_ACT_RELU, rep = 1;
    if (*p == ':') {
      p++;
      char name[32];
      size_t k = 0;
      while (*p && *p != ',' && *p != ' ' && k + 1 < sizeof name) name[k++] = *p++;
      name[k] = 0;
      act = ameir__act_parse(name);
      if (act < 0) { free(v); return ameir__error(ctx, AMEIR_EFORMAT, "MLP '%s': unknown activation '%s'", text, name); }
    } else if (*p == 'x') {
      p++;
      long r = strtol(p, &end, 10);
      if (end == p || r < 1 || r > 64) { free(v); return ameir__error(ctx, AMEIR_EFORMAT, "MLP '%s': bad repeat", text); }
      rep = (int32_t)r;
      p = end;
    }
    if (*p && *p != ',' && *p != ' ') { free(v); return ameir__error(ctx, AMEIR_EFORMAT, "MLP '%s': unexpected '%c'", text, *p); }
    ameir__mlp_layer *nv = realloc(v, sizeof *nv * (size_t)(cnt + rep));
    if (!nv) { free(v); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
    v = nv;
    for (int32_t r = 0; r < rep; r++) { v[cnt].width = (int32_t)w; v[cnt].act = act; cnt++; }
  }
  *out = v;
  *n = cnt;
  return AMEIR_OK;
}

/* Named architectures of the backbone. The CTR baselines treat behaviours as sum-pooled
 * fields; the behaviour models are written in Stage 1 (appendix A, C.2; Table 10). */
static const struct { const char *name, *text, *mlp; } PRESETS[] = {
    /* LR: no hidden layer; the output layer over the field embeddings gives each id one weight
     * (w . e_id), i.e. logistic regression on one-hot ids plus the dense values */
    {"lr", "readout: field\n", "none"},
    /* FM: LR plus the second-order term (appendix C.3) */
    {"fm", "readout: field\nextras: fm\n", "none"},
    {"dnn", "readout: field\n", NULL},
    {"widedeep", "readout: field\nextras: linear\n", NULL},
    {"deepfm", "readout: field\nextras: linear fm\n", NULL},
    /* DCN (appendix C.3): a cross network of 3 layers over x0 beside the MLP, both into the
     * output layer */
    {"dcn", "readout: field\ncross: 3\n", NULL},
    /* xDeepFM: a CIN over the field embeddings (sum-pooled feature maps) beside the MLP, plus
     * the first-order term; 128-128 feature maps (the paper's Criteo setting is 256, see
     * docs/arch.md) */
    {"xdeepfm", "readout: field\ncin: 128 128\nextras: linear\n", NULL},
    /* AutoInt+ (Song et al. 2019): 3 layers of 2-head self-attention over the field embeddings
     * (residual, ReLU), flattened into the output layer beside the MLP */
    {"autoint", "readout: field\nautoint: 3\n", NULL},
    /* IPNN (Qu et al. 2016): the inner products of all field pairs next to the embeddings as
     * the MLP's input */
    {"ipnn", "readout: field\nproducts: inner\n", NULL},
    /* FiBiNET (Huang et al. 2019; appendix C.3, eq. (19)): SENET over the field embeddings
     * (reduction ratio 3), field-all bilinear interactions of the embeddings and of their
     * re-weighted copies as the MLP's input, plus the first-order term */
    {"fibinet", "readout: field\nfibinet: 3\nextras: linear\n", NULL},
    /* DIN: no blocks, attention from the target as the read-out, Dice MLP (torch_ref's din) */
    {"din", "readout: att\n", "200:dice,80:dice"},
    /* DIEN-like (appendix C.1): an interest-extractor GRU, attention from the target, a second
     * GRU whose last state is the interest. DIEN gates the second GRU's update with the
     * attention (AUGRU) and adds an auxiliary next-behaviour loss; here the attention scales
     * the positions before a plain GRU, and there is no auxiliary loss. */
    {"dien", "blocks: (gru, identity, none) (target_att, identity, none) (gru, identity, none)\nreadout: last att\n", "200:dice,80:dice"},
    /* DSIN-like, as appendix A.1 approximates it: self-attention within the history (DSIN: within
     * sessions, with bias encoding), a 1x1 convolution, a Bi-GRU across it, attention from the
     * target as the read-out. The history is not cut into sessions. */
    {"dsin", "blocks: (sa2, identity, ln) (conv1, relu, ln) (gru, identity, none)\nreadout: att\n", "200:dice,80:dice"},
    /* SASRec-like: self-attention and a point-wise (1x1 conv) feed-forward block */
    {"sasrec", "blocks: (sa2, identity, ln) (conv1, relu, ln)\nreadout: sum last\nshortcut: se\n", "200:relu,80:relu"},
    /* NextItNet-like: residual conv blocks with dilations 1, 2, 1, 2, 2 */
    {"nextitnet", "blocks: (conv3, relu, ln) (dconv3, relu, ln) (conv3, relu, ln) (dconv3, relu, ln) (dconv3, relu, ln)\nreadout: sum last\nshortcut: se\n", "200:relu,80:relu"},
    /* GRU4Rec-like: one Bi-GRU block */
    {"gru4rec", "blocks: (gru, identity, none)\nreadout: sum last\nshortcut: se\n", "200:relu,80:relu"},
    /* POP (appendix C.2): no input at all; the item biases (`extras: linear` of a retrieval
     * model) start at log(1 + the item's training count), so untrained (epochs 0) it ranks by
     * popularity */
    {"pop", "readout: none\nextras: linear\n", "none"},
    /* BPR-MF (Rendle et al. 2009): a user embedding (the dataset's `user_field: true`) through the
     * head against the item table, u = W p_u, score e_i^T W p_u (matrix factorisation with the user
     * factors W p_u); trained with `loss: bpr` */
    {"bprmf", "readout: none\n", "none"},
    /* BERT4Rec-like (Sun et al. 2019; appendix C.2: 2 layers, 4 heads): bidirectional
     * self-attention and point-wise feed-forward blocks trained on the Cloze objective (mask
     * probability 0.2), read out at the masked position, with learned position embeddings; no
     * dropout in Stage 1 (docs/arch.md) */
    {"bert4rec", "blocks: (sa4, gelu, ln) (conv1, gelu, ln) (sa4, gelu, ln) (conv1, gelu, ln)\nreadout: last\nshortcut: se\ncloze: 0.2\npositions: learned\n", "200:relu,80:relu"},
    /* Caser (Tang and Wang 2018): no blocks; horizontal and vertical convolutions over the last
     * L = 5 items (5 vertical filters, 2 horizontal ones per height: AMEIR appendix C.2's Beauty
     * setting) as the read-out; Caser's fully connected layer z = ReLU(W [o_h, o_v, P_u] + b) is the
     * MLP (P_u: the dataset's user field, when opened with user_field: true), width 64 = the emb of the Table-2 configs (the MLP text cannot name the width d) */
    {"caser", "readout: caser\ncaser: 5 5 2\n", "64:relu"},
    /* AMEIR-A's blocks found on Beauty, Table 10 runs 1 to 4 */
    {"ameir-a1", "blocks: (dconv5, gelu, ln) (dconv5, identity, none) zero (dconv7, identity, none) zero (dconv7, identity, none)\nreadout: sum last\nshortcut: se\n", "200:relu,80:relu"},
    {"ameir-a2", "blocks: (sa4, swish, ln) (sa2, gelu, ln) (sa4, identity, ln) zero (gru, swish, ln) (dconv5, swish, none)\nreadout: sum last\nshortcut: se\n", "200:relu,80:relu"},
    {"ameir-a3", "blocks: (conv3, relu, ln) zero zero (sa4, identity, ln) (sa4, swish, ln) (dconv3, swish, none)\nreadout: sum last\nshortcut: se\n", "200:relu,80:relu"},
    {"ameir-a4", "blocks: (sa2, swish, ln) (sa4, swish, ln) (dconv3, relu, none) (gru, swish, ln) zero (gru, swish, none)\nreadout: sum last\nshortcut: se\n", "200:relu,80:relu"},
};

AMEIR_API ameir_status ameir_arch_preset(ameir_arch **out, ameir_context *ctx, const char *name,
                                         const char *mlp) {
  if (!out || !name) return ameir__error(ctx, AMEIR_EINVAL, "ameir_arch_preset: NULL argument");
  *out = NULL;
  const char *key = name;
  if (!strcasecmp(name, "wide&deep") || !strcasecmp(name, "wdl")) key = "widedeep";
  size_t i, n = sizeof PRESETS / sizeof PRESETS[0];
  for (i = 0; i < n; i++)
    if (!strcasecmp(key, PRESETS[i].name)) break;
  if (i == n) {
    char list[512] = "";
    for (size_t j = 0; j < n; j++) {
      strncat(list, j ? ", " : "", sizeof list - strlen(list) - 1);
      strncat(list, PRESETS[j].name, sizeof list - strlen(list) - 1);
    }
    return ameir__error(ctx, AMEIR_ENOTFOUND, "unknown model '%s' (%s)", name, list);
  }
  ameir_arch *a = NULL;
  ameir_status st = ameir_arch_parse(&a, ctx, PRESETS[i].text);
  if (st) return st;
  const char *m = mlp ? mlp : PRESETS[i].mlp ? PRESETS[i].mlp : "400:relu,400:relu,400:relu";
  free(a->mlp);
  a->mlp = NULL;
  a->n_mlp = 0;
  st = ameir__mlp_parse(ctx, m, &a->mlp, &a->n_mlp);
  if (st) { ameir_arch_free(a); return st; }
  *out = a;
  return AMEIR_OK;
}

typedef struct { char *s; size_t n, cap; int oom; } sbuf;
static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) { b->oom = 1; return; }
    if (b->s && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
    size_t nc = (b->cap ? b->cap * 2 : 256) + (size_t)k;
    char *ns = realloc(b->s, nc);
    if (!ns) { b->oom = 1; return; }
    b->s = ns;
    b->cap = nc;
  }
}

AMEIR_API ameir_status ameir_arch_to_string(const ameir_arch *a, char **out) {
  if (!a || !out) return ameir__error(NULL, AMEIR_EINVAL, "ameir_arch_to_string: NULL argument");
  *out = NULL;
  sbuf b = {0};
  sb_add(&b, "blocks:");
  for (int32_t i = 0; i < a->n_blocks; i++) {
    const ameir__block *k = &a->blocks[i];
    if (k->layer == AMEIR_LAYER_ZERO) sb_add(&b, " zero");
    else sb_add(&b, " (%s, %s, %s)", ameir__layer_name(k->layer), ameir__act_name(k->act),
                k->norm == AMEIR_NORM_LN ? "ln" : "none");
  }
  sb_add(&b, "\nreadout:");
  if (!a->readout) sb_add(&b, " none");
  if (a->readout & AMEIR_READOUT_SUM) sb_add(&b, " sum");
  if (a->readout & AMEIR_READOUT_LAST) sb_add(&b, " last");
  if (a->readout & AMEIR_READOUT_ATT) sb_add(&b, " att");
  if (a->readout & AMEIR_READOUT_FIELD) sb_add(&b, " field");
  if (a->readout & AMEIR_READOUT_CASER) sb_add(&b, " caser");
  sb_add(&b, "\ninteractions:");
  for (int32_t i = 0; i < a->n_inter; i++) {
    sb_add(&b, " (");
    for (int32_t j = 0; j < a->inter[i].order; j++) sb_add(&b, "%s%s", j ? ", " : "", a->inter[i].fields[j]);
    sb_add(&b, ")");
  }
  sb_add(&b, "\nmlp:");
  for (int32_t i = 0; i < a->n_mlp; i++) sb_add(&b, " (%d, %s)", (int)a->mlp[i].width, ameir__act_name(a->mlp[i].act));
  sb_add(&b, "\nshortcut: %s\nextras:", a->shortcut == AMEIR_SHORTCUT_SE ? "se" : "none");
  if (!a->extras) sb_add(&b, " none");
  if (a->extras & AMEIR_EXTRA_LINEAR) sb_add(&b, " linear");
  if (a->extras & AMEIR_EXTRA_FM) sb_add(&b, " fm");
  sb_add(&b, "\n");
  /* the towers only when present: architectures without them print as before */
  if (a->n_cross) sb_add(&b, "cross: %d\n", (int)a->n_cross);
  if (a->n_cin) {
    sb_add(&b, "cin:");
    for (int32_t i = 0; i < a->n_cin; i++) sb_add(&b, " %d", (int)a->cin[i]);
    sb_add(&b, "\n");
  }
  if (a->inner_products) sb_add(&b, "products: inner\n");
  if (a->fibinet) sb_add(&b, "fibinet: %d\n", (int)a->fibinet);
  if (a->n_autoint)
    sb_add(&b, "autoint: %d%s%s\n", (int)a->n_autoint, a->autoint_act == AMEIR_ACT_RELU ? "" : " ",
           a->autoint_act == AMEIR_ACT_RELU ? "" : ameir__act_name(a->autoint_act));
  if (a->cloze > 0) {   /* the shortest text that parses back to the same number */
    char num[32];
    for (int prec = 6; prec <= 17; prec++) {
      snprintf(num, sizeof num, "%.*g", prec, a->cloze);
      if (strtod(num, NULL) == a->cloze) break;
    }
    if (a->cloze_last == AMEIR_CLOZE_LAST_DEFAULT) sb_add(&b, "cloze: %s\n", num);
    else sb_add(&b, "cloze: %s %.17g\n", num, a->cloze_last);
  }
  if (a->positions) sb_add(&b, "positions: learned\n");
  if (a->readout & AMEIR_READOUT_CASER)
    sb_add(&b, "caser: %d %d %d\n", (int)a->caser_l, (int)a->caser_nv, (int)a->caser_nh);
  if (b.oom) { free(b.s); return ameir__error(NULL, AMEIR_ENOMEM, "out of memory"); }
  *out = b.s;
  return AMEIR_OK;
}

ameir_status ameir__arch_copy(ameir_context *ctx, const ameir_arch *src, ameir_arch **out) {
  char *s = NULL;
  ameir_status st = ameir_arch_to_string(src, &s);
  if (st) return ameir__error(ctx, st, "%s", ameir_last_error());
  st = ameir_arch_parse(out, ctx, s);
  free(s);
  return st;
}
