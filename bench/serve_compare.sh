#!/bin/bash
# Serving figures of libameir next to PyTorch's inference figure, in one run: single-row latency
# (p50, p99) and batch throughput of ameir_model_predict_split (bench/serve_bench.c) for DeepFM on
# Frappe and DIN on MovieLens-100K (examples/configs/frappe.yaml, ml100k.yaml; trained here with
# `ameir train ... --out`, or reused from OUTDIR), and for any further MODEL CONFIG pairs (e.g. a
# model derived by `ameir search`, OUTDIR/model.ameir of that run), at 1 and 2 threads; and for
# each the infer_samples_per_s of ../shared/bench/torch_ref.py for the same model family on the
# same data, at the same thread count (REFERENCE.md "Real data" flags). Prints one Markdown table
# (also written to OUTDIR/serve_compare.md; raw figures in OUTDIR/*.serve.txt and *.torch*.json).
#
#   bash bench/serve_compare.sh OUTDIR [MODEL CONFIG]...
#
# Environment: SERVE_THREADS ("1 2"), TORCH_RUNS (3: torch_ref runs per line, the best one is
# kept), TORCH_INFER_BATCH (4096 = libameir's eval_batch, the batch predict_split scores a
# split in), AMEIR_REF, AMEIR_DATA_DIR (../shared/data).
#
# What each side times: libameir, p50/p99 over 2,000 single-row predict_split calls (after 50
# warm-up calls) and the best of 5 whole-test-split calls; PyTorch (torch_ref.py), one pass over
# the validation split in batches of TORCH_INFER_BATCH, no grad, after a few training steps (the
# figure torch_ref prints; the splits are the same size). torch_ref has no counterpart for some
# searched blocks (target_att): such blocks are left out of PyTorch's model and the row is
# marked "≈" (PyTorch then runs less work, so the ratio understates libameir's).
set -euo pipefail
usage() { echo "usage: bash bench/serve_compare.sh OUTDIR [MODEL CONFIG]..." >&2; exit 2; }
[ $# -ge 1 ] || usage
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
OUT=$(abs "$1")
shift
[ $(($# % 2)) = 0 ] || usage
EXTRA=()
for a in "$@"; do EXTRA+=("$(abs "$a")"); done
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
REF=$(abs "${AMEIR_REF:-../shared/bench/torch_ref.py}")
DATA=$(abs "${AMEIR_DATA_DIR:-../shared/data}")
THREADS=${SERVE_THREADS:-1 2}
TORCH_RUNS=${TORCH_RUNS:-3}
TORCH_BATCH=${TORCH_INFER_BATCH:-4096}
mkdir -p "$OUT"
make -s build/ameir build/serve_bench >/dev/null
t_start=$(date +%s)
echo "serve_compare: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start" >&2

# --- the models: name|model file|config ---
train() {  # train NAME CONFIG MODEL: OUT/NAME/model.ameir, trained unless already there
  if [ ! -s "$OUT/$1/model.ameir" ]; then
    echo "serve_compare: ameir train $2 --model $3 --out $OUT/$1" >&2
    ./build/ameir train "$2" --model "$3" --out "$OUT/$1" --json >"$OUT/$1.train.json" 2>"$OUT/$1.train.log" ||
      { tail -n 20 "$OUT/$1.train.log" >&2; exit 1; }
  fi
  echo "$1|$OUT/$1/model.ameir|$ROOT/$2"
}
ENTRIES=()
ENTRIES+=("$(train deepfm-frappe examples/configs/frappe.yaml deepfm)")
ENTRIES+=("$(train din-ml100k examples/configs/ml100k.yaml din)")
i=0
while [ $i -lt ${#EXTRA[@]} ]; do
  m=${EXTRA[$i]} c=${EXTRA[$((i + 1))]}
  [ -s "$m" ] || { echo "serve_compare: $m: no such model file" >&2; exit 1; }
  [ -s "$c" ] || { echo "serve_compare: $c: no such config" >&2; exit 1; }
  n=$(basename "$(dirname "$m")")   # OUT/NAME/model.ameir of `ameir search --out` / `train --out`
  [ "$(basename "$m")" = model.ameir ] || n=$(basename "$m" .ameir)
  for e in "${ENTRIES[@]}"; do [ "${e%%|*}" != "$n" ] || n="$n-$((i / 2 + 1))"; done
  ENTRIES+=("$n|$m|$c")
  i=$((i + 2))
done

# --- torch_ref's flags for a model file and its config (the same family, data and sizes) ---
torch_args() {  # torch_args MODEL CONFIG: prints "FLAGS" or "-", then a second line: a note
  ./build/ameir inspect "$1" >"$OUT/inspect.txt" 2>&1 || { echo "-"; echo "ameir inspect failed"; return; }
  LD_LIBRARY_PATH=$ROOT/lib $PY - "$OUT/inspect.txt" "$2" "$DATA" "$ROOT/lib/libameir.so.0" <<'PY'
import ctypes, re, sys
inspect, config, data, libpath = sys.argv[1:]
kv = dict(l.split(":", 1) for l in open(inspect).read().splitlines() if ":" in l)
kv = {k.strip(): v.strip() for k, v in kv.items()}
text = open(config).read()
m = re.search(r"^\s*name:\s*(\S+)", text, re.M)
name = m.group(1) if m else ""
m = re.search(r"^\s*max_len:\s*(\d+)", text, re.M)
seq_len = m.group(1) if m else "50"
DATA = {   # REFERENCE.md "Real data"
    "frappe": "--format libfm --data %s/frappe/frappe_nfm_validation.libfm.xz,%s/frappe/frappe_nfm_test.libfm.xz "
              "--split modulo" % (data, data),
    "criteo": "--data %s/criteo/criteo_kaggle_train_head_rows0001-8000.tsv.xz --split modulo --min-count 2" % data,
    "ml100k": "--format ml100k --data %s/movielens --seq-len %s" % (data, seq_len),
}
if name not in DATA:
    print("-"); print("torch_ref has no data flags for dataset '%s' here" % name); sys.exit()
# non-sequence fields in torch_ref's order (field order, multi-valued last), for --inter
lib = ctypes.CDLL(libpath)
P = ctypes.c_void_p
lib.ameir_context_create.argtypes = [ctypes.POINTER(P), ctypes.c_char_p]
lib.ameir_dataset_open.argtypes = [ctypes.POINTER(P), P, ctypes.c_char_p]
lib.ameir_dataset_fields.argtypes = [P]
lib.ameir_dataset_field_name.argtypes = [P, ctypes.c_int32]
lib.ameir_dataset_field_name.restype = ctypes.c_char_p
lib.ameir_dataset_field_kind.argtypes = [P, ctypes.c_int32]
ctx, ds = P(), P()
lib.ameir_context_create(ctypes.byref(ctx), b"cpu")
if lib.ameir_dataset_open(ctypes.byref(ds), ctx, config.encode()):
    print("-"); print("cannot open %s" % config); sys.exit()
fields = [(lib.ameir_dataset_field_name(ds, i).decode(), lib.ameir_dataset_field_kind(ds, i))
          for i in range(lib.ameir_dataset_fields(ds))]
nonseq = [f for f, k in fields if k == 0] + [f for f, k in fields if k == 1]
mlp = ",".join("%s:%s" % (w, a) for w, a in re.findall(r"\((\d+),\s*(\w+)\)", kv.get("mlp", "")))
blocks_txt = kv.get("blocks", "")
blocks = re.findall(r"\(([^)]*)\)|(zero)", blocks_txt)
readout = kv.get("readout", "field").split()
extras = kv.get("extras", "none").split()
inter = re.findall(r"\(([^)]*)\)", kv.get("interactions", ""))
emb = kv.get("emb", "16")
note = ""
common = "--emb %s --mlp %s" % (emb, mlp)
if not blocks and readout == ["field"] and not inter and kv.get("shortcut") == "none":
    fam = {"linear fm": "deepfm", "fm linear": "deepfm", "linear": "widedeep", "none": "dnn"}.get(" ".join(extras))
    if not fam:
        print("-"); print("extras '%s' have no torch_ref model" % " ".join(extras)); sys.exit()
    print("--model %s %s %s" % (fam, common, DATA[name])); print(""); sys.exit()
if extras != ["none"]:
    print("-"); print("an AMEIR model with extras '%s' has no torch_ref model" % " ".join(extras)); sys.exit()
if not blocks and readout == ["att"] and not inter and kv.get("shortcut") == "none":
    print("--model din %s %s" % (common, DATA[name])); print(""); sys.exit()
tb, dropped = [], []
LAYERS = {"conv1", "conv3", "dconv3", "dconv5", "dconv7", "avgpool3", "maxpool3", "gru", "sa2", "sa4"}
for b, z in blocks:
    if z:
        tb.append("zero:identity:none"); continue
    layer, act, norm = [x.strip() for x in b.split(",")]
    if layer not in LAYERS:
        dropped.append(layer); tb.append("zero:identity:none"); continue
    if act not in ("relu", "gelu", "swish", "identity") or norm not in ("ln", "none"):
        print("-"); print("block (%s) has no torch_ref counterpart" % b); sys.exit()
    tb.append("%s:%s:%s" % (layer, act, norm))
ro = ",".join({"sum": "sum", "last": "last", "att": "din"}[r] for r in readout if r != "field")
idx = []
for t in inter:
    names = [x.strip() for x in t.split(",")]
    if any(n not in nonseq for n in names):
        print("-"); print("interaction (%s) names a field torch_ref does not have" % t); sys.exit()
    idx.append("-".join(str(nonseq.index(n)) for n in names))
args = "--model ameir-ctr %s --blocks '%s' --readout '%s' --inter '%s' %s %s" % (
    common, ",".join(tb), ro or "sum", ",".join(idx), "" if kv.get("shortcut") == "se" else "--no-se", DATA[name])
print(args)
print(("torch_ref has no %s block: PyTorch's model leaves it out (less work)" % "/".join(sorted(set(dropped))))
      if dropped else "")
PY
}

# --- run ---
ROWS=()
for e in "${ENTRIES[@]}"; do
  IFS='|' read -r name model config <<<"$e"
  targs="" tnote=""
  { read -r targs; read -r tnote; } < <(torch_args "$model" "$config") || true
  targs=${targs:--}
  for t in $THREADS; do
    f=$OUT/$name.t$t
    echo "serve_compare: $name, $t thread(s): serve_bench" >&2
    ./build/serve_bench "$model" "$config" "$t" >"$f.serve.txt" 2>"$f.serve.log" ||
      { cat "$f.serve.log" >&2; exit 1; }
    rm -f "$f".torch*.json "$f".torch*.log
    if [ "$targs" != "-" ]; then
      for r in $(seq "$TORCH_RUNS"); do
        echo "serve_compare: $name, $t thread(s): torch_ref run $r" >&2
        # a few training steps (the weights do not change the speed), then its inference figure
        eval "$PY \"$REF\" $targs --batch 256 --steps 3 --warmup-steps 1 --infer-batch $TORCH_BATCH --threads $t --quiet" \
          2>"$f.torch$r.log" | tail -n 1 >"$f.torch$r.json" || { tail -n 20 "$f.torch$r.log" >&2; exit 1; }
      done
    fi
    ROWS+=("$name|$config|$t|$f|$targs|$tnote")
  done
done

$PY - "$OUT" "$TORCH_BATCH" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(($(date +%s) - t_start))" "${ROWS[@]}" <<'PY' | tee "$OUT/serve_compare.md"
import glob, json, os, re, sys
out, tb, load, secs = sys.argv[1:5]
rows = sys.argv[5:]
print("| model | data | threads | libameir p50 µs | p99 µs | libameir batch samples/s | PyTorch infer samples/s | ratio |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
notes, goals, blas = [], [], set()
for r in rows:
    name, config, t, f, targs, tnote = r.split("|")
    s = open(f + ".serve.txt").read()
    m = re.search(r"p50 ([\d.]+) us, p99 ([\d.]+) us \((\d+) rows\); batch (\d+) rows: (\d+) samples/s", s)
    p50, p99, nsingle, nbatch, bsps = float(m.group(1)), float(m.group(2)), m.group(3), m.group(4), float(m.group(5))
    data = os.path.splitext(os.path.basename(config))[0]
    torch = []
    for j in sorted(glob.glob(f + ".torch*.json")):
        try:
            d = json.load(open(j))
        except ValueError:
            continue
        torch.append(d["infer_samples_per_s"])
        b = d.get("blas") or ["?"]
        blas.add(", ".join(os.path.basename(x) for x in (b if isinstance(b, list) else [b])))
    mark = "≈ " if tnote else ""
    if torch:
        tps = max(torch)
        tcell, ratio = "%s%.0f" % (mark, tps), "%s%.1fx" % (mark, bsps / tps)
    else:
        tcell, ratio = "n/a", "n/a"
    print("| %s | %s | %s | %.1f | %.1f | %.0f | %s | %s |" % (name, data, t, p50, p99, bsps, tcell, ratio))
    if tnote and (name, tnote) not in notes:
        notes.append((name, tnote))
    if targs == "-" and (name, "no PyTorch figure: " + tnote) not in notes:
        notes.append((name, "no PyTorch figure: " + tnote))
    if data == "ml100k":
        goals.append("%s, %s thread(s): single-row p99 %.1f µs %s 100 µs" % (name, t, p99, "<" if p99 < 100 else ">="))
    if torch:
        goals.append("%s, %s thread(s): batch %.1fx PyTorch %s 5x" % (name, t, bsps / max(torch), ">=" if bsps >= 5 * max(torch) else "<"))
print()
print("libameir: bench/serve_bench.c, ameir_model_predict_split on the test split (single rows: %s calls "
      "after 50 warm-up ones; batch: the whole split in one call, best of 5). PyTorch: "
      "torch_ref.py's infer_samples_per_s (one pass over the validation split, batch %s, no grad), the "
      "best of its runs (BLAS: %s). Load average at the end %s; %s s in all." %
      (nsingle, tb, "; ".join(sorted(blas)) or "-", load, secs))
for n, t in notes:
    print("- %s: %s" % (n, t))
print()
print("Goals (single-row p99 < 100 µs on MovieLens-100K; batch >= 5x PyTorch):")
for g in goals:
    print("- " + g)
PY
