"""Models and sessions: pillar.Model, pillar.Session (the shape of ONNX Runtime's
InferenceSession), tensor conversion to and from numpy."""
import ctypes
import os
import threading
import weakref

import numpy as np

from ._errors import ArgumentError, InputError, PillarError, UnsupportedError
from ._lib import lib

# pillar_dtype (ONNX TensorProto numbers) <-> numpy
_NP_OF = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
    9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64,
}
BFLOAT16 = 16
STRING = 8
# ONNX Runtime's type strings, for NodeArg.type
_ORT_TYPE = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string",
    9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64", 16: "bfloat16",
}


def _dtype_code(np_dtype):
    np_dtype = np.dtype(np_dtype)
    for code, t in _NP_OF.items():
        if np.dtype(t) == np_dtype:
            return code
    raise UnsupportedError("numpy dtype %s has no pillar equivalent" % np_dtype)


def _path_bytes(path):
    return os.fsencode(os.fspath(path))


class NodeArg:
    """A model input or output: name, shape (ints; a dynamic dimension is its symbol as
    a str, or None), type ("tensor(float)" as in ONNX Runtime) and numpy dtype (None for
    strings; bfloat16 is shown as float32, the type pillar.Session converts it to)."""

    def __init__(self, name, code, shape):
        self.name = name
        self.shape = shape
        self.type = "tensor(%s)" % _ORT_TYPE.get(code, "undefined")
        self.dtype = np.dtype(np.float32) if code == BFLOAT16 else (
            np.dtype(_NP_OF[code]) if code in _NP_OF else None)
        self.elem_type = code

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)


def _node_args(handle, count_fn, get_fn, dim_name_fn=None):
    out = []
    for i in range(count_fn(handle)):
        name = ctypes.c_char_p()
        dtype = ctypes.c_int()
        ndim = ctypes.c_size_t()
        dims = ctypes.POINTER(ctypes.c_int64)()
        lib.check(get_fn(handle, i, ctypes.byref(name), ctypes.byref(dtype), ctypes.byref(ndim), ctypes.byref(dims)))
        shape = []
        for d in range(ndim.value):
            v = dims[d]
            if v < 0:
                sym = dim_name_fn(handle, i, d) if dim_name_fn else None
                shape.append(sym.decode() if sym else None)
            else:
                shape.append(int(v))
        out.append(NodeArg(name.value.decode("utf-8", "replace"), dtype.value, shape))
    return out


class Model:
    """An ONNX model loaded into pillar: Model(path) or Model(bytes) (model bytes in
    memory; external data is then looked up from the current directory)."""

    def __init__(self, source, name=None):
        h = ctypes.c_void_p()
        if isinstance(source, (bytes, bytearray, memoryview)):
            buf = bytes(source)
            lib.check(lib.pillar_model_load_memory(buf, len(buf), (name or "<memory>").encode(), ctypes.byref(h)))
            self.path = None
        else:
            lib.check(lib.pillar_model_load(_path_bytes(source), ctypes.byref(h)))
            self.path = os.fspath(source)
        self._h = h.value
        self._finalizer = weakref.finalize(self, lib.pillar_model_destroy, self._h)

    @classmethod
    def _adopt(cls, handle, path=None):
        self = cls.__new__(cls)
        self._h = handle
        self.path = path
        self._finalizer = weakref.finalize(self, lib.pillar_model_destroy, handle)
        return self

    @property
    def inputs(self):
        return _node_args(self._h, lib.pillar_model_input_count, lib.pillar_model_input, lib.pillar_model_input_dim_name)

    @property
    def outputs(self):
        return _node_args(self._h, lib.pillar_model_output_count, lib.pillar_model_output)

    def save(self, path):
        """Writes the model as an ONNX file."""
        lib.check(lib.pillar_model_save(self._h, _path_bytes(path)))

    def close(self):
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def zoo(name, chw=None, classes=0, seed=0):
    """A ready-made architecture with seeded random weights ("resnet50", "mobilenet_v2",
    "mlp", "lenet", "resnet8"), as a pillar.Model. `chw`: input (C, H, W); `classes`:
    outputs (0 = the architecture's default)."""
    h = ctypes.c_void_p()
    arr = None
    if chw is not None:
        if len(chw) != 3:
            raise ArgumentError("chw must be (C, H, W)")
        arr = (ctypes.c_int64 * 3)(*[int(v) for v in chw])
    lib.check(lib.pillar_model_zoo(name.encode(), arr, int(classes), int(seed), ctypes.byref(h)))
    return Model._adopt(h.value)


# ---------------------------------------------------------------- tensors

def _bf16_from_f32(a):
    """float32 -> bfloat16 bits, rounding to nearest even (NaN stays NaN)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def _wrap(array, code, keep):
    """A borrowed pillar tensor over `array` (C-contiguous, of the pillar type `code`).
    `keep` collects objects that must live until the run returns."""
    dims = (ctypes.c_int64 * max(array.ndim, 1))(*array.shape)
    h = ctypes.c_void_p()
    data = array.ctypes.data if array.size else None
    lib.check(lib.pillar_tensor_wrap(code, array.ndim, dims, data, ctypes.byref(h)))
    keep.append(array)
    return h.value


def _to_numpy(handle):
    """Takes ownership of a pillar tensor and returns it as a numpy array that shares its
    memory (the tensor is destroyed when the array is garbage collected)."""
    code = lib.pillar_tensor_dtype(handle)
    ndim = lib.pillar_tensor_ndim(handle)
    dims_p = lib.pillar_tensor_dims(handle)
    shape = tuple(int(dims_p[i]) for i in range(ndim))
    if code == BFLOAT16:
        n = lib.pillar_tensor_numel(handle)
        bits = np.ctypeslib.as_array(ctypes.cast(lib.pillar_tensor_data(handle), ctypes.POINTER(ctypes.c_uint16)),
                                     shape=(n,)) if n else np.empty(0, np.uint16)
        out = (bits.astype(np.uint32) << 16).view(np.float32).reshape(shape)
        lib.pillar_tensor_destroy(handle)
        return out
    if code not in _NP_OF:
        lib.pillar_tensor_destroy(handle)
        raise UnsupportedError("output of type %s cannot be returned to Python" %
                               lib.pillar_dtype_name(code).decode())
    dt = np.dtype(_NP_OF[code])
    n = lib.pillar_tensor_numel(handle)
    ptr = lib.pillar_tensor_data(handle)
    if n == 0 or not ptr:
        lib.pillar_tensor_destroy(handle)
        return np.empty(shape, dtype=dt)
    buf = (ctypes.c_char * (n * dt.itemsize)).from_address(ptr)
    weakref.finalize(buf, lib.pillar_tensor_destroy, handle)
    return np.frombuffer(buf, dtype=dt).reshape(shape)


# ---------------------------------------------------------------- sessions

class Session:
    """Runs an ONNX model: Session(path_or_model, threads=None, shapes=None, dims=None,
    schedule=None).

    threads: worker threads (None or 0: one per physical core).
    shapes:  {input name: shape} fixing inputs with symbolic dimensions.
    dims:    {symbol: value} fixing a named symbolic dimension everywhere ("batch": 8).
    schedule: "layers", "columns" or "auto": how the layers run (tensor columns: chains
             of layers tile by tile in cache); None: $PILLAR_SCHEDULE if set, else auto.
             The session's .schedule says what it used, .schedule_report why.

    run(output_names, {input name: ndarray}) returns a list of numpy arrays, like ONNX
    Runtime's InferenceSession.run. C-contiguous inputs of the model's dtype are passed
    without a copy; other layouts are copied, other dtypes are an InputError (as in ONNX
    Runtime; bfloat16 inputs take float32 arrays). The GIL is released while pillar
    runs. A session runs one call at a time: calls from several threads on the same
    session wait for each other (use one session per thread to run in parallel).
    """

    _SCHEDULES = {"auto": 0, "layers": 1, "columns": 2}

    def __init__(self, model, threads=None, shapes=None, dims=None, schedule=None):
        self._lock = threading.Lock()
        if schedule is not None and schedule not in self._SCHEDULES:
            raise ArgumentError("schedule %r is not 'layers', 'columns' or 'auto'" % (schedule,))
        # A model built here from a path or bytes is handed over to the session
        # (pillar_session_create_from): its raw weights are freed as they are packed.
        owned = not isinstance(model, Model)
        self._source = None if isinstance(model, Model) or isinstance(model, (bytes, bytearray, memoryview)) else model
        self._model = model if isinstance(model, Model) else Model(model)
        self._inputs = self._model.inputs
        self._outputs = self._model.outputs
        opts = ctypes.c_void_p()
        lib.check(lib.pillar_options_create(ctypes.byref(opts)))
        try:
            if threads is not None:
                lib.check(lib.pillar_options_set_threads(opts, int(threads)))
            for name, shape in (shapes or {}).items():
                arr = (ctypes.c_int64 * max(len(shape), 1))(*[int(v) for v in shape])
                lib.check(lib.pillar_options_set_shape(opts, name.encode(), len(shape), arr))
            for sym, value in (dims or {}).items():
                lib.check(lib.pillar_options_set_dim(opts, sym.encode(), int(value)))
            if schedule is not None:
                lib.check(lib.pillar_options_set_schedule(opts, self._SCHEDULES[schedule]))
            h = ctypes.c_void_p()
            if owned:
                mh = ctypes.c_void_p(self._model._h)
                self._model._finalizer.detach()  # create_from destroys it, even on failure
                self._model = None
                lib.check(lib.pillar_session_create_from(ctypes.byref(mh), opts, ctypes.byref(h)))
            else:
                lib.check(lib.pillar_session_create(self._model._h, opts, ctypes.byref(h)))
        finally:
            lib.pillar_options_destroy(opts)
        self._h = h.value
        self._finalizer = weakref.finalize(self, lib.pillar_session_destroy, self._h)
        self._in_by_name = {a.name: a for a in self._inputs}

    # --- metadata (also under ONNX Runtime's method names)
    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def schedule(self):
        """The schedule the session runs: "layers" or "columns" (columns when at least one
        chain of layers runs as tensor columns)."""
        return "columns" if lib.pillar_session_schedule(self._h) == 2 else "layers"

    @property
    def schedule_report(self):
        """The planner's explanation: the chains, their tiles and the estimated bytes
        moved per inference under both schedules (`pillar inspect --schedule`)."""
        r = lib.pillar_session_schedule_report(self._h)
        return r.decode("utf-8", "replace") if r else ""

    def get_inputs(self):
        return self.inputs

    def get_outputs(self):
        return self.outputs

    @property
    def model(self):
        """The pillar.Model the session was made from (loaded again from the path when
        the session was made from a path; None when it was made from bytes)."""
        if self._model is None and self._source is not None:
            self._model = Model(self._source)
        return self._model

    def layers(self):
        """The planned nodes after constant folding: a list of dicts with name, op, shape
        (None if only known at run time), params, sparsity, macs and kernel (the kernel
        the session chose: "winograd", "sparse 90%", "int8 vnni", ...; "" if the op does
        not say)."""
        out = []
        with self._lock:
            for i in range(lib.pillar_session_node_count(self._h)):
                name, op = ctypes.c_char_p(), ctypes.c_char_p()
                nd = ctypes.c_int()
                dims = ctypes.POINTER(ctypes.c_int64)()
                params, macs = ctypes.c_int64(), ctypes.c_int64()
                sp = ctypes.c_double()
                lib.check(lib.pillar_session_node(self._h, i, ctypes.byref(name), ctypes.byref(op), ctypes.byref(nd),
                                                  ctypes.byref(dims), ctypes.byref(params), ctypes.byref(sp),
                                                  ctypes.byref(macs)))
                shape = [int(dims[d]) for d in range(nd.value)] if nd.value >= 0 and dims else None
                kernel = lib.pillar_session_node_kernel(self._h, i) or b""
                out.append({"name": (name.value or b"").decode(), "op": (op.value or b"").decode(), "shape": shape,
                            "params": params.value, "sparsity": sp.value, "macs": macs.value,
                            "kernel": kernel.decode()})
        return out

    def profile(self, on=True):
        """Starts (clearing earlier counts) or stops per-layer timing of the runs."""
        with self._lock:
            lib.check(lib.pillar_session_set_profiling(self._h, 1 if on else 0))

    def layer_times(self):
        """Per layer (as layers()), the mean wall time in ms of the runs profiled since
        profile() was called: a list of dicts with name, op, kernel, ms and calls."""
        out = []
        for i, layer in enumerate(self.layers()):
            ms, calls = ctypes.c_double(), ctypes.c_int64()
            with self._lock:
                lib.check(lib.pillar_session_node_time(self._h, i, ctypes.byref(ms), ctypes.byref(calls)))
            out.append({"name": layer["name"], "op": layer["op"], "kernel": layer["kernel"],
                        "ms": ms.value / calls.value if calls.value else 0.0, "calls": calls.value})
        return out

    @property
    def released_bytes(self):
        """Bytes of raw weights the session let go of once its kernels had packed them."""
        return lib.pillar_session_released_bytes(self._h)

    def _input_tensor(self, name, value, keep):
        arg = self._in_by_name.get(name)
        if arg is None:
            raise InputError("'%s' is not an input of the model (inputs: %s)" %
                             (name, ", ".join(a.name for a in self._inputs)))
        code = arg.elem_type
        if code == STRING:
            raise UnsupportedError("input '%s': string tensors are not supported from Python" % name)
        if code == BFLOAT16:
            a = np.asarray(value)
            if a.dtype != np.float32:
                raise InputError("input '%s' is bfloat16: pass float32 values, got %s" % (name, a.dtype))
            return _wrap(_bf16_from_f32(a).reshape(a.shape), code, keep)
        want = np.dtype(_NP_OF[code])
        if isinstance(value, np.ndarray):
            a = value
        elif np.isscalar(value) or isinstance(value, (list, tuple)):
            a = np.asarray(value, dtype=want)  # plain Python values take the model's type
        else:
            a = np.asarray(value)
        if a.dtype != want:
            raise InputError("input '%s' must be %s (%s), got %s" % (name, want, arg.type, a.dtype))
        if not a.flags.c_contiguous or not a.flags.aligned:
            a = np.ascontiguousarray(a)
        return _wrap(a, code, keep)

    def run(self, output_names, input_feed, run_options=None):
        """Runs the model. output_names: a list of output names, or None for all outputs.
        input_feed: {input name: array}. Returns a list of numpy arrays."""
        if not isinstance(input_feed, dict):
            raise ArgumentError("input_feed must be a dict {input name: array}")
        keep = []
        handles = []
        try:
            for name, value in input_feed.items():
                handles.append(self._input_tensor(name, value, keep))
            n_in = len(handles)
            names = (ctypes.c_char_p * max(n_in, 1))(*[k.encode() for k in input_feed])
            tensors = (ctypes.c_void_p * max(n_in, 1))(*handles)
            if output_names is None:
                n_out = len(self._outputs)
                out_names = None
            else:
                output_names = list(output_names)
                n_out = len(output_names)
                out_names = (ctypes.c_char_p * max(n_out, 1))(*[o.encode() for o in output_names])
            outs = (ctypes.c_void_p * max(n_out, 1))()
            with self._lock:
                if self._h is None:
                    raise PillarError("the session is closed")
                st = lib.pillar_session_run(self._h, n_in, names, tensors, n_out, out_names, outs)
                lib.check(st)
            results = []
            try:
                for i in range(n_out):
                    h, outs[i] = outs[i], None
                    results.append(_to_numpy(h))  # owns h, even when it raises
            finally:
                for i in range(n_out):
                    if outs[i]:
                        lib.pillar_tensor_destroy(outs[i])
            return results
        finally:
            for h in handles:
                lib.pillar_tensor_destroy(h)

    def close(self):
        """Frees the session now (also done when it is garbage collected)."""
        with self._lock:
            self._finalizer()
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- .npy through pillar

def load_npy(path):
    """Reads a .npy file with pillar's reader (as the CLI does)."""
    h = ctypes.c_void_p()
    lib.check(lib.pillar_tensor_load_npy(_path_bytes(path), ctypes.byref(h)))
    return _to_numpy(h.value)
