"""Mini-batches of MNIST for `model.fit`, the same on every backend and after a resume."""

from __future__ import annotations

import keras
import numpy as np

from companion import validation
from companion.data.preprocess import _as_probabilities

__all__ = ["MNISTBatches"]


class MNISTBatches(keras.utils.PyDataset):
    """Mini-batches of images (and labels) that `model.fit` reads on every backend.

    Each epoch has its own shuffle order and, with `binarize="dynamic"`, its own
    Bernoulli draw of every pixel; both depend only on `(seed, epoch)`, so a run
    is repeatable and an interrupted run resumes with the same data by passing the
    next epoch as `epoch=`. `epoch` names the epoch being served; it moves on at
    the first `on_epoch_end` or `on_epoch_begin` after every batch has been served.

    Args:
        x: images, `uint8` 0-255 or float in [0, 1], of any shape `(n, ...)`.
        y: optional labels `(n,)`; batches are then `(x_batch, y_batch)` tuples.
        batch_size: examples per batch.
        shuffle: draw a new order every epoch.
        binarize: `None` (intensities in [0, 1]) or `"dynamic"` (pixels in {0, 1},
            drawn anew every epoch with probability equal to the intensity).
        drop_remainder: drop the last, smaller batch.
        labels_as_input: yield `((x_batch, y_batch),)`, so that `fit` passes the pair as
            the model's input (conditional VAEs) rather than as input and target.
        seed: seed of the shuffle and the binarization.
        epoch: the epoch to start from (to resume a run).
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` for
            `keras.utils.PyDataset`.

    Example:

    >>> batches = MNISTBatches(x_train, batch_size=128, binarize="dynamic", seed=1)
    >>> model.fit(batches, epochs=10)
    """

    def __init__(
        self,
        x,
        y=None,
        batch_size=128,
        shuffle=True,
        binarize=None,
        drop_remainder=False,
        labels_as_input=False,
        seed=0,
        epoch=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.x = _as_probabilities(x, "x")
        if y is not None:
            y = validation.labels("y", y, n=len(self.x))
        self.y = y
        if labels_as_input and y is None:
            raise ValueError("Expected labels `y` with labels_as_input=True. Received: y=None")
        self.labels_as_input = labels_as_input
        batch_size = validation.positive_int("batch_size", batch_size)
        if drop_remainder and batch_size > len(self.x):
            raise ValueError(
                f"Expected `batch_size` <= the number of examples ({len(self.x)}) with "
                f"drop_remainder=True. Received: batch_size={batch_size}"
            )
        if binarize not in (None, "dynamic"):
            raise ValueError(f"Expected `binarize` to be None or 'dynamic'. Received: binarize={binarize!r}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.binarize = binarize
        self.drop_remainder = drop_remainder
        self.seed = validation.non_negative("seed", seed, integer=True)
        self.epoch = validation.non_negative("epoch", epoch, integer=True)
        self._served = set()
        self._order = self._make_order()

    def _make_order(self):
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self):
        full, rest = divmod(len(self.x), self.batch_size)
        return full if (self.drop_remainder or rest == 0) else full + 1

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} out of range for {len(self)} batches")
        self._served.add(index)
        idx = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        x = self.x[idx]
        if self.binarize == "dynamic":
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            x = (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
        if self.y is None:
            return x
        if self.labels_as_input:
            return ((x, self.y[idx]),)
        return x, self.y[idx]

    def _next_epoch_if_served(self):
        # Keras calls these hooks more often than once per epoch (a symbolic build
        # fetches one batch first, and resetting an iterator ends an epoch), so the
        # epoch moves on only once every batch of the current one has been served.
        if len(self._served) == len(self):
            self.epoch += 1
            self._order = self._make_order()
            self._served.clear()

    def on_epoch_begin(self):
        self._next_epoch_if_served()

    def on_epoch_end(self):
        self._next_epoch_if_served()
