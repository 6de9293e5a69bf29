"""Training machinery: the GAN step on each backend, callbacks, checkpoints, data-parallel
training (`companion.training.distribute`) and throughput (`companion.training.benchmark`).

The GANs in `companion.models.gan` write what one step computes with `keras.ops`; how
gradients are taken and applied differs per backend, so each backend has one small
module in `companion.training.backends` with the same two functions:

* `train_step(model, *args)`: Keras's `train_step` signature for that backend
  (`(data)` on TensorFlow and PyTorch, `(state, data)` on JAX);
* `input_gradient(function, x)`: the gradient of `sum(function(x))` with respect to
  `x`, itself differentiable (for WGAN-GP's gradient penalty).

The module is chosen once, from `keras.backend.backend()`, the way Keras picks its
trainer.
"""

import functools
import importlib

import keras

from companion.training.callbacks import ELBOHistory, GeneratorSnapshots, NaNGuard, ResumableCheckpoint
from companion.training.checkpoints import resume_training

__all__ = ["ELBOHistory", "GeneratorSnapshots", "NaNGuard", "ResumableCheckpoint", "backend_module", "gan_train_step", "input_gradient", "resume_training"]


@functools.cache
def backend_module(name=None):
    """The module of GAN training functions for a Keras backend (the active one by default)."""
    name = name or keras.backend.backend()
    if name not in ("tensorflow", "jax", "torch"):
        raise ValueError(f"Expected a backend among tensorflow, jax, torch. Received: backend={name!r}")
    return importlib.import_module(f"companion.training.backends.{name}")


def gan_train_step(model, *args):
    return backend_module().train_step(model, *args)


def input_gradient(function, x):
    return backend_module().input_gradient(function, x)
