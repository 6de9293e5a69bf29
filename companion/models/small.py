"""Small models for the theory chapters: a GAN on vectors and a plain autoencoder.

* `VectorGAN`: MLP generator and discriminator for d-dimensional data (the 2-D ring of
  Gaussians of `companion.data.synthetic`, 1-D mixtures), trained by the same GAN machinery as the
  image models (`companion.models.gan.GAN`), so its losses and diagnostics are the book's;
* `Autoencoder`: a deterministic MLP encoder-decoder for MNIST, trained on the squared
  error, for the chapter on latent spaces and compression.
"""

import keras
import numpy as np
from keras import layers, ops

from companion import validation
from companion.models import _fit
from companion.models.gan import GAN
from companion.training.distribute import scale_for_replicas

__all__ = ["Autoencoder", "VectorGAN"]


@keras.saving.register_keras_serializable(package="companion")
class VectorGAN(GAN):
    """A GAN on `(n, data_dim)` vectors: Dense `hidden_units` (ReLU) in each network, a
    linear generator output and a logit from the discriminator.

    Args:
        data_dim: dimension of one example.
        latent_dim: dimension of z ~ N(0, I).
        hidden_units: hidden layers of both networks.
        **kwargs: `seed` (see `GAN`).
    """

    def __init__(self, data_dim=2, latent_dim=2, hidden_units=(128, 128), **kwargs):
        self.data_dim = validation.positive_int("data_dim", data_dim)
        self.hidden_units = tuple(validation.positive_int("hidden_units", u) for u in hidden_units)
        self.data_shape = (self.data_dim,)
        super().__init__(latent_dim=latent_dim, **kwargs)

    def _mlp(self, inputs, outputs, name):
        h = inputs
        for i, units in enumerate(self.hidden_units):
            h = layers.Dense(units, activation="relu", name=f"{name}_dense_{i}")(h)
        return keras.Model(inputs, layers.Dense(outputs, name=f"{name}_out")(h), name=name)

    def build_generator(self):
        return self._mlp(keras.Input((self.latent_dim,), name="z"), self.data_dim, "generator")

    def build_discriminator(self):
        return self._mlp(keras.Input((self.data_dim,), name="x"), 1, "discriminator")

    def generate(self, n, labels=None, seed=None, batch_size=1000):
        """Draws `n` examples, `(n, data_dim)`, as a NumPy array."""
        return super().generate(n, labels, seed, batch_size)

    def get_config(self):
        return {**super().get_config(), "data_dim": self.data_dim, "hidden_units": list(self.hidden_units)}


@keras.saving.register_keras_serializable(package="companion")
class Autoencoder(keras.Model):
    """An MLP autoencoder for 28x28 images: Dense `hidden_units` -> `latent_dim` (linear)
    -> Dense reversed -> 784 (sigmoid); the loss is the mean squared error per pixel.

    Example:

    >>> ae = Autoencoder(latent_dim=2)
    >>> ae.compile(optimizer="adam")
    >>> ae.fit(x_train, epochs=5)
    >>> codes = ae.encode(x_test)
    """

    def __init__(self, latent_dim=2, hidden_units=(256, 64), **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.hidden_units = tuple(validation.positive_int("hidden_units", u) for u in hidden_units)
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = layers.Flatten()(images)
        for i, units in enumerate(self.hidden_units):
            h = layers.Dense(units, activation="relu", name=f"encoder_dense_{i}")(h)
        self.encoder = keras.Model(images, layers.Dense(self.latent_dim, name="code")(h), name="encoder")
        code = keras.Input((self.latent_dim,), name="code")
        h = code
        for i, units in enumerate(self.hidden_units[::-1]):
            h = layers.Dense(units, activation="relu", name=f"decoder_dense_{i}")(h)
        pixels = layers.Dense(validation.IMAGE_PIXELS, activation="sigmoid", name="pixels")(h)
        self.decoder = keras.Model(code, layers.Reshape(validation.IMAGE_SHAPE)(pixels), name="decoder")
        self.built = True

    def call(self, inputs, training=False):
        return self.decoder(self.encoder(ops.reshape(inputs, (-1, *validation.IMAGE_SHAPE)), training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_example = ops.mean(ops.square(y_pred - ops.reshape(x, (-1, *validation.IMAGE_SHAPE))), axis=(1, 2, 3))
        if sample_weight is None:
            return scale_for_replicas(ops.mean(per_example))
        sample_weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        return scale_for_replicas(ops.sum(per_example * sample_weight) / ops.sum(sample_weight))

    def _run(self, network, x, batch_size=1000):
        return np.concatenate(
            [ops.convert_to_numpy(network(ops.convert_to_tensor(x[part]))) for part in _fit.chunks(len(x), batch_size)]
        )

    def encode(self, x):
        """Codes `(n, latent_dim)` of images in [0, 1]."""
        return self._run(self.encoder, validation.images("x", x))

    def decode(self, codes):
        """Images `(n, 28, 28, 1)` in [0, 1] from codes."""
        return self._run(self.decoder, validation.latents("codes", codes, self.latent_dim))

    def reconstruct(self, x):
        return self.decode(self.encode(x))

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            validation.images("x", x)
        return _fit.fit(super().fit, self, x, y, args, kwargs)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "hidden_units": list(self.hidden_units)}
