"""Callbacks for long runs: a resumable checkpoint every few epochs, a NaN/Inf guard, and
records of what a run did.

The checkpoint files themselves (atomic writes, progress, resuming) are in
`companion.training.checkpoints`.

Example:

>>> checkpoint = ResumableCheckpoint("runs/vae.keras")
>>> model.fit(batches, epochs=50, callbacks=[checkpoint, NaNGuard()])
>>> # ... later, after an interruption:
>>> model, initial_epoch = resume_training("runs/vae.keras")
>>> model.fit(MNISTBatches(x, epoch=initial_epoch), epochs=50, initial_epoch=initial_epoch,
...           callbacks=[ResumableCheckpoint("runs/vae.keras")])
"""

import math
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from companion import validation
from companion.training.checkpoints import remove_leftovers, save_checkpoint

__all__ = ["ELBOHistory", "GeneratorSnapshots", "NaNGuard", "ResumableCheckpoint"]


def _all_finite(arrays):
    return all(np.all(np.isfinite(a)) for a in arrays)


def _logs_finite(logs):
    return all(math.isfinite(float(v)) for v in (logs or {}).values() if np.size(v) == 1)


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
