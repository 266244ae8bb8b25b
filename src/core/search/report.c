/* The search report: report.yaml (for programs) and report.html (for people). Both are built in
 * memory and written once, atomically, so a reader never sees half a report and one write error
 * check covers the whole file. */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ameir/dataset.h"

/* ---- a growing text buffer; an allocation failure is remembered and reported once ---- */
typedef struct { char *s; size_t n, cap; int oom; } sbuf;

static int grow(sbuf *b, size_t extra) {
  if (b->oom) return 0;
  if (b->n + extra + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 8192;
  while (cap < b->n + extra + 1) cap *= 2;
  char *p = realloc(b->s, cap);
  if (!p) { b->oom = 1; return 0; }
  b->s = p;
  b->cap = cap;
  return 1;
}

static void put_raw(sbuf *b, const char *s, size_t n) {
  if (!grow(b, n)) return;
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void put(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void put(sbuf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0) { b->oom = 1; return; }
  if ((size_t)k < sizeof tmp) { put_raw(b, tmp, (size_t)k); return; }
  if (!grow(b, (size_t)k)) return;   /* longer than tmp: format straight into the buffer */
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

/* Writes PATH.tmp.PID, syncs it, renames it over path: the old report stays until the new one
 * is complete. Frees the buffer. */
static ameir_status commit(ameir_context *ctx, sbuf *b, const char *path) {
  if (b->oom) { free(b->s); return ameir__error(ctx, AMEIR_ENOMEM, "%s: out of memory", path); }
  size_t tl = strlen(path) + 32;
  char *tmp = malloc(tl);
  if (!tmp) { free(b->s); return ameir__error(ctx, AMEIR_ENOMEM, "out of memory"); }
  snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
  int err = 0;
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    err = errno;
  } else {
    if (fwrite(b->s, 1, b->n, f) != b->n || fflush(f) != 0 || fsync(fileno(f)) != 0) err = errno ? errno : EIO;
    if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) unlink(tmp);
  }
  free(tmp);
  free(b->s);
  if (err) return ameir__error(ctx, AMEIR_EIO, "%s: cannot write: %s", path, strerror(err));
  return AMEIR_OK;
}

static const char *task_name(int32_t task) {
  return task == AMEIR_TASK_CTR ? "ctr" : task == AMEIR_TASK_RETRIEVAL ? "retrieval" : "unknown";
}

static const char *const STEP_TITLE[5] = {"", "step 1: behaviour blocks", "step 2: interactions",
                                          "step 3: MLP", "derivation"};

static int other_method(const ameir__search_report *r) { return r->method && strcmp(r->method, "ameir"); }

/* a step's title; the other methods' one search over every subspace is step 3 */
static const char *step_title(const ameir__search_report *r, int s, char *buf, size_t n) {
  if (s != 3 || !other_method(r)) return STEP_TITLE[s];
  snprintf(buf, n, "search (%s, every subspace at once)", r->method);
  return buf;
}

/* ---- YAML ---- */

/* A double-quoted scalar: the one YAML style that can hold any text. */
static void y_quoted(sbuf *b, const char *s) {
  put_raw(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    if (*p == '"' || *p == '\\') { put_raw(b, "\\", 1); put_raw(b, (const char *)p, 1); }
    else if (*p == '\n') put_raw(b, "\\n", 2);
    else if (*p == '\t') put_raw(b, "\\t", 2);
    else if (*p < 0x20 || *p == 0x7f) put(b, "\\x%02x", *p);
    else put_raw(b, (const char *)p, 1);
  }
  put_raw(b, "\"", 1);
}

static void y_num(sbuf *b, double v) {
  if (isnan(v)) put(b, ".nan");
  else if (isinf(v)) put(b, v > 0 ? ".inf" : "-.inf");
  else put(b, "%.6f", v);
}

/* `key: value` for architecture text: a literal block (`|`) so the lines read as they print,
 * with an explicit indentation indicator (text may start with a space) and the chomping that
 * keeps its trailing newlines exactly. Text with control characters falls back to quoting. */
static void y_text(sbuf *b, int indent, const char *key, const char *s) {
  put(b, "%*s%s: ", indent, "", key);
  if (!s) { put(b, "null\n"); return; }
  int plain = *s != 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) plain = 0;
  if (!plain) { y_quoted(b, s); put(b, "\n"); return; }
  size_t n = strlen(s), nl = 0;
  while (nl < n && s[n - 1 - nl] == '\n') nl++;
  put(b, "|2%s\n", nl == 0 ? "-" : nl == 1 ? "" : "+");
  for (const char *p = s; *p;) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len) { put(b, "%*s", indent + 2, ""); put_raw(b, p, len); }
    put_raw(b, "\n", 1);
    p += len + (e ? 1 : 0);
  }
}

ameir_status ameir__report_write_yaml(ameir_context *ctx, const ameir__search_report *r, const char *path) {
  if (!r || !path) return ameir__error(ctx, AMEIR_EINVAL, "report: NULL argument");
  sbuf b = {0};
  put(&b, "# AMEIR search report (libameir)\ndataset: ");
  y_quoted(&b, r->dataset);
  put(&b, "\nconfig: ");
  y_quoted(&b, r->config);
  put(&b, "\ntask: %s\nmetric: ", task_name(r->task));
  y_quoted(&b, r->metric_name);
  put(&b, "\nseed: %llu\nthreads: %d\nfrom_scratch: %s\n", (unsigned long long)r->seed, (int)r->threads,
      r->from_scratch ? "true" : "false");
  if (other_method(r)) {
    put(&b, "method: ");
    y_quoted(&b, r->method);
    put(&b, "\n");
    if (r->method_note) { put(&b, "method_note: "); y_quoted(&b, r->method_note); put(&b, "\n"); }
  }
  int any = 0;
  for (int s = 1; s <= 3; s++) any |= r->step[s].ran != 0;
  put(&b, "steps:%s\n", any ? "" : " {}");
  for (int s = 1; s <= 3; s++) {
    const ameir__step_report *st = &r->step[s];
    if (!st->ran) continue;
    put(&b, "  step%d:\n    seconds: %.3f\n", s, st->seconds);
    y_text(&b, 4, "arch", st->arch);
    put(&b, "    valid_metric: ");
    y_num(&b, st->valid_metric);
    put(&b, "\n    params: %lld\n    flops: %lld\n    samples: %d\n", (long long)st->params,
        (long long)st->flops, (int)st->n_samples);
    if (s == 2 && st->cycles > 0) {
      int nc = st->cycles < 16 ? st->cycles : 16;
      put(&b, "    cycles: %d\n    cycle_candidates: [", (int)st->cycles);
      for (int c = 0; c < nc; c++) put(&b, "%s%d", c ? ", " : "", (int)st->cycle_candidates[c]);
      put(&b, "]\n");
    }
    put(&b, "    top:%s\n", st->n_top > 0 ? "" : " []");
    for (int32_t i = 0; i < st->n_top; i++) {
      put(&b, "      - metric: ");
      y_num(&b, st->top_metric ? st->top_metric[i] : NAN);
      put(&b, "\n");
      y_text(&b, 8, "arch", st->top_arch ? st->top_arch[i] : NULL);
    }
  }
  if (r->final_arch || r->step[4].ran) {
    char *text = NULL;
    if (r->final_arch) {
      ameir_status st = ameir_arch_to_string(r->final_arch, &text);
      if (st) { free(b.s); return ameir__error(ctx, st, "report: cannot print the derived architecture"); }
    }
    put(&b, "derived:\n");
    y_text(&b, 2, "arch", text ? text : r->step[4].arch);
    free(text);
    if (r->step[4].ran) {
      put(&b, "  seconds: %.3f\n  valid_metric: ", r->step[4].seconds);
      y_num(&b, r->step[4].valid_metric);
      put(&b, "\n  params: %lld\n  flops: %lld\n", (long long)r->step[4].params, (long long)r->step[4].flops);
    }
  }
  put(&b, "test:%s\n", r->test_names[0] ? "" : " {}");
  for (int i = 0; i < 4 && r->test_names[i]; i++) {
    const char *k = r->test_names[i];   /* a plain key when it is a plain word (auc, hr10) */
    int plain = (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z');
    for (const char *p = k; *p; p++)
      plain &= (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
    put(&b, "  ");
    if (plain) put(&b, "%s", k);
    else y_quoted(&b, k);
    put(&b, ": ");
    y_num(&b, r->test_metric[i]);
    put(&b, "\n");
  }
  return commit(ctx, &b, path);
}

/* ---- HTML ---- */

static void h_esc(sbuf *b, const char *s) {
  for (const char *p = s ? s : ""; *p; p++) {
    switch (*p) {
      case '&': put(b, "&amp;"); break;
      case '<': put(b, "&lt;"); break;
      case '>': put(b, "&gt;"); break;
      case '"': put(b, "&quot;"); break;
      case '\'': put(b, "&#39;"); break;
      default: put_raw(b, p, 1);
    }
  }
}

static void h_num(sbuf *b, double v) {
  if (isfinite(v)) put(b, "%.6f", v);
  else put(b, "%s", isnan(v) ? "n/a" : v > 0 ? "inf" : "-inf");
}

/* 20 bins between the smallest and largest finite sample; all-equal samples share one bin. */
static void h_hist(sbuf *b, const ameir__step_report *st, const char *metric) {
  enum { NB = 20, W = 520, H = 200, L = 50, R = 10, T = 10, B = 40 };
  double lo = INFINITY, hi = -INFINITY;
  int32_t n = 0, cnt[NB] = {0}, top = 0;
  for (int32_t i = 0; st->sample_metric && i < st->n_samples; i++) {
    double v = st->sample_metric[i];
    if (!isfinite(v)) continue;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    n++;
  }
  put(b, "<h3>Distribution of the sampled children</h3>\n");
  put(b, "<svg class=\"hist\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, H, W, H);
  if (n == 0) {
    put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no samples</text>\n</svg>\n", W / 2, H / 2);
    return;
  }
  for (int32_t i = 0; i < st->n_samples; i++) {
    double v = st->sample_metric[i];
    if (!isfinite(v)) continue;
    int k = hi > lo ? (int)((v - lo) / (hi - lo) * NB) : 0;
    k = k < 0 ? 0 : k >= NB ? NB - 1 : k;
    if (++cnt[k] > top) top = cnt[k];
  }
  const double pw = W - L - R, ph = H - T - B, bw = pw / NB;
  for (int k = 0; k < NB; k++) {
    double h = ph * cnt[k] / top;
    if (cnt[k])
      put(b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%d</title></rect>\n",
          L + k * bw + 1, T + ph - h, bw - 2, h, (int)cnt[k]);
  }
  put(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", L, H - B, W - R, H - B);
  put(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", L, T, L, H - B);
  put(b, "<text x=\"%d\" y=\"%d\">%.6g</text>\n", L, H - B + 16, lo);
  put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.6g</text>\n", W - R, H - B + 16, hi);
  put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", L + (W - L - R) / 2, H - 6);
  h_esc(b, metric);
  put(b, " (%d samples)</text>\n", (int)n);
  put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text>\n", L - 4, T + 10, (int)top);
  put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n</svg>\n", L - 4, H - B);
}

/* One box of the diagram: centre x, top y, width; the class picks its colour (the zero layer's
 * draws it dashed). label_is_html: the label is already escaped. */
static void box(sbuf *b, double cx, double y, double w, const char *cls, const char *label, int label_is_html) {
  put(b, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"30\" rx=\"4\"/>", cls, cx - w / 2, y, w);
  put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, y + 19);
  if (label_is_html) put(b, "%s", label);
  else h_esc(b, label);
  put(b, "</text>\n");
}

static void arrow(sbuf *b, double x1, double y1, double x2, double y2) {
  put(b, "<line class=\"edge\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" marker-end=\"url(#arr)\"/>\n",
      x1, y1, x2, y2);
}

/* Bottom to top: inputs; Stage 1 blocks and the read-out (left), Stage 2 interactions (right);
 * their concatenation; Stage 3 MLP; the SE shortcut beside it; the output. */
static void h_diagram(sbuf *b, const ameir_arch *a, int32_t task) {
  enum { W = 680, RS = 50, BW = 230 };
  const double xl = 185, xr = 485, xc = 335;
  int left = a->n_blocks > 0 || a->readout != 0;
  int nl = left ? a->n_blocks + 2 : 0, nr = 1 + a->n_inter;
  int rows = (nl > nr ? nl : nr) + 2 + a->n_mlp;
  int H = rows * RS + 20;
#define ROW(i) ((double)H - RS * ((i) + 1))
  char lab[256];
  put(b, "<svg class=\"arch\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, H, W, H);
  put(b, "<defs><marker id=\"arr\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" "
         "markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\"/></marker></defs>\n");
  int cat = (nl > nr ? nl : nr);   /* row of the concatenation */
  if (left) {
    box(b, xl, ROW(0), BW, "in", "behaviour sequence", 0);
    for (int32_t i = 0; i < a->n_blocks; i++) {
      const ameir__block *k = &a->blocks[i];
      if (k->layer == AMEIR_LAYER_ZERO) snprintf(lab, sizeof lab, "zero (skip)");
      else snprintf(lab, sizeof lab, "%s / %s / %s", ameir__layer_name(k->layer), ameir__act_name(k->act),
                    k->norm == AMEIR_NORM_LN ? "ln" : "none");
      box(b, xl, ROW(i + 1), BW, k->layer == AMEIR_LAYER_ZERO ? "s1 zero" : "s1", lab, 0);
      arrow(b, xl, ROW(i), xl, ROW(i + 1) + 30);
    }
    snprintf(lab, sizeof lab, "read-out:%s%s%s%s%s", a->readout & AMEIR_READOUT_SUM ? " sum" : "",
             a->readout & AMEIR_READOUT_LAST ? " last" : "", a->readout & AMEIR_READOUT_ATT ? " att" : "",
             a->readout & AMEIR_READOUT_CASER ? " caser" : "",
             a->readout & AMEIR_READOUT_FIELD ? " field (sum-pooled)" : "");
    box(b, xl, ROW(nl - 1), BW, "ro", lab, 0);
    arrow(b, xl, ROW(nl - 2), xl, ROW(nl - 1) + 30);
    arrow(b, xl, ROW(nl - 1), xc - 20, ROW(cat) + 30);
    if (a->readout != AMEIR_READOUT_FIELD)   /* sum-pooling the behaviours is no Stage 1 */
      put(b, "<text class=\"stage\" x=\"8\" y=\"%.1f\">Stage 1</text>\n", ROW(1) + 19);
  }
  box(b, xr, ROW(0), BW, "in", "fields", 0);
  for (int32_t i = 0; i < a->n_inter; i++) {
    sbuf t = {0};
    for (int32_t j = 0; j < a->inter[i].order; j++) {
      if (j) put(&t, " &#8857; ");
      h_esc(&t, a->inter[i].fields[j]);
    }
    box(b, xr, ROW(i + 1), BW, "s2", t.oom || !t.s ? "?" : t.s, 1);
    b->oom |= t.oom;
    free(t.s);
  }
  if (a->n_inter) {   /* the products are parallel: one group, and the fields also go around it */
    put(b, "<rect class=\"grp\" x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"%d\"/>\n", xr - BW / 2 - 8,
        ROW(a->n_inter) - 8, BW + 16, (int)(a->n_inter - 1) * RS + 46);
    put(b, "<text class=\"stage\" x=\"%.1f\" y=\"%.1f\">Stage 2</text>\n", xr + BW / 2 + 14, ROW(1) + 19);
    arrow(b, xr, ROW(0), xr, ROW(1) + 38);
    arrow(b, xr, ROW(a->n_inter) - 8, xc + 60, ROW(cat) + 30);
    put(b, "<polyline class=\"edge\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" marker-end=\"url(#arr)\"/>\n",
        xr - BW / 2, ROW(0) + 15, xc + 10, ROW(0) + 15, xc + 10, ROW(cat) + 30);
  } else {
    arrow(b, xr, ROW(0), xc + 20, ROW(cat) + 30);
  }
  box(b, xc, ROW(cat), BW, "cat", "concatenate", 0);
  for (int32_t i = 0; i < a->n_mlp; i++) {
    snprintf(lab, sizeof lab, "%d %s", (int)a->mlp[i].width, ameir__act_name(a->mlp[i].act));
    box(b, xc, ROW(cat + 1 + i), BW, "s3", lab, 0);
    arrow(b, xc, ROW(cat + i), xc, ROW(cat + 1 + i) + 30);
  }
  if (a->n_mlp) put(b, "<text class=\"stage\" x=\"8\" y=\"%.1f\">Stage 3</text>\n", ROW(cat + 1) + 19);
  int out = cat + 1 + a->n_mlp;
  box(b, xc, ROW(out), BW, "out", task == AMEIR_TASK_RETRIEVAL ? "output (user vector)" : "output (logit)", 0);
  arrow(b, xc, ROW(out - 1), xc, ROW(out) + 30);
  if (a->shortcut == AMEIR_SHORTCUT_SE) {   /* eq. (5): from the concatenation around the MLP */
    const double x = xc + BW / 2 + 95, y = ROW(cat + (out - cat) / 2.0);
    box(b, x, y, 150, "se", "SE shortcut", 0);
    arrow(b, xc + BW / 2, ROW(cat) + 15, x, y + 30);
    arrow(b, x, y, xc + BW / 2, ROW(out) + 15);
  }
  if (a->extras) {
    snprintf(lab, sizeof lab, "%s%s%s", a->extras & AMEIR_EXTRA_LINEAR ? "linear" : "",
             a->extras == (AMEIR_EXTRA_LINEAR | AMEIR_EXTRA_FM) ? " + " : "", a->extras & AMEIR_EXTRA_FM ? "FM" : "");
    box(b, xc - BW / 2 - 90, ROW(out), 120, "se", lab, 0);
    arrow(b, xc - BW / 2 - 30, ROW(out) + 15, xc - BW / 2, ROW(out) + 15);
  }
#undef ROW
  put(b, "</svg>\n");
}

ameir_status ameir__report_write_html(ameir_context *ctx, const ameir__search_report *r, const char *path) {
  if (!r || !path) return ameir__error(ctx, AMEIR_EINVAL, "report: NULL argument");
  sbuf b = {0};
  const char *metric = r->metric_name ? r->metric_name : "metric";
  put(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>AMEIR search: ");
  h_esc(&b, r->dataset);
  put(&b, "</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;color:#222;max-width:70em}\n"
          "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;"
          "text-align:left;vertical-align:top}\nth{background:#eee}pre{margin:0;font-size:85%%}\n"
          "svg text{font-size:12px;font-family:sans-serif}.bar{fill:#4a7ebb}.axis{stroke:#333}\n"
          ".arch rect{fill:#f4f4f4;stroke:#333}.arch .in{fill:#e8eef8}.arch .s1{fill:#e6f2e6}"
          ".arch .zero{fill:#fff;stroke-dasharray:5,4}.arch .ro{fill:#fff4d6}.arch .s2{fill:#f6e6f2}"
          ".arch .s3{fill:#e6f0f6}.arch .se{fill:#fde8e0}.arch .out{fill:#ddd}\n"
          ".edge{stroke:#555;fill:none}.arch .grp{fill:none;stroke:#999;stroke-dasharray:3,3}"
          ".stage{font-weight:bold}\n</style>\n</head>\n<body>\n<h1>AMEIR search: ");
  h_esc(&b, r->dataset);
  put(&b, "</h1>\n<p>Task: %s, metric: ", task_name(r->task));
  h_esc(&b, metric);
  put(&b, ", seed: %llu, threads: %d%s", (unsigned long long)r->seed, (int)r->threads,
      r->from_scratch ? ", derived model trained from scratch" : "");
  if (r->config && *r->config) { put(&b, ", config: "); h_esc(&b, r->config); }
  put(&b, ".</p>\n<h2>Summary</h2>\n<table>\n<tr><th>step</th><th>seconds</th><th>validation ");
  h_esc(&b, metric);
  put(&b, "</th><th>params</th><th>FLOPs/sample</th><th>architecture</th></tr>\n");
  for (int s = 1; s <= 4; s++) {
    const ameir__step_report *st = &r->step[s];
    if (!st->ran) continue;
    char title[96];
    put(&b, "<tr><td>%s</td><td>%.1f</td><td>", step_title(r, s, title, sizeof title), st->seconds);
    h_num(&b, st->valid_metric);
    put(&b, "</td><td>%lld</td><td>%lld</td><td><pre>", (long long)st->params, (long long)st->flops);
    h_esc(&b, st->arch);
    put(&b, "</pre></td></tr>\n");
  }
  put(&b, "</table>\n");
  for (int s = 1; s <= 3; s++) {
    const ameir__step_report *st = &r->step[s];
    if (!st->ran) continue;
    char title[96];
    put(&b, "<h2>%s</h2>\n", step_title(r, s, title, sizeof title));
    if (s == 3 && other_method(r) && r->method_note) { put(&b, "<p>"); h_esc(&b, r->method_note); put(&b, ".</p>\n"); }
    if (s == 2 && st->cycles > 0) {
      put(&b, "<p>%d SMBO cycles; candidates per cycle:", (int)st->cycles);
      for (int c = 0; c < st->cycles && c < 16; c++) put(&b, " %d", (int)st->cycle_candidates[c]);
      put(&b, ".</p>\n");
    }
    h_hist(&b, st, metric);
    put(&b, "<h3>Top %d</h3>\n<table>\n<tr><th>#</th><th>", (int)st->n_top);
    h_esc(&b, metric);
    put(&b, "</th><th>architecture</th></tr>\n");
    for (int32_t i = 0; i < st->n_top; i++) {
      put(&b, "<tr><td>%d</td><td>", (int)i + 1);
      h_num(&b, st->top_metric ? st->top_metric[i] : NAN);
      put(&b, "</td><td><pre>");
      h_esc(&b, st->top_arch ? st->top_arch[i] : "");
      put(&b, "</pre></td></tr>\n");
    }
    put(&b, "</table>\n");
  }
  put(&b, "<h2>Test</h2>\n");
  if (!r->test_names[0]) put(&b, "<p>No test metrics.</p>\n");
  else put(&b, "<table>\n");
  for (int i = 0; i < 4 && r->test_names[i]; i++) {
    put(&b, "<tr><th>");
    h_esc(&b, r->test_names[i]);
    put(&b, "</th><td>");
    h_num(&b, r->test_metric[i]);
    put(&b, "</td></tr>\n");
  }
  if (r->test_names[0]) put(&b, "</table>\n");
  put(&b, "<h2>Final architecture</h2>\n");
  if (r->final_arch) h_diagram(&b, r->final_arch, r->task);
  else put(&b, "<p>No architecture was derived yet.</p>\n");
  put(&b, "</body>\n</html>\n");
  return commit(ctx, &b, path);
}
