"""Checks examples/python/ameir.py against an installed libameir (tests/install/run.sh runs it
with Debian's /usr/bin/python3).

    python3 test_ameir.py MODEL DATA_FILE REFERENCE_SCORES

MODEL is a CTR model file, DATA_FILE a data file in its training format, REFERENCE_SCORES the
output of `ameir predict MODEL DATA_FILE` (one probability a line). Prints one line per check;
exits 1 at the first failure.
"""

import os
import re
import sys
import tempfile
import threading

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
    e = raises(lambda: model.topk(rows, 10), NotImplementedError)
    if e is not None:
        check("topk raises NotImplementedError: %s" % e, "ameir_model_topk" in str(e))
    else:
        check("topk answers", True)

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
