"""Variational autoencoders that train with the default `fit` on every Keras backend.

The loss is the negative evidence lower bound (ELBO) per image, in nats:

    -ELBO(x) = E_q[-log p(x | z)] + KL(q(z | x) || p(z)),

with a Bernoulli likelihood on the decoder's logits (a sum over the 784 pixels) and the
closed-form KL divergence between the diagonal Gaussian q(z | x) = N(mean, exp(logvar))
and the prior N(0, I). The expectation is estimated with one reparameterized sample,
z = mean + exp(logvar / 2) * eps, eps ~ N(0, I).

Only `compute_loss` is overridden, so `fit`, `evaluate`, callbacks and the progress bar
are Keras's own on TensorFlow, JAX and PyTorch alike.

Example:

>>> vae = MLPVAE(latent_dim=2, seed=0)
>>> vae.compile(optimizer=keras.optimizers.Adam(1e-3))
>>> vae.fit(data.MNISTBatches(x_train, binarize="dynamic"), epochs=10)
>>> images = vae.generate(16, seed=1)          # probabilities, (16, 28, 28, 1)
"""

import keras
import numpy as np
from keras import layers, ops

from companion import validation
from companion.models import _fit
from companion.models._seeded import SeedStateMixin
from companion.training.distribute import scale_for_replicas

__all__ = ["VAE", "MLPVAE", "ConvVAE", "ConditionalVAE", "bernoulli_nll", "gaussian_kl", "gaussian_kl_per_dimension"]


def bernoulli_nll(x, logits):
    """-log p(x | logits) per example, summed over pixels: softplus(l) - x * l."""
    x = ops.reshape(x, (ops.shape(x)[0], -1))
    logits = ops.reshape(logits, (ops.shape(logits)[0], -1))
    return ops.sum(ops.softplus(logits) - x * logits, axis=-1)


def gaussian_kl(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, I)) per example, in closed form."""
    return ops.sum(gaussian_kl_per_dimension(mean, logvar), axis=-1)


def gaussian_kl_per_dimension(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, I)) of each latent dimension, `(n, latent_dim)`."""
    return 0.5 * (ops.square(mean) + ops.exp(logvar) - logvar - 1.0)


class VAE(SeedStateMixin, keras.Model):
    """A VAE whose subclasses supply the encoder and decoder networks.

    Args:
        latent_dim: dimension of z.
        beta: weight of the KL term in the training loss (1 gives the ELBO).
        kl_warmup_steps: number of training steps over which the KL weight rises
            linearly from 0 to `beta`; 0 switches warm-up off.
        free_bits: nats per latent dimension that the training loss does not charge
            (Kingma et al. 2016): each dimension's KL, averaged over the batch, enters the
            loss as max(free_bits, KL), so the optimizer gains nothing by pushing a
            dimension's KL below free_bits and collapsing it onto the prior. 0 (the
            default) is the ELBO. The metrics (`kl`, `neg_elbo`) always report the true KL.
        num_classes: number of labels (conditional models only).
        seed: seed of the reparameterization noise.

    Subclasses implement `build_encoder()` (images `(n, 28, 28, 1)` [and one-hot labels]
    to `2 * latent_dim` numbers: mean, then log-variance) and `build_decoder()` (z [and
    one-hot labels] to logits `(n, 28, 28, 1)`).
    """

    conditional = False

    def __init__(self, latent_dim=2, beta=1.0, kl_warmup_steps=0, free_bits=0.0, num_classes=10, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.beta = validation.non_negative("beta", beta)
        self.kl_warmup_steps = validation.non_negative("kl_warmup_steps", kl_warmup_steps, integer=True)
        self.free_bits = validation.non_negative("free_bits", free_bits)
        self.num_classes = validation.positive_int("num_classes", num_classes)
        self.seed = validation.seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.encoder = self.build_encoder()
        self.decoder = self.build_decoder()
        # Training steps taken, for the KL warm-up; a variable so that it is saved,
        # restored on resume, and threaded through JAX's stateless training step.
        self.train_steps = self.add_weight(
            shape=(), initializer="zeros", dtype="float32", trainable=False, name="train_steps",
            aggregation="only_first_replica",  # every replica counts the same steps
        )
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.neg_elbo_tracker = keras.metrics.Mean(name="neg_elbo")
        self.built = True  # encoder and decoder are functional models, built already

    # ------------------------------------------------------------------ networks

    def build_encoder(self):
        raise NotImplementedError

    def build_decoder(self):
        raise NotImplementedError

    def _one_hot(self, labels):
        return ops.one_hot(ops.cast(labels, "int32"), self.num_classes)

    def _split_inputs(self, inputs):
        if self.conditional:
            if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
                raise ValueError(
                    f"{type(self).__name__} takes `(images, labels)` as its input. "
                    f"Received: {type(inputs).__name__}"
                )
            images, labels = inputs
            return ops.reshape(images, (-1, *validation.IMAGE_SHAPE)), labels
        if isinstance(inputs, (tuple, list)):
            raise ValueError(f"{type(self).__name__} takes images alone as its input, without labels")
        return ops.reshape(inputs, (-1, *validation.IMAGE_SHAPE)), None

    def _encode(self, images, labels):
        h = self.encoder([images, self._one_hot(labels)] if self.conditional else images)
        # float32 from here on, also under a mixed-precision policy: the noise, the KL and
        # the likelihood need the precision, the networks inside do not.
        mean, logvar = ops.split(ops.cast(h, "float32"), 2, axis=-1)  # the source's tensor.split does not exist
        return mean, logvar

    def _decode(self, z, labels):
        return ops.cast(self.decoder([z, self._one_hot(labels)] if self.conditional else z), "float32")

    def _reparameterize(self, mean, logvar, noise=None):
        if noise is None:
            noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * logvar) * noise

    def _likelihood_logits(self, z, labels, images):
        """Logits of p(x | z) evaluated at the images x. A decoder that models pixels one
        after another (`ARVAE`) reads x here; the others ignore it."""
        return self._decode(z, labels)

    def call(self, inputs, training=False):
        images, labels = self._split_inputs(inputs)
        mean, logvar = self._encode(images, labels)
        z = self._reparameterize(mean, logvar)
        return {"logits": self._likelihood_logits(z, labels, images), "mean": mean, "logvar": logvar}

    # ------------------------------------------------------------------ loss

    def kl_weight(self, training=True):
        """The KL weight now: `beta`, or its warm-up value while training."""
        if not training or self.kl_warmup_steps == 0:
            return ops.convert_to_tensor(self.beta, "float32")
        progress = ops.minimum(1.0, (self.train_steps + 1.0) / float(self.kl_warmup_steps))
        return self.beta * progress

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        images, _ = self._split_inputs(x)
        reconstruction = bernoulli_nll(images, y_pred["logits"])
        kl_per_dimension = gaussian_kl_per_dimension(y_pred["mean"], y_pred["logvar"])
        kl = ops.sum(kl_per_dimension, axis=-1)
        if sample_weight is None:
            weights = ops.ones_like(reconstruction) / ops.cast(ops.shape(reconstruction)[0], "float32")
        else:
            sample_weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            weights = sample_weight / ops.sum(sample_weight)
        charged_kl = ops.sum(weights * kl)
        if self.free_bits and training:
            # Free bits: each dimension's batch-average KL, but never less than free_bits.
            charged_kl = ops.sum(ops.maximum(ops.sum(weights[:, None] * kl_per_dimension, axis=0), self.free_bits))
        loss = ops.sum(weights * reconstruction) + self.kl_weight(training) * charged_kl
        if training:
            self.train_steps.assign_add(1.0)
        self.reconstruction_tracker.update_state(reconstruction, sample_weight=sample_weight)
        self.kl_tracker.update_state(kl, sample_weight=sample_weight)
        self.neg_elbo_tracker.update_state(reconstruction + kl, sample_weight=sample_weight)
        return scale_for_replicas(loss)  # 1 / replicas under tf.distribute (companion.training.distribute)

    # ------------------------------------------------------------------ public methods (NumPy in, NumPy out)

    def _inputs(self, x, labels):
        x = validation.images("x", x)
        return x, validation.labels_for(self, labels, len(x))

    def _batched(self, function, n, *arrays, batch_size=1000):
        parts = []
        for part in _fit.chunks(n, batch_size):
            parts.append(function(*[None if a is None else a[part] for a in arrays]))
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(parts[0])))
        return np.concatenate(parts)

    def encode(self, x, labels=None, batch_size=1000):
        """Returns the mean and log-variance of q(z | x), each `(n, latent_dim)`."""
        x, labels = self._inputs(x, labels)

        def run(xb, yb):
            mean, logvar = self._encode(ops.convert_to_tensor(xb), None if yb is None else ops.convert_to_tensor(yb))
            return ops.convert_to_numpy(mean), ops.convert_to_numpy(logvar)

        return self._batched(run, len(x), x, labels, batch_size=batch_size)

    def sample_posterior(self, x, labels=None, seed=None):
        """Draws one z ~ q(z | x) per image."""
        mean, logvar = self.encode(x, labels)
        noise = np.random.default_rng(validation.seed("seed", seed)).standard_normal(mean.shape).astype("float32")
        return mean + np.exp(0.5 * logvar) * noise

    def decode(self, z, labels=None, return_logits=False, batch_size=1000):
        """Decodes latents into pixel probabilities (or logits), `(n, 28, 28, 1)`."""
        z = validation.latents("z", z, self.latent_dim)
        labels = validation.labels_for(self, labels, len(z), per="latent")

        def run(zb, yb):
            logits = self._decode(ops.convert_to_tensor(zb), None if yb is None else ops.convert_to_tensor(yb))
            return ops.convert_to_numpy(logits if return_logits else ops.sigmoid(logits))

        return self._batched(run, len(z), z, labels, batch_size=batch_size)

    def log_likelihood(self, x, z, labels=None, batch_size=1000):
        """log p(x | z) per image, in nats: `x` images `(n, 28, 28, 1)` (or `(n, 784)`), `z` `(n, latent_dim)`."""
        x = validation.images("x", x)
        z = validation.latents("z", z, self.latent_dim)
        if len(z) != len(x):
            raise ValueError(f"Expected one latent per image: `z` of shape ({len(x)}, {self.latent_dim}). Received: z.shape={z.shape}")
        labels = validation.labels_for(self, labels, len(z), per="latent")

        def run(xb, zb, yb):
            xb = ops.convert_to_tensor(xb)
            logits = self._likelihood_logits(ops.convert_to_tensor(zb), None if yb is None else ops.convert_to_tensor(yb), xb)
            return -ops.convert_to_numpy(bernoulli_nll(xb, logits))

        return self._batched(run, len(x), x, z, labels, batch_size=batch_size)

    def reconstruct(self, x, labels=None, sample=False, seed=None):
        """Encodes and decodes images: through the posterior mean, or a sample of it."""
        z = self.sample_posterior(x, labels, seed=seed) if sample else self.encode(x, labels)[0]
        return self.decode(z, labels)

    def generate(self, n, labels=None, seed=None):
        """Draws `n` images from the model: z ~ N(0, I), then the decoder's probabilities."""
        n = validation.positive_int("n", n)
        z = np.random.default_rng(validation.seed("seed", seed)).standard_normal((n, self.latent_dim)).astype("float32")
        return self.decode(z, labels)

    def elbo_terms(self, x, labels=None, noise=None, seed=None):
        """The ELBO's terms per image, in nats, with one sample of z per image.

        Args:
            x: images with values in [0, 1].
            labels: labels of conditional models.
            noise: optional `(n, latent_dim)` standard normal draws used for z;
                drawn from `seed` when omitted.

        Returns:
            A dict of `(n,)` arrays: `reconstruction` (-log p(x | z)), `kl`, and
            `elbo` (= -reconstruction - kl, a lower bound on log p(x)).
        """
        x, labels = self._inputs(x, labels)
        if noise is None:
            noise = np.random.default_rng(validation.seed("seed", seed)).standard_normal((len(x), self.latent_dim))
        noise = validation.latents("noise", noise, self.latent_dim)
        if len(noise) != len(x):
            raise ValueError(f"Expected `noise` of shape ({len(x)}, {self.latent_dim}). Received: noise.shape={noise.shape}")

        def run(xb, yb, eb):
            xb = ops.convert_to_tensor(xb)
            yb = None if yb is None else ops.convert_to_tensor(yb)
            mean, logvar = self._encode(xb, yb)
            logits = self._likelihood_logits(self._reparameterize(mean, logvar, ops.convert_to_tensor(eb)), yb, xb)
            return ops.convert_to_numpy(bernoulli_nll(xb, logits)), ops.convert_to_numpy(gaussian_kl(mean, logvar))

        reconstruction, kl = self._batched(run, len(x), x, labels, noise)
        return {"reconstruction": reconstruction, "kl": kl, "elbo": -reconstruction - kl}

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            validation.images("x", x)
        return _fit.fit(super().fit, self, x, y, args, kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            latent_dim=self.latent_dim,
            beta=self.beta,
            kl_warmup_steps=self.kl_warmup_steps,
            free_bits=self.free_bits,
            num_classes=self.num_classes,
            seed=self.seed,
        )
        return config


def _mlp(units, name, dropout=0.0):
    stack = []
    for i, u in enumerate(units):
        stack.append(layers.Dense(u, activation="relu", name=f"{name}_dense_{i}"))
        if dropout:
            stack.append(layers.Dropout(dropout, name=f"{name}_dropout_{i}"))
    return stack


@keras.saving.register_keras_serializable(package="companion")
class MLPVAE(VAE):
    """The source's VAE, sized as there: encoder Dense 64 -> 32 -> 2 x latent_dim,
    decoder Dense 32 -> 64 -> 784, made correct (reparameterization, Bernoulli
    likelihood on logits, the ELBO as the loss).

    Args:
        hidden_units: the encoder's hidden layers; the decoder mirrors them.
        dropout: dropout rate after every hidden layer while training (0 for none), a
            regularizer the overfitting experiment of the FAQ chapter measures.
        **kwargs: `latent_dim`, `beta`, `kl_warmup_steps`, `seed` (see `VAE`).
    """

    def __init__(self, latent_dim=2, hidden_units=(64, 32), dropout=0.0, **kwargs):
        self.hidden_units = tuple(validation.positive_int("hidden_units", u) for u in hidden_units)
        self.dropout = validation.non_negative("dropout", dropout)
        if self.dropout >= 1.0:
            raise ValueError(f"Expected `dropout` in [0, 1). Received: dropout={dropout!r}")
        super().__init__(latent_dim=latent_dim, **kwargs)

    def build_encoder(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = layers.Flatten()(images)
        for layer in _mlp(self.hidden_units, "encoder", getattr(self, "dropout", 0.0)):
            h = layer(h)
        return keras.Model(images, layers.Dense(2 * self.latent_dim, name="mean_logvar")(h), name="encoder")

    def build_decoder(self):
        z = keras.Input((self.latent_dim,), name="z")
        h = z
        for layer in _mlp(self.hidden_units[::-1], "decoder", self.dropout):
            h = layer(h)
        logits = layers.Reshape(validation.IMAGE_SHAPE)(layers.Dense(validation.IMAGE_PIXELS, name="logits")(h))
        return keras.Model(z, logits, name="decoder")

    def get_config(self):
        config = {**super().get_config(), "hidden_units": list(self.hidden_units)}
        if self.dropout:
            config["dropout"] = self.dropout
        return config


@keras.saving.register_keras_serializable(package="companion")
class ConvVAE(VAE):
    """A convolutional VAE: strided convolutions down to 7x7, transposed ones back up.

    Encoder: Conv 3x3 stride 2 (filters[0]) -> Conv 3x3 stride 2 (filters[1]) -> Dense
    `dense_units` -> 2 x latent_dim. Decoder: the mirror image, ending in a 3x3
    convolution to one channel of logits.
    """

    def __init__(self, latent_dim=32, filters=(32, 64), dense_units=256, **kwargs):
        self.filters = tuple(validation.positive_int("filters", f) for f in filters)
        if len(self.filters) != 2:
            raise ValueError(f"Expected two `filters`, one per stride-2 stage. Received: filters={filters!r}")
        self.dense_units = validation.positive_int("dense_units", dense_units)
        super().__init__(latent_dim=latent_dim, **kwargs)

    def build_encoder(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = images
        for i, f in enumerate(self.filters):
            h = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"conv_{i}")(h)
        h = layers.Dense(self.dense_units, activation="relu", name="dense")(layers.Flatten()(h))
        return keras.Model(images, layers.Dense(2 * self.latent_dim, name="mean_logvar")(h), name="encoder")

    def build_decoder(self):
        z = keras.Input((self.latent_dim,), name="z")
        h = layers.Dense(self.dense_units, activation="relu", name="dense")(z)
        h = layers.Dense(7 * 7 * self.filters[1], activation="relu", name="dense_7x7")(h)
        h = layers.Reshape((7, 7, self.filters[1]))(h)
        for i, f in enumerate(self.filters[::-1]):
            h = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", name=f"deconv_{i}")(h)
        logits = layers.Conv2D(1, 3, padding="same", name="logits")(h)
        return keras.Model(z, logits, name="decoder")

    def get_config(self):
        return {**super().get_config(), "filters": list(self.filters), "dense_units": self.dense_units}


@keras.saving.register_keras_serializable(package="companion")
class ConditionalVAE(VAE):
    """A VAE whose encoder and decoder both see the one-hot label.

    Input: `(images, labels)`. Generating with a label draws that digit; the latent z
    is left to capture style (slant, thickness).
    """

    conditional = True

    def __init__(self, latent_dim=16, hidden_units=(512, 256), **kwargs):
        self.hidden_units = tuple(validation.positive_int("hidden_units", u) for u in hidden_units)
        super().__init__(latent_dim=latent_dim, **kwargs)

    def build_encoder(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        one_hot = keras.Input((self.num_classes,), name="one_hot")
        h = layers.Concatenate()([layers.Flatten()(images), one_hot])
        for layer in _mlp(self.hidden_units, "encoder"):
            h = layer(h)
        return keras.Model([images, one_hot], layers.Dense(2 * self.latent_dim, name="mean_logvar")(h), name="encoder")

    def build_decoder(self):
        z = keras.Input((self.latent_dim,), name="z")
        one_hot = keras.Input((self.num_classes,), name="one_hot")
        h = layers.Concatenate()([z, one_hot])
        for layer in _mlp(self.hidden_units[::-1], "decoder"):
            h = layer(h)
        logits = layers.Reshape(validation.IMAGE_SHAPE)(layers.Dense(validation.IMAGE_PIXELS, name="logits")(h))
        return keras.Model([z, one_hot], logits, name="decoder")

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, (tuple, list)) and len(x) == 2 and isinstance(x[0], np.ndarray):
            images = validation.images("x[0]", x[0])
            validation.labels("x[1]", x[1], self.num_classes, n=len(images))
            x = (images, x[1])
        return super().fit(x, y, *args, **kwargs)

    def get_config(self):
        return {**super().get_config(), "hidden_units": list(self.hidden_units)}


@keras.saving.register_keras_serializable(package="companion")
class ARVAE(VAE):
    """A VAE whose decoder models the pixels one after another: p(x | z) = prod_i
    p(x_i | x_<i, z), with a MADE (`companion.models.made`) conditioned on z.

    The factorized decoders above must explain every pixel from z alone, so their
    samples are blurry and their likelihoods loose; this decoder also sees the pixels
    already drawn, which is how the book's best likelihood is reached (compare DARN,
    Gregor et al. 2014, and PixelVAE, Gulrajani et al. 2017). Training and the
    likelihood bounds take one pass (teacher forcing); `decode` and `generate` draw the
    784 pixels in raster order, one pass each.

    Encoder: Dense `hidden_units` (ReLU) -> 2 x latent_dim. Decoder: Dense
    `hidden_units` reversed (ReLU) from z to a context, then a MADE with `made_units`.
    """

    def __init__(self, latent_dim=32, hidden_units=(256, 256), made_units=(500,), direct=True, **kwargs):
        self.hidden_units = tuple(validation.positive_int("hidden_units", u) for u in hidden_units)
        self.made_units = tuple(validation.positive_int("made_units", u) for u in made_units)
        self.direct = bool(direct)
        super().__init__(latent_dim=latent_dim, **kwargs)

    build_encoder = MLPVAE.build_encoder  # the same MLP encoder, sized by `hidden_units`

    def build_decoder(self):
        from companion.models.made import MADE

        z = keras.Input((self.latent_dim,), name="z")
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        context = z
        for layer in _mlp(self.hidden_units[::-1], "context"):
            context = layer(context)
        logits = MADE(self.made_units, direct=self.direct, name="made")([layers.Flatten()(images), context])
        return keras.Model([z, images], layers.Reshape(validation.IMAGE_SHAPE)(logits), name="decoder")

    def _decode(self, z, labels):
        raise TypeError("ARVAE's decoder also needs the pixels drawn so far: use `decode` to sample")

    def _likelihood_logits(self, z, labels, images):
        return ops.cast(self.decoder([z, images]), "float32")

    def decode(self, z, labels=None, return_logits=False, batch_size=1000, seed=None):
        """Draws images pixel by pixel given latents; returns, for each pixel, the
        probability (or logit) of a 1 given z and the pixels drawn before it, `(n, 28, 28, 1)`."""
        z = validation.latents("z", z, self.latent_dim)
        validation.labels_for(self, labels, len(z), per="latent")
        rng = np.random.default_rng(validation.seed("seed", seed))

        made = self.decoder.get_layer("made")

        def run(zb):
            context = ops.convert_to_tensor(zb)
            for i in range(len(self.hidden_units)):
                context = self.decoder.get_layer(f"context_dense_{i}")(context)
            out = made.sample(ops.convert_to_numpy(context), rng, return_logits=return_logits)
            return out.reshape(-1, *validation.IMAGE_SHAPE)

        return self._batched(run, len(z), z, batch_size=batch_size)

    def generate(self, n, labels=None, seed=None):
        """Draws `n` images: z ~ N(0, I), then the pixels in raster order."""
        n = validation.positive_int("n", n)
        rng = np.random.default_rng(validation.seed("seed", seed))
        z = rng.standard_normal((n, self.latent_dim)).astype("float32")
        return self.decode(z, labels, seed=rng.integers(2**31))

    def reconstruct(self, x, labels=None, sample=False, seed=None):
        z = self.sample_posterior(x, labels, seed=seed) if sample else self.encode(x, labels)[0]
        return self.decode(z, labels, seed=seed)

    def get_config(self):
        return {**super().get_config(), "hidden_units": list(self.hidden_units), "made_units": list(self.made_units),
                "direct": self.direct}
