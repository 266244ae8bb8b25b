"""libameir from Python, through ctypes: no compiled extension, only the installed library.

    import ameir
    with ameir.Model.load("out/model.ameir") as model:
        scores = model.predict_file("rows.csv")          # one probability per row of the file
        scores = model.predict([header, row1, row2])     # rows as lines of the training format

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

__all__ = ["Error", "Model", "library", "version", "status_name"]

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


class Model:
    """A trained model loaded from a file written by `ameir train --out DIR` (DIR/model.ameir)
    or ameir_model_save. Prediction calls may come from several threads at once."""

    def __init__(self, path, backend="cpu", threads=None):
        lib = library()
        self._ctx = None
        self._model = None
        ctx = _p_void()
        st = lib.ameir_context_create(ctypes.byref(ctx), backend.encode() if backend else None)
        if st != 0:
            raise Error(st, "context: %s: %s" % (_text(lib.ameir_status_str(st)),
                                                 _text(lib.ameir_last_error())))
        self._ctx = ctx
        self._check(lib.ameir_context_set_int(ctx, b"log_level", AMEIR_LOG_WARN), "log_level")
        if threads is not None:
            self._check(lib.ameir_context_set_int(ctx, b"threads", int(threads)), "threads")
        model = _p_void()
        self._check(lib.ameir_model_load(ctypes.byref(model), ctx, _path(path)), os.fspath(path))
        self._model = model

    @classmethod
    def load(cls, path, backend="cpu", threads=None):
        """Loads a model file. Raises Error (AMEIR_EIO: unreadable; AMEIR_EFORMAT: not a model
        file or damaged; AMEIR_EVERSION: written by a newer libameir)."""
        return cls(path, backend=backend, threads=threads)

    def _check(self, st, what):
        if st != 0:
            lib = library()
            raise Error(st, "%s: %s: %s" % (what, _text(lib.ameir_status_str(st)),
                                            _text(lib.ameir_context_last_error(self._ctx))))

    def _handle(self):
        if self._model is None:
            raise ValueError("the model is closed")
        return self._model

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

    def topk(self, rows, k):
        """The k best candidates for each row (retrieval models)."""
        raise NotImplementedError(
            "Model.topk: libameir %s ranks items with ameir_model_topk over the rows of an opened "
            "dataset; scoring raw text rows for top-k needs a row-encoding call the C API does not "
            "have yet" % version())

    def close(self):
        """Frees the model and its context; later calls raise ValueError. Idempotent."""
        lib = _lib
        if lib is not None:
            if self._model is not None:
                lib.ameir_model_free(self._model)
            if self._ctx is not None:
                lib.ameir_context_free(self._ctx)
        self._model = None
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
