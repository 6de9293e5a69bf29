"""MNIST files: reading and checking the four IDX files, online or offline.

Two ways to get the data:

* online, through `keras.datasets.mnist.load_data()` (it downloads once and caches
  the file under `~/.keras/datasets`);
* offline, from a folder holding the four standard IDX files
  (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
  `t10k-labels-idx1-ubyte`), each gzip-compressed (`.gz`) or not.

`load_mnist(data_dir)` reads the folder; with no argument it reads the folder named
by the environment variable `COMPANION_MNIST_DIR`, and only when that is unset does it
download. Every file is checked: gzip integrity, magic number, header against size,
label range, image and label counts, and, for the standard files, their SHA-256.

Example:

>>> from companion import data
>>> (x_train, y_train), (x_test, y_test) = data.load_mnist("../shared/data/mnist")
>>> x_train.shape, x_train.dtype
((60000, 28, 28), dtype('uint8'))
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from companion import validation

__all__ = [
    "DATA_DIR_ENV",
    "MNISTDownloadError",
    "MNISTFormatError",
    "MNISTNotFoundError",
    "load_mnist",
    "read_idx",
    "write_idx",
]

DATA_DIR_ENV = "COMPANION_MNIST_DIR"

IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# File stems of the four standard files, by split and kind.
FILE_STEMS = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
STANDARD_COUNTS = {"train": 60000, "test": 10000}
# SHA-256 of the standard files after decompression.
STANDARD_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

_OFFLINE_HINT = (
    "To work offline, put the four MNIST IDX files (train-images-idx3-ubyte, "
    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, "
    "each optionally ending in .gz) in a folder and call "
    "load_mnist(data_dir='path/to/folder'), or set the environment variable "
    f"{DATA_DIR_ENV}=path/to/folder."
)


class MNISTNotFoundError(FileNotFoundError):
    """The data folder or one of its four files does not exist."""


class MNISTFormatError(ValueError):
    """A file exists but is not a valid IDX file of the expected kind.

    Attributes:
        path: the offending file (or files, for a mismatch between two files).
    """

    def __init__(self, path, problem):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class MNISTDownloadError(RuntimeError):
    """`keras.datasets.mnist.load_data()` failed, usually for want of a network."""


# ----------------------------------------------------------------------------- IDX files


def _read_bytes(path):
    path = Path(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as handle:
                return handle.read()
        except EOFError as exc:
            raise MNISTFormatError(
                path, f"the gzip stream is truncated (the file ends early): {exc}"
            ) from exc
        except (OSError, zlib.error) as exc:
            raise MNISTFormatError(
                path, f"not a valid gzip file, or its compressed data is corrupted: {exc}"
            ) from exc
    return path.read_bytes()


def _parse_idx(raw, path):
    """Parses the bytes of an IDX file of unsigned bytes into an array."""
    if len(raw) < 4:
        raise MNISTFormatError(
            path, f"too short to be an IDX file: {len(raw)} bytes, expected at least a 4-byte magic number"
        )
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    magic = struct.unpack(">I", raw[:4])[0]
    if zero != 0 or dtype_code != 0x08 or ndim == 0:
        raise MNISTFormatError(
            path,
            f"wrong magic number {magic} (0x{magic:08x}); an IDX file of unsigned bytes "
            f"starts with 0x000008NN, e.g. {IMAGE_MAGIC} for images or {LABEL_MAGIC} for labels",
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise MNISTFormatError(
            path,
            f"truncated header: magic {magic} announces {ndim} dimensions, so the header "
            f"needs {header_size} bytes, but the file has {len(raw)}",
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(raw) - header_size
    if found < expected:
        raise MNISTFormatError(
            path,
            f"truncated: the header announces shape {shape}, i.e. {expected} data bytes, "
            f"but only {found} follow the {header_size}-byte header",
        )
    if found > expected:
        raise MNISTFormatError(
            path,
            f"{found - expected} unexpected trailing bytes after the {expected} data bytes "
            f"announced by the header (shape {shape})",
        )
    return magic, np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx(path):
    """Reads an IDX file of unsigned bytes, gzip-compressed (`.gz`) or not.

    Args:
        path: path of the file.

    Returns:
        A read-only `uint8` NumPy array with the shape the header gives.

    Raises:
        MNISTNotFoundError: the file does not exist.
        MNISTFormatError: the file is not a well-formed IDX file of unsigned bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise MNISTNotFoundError(f"{path}: no such file")
    return _parse_idx(_read_bytes(path), path)[1]


def write_idx(path, array):
    """Writes a `uint8` array as an IDX file; gzip-compressed when `path` ends in `.gz`.

    Args:
        path: where to write.
        array: an array of dtype `uint8` with 1 to 255 dimensions.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"Expected `array` of dtype uint8. Received: array.dtype={array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"Expected `array` with 1 to 255 dimensions. Received: array.ndim={array.ndim}")
    header = struct.pack(f">HBB{array.ndim}I", 0, 0x08, array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def _find_file(data_dir, stem):
    candidates = [data_dir / stem, data_dir / f"{stem}.gz"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MNISTNotFoundError(
        f"{data_dir}: missing MNIST file {stem!r} (looked for {candidates[0].name} "
        f"and {candidates[1].name}). " + _OFFLINE_HINT
    )


def _load_file(data_dir, split, kind, verify_checksums):
    stem = FILE_STEMS[(split, kind)]
    path = _find_file(data_dir, stem)
    raw = _read_bytes(path)
    magic, array = _parse_idx(raw, path)
    if kind == "images":
        if magic != IMAGE_MAGIC:
            what = " (that of a label file)" if magic == LABEL_MAGIC else ""
            raise MNISTFormatError(
                path, f"wrong magic number {magic}{what}; an image file has {IMAGE_MAGIC}"
            )
        if array.shape[1:] != (validation.IMAGE_SIZE, validation.IMAGE_SIZE):
            raise MNISTFormatError(
                path,
                f"images of shape {array.shape[1:]}, expected ({validation.IMAGE_SIZE}, {validation.IMAGE_SIZE})",
            )
    else:
        if magic != LABEL_MAGIC:
            what = " (that of an image file)" if magic == IMAGE_MAGIC else ""
            raise MNISTFormatError(
                path, f"wrong magic number {magic}{what}; a label file has {LABEL_MAGIC}"
            )
        if array.size and array.max() >= validation.NUM_CLASSES:
            bad = int(np.argmax(array >= validation.NUM_CLASSES))
            raise MNISTFormatError(
                path,
                f"label {int(array[bad])} at index {bad} is out of range; labels are 0-{validation.NUM_CLASSES - 1}",
            )
    if verify_checksums and len(array) == STANDARD_COUNTS[split]:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != STANDARD_SHA256[stem]:
            raise MNISTFormatError(
                path,
                f"checksum mismatch: it has the size of the standard file but its SHA-256 "
                f"(after decompression) is {digest}, not {STANDARD_SHA256[stem]}; the file is "
                "corrupted or modified (pass verify_checksums=False to load it anyway)",
            )
    return path, array


def _load_from_folder(data_dir, verify_checksums):
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise MNISTNotFoundError(
            f"{data_dir}: the MNIST data folder does not exist"
            + (" (it is a file, not a folder)" if data_dir.exists() else "")
            + ". "
            + _OFFLINE_HINT
        )
    result = []
    for split in ("train", "test"):
        image_path, images = _load_file(data_dir, split, "images", verify_checksums)
        label_path, labels = _load_file(data_dir, split, "labels", verify_checksums)
        if len(images) != len(labels):
            raise MNISTFormatError(
                f"{image_path} and {label_path}",
                f"mismatched counts: {len(images)} images but {len(labels)} labels",
            )
        result.append((images, labels))
    return tuple(result)


def _load_from_keras():
    import keras  # only the online path needs it

    try:
        return keras.datasets.mnist.load_data()
    except Exception as exc:  # the download raises many kinds; all mean "no data"
        raise MNISTDownloadError(
            f"Could not download MNIST through keras.datasets.mnist.load_data() "
            f"({type(exc).__name__}: {exc}). " + _OFFLINE_HINT
        ) from exc


def load_mnist(data_dir=None, *, verify_checksums=True):
    """Loads MNIST as `uint8` arrays.

    Args:
        data_dir: a folder holding the four standard IDX files, compressed or not.
            When `None`, the folder named by the environment variable
            `COMPANION_MNIST_DIR` is used; when that is unset too, the data comes
            from `keras.datasets.mnist.load_data()` (which downloads it once).
        verify_checksums: compare each file that has the standard size with the
            SHA-256 of the standard file.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images of shape `(n, 28, 28)` and
        labels of shape `(n,)`, all `uint8`, pixel values 0-255, labels 0-9.

    Raises:
        MNISTNotFoundError: the folder or one of its files is missing.
        MNISTFormatError: a file is corrupted, truncated, of the wrong kind, or the
            image and label counts disagree.
        MNISTDownloadError: no folder was given and the download failed.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    if data_dir is None:
        (x_train, y_train), (x_test, y_test) = _load_from_keras()
    else:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(
                "Expected `data_dir` to be a path (str or os.PathLike) or None. "
                f"Received: data_dir={data_dir!r} of type {type(data_dir).__name__}"
            )
        (x_train, y_train), (x_test, y_test) = _load_from_folder(data_dir, verify_checksums)
    # Writable copies: the parsed arrays are views into immutable bytes.
    return (np.array(x_train), np.array(y_train)), (np.array(x_test), np.array(y_test))
