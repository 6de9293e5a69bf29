"""Callbacks for long runs: atomic, resumable checkpoints and a NaN/Inf guard.

A checkpoint is one `.keras` file: the model, its optimizer state (so Adam's moments
survive a restart), its random-number state, plus a small `progress.json` entry saying
which epoch comes next. It is written to a temporary file beside the target and then
renamed over it, so the file at `path` is always a complete checkpoint: a run killed
mid-write leaves the previous one in place.

Example:

>>> checkpoint = ResumableCheckpoint("runs/vae.keras")
>>> model.fit(batches, epochs=50, callbacks=[checkpoint, NaNGuard()])
>>> # ... later, after an interruption:
>>> model, initial_epoch = resume_training("runs/vae.keras")
>>> model.fit(MNISTBatches(x, epoch=initial_epoch), epochs=50, initial_epoch=initial_epoch,
...           callbacks=[ResumableCheckpoint("runs/vae.keras")])
"""

import json
import math
import os
import re
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import keras
import numpy as np

from companion import validation

__all__ = [
    "ELBOHistory", "GeneratorSnapshots", "NaNGuard", "ResumableCheckpoint", "read_progress", "remove_leftovers", "resume_training",
    "save_for_inference",
]

PROGRESS_ENTRY = "progress.json"


def _all_finite(arrays):
    return all(np.all(np.isfinite(a)) for a in arrays)


def _logs_finite(logs):
    return all(math.isfinite(float(v)) for v in (logs or {}).values() if np.size(v) == 1)


def save_checkpoint(model, path, progress):
    """Saves `model` and `progress` (a JSON-able dict) to `path` atomically."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Expected a checkpoint `path` ending in .keras. Received: path={str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras.tmp", dir=path.parent)
    os.close(handle)
    tmp_keras = tmp[: -len(".tmp")]  # model.save insists on the .keras suffix
    try:
        model.save(tmp_keras)
        with zipfile.ZipFile(tmp_keras, "a") as archive:
            archive.writestr(PROGRESS_ENTRY, json.dumps(progress))
        with open(tmp_keras, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp_keras, path)
    finally:
        for leftover in (tmp, tmp_keras):
            if os.path.exists(leftover):
                os.remove(leftover)


def save_for_inference(model, path, progress=None):
    """Saves `model` without its optimizer state, atomically: the form weights are shipped in.
    Returns the copy that was saved.

    Keras writes a compiled model's optimizer state into a `.keras` file (Adam's two
    moments triple its size), so the weights are copied into a fresh, uncompiled copy
    built from the model's config, and that copy is saved, its entries deflated (`deflate`).
    A model may say which config and variables its copy takes (`inference_state`: a GAN
    with a moving average ships the average as its generator).
    """
    if hasattr(model, "inference_state"):
        config, weights = model.inference_state()
    else:
        config, weights = model.get_config(), list(model.weights)
    fresh = model.__class__.from_config(config)
    if not fresh.built:
        fresh.build_from_config(model.get_build_config())
    # Variables pair up in creation order (auto-generated layer names differ between copies).
    if [tuple(v.shape) for v in fresh.weights] != [tuple(v.shape) for v in weights]:
        raise ValueError(f"Cannot copy the weights of {model.name}: a copy built from its config has other variables")
    for target, source in zip(fresh.weights, weights):
        target.assign(source)
    save_checkpoint(fresh, path, progress or {})
    deflate(path)
    return fresh


def deflate(path):
    """Rewrites the zip archive at `path` (a `.keras` file) with every entry deflated,
    atomically. Keras stores the entries uncompressed; float32 weights deflate by a few
    per cent (their exponents repeat), which is what keeps the shipped files within
    their budget. Keras reads either form."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".zip.tmp", dir=path.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
            for entry in source.infolist():
                target.writestr(entry.filename, source.read(entry.filename))
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_progress(path):
    """The progress dict stored in a checkpoint (`{"epoch": next_epoch, ...}`).

    A truncated or corrupted file raises a ValueError that names it and says what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            if PROGRESS_ENTRY not in archive.namelist():
                raise ValueError(f"{path}: not a checkpoint written by ResumableCheckpoint (no {PROGRESS_ENTRY})")
            progress = json.loads(archive.read(PROGRESS_ENTRY))
    except (zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a complete checkpoint ({type(error).__name__}: {error}); it is truncated or corrupted") from None
    if not isinstance(progress, dict) or not isinstance(progress.get("epoch"), int):
        raise ValueError(f"{path}: not a checkpoint written by ResumableCheckpoint (its {PROGRESS_ENTRY} has no epoch)")
    return progress


def remove_leftovers(path):
    """Removes the temporary files that a write of the checkpoint `path` left when it was
    killed (`save_checkpoint` writes `.NAME.*.keras[.tmp]` beside it, then renames).
    Returns the paths removed."""
    path = Path(path)
    # tempfile.mkstemp's names: the prefix, eight random characters, the suffix
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.[a-z0-9_]{{8}}\.(keras|keras\.tmp|zip\.tmp)$")
    removed = []
    if path.parent.is_dir():
        for leftover in path.parent.iterdir():
            if pattern.match(leftover.name) and leftover.is_file():
                leftover.unlink()
                removed.append(leftover)
    return removed


def resume_training(path):
    """Loads a checkpoint; returns `(model, initial_epoch)` to continue `fit` from.

    The model comes back compiled, with its optimizer state, its random-number state
    and its weights exactly as they were when the checkpoint was written.
    """
    from companion.weights import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    progress = read_progress(path)
    try:
        model = load_file(path)
    except ValueError as error:
        raise ValueError(f"{path}: not a complete checkpoint: {error}") from None
    return model, int(progress["epoch"])


class ResumableCheckpoint(keras.callbacks.Callback):
    """Writes an atomic, resumable checkpoint at the end of epochs.

    Args:
        path: the `.keras` file to (re)write.
        every_epochs: write after every this many epochs (and always after the last).
        min_interval_seconds: skip a write if the previous one is more recent than this
            (0 writes at every chosen epoch); the last epoch is always written.
        extra_progress: optional callable returning a dict stored with the epoch in the
            checkpoint's progress (the command line stores the training time).

    A checkpoint is never written from non-finite weights or losses, so the file keeps
    the last good state.
    """

    def __init__(self, path, every_epochs=1, min_interval_seconds=0.0, extra_progress=None):
        super().__init__()
        self.extra_progress = extra_progress
        self.path = Path(path)
        if self.path.suffix != ".keras":
            raise ValueError(f"Expected a checkpoint `path` ending in .keras. Received: path={str(path)!r}")
        self.every_epochs = validation.positive_int("every_epochs", every_epochs)
        self.min_interval_seconds = float(min_interval_seconds)
        self._last_write = -math.inf
        self.written = []

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs")
        for leftover in remove_leftovers(self.path):
            warnings.warn(f"Removed {leftover}, left by a checkpoint write that was interrupted")

    def on_epoch_end(self, epoch, logs=None):
        last = self._epochs is not None and epoch + 1 >= self._epochs
        due = (epoch + 1) % self.every_epochs == 0
        recent = time.monotonic() - self._last_write < self.min_interval_seconds
        if not last and (not due or recent):
            return
        if not _logs_finite(logs) or not _all_finite(self.model.get_weights()):
            warnings.warn(f"Epoch {epoch + 1}: non-finite loss or weights; checkpoint {self.path} left as it was")
            return
        progress = {"epoch": epoch + 1, "logs": {k: float(v) for k, v in (logs or {}).items() if np.size(v) == 1}}
        if self.extra_progress is not None:
            progress.update(self.extra_progress())
        save_checkpoint(self.model, self.path, progress)
        self._last_write = time.monotonic()
        self.written.append(epoch + 1)


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite logged value and restores the last good state.

    "Good" weights are snapshotted at the start of training, at the end of each epoch
    whose weights are all finite, and, with `snapshot_every=N`, every N batches. The
    optimizer's state (Adam's moments, its step count) is snapshotted and restored with
    them, so that `fit` can go on from the restored model, at a saner learning rate.

    Attributes:
        stopped: None, or a dict saying where training stopped and which value was bad.
    """

    def __init__(self, snapshot_every=None):
        super().__init__()
        self.snapshot_every = None if snapshot_every is None else validation.positive_int("snapshot_every", snapshot_every)
        self.stopped = None
        self._good = None
        self._epoch = 0

    def _optimizer_variables(self):
        optimizer = getattr(self.model, "optimizer", None)
        return list(optimizer.variables) if optimizer is not None else []

    def _snapshot(self):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()  # JAX keeps the live values outside the variables during fit
        weights = self.model.get_weights()
        optimizer_state = {v.path: np.array(v.numpy()) for v in self._optimizer_variables()}
        if _all_finite(weights) and _all_finite(optimizer_state.values()):
            self._good = (weights, optimizer_state)

    def _restore(self):
        weights, optimizer_state = self._good
        self.model.set_weights(weights)
        for variable in self._optimizer_variables():
            # A variable the optimizer made after the snapshot (it builds at the first step)
            # goes back to where every optimizer's state starts: zeros.
            variable.assign(optimizer_state.get(variable.path, np.zeros(variable.shape, variable.dtype)))

    def on_train_begin(self, logs=None):
        self._snapshot()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {k: float(v) for k, v in (logs or {}).items() if np.size(v) == 1 and not math.isfinite(float(v))}
        if bad:
            self.stopped = {"epoch": self._epoch, "batch": batch, "values": bad}
            if hasattr(self.model, "jax_state_sync"):
                self.model.jax_state_sync()
            self._restore()
            self.model.stop_training = True
            warnings.warn(
                f"NaNGuard: non-finite {bad} at epoch {self._epoch + 1}, batch {batch + 1}; "
                "training stopped and the last good weights and optimizer state restored"
            )
        elif self.snapshot_every and (batch + 1) % self.snapshot_every == 0:
            self._snapshot()

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped is None:
            self._snapshot()


class GeneratorSnapshots(keras.callbacks.Callback):
    """Keeps what a generator draws from fixed noise at chosen epochs, to watch training.

    Args:
        epochs: the epochs (counted from 1) after which to draw; 0 adds a snapshot of the
            untrained generator when training starts.
        n: samples per snapshot.
        seed: seed of the fixed noise (the same z at every snapshot).

    After `fit`, `snapshots` maps each epoch to a NumPy array of `n` samples.

    Example:

    >>> snapshots = GeneratorSnapshots(epochs=(0, 1, 5, 20), n=500)
    >>> gan.fit(x, epochs=20, callbacks=[snapshots])
    >>> snapshots.snapshots[20].shape
    """

    def __init__(self, epochs, n=500, seed=0):
        super().__init__()
        self.epochs = sorted({int(e) for e in epochs})
        if not self.epochs or self.epochs[0] < 0:
            raise ValueError(f"Expected non-negative `epochs`. Received: epochs={epochs!r}")
        self.n, self.seed = int(n), seed
        self.snapshots = {}

    def _take(self, epoch):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        self.snapshots[epoch] = self.model.generate(self.n, seed=self.seed)

    def on_train_begin(self, logs=None):
        if 0 in self.epochs and 0 not in self.snapshots:
            self._take(0)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 in self.epochs:
            self._take(epoch + 1)


class ELBOHistory(keras.callbacks.Callback):
    """Measures a VAE's negative ELBO on fixed training and test images after each epoch,
    to watch the gap between them open (overfitting) or stay shut.

    Both sets are scored with the same fixed noise (`seed`) at every epoch, so the curves
    move only because the model does. After `fit`, `history` maps `"train"` and `"test"`
    to lists of the mean negative ELBO per image (nats), one entry per epoch.

    Example:

    >>> tracker = ELBOHistory(x_train_binary[:1000], x_test_binary[:1000])
    >>> vae.fit(x_train_binary[:1000], epochs=100, callbacks=[tracker])
    >>> tracker.history["test"][-1] - tracker.history["train"][-1]   # the generalization gap
    """

    def __init__(self, x_train, x_test, seed=0):
        super().__init__()
        self.sets = {"train": np.asarray(x_train, np.float32), "test": np.asarray(x_test, np.float32)}
        self.seed = seed
        self.history = {"train": [], "test": []}

    def on_epoch_end(self, epoch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        for name, x in self.sets.items():
            self.history[name].append(float(-np.mean(self.model.elbo_terms(x, seed=self.seed)["elbo"])))
