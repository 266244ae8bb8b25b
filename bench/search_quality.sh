#!/bin/bash
# The search issue's proof: AMEIR's searched models next to the hand-built baselines, trained by
# the same trainer on the same splits, over several seeds (the paper reports the mean of 4 runs).
#
#   CTR without behaviours (steps 2 and 3): frappe, criteo, avazu, ipinyou
#       AMEIR-B (step 2's architecture, trained like the baselines), AMEIR-C (the derived model:
#       one-shot weights, fine-tuned), AMEIR-C trained from scratch; DNN, Wide&Deep, DeepFM
#   CTR with behaviours (steps 1, 2, 3): ml100k
#       AMEIR-A, AMEIR-B (trained like the baselines), AMEIR-C (derived) and from scratch; DNN,
#       DeepFM, DIN
#   retrieval (step 1): amazon_beauty
#       AMEIR-A (derived), SASRec- and NextItNet-like, both protocols (the config evaluates both)
#
#   bash bench/search_quality.sh OUTDIR [SEEDS] [DATASETS]
# Every run writes one JSON file and is skipped when it exists, so the script resumes.
# bench/summarize_search.py OUTDIR prints the Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/search_quality}
SEEDS=${2:-"1 2 3 4"}
DATASETS=${3:-"frappe criteo avazu ipinyou ml100k amazon_beauty"}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
make -s build/ameir >/dev/null
A=./build/ameir

arch_of() {   # report.yaml step -> architecture file
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, yaml
r = yaml.safe_load(open(sys.argv[1]))
open(sys.argv[3], "w").write(r["steps"]["step%s" % sys.argv[2]]["arch"])
PY
}

run() {   # name, command...: runs once, keeps the last JSON line
  local f="$OUT/$1.json"; shift
  [ -s "$f" ] && return 0
  "$@" --json 2>"$f.err" | tail -1 > "$f.tmp" && mv "$f.tmp" "$f" || { echo "failed: $f (see $f.err)"; rm -f "$f.tmp"; }
}

for ds in $DATASETS; do
  cfg=examples/configs/$ds.yaml
  case $ds in
    ml100k) base="dnn deepfm din"; steps=(1 2) ;;
    amazon_beauty) base="sasrec nextitnet"; steps=(1) ;;
    *) base="dnn widedeep deepfm"; steps=(2) ;;
  esac
  for seed in $SEEDS; do
    d="$OUT/$ds.search.$seed"
    run "$ds.ameir-c.$seed" $A search "$cfg" --out "$d" --seed $seed --threads $THREADS
    if [ "$ds" != amazon_beauty ] && [ -f "$d/state.txt" ] && [ ! -s "$OUT/$ds.ameir-c-scratch.$seed.json" ]; then
      rm -rf "$d-scratch" && cp -r "$d" "$d-scratch"
      run "$ds.ameir-c-scratch.$seed" $A search "$cfg" --out "$d-scratch" --resume --from-scratch --steps 4 --seed $seed --threads $THREADS
    fi
    for st in "${steps[@]}"; do
      name=$([ $st = 1 ] && echo ameir-a || echo ameir-b)
      if [ -f "$d/report.yaml" ]; then
        arch_of "$d/report.yaml" $st "$OUT/$ds.$name.$seed.arch"
        run "$ds.$name.$seed" $A train "$cfg" --arch "$OUT/$ds.$name.$seed.arch" --seed $seed --threads $THREADS
      fi
    done
    for m in $base; do run "$ds.$m.$seed" $A train "$cfg" --model $m --seed $seed --threads $THREADS; done
  done
done
echo done
