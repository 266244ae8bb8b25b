/* libameir: architectures. An architecture describes one model of the three-stage backbone in
 * the paper's notation (docs/arch.md), one `key: value` line per part:
 *
 *   blocks: (conv3, relu, ln) (sa2, gelu, none) zero      Stage 1, eq. (3); L_a entries
 *   readout: sum last att                                 Stage 1 read-out (or: field)
 *   interactions: (C1, C2) (C3, C5, C7)                   Stage 2, Hadamard products of fields
 *   mlp: (400, relu) (400, relu) (400, relu)              Stage 3, eq. (4)
 *   shortcut: se                                          eq. (5) SE shortcut, or none
 *   extras: linear fm                                     first-order and FM terms (baselines)
 *   cross: 3                                              DCN's cross network (baselines; CTR)
 *   cin: 128 128                                          xDeepFM's CIN layer widths (baselines; CTR)
 *   autoint: 3                                            AutoInt's attention layers (baselines; CTR)
 *   products: inner                                       IPNN's pairwise inner products (baselines)
 *   fibinet: 3                                            FiBiNET's SENET ratio (bilinear MLP input; CTR)
 *   cloze: 0.2                                            BERT4Rec's masked-item training (retrieval)
 *   positions: learned                                    a position embedding per history slot (BERT4Rec)
 *
 * Lines may come in any order; missing lines take their empty default (no blocks, no
 * interactions, no MLP, shortcut none, no extras, no towers). `#` starts a comment.
 *
 * Thread safety: an arch is immutable after it is made; it can be read from many threads.
 */
#ifndef AMEIR_ARCH_H
#define AMEIR_ARCH_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Parses an architecture from text (the notation above).
 *  @param out receives the arch; NULL on failure.
 *  @param ctx context for the error message (may be NULL: then ameir_last_error() has it).
 *  @return AMEIR_OK; AMEIR_EFORMAT (the message gives line and column); AMEIR_ENOMEM. Since 0.1. */
AMEIR_API ameir_status ameir_arch_parse(ameir_arch **out, ameir_context *ctx, const char *text);

/** Reads and parses an architecture file. AMEIR_EIO if it cannot be read. Since 0.1. */
AMEIR_API ameir_status ameir_arch_load(ameir_arch **out, ameir_context *ctx, const char *path);

/** Makes a named architecture (docs/arch.md lists them): the CTR baselines "dnn", "widedeep",
 *  "deepfm", "dcn", "xdeepfm", "autoint", "ipnn", "fibinet" (behaviours as sum-pooled fields), "lr", "fm", "din", "dien",
 *  "dsin", and the behaviour models "sasrec",
 *  "nextitnet", "gru4rec", "caser", "bert4rec" (retrieval only: masked-item training, `cloze: 0.2`),
 *  "pop", "bprmf", "ameir-a1".."ameir-a4" (AMEIR-A's blocks of Table 10). mlp is the
 *  MLP as text like "400:relu,400:relu,400:relu", or NULL for the preset's own (400-400-400
 *  ReLU for the CTR baselines, one 64-wide ReLU layer for caser, 200-80 for the others). AMEIR_ENOTFOUND for an unknown name
 *  (the message lists the known ones), AMEIR_EFORMAT for a bad MLP text. Since 0.1. */
AMEIR_API ameir_status ameir_arch_preset(ameir_arch **out, ameir_context *ctx, const char *name,
                                         const char *mlp);

/** Prints the architecture in the notation above; *out is a NUL-terminated string owned by the
 *  caller (free with ameir_free). Parsing it back gives an equal architecture. Since 0.1. */
AMEIR_API ameir_status ameir_arch_to_string(const ameir_arch *arch, char **out);

/** Frees the arch. NULL is a no-op. */
AMEIR_API void ameir_arch_free(ameir_arch *arch);

#ifdef __cplusplus
}
#endif

#endif
