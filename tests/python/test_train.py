"""pillar.Trainer, pillar.prune_model and pillar.zoo: a small MLP learns a separable
toy problem, pruning reaches the asked sparsity and keeps it through training, the
trained model saves as ONNX and runs in a Session, checkpoints restore. Calls missing
from the library raise PillarError when used."""
import os
import tempfile
import unittest

import numpy as np

import helpers  # noqa: F401  (sets up the path and PILLAR_LIB)

import pillar
from pillar._lib import _Missing, lib


def toy(n, seed):
    """Four classes from the quadrant of the first two features (of 16)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) * 2 + (x[:, 1] > 0).astype(np.int64)
    return x, y


def have_training():
    return lib.has("pillar_trainer_create") and lib.has("pillar_model_zoo")


@unittest.skipUnless(have_training(), "libpillar has no training calls")
class TestTrainer(unittest.TestCase):
    def make(self, **kw):
        m = pillar.zoo("mlp", chw=(1, 4, 4), classes=4, seed=3)
        args = dict(optimizer="adam", lr=0.01, batch=64, threads=1, seed=5)
        args.update(kw)
        return pillar.Trainer(m, **args)

    def test_learns(self):
        t = self.make()
        x, y = toy(64, 1)
        first, _ = t.evaluate(x, y)
        for _ in range(60):
            loss, correct = t.step(x, y)
        last, correct = t.evaluate(x, y)
        self.assertLess(last, first * 0.7, (first, last))
        self.assertGreater(correct, 40)
        t.lr = 0.001
        self.assertAlmostEqual(t.lr, 0.001)

    def test_prune_save_run(self):
        t = self.make()
        x, y = toy(64, 2)
        for _ in range(5):
            t.step(x, y)
        t.prune(0.75)
        self.assertAlmostEqual(t.sparsity, 0.75, delta=0.05)
        for _ in range(5):
            t.step(x, y)
        self.assertAlmostEqual(t.sparsity, 0.75, delta=0.05)  # masks stay
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "trained.onnx")
            t.save(path)
            s = pillar.Session(path, threads=1)
            (logits,) = s.run(None, {s.inputs[0].name: x})
            self.assertEqual(logits.shape, (64, 4))
            _, correct = t.evaluate(x, y)
            self.assertEqual(int((logits.argmax(1) == y).sum()), correct)
            # checkpoint, train on, restore: back to the same loss
            ck = os.path.join(d, "state.ckpt")
            t.checkpoint(ck)
            before, _ = t.evaluate(x, y)
            for _ in range(5):
                t.step(x, y)
            t.restore(ck)
            after, _ = t.evaluate(x, y)
            self.assertAlmostEqual(before, after, places=5)
            # prune_model: a file in, a pruned file out
            out = os.path.join(d, "pruned.onnx")
            sp = pillar.prune_model(path, out, 0.9)
            self.assertAlmostEqual(sp, 0.9, delta=0.05)
            pillar.Session(out).run(None, {s.inputs[0].name: x})

    def test_errors(self):
        with self.assertRaises(pillar.ArgumentError):
            self.make(optimizer="lbfgs")
        with self.assertRaises(pillar.PillarError):
            pillar.zoo("no-such-architecture")
        t = self.make()
        x, y = toy(8, 3)
        with self.assertRaises(pillar.PillarError):
            t.step(x[:, :5], y)  # wrong feature count


class TestMissingSymbols(unittest.TestCase):
    def test_missing_raises_when_called(self):
        f = _Missing("pillar_trainer_create", "/some/libpillar.so")
        with self.assertRaisesRegex(pillar.PillarError, "has no pillar_trainer_create"):
            f(None, None, None)


if __name__ == "__main__":
    unittest.main()
