"""Companion package of the book "Image generation with VAEs and GANs".

The chapters import what they teach from here, so that the code a reader runs is
the code the tests check. The package, by what things are:

* entry points and shared definitions, at the top:
  `companion.cli` (`python -m companion train|evaluate|bench`), `companion.recipes` (how
  each shipped model is built, trained and measured), `companion.weights` (the shipped
  models and their cards), `companion.config` (quick mode, the machine),
  `companion.validation` (the input checks of every entry point; the image shape and the
  number of classes);
* `companion.data`: MNIST files and their checks (`mnist`), preprocessing (`preprocess`),
  the batches `fit` reads (`batches`), synthetic data for the theory chapters (`synthetic`);
* `companion.models`: the VAEs, GANs, denoiser and classifier for TensorFlow, JAX and
  PyTorch, small models of the theory chapters (`small`), pixel-independent baselines
  (`baselines`), PCA and k-means (`pca`);
* `companion.training`: the GAN step on each backend (`backends`), callbacks, atomic
  checkpoints (`checkpoints`), data-parallel training (`distribute`), training throughput
  (`benchmark`);
* `companion.evaluation`: the metrics (`metrics`), what `evaluate` measures for each kind
  of model (`evaluate`), the denoising baselines (`denoising`), published likelihoods
  (`published`);
* `companion.teaching`: what only the chapters use: figures (`plotting`), the numerical
  checks of the derivations (`theory`), latent-space walks (`latent`), the ring
  experiments (`rings`), the augmentation experiment (`augmentation`).

Importing the package has no side effects: it seeds nothing, silences no warnings
and downloads nothing.
"""

__version__ = "0.1.0"
