/* The Caser baseline (readout `caser`, key `caser: L NV NH`): its architecture text prints and
 * parses back (and architectures without it print as before), bad text gets a clear message,
 * L is checked against the history length, and the preset trains on a retrieval dataset and
 * ranks exactly the same after a save and load. (The whole-model gradient check is in
 * tests/model/model.c, the op's in tests/ops/caser.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ameir/ameir.h"
#include "core/model/arch.h"
#include "synth.h"
#include "test.h"

static ameir_context *ctx_new(void) {
  ameir_context *ctx = NULL;
  if (ameir_context_create(&ctx, "cpu")) t__fail(__FILE__, __LINE__, "context: %s", ameir_last_error());
  ameir_context_set_int(ctx, "threads", 2);
  return ctx;
}

static char *print_arch(const ameir_arch *a) {
  char *s = NULL;
  T_OK(ameir_arch_to_string(a, &s));
  return s;
}

void test_model_caser__arch(void) {
  ameir_context *ctx = ctx_new();
  ameir_arch *a = NULL, *b = NULL;
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (conv1, relu, ln)\ncaser: 4, 3, 1\nreadout: last caser\nmlp: (8, relu)\n"));
  T_ASSERT(a->caser_l == 4 && a->caser_nv == 3 && a->caser_nh == 1);
  char *s = print_arch(a);
  T_ASSERT_MSG(strstr(s, "readout: last caser\n") && strstr(s, "caser: 4 3 1\n"), "printed: %s", s);
  T_OK(ameir_arch_parse(&b, ctx, s));
  char *s2 = print_arch(b);
  T_ASSERT_MSG(!strcmp(s, s2), "reprinted: %s", s2);
  ameir_free(s), ameir_free(s2), ameir_arch_free(a), ameir_arch_free(b);
  /* the readout word alone takes AMEIR's Beauty setting; `caser: L` the other defaults */
  T_OK(ameir_arch_parse(&a, ctx, "readout: caser\n"));
  T_ASSERT(a->caser_l == 5 && a->caser_nv == 5 && a->caser_nh == 2);
  ameir_arch_free(a);
  T_OK(ameir_arch_parse(&a, ctx, "readout: caser\ncaser: 3\n"));
  T_ASSERT(a->caser_l == 3 && a->caser_nv == 5 && a->caser_nh == 2);
  ameir_arch_free(a);
  /* no caser line unless present: older architectures print as before */
  T_OK(ameir_arch_parse(&a, ctx, "blocks: (sa2, identity, ln)\nreadout: sum last\n"));
  s = print_arch(a);
  T_ASSERT_MSG(!strstr(s, "caser"), "printed: %s", s);
  ameir_free(s), ameir_arch_free(a);
  /* the preset: no blocks, the read-out alone, one ReLU layer of width 64 (emb of the Table-2
   * configs), no SE shortcut */
  T_OK(ameir_arch_preset(&a, ctx, "caser", NULL));
  s = print_arch(a);
  T_ASSERT_MSG(strstr(s, "blocks:\n") && strstr(s, "readout: caser\n") && strstr(s, "caser: 5 5 2\n") &&
               strstr(s, "mlp: (64, relu)\n") && strstr(s, "shortcut: none\n"), "caser: %s", s);
  ameir_free(s), ameir_arch_free(a);
  static const struct { const char *text, *expect; } bad[] = {
      {"readout: caser\ncaser: 0 5 2\n", "Markov order L must be 1 to"},
      {"readout: caser\ncaser: 999 5 2\n", "Markov order L must be 1 to 256"},
      {"readout: caser\ncaser: 5 -1 2\n", "vertical filters NV must be 0 to"},
      {"readout: caser\ncaser: 5 2 -3\n", "horizontal filters NH must be 0 to"},
      {"readout: caser\ncaser: 5 0 0\n", "NV and NH are both 0"},
      {"readout: caser\ncaser: 5 2 2 2\n", "3 numbers"},
      {"readout: caser\ncaser: five\n", "Markov order L"},
      {"readout: caser\ncaser:\n", "caser takes 'L NV NH'"},
      {"readout: sum\ncaser: 5 5 2\n", "the readout line has no 'caser'"},
      {"readout: field caser\n", "excludes sum, last, att and caser"},
      {"readout: cnn\n", "sum last att caser"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    a = NULL;
    T_ASSERT_MSG(ameir_arch_parse(&a, ctx, bad[i].text) == AMEIR_EFORMAT && !a, "accepted '%s'", bad[i].text);
    T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), bad[i].expect), "'%s': message '%s' lacks '%s'", bad[i].text,
                 ameir_context_last_error(ctx), bad[i].expect);
  }
  /* L beyond the history length: refused by the model, naming both */
  ameir_dataset *ds = synth_retrieval(ctx, 30, 20, 5, 40);
  T_OK(ameir_arch_parse(&a, ctx, "readout: caser\ncaser: 6 1 1\n"));
  ameir_model *m = NULL;
  T_ASSERT_EQ_INT(ameir_model_create(&m, ctx, a, ds), AMEIR_ECONFIG);
  T_ASSERT_MSG(strstr(ameir_context_last_error(ctx), "L = 6 exceeds the history length 5"), "message: %s",
               ameir_context_last_error(ctx));
  ameir_arch_free(a);
  synth_free(ds);
  ameir_context_free(ctx);
}

/* The preset learns the synthetic walk (the next item follows from the last ones: Caser's
 * Markov window sees them), and a saved model ranks exactly as before. */
void test_model_caser__preset_trains(void) {
  ameir_context *ctx = ctx_new();
  ameir_dataset *ds = synth_retrieval(ctx, 1500, 200, 8, 41);
  ameir_arch *a = NULL;
  T_OK(ameir_arch_preset(&a, ctx, "caser", NULL));
  ameir_model *m = NULL;
  T_OK(ameir_model_create(&m, ctx, a, ds));
  ameir_arch_free(a);
  T_OK(ameir_model_set_option(m, "emb", "32"));
  T_OK(ameir_model_set_option(m, "epochs", "6"));
  T_OK(ameir_model_set_option(m, "batch", "128"));
  T_OK(ameir_model_set_option(m, "lr", "3e-3"));
  T_OK(ameir_model_set_option(m, "neg", "5"));
  T_OK(ameir_model_train(m, ds));
  int32_t id = AMEIR_METRIC_HR10;
  double hr;
  T_OK(ameir_model_evaluate(m, ds, AMEIR_SPLIT_TEST, 1, &id, &hr));
  printf("     caser: HR@10 full %.4f\n", hr);
  T_ASSERT_MSG(hr > 0.30, "full-ranking HR@10 %.4f (random: 0.05)", hr);   /* 10 of 199 at random */
  char path[600];
  snprintf(path, sizeof path, "%s/caser.ameir", t_tmpdir());
  T_OK(ameir_model_save(m, path));
  ameir_model *l = NULL;
  T_OK(ameir_model_load(&l, ctx, path));
  int64_t n = ameir_dataset_rows(ds, AMEIR_SPLIT_TEST);
  int32_t k = 5, *ta = malloc(sizeof(int32_t) * (size_t)(n * k)), *tb = malloc(sizeof(int32_t) * (size_t)(n * k));
  float *sa = malloc(sizeof(float) * (size_t)(n * k)), *sb = malloc(sizeof(float) * (size_t)(n * k));
  T_OK(ameir_model_topk(m, ds, AMEIR_SPLIT_TEST, 0, n, k, 1, ta, sa));
  T_OK(ameir_model_topk(l, ds, AMEIR_SPLIT_TEST, 0, n, k, 1, tb, sb));
  T_ASSERT(!memcmp(ta, tb, sizeof(int32_t) * (size_t)(n * k)) && !memcmp(sa, sb, sizeof(float) * (size_t)(n * k)));
  free(ta), free(tb), free(sa), free(sb);
  ameir_model_free(l);
  ameir_model_free(m);
  synth_free(ds);
  ameir_context_free(ctx);
}
