"""Shared fixtures: where the real MNIST files are, and helpers to write IDX files."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_mnist_dir():
    configured = os.environ.get("COMPANION_MNIST_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "mnist"


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
