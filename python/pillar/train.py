"""Training and pruning on the CPU: pillar.Trainer over pillar_trainer_* and
pillar.prune_model. If the loaded libpillar lacks the training calls, these raise
PillarError when used (importing pillar still works)."""
import ctypes
import weakref

import numpy as np

from ._errors import ArgumentError
from ._lib import lib
from .session import Model, _path_bytes, _wrap

_OPTIMIZERS = {"sgd": 0, "adam": 1, "adamw": 2}
_LOSSES = {"softmax_cross_entropy": 0, "cross_entropy": 0, "nll": 1, "mse": 2}
_PRECISIONS = {"fp32": 0, "float32": 0, "bf16": 1, "bfloat16": 1}


def _choice(table, value, what):
    key = str(value).lower()
    if key not in table:
        raise ArgumentError("unknown %s '%s' (one of: %s)" % (what, value, ", ".join(sorted(table))))
    return table[key]


class Trainer:
    """Trains the float weights of a model (a pillar.Model or an ONNX path).

    Trainer(model, optimizer="sgd"|"adam"|"adamw", lr=0.01, momentum=0.0,
            weight_decay=0.0, batch=64, threads=None, seed=0, precision="fp32"|"bf16",
            loss="softmax_cross_entropy"|"nll"|"mse", loss_output=None,
            prune_block=None)  # (rows, cols) blocks for pruning masks

    step(x, labels) and evaluate(x, labels) return (mean loss, correct top-1 count);
    labels are int64 class indices (float targets for "mse"). prune(sparsity) zeroes the
    smallest weights and keeps them zero through later steps; save(path) writes the
    trained model as ONNX for inference; checkpoint/restore keep the full state.
    """

    def __init__(self, model, optimizer="sgd", lr=0.01, momentum=0.0, weight_decay=0.0, batch=64, threads=None,
                 seed=0, precision="fp32", loss="softmax_cross_entropy", loss_output=None, prune_block=None):
        self._model = model if isinstance(model, Model) else Model(model)
        self._loss = _choice(_LOSSES, loss, "loss")
        o = ctypes.c_void_p()
        lib.check(lib.pillar_train_options_create(ctypes.byref(o)))
        try:
            lib.check(lib.pillar_train_options_set_optimizer(o, _choice(_OPTIMIZERS, optimizer, "optimizer"),
                                                             float(lr), float(momentum), float(weight_decay)))
            lib.check(lib.pillar_train_options_set_batch(o, int(batch)))
            if threads is not None:
                lib.check(lib.pillar_train_options_set_threads(o, int(threads)))
            lib.check(lib.pillar_train_options_set_seed(o, int(seed)))
            lib.check(lib.pillar_train_options_set_precision(o, _choice(_PRECISIONS, precision, "precision")))
            lib.check(lib.pillar_train_options_set_loss(o, self._loss,
                                                        loss_output.encode() if loss_output else None))
            if prune_block is not None:
                rows, cols = prune_block
                lib.check(lib.pillar_train_options_set_prune_block(o, int(rows), int(cols)))
            h = ctypes.c_void_p()
            lib.check(lib.pillar_trainer_create(self._model._h, o, ctypes.byref(h)))
        finally:
            lib.pillar_train_options_destroy(o)
        self._h = h.value
        self._finalizer = weakref.finalize(self, lib.pillar_trainer_destroy, self._h)
        self._lr = float(lr)

    def _batch(self, fn, x, labels):
        keep = []
        hx = hy = None
        try:
            x = np.ascontiguousarray(x, dtype=np.float32)
            if self._loss == 2:
                y = np.ascontiguousarray(labels, dtype=np.float32)
                hy = _wrap(y, 1, keep)
            else:
                y = np.ascontiguousarray(labels, dtype=np.int64)
                hy = _wrap(y, 7, keep)
            hx = _wrap(x, 1, keep)
            loss = ctypes.c_float()
            correct = ctypes.c_int64()
            lib.check(fn(self._h, hx, hy, ctypes.byref(loss), ctypes.byref(correct)))
            return float(loss.value), int(correct.value)
        finally:
            for h in (hx, hy):
                if h:
                    lib.pillar_tensor_destroy(h)

    def step(self, x, labels):
        """One optimisation step on a batch; returns (mean loss, correct count)."""
        return self._batch(lib.pillar_trainer_step, x, labels)

    def evaluate(self, x, labels):
        """Forward pass in inference mode; returns (mean loss, correct count)."""
        return self._batch(lib.pillar_trainer_evaluate, x, labels)

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        lib.check(lib.pillar_trainer_set_lr(self._h, float(value)))
        self._lr = float(value)

    def prune(self, sparsity):
        """Magnitude pruning of every prunable weight to `sparsity` (0..1)."""
        lib.check(lib.pillar_trainer_prune(self._h, float(sparsity)))

    @property
    def sparsity(self):
        """Fraction of zeros over the prunable weights."""
        return float(lib.pillar_trainer_sparsity(self._h))

    def save(self, path):
        """Writes the trained model as ONNX (inference form)."""
        lib.check(lib.pillar_trainer_save(self._h, _path_bytes(path)))

    def checkpoint(self, path):
        lib.check(lib.pillar_trainer_checkpoint(self._h, _path_bytes(path)))

    def restore(self, path):
        lib.check(lib.pillar_trainer_restore(self._h, _path_bytes(path)))

    def close(self):
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def prune_model(model, out_path, sparsity, block=None):
    """Magnitude-prunes the weights of `model` (path or pillar.Model) to `sparsity` and
    writes the result to out_path (ONNX). Fine-tune with a Trainer to recover accuracy."""
    t = Trainer(model, prune_block=block)
    try:
        t.prune(sparsity)
        t.save(out_path)
        return t.sparsity
    finally:
        t.close()
