#!/bin/bash
# GPU benchmarks: training and inference samples/s of libameir's CUDA backend next to
# PyTorch on the same GPU (torch_ref.py --device "$TDEV"), one after the other in this script, on
# the same rows. Run by tests/gpu/run.sh; sized to take about two minutes.
#
#   bash tests/gpu/bench.sh
#
# Configurations (../shared/bench/REFERENCE.md, with fewer rows so that the data fits a short
# machine lease; the models and batch sizes are REFERENCE.md's):
#   A  DeepFM, synthetic-criteo, emb 16, MLP 400-400-400, batch 4096
#   B  DNN, synthetic-criteo, emb 5, MLP 200-200-200, batch 4096
#   C  the AMEIR CTR backbone of REFERENCE.md's C (emb 4, seq-len 50, conv3/sa2/gru blocks,
#      5 interactions, MLP 200-80, SE, batch 1024) on MovieLens-100K with behaviours instead of
#      synthetic-alimama, which libameir cannot read (the interactions are MovieLens fields)
#   ML DIN on MovieLens-100K with behaviours (REFERENCE.md "Real data"), batch 256
#   D  AMEIR-seq on Amazon Beauty: emb 128, seq-len 15, sa4/dconv5/gru blocks, batch 512, 5 negatives
# BENCH_ONLY="A B" runs only those configurations (default: all five).
# Each side times its training loop after warm-up steps (data generation, parsing and the first
# steps excluded); inference = the validation split, no gradients.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
REF=${AMEIR_REF:-../shared/bench/torch_ref.py}
DATA=${AMEIR_DATA_DIR:-../shared/data}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
export AMEIR_BENCH_DIR=$DIR
NTRAIN=${BENCH_NTRAIN:-300000}
NVALID=$((NTRAIN / 10))
STEPS=${BENCH_STEPS:-60}
WARM=10
TDEV=${BENCH_TORCH_DEVICE:-cuda}   # cpu: a rehearsal of this script on a machine without a GPU
ONLY=" ${BENCH_ONLY:-A B C ML D} "  # the configurations to run, e.g. BENCH_ONLY="A B"
want() { [[ $ONLY == *" $1 "* ]]; }

show() {  # label side json
  $PY - "$@" <<'PY'
import json, sys
label, side, path = sys.argv[1:4]
try:
    j = json.loads(open(path).read().strip().splitlines()[-1])
except Exception as e:
    print("%-6s %-8s no result (%s)" % (label, side, e)); sys.exit(0)
m = j.get("valid_auc", j.get("auc", j.get("neg100_hr@10", j.get("hr@10", 0))))
print("%-6s %-8s train %10.0f samples/s  infer %10.0f samples/s  metric %.4f  (%s)" % (
    label, side, j.get("train_samples_per_s", 0), j.get("infer_samples_per_s", 0), m,
    j.get("device", j.get("backend", "?"))))
PY
}

# ---- A and B: synthetic-criteo dumped once as Criteo TSV, read by both sides ----
{ want A || want B; } && $PY "$REF" --model dnn --data synthetic-criteo --n-train "$NTRAIN" --n-valid "$NVALID" --emb 4 --mlp 8:relu \
  --batch 4096 --steps 1 --warmup-steps 0 --dump-tsv "$DIR/synth_criteo.tsv" --quiet > /dev/null 2>&1
ctr() {  # label model emb mlp
  AMEIR_BACKEND=cuda ./build/ameir train bench/synth_criteo.yaml --model "$2" --json --set emb="$3" --mlp "$4" \
    --set max_steps=$((STEPS + WARM)) --set timing_warmup=$WARM --set eval_batch=4096 2>"$DIR/err" | tail -1 > "$DIR/a.json"
  [ -s "$DIR/a.json" ] || tail -3 "$DIR/err"
  show "$1" libameir "$DIR/a.json"
  $PY "$REF" --device "$TDEV" --model "$2" --data synthetic-criteo --n-train "$NTRAIN" --n-valid "$NVALID" --emb "$3" \
    --mlp "$4" --batch 4096 --steps $STEPS --warmup-steps $WARM --quiet 2>"$DIR/err" | tail -1 > "$DIR/t.json"
  [ -s "$DIR/t.json" ] || tail -3 "$DIR/err"
  show "$1" pytorch "$DIR/t.json"
}
want A && ctr A deepfm 16 400:relu,400:relu,400:relu
want B && ctr B dnn 5 200:relu,200:relu,200:relu

# ---- C: the AMEIR CTR backbone on MovieLens-100K ----
if want C; then
printf 'blocks: (conv3, relu, ln) (sa2, gelu, none) (gru, identity, ln)\nreadout: sum last att\ninteractions: (age, movie_id) (gender, movie_id) (occupation, zip1) (user_id, movie_id) (age, gender, occupation)\nmlp: (200, relu) (80, relu)\nshortcut: se\n' > "$DIR/c.arch"
AMEIR_BACKEND=cuda ./build/ameir train examples/configs/ml100k.yaml --arch "$DIR/c.arch" --json --set emb=4 --set batch=1024 \
  --set max_steps=$((STEPS + WARM)) --set timing_warmup=$WARM --set shuffle=0 2>"$DIR/err" | tail -1 > "$DIR/a.json"
[ -s "$DIR/a.json" ] || tail -3 "$DIR/err"
show C libameir "$DIR/a.json"
$PY "$REF" --device "$TDEV" --model ameir-ctr --format ml100k --data "$DATA/movielens" --emb 4 --seq-len 50 \
  --blocks conv3:relu:ln,sa2:gelu:none,gru:identity:ln --inter 1-5,2-5,3-4,0-5,1-2-3 --mlp 200:relu,80:relu \
  --batch 1024 --steps $STEPS --warmup-steps $WARM --quiet 2>"$DIR/err" | tail -1 > "$DIR/t.json"
[ -s "$DIR/t.json" ] || tail -3 "$DIR/err"
show C pytorch "$DIR/t.json"
fi

# ---- ML: DIN on MovieLens-100K, one epoch ----
if want ML; then
AMEIR_BACKEND=cuda ./build/ameir train examples/configs/ml100k.yaml --json --set epochs=1 2>"$DIR/err" | tail -1 > "$DIR/a.json"
[ -s "$DIR/a.json" ] || tail -3 "$DIR/err"
show ML libameir "$DIR/a.json"
$PY "$REF" --device "$TDEV" --format ml100k --data "$DATA/movielens" --model din --emb 16 --batch 256 --epochs 1 \
  --quiet 2>"$DIR/err" | tail -1 > "$DIR/t.json"
[ -s "$DIR/t.json" ] || tail -3 "$DIR/err"
show ML pytorch "$DIR/t.json"
fi

# ---- D: AMEIR-seq on Amazon Beauty ----
if want D; then
printf 'blocks: (sa4, swish, ln) (dconv5, gelu, ln) (gru, identity, none)\nreadout: sum last\nmlp: (200, relu) (80, relu)\nshortcut: se\n' > "$DIR/d.arch"
AMEIR_BACKEND=cuda ./build/ameir train examples/configs/amazon_beauty.yaml --arch "$DIR/d.arch" --json --set emb=128 \
  --set batch=512 --set neg=5 --set max_steps=$((STEPS + WARM)) --set timing_warmup=$WARM --set dataset.max_len=15 \
  --set shuffle=0 2>"$DIR/err" | tail -1 > "$DIR/a.json"
[ -s "$DIR/a.json" ] || tail -3 "$DIR/err"
show D libameir "$DIR/a.json"
$PY "$REF" --device "$TDEV" --model ameir-seq --format userseq --data "$DATA/amazon_beauty/beauty_iclrec_5core_userseq.txt.xz" \
  --emb 128 --seq-len 15 --blocks sa4:swish:ln,dconv5:gelu:ln,gru:identity:none --mlp 200:relu,80:relu --batch 512 \
  --neg 5 --steps $STEPS --warmup-steps $WARM --infer-max 2000 --quiet 2>"$DIR/err" | tail -1 > "$DIR/t.json"
[ -s "$DIR/t.json" ] || tail -3 "$DIR/err"
show D pytorch "$DIR/t.json"
fi
