#!/bin/bash
# Next-item retrieval quality of the behaviour architectures on Amazon Beauty and Amazon Toys
# (ICLRec files), both protocols, 3 seeds each (the AMEIR-A blocks of Table 10: runs 1 and 2 on
# Beauty, run 1 on Toys, to keep the script near 30 minutes on 2 cores), with torch_ref's training recipe (emb 64, batch
# 256, 2 epochs, 1 sampled negative, seq-len 50); and the same SASRec-like model in the PyTorch
# reference on the same split. Prints one JSON-derived line per run; bench/summarize.py averages.
#
#   bash bench/seq_quality.sh OUTDIR
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/seq_quality}
mkdir -p "$OUT"
REF=${AMEIR_REF:-../shared/bench/torch_ref.py}
DATA=${AMEIR_DATA_DIR:-../shared/data}
make -s build/ameir >/dev/null
SAME="--set shuffle=0 --set init=normal --set init_std=0.01 --set mlp_init=torch"
MODELS_amazon_beauty="sasrec nextitnet gru4rec ameir-a1 ameir-a2"
MODELS_amazon_toys="sasrec nextitnet gru4rec ameir-a1"
for ds in amazon_beauty amazon_toys; do
  models=MODELS_$ds
  for model in ${!models}; do
    for seed in 2021 2022 2023; do
      f="$OUT/$ds.$model.$seed.json"
      [ -s "$f" ] && continue
      ./build/ameir train examples/configs/$ds.yaml --model $model --seed $seed --json $SAME 2>/dev/null | tail -1 > "$f.tmp" && mv "$f.tmp" "$f"
    done
  done
  file=$DATA/$ds/$(ls $DATA/$ds | grep iclrec | head -1)
  for seed in 2021 2022 2023; do
    f="$OUT/$ds.torch-sasrec.$seed.json"
    [ -s "$f" ] && continue
    /usr/bin/python3 "$REF" --model ameir-seq --format userseq --data "$file" --blocks sa2:identity:ln,conv1:relu:ln \
      --emb 64 --seq-len 50 --batch 256 --neg 1 --epochs 2 --eval-negs 0,100 --threads 2 --warmup-steps 5 --seed $seed \
      --quiet 2>/dev/null | tail -1 > "$f.tmp" && mv "$f.tmp" "$f"
  done
done
echo done
