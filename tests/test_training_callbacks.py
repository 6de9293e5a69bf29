"""Tests of companion.training.callbacks: the resumable checkpoint, the NaN guard, the generator
snapshots and the ELBO history."""

import keras
import numpy as np
import pytest

from companion import data
from companion.data import synthetic
from companion.models import MLPVAE, VectorGAN
from companion.training import ELBOHistory, GeneratorSnapshots, NaNGuard, ResumableCheckpoint


@pytest.mark.backend
def test_checkpoint_every_epochs_and_last(images_96, tmp_path, new_vae):
    checkpoint = ResumableCheckpoint(tmp_path / "run.keras", every_epochs=2)
    new_vae().fit(images_96, batch_size=48, epochs=3, verbose=0, callbacks=[checkpoint])
    assert checkpoint.written == [2, 3]


@pytest.mark.backend
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


@pytest.mark.backend
def test_nan_guard_stops_and_keeps_the_last_good_weights(images_96, tmp_path, new_vae):
    model = new_vae()
    model.fit(images_96, batch_size=32, epochs=1, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    guard = NaNGuard()
    checkpoint = ResumableCheckpoint(tmp_path / "run.keras")
    with pytest.warns(UserWarning) as warned:
        model.fit(PoisonedBatches(images_96, bad=2), epochs=2, verbose=0, shuffle=False, callbacks=[guard, checkpoint])
    messages = " | ".join(str(w.message) for w in warned)
    assert "NaNGuard: non-finite" in messages and "checkpoint" in messages and "left as it was" in messages
    assert guard.stopped is not None and guard.stopped["epoch"] == 0 and guard.stopped["batch"] == 2
    assert model.stop_training
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    for a, b in zip(after, before):  # the snapshot taken when training began
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "run.keras").exists(), "no checkpoint is written from a NaN run"


@pytest.mark.backend
def test_nan_guard_restores_the_optimizer_so_that_training_goes_on(images_96, new_vae):
    """The NaN batch poisons Adam's moments as well as the weights; with both restored, `fit`
    continues at a sane learning rate and every loss stays finite."""
    model = new_vae()
    model.fit(images_96, batch_size=32, epochs=1, verbose=0)
    guard = NaNGuard()
    with pytest.warns(UserWarning, match="NaNGuard"):
        model.fit(PoisonedBatches(images_96, bad=2), epochs=1, verbose=0, shuffle=False, callbacks=[guard])
    assert guard.stopped is not None
    moments = [keras.ops.convert_to_numpy(v.value) for v in model.optimizer.variables]
    assert all(np.isfinite(m).all() for m in moments), "the optimizer's state came back finite"
    model.optimizer.learning_rate.assign(1e-4)
    history = model.fit(images_96, batch_size=32, epochs=2, verbose=0)
    assert all(np.isfinite(v) for values in history.history.values() for v in values)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_generator_snapshots_keep_the_same_noise_at_the_chosen_epochs():
    keras.utils.set_random_seed(0)
    x, _ = synthetic.ring_of_gaussians(512, seed=0)
    model = VectorGAN(hidden_units=(8,), seed=0)
    model.compile()
    snapshots = GeneratorSnapshots(epochs=(0, 1, 3), n=50, seed=4)
    model.fit(x, batch_size=128, epochs=3, verbose=0, callbacks=[snapshots])
    assert sorted(snapshots.snapshots) == [0, 1, 3]
    np.testing.assert_array_equal(snapshots.snapshots[3], model.generate(50, seed=4))
    assert not np.array_equal(snapshots.snapshots[0], snapshots.snapshots[3])
    with pytest.raises(ValueError, match="Expected non-negative `epochs`"):
        GeneratorSnapshots(epochs=(-1,))


@pytest.mark.backend
def test_elbo_history_records_both_sets_with_fixed_noise(small_mnist):
    x, _, x_test, _ = small_mnist
    train, test = data.binarize_static(x[:256], seed=0), data.binarize_static(x_test[:128], seed=0)
    vae = MLPVAE(latent_dim=2, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    tracker = ELBOHistory(train, test, seed=5)
    vae.fit(train, batch_size=64, epochs=3, verbose=0, callbacks=[tracker])
    assert [len(tracker.history[k]) for k in ("train", "test")] == [3, 3]
    assert tracker.history["train"][-1] < tracker.history["train"][0]
    assert tracker.history["test"][-1] == pytest.approx(-np.mean(vae.elbo_terms(test, seed=5)["elbo"]), rel=1e-5)
