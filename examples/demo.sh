#!/bin/sh
# `make demo`: the full search and derivation (all three steps) on MovieLens-100K from
# ../shared/data, then DNN and DeepFM trained on the same split for comparison. Without the
# data it searches a synthetic dataset the library generates (and says so).
set -e
AMEIR=./build/ameir
DATA=${AMEIR_DATA_DIR:-../shared/data}
OUT=${DEMO_OUT:-build/demo-search}
if [ -d "$DATA/movielens" ]; then
  CONFIG=examples/configs/ml100k.yaml
else
  echo "demo: $DATA/movielens not found: searching a synthetic dataset instead (ameir gen build/demo-data)"
  $AMEIR gen build/demo-data --rows 100000 >/dev/null
  CONFIG=build/demo-data/synthetic.yaml
fi
$AMEIR search "$CONFIG" --out "$OUT" --json > "$OUT.json" || exit 1
for m in dnn deepfm; do
  $AMEIR train "$CONFIG" --model $m --json > "$OUT.$m.json" 2>/dev/null || exit 1
done
/usr/bin/python3 - "$OUT" <<'PY' 2>/dev/null || cat "$OUT.json"
import json, sys
out = sys.argv[1]
s = json.load(open(out + ".json"))
print("architecture found by the search (%s):" % s["config"])
for line in (s.get("final_arch") or "").strip().splitlines():
    print("  " + line)
secs = sum(s.get("step%d_seconds" % i) or 0 for i in range(1, 5))
print("search and derivation: %.0f s on %s thread(s); report: %s/report.html" % (secs, s["threads"], out))
print("%-10s %10s %10s %12s" % ("model", "test AUC", "log loss", "parameters"))
print("%-10s %10.4f %10.4f %12d" % ("AMEIR", s["test_auc"], s["test_logloss"], s["params"]))
for m in ("dnn", "deepfm"):
    t = json.load(open("%s.%s.json" % (out, m)))
    print("%-10s %10.4f %10.4f %12d" % (m.upper() if m == "dnn" else "DeepFM", t["test_auc"], t["test_logloss"], t["n_params"]))
PY
