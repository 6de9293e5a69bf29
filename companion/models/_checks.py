"""Input checks shared by the models' public methods.

Every check names the argument, says what was expected and echoes what was received,
in the style of Keras's own errors.
"""

import numpy as np

IMAGE_SHAPE = (28, 28, 1)
IMAGE_PIXELS = 28 * 28


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}")
    return int(value)


def non_negative(name, value, integer=False):
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        what = "a non-negative integer" if integer else "a non-negative number"
        raise ValueError(f"Expected `{name}` to be {what}. Received: {name}={value!r}")
    return int(value) if integer else float(value)


def images(name, x, value_range=(0.0, 1.0)):
    """Checks a batch of float images and returns it as float32 `(n, 28, 28, 1)`."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0 or x[0].size != IMAGE_PIXELS or x.shape[1:] not in (
        (IMAGE_PIXELS,),
        (28, 28),
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


def labels(name, y, num_classes, n=None):
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


def batches(n, batch_size):
    """Slices that cover range(n) in chunks of `batch_size`."""
    return [slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def fit_arguments(x, kwargs):
    """`fit` keyword arguments, with Keras's batch-order shuffle off for `MNISTBatches`.

    `MNISTBatches` shuffles its examples itself, from `(seed, epoch)`; Keras would also
    permute the order of the batches with Python's global random state, which a resumed
    run cannot restore. With it off, a resumed run sees exactly the batches an
    uninterrupted one would have.
    """
    from companion.data import MNISTBatches

    if isinstance(x, MNISTBatches) and "shuffle" not in kwargs:
        kwargs = {**kwargs, "shuffle": False}
    return kwargs
