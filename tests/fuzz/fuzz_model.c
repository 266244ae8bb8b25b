/* libFuzzer target of the model-file reader (`make fuzz`): every input is written to a file
 * and loaded with ameir_model_load; then, when its header's payload length fits the input, the
 * same input with the trailing FNV-1a checksum recomputed over the (mutated) payload is loaded
 * too, so that mutations get past the checksum into the section, schema and tensor readers
 * (without it almost every mutation stops at "checksum mismatch"). A model that loads is saved
 * again and reloaded, which must succeed. Any status is fine for the input itself; a crash, a
 * sanitizer report, a leak or a hang is a bug. Seeds: tests/fuzz/corpus_model/ (small valid
 * models of several kinds). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ameir/ameir.h"

static ameir_context *ctx;
static char in_path[256], out_path[256];

/* the file's checksum (src/core/model/model_io.c): FNV-1a 64 over the payload */
static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
  return h;
}

static void load(const uint8_t *data, size_t size) {
  FILE *f = fopen(in_path, "wb");
  if (!f) return;
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctx) {
    if (ameir_context_create(&ctx, "cpu")) abort();
    ameir_context_set_int(ctx, "threads", 1);
    snprintf(in_path, sizeof in_path, "/tmp/ameir-fuzz-model-%ld.in", (long)getpid());
    snprintf(out_path, sizeof out_path, "/tmp/ameir-fuzz-model-%ld.out", (long)getpid());
  }
  load(data, size);
  /* header: magic[8] version u32 endian u32 payload_length u64, then the payload, then u64 sum */
  uint64_t plen;
  if (size < 32) return 0;
  memcpy(&plen, data + 16, 8);
  if (plen > size - 32) return 0;
  uint64_t sum = fnv1a(data + 24, (size_t)plen);
  if (!memcmp(&sum, data + 24 + plen, 8)) return 0;   /* already right: loaded above */
  uint8_t *fixed = malloc(size);
  if (!fixed) return 0;
  memcpy(fixed, data, size);
  memcpy(fixed + 24 + plen, &sum, 8);
  load(fixed, size);
  free(fixed);
  return 0;
}
