"""Tests of companion.data.mnist: the real MNIST files, synthetic IDX files, every malformed case,
and the download path."""

import gzip
import shutil
import struct

import keras
import numpy as np
import pytest

from companion import data
from companion.data import MNISTDownloadError, MNISTFormatError, MNISTNotFoundError, load_mnist


# From ../shared/data/mnist/README.md.
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MEAN_TRAIN_PIXEL = 33.318  # given to 3 decimals

STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(magic, shape, payload):
    """An IDX file built by hand with struct, independently of companion.data.write_idx."""
    return struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape) + bytes(payload)


def write_file(folder, stem, content, compress):
    path = folder / (stem + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def make_mnist_folder(folder, n_train=7, n_test=5, compress=True, seed=0):
    """Writes a small, valid MNIST-like folder; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        magic = 2051 if name.endswith("images") else 2049
        write_file(folder, STEMS[name], idx_bytes(magic, array.shape, array.tobytes()), compress)
    return arrays


# ------------------------------------------------------------------- real files


def test_load_mnist_real_files_basics(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
    assert x_train.min() == 0 and x_train.max() == 255


def test_load_mnist_real_files_statistics(mnist):
    (x_train, y_train), (_, y_test) = mnist
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_LABEL_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_LABEL_COUNTS
    # The README gives the mean to 3 decimals, so it is within half a unit of the last digit.
    assert abs(x_train.mean(dtype=np.float64) - MEAN_TRAIN_PIXEL) <= 0.0005


def test_load_mnist_reads_folder_from_environment(mnist, mnist_dir, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(mnist_dir))
    (x_train, _), (_, y_test) = load_mnist()
    np.testing.assert_array_equal(x_train, mnist[0][0])
    np.testing.assert_array_equal(y_test, mnist[1][1])


def test_load_mnist_uncompressed_files_give_the_same_arrays(mnist, mnist_dir, tmp_path):
    for gz_path in mnist_dir.glob("*-ubyte.gz"):
        with gzip.open(gz_path, "rb") as src, open(tmp_path / gz_path.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    for got, expected in zip((x_train, y_train, x_test, y_test), (*mnist[0], *mnist[1])):
        np.testing.assert_array_equal(got, expected)


def test_load_mnist_returns_writable_arrays(mnist):
    (x_train, _), _ = mnist
    assert x_train.flags.writeable


def test_standard_file_with_changed_content_fails_checksum(mnist_dir, tmp_path):
    for path in mnist_dir.glob("*-ubyte.gz"):
        shutil.copy(path, tmp_path / path.name)
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz", "rb") as handle:
        raw = bytearray(handle.read())
    raw[8] = (raw[8] + 1) % 10  # the first label, still a valid digit
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(MNISTFormatError, match=r"t10k-labels-idx1-ubyte\.gz: checksum mismatch"):
        load_mnist(tmp_path)
    # The check can be turned off, and then the modified label is what comes back.
    _, (_, y_test) = load_mnist(tmp_path, verify_checksums=False)
    assert y_test[0] == raw[8]


# -------------------------------------------------------------- synthetic files


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_load_mnist_synthetic_folder_round_trips(tmp_path, compress):
    arrays = make_mnist_folder(tmp_path, compress=compress)
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path)
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(x_test, arrays["test_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gzip"])
@pytest.mark.parametrize("shape", [(3,), (2, 4), (2, 3, 5)])
def test_write_idx_read_idx_round_trip(tmp_path, suffix, shape):
    array = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
    path = tmp_path / f"file-idx{len(shape)}-ubyte{suffix}"
    data.write_idx(path, array)
    np.testing.assert_array_equal(data.read_idx(path), array)
    raw = gzip.decompress(path.read_bytes()) if suffix else path.read_bytes()
    assert raw == idx_bytes(0x800 + len(shape), shape, array.tobytes())


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(ValueError, match=r"`array` of dtype uint8. Received: array.dtype=float64"):
        data.write_idx(tmp_path / "x", np.zeros(3))


# -------------------------------------------------------------- malformed input


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(MNISTNotFoundError, match=r"nowhere: the MNIST data folder does not exist.*COMPANION_MNIST_DIR"):
        load_mnist(missing)


def test_folder_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(MNISTNotFoundError, match=r"it is a file, not a folder"):
        load_mnist(tmp_path / "afile")


@pytest.mark.parametrize("name", list(STEMS))
def test_missing_file(tmp_path, name):
    make_mnist_folder(tmp_path)
    (tmp_path / (STEMS[name] + ".gz")).unlink()
    with pytest.raises(MNISTNotFoundError, match=rf"missing MNIST file '{STEMS[name]}'"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_truncated_data(tmp_path, compress):
    make_mnist_folder(tmp_path, compress=compress)
    images = np.zeros((7, 28, 28), np.uint8)
    content = idx_bytes(2051, images.shape, images.tobytes())[:-100]
    write_file(tmp_path, STEMS["train_images"], content, compress)
    with pytest.raises(MNISTFormatError, match=r"train-images-idx3-ubyte(\.gz)?: truncated: .* only 5388 follow"):
        load_mnist(tmp_path)


def test_truncated_header(tmp_path):
    make_mnist_folder(tmp_path, compress=False)
    write_file(tmp_path, STEMS["test_labels"], struct.pack(">I", 2049) + b"\x00\x00", False)
    with pytest.raises(MNISTFormatError, match=r"t10k-labels-idx1-ubyte: truncated header"):
        load_mnist(tmp_path)


def test_trailing_bytes(tmp_path):
    make_mnist_folder(tmp_path, compress=False)
    labels = np.zeros(7, np.uint8)
    write_file(tmp_path, STEMS["train_labels"], idx_bytes(2049, (7,), labels.tobytes()) + b"junk", False)
    with pytest.raises(MNISTFormatError, match=r"train-labels-idx1-ubyte: 4 unexpected trailing bytes"):
        load_mnist(tmp_path)


def test_truncated_gzip_stream(tmp_path):
    make_mnist_folder(tmp_path)
    path = tmp_path / (STEMS["train_images"] + ".gz")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(MNISTFormatError, match=r"train-images-idx3-ubyte\.gz: the gzip stream is truncated"):
        load_mnist(tmp_path)


def test_corrupted_gzip_stream(tmp_path):
    make_mnist_folder(tmp_path)
    path = tmp_path / (STEMS["test_images"] + ".gz")
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 8] = bytes(b ^ 0xFF for b in content[middle : middle + 8])
    path.write_bytes(bytes(content))
    with pytest.raises(MNISTFormatError, match=r"t10k-images-idx3-ubyte\.gz: not a valid gzip file"):
        load_mnist(tmp_path)


def test_file_named_gz_that_is_not_gzip(tmp_path):
    make_mnist_folder(tmp_path)
    labels = np.zeros(5, np.uint8)
    (tmp_path / (STEMS["test_labels"] + ".gz")).write_bytes(idx_bytes(2049, (5,), labels.tobytes()))
    with pytest.raises(MNISTFormatError, match=r"t10k-labels-idx1-ubyte\.gz: not a valid gzip file"):
        load_mnist(tmp_path)


def test_label_file_in_place_of_image_file(tmp_path):
    make_mnist_folder(tmp_path)
    labels = np.zeros(7, np.uint8)
    write_file(tmp_path, STEMS["train_images"], idx_bytes(2049, (7,), labels.tobytes()), True)
    with pytest.raises(MNISTFormatError, match=r"wrong magic number 2049 \(that of a label file\); an image file has 2051"):
        load_mnist(tmp_path)


def test_image_file_in_place_of_label_file(tmp_path):
    make_mnist_folder(tmp_path)
    images = np.zeros((5, 28, 28), np.uint8)
    write_file(tmp_path, STEMS["test_labels"], idx_bytes(2051, images.shape, images.tobytes()), True)
    with pytest.raises(MNISTFormatError, match=r"t10k-labels-idx1-ubyte\.gz: wrong magic number 2051 \(that of an image file\)"):
        load_mnist(tmp_path)


def test_magic_number_of_no_idx_file(tmp_path):
    make_mnist_folder(tmp_path)
    write_file(tmp_path, STEMS["train_labels"], b"PK\x03\x04" + bytes(20), True)
    with pytest.raises(MNISTFormatError, match=r"train-labels-idx1-ubyte\.gz: wrong magic number 1347093252 \(0x504b0304\)"):
        load_mnist(tmp_path)


def test_images_of_wrong_size(tmp_path):
    make_mnist_folder(tmp_path)
    images = np.zeros((7, 27, 27), np.uint8)
    write_file(tmp_path, STEMS["train_images"], idx_bytes(2051, images.shape, images.tobytes()), True)
    with pytest.raises(MNISTFormatError, match=r"images of shape \(27, 27\), expected \(28, 28\)"):
        load_mnist(tmp_path)


def test_label_out_of_range(tmp_path):
    make_mnist_folder(tmp_path)
    labels = np.array([1, 2, 10, 3, 4], np.uint8)
    write_file(tmp_path, STEMS["test_labels"], idx_bytes(2049, labels.shape, labels.tobytes()), True)
    with pytest.raises(MNISTFormatError, match=r"label 10 at index 2 is out of range"):
        load_mnist(tmp_path)


def test_mismatched_image_and_label_counts(tmp_path):
    make_mnist_folder(tmp_path)
    labels = np.zeros(6, np.uint8)
    write_file(tmp_path, STEMS["train_labels"], idx_bytes(2049, labels.shape, labels.tobytes()), True)
    with pytest.raises(MNISTFormatError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert "mismatched counts: 7 images but 6 labels" in message


def test_data_dir_of_wrong_type():
    with pytest.raises(TypeError, match=r"Expected `data_dir` to be a path .* Received: data_dir=42 of type int"):
        load_mnist(42)


def test_failed_download_says_how_to_work_offline(monkeypatch):
    def no_network():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)
    with pytest.raises(MNISTDownloadError) as info:
        load_mnist()
    message = str(info.value)
    assert "Temporary failure in name resolution" in message
    assert "load_mnist(data_dir=" in message and "COMPANION_MNIST_DIR" in message


def test_online_path_is_used_when_no_folder_is_given(monkeypatch):
    fake = ((np.zeros((2, 28, 28), np.uint8), np.array([1, 2], np.uint8)),
            (np.ones((1, 28, 28), np.uint8), np.array([3], np.uint8)))
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: fake)
    (x_train, y_train), (x_test, y_test) = load_mnist()
    assert y_train.tolist() == [1, 2] and y_test.tolist() == [3] and x_test.sum() == 784
