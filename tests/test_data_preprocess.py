"""Tests of companion.data.preprocess: scaling, binarizing, reshaping and splitting images."""

import numpy as np
import pytest

from companion import data


def test_scale():
    x = np.array([[0, 51, 255]], np.uint8)
    scaled = data.scale(x)
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, np.array([[0.0, 0.2, 1.0]], np.float32))
    with pytest.raises(TypeError, match=r"Received: images.dtype=float32"):
        data.scale(scaled)


def test_binarize_threshold():
    x = np.array([[0, 127, 128, 255]], np.uint8)
    assert data.binarize_threshold(x).tolist() == [[0.0, 0.0, 1.0, 1.0]]
    with pytest.raises(ValueError, match=r"Received: threshold=1.5"):
        data.binarize_threshold(x, threshold=1.5)


def test_binarize_static_is_seeded_and_unbiased(mnist):
    x = mnist[0][0][:20000]
    a, b, c = data.binarize_static(x, seed=3), data.binarize_static(x, seed=3), data.binarize_static(x, seed=4)
    assert set(np.unique(a).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    # Each pixel is a Bernoulli(p) draw, so the mean of N draws has standard deviation at
    # most 0.5 / sqrt(N); five of those bound the deviation from the mean intensity.
    n = a.size
    assert abs(a.mean() - data.scale(x).mean()) < 5 * 0.5 / np.sqrt(n)
    # Pure black and pure white pixels are never flipped.
    assert (a[x == 0] == 0).all() and (a[x == 255] == 1).all()


def test_binarize_rejects_floats_outside_unit_interval():
    with pytest.raises(ValueError, match=r"values in \[0, 1\]. Received values in \[255, 255\]"):
        data.binarize_static(np.full((2, 28, 28), 255.0))


def test_flatten_and_to_images():
    x = np.arange(2 * 784).reshape(2, 28, 28)
    flat = data.flatten(x)
    assert flat.shape == (2, 784)
    assert data.to_images(flat).shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(data.to_images(flat, channels=False), x)
    np.testing.assert_array_equal(data.flatten(data.to_images(flat)), flat)
    with pytest.raises(ValueError, match=r"784 pixels each .* Received: images.shape=\(2, 27, 27\)"):
        data.flatten(np.zeros((2, 27, 27)))


def test_train_val_split():
    x, y = np.arange(100) * 10, np.arange(100)
    (x_tr, y_tr), (x_va, y_va) = data.train_val_split(x, y, val_size=20, seed=1)
    assert len(x_va) == 20 and len(x_tr) == 80
    np.testing.assert_array_equal(x_tr, y_tr * 10)  # pairs stay together
    assert sorted(np.concatenate([y_tr, y_va]).tolist()) == list(range(100))
    (_, same), _ = data.train_val_split(x, y, val_size=20, seed=1)
    (_, other), _ = data.train_val_split(x, y, val_size=20, seed=2)
    np.testing.assert_array_equal(same, y_tr)
    assert (other != y_tr).any()
    (_, none), (_, _) = data.train_val_split(x, val_size=0.25)
    assert none is None
    with pytest.raises(ValueError, match=r"Received: val_size=100"):
        data.train_val_split(x, val_size=100)
    with pytest.raises(ValueError, match=r"Received: len\(x\)=100, len\(y\)=3"):
        data.train_val_split(x, np.arange(3))
