"""A VAE for 1-D time series: the same ELBO with a Gaussian likelihood instead of a Bernoulli.

Images of ink are binary-ish, so the book's image VAEs use a Bernoulli likelihood; a
time series of real values needs a density on the real line. `SeriesVAE` models each
value as x_t ~ N(mu_t(z), sigma^2), with one learned sigma shared by every step, so

    -log p(x | z) = sum_t [ (x_t - mu_t)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2 ].

This is a density, so the loss is in nats per series but, unlike the Bernoulli loss, may
be negative. Everything else (the encoder, the reparameterization, the closed-form KL,
`fit` untouched) is as in `companion.models.vae`.

Example:

>>> x = synthetic.wave_series(10000, length=64, seed=0)
>>> vae = SeriesVAE(length=64, latent_dim=4, seed=0)
>>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
>>> vae.fit(x, batch_size=128, epochs=30)
>>> new_series = vae.generate(8, seed=1)
"""

import math

import keras
import numpy as np
from keras import layers, ops

from companion import validation
from companion.models._seeded import SeedStateMixin
from companion.models.vae import gaussian_kl

__all__ = ["SeriesVAE", "gaussian_nll"]


def gaussian_nll(x, mean, log_sigma):
    """-log N(x; mean, exp(log_sigma)^2) per example, summed over the last axis."""
    x, mean, log_sigma = ops.convert_to_tensor(x), ops.convert_to_tensor(mean), ops.convert_to_tensor(log_sigma)
    return ops.sum(
        0.5 * ops.square((x - mean) * ops.exp(-log_sigma)) + log_sigma + 0.5 * math.log(2 * math.pi), axis=-1
    )


@keras.saving.register_keras_serializable(package="companion")
class SeriesVAE(SeedStateMixin, keras.Model):
    """MLP encoder and decoder on series of `length` real values.

    Args:
        length: values per series.
        latent_dim: dimension of z.
        hidden_units: the encoder's hidden layers; the decoder mirrors them.
        seed: seed of the reparameterization noise.
    """

    def __init__(self, length=64, latent_dim=4, hidden_units=(128, 64), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.length = validation.positive_int("length", length)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.hidden_units = tuple(validation.positive_int("hidden_units", u) for u in hidden_units)
        self.seed = validation.seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.encoder = keras.Sequential(
            [keras.Input((self.length,))]
            + [layers.Dense(u, activation="relu") for u in self.hidden_units]
            + [layers.Dense(2 * self.latent_dim, name="mean_logvar")],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [keras.Input((self.latent_dim,))]
            + [layers.Dense(u, activation="relu") for u in self.hidden_units[::-1]]
            + [layers.Dense(self.length, name="mean")],
            name="decoder",
        )
        self.log_sigma = self.add_weight(shape=(), initializer="zeros", name="log_sigma")
        self.nll_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def _encode(self, x):
        return ops.split(self.encoder(x), 2, axis=-1)

    def call(self, x, training=False):
        mean, logvar = self._encode(x)
        z = mean + ops.exp(0.5 * logvar) * keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return {"mean": mean, "logvar": logvar, "x_mean": self.decoder(z)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        nll = gaussian_nll(x, y_pred["x_mean"], self.log_sigma)
        kl = gaussian_kl(y_pred["mean"], y_pred["logvar"])
        self.nll_tracker.update_state(nll)
        self.kl_tracker.update_state(kl)
        return ops.mean(nll + kl)

    def _series(self, x):
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.length or not np.all(np.isfinite(x)):
            raise ValueError(
                f"Expected `x` of shape (n, {self.length}) with finite values. Received: x.shape={x.shape}"
            )
        return x

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            x = self._series(x)
        return super().fit(x, y, *args, **kwargs)

    def encode(self, x):
        """Mean and log-variance of q(z | x), each `(n, latent_dim)`."""
        mean, logvar = self._encode(ops.convert_to_tensor(self._series(x)))
        return ops.convert_to_numpy(mean), ops.convert_to_numpy(logvar)

    def decode(self, z):
        """The mean series mu(z), `(n, length)`."""
        z = validation.latents("z", z, self.latent_dim)
        return ops.convert_to_numpy(self.decoder(ops.convert_to_tensor(z)))

    def reconstruct(self, x):
        return self.decode(self.encode(x)[0])

    def generate(self, n, seed=None, noise=True):
        """`n` series: z ~ N(0, I), then mu(z), plus N(0, sigma^2) noise unless `noise=False`."""
        n = validation.positive_int("n", n)
        rng = np.random.default_rng(validation.seed("seed", seed))
        series = self.decode(rng.standard_normal((n, self.latent_dim)).astype("float32"))
        if noise:
            series = series + self.sigma * rng.standard_normal(series.shape).astype("float32")
        return series

    @property
    def sigma(self):
        return float(np.exp(ops.convert_to_numpy(self.log_sigma)))

    def negative_elbo(self, x, seed=0):
        """-ELBO per series, in nats, with one sample of z per series drawn from `seed`."""
        x = ops.convert_to_tensor(self._series(x))
        mean, logvar = self._encode(x)
        eps = ops.convert_to_tensor(np.random.default_rng(validation.seed("seed", seed)).standard_normal(ops.shape(mean)).astype("float32"))
        nll = gaussian_nll(x, self.decoder(mean + ops.exp(0.5 * logvar) * eps), self.log_sigma)
        return ops.convert_to_numpy(nll + gaussian_kl(mean, logvar))

    def get_config(self):
        config = super().get_config()
        config.update(length=self.length, latent_dim=self.latent_dim, hidden_units=list(self.hidden_units), seed=self.seed)
        return config
