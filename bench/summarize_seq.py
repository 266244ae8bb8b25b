import json, glob, statistics as st, sys, collections
d = collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1] + '/*.json')):
    name = f.split('/')[-1]
    ds, model, seed, _ = name.split('.')
    try: j = json.load(open(f))
    except Exception: continue
    d[(ds, model)].append(j)
keys = [('test_hr@5','HR@5'),('test_ndcg@5','NDCG@5'),('test_hr@10','HR@10'),('test_ndcg@10','NDCG@10')]
def g(j, k, prot):
    if prot == 'full': return j.get(k)
    return j.get('neg100_' + k, j.get(k.replace('test_', 'test_neg100_')))
for prot in ['full', 'sampled']:
    print('\n%s protocol' % prot)
    print('| data | model | seeds | ' + ' | '.join(n for _, n in keys) + ' | train samples/s |')
    print('|---|---|---|' + '---|' * (len(keys) + 1))
    for (ds, model), js in sorted(d.items()):
        row = []
        for k, n in keys:
            v = [g(j, k, prot) for j in js if g(j, k, prot) is not None]
            row.append('%.4f (%.4f–%.4f)' % (st.mean(v), min(v), max(v)) if v else '-')
        sp = [j.get('train_samples_per_s') for j in js if j.get('train_samples_per_s')]
        print('| %s | %s | %d | %s | %.0f |' % (ds, model, len(js), ' | '.join(row), st.mean(sp) if sp else 0))
