#!/bin/bash
# Training throughput and peak memory of libameir next to the PyTorch reference
# (../shared/bench/torch_ref.py) on configurations A (DeepFM) and B (DNN) of
# ../shared/bench/REFERENCE.md, run one after the other in this script, same threads.
#
#   bash bench/bench_ctr.sh [threads] [rounds]
#
# Both sides train on the same rows: torch_ref's synthetic-criteo, dumped once as Criteo TSV
# (AMEIR_BENCH_DIR, default /tmp/abench). Each side times its training loop after 20 warm-up
# steps (data generation, parsing and the first steps excluded). Prints one line per run and
# the ratio of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
ROUNDS=${2:-2}
REF=${AMEIR_REF:-../shared/bench/torch_ref.py}
DIR=${AMEIR_BENCH_DIR:-/tmp/abench}
mkdir -p "$DIR"
export AMEIR_BENCH_DIR=$DIR
if [ ! -s "$DIR/synth_criteo.tsv" ]; then
  echo "writing $DIR/synth_criteo.tsv (synthetic-criteo, 2.2M rows)..." >&2
  /usr/bin/python3 "$REF" --model dnn --data synthetic-criteo --emb 4 --mlp 8:relu --batch 4096 --steps 1 \
    --warmup-steps 0 --threads "$T" --dump-tsv "$DIR/synth_criteo.tsv" --quiet > /dev/null
fi
make -s build/ameir >/dev/null
STEPS=300
WARM=20
run_ameir() {  # name model emb mlp optimizer
  /usr/bin/time -f '%M' -o "$DIR/rss" ./build/ameir train bench/synth_criteo.yaml --model "$2" --threads "$T" --json \
    --set emb="$3" --mlp "$4" --set optimizer="$5" --set max_steps=$((STEPS + WARM)) --set timing_warmup=$WARM \
    --set eval_batch=4096 2>/dev/null | tail -1 > "$DIR/a.json"
  python3 - "$1" "$DIR/a.json" "$DIR/rss" <<'PY'
import json, sys
j = json.load(open(sys.argv[2])); rss = int(open(sys.argv[3]).read().split()[-1]) / 1024
print("%-14s libameir  train %9.0f samples/s  peak RSS %6.0f MB  valid AUC %.4f" % (sys.argv[1], j["train_samples_per_s"], rss, j["valid_auc"]))
PY
}
run_torch() {  # name model emb mlp sparse
  /usr/bin/python3 "$REF" --model "$2" --data synthetic-criteo --emb "$3" --mlp "$4" --batch 4096 --steps $STEPS \
    --warmup-steps $WARM --threads "$T" $5 --quiet 2>/dev/null | tail -1 > "$DIR/t.json"
  python3 - "$1" "$DIR/t.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[2]))
print("%-14s pytorch   train %9.0f samples/s  peak RSS %6.0f MB  valid AUC %.4f  (blas: %s)" % (sys.argv[1], j["train_samples_per_s"], j["peak_rss_mb"], j["auc"], j.get("blas", "?")))
PY
}
for r in $(seq "$ROUNDS"); do
  run_ameir "A-deepfm" deepfm 16 400:relu,400:relu,400:relu adam
  run_torch "A-deepfm" deepfm 16 400:relu,400:relu,400:relu ""
  run_ameir "A-deepfm-sp" deepfm 16 400:relu,400:relu,400:relu sparse_adam
  run_torch "A-deepfm-sp" deepfm 16 400:relu,400:relu,400:relu --sparse
  run_ameir "B-dnn" dnn 5 200:relu,200:relu,200:relu adam
  run_torch "B-dnn" dnn 5 200:relu,200:relu,200:relu ""
done
