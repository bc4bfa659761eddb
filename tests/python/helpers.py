"""Shared set-up of the Python tests: finds the source tree and libpillar, puts python/
on sys.path and writes the small test models once per process."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("PILLAR_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "python"))
if "PILLAR_LIB" not in os.environ:
    build = os.environ.get("PILLAR_BUILD_DIR", os.path.join(SRC, "build"))
    os.environ["PILLAR_LIB"] = os.path.join(build, "libpillar.so")

_models = None


def models():
    """Directory with mlp.onnx, fixed.onnx, types.onnx, cnn.onnx (tests/serve/make_models.py)."""
    global _models
    if _models is None:
        d = tempfile.mkdtemp(prefix="pillar-py.")
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "serve", "make_models.py"), d], check=True,
                       stdout=subprocess.DEVNULL)
        _models = d
        atexit.register(shutil.rmtree, d, True)
    return _models


def model(name):
    return os.path.join(models(), name)


def read(path):
    with open(path, "rb") as f:
        return f.read()
