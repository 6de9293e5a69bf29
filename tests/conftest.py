"""Shared fixtures: where the real MNIST files are, and helpers to write IDX files."""

import os
import subprocess
import sys
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
