"""Tests of companion.training.backends: one module of GAN training functions per Keras backend, chosen
by `companion.training.backend_module`."""

import os

import keras
import pytest

from companion import training

pytestmark = pytest.mark.backend


def test_backend_modules_share_one_interface():
    for name in ("tensorflow", "jax", "torch"):
        path = os.path.join(os.path.dirname(training.__file__), "backends", f"{name}.py")
        source = open(path).read()
        assert "def train_step(model" in source and "def input_gradient(function, x)" in source
    assert training.backend_module().__name__.endswith(keras.backend.backend())
    with pytest.raises(ValueError, match=r"Received: backend='numpy'"):
        training.backend_module("numpy")
