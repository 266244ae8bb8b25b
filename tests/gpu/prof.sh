#!/bin/bash
# Where the time of GPU inference goes, for REFERENCE.md's A (DeepFM) and B (DNN) on
# synthetic-criteo: libameir's JSON (training phases, inference samples/s) at the benchmark's
# eval batch and at a 4x larger one (per-batch host costs show as the difference), PyTorch's
# figures on the same rows, and, where Nsight Systems is installed, its CUDA API and kernel
# summaries of one libameir run. Diagnostic, not part of tests/gpu/run.sh:
#
#   bash tests/gpu/prof.sh [OUTDIR]        (default build/gpu/prof; PROF_NTRAIN rows, 1000000)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-build/gpu/prof}
mkdir -p "$OUT"
. tests/gpu/env.sh
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
export AMEIR_BENCH_DIR=$D
N=${PROF_NTRAIN:-1000000}
$PY "$AMEIR_REF" --model dnn --data synthetic-criteo --n-train "$N" --n-valid $((N / 10)) --emb 4 --mlp 8:relu \
  --batch 4096 --steps 1 --warmup-steps 0 --dump-tsv "$D/synth_criteo.tsv" --quiet > /dev/null 2>&1
keys() {  # the figures of one JSON line
  $PY -c 'import json,sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(" ".join("%s=%s" % (k, j[k]) for k in ("train_samples_per_s", "infer_samples_per_s", "time_stage",
      "time_forward", "time_backward", "train_steps", "n_valid", "valid_auc") if k in j))' "$1" 2>&1
}
for cfg in "B dnn 5 200:relu,200:relu,200:relu" "A deepfm 16 400:relu,400:relu,400:relu"; do
  set -- $cfg
  for eb in 4096 16384; do
    AMEIR_BACKEND=cuda ./build/ameir train bench/synth_criteo.yaml --model "$2" --json --set emb="$3" --mlp "$4" \
      --set max_steps=70 --set timing_warmup=10 --set eval_batch=$eb > "$OUT/$1-$eb.json" 2> "$OUT/$1-$eb.err"
    echo "$1 libameir eval_batch $eb: $(keys "$OUT/$1-$eb.json")"
  done
  $PY "$AMEIR_REF" --device cuda --model "$2" --data synthetic-criteo --n-train "$N" --n-valid $((N / 10)) --emb "$3" \
    --mlp "$4" --batch 4096 --steps 60 --warmup-steps 10 --quiet 2> /dev/null | tail -1 > "$OUT/$1-torch.json"
  echo "$1 pytorch: $(keys "$OUT/$1-torch.json")"
done
NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
if [ -n "$NSYS" ]; then
  AMEIR_BACKEND=cuda "$NSYS" profile -o "$D/b" --force-overwrite true -t cuda,osrt --stats=false \
    ./build/ameir train bench/synth_criteo.yaml --model dnn --json --set emb=5 --mlp 200:relu,200:relu,200:relu \
    --set max_steps=30 --set timing_warmup=5 --set eval_batch=4096 > "$OUT/nsys-run.log" 2>&1
  "$NSYS" stats --report cuda_api_sum,cuda_gpu_kern_sum,cuda_gpu_mem_time_sum,osrt_sum "$D/b.nsys-rep" \
    > "$OUT/nsys.txt" 2>&1
  echo "nsys: $OUT/nsys.txt"
  head -60 "$OUT/nsys.txt"
else
  echo "no nsys on this machine"
fi
