"""Input checks for the whole package: one place for what a valid argument is.

Every public entry point checks its arguments here before any work starts. Each check
names the argument, says what was expected and echoes what was received, in the style of
Keras's own errors, and returns the value in the form the caller needs:

>>> validation.positive_int("batch_size", 0)
ValueError: Expected `batch_size` to be a positive integer. Received: batch_size=0

The shapes of the data are defined here once: MNIST's 28x28 one-channel images
(`IMAGE_SHAPE`, `IMAGE_PIXELS`) and its ten classes (`NUM_CLASSES`).
"""

import math
import numpy as np

__all__ = [
    "IMAGE_SIZE", "IMAGE_SHAPE", "IMAGE_PIXELS", "NUM_CLASSES", "positive_int", "non_negative", "number", "seed", "one_of",
    "images", "labels", "labels_for", "latents",
]

IMAGE_SIZE = 28  # MNIST images are IMAGE_SIZE x IMAGE_SIZE pixels
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
IMAGE_PIXELS = IMAGE_SIZE * IMAGE_SIZE
NUM_CLASSES = 10


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(name, value):
    """`value` as an int >= 1."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
    return int(value)


def non_negative(name, value, integer=False):
    """`value` as an int (or a finite float) >= 0."""
    if integer:
        ok = _is_int(value) and value >= 0
    else:
        ok = (_is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(value) and value >= 0
    if not ok:
        what = "a non-negative integer" if integer else "a finite non-negative number"
        raise ValueError(f"Expected `{name}` to be {what}. Received: {name}={value!r}")
    return int(value) if integer else float(value)


def number(name, value, low=None, high=None, low_open=False, high_open=False):
    """`value` as a finite float in the interval from `low` to `high` (closed unless `*_open`)."""
    is_number = (_is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(value)
    inside = is_number and (
        (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    )
    if not inside:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        where = f" {' and '.join(bounds)}" if bounds else ""
        raise ValueError(f"Expected `{name}` to be a finite number{where}. Received: {name}={value!r}")
    return float(value)


def seed(name, value):
    """A seed: None (fresh randomness) or a non-negative integer."""
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise ValueError(f"Expected `{name}` to be None or a non-negative integer. Received: {name}={value!r}")
    return int(value)


def one_of(name, value, choices):
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {tuple(choices)}. Received: {name}={value!r}")
    return value


def images(name, x, value_range=(0.0, 1.0)):
    """Checks a batch of float images and returns it as float32 `(n, 28, 28, 1)`."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0 or x[0].size != IMAGE_PIXELS or x.shape[1:] not in (
        (IMAGE_PIXELS,),
        (IMAGE_SIZE, IMAGE_SIZE),
        IMAGE_SHAPE,
    ):
        raise ValueError(
            f"Expected `{name}` to be a non-empty batch of 28x28 images, shape (n, 28, 28), "
            f"(n, 28, 28, 1) or (n, 784). Received: {name}.shape={x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"Expected `{name}` of a float dtype with values in [{value_range[0]:g}, "
            f"{value_range[1]:g}] (scale uint8 images with companion.data.scale). "
            f"Received: {name}.dtype={x.dtype}"
        )
    low, high = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(low) and np.isfinite(high)) or low < value_range[0] or high > value_range[1]:
        raise ValueError(
            f"Expected `{name}` with values in [{value_range[0]:g}, {value_range[1]:g}]. "
            f"Received values in [{low:g}, {high:g}]"
        )
    return x.reshape((len(x), *IMAGE_SHAPE)).astype("float32", copy=False)


def labels(name, y, num_classes=NUM_CLASSES, n=None):
    """Checks integer class labels in [0, num_classes) and returns them as int32 `(n,)`."""
    y = np.asarray(y)
    if y.ndim != 1 or (n is not None and len(y) != n):
        expected = f"({n},)" if n is not None else "(n,)"
        raise ValueError(f"Expected `{name}` of shape {expected}, one label per example. Received: {name}.shape={y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)):
            raise TypeError(f"Expected integer `{name}`. Received: {name}.dtype={y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"Expected `{name}` in [0, {num_classes - 1}]. Received values in [{y.min()}, {y.max()}]"
        )
    return y.astype("int32")


def labels_for(model, y, n, per="image"):
    """The checked labels of a conditional model, or None for an unconditional one."""
    if model.conditional:
        if y is None:
            raise ValueError(f"{type(model).__name__} needs `labels`, one per {per}. Received: labels=None")
        return labels("labels", y, model.num_classes, n=n)
    if y is not None:
        raise ValueError(f"{type(model).__name__} is not conditional: pass labels=None")
    return None


def latents(name, z, latent_dim):
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != latent_dim or len(z) == 0:
        raise ValueError(f"Expected `{name}` of shape (n, {latent_dim}). Received: {name}.shape={z.shape}")
    if not np.issubdtype(z.dtype, np.floating) or not np.all(np.isfinite(z)):
        raise ValueError(f"Expected finite float `{name}`. Received: {name}.dtype={z.dtype}")
    return z.astype("float32", copy=False)
