#!/bin/bash
# The model zoo side by side with PyTorch (issue #5, section 4): DNN, DeepFM, DCN, xDeepFM, DIN and
# SASRec trained by libameir (`ameir train CONFIG --model NAME`) and by the PyTorch reference on the
# same split with the same recipe, 3 seeds each; bench/summarize_zoo.py prints the table.
#
#   bash bench/zoo_compare.sh [--out DIR] [--datasets "frappe ml100k"] [--models "dnn deepfm ..."]
#                             [--seeds "2021 2022 2023"] [--epochs N] [--no-summary] [--make]
#
# libameir: $AMEIR_BIN (default ./build/ameir; --make runs `make build/ameir` first, not done by
# default because a failed link removes lib/libameir.so* while others are mid-edit), copied with its
# lib/libameir.so* into DIR/.ameir before the runs.
# PyTorch side: ../shared/bench/torch_ref.py (AMEIR_REF) for dnn, deepfm, din and sasrec (= its
# ameir-seq with the blocks sa2:identity:ln,conv1:relu:ln, SE shortcut, sum+last read-out, as
# libameir's sasrec preset, docs/arch.md); bench/torch_zoo.py (torch_ref + DCN and xDeepFM) for dcn
# and xdeepfm. Everything the two sides share is read from the dataset's config
# (examples/configs/DS.yaml): files, format, split, min_count, max_len (seq-len); train: emb, batch,
# lr, epochs, neg; the MLP is passed EXPLICITLY to both sides (config train.mlp if set, else
# torch_ref's default: 200:relu,80:relu, din 200:dice,80:dice) because libameir's presets default
# to 400-400-400 where torch_ref defaults to 200-80. Both sides: dense Adam, no shuffling, N(0, 0.01)
# embeddings, PyTorch-default linear init (the configs set shuffle 0, init normal, mlp_init torch;
# this script stops if one does not), --threads $THREADS (default 2), no early stopping.
# dcn/xdeepfm: libameir gets --set cross_layers=$CROSS_LAYERS --set cin=$CIN (defaults 3 and
# 128,128), PyTorch --cross-layers/--cin with the same values.
# --epochs N shortens (or lengthens) BOTH sides identically; it is recorded in DIR/settings and a
# rerun with other settings into the same DIR is refused.
#
# Models per dataset: CTR data gets dnn deepfm dcn xdeepfm, plus din when it has behaviours
# (format ml100k); retrieval data (userseq/useritem) gets sasrec only. Other combinations are skipped.
#
# Every run writes DIR/DS.MODEL.{ameir,torch}.SEED.json (its last stdout line) and is skipped when
# that file exists, so the script resumes. stderr goes to .err next to it. When libameir refuses
# the model name (not implemented yet) DIR/DS.MODEL.ameir.SEED.missing holds its message and the
# table shows the row as missing; the refusal is retried on the next run. Every command run is
# appended to DIR/commands.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/zoo_compare
DATASETS="frappe ml100k"
MODELS="dnn deepfm dcn xdeepfm din sasrec"
SEEDS="2021 2022 2023"
EPOCHS=""
SUMMARY=1
MAKE=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --datasets) DATASETS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --no-summary) SUMMARY=0; shift ;;
    --make) MAKE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "zoo_compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
THREADS=${THREADS:-2}
# Both sides use OpenMP (libgomp; torch's OpenBLAS too). On a shared 2-core machine the default
# spin-waiting made runs 10-40x slower (frappe dnn: torch 152 s vs 9 s, libameir 56 s vs 7 s);
# passive waiting changes no result (same AUC to the last digit at the same thread count).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
CROSS_LAYERS=${CROSS_LAYERS:-3}
CIN=${CIN:-128,128}
REF=${AMEIR_REF:-../shared/bench/torch_ref.py}
ZOO=bench/torch_zoo.py
DATA=${AMEIR_DATA_DIR:-../shared/data}
PY=/usr/bin/python3
A=${AMEIR_BIN:-./build/ameir}
mkdir -p "$OUT"
SETTINGS="epochs=${EPOCHS:-config} threads=$THREADS cross_layers=$CROSS_LAYERS cin=$CIN"
if [ -s "$OUT/settings" ] && [ "$(cat "$OUT/settings")" != "$SETTINGS" ]; then
  echo "zoo_compare.sh: $OUT was run with '$(cat "$OUT/settings")', not '$SETTINGS'; use another --out" >&2
  exit 2
fi
echo "$SETTINGS" > "$OUT/settings"
if [ "$MAKE" = 1 ]; then
  make -s build/ameir >/dev/null || { echo "zoo_compare.sh: make build/ameir failed" >&2; exit 1; }
fi
# Run a private copy of the binary and its library (RUNPATH $ORIGIN/../lib), so that a rebuild
# during the runs neither breaks them nor mixes two versions in one table.
"$A" --help >/dev/null 2>&1 || { echo "zoo_compare.sh: $A does not run (build it, or set AMEIR_BIN)" >&2; exit 1; }
ABIN=$(cd "$(dirname "$A")" && pwd)
rm -rf "$OUT/.ameir" && mkdir -p "$OUT/.ameir/build" "$OUT/.ameir/lib"
cp "$ABIN/$(basename "$A")" "$OUT/.ameir/build/ameir" && cp -P "$ABIN"/../lib/libameir.so* "$OUT/.ameir/lib/"
A=$OUT/.ameir/build/ameir
"$A" --help >/dev/null 2>&1 || { echo "zoo_compare.sh: the copy $A does not run" >&2; exit 1; }
echo "libameir: $ABIN/$(basename "$A") (copied to $A)" >> "$OUT/commands.txt"

# config -> shell variables: what torch needs to read the same split with the same recipe
cfg_vars() {   # CONFIG
  DATA="$DATA" EPOCHS="$EPOCHS" "$PY" - "$1" <<'PY'
import os, shlex, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
d, t = c['dataset'], c.get('train') or {}
D = os.environ['DATA']
bad = [k for k, v in (('shuffle', 0), ('init', 'normal'), ('mlp_init', 'torch')) if str(t.get(k)) != str(v)]
bad += [k for k in ('l2', 'dropout', 'lr_schedule', 'patience', 'optimizer', 'beta1', 'beta2', 'eps')
        if k in t and str(t[k]) not in ('0', '0.0', 'none', 'adam', '0.9', '0.999', '1e-8', '1e-08')]
if abs(float(t.get('init_std', 0.01)) - 0.01) > 1e-12:
    bad.append('init_std')
if bad:
    sys.exit('%s: train options %s differ from torch_ref\'s recipe' % (sys.argv[1], bad))
fmt = d['format']
files = [os.path.join(D, f) for f in d['files']]
sp = (d.get('split') or {})
args = []
if fmt == 'ml100k':
    kind = 'behaviour'
    args += ['--format', 'ml100k', '--data', os.path.dirname(files[0])]
elif fmt in ('userseq', 'useritem'):
    kind = 'retrieval'
    args += ['--format', fmt, '--data', files[0]]
elif fmt in ('libfm', 'criteo', 'avazu'):
    kind = 'ctr'
    if sp.get('method') == 'modulo':
        args += ['--split', 'modulo']
    elif sp.get('method') == 'file':
        files += [os.path.join(D, f) for f in sp.get('test_files', [])]
        args += ['--split', 'lastfile']
    else:
        sys.exit('%s: split %r has no torch_ref equivalent here' % (sys.argv[1], sp))
    args += ['--format', fmt, '--data', ','.join(files)]
else:
    sys.exit('%s: format %s is not handled by zoo_compare.sh' % (sys.argv[1], fmt))
if 'min_count' in d:
    args += ['--min-count', str(d['min_count'])]
if 'max_len' in d:
    args += ['--seq-len', str(d['max_len'])]
args += ['--emb', str(t.get('emb', 16)), '--batch', str(t.get('batch', 256)), '--lr', str(t.get('lr', 1e-3)),
         '--epochs', os.environ.get('EPOCHS') or str(t.get('epochs', 1))]
if kind == 'retrieval':
    args += ['--neg', str(t.get('neg', 5))]
    ev = c.get('eval') or {}
    prot = ev.get('protocol', ['full'])
    prot = prot if isinstance(prot, list) else [prot]
    args += ['--eval-negs', ','.join(['0'] * ('full' in prot) + [str(ev.get('negatives', 100))] * ('sampled' in prot))]
print('KIND=%s' % kind)
print('TORCH_DATA=%s' % shlex.quote(' '.join(shlex.quote(a) for a in args)))
print('CFG_MLP=%s' % shlex.quote(str(t.get('mlp', ''))))
PY
}

log_cmd() { printf '%q ' "$@" >> "$OUT/commands.txt"; echo >> "$OUT/commands.txt"; }

run_ameir() {   # DS MODEL SEED CFG MLP
  local f="$OUT/$1.$2.ameir.$3.json" extra=()
  [ -s "$f" ] && return 0
  case $2 in dcn) extra=(--set cross_layers=$CROSS_LAYERS) ;; xdeepfm) extra=(--set "cin=$CIN") ;; esac
  [ -n "$EPOCHS" ] && extra+=(--set epochs=$EPOCHS)
  local cmd=("$A" train "$4" --model "$2" --mlp "$5" --seed "$3" --threads "$THREADS" "${extra[@]}" --json)
  log_cmd "${cmd[@]}"
  if "${cmd[@]}" 2>"$f.err" | tail -1 > "$f.tmp" && grep -q '^{' "$f.tmp"; then   # pipefail: ameir's status counts
    mv "$f.tmp" "$f"; rm -f "${f%.json}.missing"
  else
    rm -f "$f.tmp"
    if grep -qi "unknown model\|unknown key\|unknown option" "$f.err"; then
      grep -i "unknown" "$f.err" | head -1 > "${f%.json}.missing"
      echo "missing: libameir refuses $2 ($(cat "${f%.json}.missing"))" >&2
    else
      echo "failed: $f (see $f.err)" >&2
    fi
  fi
}

run_torch() {   # DS MODEL SEED MLP
  local f="$OUT/$1.$2.torch.$3.json" script=$REF tm=$2 extra=()
  [ -s "$f" ] && return 0
  case $2 in
    dcn) script=$ZOO; extra=(--cross-layers "$CROSS_LAYERS") ;;
    xdeepfm) script=$ZOO; extra=(--cin "$CIN") ;;
    sasrec) tm=ameir-seq; extra=(--blocks sa2:identity:ln,conv1:relu:ln) ;;
  esac
  eval "local data=($TORCH_DATA)"   # --epochs included (the config's, or --epochs N)
  local cmd=("$PY" "$script" --model "$tm" "${data[@]}" --mlp "$4" "${extra[@]}" --threads "$THREADS"
             --warmup-steps 5 --seed "$3" --quiet)
  log_cmd "${cmd[@]}"
  if AMEIR_REF="$REF" "${cmd[@]}" 2>"$f.err" | tail -1 > "$f.tmp" && grep -q '^{' "$f.tmp"; then
    mv "$f.tmp" "$f"
  else
    rm -f "$f.tmp"; echo "failed: $f (see $f.err)" >&2
  fi
}

T0=$(date +%s)
for ds in $DATASETS; do
  cfg=examples/configs/$ds.yaml
  [ -f "$cfg" ] || { echo "zoo_compare.sh: no $cfg" >&2; exit 2; }
  eval "$(cfg_vars "$cfg")"
  for model in $MODELS; do
    case $KIND:$model in
      ctr:dnn|ctr:deepfm|ctr:dcn|ctr:xdeepfm) ;;
      behaviour:dnn|behaviour:deepfm|behaviour:dcn|behaviour:xdeepfm|behaviour:din) ;;
      retrieval:sasrec) ;;
      *) continue ;;
    esac
    if [ -n "$CFG_MLP" ] && [ "$model" != din ]; then mlp=$CFG_MLP
    elif [ "$model" = din ]; then mlp=${CFG_MLP:-200:dice,80:dice}
    else mlp=200:relu,80:relu; fi
    for seed in $SEEDS; do
      run_ameir "$ds" "$model" "$seed" "$cfg" "$mlp"
      run_torch "$ds" "$model" "$seed" "$mlp"
      echo "$(date +%T) $ds $model seed $seed done ($(( $(date +%s) - T0 )) s)" >&2
    done
  done
done
[ "$SUMMARY" = 1 ] && "$PY" bench/summarize_zoo.py "$OUT"
echo "zoo_compare.sh: $(( $(date +%s) - T0 )) s" >&2
