"""pillar.benchmark: time a model the way `pillar bench` does, from Python."""
import time

import numpy as np

from ._errors import ArgumentError
from ._lib import lib
from .session import BFLOAT16, Session


def _random_input(arg, shape, rng):
    if arg.elem_type == BFLOAT16 or arg.dtype.kind == "f":
        return rng.random(shape, dtype=np.float64).astype(arg.dtype)
    if arg.dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    return rng.integers(0, 10, shape).astype(arg.dtype)


def benchmark(model, threads=None, batch=None, shapes=None, dims=None, seconds=3.0, warmup=1.0, seed=1,
              inputs=None):
    """Times session.run on random inputs (or `inputs`) and returns a dict: model,
    batch, threads, isa, runs, mean_ms, median_ms, p90_ms, p99_ms, items_per_s.

    batch sets the first dimension of inputs whose first dimension is symbolic; shapes
    and dims fix other symbolic dimensions as in pillar.Session.
    """
    shapes = dict(shapes or {})
    sess0 = None
    if batch is not None:
        sess0 = Session(model, threads=threads, shapes=shapes, dims=dims)
        for arg in sess0.inputs:
            if arg.name in shapes or not arg.shape:
                continue
            if isinstance(arg.shape[0], int):
                if arg.shape[0] != batch:
                    raise ArgumentError("input '%s' has a fixed first dimension %d, not %d"
                                        % (arg.name, arg.shape[0], batch))
                continue
            rest = [d if isinstance(d, int) else None for d in arg.shape[1:]]
            if None in rest:
                continue
            shapes[arg.name] = [batch] + rest
        sess0.close()
    sess = Session(model, threads=threads, shapes=shapes, dims=dims)
    rng = np.random.default_rng(seed)
    if inputs is None:
        inputs = {}
        for arg in sess.inputs:
            shape = shapes.get(arg.name)
            if shape is None:
                shape = []
                for d in arg.shape:
                    if isinstance(d, int):
                        shape.append(d)
                    elif dims and d in dims:
                        shape.append(int(dims[d]))
                    else:
                        raise ArgumentError("input '%s' has a symbolic dimension %r: give batch=, shapes= or dims="
                                            % (arg.name, d))
            inputs[arg.name] = _random_input(arg, tuple(shape), rng)
    first = next(iter(inputs.values()), None)
    items = int(first.shape[0]) if first is not None and first.ndim > 0 else 1
    end = time.perf_counter() + warmup
    sess.run(None, inputs)
    while time.perf_counter() < end:
        sess.run(None, inputs)
    times = []
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        sess.run(None, inputs)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() >= end and len(times) >= 3:
            break
    t = np.array(times) * 1e3
    sess.close()
    return {
        "model": str(getattr(model, "path", model)),
        "batch": items,
        "threads": threads or 0,
        "isa": lib.pillar_cpu_isa().decode() if lib.has("pillar_cpu_isa") else "unknown",
        "runs": len(times),
        "mean_ms": float(t.mean()),
        "median_ms": float(np.median(t)),
        "p90_ms": float(np.percentile(t, 90)),
        "p99_ms": float(np.percentile(t, 99)),
        "items_per_s": float(items * 1e3 / t.mean()),
    }
