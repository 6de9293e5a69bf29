"""Companion package of the book "Image generation with VAEs and GANs".

The chapters import what they teach from here, so that the code a reader runs is
the code the tests check:

* `companion.data`: MNIST, online or from local IDX files, and its preprocessing;
* `companion.models`: the VAEs and GANs, for TensorFlow, JAX and PyTorch;
* `companion.training`: the GAN step on each backend, checkpoints, a NaN guard;
* `companion.config`: the quick-mode switch used in CI;
* `companion.baselines`: pixel-independent models, the yardstick for later chapters;
* `companion.plotting`: image grids and other figures.

Importing the package has no side effects: it seeds nothing, silences no warnings
and downloads nothing.
"""

__version__ = "0.1.0"
