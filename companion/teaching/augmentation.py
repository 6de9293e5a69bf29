"""Does generated data help a classifier that has few labels? The experiment of chapter 7.

A classifier is trained on a balanced subset of `n` labelled MNIST images, in one of
four ways, always for the same number of gradient steps:

* `none`: the labelled images alone;
* `classical`: plus copies randomly shifted (up to 2 pixels) and rotated (up to 15 degrees);
* `generated`: plus samples of a conditional VAE trained on the same labelled images only
  (the generator never sees an image the classifier may not see);
* `both`: plus both kinds of extra images, half as many of each.

Test accuracy on the full MNIST test set is the measure; the experiment repeats over
seeds, since with 100 labels one seed's subset decides much.

Example:

>>> rows = augmentation_experiment(x_train, y_train, x_test, y_test, sizes=(100,), seeds=(0,))
>>> summarize(rows)  # {(100, "none"): (mean, std, runs), ...}
"""

import keras
import numpy as np
from keras import layers
from scipy import ndimage

from companion import data, validation

__all__ = [
    "METHODS",
    "augmentation_experiment",
    "balanced_subset",
    "build_small_classifier",
    "generated_examples",
    "shift_rotate",
    "summarize",
    "train_and_test",
]

METHODS = ("none", "classical", "generated", "both")


def balanced_subset(x, y, n, seed=0):
    """`n // 10` images of each digit, drawn at random: `(x_subset, y_subset)`."""
    y = validation.labels("y", y, 10, n=len(x))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 10 or n % 10:
        raise ValueError(f"Expected `n` to be a positive multiple of 10 (the same count per digit). Received: n={n!r}")
    rng = np.random.default_rng(validation.seed("seed", seed))
    per_class = n // 10
    picks = []
    for digit in range(10):
        where = np.flatnonzero(y == digit)
        if len(where) < per_class:
            raise ValueError(f"Expected at least {per_class} images of digit {digit}. Received: {len(where)}")
        picks.append(rng.choice(where, per_class, replace=False))
    index = rng.permutation(np.concatenate(picks))
    return x[index], y[index]


def shift_rotate(images, copies=1, max_shift=2.0, max_degrees=15.0, seed=0):
    """`copies` randomly shifted and rotated versions of each image, in order: image 0's
    copies first. Images `(n, 28, 28)` or `(n, 28, 28, 1)`, floats in [0, 1]; returns
    `(n * copies, 28, 28, 1)` float32, clipped to [0, 1]."""
    images = validation.images("images", images)[..., 0]
    copies = validation.positive_int("copies", copies)
    rng = np.random.default_rng(validation.seed("seed", seed))
    out = np.empty((len(images) * copies, 28, 28), np.float32)
    for i, image in enumerate(np.repeat(images, copies, axis=0)):
        angle = rng.uniform(-max_degrees, max_degrees)
        rotated = ndimage.rotate(image, angle, reshape=False, order=1, mode="constant")
        out[i] = ndimage.shift(rotated, rng.uniform(-max_shift, max_shift, 2), order=1, mode="constant")
    return np.clip(out, 0.0, 1.0)[..., None]


def _epochs_of(n, total, seed):
    """`total` indices into `n` examples: shuffled passes over all of them, one after
    another, so that a few small examples make one long epoch (Keras's per-epoch overhead
    would otherwise dominate hundreds of tiny epochs)."""
    rng = np.random.default_rng(validation.seed("seed", seed))
    passes = -(-total // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[:total]


def generated_examples(x, y, copies, seed=0, steps=1500, batch_size=32, latent_dim=4):
    """Trains a small conditional VAE on `(x, y)` only, then draws `copies` images per
    labelled image with the same label distribution: `(images, labels)`.

    The images are the decoder's pixel probabilities (grey levels), as a classifier
    would be shown them.
    """
    from companion.models import ConditionalVAE

    x = validation.images("x", x)
    y = validation.labels("y", y, 10, n=len(x))
    keras.utils.set_random_seed(seed)
    vae = ConditionalVAE(latent_dim=latent_dim, hidden_units=(256, 128), seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    order = _epochs_of(len(x), steps * batch_size, seed)
    batches = data.MNISTBatches(
        x[order], y[order], batch_size=batch_size, shuffle=False, binarize="dynamic", labels_as_input=True, seed=seed
    )
    vae.fit(batches, epochs=1, verbose=0)
    labels = np.repeat(y, validation.positive_int("copies", copies))
    return vae.generate(len(labels), labels=labels, seed=seed + 1), labels


def build_small_classifier(seed=None):
    """Conv 16 / pool / Conv 32 / pool / Dense 64 / Dense 10 logits: a classifier that
    trains in seconds, without built-in augmentation (the experiment controls that)."""
    images = keras.Input((28, 28, 1), name="images")
    h = images
    for filters in (16, 32):
        h = layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = layers.MaxPooling2D()(h)
    h = layers.Dense(64, activation="relu")(layers.Flatten()(h))
    h = layers.Dropout(0.5, seed=seed)(h)
    return keras.Model(images, layers.Dense(10, name="logits")(h), name="small_classifier")


def train_and_test(x, y, x_test, y_test, steps=400, batch_size=64, seed=0):
    """Trains `build_small_classifier` for `steps` steps on `(x, y)`; returns its test accuracy."""
    x = validation.images("x", x)
    y = validation.labels("y", y, 10, n=len(x))
    keras.utils.set_random_seed(seed)
    model = build_small_classifier(seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    order = _epochs_of(len(x), steps * batch_size, seed)
    model.fit(x[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return float(model.evaluate(validation.images("x_test", x_test), y_test, batch_size=1000, verbose=0)[1])


def augmentation_experiment(
    x_train, y_train, x_test, y_test, sizes=(100, 1000), seeds=(0, 1, 2), methods=METHODS,
    copies=10, steps=400, generator_steps=1500, progress=True,
):
    """Runs every (size, seed, method) and returns one dict per run:
    `{"labelled", "seed", "method", "train_images", "accuracy"}`.

    `x_train` in [0, 1]; each seed draws its own labelled subset. `copies` extra images
    per labelled image for `classical` and `generated` (`copies // 2` of each for `both`).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Expected `methods` among {METHODS}. Received: methods={tuple(methods)!r}")
    runs = [(n, seed) for n in sizes for seed in seeds]
    rows = []
    bar = keras.utils.Progbar(len(runs) * len(methods), unit_name="run") if progress else None
    for n, seed in runs:
        x, y = balanced_subset(x_train, y_train, n, seed=seed)
        x = x.reshape(-1, 28, 28, 1).astype("float32")
        extra = {}
        for method in methods:
            if method == "none":
                xs, ys = x, y
            else:
                half = copies if method != "both" else max(1, copies // 2)
                parts_x, parts_y = [x], [y]
                if method in ("classical", "both"):
                    parts_x.append(shift_rotate(x, half, seed=seed))
                    parts_y.append(np.repeat(y, half))
                if method in ("generated", "both"):
                    if half not in extra:
                        extra[half] = generated_examples(x, y, half, seed=seed, steps=generator_steps)
                    parts_x.append(extra[half][0])
                    parts_y.append(extra[half][1])
                xs, ys = np.concatenate(parts_x), np.concatenate(parts_y)
            accuracy = train_and_test(xs, ys, x_test, y_test, steps=steps, seed=seed)
            rows.append({"labelled": n, "seed": seed, "method": method, "train_images": len(xs), "accuracy": accuracy})
            if bar is not None:
                bar.add(1)
    return rows


def summarize(rows):
    """`{(labelled, method): (mean accuracy, standard deviation over seeds, runs)}`."""
    groups = {}
    for row in rows:
        groups.setdefault((row["labelled"], row["method"]), []).append(row["accuracy"])
    return {key: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"), len(v)) for key, v in groups.items()}
