"""pillar.Session and pillar.Model: metadata, exact results for every numpy dtype,
zero-copy and copied inputs, outputs that outlive the session, errors as PillarError
subclasses with pillar's message, options, thread safety and the GIL released during
runs, benchmark, .npy loading."""
import os
import tempfile
import threading
import time
import unittest

import numpy as np

from helpers import model, read

import pillar

W = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32)
B = np.array([0.5, -0.5, 0], dtype=np.float32)


def mlp(x):
    return x @ W + B


class TestMetadata(unittest.TestCase):
    def test_inputs_outputs(self):
        s = pillar.Session(model("mlp.onnx"), threads=1)
        (x,) = s.inputs
        self.assertEqual((x.name, x.shape, x.type, x.dtype), ("x", ["batch", 4], "tensor(float)", np.float32))
        self.assertEqual([o.name for o in s.outputs], ["y", "s"])
        self.assertEqual(s.outputs[0].shape[1:], [3])
        self.assertEqual([a.name for a in s.get_inputs()], ["x"])
        self.assertEqual([a.name for a in s.get_outputs()], ["y", "s"])
        f = pillar.Model(model("fixed.onnx"))
        self.assertEqual([(a.name, a.shape, a.type) for a in f.inputs],
                         [("a", [2], "tensor(int64)"), ("b", [2], "tensor(int64)")])
        self.assertIn("NodeArg(name='x'", repr(x))

    def test_version_isa_library(self):
        self.assertRegex(pillar.version(), r"^\d+\.\d+\.\d+$")
        self.assertIn(pillar.cpu_isa(), ("avx512", "avx2", "ref"))
        self.assertTrue(os.path.exists(pillar.library_path()))
        self.assertIs(pillar.InferenceSession, pillar.Session)

    def test_layers(self):
        s = pillar.Session(model("cnn.onnx"), threads=1, shapes={"x": [2, 3, 16, 16]})
        ops = [l["op"] for l in s.layers()]
        self.assertIn("Conv", " ".join(ops))
        conv = [l for l in s.layers() if "Conv" in l["op"]][0]
        self.assertEqual(conv["params"], 8 * 3 * 3 * 3 + 8)
        self.assertGreater(conv["macs"], 0)
        self.assertNotEqual(conv["kernel"], "")  # the fast conv plan names its algorithm

    def test_profile(self):
        s = pillar.Session(model("cnn.onnx"), threads=1, shapes={"x": [2, 3, 16, 16]})
        x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
        s.run(None, {"x": x})
        self.assertTrue(all(t["calls"] == 0 for t in s.layer_times()))  # off by default
        s.profile()
        for _ in range(3):
            s.run(None, {"x": x})
        times = s.layer_times()
        self.assertEqual(len(times), len(s.layers()))
        self.assertTrue(all(t["calls"] == 3 and t["ms"] >= 0 for t in times))
        self.assertGreater(sum(t["ms"] for t in times), 0)
        s.profile(False)
        # a fixed-shape session made from a path lets go of the conv weights it packed
        self.assertGreater(s.released_bytes, 0)


class TestRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = pillar.Session(model("mlp.onnx"), threads=1)

    def test_exact(self):
        x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
        y, s = self.s.run(None, {"x": x})
        np.testing.assert_array_equal(y, mlp(x))
        np.testing.assert_allclose(s, mlp(x).sum(1, keepdims=True), rtol=1e-6)
        self.assertEqual(y.dtype, np.float32)
        (s2, y2) = self.s.run(["s", "y"], {"x": x})
        np.testing.assert_array_equal(y2, y)
        np.testing.assert_array_equal(s2, s)

    def test_layouts(self):
        base = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
        for x in (base[:, ::2], base[::2, :4], np.asfortranarray(base[:, :4]), base[:, :4].copy()):
            (y,) = self.s.run(["y"], {"x": x})
            np.testing.assert_array_equal(y, mlp(np.ascontiguousarray(x)))
        # a plain list takes the model's dtype
        (y,) = self.s.run(["y"], {"x": [[1, 2, 3, 4]]})
        np.testing.assert_array_equal(y, [[5.5, 5.5, 7]])
        # an empty batch
        (y,) = self.s.run(["y"], {"x": np.zeros((0, 4), np.float32)})
        self.assertEqual(y.shape, (0, 3))

    def test_input_not_modified_and_outputs_outlive_session(self):
        s = pillar.Session(model("mlp.onnx"), threads=1)
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        before = x.copy()
        y, _ = s.run(None, {"x": x})
        s.close()
        del s
        np.testing.assert_array_equal(x, before)
        np.testing.assert_array_equal(y, mlp(x))
        y[0, 0] = 42  # outputs are ordinary writable arrays
        self.assertEqual(y[0, 0], 42)

    def test_types(self):
        s = pillar.Session(model("types.onnx"), threads=1)
        feed = {
            "h": np.array([1.5, -2, 65504, np.inf], np.float16),
            "i": np.array([1, -2, 2**31 - 1, -2**31], np.int32),
            "f": np.array([True, False, True, False]),
            "u": np.array([0, 255, 7, 1], np.uint8),
            "d": np.array([0.1, 1e300, -3, 5e-324], np.float64),
        }
        outs = s.run(None, feed)
        for (name, want), got in zip(feed.items(), outs):
            self.assertEqual(got.dtype, want.dtype, name)
            np.testing.assert_array_equal(got, want, name)

    def test_int64_exact(self):
        s = pillar.Session(model("fixed.onnx"))
        a = np.array([2**62 + 1, -(2**62) - 3], np.int64)
        b = np.array([5, 7], np.int64)
        (c,) = s.run(None, {"a": a, "b": b})
        np.testing.assert_array_equal(c, a + b)

    def test_model_from_bytes_and_options(self):
        data = read(model("mlp.onnx"))
        m = pillar.Model(data)
        s = pillar.Session(m, threads=1, dims={"batch": 3})
        (y,) = s.run(["y"], {"x": np.ones((3, 4), np.float32)})
        self.assertEqual(y.shape, (3, 3))
        s = pillar.Session(model("mlp.onnx"), shapes={"x": [2, 4]})
        with self.assertRaises(pillar.InputError):
            s.run(None, {"x": np.ones((3, 4), np.float32)})
        with pillar.Session(model("mlp.onnx")) as s2:
            s2.run(None, {"x": np.ones((1, 4), np.float32)})
        with self.assertRaises(pillar.PillarError):
            s2.run(None, {"x": np.ones((1, 4), np.float32)})


class TestErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = pillar.Session(model("mlp.onnx"), threads=1)

    def test_input_errors(self):
        x = np.ones((1, 4), np.float32)
        with self.assertRaisesRegex(pillar.InputError, r"input 'x' must be float32.*got float64"):
            self.s.run(None, {"x": x.astype(np.float64)})
        with self.assertRaisesRegex(pillar.InputError, r"'q' is not an input of the model"):
            self.s.run(None, {"q": x})
        with self.assertRaisesRegex(pillar.InputError, r"input 'x' has shape 1x5, the model expects"):
            self.s.run(None, {"x": np.ones((1, 5), np.float32)})
        with self.assertRaisesRegex(pillar.InputError, r"'x' is not given"):
            self.s.run(None, {})
        with self.assertRaisesRegex(pillar.PillarError, r"'nope' is not an output"):
            self.s.run(["nope"], {"x": x})
        with self.assertRaises(pillar.ArgumentError):
            self.s.run(None, [x])
        # errors are ValueErrors too, and carry the status code
        try:
            self.s.run(None, {"x": np.ones((2, 2), np.float32)})
        except ValueError as e:
            self.assertEqual(e.status, 3)
        else:
            self.fail("no error")

    def test_model_errors(self):
        with self.assertRaises(pillar.PillarIOError) as cm:
            pillar.Session("/nonexistent/model.onnx")
        self.assertIn("/nonexistent/model.onnx", str(cm.exception))
        self.assertIsInstance(cm.exception, OSError)
        with self.assertRaises(pillar.ModelError):
            pillar.Model(b"this is not an onnx model")
        with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
            f.write(read(model("mlp.onnx"))[:100])
            f.flush()
            with self.assertRaises(pillar.ModelError) as cm:
                pillar.Session(f.name)
            self.assertIn(f.name, str(cm.exception))
        with self.assertRaises(pillar.ArgumentError):
            pillar.Session(model("mlp.onnx"), threads=-3)


class TestThreads(unittest.TestCase):
    def test_shared_session(self):
        s = pillar.Session(model("mlp.onnx"), threads=1)
        errors = []

        def work(k):
            rng = np.random.default_rng(k)
            for _ in range(50):
                x = rng.standard_normal((1 + k % 4, 4)).astype(np.float32)
                (y,) = s.run(["y"], {"x": x})
                if not np.array_equal(y, mlp(x)):
                    errors.append(k)
                    return

        ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])

    def test_gil_released(self):
        s = pillar.Session(model("cnn.onnx"), threads=1)
        x = np.random.default_rng(2).standard_normal((256, 3, 16, 16)).astype(np.float32)
        t0 = time.perf_counter()
        s.run(None, {"x": x})
        one = time.perf_counter() - t0
        runs = max(1, int(0.3 / max(one, 1e-4)))
        done = threading.Event()

        def work():
            for _ in range(runs):
                s.run(None, {"x": x})
            done.set()

        count = 0
        t = threading.Thread(target=work)
        t.start()
        while not done.is_set():
            count += 1
        t.join()
        # with the GIL held during runs this loop would barely advance
        self.assertGreater(count, 1000, "main thread ran %d iterations during %d runs" % (count, runs))


class TestTools(unittest.TestCase):
    def test_benchmark(self):
        r = pillar.benchmark(model("cnn.onnx"), threads=1, batch=2, seconds=0.2, warmup=0.05)
        for k in ("model", "batch", "threads", "isa", "runs", "mean_ms", "median_ms", "p90_ms", "p99_ms",
                  "items_per_s"):
            self.assertIn(k, r)
        self.assertEqual(r["batch"], 2)
        self.assertGreater(r["items_per_s"], 0)
        self.assertGreaterEqual(r["p99_ms"], r["median_ms"])
        with self.assertRaises(pillar.ArgumentError):
            pillar.benchmark(model("cnn.onnx"), seconds=0.1)  # symbolic batch, no batch given

    def test_load_npy(self):
        with tempfile.TemporaryDirectory() as d:
            a = np.arange(12, dtype=np.int16).reshape(3, 4)
            np.save(os.path.join(d, "a.npy"), a)
            b = pillar.load_npy(os.path.join(d, "a.npy"))
            np.testing.assert_array_equal(a, b)
            self.assertEqual(b.dtype, np.int16)


if __name__ == "__main__":
    unittest.main()
