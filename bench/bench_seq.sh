#!/bin/bash
# Training throughput of configuration D of ../shared/bench/REFERENCE.md (ameir-seq: emb 128,
# seq-len 15, blocks sa4:swish:ln, dconv5:gelu:ln, gru:identity:none, MLP 200-80, batch 512,
# 5 sampled negatives) for libameir and the PyTorch reference, one after the other, same threads,
# on the same real data (Amazon Beauty, ICLRec file, leave-one-out, every prefix a training row).
#
#   bash bench/bench_seq.sh [threads] [rounds] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}
ROUNDS=${2:-1}
STEPS=${3:-150}
WARM=20
REF=${AMEIR_REF:-../shared/bench/torch_ref.py}
DATA=${AMEIR_DATA_DIR:-../shared/data}
make -s build/ameir >/dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
ARCH="$OUT/d.arch"
printf 'blocks: (sa4, swish, ln) (dconv5, gelu, ln) (gru, identity, none)\nreadout: sum last\nmlp: (200, relu) (80, relu)\nshortcut: se\n' > "$ARCH"
for r in $(seq "$ROUNDS"); do
  /usr/bin/time -f '%M' -o "$OUT/rss" ./build/ameir train examples/configs/amazon_beauty.yaml --arch "$ARCH" \
    --threads "$T" --json --set emb=128 --set batch=512 --set neg=5 --set max_steps=$((STEPS + WARM)) \
    --set timing_warmup=$WARM --set dataset.max_len=15 --set shuffle=0 2>/dev/null | tail -1 > "$OUT/a.json"
  python3 - "$OUT/a.json" "$OUT/rss" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); rss = int(open(sys.argv[2]).read().split()[-1]) / 1024
print("D-seq  libameir  train %8.0f samples/s  peak RSS %6.0f MB" % (j["train_samples_per_s"], rss))
PY
  /usr/bin/python3 "$REF" --model ameir-seq --format userseq --data "$DATA/amazon_beauty/beauty_iclrec_5core_userseq.txt.xz" \
    --emb 128 --seq-len 15 --blocks sa4:swish:ln,dconv5:gelu:ln,gru:identity:none --mlp 200:relu,80:relu --batch 512 \
    --neg 5 --steps "$STEPS" --warmup-steps $WARM --threads "$T" --infer-max 2000 --quiet 2>/dev/null | tail -1 > "$OUT/t.json"
  python3 - "$OUT/t.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("D-seq  pytorch   train %8.0f samples/s  peak RSS %6.0f MB" % (j["train_samples_per_s"], j["peak_rss_mb"]))
PY
done
