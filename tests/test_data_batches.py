"""Tests of companion.data.batches: `MNISTBatches`, the mini-batches `fit` reads on every backend."""

import numpy as np
import pytest

from companion import data
from companion.data import MNISTBatches


def test_batches_cover_every_example_once_per_epoch():
    x = np.arange(10 * 4, dtype=np.float32).reshape(10, 4) / 40
    batches = MNISTBatches(x, np.arange(10), batch_size=4, seed=0)
    assert len(batches) == 3
    assert len(MNISTBatches(x, batch_size=4, drop_remainder=True)) == 2
    epochs = []
    for _ in range(2):
        labels = np.concatenate([batches[i][1] for i in range(len(batches))])
        assert sorted(labels.tolist()) == list(range(10))
        epochs.append(labels)
        batches.on_epoch_end()
    assert batches.epoch == 2
    assert (epochs[0] != epochs[1]).any(), "each epoch should have its own order"
    assert batches[0][0].shape == (4, 4) and batches[2][0].shape == (2, 4)
    with pytest.raises(IndexError):
        batches[3]


def test_dynamic_binarization_redraws_each_epoch_and_resumes():
    x = np.full((64, 28, 28), 128, np.uint8)
    batches = MNISTBatches(x, batch_size=64, shuffle=False, binarize="dynamic", seed=5)
    first = batches[0]
    assert set(np.unique(first).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(first, batches[0])  # same (seed, epoch, batch): same draw
    batches.on_epoch_begin()  # one batch of one: the epoch was served in full
    assert batches.epoch == 1
    batches.on_epoch_end()  # nothing served yet in epoch 1: it stays
    assert batches.epoch == 1
    second = batches[0]
    assert (first != second).any()
    resumed = MNISTBatches(x, batch_size=64, shuffle=False, binarize="dynamic", seed=5, epoch=1)
    np.testing.assert_array_equal(resumed[0], second)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, r"positive integer. Received: batch_size=0"),
        ({"binarize": "static"}, r"Received: binarize='static'"),
        ({"y": np.zeros(3)}, r"Expected `y` of shape \(8,\).*Received: y.shape=\(3,\)"),
        ({"batch_size": 9, "drop_remainder": True}, r"Received: batch_size=9"),
    ],
)
def test_batches_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MNISTBatches(np.zeros((8, 28, 28), np.uint8), **kwargs)


def test_batches_reject_images_of_wrong_dtype():
    with pytest.raises(TypeError, match=r"Received: x.dtype=int64"):
        MNISTBatches(np.zeros((8, 28, 28), np.int64))


@pytest.mark.backend
def test_batches_feed_model_fit(mnist):
    """A small classifier learns from MNISTBatches through model.fit on the active backend."""
    import os

    import keras

    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = mnist
    batches = MNISTBatches(x_train[:3000], y_train[:3000], batch_size=100, binarize="dynamic", seed=0)
    model = keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(batches, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert batches.epoch == 3, "after serving epochs 0, 1 and 2 in full, the next is 3"
    # Chance is 10%; a linear model on 3,000 digits alone reaches about 85%.
    _, accuracy = model.evaluate(data.binarize_threshold(x_test[:2000]), y_test[:2000], verbose=0)
    assert accuracy > 0.8
