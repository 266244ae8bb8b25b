"""Markdown tables of bench/search_quality.sh's runs: mean ± std over seeds per model."""
import collections, glob, json, statistics as st, sys

runs = collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    ds, model, seed, _ = f.split("/")[-1].split(".")
    try:
        runs[(ds, model)].append(json.load(open(f)))
    except Exception:
        pass

def val(j, *keys):
    for k in keys:
        if j.get(k) is not None:
            return j[k]
    return None

def cell(vs, fmt="%.4f"):
    vs = [v for v in vs if v is not None]
    if not vs:
        return "-"
    return (fmt + " ± " + fmt) % (st.mean(vs), st.stdev(vs) if len(vs) > 1 else 0.0)

order = ["ameir-a", "ameir-b", "ameir-c", "ameir-c-scratch", "dnn", "widedeep", "deepfm", "din", "sasrec", "nextitnet"]
for ds in sorted({d for d, _ in runs}):
    retrieval = ds.startswith("amazon")
    if retrieval:
        cols = [("HR@10 full", ("test_hr@10", "test_hr10")), ("NDCG@10 full", ("test_ndcg@10", "test_ndcg10")),
                ("HR@10 sampled", ("neg100_test_hr@10", "test_neg100_hr@10")), ("NDCG@10 sampled", ("neg100_test_ndcg@10", "test_neg100_ndcg@10"))]
    else:
        cols = [("test AUC", ("test_auc",)), ("test log loss", ("test_logloss",))]
    print("\n### %s\n" % ds)
    print("| model | seeds | " + " | ".join(c for c, _ in cols) + " | parameters | FLOPs/sample | seconds |")
    print("|---|---|" + "---|" * (len(cols) + 3))
    for m in sorted({m for d, m in runs if d == ds}, key=lambda m: order.index(m) if m in order else 99):
        js = runs[(ds, m)]
        row = [cell([val(j, *keys) for j in js]) for _, keys in cols]
        params = [val(j, "params", "n_params") for j in js]
        flops = [val(j, "flops", "flops_per_sample") for j in js]
        secs = [sum(j.get("step%d_seconds" % i) or 0 for i in range(1, 5)) if "step4_seconds" in j else j.get("train_seconds") for j in js]
        print("| %s | %d | %s | %s | %s | %s |" % (m, len(js), " | ".join(row), cell(params, "%.0f").split(" ±")[0],
                                                   cell(flops, "%.0f").split(" ±")[0], cell(secs, "%.0f")))
