"""The data: MNIST, from its four IDX files or through Keras, and synthetic data.

* `companion.data.mnist`: reading and checking the IDX files, `load_mnist`;
* `companion.data.preprocess`: scaling, binarizing, reshaping and splitting images;
* `companion.data.batches`: `MNISTBatches`, the mini-batches `fit` reads on every backend;
* `companion.data.synthetic`: points on a ring of Gaussians and noisy waves, for the theory
  chapters.

The names of the first three are importable from `companion.data` itself:

>>> from companion import data
>>> (x_train, y_train), (x_test, y_test) = data.load_mnist("../shared/data/mnist")
>>> batches = data.MNISTBatches(data.scale(x_train), batch_size=128, binarize="dynamic")
"""

from companion.data.batches import MNISTBatches
from companion.data.mnist import (
    DATA_DIR_ENV,
    MNISTDownloadError,
    MNISTFormatError,
    MNISTNotFoundError,
    load_mnist,
    read_idx,
    write_idx,
)
from companion.data.preprocess import binarize_static, binarize_threshold, flatten, scale, to_images, train_val_split

__all__ = [
    "DATA_DIR_ENV",
    "MNISTBatches",
    "MNISTDownloadError",
    "MNISTFormatError",
    "MNISTNotFoundError",
    "binarize_static",
    "binarize_threshold",
    "flatten",
    "load_mnist",
    "read_idx",
    "scale",
    "to_images",
    "train_val_split",
    "write_idx",
]
