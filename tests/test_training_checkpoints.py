"""Tests of companion.training.checkpoints: atomic checkpoint writes, resuming, leftovers of killed
writes and the slim files shipped for inference, run on every backend."""

import os
import zipfile

import keras
import numpy as np
import pytest

from companion import data
from companion.models import DCGAN
from companion.training import ResumableCheckpoint, resume_training
from companion.training.checkpoints import read_progress, save_checkpoint, save_for_inference

pytestmark = pytest.mark.backend


def new_gan():
    keras.utils.set_random_seed(0)
    model = DCGAN(latent_dim=4, filters=(8, 4), seed=0)
    model.compile()
    return model


def assert_same_weights(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_resuming_from_a_checkpoint_gives_the_uninterrupted_weights(kind, new_vae, images_96, tmp_path):
    factory = new_vae if kind == "vae" else new_gan
    binarize = "dynamic" if kind == "vae" else None
    batches = lambda epoch=0: data.MNISTBatches(images_96, batch_size=32, binarize=binarize, seed=5, epoch=epoch)

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


def test_checkpoint_interrupted_mid_write_leaves_the_previous_one(images_96, tmp_path, monkeypatch, new_vae):
    path = tmp_path / "run.keras"
    model = new_vae()
    model.fit(images_96, batch_size=32, epochs=1, verbose=0)
    save_checkpoint(model, path, {"epoch": 1})
    good = [w.copy() for w in model.get_weights()]

    model.fit(images_96, batch_size=32, epochs=1, verbose=0)  # the weights move on

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


def test_leftovers_of_a_killed_checkpoint_write_are_removed_on_the_next_start(images_96, tmp_path, new_vae):
    from companion.training.checkpoints import remove_leftovers

    path = tmp_path / "run.ckpt.keras"
    leftovers = [tmp_path / ".run.ckpt.k3j_9x2a.keras.tmp", tmp_path / ".run.ckpt.k3j_9x2a.keras", tmp_path / ".run.ckpt.zz00aa11.zip.tmp"]
    bystanders = [tmp_path / ".run.ckpt.keras", tmp_path / "other.keras", tmp_path / ".other.k3j_9x2a.keras.tmp"]
    for p in leftovers + bystanders:
        p.write_bytes(b"partial")
    model = new_vae()
    with pytest.warns(UserWarning, match="left by a checkpoint write that was interrupted"):
        model.fit(images_96, batch_size=32, epochs=1, verbose=0, callbacks=[ResumableCheckpoint(path)])
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in bystanders), "only the temporary files of this checkpoint are removed"
    assert path.is_file() and remove_leftovers(path) == []


def test_save_for_inference_drops_the_optimizer_and_keeps_the_weights(binary_images, tmp_path, small_arvae):
    binary = binary_images[0][:32]
    model = small_arvae()
    model.fit(binary, batch_size=16, epochs=1, verbose=0)
    save_checkpoint(model, tmp_path / "full.keras", {})
    save_for_inference(model, tmp_path / "slim.keras")
    slim = keras.saving.load_model(tmp_path / "slim.keras", safe_mode=True)
    assert getattr(slim, "optimizer", None) is None and not slim.compiled
    for a, b in zip(slim.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Adam keeps two moments per weight: the full file holds about three times the numbers.
    assert (tmp_path / "slim.keras").stat().st_size < 0.5 * (tmp_path / "full.keras").stat().st_size
    with zipfile.ZipFile(tmp_path / "slim.keras") as archive:  # shipped deflated; the checkpoint as Keras writes it
        assert {entry.compress_type for entry in archive.infolist()} == {zipfile.ZIP_DEFLATED}
