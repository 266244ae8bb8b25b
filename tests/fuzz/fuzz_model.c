/* libFuzzer target of the model-file reader (`make fuzz`): every input is written to a file
 * and loaded with ameir_model_load; a model that loads is saved again and reloaded, which must
 * succeed. Any status is fine for the input itself; a crash, a sanitizer report, a leak or a
 * hang is a bug. Seeds: tests/fuzz/corpus_model/ (small valid models of several kinds). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ameir/ameir.h"

static ameir_context *ctx;
static char in_path[256], out_path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctx) {
    if (ameir_context_create(&ctx, "cpu")) abort();
    ameir_context_set_int(ctx, "threads", 1);
    snprintf(in_path, sizeof in_path, "/tmp/ameir-fuzz-model-%ld.in", (long)getpid());
    snprintf(out_path, sizeof out_path, "/tmp/ameir-fuzz-model-%ld.out", (long)getpid());
  }
  FILE *f = fopen(in_path, "wb");
  if (!f) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  ameir_model *m = NULL;
  if (ameir_model_load(&m, ctx, in_path) == AMEIR_OK) {
    if (ameir_model_save(m, out_path) != AMEIR_OK) abort();   /* a model that loads must save */
    ameir_model *again = NULL;
    if (ameir_model_load(&again, ctx, out_path) != AMEIR_OK) abort();
    ameir_model_free(again);
    ameir_model_free(m);
  }
  return 0;
}
