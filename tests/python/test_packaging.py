"""The package builds offline: the in-tree backend (python/_build) makes a wheel and
an sdist with nothing but the standard library, bundling libpillar.so when given, and
the installed wheel imports and runs from an unrelated directory."""
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile

from helpers import SRC, model

sys.path.insert(0, os.path.join(SRC, "python", "_build"))
import pillar_build  # noqa: E402


class TestBackend(unittest.TestCase):
    def test_wheel_with_library(self):
        with tempfile.TemporaryDirectory() as d:
            name = pillar_build.build_wheel(d)
            self.assertRegex(name, r"^pillar-0\.1\.0-py3-none-linux_x86_64\.whl$")
            z = zipfile.ZipFile(os.path.join(d, name))
            names = set(z.namelist())
            for f in ("pillar/__init__.py", "pillar/_lib.py", "pillar/session.py", "pillar/libpillar.so",
                      "pillar-0.1.0.dist-info/METADATA", "pillar-0.1.0.dist-info/WHEEL",
                      "pillar-0.1.0.dist-info/RECORD"):
                self.assertIn(f, names)
            meta = z.read("pillar-0.1.0.dist-info/METADATA").decode()
            self.assertIn("Requires-Dist: numpy", meta)
            record = z.read("pillar-0.1.0.dist-info/RECORD").decode()
            self.assertIn("pillar/libpillar.so,sha256=", record)
            # unpacked anywhere, the package runs with its bundled library
            site = os.path.join(d, "site")
            z.extractall(site)
            env = dict(os.environ)
            env.pop("PILLAR_LIB", None)
            env.pop("PILLAR_BUILD_DIR", None)
            env["PYTHONPATH"] = site
            code = ("import pillar, numpy as np; s = pillar.Session(%r);"
                    "print(pillar.library_path()); print(s.run(['s'], {'x': np.ones((1, 4), np.float32)})[0][0, 0])"
                    % model("mlp.onnx"))
            out = subprocess.run([sys.executable, "-c", code], env=env, cwd=d, capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            lines = out.stdout.split()
            self.assertTrue(lines[0].startswith(site), lines)
            self.assertEqual(float(lines[1]), 6.0)

    def test_pure_wheel_and_sdist(self):
        saved = os.environ.get("PILLAR_LIB")
        os.environ["PILLAR_LIB"] = "/nonexistent/libpillar.so"
        try:
            with tempfile.TemporaryDirectory() as d:
                name = pillar_build.build_wheel(d)
                self.assertTrue(name.endswith("-py3-none-any.whl"), name)
                self.assertNotIn("pillar/libpillar.so", zipfile.ZipFile(os.path.join(d, name)).namelist())
                sd = pillar_build.build_sdist(d)
                names = tarfile.open(os.path.join(d, sd)).getnames()
                for f in ("pillar-0.1.0/pyproject.toml", "pillar-0.1.0/_build/pillar_build.py",
                          "pillar-0.1.0/pillar/session.py", "pillar-0.1.0/PKG-INFO"):
                    self.assertIn(f, names)
                ed = pillar_build.build_editable(d)
                self.assertIn("__editable__.pillar.pth", zipfile.ZipFile(os.path.join(d, ed)).namelist())
                self.assertEqual(pillar_build.get_requires_for_build_wheel(), [])
        finally:
            os.environ["PILLAR_LIB"] = saved


if __name__ == "__main__":
    unittest.main()
