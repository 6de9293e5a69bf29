"""Shared fixtures: where the real MNIST files are, the small sets of images that several test
files train and measure on, the small models they share, and the book built once.

Each fixture here is used by two test files or more; a fixture or helper that one file alone
needs stays in that file. Fixtures import the package inside their bodies, so that collecting
the tests imports neither Keras nor a backend.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_mnist_dir():
    configured = os.environ.get("COMPANION_MNIST_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "mnist"


# ----------------------------------------------------------------------------- MNIST


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder of the four real MNIST files (../shared/data/mnist beside the clone)."""
    path = _shared_mnist_dir()
    if not path.is_dir():
        pytest.fail(
            f"The MNIST files are needed for the tests and were not found at {path}; "
            "set COMPANION_MNIST_DIR to their folder"
        )
    return path


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from companion.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture(scope="session")
def scaled_train(mnist):
    """The first 200 training images in [0, 1], float32 `(200, 28, 28)`, and their labels as int32.

    `clean`, `images_96` and `real_images` are slices of it, shared by every test that asks
    for them: no test may change them in place.
    """
    from companion import data

    (x_train, y_train), _ = mnist
    return data.scale(x_train[:200]), y_train[:200].astype("int32")


@pytest.fixture(scope="session")
def clean(scaled_train):
    """200 clean images in [0, 1], `(200, 28, 28)`: what the denoising tests add noise to."""
    return scaled_train[0]


@pytest.fixture(scope="session")
def images_96(scaled_train):
    """96 images in [0, 1], `(96, 28, 28)`: three batches of 32 for the callbacks and checkpoints."""
    return scaled_train[0][:96]


@pytest.fixture(scope="session")
def real_images(scaled_train):
    """64 real images in [0, 1] with a channel axis, `(64, 28, 28, 1)`, for the GAN tests."""
    return scaled_train[0][:64].reshape(-1, 28, 28, 1)


@pytest.fixture(scope="session")
def binary_images(mnist):
    """The first 64 training images binarized once (seed 0), float32 `(64, 28, 28)`, and their
    labels as int32: the VAEs' training data."""
    from companion import data

    (x_train, y_train), _ = mnist
    return data.binarize_static(x_train[:64], seed=0), y_train[:64].astype("int32")


@pytest.fixture(scope="session")
def small_mnist(mnist):
    """`(x, y, x_test, y_test)`: 5,000 training and 1,000 test images in [0, 1], with their labels."""
    from companion import data

    (x_train, y_train), (x_test, y_test) = mnist
    return data.scale(x_train[:5000]), y_train[:5000], data.scale(x_test[:1000]), y_test[:1000]


# ----------------------------------------------------------------------------- numbers


@pytest.fixture(scope="session")
def density_grid():
    """`(grid, dx)`: 24,001 points on [-12, 12] and their spacing, for densities integrated by
    the rectangle rule."""
    grid = np.linspace(-12, 12, 24001)
    return grid, grid[1] - grid[0]


@pytest.fixture(scope="session")
def numpy_of():
    """`numpy_of(tensor)`: a backend tensor as a float64 NumPy array."""

    def convert(x):
        from keras import ops

        return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)

    return convert


# ----------------------------------------------------------------------------- small models


@pytest.fixture(scope="session")
def new_vae():
    """`new_vae()`: a small MLP VAE, compiled with Adam; seeded, so every call gives the same one."""

    def make():
        import keras

        from companion.models import MLPVAE

        keras.utils.set_random_seed(0)
        model = MLPVAE(latent_dim=2, hidden_units=(16, 8), seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    return make


@pytest.fixture(scope="session")
def small_arvae():
    """`small_arvae(seed=0, **kwargs)`: a small AR VAE (3 latents, 16 hidden units, a MADE of 24),
    compiled with Adam; `kwargs` replace its sizes."""

    def make(seed=0, **kwargs):
        import keras

        from companion.models import ARVAE

        keras.utils.set_random_seed(seed)
        model = ARVAE(seed=seed, **{**dict(latent_dim=3, hidden_units=(16,), made_units=(24,)), **kwargs})
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    return make


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist_dir):
    """`(folder, argv)`: a classifier trained for one epoch on 512 images by the command line,
    its weights, card and checkpoint in `folder`."""
    from companion import cli

    folder = tmp_path_factory.mktemp("cli")
    argv = ["train", "classifier", "--epochs", "1", "--train-images", "512", "--data-dir", str(mnist_dir),
            "--out", str(folder / "classifier.keras"), "--checkpoint", str(folder / "ckpt.keras"), "--verbose", "0",
            "--precision", "float32"]
    cli.run(argv)
    return folder, argv


# ----------------------------------------------------------------------------- the book


@pytest.fixture(scope="session")
def html(tmp_path_factory):
    """The book built as the README builds it (`-W -n`: warnings fail), in a temporary folder."""
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [str(jupyter_book), "build", str(REPO_ROOT), "-W", "-n", "--keep-going", "--path-output", str(out)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    return out / "_build" / "html"
