"""libameir from Python, through ctypes: no compiled extension, only the installed library.

    import ameir
    with ameir.Model.load("out/model.ameir") as model:
        scores = model.predict_file("rows.csv")          # one probability per row of the file
        scores = model.predict([header, row1, row2])     # rows as lines of the training format

    # a retrieval model (e.g. `ameir train beauty.yaml --model sasrec --out out/beauty`): the k
    # best items for rows (user histories) of a split of the dataset it was trained on
    with ameir.Model.load("out/beauty/model.ameir") as model, ameir.Dataset("beauty.yaml") as ds:
        items, scores = model.topk(ds, ameir.SPLIT_TEST, 0, 100, 10)   # 100 lists of 10, best first

Every failing call raises ameir.Error, whose message is the library's own (status text and the
context's last-error message) and whose .status is the AMEIR_E* code.

The library is found through, in order: $AMEIR_LIBRARY (a path to libameir.so.0), the libdir
of `pkg-config ameir`, then the dynamic loader's own search (LD_LIBRARY_PATH, ldconfig).
"""

import ctypes
import os
import shutil
import subprocess
import tempfile

__all__ = ["Error", "Model", "Dataset", "library", "version", "status_name",
           "SPLIT_TRAIN", "SPLIT_VALID", "SPLIT_TEST", "TASK_CTR", "TASK_RETRIEVAL"]

# Pinned status codes of include/ameir/common.h (tests/unit/enums.c checks their values).
STATUS_NAMES = {
    0: "AMEIR_OK",
    -1: "AMEIR_EINVAL",
    -2: "AMEIR_ENOMEM",
    -3: "AMEIR_EIO",
    -4: "AMEIR_EFORMAT",
    -5: "AMEIR_ECONFIG",
    -6: "AMEIR_EVERSION",
    -7: "AMEIR_EBACKEND",
    -8: "AMEIR_EUNSUPPORTED",
    -9: "AMEIR_ECANCELLED",
    -10: "AMEIR_ESTATE",
    -11: "AMEIR_ENOTFOUND",
    -12: "AMEIR_ENUMERIC",
}
AMEIR_LOG_WARN = 1
SONAME = "libameir.so.0"
# Pinned split and task identifiers of include/ameir/dataset.h.
SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST = 0, 1, 2
SPLITS = {"train": SPLIT_TRAIN, "valid": SPLIT_VALID, "test": SPLIT_TEST}
TASK_CTR, TASK_RETRIEVAL = 0, 1


def status_name(status):
    """The AMEIR_E* name of a status code ("AMEIR_E?" for one this module does not know)."""
    return STATUS_NAMES.get(status, "AMEIR_E%d" % status)


class Error(Exception):
    """A libameir call failed. str(e) is the library's message; e.status is the AMEIR_E* code."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.name = status_name(status)


def _find_library():
    path = os.environ.get("AMEIR_LIBRARY")
    if path:
        return path
    pkg_config = shutil.which(os.environ.get("PKG_CONFIG", "pkg-config"))
    if pkg_config:
        try:
            libdir = subprocess.run([pkg_config, "--variable=libdir", "ameir"], check=True,
                                    capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            libdir = ""
        if libdir and os.path.exists(os.path.join(libdir, SONAME)):
            return os.path.join(libdir, SONAME)
    return SONAME


_lib = None

_c_status = ctypes.c_int32
_p_void = ctypes.c_void_p


def library():
    """The loaded libameir (a ctypes.CDLL), loaded and declared on first use."""
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(_find_library())
    sigs = {
        "ameir_status_str": (ctypes.c_char_p, [_c_status]),
        "ameir_version_string": (ctypes.c_char_p, []),
        "ameir_last_error": (ctypes.c_char_p, []),
        "ameir_free": (None, [_p_void]),
        "ameir_context_create": (_c_status, [ctypes.POINTER(_p_void), ctypes.c_char_p]),
        "ameir_context_free": (None, [_p_void]),
        "ameir_context_last_error": (ctypes.c_char_p, [_p_void]),
        "ameir_context_backend": (ctypes.c_char_p, [_p_void]),
        "ameir_context_set_int": (_c_status, [_p_void, ctypes.c_char_p, ctypes.c_int64]),
        "ameir_model_load": (_c_status, [ctypes.POINTER(_p_void), _p_void, ctypes.c_char_p]),
        "ameir_model_free": (None, [_p_void]),
        "ameir_model_params": (ctypes.c_int64, [_p_void, ctypes.POINTER(ctypes.c_int64)]),
        "ameir_model_predict_file": (_c_status, [_p_void, ctypes.c_char_p,
                                                 ctypes.POINTER(ctypes.POINTER(ctypes.c_float)),
                                                 ctypes.POINTER(ctypes.c_int64)]),
        "ameir_model_topk": (_c_status, [_p_void, _p_void, ctypes.c_int32, ctypes.c_int64,
                                         ctypes.c_int64, ctypes.c_int32, ctypes.c_int32,
                                         ctypes.POINTER(ctypes.c_int32),
                                         ctypes.POINTER(ctypes.c_float)]),
        "ameir_dataset_open": (_c_status, [ctypes.POINTER(_p_void), _p_void, ctypes.c_char_p]),
        "ameir_dataset_free": (None, [_p_void]),
        "ameir_dataset_rows": (ctypes.c_int64, [_p_void, ctypes.c_int32]),
        "ameir_dataset_task": (ctypes.c_int32, [_p_void]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    _lib = lib
    return lib


def version():
    """Version of the loaded library, "MAJOR.MINOR.PATCH"."""
    return library().ameir_version_string().decode()


def _text(value):
    return value.decode("utf-8", "replace") if value else ""


def _path(value):
    return os.fsencode(value)


def _new_context(backend, threads):
    """A context with the log level at WARN (and `threads` when given); raises Error."""
    lib = library()
    ctx = _p_void()
    st = lib.ameir_context_create(ctypes.byref(ctx), backend.encode() if backend else None)
    if st != 0:
        raise Error(st, "context: %s: %s" % (_text(lib.ameir_status_str(st)),
                                             _text(lib.ameir_last_error())))
    try:
        _check(ctx, lib.ameir_context_set_int(ctx, b"log_level", AMEIR_LOG_WARN), "log_level")
        if threads is not None:
            _check(ctx, lib.ameir_context_set_int(ctx, b"threads", int(threads)), "threads")
    except Error:
        lib.ameir_context_free(ctx)
        raise
    return ctx


def _check(ctx, st, what):
    """Raises Error for a failed call: "what: status text: the context's last error"."""
    if st != 0:
        lib = library()
        raise Error(st, "%s: %s: %s" % (what, _text(lib.ameir_status_str(st)),
                                        _text(lib.ameir_context_last_error(ctx))))


def _split_id(split):
    if isinstance(split, str):
        if split not in SPLITS:
            raise ValueError("split: one of %s, not %r" % (", ".join(SPLITS), split))
        return SPLITS[split]
    return int(split)


class _Owned:
    """A library object with the context it was made in: both freed by close() (idempotent;
    later calls raise ValueError), on leaving a `with` block, or when garbage-collected."""

    _free = None    # name of the library's free function of the object
    _what = "object"
    _obj = None
    _ctx = None

    def _handle(self):
        if self._obj is None:
            raise ValueError("the %s is closed" % self._what)
        return self._obj

    def close(self):
        lib = _lib
        if lib is not None:
            if self._obj is not None:
                getattr(lib, self._free)(self._obj)
            if self._ctx is not None:
                lib.ameir_context_free(self._ctx)
        self._obj = None
        self._ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


class Dataset(_Owned):
    """A dataset opened from its YAML config (ameir_dataset_open: the `dataset:` section, data
    paths relative to the YAML's directory or its data_dir), e.g. the rows whose top-k items
    Model.topk ranks. Read-only once open: several models and threads may use it at once."""

    _free = "ameir_dataset_free"
    _what = "dataset"

    def __init__(self, path, threads=None):
        lib = library()
        self._ctx = _new_context("cpu", threads)
        ds = _p_void()
        _check(self._ctx, lib.ameir_dataset_open(ctypes.byref(ds), self._ctx, _path(path)),
               os.fspath(path))
        self._obj = ds
        self.path = os.fspath(path)

    @classmethod
    def open(cls, path, threads=None):
        """Opens a dataset. Raises Error (AMEIR_EIO: unreadable; AMEIR_ECONFIG: bad schema, with
        file, line and key; AMEIR_EFORMAT: a bad data row, with file, line and column)."""
        return cls(path, threads=threads)


    def rows(self, split=None):
        """Number of rows of a split (SPLIT_* or "train"/"valid"/"test"), of all rows with None."""
        n = library().ameir_dataset_rows(self._handle(), -1 if split is None else _split_id(split))
        if n < 0:
            raise ValueError("split: %r is not a split" % (split,))
        return int(n)

    @property
    def task(self):
        """TASK_CTR or TASK_RETRIEVAL."""
        return int(library().ameir_dataset_task(self._handle()))


class Model(_Owned):
    """A trained model loaded from a file written by `ameir train --out DIR` (DIR/model.ameir)
    or ameir_model_save (or one made through the C API, see adopt). Prediction and top-k calls
    may come from several threads at once."""

    _free = "ameir_model_free"
    _what = "model"

    def __init__(self, path, backend="cpu", threads=None):
        lib = library()
        self._ctx = ctx = _new_context(backend, threads)
        model = _p_void()
        self._check(lib.ameir_model_load(ctypes.byref(model), ctx, _path(path)), os.fspath(path))
        self._obj = model

    @classmethod
    def load(cls, path, backend="cpu", threads=None):
        """Loads a model file. Raises Error (AMEIR_EIO: unreadable; AMEIR_EFORMAT: not a model
        file or damaged; AMEIR_EVERSION: written by a newer libameir)."""
        return cls(path, backend=backend, threads=threads)

    @classmethod
    def adopt(cls, model, context):
        """Wraps a model made through the C API by ctypes calls of one's own (e.g.
        ameir_model_create + ameir_model_train on library()): `model` and `context` are the
        ameir_model* and the ameir_context* it was created with (c_void_p or int). The Model
        owns both from then on: close() frees the model, then the context."""
        if not model or not context:
            raise ValueError("adopt: NULL model or context")
        self = cls.__new__(cls)
        self._obj = ctypes.c_void_p(getattr(model, "value", model))
        self._ctx = ctypes.c_void_p(getattr(context, "value", context))
        return self

    def _check(self, st, what):
        _check(self._ctx, st, what)


    @property
    def backend(self):
        """Name of the compute backend in use ("cpu" or "cuda")."""
        return _text(library().ameir_context_backend(self._ctx))

    @property
    def params(self):
        """Number of trainable parameters, embeddings included."""
        return int(library().ameir_model_params(self._handle(), None))

    def predict_file(self, path):
        """Click probabilities (a list of floats, file order) for every row of a data file in
        the format of the data the model was trained on."""
        lib = library()
        out = ctypes.POINTER(ctypes.c_float)()
        n = ctypes.c_int64(0)
        self._check(lib.ameir_model_predict_file(self._handle(), _path(path), ctypes.byref(out),
                                                 ctypes.byref(n)), "predict")
        try:
            return [float(out[i]) for i in range(n.value)]
        finally:
            lib.ameir_free(out)

    def predict(self, rows):
        """Click probabilities for rows given as text lines in the training data's format (the
        header line first when that format has one, as in the file itself). Returns a list of
        floats, one per data row."""
        if isinstance(rows, (str, bytes)):
            raise TypeError("rows: a list of lines, not one string")
        lines = [r.decode() if isinstance(r, bytes) else str(r) for r in rows]
        if not lines:
            return []
        with tempfile.NamedTemporaryFile("w", prefix="ameir-", suffix=".txt",
                                         encoding="utf-8") as f:
            for line in lines:
                f.write(line.rstrip("\r\n"))
                f.write("\n")
            f.flush()
            return self.predict_file(f.name)

    def topk(self, dataset, split, first, n, k, exclude_seen=True):
        """Top-k retrieval (ameir_model_topk): for rows first..first+n-1 of a split (SPLIT_* or
        "train"/"valid"/"test") of `dataset` (a Dataset with the schema the model was trained
        on; each row a user's history), the k best items over all items, best first. With
        exclude_seen the items of the user's history before the row's target are left out.
        Returns (items, scores): two lists of n lists of k, item ids of the target field's
        vocabulary (the file's ids with `vocab: identity`) and their scores e_i^T u; fewer than
        k candidates pad with id 0 and score -inf. Raises Error: AMEIR_EUNSUPPORTED for a CTR
        model, AMEIR_EINVAL for rows outside the split or k above the number of items,
        AMEIR_ECONFIG for a dataset of another schema. Thread safe like predict."""
        if not isinstance(dataset, Dataset):
            raise TypeError("dataset: an ameir.Dataset, not %s" % type(dataset).__name__)
        lib = library()
        model, ds = self._handle(), dataset._handle()
        split, first, n, k = _split_id(split), int(first), int(n), int(k)
        flag = 1 if exclude_seen else 0
        if n <= 0 or k <= 0 or n * k > (1 << 24):
            # nothing to rank, a bad argument, or large output buffers: let the library check the
            # arguments (k against the number of items too) before anything is allocated
            self._check(lib.ameir_model_topk(model, ds, split, first, min(n, 0), k, flag, None,
                                             None), "topk")
            if n == 0:
                return [], []
        items = (ctypes.c_int32 * (n * k))()
        scores = (ctypes.c_float * (n * k))()
        self._check(lib.ameir_model_topk(model, ds, split, first, n, k, flag, items, scores),
                    "topk")
        flat_items, flat_scores = list(items), list(scores)
        return ([flat_items[i:i + k] for i in range(0, n * k, k)],
                [flat_scores[i:i + k] for i in range(0, n * k, k)])
