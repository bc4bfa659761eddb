"""ctypes bindings of libpillar (include/pillar.h). Only opaque handles, plain numbers,
strings and data pointers cross the boundary.

The library is looked for, in order: the file named by $PILLAR_LIB; libpillar.so next to
this package (a wheel built after `make` bundles it); the build directory of a source
checkout ($PILLAR_BUILD_DIR, then build/ beside python/); the system's library path
(after `make install`). Symbols the library lacks (e.g. an older build without
training) raise PillarError only when called.
"""
import ctypes
import ctypes.util
import os
import threading

from ._errors import PillarError, raise_for_status

_HERE = os.path.dirname(os.path.abspath(__file__))

c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_size_t = ctypes.c_size_t
c_int64 = ctypes.c_int64
c_uint64 = ctypes.c_uint64
c_float = ctypes.c_float
c_double = ctypes.c_double
P = ctypes.POINTER

# name: (restype, argtypes). Functions returning pillar_status use c_int.
_SIGNATURES = {
    "pillar_version": (c_char_p, []),
    "pillar_last_error": (c_char_p, []),
    "pillar_status_name": (c_char_p, [c_int]),
    "pillar_dtype_name": (c_char_p, [c_int]),
    "pillar_dtype_size": (c_size_t, [c_int]),
    "pillar_cpu_isa": (c_char_p, []),
    # tensors
    "pillar_tensor_create": (c_int, [c_int, c_size_t, P(c_int64), c_void_p, P(c_void_p)]),
    "pillar_tensor_wrap": (c_int, [c_int, c_size_t, P(c_int64), c_void_p, P(c_void_p)]),
    "pillar_tensor_destroy": (None, [c_void_p]),
    "pillar_tensor_dtype": (c_int, [c_void_p]),
    "pillar_tensor_ndim": (c_size_t, [c_void_p]),
    "pillar_tensor_dims": (P(c_int64), [c_void_p]),
    "pillar_tensor_numel": (c_int64, [c_void_p]),
    "pillar_tensor_data": (c_void_p, [c_void_p]),
    "pillar_tensor_load_npy": (c_int, [c_char_p, P(c_void_p)]),
    "pillar_tensor_save_npy": (c_int, [c_void_p, c_char_p]),
    # models
    "pillar_model_load": (c_int, [c_char_p, P(c_void_p)]),
    "pillar_model_load_memory": (c_int, [c_void_p, c_size_t, c_char_p, P(c_void_p)]),
    "pillar_model_destroy": (None, [c_void_p]),
    "pillar_model_input_count": (c_size_t, [c_void_p]),
    "pillar_model_output_count": (c_size_t, [c_void_p]),
    "pillar_model_input": (c_int, [c_void_p, c_size_t, P(c_char_p), P(c_int), P(c_size_t), P(P(c_int64))]),
    "pillar_model_output": (c_int, [c_void_p, c_size_t, P(c_char_p), P(c_int), P(c_size_t), P(P(c_int64))]),
    "pillar_model_input_dim_name": (c_char_p, [c_void_p, c_size_t, c_size_t]),
    "pillar_model_zoo": (c_int, [c_char_p, P(c_int64), c_int64, c_uint64, P(c_void_p)]),
    "pillar_model_save": (c_int, [c_void_p, c_char_p]),
    # options
    "pillar_options_create": (c_int, [P(c_void_p)]),
    "pillar_options_destroy": (None, [c_void_p]),
    "pillar_options_set_threads": (c_int, [c_void_p, c_int]),
    "pillar_options_set_shape": (c_int, [c_void_p, c_char_p, c_size_t, P(c_int64)]),
    "pillar_options_set_dim": (c_int, [c_void_p, c_char_p, c_int64]),
    "pillar_options_set_schedule": (c_int, [c_void_p, c_int]),
    # sessions
    "pillar_session_create": (c_int, [c_void_p, c_void_p, P(c_void_p)]),
    "pillar_session_create_from": (c_int, [P(c_void_p), c_void_p, P(c_void_p)]),
    "pillar_session_destroy": (None, [c_void_p]),
    "pillar_session_schedule": (c_int, [c_void_p]),
    "pillar_session_schedule_report": (c_char_p, [c_void_p]),
    "pillar_session_run": (c_int, [c_void_p, c_size_t, P(c_char_p), P(c_void_p), c_size_t, P(c_char_p),
                                   P(c_void_p)]),
    "pillar_session_input_count": (c_size_t, [c_void_p]),
    "pillar_session_output_count": (c_size_t, [c_void_p]),
    "pillar_session_node_count": (c_size_t, [c_void_p]),
    "pillar_session_node": (c_int, [c_void_p, c_size_t, P(c_char_p), P(c_char_p), P(c_int), P(P(c_int64)),
                                    P(c_int64), P(c_double), P(c_int64)]),
    "pillar_session_arena_bytes": (c_size_t, [c_void_p]),
    "pillar_session_node_kernel": (c_char_p, [c_void_p, c_size_t]),
    "pillar_session_set_profiling": (c_int, [c_void_p, c_int]),
    "pillar_session_node_time": (c_int, [c_void_p, c_size_t, P(c_double), P(c_int64)]),
    "pillar_session_released_bytes": (c_size_t, [c_void_p]),
    # training
    "pillar_train_options_create": (c_int, [P(c_void_p)]),
    "pillar_train_options_destroy": (None, [c_void_p]),
    "pillar_train_options_set_optimizer": (c_int, [c_void_p, c_int, c_float, c_float, c_float]),
    "pillar_train_options_set_batch": (c_int, [c_void_p, c_int64]),
    "pillar_train_options_set_threads": (c_int, [c_void_p, c_int]),
    "pillar_train_options_set_seed": (c_int, [c_void_p, c_uint64]),
    "pillar_train_options_set_precision": (c_int, [c_void_p, c_int]),
    "pillar_train_options_set_loss": (c_int, [c_void_p, c_int, c_char_p]),
    "pillar_train_options_set_prune_block": (c_int, [c_void_p, c_int, c_int]),
    "pillar_trainer_create": (c_int, [c_void_p, c_void_p, P(c_void_p)]),
    "pillar_trainer_destroy": (None, [c_void_p]),
    "pillar_trainer_step": (c_int, [c_void_p, c_void_p, c_void_p, P(c_float), P(c_int64)]),
    "pillar_trainer_evaluate": (c_int, [c_void_p, c_void_p, c_void_p, P(c_float), P(c_int64)]),
    "pillar_trainer_set_lr": (c_int, [c_void_p, c_float]),
    "pillar_trainer_prune": (c_int, [c_void_p, c_float]),
    "pillar_trainer_sparsity": (c_double, [c_void_p]),
    "pillar_trainer_save": (c_int, [c_void_p, c_char_p]),
    "pillar_trainer_checkpoint": (c_int, [c_void_p, c_char_p]),
    "pillar_trainer_restore": (c_int, [c_void_p, c_char_p]),
}


def _candidates():
    env = os.environ.get("PILLAR_LIB")
    if env:
        yield env
        return
    for name in ("libpillar.so", "libpillar.so.0"):
        yield os.path.join(_HERE, name)
    build = os.environ.get("PILLAR_BUILD_DIR")
    if build:
        yield os.path.join(build, "libpillar.so")
    yield os.path.join(_HERE, "..", "..", "build", "libpillar.so")
    found = ctypes.util.find_library("pillar")
    if found:
        yield found
    yield "libpillar.so.0"


class _Missing:
    """Stands for a symbol the loaded library does not have."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def __call__(self, *args):
        raise PillarError("%s has no %s (an older or partial build of libpillar?)" % (self.path, self.name))


class Lib:
    def __init__(self):
        self._lock = threading.Lock()
        self._dll = None
        self.path = None

    def _load(self):
        tried = []
        for path in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append(path)
                continue
            try:
                dll = ctypes.CDLL(path)
            except OSError as e:
                tried.append("%s (%s)" % (path, e))
                continue
            self.path = getattr(dll, "_name", path)
            for name, (restype, argtypes) in _SIGNATURES.items():
                try:
                    f = getattr(dll, name)
                except AttributeError:
                    setattr(self, name, _Missing(name, self.path))
                    continue
                f.restype = restype
                f.argtypes = argtypes
                setattr(self, name, f)
            self._dll = dll
            return
        raise PillarError("libpillar.so not found; build it (make) and set PILLAR_LIB=/path/to/libpillar.so. "
                          "Tried: " + "; ".join(tried))

    def __getattr__(self, name):
        # Only reached for names not set yet: load on first use.
        if name.startswith("pillar_"):
            with self._lock:
                if self._dll is None:
                    self._load()
            return object.__getattribute__(self, name)
        raise AttributeError(name)

    def has(self, name):
        return not isinstance(getattr(self, name), _Missing)

    def check(self, status):
        """Raises the PillarError subclass for a failed status, with pillar's message."""
        if status != 0:
            msg = self.pillar_last_error()
            raise_for_status(status, msg.decode("utf-8", "replace") if msg else "")


lib = Lib()
