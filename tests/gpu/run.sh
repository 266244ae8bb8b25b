#!/bin/bash
# The GPU checks of the CUDA backend in one script, sized for one call of a lent GPU machine
# (under 6 minutes): the module check, the parity oracle, end-to-end training and a short
# search on the GPU next to the CPU, and the GPU benchmarks next to PyTorch on the same GPU.
#
#   bash tests/gpu/run.sh [OUTDIR]          (default build/gpu/out)
#
# Where this project's build dependencies are installed (`make deps`) it builds everything
# itself. A GPU machine that lacks them (no libyaml/OpenBLAS, no network) runs what
# `bash tests/gpu/pack.sh` prepared on a build machine: lib/, build/ameir, build/gpu and
# .gpu-carry/ (the runtime libraries, the bundled data sets it uses and torch_ref.py).
# The module itself is built here by nvcc when lib/libameir_cuda.so is missing or
# AMEIR_GPU_REBUILD=1.
#
# Writes OUTDIR/summary.txt (one line per step, then "N passed, N failed") and a log per step;
# exit status 0 when every step passed. Steps that cannot run (no device) are reported as
# skipped, never as passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${1:-build/gpu/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUM=$OUT/summary.txt
: > "$SUM"
PASS=0 FAIL=0 SKIP=0
T0=$(date +%s)
note() { echo "$*" | tee -a "$SUM"; }
result() {  # name status detail
  case $2 in
    0) PASS=$((PASS + 1)); note "ok   $1 $3" ;;
    77) SKIP=$((SKIP + 1)); note "skip $1 $3" ;;
    *) FAIL=$((FAIL + 1)); note "FAIL $1 (exit $2) $3" ;;
  esac
}
PY=${PYTHON:-python3}

# ---- environment (shared with tests/gpu/prof.sh) ----
. tests/gpu/env.sh
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
  command -v nvcc >/dev/null && nvcc --version | tail -1; nproc; } > "$OUT/machine.txt" 2>&1
note "machine: $(tr '\n' ';' < "$OUT/machine.txt")"

# ---- build ----
if pkg-config --exists yaml-0.1 2>/dev/null && [ -z "${AMEIR_GPU_PREBUILT:-}" ]; then
  make -s -j"$(nproc)" lib build/ameir gpu-tests > "$OUT/build.log" 2>&1
  result build $? "(make lib build/ameir gpu-tests; log build.log)"
fi
if [ ! -f lib/libameir_cuda.so ] || [ -n "${AMEIR_GPU_REBUILD:-}" ]; then
  s=$(date +%s)
  make -s -j"$(nproc)" cuda > "$OUT/build-cuda.log" 2>&1
  result build-cuda $? "($(($(date +%s) - s)) s; log build-cuda.log)"
fi

# ---- 1. the module on this machine ----
# AMEIR_GPU_MODULE: another module file (build/shadow/libameir_cuda.so rehearses this script on
# a machine without a GPU; its cuda_module step then fails on the CUDA-specific messages)
MODULE=${AMEIR_GPU_MODULE:-lib/libameir_cuda.so}
export AMEIR_BACKEND_PATH=$ROOT/$MODULE
./build/gpu/cuda_module "$MODULE" > "$OUT/cuda_module.log" 2>&1
st=$?
result cuda_module $st "($(tail -1 "$OUT/cuda_module.log"))"
if [ $st = 77 ]; then
  note "no usable GPU: the remaining steps are skipped"
  note "$PASS passed, $FAIL failed, $((SKIP + 5)) skipped"
  exit 0
fi

# ---- 2. the parity oracle ----
s=$(date +%s)
timeout 150 ./build/gpu/parity "$MODULE" > "$OUT/parity.log" 2>&1
result parity $? "($(tail -1 "$OUT/parity.log"); $(($(date +%s) - s)) s; failures: $(grep -c '^FAIL' "$OUT/parity.log"))"
grep '^FAIL' "$OUT/parity.log" | head -40 >> "$SUM"

# ---- 2b. one model predicting from several host threads; pipelined scores ----
s=$(date +%s)
timeout 120 ./build/gpu/threads "$MODULE" > "$OUT/threads.log" 2>&1
result threads $? "($(tail -1 "$OUT/threads.log"); $(($(date +%s) - s)) s)"
grep '^FAIL' "$OUT/threads.log" | head -10 >> "$SUM"

# ---- 3. end to end: the same training on both backends ----
# Same seed and data: differences come from floating-point order only, so the metrics must
# agree within noise (|AUC difference| <= 0.005).
e2e() {  # name config model-args...
  local name=$1 cfg=$2; shift 2
  local a b
  AMEIR_BACKEND=cpu timeout 120 ./build/ameir train "$cfg" "$@" --json > "$OUT/e2e-$name-cpu.log" 2>&1
  a=$?
  AMEIR_BACKEND=cuda timeout 120 ./build/ameir train "$cfg" "$@" --json > "$OUT/e2e-$name-cuda.log" 2>&1
  b=$?
  if [ $a != 0 ] || [ $b != 0 ]; then
    result "e2e-$name" 1 "(cpu exit $a, cuda exit $b: $(tail -2 "$OUT/e2e-$name-cuda.log" | tr '\n' ' '))"
    return
  fi
  local line
  line=$($PY - "$OUT/e2e-$name-cpu.log" "$OUT/e2e-$name-cuda.log" <<'PY'
import json, sys
c, g = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
# CTR: test AUC; retrieval: HR@10 against 100 sampled negatives (same negatives on both sides)
key = "test_auc" if "test_auc" in c else next(k for k in c if k.endswith("_test_hr@10"))
d = abs(c[key] - g[key])
tol = 0.005 if "auc" in key else 0.02
sp = lambda j: j.get("train_samples_per_s", 0)
print("%d %s cpu %.5f cuda %.5f |diff| %.5f (tol %g); train samples/s cpu %.0f (%s) cuda %.0f (%s)" % (
    0 if d <= tol else 1, key, c[key], g[key], d, tol, sp(c), c.get("backend", "?"), sp(g), g.get("backend", "?")))
PY
  )
  result "e2e-$name" "${line%% *}" "(${line#* })"
}
e2e deepfm-frappe examples/configs/frappe.yaml --model deepfm --set epochs=2
e2e din-ml100k examples/configs/ml100k.yaml --set epochs=1
e2e dcn-frappe examples/configs/frappe.yaml --model dcn --set epochs=1
e2e xdeepfm-frappe examples/configs/frappe.yaml --model xdeepfm --set epochs=1 --set cin=64,64
ARCH=$OUT/blocks.arch
printf 'blocks: (conv3, relu, ln) (sa2, gelu, none) (gru, identity, ln)\nreadout: sum last att\nmlp: (200, relu) (80, relu)\nshortcut: se\n' > "$ARCH"
e2e blocks-ml100k examples/configs/ml100k.yaml --arch "$ARCH" --set epochs=1
printf 'blocks: (sa2, identity, ln) (conv1, relu, ln)\nreadout: sum last\nmlp: (200, relu) (80, relu)\nshortcut: se\n' > "$OUT/seq.arch"
e2e seq-beauty examples/configs/amazon_beauty.yaml --arch "$OUT/seq.arch" --set epochs=1 --set emb=64

# a model saved on one backend loads and evaluates on the other, with the same test metrics
cross() {  # from to
  local dir=$OUT/cross-$1
  AMEIR_BACKEND=$1 timeout 120 ./build/ameir train examples/configs/ml100k.yaml --set epochs=1 --out "$dir" --json \
    > "$dir.train.log" 2>&1 &&
  AMEIR_BACKEND=$2 timeout 60 ./build/ameir eval "$dir/model.ameir" examples/configs/ml100k.yaml --json \
    > "$dir.eval.log" 2>&1
  local st=$?
  if [ $st != 0 ]; then result "load-$1-on-$2" $st "($(tail -1 "$dir.eval.log"))"; return; fi
  local line
  line=$($PY - "$dir.train.log" "$dir.eval.log" <<'PY'
import json, sys
a, b = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
bt = b.get("test_auc", b.get("auc"))
d = abs(a["test_auc"] - bt)
print("%d test AUC trained %.6f, loaded %.6f, |diff| %.2g (tol 1e-4)" % (0 if d <= 1e-4 else 1, a["test_auc"], bt, d))
PY
  )
  result "load-$1-on-$2" "${line%% *}" "(${line#* })"
}
cross cuda cpu
cross cpu cuda

# a short search, all three steps, on the GPU
s=$(date +%s)
AMEIR_BACKEND=cuda timeout 150 ./build/ameir search examples/configs/ml100k.yaml --out "$OUT/search" \
  --set samples=40 --set topk=2 --set score_rows=1024 --set epochs1=1 --set epochs2=1 --set epochs3=1 \
  --set cycles=2 --set interactions_topk=10 --set finetune_epochs=1 --json > "$OUT/search.log" 2>&1
st=$?
result search-ml100k $st "($(($(date +%s) - s)) s; $(tail -1 "$OUT/search.log" | cut -c1-300))"

# ---- 4. benchmarks next to PyTorch on this GPU ----
if [ -z "${AMEIR_GPU_NO_BENCH:-}" ]; then
  s=$(date +%s)
  timeout "${AMEIR_GPU_BENCH_TIMEOUT:-240}" bash tests/gpu/bench.sh > "$OUT/bench.log" 2>&1
  result bench $? "($(($(date +%s) - s)) s; log bench.log)"
  grep -E '^(A|B|C|D|ML)' "$OUT/bench.log" >> "$SUM"
fi

note "total $(($(date +%s) - T0)) s"
note "$PASS passed, $FAIL failed, $SKIP skipped"
[ $FAIL = 0 ]
