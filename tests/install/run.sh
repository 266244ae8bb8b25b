#!/usr/bin/env bash
# `make check` (STYLE.md "Tests"): install libameir into a temporary prefix, build the examples
# against that installed copy through pkg-config (examples/predict.c shared and static, the C++
# service of examples/cpp_service), run them and the Python module of examples/python on a model
# trained here, uninstall, and check that the prefix holds no ameir file any more. Prints one
# line per step; exits non-zero at the first failure, with the output of the failing step.
set -euo pipefail
cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
CC=${CC:-cc}
DATA=${AMEIR_DATA_DIR:-../shared/data}

prefix=$(mktemp -d /tmp/ameir-prefix-XXXXXX)
work=$(mktemp -d /tmp/ameir-check-XXXXXX)
cleanup() {
  rm -rf "$prefix" "$work"
  # ameir.pc is generated with the prefix written in: drop this one so that a later
  # `make install` writes its own
  rm -f pkgconfig/ameir.pc
}
trap cleanup EXIT

steps=0
step() {  # step "what" command...: runs the command, output to a log shown only on failure
  local what=$1
  shift
  if "$@" >"$work/step.log" 2>&1; then
    steps=$((steps + 1))
    echo "check: ok   $what"
  else
    local rc=$?
    echo "check: FAIL $what (exit $rc)"
    sed 's/^/    /' "$work/step.log" | tail -n 60
    exit 1
  fi
}

rm -f pkgconfig/ameir.pc
step "make install PREFIX=$prefix" $MAKE --no-print-directory install PREFIX="$prefix"
for f in include/ameir/ameir.h lib/libameir.so lib/libameir.so.0 lib/libameir.a lib/pkgconfig/ameir.pc; do
  step "installed $f" test -e "$prefix/$f"
done
cuda_installed=0
if [ -f lib/libameir_cuda.so ]; then
  step "installed lib/ameir/libameir_cuda.so" test -f "$prefix/lib/ameir/libameir_cuda.so"
  cuda_installed=1
fi

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
step "pkg-config finds ameir $(sed -n 's/^Version: //p' "$prefix/lib/pkgconfig/ameir.pc")" \
  pkg-config --exists --print-errors ameir
cflags=$(pkg-config --cflags ameir)
libs=$(pkg-config --libs ameir)
static_libs=$(pkg-config --static --libs ameir)

# --- shared library ---
with_lib() {  # runs a command with the installed library first on the loader path
  LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"
}
needs() { readelf -d "$1" | grep "NEEDED.*$2" >/dev/null; }
lacks() { ! readelf -d "$1" | grep "NEEDED.*$2" >/dev/null; }
run_usage() {  # the program starts and answers with its usage line (exit 2)
  local rc=0
  "$@" >/dev/null 2>"$work/usage.txt" || rc=$?
  [ "$rc" = 2 ] && grep -q usage "$work/usage.txt"
}
resolves_to_prefix() { with_lib ldd "$1" | grep "$prefix/lib/libameir.so.0" >/dev/null; }
step "cc examples/predict.c \$(pkg-config --cflags --libs ameir)" \
  $CC -std=c11 -Wall -Wextra -Werror -pedantic examples/predict.c $cflags $libs -o "$work/predict"
step "predict needs libameir.so.0" needs "$work/predict" libameir.so.0
step "predict loads the installed libameir.so.0" resolves_to_prefix "$work/predict"
step "predict runs" with_lib run_usage "$work/predict"

# the installed library finds the installed CUDA module (dladdr + lib/ameir/), or says why not
cat >"$work/info.c" <<'C'
#include <stdio.h>
#include <ameir/ameir.h>
int main(void) { puts(ameir_build_info()); return 0; }
C
step "cc info.c (prints ameir_build_info) against the installed copy" \
  $CC -std=c11 -Wall -Wextra -Werror "$work/info.c" $cflags $libs -o "$work/info"
with_lib "$work/info" >"$work/info.txt" 2>&1 || true
if [ $cuda_installed = 1 ]; then
  step "installed libameir finds lib/ameir/libameir_cuda.so" \
    grep -q "module $prefix/lib/ameir/libameir_cuda.so" "$work/info.txt"
else
  step "installed libameir reports the CUDA module absent" \
    grep -q "backend cuda: unavailable" "$work/info.txt"
fi

# --- static library ---
static_link=${static_libs/-lameir/-Wl,-Bstatic -lameir -Wl,-Bdynamic}
step "cc examples/predict.c libameir.a \$(pkg-config --static --libs ameir)" \
  $CC -std=c11 -Wall -Wextra -Werror examples/predict.c $cflags $static_link -o "$work/predict_static"
step "predict_static does not need libameir.so" lacks "$work/predict_static" libameir
step "predict_static runs" run_usage "$work/predict_static"

# --- serving: a model trained here on generated data, scored from C++ and Python ---
# The installed copy has no `ameir` program (make install does not install it): the tree's
# build/ameir (built by make install) generates the data and trains.
gen=$work/gen
model=$work/model/model.ameir
step "ameir gen (3000 rows)" ./build/ameir gen "$gen" --rows 3000
step "ameir train synthetic.yaml --set epochs=1 --out $work/model" \
  ./build/ameir train "$gen/synthetic.yaml" --out "$work/model" --set epochs=1
reference() { ./build/ameir predict "$model" "$gen/synthetic.csv" >"$work/ref.txt"; }
step "ameir predict: reference scores" reference
same_scores() {  # same_scores FILE: one score a line, as many as the reference, each within 1e-5
  paste "$1" "$work/ref.txt" | awk -v want="$(wc -l <"$work/ref.txt")" '
    NF != 2 || $1 < 0 || $1 > 1 { bad++ }
    { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5) bad++ }
    END { exit !(NR == want && want > 0 && !bad) }'
}

step "make -C examples/cpp_service (C++17 through pkg-config)" \
  $MAKE --no-print-directory -C examples/cpp_service O="$work"
step "ameir_service loads the installed libameir.so.0" resolves_to_prefix "$work/ameir_service"
serve() {  # 4 threads, batches of 64 rows: 47 library calls in flight from several threads
  with_lib "$work/ameir_service" "$model" --threads 4 --batch 64 --header \
    <"$gen/synthetic.csv" >"$work/served.txt" 2>"$work/served.log" && same_scores "$work/served.txt"
}
step "ameir_service --threads 4 scores stdin as ameir predict does" serve
echo "check:      $(tail -n 1 "$work/served.log")"
serve_bad_row() {  # a malformed row: exit 1 and the library's message
  local rc=0
  { head -n 1 "$gen/synthetic.csv"; echo "1,2,3"; } |
    with_lib "$work/ameir_service" "$model" --header >/dev/null 2>"$work/bad.log" || rc=$?
  [ "$rc" = 1 ] && grep -q "malformed" "$work/bad.log"
}
step "ameir_service reports a malformed row (exit 1, the library's message)" serve_bad_row

# Debian's python3: examples/python/ameir.py finds the library through pkg-config (no
# LD_LIBRARY_PATH here, so that path is the one tested)
if [ -x /usr/bin/python3 ]; then
  step "/usr/bin/python3 examples/python/test_ameir.py (ctypes, pkg-config)" \
    /usr/bin/python3 examples/python/test_ameir.py "$model" "$gen/synthetic.csv" "$work/ref.txt"
  echo "check:      python: $(grep -c '^python: ok' "$work/step.log") checks ok, $(/usr/bin/python3 --version 2>&1)"
else
  echo "check: skip examples/python (no /usr/bin/python3)"
fi

# --- the command line's named models and their keys (docs/arch.md "Named architectures") ---
arch_line() {  # arch_line WANT NAME ARGS...: `ameir arch NAME ARGS` prints the line WANT
  local want=$1
  shift
  ./build/ameir arch "$@" >"$work/arch.txt" && grep -qx "$want" "$work/arch.txt"
}
step "ameir arch dcn --set cross_layers=2" arch_line "cross: 2" dcn --set cross_layers=2
step "ameir arch caser --set caser=3,2,2" arch_line "caser: 3 2 2" caser --set caser=3,2,2
step "ameir arch bert4rec --set train.cloze=0.3" arch_line "cloze: 0.3" bert4rec --set train.cloze=0.3
step "ameir arch fibinet --set fibinet=2" arch_line "fibinet: 2" fibinet --set fibinet=2
bad_arch_key() { ! ./build/ameir arch caser --set caser=0 2>"$work/bad.txt" && grep -q "Markov order" "$work/bad.txt"; }
step "ameir arch caser --set caser=0 fails with the parser's message" bad_arch_key
# a small next-item set: 300 users walking over 60 items
awk 'BEGIN { srand(7); for (u = 1; u <= 300; u++) { n = 5 + int(rand() * 6); it = 1 + int(rand() * 60);
  line = "u" u; for (i = 0; i < n; i++) { line = line " " it; it = it % 60 + 1 } print line } }' >"$work/seq.txt"
printf 'dataset: {files: [seq.txt], format: userseq, max_len: 8}\ntrain: {emb: 8, epochs: 3, batch: 64}\n' >"$work/seq.yaml"
train_named() {  # train_named NAME: `ameir train --model NAME` with the keys the model brings
  ./build/ameir train "$work/seq.yaml" --model "$1" --threads 1 >"$work/named.txt" 2>&1 &&
    grep -q "^model $1, full ranking" "$work/named.txt"
}
for name in pop bprmf caser bert4rec; do
  step "ameir train --model $name (retrieval)" train_named "$name"
done
pop_untrained() { ./build/ameir train "$work/seq.yaml" --model pop --json 2>/dev/null | grep -q '"train_steps": 0,'; }
step "ameir train --model pop trains no step" pop_untrained

# --- a real run, where the data is ---
predict_frappe() {
  with_lib "$work/predict" examples/configs/frappe.yaml >"$work/auc.txt" && grep -q 'test AUC' "$work/auc.txt"
}
if [ -d "$DATA" ] && [ -f examples/configs/frappe.yaml ]; then
  step "predict examples/configs/frappe.yaml (installed library)" predict_frappe
  echo "check:      $(cat "$work/auc.txt")"
else
  echo "check: skip predict on frappe (no $DATA or no examples/configs/frappe.yaml)"
fi

# --- uninstall leaves nothing behind ---
step "make uninstall PREFIX=$prefix" $MAKE --no-print-directory uninstall PREFIX="$prefix"
left=$(find "$prefix" \( -type f -o -type l \) | head -n 20)
step "prefix holds no file after uninstall${left:+ (left: $left)}" test -z "$left"

echo "check: all $steps steps ok"
