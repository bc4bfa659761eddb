"""pillar: fast deep-learning inference (and training) on CPUs, from Python.

    import numpy as np, pillar
    sess = pillar.Session("resnet50.onnx", threads=2)
    (logits,) = sess.run(None, {"input": np.zeros((1, 3, 224, 224), np.float32)})

Session follows ONNX Runtime's InferenceSession (run, get_inputs, get_outputs), so code
moves over with few changes. Errors raise pillar.PillarError subclasses carrying
pillar's message. The package is ctypes over libpillar.so (see pillar._lib for where it
is looked for; PILLAR_LIB=/path/to/libpillar.so overrides).
"""
from ._errors import (ArgumentError, InputError, InternalError, ModelError, OutOfMemoryError, PillarError,
                      PillarIOError, UnsupportedError)
from ._lib import lib as _lib
from .bench import benchmark
from .session import Model, NodeArg, Session, load_npy, zoo
from .train import Trainer, prune_model

__version__ = "0.1.0"

# ONNX Runtime's name, so that `pillar.InferenceSession(path)` also works.
InferenceSession = Session


def version():
    """The version of the loaded libpillar ("0.1.0")."""
    return _lib.pillar_version().decode()


def cpu_isa():
    """The instruction set pillar's kernels use here ("avx512", "avx2" or "ref")."""
    return _lib.pillar_cpu_isa().decode()


def library_path():
    """The path of the loaded libpillar.so."""
    _lib.pillar_version  # loads it
    return _lib.path


__all__ = [
    "Session", "InferenceSession", "Model", "NodeArg", "Trainer", "benchmark", "prune_model", "zoo",
    "load_npy", "version", "cpu_isa", "library_path", "PillarError", "ArgumentError", "ModelError",
    "InputError", "UnsupportedError", "OutOfMemoryError", "PillarIOError", "InternalError",
]
