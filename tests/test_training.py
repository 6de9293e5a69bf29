"""Tests of checkpoints, resuming and the NaN guard, run on every backend."""

import os

import keras
import numpy as np
import pytest

from companion import data, training
from companion.models import DCGAN, MLPVAE
from companion.training import NaNGuard, ResumableCheckpoint, resume_training
from companion.training.checkpoints import read_progress, save_checkpoint

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def x(mnist):
    return data.scale(mnist[0][0][:96])


def new_vae():
    keras.utils.set_random_seed(0)
    model = MLPVAE(latent_dim=2, hidden_units=(16, 8), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def new_gan():
    keras.utils.set_random_seed(0)
    model = DCGAN(latent_dim=4, filters=(8, 4), seed=0)
    model.compile()
    return model


def assert_same_weights(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("factory", [new_vae, new_gan], ids=["vae", "gan"])
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_weights(factory, x, tmp_path):
    binarize = "dynamic" if factory is new_vae else None
    batches = lambda epoch=0: data.MNISTBatches(x, batch_size=32, binarize=binarize, seed=5, epoch=epoch)

    uninterrupted = factory()
    uninterrupted.fit(batches(), epochs=3, verbose=0)

    path = tmp_path / "run.keras"
    first = factory()
    first.fit(batches(), epochs=2, verbose=0, callbacks=[ResumableCheckpoint(path)])
    assert read_progress(path)["epoch"] == 2
    del first  # the "interruption"

    resumed, initial_epoch = resume_training(path)
    assert initial_epoch == 2
    resumed.fit(batches(initial_epoch), epochs=3, initial_epoch=initial_epoch, verbose=0)
    assert_same_weights(resumed, uninterrupted)
    assert int(resumed.optimizer.iterations.numpy()) == int(uninterrupted.optimizer.iterations.numpy()) == 9


def test_checkpoint_interrupted_mid_write_leaves_the_previous_one(x, tmp_path, monkeypatch):
    path = tmp_path / "run.keras"
    model = new_vae()
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    save_checkpoint(model, path, {"epoch": 1})
    good = [w.copy() for w in model.get_weights()]

    model.fit(x, batch_size=32, epochs=1, verbose=0)  # the weights move on

    def killed_mid_write(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(type(model), "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, path, {"epoch": 2})
    monkeypatch.undo()

    assert sorted(os.listdir(tmp_path)) == ["run.keras"], "no temporary file is left behind"
    loaded, epoch = resume_training(path)
    assert epoch == 1
    for a, b in zip(loaded.get_weights(), good):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_every_epochs_and_last(x, tmp_path):
    checkpoint = ResumableCheckpoint(tmp_path / "run.keras", every_epochs=2)
    new_vae().fit(x, batch_size=48, epochs=3, verbose=0, callbacks=[checkpoint])
    assert checkpoint.written == [2, 3]


def test_checkpoint_rejects_a_path_without_keras_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"ending in .keras. Received: path='.*run.h5'"):
        ResumableCheckpoint(tmp_path / "run.h5")


class PoisonedBatches(keras.utils.PyDataset):
    """Real batches, except that batch `bad` is all NaN."""

    def __init__(self, x, bad, batch_size=16):
        super().__init__()
        self.x, self.bad, self.batch_size = x, bad, batch_size

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, index):
        batch = self.x[index * self.batch_size : (index + 1) * self.batch_size]
        return np.full_like(batch, np.nan) if index == self.bad else batch


def test_nan_guard_stops_and_keeps_the_last_good_weights(x, tmp_path):
    model = new_vae()
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    guard = NaNGuard()
    checkpoint = ResumableCheckpoint(tmp_path / "run.keras")
    with pytest.warns(UserWarning) as warned:
        model.fit(PoisonedBatches(x, bad=2), epochs=2, verbose=0, shuffle=False, callbacks=[guard, checkpoint])
    messages = " | ".join(str(w.message) for w in warned)
    assert "NaNGuard: non-finite" in messages and "checkpoint" in messages and "left as it was" in messages
    assert guard.stopped is not None and guard.stopped["epoch"] == 0 and guard.stopped["batch"] == 2
    assert model.stop_training
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    for a, b in zip(after, before):  # the snapshot taken when training began
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "run.keras").exists(), "no checkpoint is written from a NaN run"


def test_nan_guard_restores_the_optimizer_so_that_training_goes_on(x):
    """The NaN batch poisons Adam's moments as well as the weights; with both restored, `fit`
    continues at a sane learning rate and every loss stays finite."""
    model = new_vae()
    model.fit(x, batch_size=32, epochs=1, verbose=0)
    guard = NaNGuard()
    with pytest.warns(UserWarning, match="NaNGuard"):
        model.fit(PoisonedBatches(x, bad=2), epochs=1, verbose=0, shuffle=False, callbacks=[guard])
    assert guard.stopped is not None
    moments = [keras.ops.convert_to_numpy(v.value) for v in model.optimizer.variables]
    assert all(np.isfinite(m).all() for m in moments), "the optimizer's state came back finite"
    model.optimizer.learning_rate.assign(1e-4)
    history = model.fit(x, batch_size=32, epochs=2, verbose=0)
    assert all(np.isfinite(v) for values in history.history.values() for v in values)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_leftovers_of_a_killed_checkpoint_write_are_removed_on_the_next_start(x, tmp_path):
    from companion.training.checkpoints import remove_leftovers

    path = tmp_path / "run.ckpt.keras"
    leftovers = [tmp_path / ".run.ckpt.k3j_9x2a.keras.tmp", tmp_path / ".run.ckpt.k3j_9x2a.keras", tmp_path / ".run.ckpt.zz00aa11.zip.tmp"]
    bystanders = [tmp_path / ".run.ckpt.keras", tmp_path / "other.keras", tmp_path / ".other.k3j_9x2a.keras.tmp"]
    for p in leftovers + bystanders:
        p.write_bytes(b"partial")
    model = new_vae()
    with pytest.warns(UserWarning, match="left by a checkpoint write that was interrupted"):
        model.fit(x, batch_size=32, epochs=1, verbose=0, callbacks=[ResumableCheckpoint(path)])
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in bystanders), "only the temporary files of this checkpoint are removed"
    assert path.is_file() and remove_leftovers(path) == []


def test_backend_modules_share_one_interface():
    for name in ("tensorflow", "jax", "torch"):
        path = os.path.join(os.path.dirname(training.__file__), "backends", f"{name}.py")
        source = open(path).read()
        assert "def train_step(model" in source and "def input_gradient(function, x)" in source
    assert training.backend_module().__name__.endswith(keras.backend.backend())
    with pytest.raises(ValueError, match=r"Received: backend='numpy'"):
        training.backend_module("numpy")
