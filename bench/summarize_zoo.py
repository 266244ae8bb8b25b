#!/usr/bin/python3
"""Markdown tables of bench/zoo_compare.sh's runs: libameir next to PyTorch, model by model.

    /usr/bin/python3 bench/summarize_zoo.py OUTDIR [--k 2]

Reads OUTDIR/DS.MODEL.{ameir,torch}.SEED.json (and .missing: libameir refused the model name).
Per (dataset, model, metric): mean ± sample standard deviation (n-1) over the seeds of each side,
the difference libameir - PyTorch, and the rule

    same  <=>  |mean_libameir - mean_pytorch| <= K * max(std_libameir, std_pytorch)     (K = --k, 2)

"ranges overlap" says whether the seeds' [min, max] intervals of the two sides overlap.
CTR data: test AUC (then test log loss in a second table). Retrieval data: test HR@10 and NDCG@10,
full ranking and 1 + 100 sampled (libameir writes neg100_test_*, torch_ref test_neg100_*).
"""
import collections
import glob
import json
import os
import statistics as st
import sys

MODEL_ORDER = ['dnn', 'deepfm', 'dcn', 'xdeepfm', 'din', 'sasrec']
CTR_KEYS = [('test AUC', 'test_auc', 'test_auc'), ('test logloss', 'test_logloss', 'test_logloss')]
RET_KEYS = [('test HR@10 (full)', 'test_hr@10', 'test_hr@10'),
            ('test NDCG@10 (full)', 'test_ndcg@10', 'test_ndcg@10'),
            ('test HR@10 (1+100)', 'neg100_test_hr@10', 'test_neg100_hr@10'),
            ('test NDCG@10 (1+100)', 'neg100_test_ndcg@10', 'test_neg100_ndcg@10')]


def fmt(v, nd=4):
    return ('%.' + str(nd) + 'f') % v


def stats(vals):
    m = st.mean(vals)
    s = st.stdev(vals) if len(vals) > 1 else float('nan')
    return m, s


def main(argv):
    k = 2.0
    args = list(argv)
    if '--k' in args:
        i = args.index('--k')
        k = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    runs = collections.defaultdict(lambda: collections.defaultdict(dict))   # (ds, model) -> side -> seed -> json
    missing = collections.defaultdict(str)
    datasets = []
    for f in sorted(glob.glob(os.path.join(out, '*.json')) + glob.glob(os.path.join(out, '*.missing'))):
        parts = os.path.basename(f).split('.')
        if len(parts) != 5:
            continue
        ds, model, side, seed, ext = parts
        if ds not in datasets:
            datasets.append(ds)
        if ext == 'missing':
            msg = open(f).read().strip()        # 'ameir: model: unknown model 'dcn' (lr, fm, ...)'
            missing[(ds, model)] = msg.split(' (')[0].split(': ')[-1]
            continue
        try:
            runs[(ds, model)][side][seed] = json.load(open(f))
        except (OSError, ValueError):
            continue
    keys = sorted(set(runs) | set(missing),
                  key=lambda dm: (datasets.index(dm[0]),
                                  MODEL_ORDER.index(dm[1]) if dm[1] in MODEL_ORDER else 99, dm[1]))

    def table(title, metric_sel):
        print('\n### %s\n' % title)
        print('| model | data | metric | libameir mean ± std (n) | PyTorch mean ± std (n) | diff (lib - torch) '
              '| max std | \\|diff\\| / max std | same (\\|diff\\| <= %g max std) | ranges overlap |' % k)
        print('|---|---|---|---|---|---|---|---|---|---|')
        for ds, model in keys:
            sides = runs.get((ds, model), {})
            anyj = next((j for s in sides.values() for j in s.values()), None)
            retrieval = anyj is not None and ('test_hr@10' in anyj or 'test_neg100_hr@10' in anyj)
            for name, ka, kt in metric_sel(retrieval):
                va = [j[ka] for j in sides.get('ameir', {}).values() if j.get(ka) is not None]
                vt = [j[kt] for j in sides.get('torch', {}).values() if j.get(kt) is not None]
                ca = '%s ± %s (%d)' % (fmt(stats(va)[0]), fmt(stats(va)[1]), len(va)) if va else \
                    ('missing: %s' % missing[(ds, model)] if missing.get((ds, model)) else 'missing')
                ct = '%s ± %s (%d)' % (fmt(stats(vt)[0]), fmt(stats(vt)[1]), len(vt)) if vt else 'missing'
                if va and vt:
                    (ma, sa), (mt, stt) = stats(va), stats(vt)
                    d = ma - mt
                    ms = max(x for x in (sa, stt) if x == x) if (sa == sa or stt == stt) else float('nan')
                    ratio = abs(d) / ms if ms and ms == ms else float('inf')
                    same = 'yes' if abs(d) <= k * ms else 'no'
                    ov = 'yes' if max(va) >= min(vt) and max(vt) >= min(va) else 'no'
                    print('| %s | %s | %s | %s | %s | %+.4f | %.4f | %.2f | %s | %s |' %
                          (model, ds, name, ca, ct, d, ms, ratio, same, ov))
                else:
                    print('| %s | %s | %s | %s | %s | - | - | - | - | - |' % (model, ds, name, ca, ct))

    table('Test metric (main)', lambda r: RET_KEYS[2:3] + RET_KEYS[0:1] if r else CTR_KEYS[:1])
    table('Other test metrics', lambda r: RET_KEYS[1:2] + RET_KEYS[3:4] if r else CTR_KEYS[1:])

    print('\n### Training (means over seeds)\n')
    print('| model | data | side | seeds | steps | epochs | train loss first → last | train samples/s | n_params |')
    print('|---|---|---|---|---|---|---|---|---|')
    for ds, model in keys:
        for side, label in (('ameir', 'libameir'), ('torch', 'PyTorch')):
            js = list(runs.get((ds, model), {}).get(side, {}).values())
            if not js:
                continue

            def m(key):
                v = [j[key] for j in js if j.get(key) is not None]
                return st.mean(v) if v else float('nan')
            ep = m('epochs') if side == 'ameir' else m('epochs_seen')
            print('| %s | %s | %s | %d | %.0f | %.2g | %.4f → %.4f | %.0f | %.0f |' %
                  (model, ds, label, len(js), m('train_steps'), ep, m('train_loss_first'), m('train_loss_last'),
                   m('train_samples_per_s'), m('n_params')))
    print('\nRule: same <=> |mean_libameir - mean_pytorch| <= %g x max(std_libameir, std_pytorch), std = sample '
          'standard deviation over the seeds; libameir = `ameir train`, PyTorch = torch_ref.py (dcn, xdeepfm: '
          'bench/torch_zoo.py).' % k)


if __name__ == '__main__':
    main(sys.argv[1:])
