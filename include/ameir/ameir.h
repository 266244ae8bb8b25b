/* libameir: automatic behaviour modeling, interaction exploration and MLP investigation for
 * recommender models (AMEIR). Umbrella header: include this one.
 *
 * Quick start (error checks elided; see examples/predict.c for a complete program):
 *
 *   ameir_context *ctx; ameir_context_create(&ctx, "cpu");
 *   ameir_dataset *ds;  ameir_dataset_open(&ds, ctx, "examples/configs/frappe.yaml");
 *   ameir_arch *arch;   ameir_arch_preset(&arch, ctx, "deepfm", "400:relu,400:relu,400:relu");
 *   ameir_model *m;     ameir_model_create(&m, ctx, arch, ds);
 *   ameir_model_train(m, ds);
 *   int32_t ids[2] = {AMEIR_METRIC_AUC, AMEIR_METRIC_LOGLOSS}; double v[2];
 *   ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 2, ids, v);
 */
#ifndef AMEIR_AMEIR_H
#define AMEIR_AMEIR_H

#include "common.h"
#include "context.h"
#include "dataset.h"
#include "arch.h"
#include "model.h"
#include "config.h"
#include "search.h"

#endif
