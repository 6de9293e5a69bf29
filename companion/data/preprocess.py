"""Preprocessing of MNIST images: scaling, binarizing, reshaping, splitting.

Images come as `uint8` 0-255 (what `load_mnist` returns) or as floats in [0, 1]; each
function says which it takes.
"""

from __future__ import annotations

import numpy as np

from companion import validation

__all__ = ["binarize_static", "binarize_threshold", "flatten", "scale", "to_images", "train_val_split"]

def _check_images(images, name="images"):
    images = np.asarray(images)
    if images.ndim < 2 or images.shape[0] == 0:
        raise ValueError(
            f"Expected `{name}` to be a non-empty batch of images, shape (n, 28, 28), "
            f"(n, 28, 28, 1) or (n, 784). Received: {name}.shape={images.shape}"
        )
    return images


def _as_probabilities(images, name="images"):
    """uint8 images are scaled; float images must already lie in [0, 1]."""
    images = _check_images(images, name)
    if images.dtype == np.uint8:
        return scale(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"Expected `{name}` of dtype uint8 (0-255) or float (0-1). "
            f"Received: {name}.dtype={images.dtype}"
        )
    bad = int(np.size(images) - np.count_nonzero(np.isfinite(images)))
    if bad:
        raise ValueError(f"Expected float `{name}` with finite values in [0, 1]. Received {bad:,} values that are nan or inf")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"Expected float `{name}` with values in [0, 1]. "
            f"Received values in [{low:g}, {high:g}]; call scale() on uint8 images first"
        )
    return images.astype(np.float32, copy=False)


def scale(images):
    """Scales `uint8` pixel values 0-255 to `float32` values in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(
            f"Expected `images` of dtype uint8 (pixel values 0-255). Received: images.dtype={images.dtype}"
        )
    return images.astype(np.float32) / np.float32(255.0)


def binarize_threshold(images, threshold=0.5):
    """Sets each pixel to 1 where its intensity in [0, 1] exceeds `threshold`, else 0."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"Expected `threshold` in [0, 1). Received: threshold={threshold}")
    return (_as_probabilities(images) > threshold).astype(np.float32)


def binarize_static(images, seed=0):
    """Static binarization: one Bernoulli draw per pixel, fixed once by `seed`.

    Each pixel becomes 1 with probability equal to its intensity in [0, 1]. Drawn
    once, the binary data set stays the same for the whole of training (compare
    `MNISTBatches(binarize="dynamic")`, which draws anew every epoch).
    """
    probs = _as_probabilities(images)
    rng = np.random.default_rng(validation.seed("seed", seed))
    return (rng.random(probs.shape, dtype=np.float32) < probs).astype(np.float32)


def flatten(images):
    """Reshapes images `(n, 28, 28)` or `(n, 28, 28, 1)` to vectors `(n, 784)`."""
    images = _check_images(images)
    size = validation.IMAGE_SIZE * validation.IMAGE_SIZE
    if images[0].size != size:
        raise ValueError(
            f"Expected `images` of {size} pixels each (28 x 28). Received: images.shape={images.shape}"
        )
    return images.reshape(len(images), size)


def to_images(x, channels=True):
    """Reshapes vectors `(n, 784)` (or images) to `(n, 28, 28, 1)`, or `(n, 28, 28)`
    when `channels=False`."""
    flat = flatten(x)
    shape = (validation.IMAGE_SIZE, validation.IMAGE_SIZE, 1) if channels else (validation.IMAGE_SIZE, validation.IMAGE_SIZE)
    return flat.reshape((len(flat), *shape))


def train_val_split(x, y=None, val_size=5000, seed=0):
    """Splits off a random validation set, the same one for the same `seed`.

    Args:
        x: array whose first axis indexes examples.
        y: optional labels, split alongside `x`.
        val_size: number of validation examples (an int), or a fraction in (0, 1).
        seed: seed of the permutation.

    Returns:
        `(x_train, y_train), (x_val, y_val)`, with `y_*` None when `y` is None.
    """
    x = np.asarray(x)
    n = len(x)
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(
                f"Expected `x` and `y` of the same length. Received: len(x)={n}, len(y)={len(y)}"
            )
    if isinstance(val_size, float):
        if not 0.0 < val_size < 1.0:
            raise ValueError(f"Expected a fractional `val_size` in (0, 1). Received: val_size={val_size}")
        val_size = int(round(val_size * n))
    if not isinstance(val_size, (int, np.integer)) or not 0 < val_size < n:
        raise ValueError(
            f"Expected `val_size` to be an integer in [1, {n - 1}] or a fraction in (0, 1). "
            f"Received: val_size={val_size!r}"
        )
    order = np.random.default_rng(validation.seed("seed", seed)).permutation(n)
    train_idx, val_idx = np.sort(order[val_size:]), np.sort(order[:val_size])
    pick = (lambda a, idx: None if a is None else a[idx])
    return (x[train_idx], pick(y, train_idx)), (x[val_idx], pick(y, val_idx))

