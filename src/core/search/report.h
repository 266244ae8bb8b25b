/* What a search reports (report.yaml, report.html): filled by the searcher, written by report.c. */
#ifndef AMEIR_CORE_SEARCH_REPORT_H
#define AMEIR_CORE_SEARCH_REPORT_H

#include "../base/base.h"
#include "../model/arch.h"

typedef struct {
  int32_t ran;              /* the step ran to the end */
  double seconds;           /* wall time of the step */
  char *arch;               /* the architecture it chose, in the paper's notation (owned) */
  double valid_metric;      /* its metric on the whole validation split */
  int64_t params, flops;    /* dense + embedding parameters, FLOPs per sample of that architecture */
  int32_t n_samples;        /* children sampled and scored on the validation subset */
  double *sample_metric;    /* [n_samples] their metrics (the distribution of the report) */
  int32_t n_top;            /* the top-k list: architecture text and metric, best first */
  char **top_arch;
  double *top_metric;
  int32_t cycles;           /* step 2: SMBO cycles run, candidates of each (at most 16) */
  int32_t cycle_candidates[16];
} ameir__step_report;

typedef struct {
  const char *dataset;      /* dataset name */
  const char *config;       /* its YAML path, or "" */
  int32_t task;             /* AMEIR_TASK_CTR or AMEIR_TASK_RETRIEVAL */
  const char *metric_name;  /* "auc" or "hr10" */
  uint64_t seed;
  int32_t threads;
  int32_t from_scratch;
  ameir__step_report step[5];      /* index 1..3 the steps, 4 the derivation (test metrics below) */
  const ameir_arch *final_arch;    /* the derived architecture, or NULL before the derivation */
  double test_metric[4];           /* CTR: auc, logloss; retrieval: hr10, ndcg10 (NaN if absent) */
  const char *test_names[4];       /* their names, NULL after the last */
  const char *method;              /* NULL or "ameir": the three steps; else the method whose one
                                    * search over every subspace is step 3 (docs/search.md) */
  const char *method_note;         /* that search's budget and why it stopped, or NULL */
} ameir__search_report;

/* Writes report.yaml: per step the chosen architecture, its validation metric, time, params and
 * FLOPs, the top-k list; the test metrics. Atomic (temporary file and rename). */
ameir_status ameir__report_write_yaml(ameir_context *ctx, const ameir__search_report *r, const char *path);

/* Writes report.html: self-contained (inline CSS and SVG, no external assets): per step a
 * histogram of sample_metric, the top-k table, and the final architecture drawn as a diagram
 * (Stage 1 blocks, read-out, Stage 2 interactions, Stage 3 MLP, SE shortcut, output). Atomic. */
ameir_status ameir__report_write_html(ameir_context *ctx, const ameir__search_report *r, const char *path);

#endif
