"""Checks examples/python/ameir.py against an installed libameir (tests/install/run.sh runs it
with Debian's /usr/bin/python3).

    python3 test_ameir.py MODEL DATA_FILE REFERENCE_SCORES

MODEL is a CTR model file, DATA_FILE a data file in its training format, REFERENCE_SCORES the
output of `ameir predict MODEL DATA_FILE` (one probability a line). Top-k is checked on a small
retrieval model trained here through the C API (ctypes): a generated userseq file, SASRec-like,
one epoch. Prints one line per check; exits 1 at the first failure.
"""

import ctypes
import math
import os
import random
import re
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ameir  # noqa: E402

TOL = 1e-5  # scores of one row may differ in the last printed digit between batch shapes


def check(what, cond, detail=""):
    if not cond:
        print("python: FAIL %s%s" % (what, ": " + detail if detail else ""))
        sys.exit(1)
    print("python: ok   %s" % what)


def close_to(got, want):
    return len(got) == len(want) and all(abs(a - b) <= TOL for a, b in zip(got, want))


def raises(fn, exc_type):
    try:
        fn()
    except exc_type as e:
        return e
    return None


# --- top-k on a retrieval model trained here ---
N_USERS, N_ITEMS, MAX_LEN = 300, 40, 10


def write_userseq(dirname):
    """users with 4..12 items each, chronological, item ids 1..N_ITEMS (the largest one used, so
    that the candidates are exactly 1..N_ITEMS): a noisy walk, so the model has something to
    learn. Returns the config path and the users' item lists, in file order."""
    rng = random.Random(7)
    users = []
    for u in range(N_USERS):
        m = rng.randint(4, 12)
        it = rng.randint(1, N_ITEMS)
        seq = []
        for _ in range(m):
            seq.append(it)
            it = it % N_ITEMS + 1 if rng.random() < 0.7 else rng.randint(1, N_ITEMS)
        users.append(seq)
    users[0][-1] = N_ITEMS
    data = os.path.join(dirname, "seq.txt")
    with open(data, "w") as f:
        for u, seq in enumerate(users):
            f.write("u%d %s\n" % (u, " ".join(map(str, seq))))
    config = os.path.join(dirname, "seq.yaml")
    with open(config, "w") as f:
        f.write("dataset: {files: [seq.txt], format: userseq, vocab: identity, max_len: %d, "
                "cache: false}\n" % MAX_LEN)
    return config, users


def train_retrieval(config):
    """ameir_arch_preset "sasrec" + ameir_model_create + one epoch of ameir_model_train through
    ctypes (the module itself only loads models); returns the model and its context."""
    lib = ameir.library()
    P = ctypes.c_void_p
    for name, restype, argtypes in (
            ("ameir_arch_preset", ctypes.c_int32, [ctypes.POINTER(P), P, ctypes.c_char_p, ctypes.c_char_p]),
            ("ameir_arch_free", None, [P]),
            ("ameir_model_create", ctypes.c_int32, [ctypes.POINTER(P), P, P, P]),
            ("ameir_model_set_option", ctypes.c_int32, [P, ctypes.c_char_p, ctypes.c_char_p]),
            ("ameir_model_train", ctypes.c_int32, [P, P]),
            ("ameir_model_save", ctypes.c_int32, [P, ctypes.c_char_p])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    ctx, ds, arch, model = P(), P(), P(), P()

    def ok(st, what):
        if st != 0:
            raise ameir.Error(st, "%s: %s" % (what, lib.ameir_context_last_error(ctx).decode()))

    ok(lib.ameir_context_create(ctypes.byref(ctx), b"cpu"), "context")
    try:
        lib.ameir_context_set_int(ctx, b"log_level", ameir.AMEIR_LOG_WARN)
        ok(lib.ameir_dataset_open(ctypes.byref(ds), ctx, config.encode()), "dataset_open")
        ok(lib.ameir_arch_preset(ctypes.byref(arch), ctx, b"sasrec", None), "arch_preset")
        ok(lib.ameir_model_create(ctypes.byref(model), ctx, arch, ds), "model_create")
        ok(lib.ameir_model_set_option(model, b"epochs", b"1"), "set_option")
        ok(lib.ameir_model_train(model, ds), "train")
    except ameir.Error:
        lib.ameir_model_free(model)
        lib.ameir_context_free(ctx)
        raise
    finally:
        lib.ameir_arch_free(arch)
        lib.ameir_dataset_free(ds)
    return model, ctx


def descending(row):
    return all(a >= b for a, b in zip(row, row[1:]))


def check_topk(ctr_model, ctr_config):
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="ameir-topk-") as tmp:
        config, users = write_userseq(tmp)
        handle, ctx = train_retrieval(config)
        model = ameir.Model.adopt(handle, ctx)
        check("trained a sasrec retrieval model on %d users, %d items through ctypes (%.1f s), "
              "%d parameters" % (N_USERS, N_ITEMS, time.time() - t0, model.params), model.params > 0)
        ds = ameir.Dataset(config)
        n_test = ds.rows(ameir.SPLIT_TEST)
        check("Dataset: task retrieval, %d train / %d valid / %d test rows"
              % (ds.rows("train"), ds.rows("valid"), n_test),
              ds.task == ameir.TASK_RETRIEVAL and n_test == N_USERS
              and ds.rows() == sum(len(u) - 1 for u in users))

        k = 10
        items, scores = model.topk(ds, ameir.SPLIT_TEST, 0, n_test, k)
        check("topk(test, 0, %d, k=%d): %d lists of %d items and scores"
              % (n_test, k, len(items), k),
              len(items) == len(scores) == n_test
              and all(len(r) == k for r in items) and all(len(r) == k for r in scores))
        check("items in 1..%d, distinct within a row" % N_ITEMS,
              all(1 <= i <= N_ITEMS for r in items for i in r)
              and all(len(set(r)) == k for r in items))
        check("scores finite and descending in every row",
              all(math.isfinite(x) for r in scores for x in r) and all(descending(r) for r in scores))
        # test row u = user u's last item; its history = every earlier item
        seen = [set(u[:-1]) for u in users]
        check("exclude_seen: no row lists an item of the user's history",
              all(not (set(r) & seen[u]) for u, r in enumerate(items)))
        hits = sum(users[u][-1] in r for u, r in enumerate(items))
        check("test HR@%d %.3f (random: %.3f)" % (k, hits / n_test, k / N_ITEMS), hits > 0)

        # every item: without exclusion a permutation of all items; with it, exactly the unseen
        # ones, then padding (id 0, score -inf)
        rows = 20
        all_items, all_scores = model.topk(ds, "test", 0, rows, N_ITEMS, exclude_seen=False)
        check("topk(k = all %d items, exclude_seen=False): every row a permutation of 1..%d"
              % (N_ITEMS, N_ITEMS),
              all(sorted(r) == list(range(1, N_ITEMS + 1)) for r in all_items)
              and all(descending(r) for r in all_scores))
        check("exclude_seen=False ranks history items too",
              any(set(r[:k]) & seen[u] for u, r in enumerate(all_items)))
        ex_items, ex_scores = model.topk(ds, "test", 0, rows, N_ITEMS, exclude_seen=True)
        good = True
        for u in range(rows):
            unseen = sorted(set(range(1, N_ITEMS + 1)) - seen[u])
            m = len(unseen)
            good &= sorted(ex_items[u][:m]) == unseen and ex_items[u][m:] == [0] * (N_ITEMS - m)
            good &= all(math.isfinite(x) for x in ex_scores[u][:m])
            good &= all(x == -math.inf for x in ex_scores[u][m:]) and descending(ex_scores[u])
            # the same scores as without exclusion, item for item
            full = dict(zip(all_items[u], all_scores[u]))
            good &= all(abs(full[i] - x) <= 1e-5 for i, x in zip(ex_items[u][:m], ex_scores[u][:m]))
        check("exclude_seen=True, k = all items: exactly the unseen items, same scores, then "
              "padding id 0 / -inf", good)

        part, part_scores = model.topk(ds, ameir.SPLIT_TEST, 5, 3, k)
        check("topk(first=5, n=3) equals rows 5..7 of the whole split",
              part == items[5:8]
              and all(abs(a - b) <= 1e-5 for r, q in zip(part_scores, scores[5:8]) for a, b in zip(r, q)))
        v_items, _ = model.topk(ds, ameir.SPLIT_VALID, 0, n_test, k)
        check("valid split: its history (all but the last two items) excluded",
              len(v_items) == n_test
              and all(not (set(r) & set(users[u][:-2])) for u, r in enumerate(v_items)))
        check("topk(n=0) is empty", model.topk(ds, "test", 0, 0, k) == ([], []))

        results = [None] * 4
        def work(i):
            results[i] = model.topk(ds, "test", 50 * i, 50, k)[0]
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("topk from 4 threads at once on one model equals the single call",
              all(r == items[50 * i: 50 * (i + 1)] for i, r in enumerate(results)))

        e = raises(lambda: model.topk(ds, "test", n_test - 1, 2, k), ameir.Error)
        check("rows past the split raise AMEIR_EINVAL: %s" % e,
              e is not None and e.status == -1 and "outside the split" in str(e))
        e = raises(lambda: model.topk(ds, "test", 0, 1, N_ITEMS + 1), ameir.Error)
        check("k above the number of items raises AMEIR_EINVAL: %s" % e,
              e is not None and e.status == -1 and "exceeds" in str(e))
        e = raises(lambda: model.topk(ds, "test", 0, 1, 0), ameir.Error)
        check("k = 0 raises AMEIR_EINVAL: %s" % e, e is not None and e.status == -1)
        check("a bad split name raises ValueError",
              raises(lambda: model.topk(ds, "tests", 0, 1, k), ValueError) is not None)
        check("a non-Dataset raises TypeError",
              raises(lambda: model.topk(config, "test", 0, 1, k), TypeError) is not None)

        e = raises(lambda: ctr_model.topk(ds, "test", 0, 1, k), ameir.Error)
        check("topk on a CTR model raises AMEIR_EUNSUPPORTED with the library's message: %s" % e,
              e is not None and e.status == -8 and e.name == "AMEIR_EUNSUPPORTED"
              and "retrieval" in str(e))
        if os.path.exists(ctr_config):
            with ameir.Dataset(ctr_config) as ctr_ds:
                e = raises(lambda: ctr_model.topk(ctr_ds, "test", 0, 1, k), ameir.Error)
                check("... and on its own CTR dataset (%d test rows): %s"
                      % (ctr_ds.rows("test"), e), e is not None and e.status == -8)

        # the same model through a file: ameir_model_save, then Model.load
        path = os.path.join(tmp, "sasrec.ameir")
        lib = ameir.library()
        st = lib.ameir_model_save(model._handle(), path.encode())
        check("ameir_model_save of the retrieval model", st == 0)
        loaded = ameir.Model.load(path)
        got, got_scores = loaded.topk(ds, "test", 0, n_test, k)
        check("Model.load of the saved model: the same top-k",
              got == items and all(abs(a - b) <= 1e-5 for r, q in zip(got_scores, scores)
                                   for a, b in zip(r, q)))
        loaded.close()

        missing = os.path.join(tmp, "no-such.yaml")
        e = raises(lambda: ameir.Dataset(missing), ameir.Error)
        check("opening a missing dataset config raises AMEIR_EIO naming it: %s" % e,
              e is not None and e.status == -3 and missing in str(e))
        ds.close()
        check("a closed dataset refuses topk",
              raises(lambda: model.topk(ds, "test", 0, 1, k), ValueError) is not None)
        ds.close()  # idempotent
        model.close()
        check("a closed model refuses topk",
              raises(lambda: model.topk(ds, "test", 0, 1, k), ValueError) is not None)
    check("top-k checks took %.1f s" % (time.time() - t0), True)


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path, data_path, ref_path = sys.argv[1:]
    with open(ref_path) as f:
        ref = [float(x) for x in f.read().split()]
    with open(data_path) as f:
        lines = f.read().splitlines()

    check("libameir %s loaded from %s" % (ameir.version(), ameir.library()._name),
          re.fullmatch(r"\d+\.\d+\.\d+", ameir.version()) is not None)
    model = ameir.Model.load(model_path)
    check("Model.load: %d parameters, backend %s" % (model.params, model.backend),
          model.params > 0 and model.backend == "cpu")

    scores = model.predict_file(data_path)
    check("predict_file: %d scores equal `ameir predict`" % len(scores), close_to(scores, ref),
          "%d scores, %d expected" % (len(scores), len(ref)))

    # the rows themselves: with the header line first when the file has one
    header = len(lines) - len(ref)
    check("the data file has %d header line(s)" % header, header in (0, 1))
    rows = lines[:header + 50]
    got = model.predict(rows)
    check("predict(%d rows) equals `ameir predict`" % len(got), close_to(got, ref[:50]))

    results = [None] * 4
    def work(i):
        part = lines[:header] + lines[header + 100 * i: header + 100 * (i + 1)]
        results[i] = model.predict(part)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("predict from 4 threads at once on one model",
          all(r is not None and close_to(r, ref[100 * i: 100 * (i + 1)])
              for i, r in enumerate(results)))

    e = raises(lambda: model.predict(lines[:header] + ["not,a,row"]), ameir.Error)
    check("a malformed row raises ameir.Error AMEIR_EFORMAT with the library's message: %s" % e,
          e is not None and e.status == -4 and e.name == "AMEIR_EFORMAT" and "column" in str(e))
    check_topk(model, os.path.join(os.path.dirname(os.path.abspath(data_path)), "synthetic.yaml"))

    missing = os.path.join(tempfile.gettempdir(), "ameir-no-such-dir", "model.ameir")
    e = raises(lambda: ameir.Model.load(missing), ameir.Error)
    check("loading a missing file raises AMEIR_EIO naming it: %s" % e,
          e is not None and e.status == -3 and missing in str(e))
    with tempfile.NamedTemporaryFile("wb", suffix=".ameir") as f:
        f.write(b"this is not a model file\n" * 4)
        f.flush()
        e = raises(lambda: ameir.Model.load(f.name), ameir.Error)
    check("loading a non-model file raises AMEIR_EFORMAT: %s" % e, e is not None and e.status == -4)
    e = raises(lambda: ameir.Model.load(model_path, backend="tpu"), ameir.Error)
    check("an unknown backend raises AMEIR_EINVAL: %s" % e, e is not None and e.status == -1)

    with model:
        pass
    check("a closed model refuses to predict",
          raises(lambda: model.predict(rows), ValueError) is not None)
    model.close()  # idempotent
    print("python: all checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
