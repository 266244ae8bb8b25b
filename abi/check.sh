#!/usr/bin/env bash
# `make abi-check` (STYLE.md "ABI discipline", abi/README.md): compares the built library with
# the committed abidw baseline and fails on any ABI change other than added functions.
#
#   abi/check.sh BASELINE LIBRARY HEADERS_DIR
#
# abidiff's exit status is a bit mask (libabigail's abidiff_status): 1 ABIDIFF_ERROR,
# 2 ABIDIFF_USAGE_ERROR, 4 ABIDIFF_ABI_CHANGE, 8 ABIDIFF_ABI_INCOMPATIBLE_CHANGE. Bit 8 alone
# is not enough to trust: an added parameter, a changed parameter type or a changed callback
# typedef is reported as 4 only. So a report with bit 4 is compared a second time with added
# functions suppressed: it passes only if nothing is left.
set -uo pipefail
baseline=$1 lib=$2 headers=$3
ABIDIFF=${ABIDIFF:-abidiff}

if ! command -v "$ABIDIFF" >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "abi-check: FAIL $ABIDIFF not found (Debian: apt-get install abigail-tools)"
    exit 1
  fi
  echo "abi-check: skipped, $ABIDIFF not found (Debian: apt-get install abigail-tools)"
  exit 0
fi
if [ ! -f "$baseline" ]; then
  echo "abi-check: FAIL no baseline $baseline (make abi-dump writes it)"
  exit 1
fi

# Without DWARF abidiff compares symbol names only, and says nothing of it
# (--fail-no-debug-info does not catch a library stripped with strip -g in libabigail 2.2).
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
  echo "abi-check: FAIL $lib has no debug information (build with -g): abidiff would compare names only"
  exit 1
fi

tmp=$(mktemp -d /tmp/ameir-abi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The handles are opaque in the public headers (`typedef struct ameir_model ameir_model;`);
# their definitions are private to src/ and change freely. Suppress changes inside those
# structs, named from the headers so that a new handle is covered the day it is declared.
handles=$(sed -n 's/^typedef struct \(ameir_[a-z0-9_]*\) \1;.*/\1/p' "$headers"/*.h |
  sort -u | paste -sd'|' -)
if [ -z "$handles" ]; then
  echo "abi-check: FAIL found no opaque handle typedef in $headers"
  exit 1
fi
cat >"$tmp/private.suppr" <<EOF
[suppress_type]
  label = opaque handles: their layout is private (src/)
  type_kind = struct
  name_regexp = ^($handles)\$
EOF
cp "$tmp/private.suppr" "$tmp/added.suppr"
cat >>"$tmp/added.suppr" <<'EOF'

[suppress_function]
  label = added functions are compatible
  change_kind = added-function
EOF

abidiff_run() {  # abidiff_run SUPPRESSIONS: the baseline against the library; prints the report
  "$ABIDIFF" --fail-no-debug-info --hd2 "$headers" --suppressions "$1" "$baseline" "$lib"
}
fail_hint() {
  echo "abi-check: an ABI break is shipped only with a new soname (AMEIR_VERSION_MAJOR in"
  echo "           include/ameir/version.h), a CHANGELOG.md entry and a new baseline: make abi-dump"
}

abidiff_run "$tmp/private.suppr" >"$tmp/report.txt" 2>&1
rc=$?
if [ $rc = 0 ]; then
  echo "abi-check: no ABI change against $baseline"
  exit 0
fi
if [ $((rc & 3)) != 0 ]; then
  echo "abi-check: FAIL abidiff could not compare (exit $rc):"
  sed 's/^/    /' "$tmp/report.txt"
  exit 1
fi
if [ $((rc & 8)) != 0 ]; then
  echo "abi-check: FAIL incompatible ABI change against $baseline (abidiff exit $rc):"
  sed 's/^/    /' "$tmp/report.txt"
  fail_hint
  exit 1
fi
# bit 4 only: compatible if and only if every change is an added function
abidiff_run "$tmp/added.suppr" >"$tmp/rest.txt" 2>&1
rc2=$?
if [ $rc2 != 0 ]; then
  echo "abi-check: FAIL ABI change other than added functions against $baseline"
  echo "           (abidiff exit $rc; $rc2 with the added functions suppressed):"
  sed 's/^/    /' "$tmp/rest.txt"
  fail_hint
  exit 1
fi
added=$(sed -n "s/^  \[A\] 'function \(.*\)'.*/\1/p" "$tmp/report.txt")
echo "abi-check: only added functions against $baseline ($(grep -c . <<<"$added");"
echo "           make abi-dump records them in the baseline):"
sed 's/^/    /' <<<"$added"
exit 0
