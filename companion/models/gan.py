"""Generative adversarial networks that train through `model.fit` on every backend.

A GAN holds a `generator` and a `discriminator` (a critic, for WGAN-GP), each with its
own optimizer. What one training step computes is written once, here, with `keras.ops`:
the losses, the penalties, the metrics. How gradients are taken and applied differs per
backend and lives in `companion.training.backends` (one small module each for
TensorFlow, JAX and PyTorch), chosen once by `companion.training.gan_train_step`.

Losses (logits throughout, never a sigmoid followed by a log), `gan_loss` of `GAN`:

* non-saturating (the default): D minimises softplus(-D(x)) + softplus(D(G(z))), the
  binary cross-entropy; G minimises softplus(-D(G(z))) = -log sigmoid(D(G(z)));
* hinge: D minimises relu(1 - D(x)) + relu(1 + D(G(z))); G minimises -D(G(z));
* WGAN-GP (`WGANGP`): the critic minimises mean C(G(z)) - mean C(x) + lambda * GP, with GP
  the mean of (||grad C(x_hat)|| - 1)^2 at x_hat uniformly interpolated between real and
  fake images; G minimises -mean C(G(z)); the critic takes `n_critic` steps per G step;
* AC-GAN (`ACGAN`, with a class for generated images): both networks add `class_weight`
  times the cross-entropy of D's class head, whose last class is "generated": D puts real
  images in their true class and generated ones in the last, G wants its images in the
  class it was asked for.

Techniques, each an option (see `GAN` and `DCGAN`): an exponential moving average of the
generator's weights (`ema_decay`; `generate` draws from the average), the zero-centred
R1 penalty (`r1_weight`), differentiable augmentation of what D sees (`augment`), separate
learning rates (`compile(d_learning_rate=..., g_learning_rate=...)`), spectral
normalization of D (`DCGAN(spectral_norm=True)`), and upsampling by resize-convolution
instead of transposed convolution (`DCGAN(upsampling="resize")`).

Example:

>>> gan = DCGAN(latent_dim=64, spectral_norm=True, gan_loss="hinge", ema_decay=0.999, seed=0)
>>> gan.compile(d_learning_rate=4e-4, g_learning_rate=1e-4)
>>> history = gan.fit(data.MNISTBatches(x_train, batch_size=128), epochs=5)
>>> history.history["d_loss"], history.history["d_acc_real"]
"""

import keras
import numpy as np
from keras import layers, ops

from companion import validation
from companion.models import _fit
from companion.models._seeded import SeedStateMixin
from companion.models.gan_parts import DiffAugment, SpectralConv2D, SpectralDense

__all__ = ["LOSSES", "GAN", "GANOptimizers", "MLPGAN", "DCGAN", "InfoGAN", "ConditionalGAN", "ACGAN", "WGANGP"]


@keras.saving.register_keras_serializable(package="companion")
class GANOptimizers(keras.optimizers.Optimizer):
    """The discriminator's and the generator's optimizers, seen by Keras as one.

    Keras's trainers know one `model.optimizer`; JAX's threads every one of its
    variables through the stateless training step. This wrapper lists both
    optimizers' variables after its own (its `iterations` counts GAN steps), so that
    both states travel through `fit` and into checkpoints. It never applies
    gradients itself.
    """

    def __init__(self, d_optimizer, g_optimizer, name="gan_optimizers", **kwargs):
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.d_optimizer = keras.optimizers.get(d_optimizer)
        self.g_optimizer = keras.optimizers.get(g_optimizer)

    @property
    def variables(self):
        return self._variables[:] + self.d_optimizer.variables + self.g_optimizer.variables

    @property
    def own_variables(self):
        return self._variables[:]

    def split(self, values):
        """The values of `variables` as three lists: the wrapper's own, the discriminator
        optimizer's and the generator optimizer's (JAX's stateless step)."""
        n_own, n_d = len(self._variables), len(self.d_optimizer.variables)
        values = list(values)
        if len(values) != len(self.variables):
            raise ValueError(f"Expected {len(self.variables)} optimizer values. Received: {len(values)}")
        return values[:n_own], values[n_own : n_own + n_d], values[n_own + n_d :]

    def join(self, own, d_values, g_values):
        """The inverse of `split`."""
        return list(own) + list(d_values) + list(g_values)

    def count_step(self, own):
        """`own` (the wrapper's values) with `iterations` advanced by one GAN step."""
        own = list(own)
        i = [id(v) for v in self._variables].index(id(self.iterations))
        own[i] = own[i] + 1
        return own

    def build(self, var_list):
        # The two inner optimizers are built by GAN.compile on their own networks.
        self.built = True

    def update_step(self, gradient, variable, learning_rate):
        raise NotImplementedError("GANOptimizers does not apply gradients; its two optimizers do")

    # Only the wrapper's own variables: the inner optimizers save their own state.
    def save_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            variable.assign(store[str(i)])

    def get_config(self):
        config = super().get_config()
        config.update(
            d_optimizer=keras.optimizers.serialize(self.d_optimizer),
            g_optimizer=keras.optimizers.serialize(self.g_optimizer),
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        d_optimizer = keras.optimizers.deserialize(config.pop("d_optimizer"), custom_objects=custom_objects)
        g_optimizer = keras.optimizers.deserialize(config.pop("g_optimizer"), custom_objects=custom_objects)
        return cls(d_optimizer, g_optimizer, name=config.get("name", "gan_optimizers"))


def _non_saturating(real_logits, fake_logits):
    """D: softplus(-D(x)) + softplus(D(G(z))), the binary cross-entropy on logits."""
    if real_logits is None:
        return ops.mean(ops.softplus(-fake_logits))  # G: -log sigmoid(D(G(z)))
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def _hinge(real_logits, fake_logits):
    """D: relu(1 - D(x)) + relu(1 + D(G(z))) (Lim & Ye, 2017; Miyato et al., 2018)."""
    if real_logits is None:
        return -ops.mean(fake_logits)  # G: -D(G(z))
    return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))


# Each loss as one function: (real, fake) logits give D's loss, (None, fake) give G's.
LOSSES = {"non_saturating": _non_saturating, "hinge": _hinge}


class GAN(SeedStateMixin, keras.Model):
    """Base class: subclasses supply `build_generator()` and `build_discriminator()`.

    Args:
        latent_dim: dimension of the noise z ~ N(0, I).
        num_classes: number of labels (conditional models only).
        seed: seed of the noise drawn during training.
        gan_loss: "non_saturating" (the default) or "hinge" (see `LOSSES`).
        r1_weight: gamma of the zero-centred R1 penalty on real images,
            gamma / 2 * E ||grad_x D(x)||^2 (Mescheder et al., 2018); 0 for none.
        ema_decay: keep an exponential moving average of the generator's weights with
            this decay (e.g. 0.999), in `ema_generator`; `generate`, `generate_from` and
            `call` then draw from the average. None for none.
        augment: names among `gan_parts.AUGMENTATIONS` ("translation", "cutout"): the
            differentiable augmentation the discriminator sees real and generated images
            through (Zhao et al., 2020); empty for none.

    The generator maps z (and, if conditional, a one-hot label) to images in [0, 1],
    shape `(n, 28, 28, 1)`; the discriminator maps images (and one-hot labels) to one
    logit each. `fit` takes batches of real images in [0, 1] (conditional models:
    `(images, labels)` pairs, e.g. `MNISTBatches(x, y)`).

    Subclasses change what they need by overriding `discriminator_objective`,
    `generator_objective`, `penalty`, `discriminator_outputs` and `accuracies`
    (`WGANGP`: the critic's loss and its gradient penalty; `ACGAN`: the class head).
    """

    conditional = False
    n_critic = 1  # discriminator steps per generator step (WGANGP sets its own)
    data_shape = validation.IMAGE_SHAPE  # what one example looks like; images unless a subclass says otherwise
    gan_losses = tuple(LOSSES)  # the values `gan_loss` may take

    def __init__(self, latent_dim=100, num_classes=10, seed=None, gan_loss=None, r1_weight=0.0, ema_decay=None, augment=(), **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.num_classes = validation.positive_int("num_classes", num_classes)
        self.gan_loss = self.gan_losses[0] if gan_loss is None else gan_loss
        if self.gan_loss not in self.gan_losses:
            raise ValueError(f"Expected `gan_loss` among {', '.join(self.gan_losses)}. Received: gan_loss={gan_loss!r}")
        self.r1_weight = validation.non_negative("r1_weight", r1_weight)
        self.ema_decay = None if ema_decay is None else validation.number("ema_decay", ema_decay, 0, 1, low_open=True, high_open=True)
        self.seed = validation.seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.augment = tuple([augment] if isinstance(augment, str) else augment)
        self.augmentation = DiffAugment(self.augment, self.seed_generator) if self.augment else None
        self.generator = self.build_generator()
        self.discriminator = self.build_discriminator()
        self.ema_generator = None
        if self.ema_decay is not None:
            self._build_ema()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_acc_real_tracker = keras.metrics.Mean(name="d_acc_real")
        self.d_acc_fake_tracker = keras.metrics.Mean(name="d_acc_fake")
        # Both networks are built (functional); marking the GAN built stops Keras from
        # tracing call() with a batch of real images, which are not its input (z is).
        self.built = True

    # ------------------------------------------------------------------ networks

    def build_generator(self):
        raise NotImplementedError

    def build_discriminator(self):
        raise NotImplementedError

    def _build_ema(self):
        """A second generator of the same architecture, frozen, starting from the generator's weights."""
        self.ema_generator = self.build_generator()
        self.ema_generator.set_weights(self.generator.get_weights())
        self.ema_generator.trainable = False
        self.ema_updates = self.add_weight(name="ema_updates", shape=(), initializer="zeros", trainable=False)

    def update_ema(self):
        """One step of the average, after a generator step. After t steps the averaged
        weights are the exponentially weighted mean of the generator's weights after each
        step, weight proportional to ema_decay^(t - k) for step k, normalized to sum to one
        (the bias correction of Adam's moments): the starting weights count for nothing,
        and a run shorter than the horizon 1 / (1 - ema_decay) is averaged over all of it.
        As a recursion: w_ema <- d_t w_ema + (1 - d_t) w with
        d_t = ema_decay (1 - ema_decay^t) / (1 - ema_decay^(t + 1)) at the t-th update
        (t = 0, 1, ...; d_0 = 0, then d_t rises to ema_decay). Every weight is averaged,
        BN's moving statistics too: the averaged network's activations drift as slowly as
        its weights, so statistics averaged over the same horizon fit it better than the
        generator's latest ones. No-op without `ema_decay`."""
        if self.ema_generator is None:
            return
        t = ops.convert_to_tensor(self.ema_updates)
        d = self.ema_decay
        decay = d * (1.0 - ops.power(d, t)) / (1.0 - ops.power(d, t + 1.0))
        for ema, weight in zip(self.ema_generator.weights, self.generator.weights):
            ema.assign(decay * ops.convert_to_tensor(ema) + (1.0 - decay) * ops.convert_to_tensor(weight))
        self.ema_updates.assign(t + 1.0)

    def inference_state(self):
        """The config and the variables a shipped copy is built from (`save_for_inference`).
        With `ema_decay`, the average stands in for the live generator (it is what
        `generate` draws from) and the average's bookkeeping is left out: the copy is a GAN
        without `ema_decay` whose generator holds the averaged weights, and the file is
        one generator smaller. The variables come in the order a model built from the
        config creates its own."""
        config = self.get_config()
        if self.ema_generator is None:
            return config, list(self.weights)
        config.pop("ema_decay")
        averaged = {id(live): ema for live, ema in zip(self.generator.weights, self.ema_generator.weights)}
        left_out = {id(v) for v in self.ema_generator.weights} | {id(self.ema_updates)}
        return config, [averaged.get(id(v), v) for v in self.weights if id(v) not in left_out]

    def _one_hot(self, labels):
        return ops.one_hot(ops.cast(labels, "int32"), self.num_classes)

    def generate_images(self, z, labels=None, training=False):
        """Backend tensors in, backend tensors out: G(z) as images in [0, 1]. In training, the
        generator being trained; otherwise its moving average where there is one."""
        inputs = [z, self._one_hot(labels)] if self.conditional else z
        network = self.generator if training or self.ema_generator is None else self.ema_generator
        # float32 outputs, also under a mixed-precision policy, so the losses are computed in float32
        return ops.cast(network(inputs, training=training), "float32")

    def discriminate(self, images, labels=None, training=False):
        """D's logits, `(n,)`."""
        images = ops.reshape(images, (-1, *self.data_shape))
        inputs = [images, self._one_hot(labels)] if self.conditional else images
        return ops.reshape(ops.cast(self.discriminator(inputs, training=training), "float32"), (-1,))

    def augment_images(self, images):
        """What the discriminator sees in training: the images through `augment` (if any)."""
        return images if self.augmentation is None else self.augmentation(images)

    def class_loss(self, class_logits, labels):
        """Mean cross-entropy of class logits against the labels (integers)."""
        labels = ops.cast(labels, "int32")
        return ops.mean(ops.sparse_categorical_crossentropy(labels, class_logits, from_logits=True))

    def call(self, inputs, training=False):
        if self.conditional:
            z, labels = inputs
            return self.generate_images(z, labels, training=training)
        return self.generate_images(inputs, training=training)

    # ------------------------------------------------------------------ training

    def compile(self, d_optimizer=None, g_optimizer=None, d_learning_rate=None, g_learning_rate=None, **kwargs):
        """Sets the two optimizers: `default_optimizer()` each unless given (Adam(2e-4,
        beta_1=0.5) for the non-Wasserstein GANs). `d_learning_rate` and `g_learning_rate`
        set the two default optimizers' rates apart (the two time-scale update rule, TTUR,
        Heusel et al., 2017)."""
        if "optimizer" in kwargs or "loss" in kwargs:
            raise ValueError(
                f"{type(self).__name__}.compile takes `d_optimizer` and `g_optimizer`; its losses are "
                "built in. Received: " + ", ".join(k for k in ("optimizer", "loss") if k in kwargs)
            )
        for name, optimizer, rate in (("d", d_optimizer, d_learning_rate), ("g", g_optimizer, g_learning_rate)):
            if rate is not None and optimizer is not None:
                raise ValueError(f"Give `{name}_optimizer` or `{name}_learning_rate`, not both. Received: both")
            if rate is not None:
                validation.number(f"{name}_learning_rate", rate, low=0, low_open=True)
        d_optimizer = keras.optimizers.get(d_optimizer or self.default_optimizer(d_learning_rate))
        g_optimizer = keras.optimizers.get(g_optimizer or self.default_optimizer(g_learning_rate))
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        super().compile(optimizer=GANOptimizers(d_optimizer, g_optimizer), **kwargs)

    def default_optimizer(self, learning_rate=None):
        return keras.optimizers.Adam(learning_rate or 2e-4, beta_1=0.5)

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
        }

    def compile_from_config(self, config):
        if not config:
            return
        self.compile(
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
        )

    def unpack_batch(self, data):
        """Real images `(n, 28, 28, 1)` and labels (or None) from what `fit` passes."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, (tuple, list)):
            x, y = x
        labels = None
        if self.conditional:
            if y is None:
                raise ValueError(f"{type(self).__name__} trains on `(images, labels)` batches; no labels were given")
            labels = y
        return ops.reshape(ops.cast(x, "float32"), (-1, *self.data_shape)), labels

    def sample_noise(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def discriminator_outputs(self, real, fake, labels):
        """D's outputs on real and generated images, from one call on both (so that a
        network with state, such as spectral normalization's `u`, runs once per step):
        a dict with `real_logits` and `fake_logits` (subclasses may add more)."""
        n = ops.shape(real)[0]
        both_labels = None if labels is None else ops.concatenate([labels, labels], axis=0)
        logits = self.discriminate(ops.concatenate([real, fake], axis=0), both_labels, training=True)
        return {"real_logits": logits[:n], "fake_logits": logits[n:]}

    def discriminator_objective(self, outputs, labels):
        """D's loss from its outputs (`discriminator_outputs`, plus the generator's `latents`): the `gan_loss`."""
        return LOSSES[self.gan_loss](outputs["real_logits"], outputs["fake_logits"])

    def penalty(self, real, fake, labels, input_gradient):
        """The regularizer added to D's loss: R1, gamma / 2 * mean ||grad_x D(x)||^2 at the
        real images as D sees them (0 when `r1_weight` is 0)."""
        if not self.r1_weight:
            return 0.0
        return 0.5 * self.r1_weight * self.r1_penalty(real, labels, input_gradient)

    def r1_penalty(self, images, labels, input_gradient):
        """mean over the batch of ||grad_x D(x)||^2 at the given images."""
        grads = input_gradient(lambda x: self.discriminate(x, labels, training=True), images)
        return ops.mean(ops.sum(ops.square(ops.reshape(grads, (ops.shape(grads)[0], -1))), axis=-1))

    def discriminator_loss(self, real, labels, input_gradient):
        """D's loss on one batch, and the logits for the metrics.

        Args:
            real: real images; labels: their labels (conditional models).
            input_gradient: the backend's `input_gradient(function, x)`, the gradient of
                `sum(function(x))` with respect to `x`, itself differentiable (R1, WGAN-GP).
        """
        real = ops.reshape(real, (-1, *self.data_shape))
        batch_size = ops.shape(real)[0]
        latents = self.sample_noise(batch_size)
        fake = ops.stop_gradient(self.generate_images(latents, labels, training=True))
        real, fake = self.augment_images(real), self.augment_images(fake)
        outputs = {**self.discriminator_outputs(real, fake, labels), "latents": latents}
        loss = self.discriminator_objective(outputs, labels) + self.penalty(real, fake, labels, input_gradient)
        return loss, (outputs["real_logits"], outputs["fake_logits"])

    def generator_outputs(self, fake, labels):
        """D's outputs on generated images, as a dict with `fake_logits`."""
        return {"fake_logits": self.discriminate(fake, labels, training=True)}

    def generator_objective(self, outputs, labels):
        """G's loss from D's outputs on its images (plus their `latents`): the `gan_loss`'s generator side."""
        return LOSSES[self.gan_loss](None, outputs["fake_logits"])

    def generator_loss(self, batch_size, labels):
        latents = self.sample_noise(batch_size)
        fake = self.augment_images(self.generate_images(latents, labels, training=True))
        return self.generator_objective({**self.generator_outputs(fake, labels), "latents": latents}, labels)

    def critic_batches(self, real, labels):
        """Splits a batch into the `n_critic` parts the discriminator trains on in turn."""
        n = self.n_critic
        size = ops.shape(real)[0] // n
        parts = []
        for i in range(n):
            part = slice(i * size, (i + 1) * size)
            parts.append((real[part], None if labels is None else labels[part]))
        return parts

    def accuracies(self, real_logits, fake_logits):
        """The shares of real and of generated images that D tells apart (logit > 0 for real)."""
        return ops.mean(ops.cast(real_logits > 0, "float32")), ops.mean(ops.cast(fake_logits < 0, "float32"))

    def update_metrics(self, d_loss, g_loss, real_logits, fake_logits):
        """Updates the trackers; `fit`'s history and progress bar show them."""
        acc_real, acc_fake = self.accuracies(real_logits, fake_logits)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_acc_real_tracker.update_state(acc_real)
        self.d_acc_fake_tracker.update_state(acc_fake)
        return {m.name: m.result() for m in self.gan_metrics}

    @property
    def gan_metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_acc_real_tracker, self.d_acc_fake_tracker]

    def train_step(self, *args):
        from companion.training import gan_train_step

        return gan_train_step(self, *args)

    def test_step(self, *args):
        raise NotImplementedError(f"{type(self).__name__} has no held-out loss; use companion.evaluation.metrics")

    # ------------------------------------------------------------------ public methods

    def generate(self, n, labels=None, seed=None, batch_size=1000):
        """Draws `n` images in [0, 1], `(n, 28, 28, 1)`, as a NumPy array."""
        n = validation.positive_int("n", n)
        labels = validation.labels_for(self, labels, n)
        z = np.random.default_rng(validation.seed("seed", seed)).standard_normal((n, self.latent_dim)).astype("float32")
        return self.generate_from(z, labels, batch_size=batch_size)

    def generate_from(self, z, labels=None, batch_size=1000):
        """G(z) for given latents, as a NumPy array."""
        z = validation.latents("z", z, self.latent_dim)
        labels = validation.labels_for(self, labels, len(z), per="latent")
        parts = []
        for part in _fit.chunks(len(z), batch_size):
            y = None if labels is None else ops.convert_to_tensor(labels[part])
            parts.append(ops.convert_to_numpy(self.generate_images(ops.convert_to_tensor(z[part]), y)))
        return np.concatenate(parts)

    def discriminator_probability(self, images, labels=None):
        """D(x) = sigmoid(logit) for images in [0, 1] (for WGAN-GP: the raw critic score)."""
        images = self._check_data("images", images)
        labels = validation.labels_for(self, labels, len(images))
        if labels is not None:
            labels = ops.convert_to_tensor(labels)
        return ops.convert_to_numpy(self.scores(self.discriminate(ops.convert_to_tensor(images), labels)))

    def scores(self, logits):
        """What `discriminator_probability` reports for D's logits: sigmoid(logit)."""
        return ops.sigmoid(logits)

    def _check_data(self, name, x):
        if self.data_shape == validation.IMAGE_SHAPE:
            return validation.images(name, x)
        x = np.asarray(x, dtype="float32")
        if x.shape[1:] != tuple(self.data_shape):
            raise ValueError(f"Expected `{name}` of shape (n, {', '.join(map(str, self.data_shape))}). Received: {name}.shape={x.shape}")
        return x

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            images = self._check_data("x", x)
            if self.conditional:
                validation.labels("y", y, self.num_classes, n=len(images))
        return _fit.fit(super().fit, self, x, y, args, kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(latent_dim=self.latent_dim, num_classes=self.num_classes, seed=self.seed)
        if self.gan_loss != self.gan_losses[0]:
            config["gan_loss"] = self.gan_loss
        if self.r1_weight:
            config["r1_weight"] = self.r1_weight
        if self.ema_decay is not None:
            config["ema_decay"] = self.ema_decay
        if self.augment:
            config["augment"] = list(self.augment)
        return config


def _spectral_norm_flag(value):
    if not isinstance(value, bool):
        raise ValueError(f"Expected `spectral_norm` to be True or False. Received: spectral_norm={value!r}")
    return value


@keras.saving.register_keras_serializable(package="companion")
class MLPGAN(GAN):
    """The source's GAN, sized as there: generator Dense 32 -> 64 -> 784 (sigmoid),
    discriminator Dense 64 -> 32 -> 1, made correct: the discriminator ends in a logit
    (no attribute named `output`, which Keras reserves), the generator uses the
    non-saturating loss, and no `trainable=False` compile trick is needed because each
    network has its own optimizer.

    Args:
        generator_units, discriminator_units: the hidden layers' widths (default: the source's).
        spectral_norm: the discriminator's layers spectrally normalized (`gan_parts.SpectralDense`).
        **kwargs: the options of `GAN`.
    """

    SOURCE_SIZES = {"generator_units": (32, 64), "discriminator_units": (64, 32)}

    def __init__(self, latent_dim=100, generator_units=(32, 64), discriminator_units=(64, 32), spectral_norm=False, **kwargs):
        self.generator_units = tuple(validation.positive_int("generator_units", u) for u in generator_units)
        self.discriminator_units = tuple(validation.positive_int("discriminator_units", u) for u in discriminator_units)
        self.spectral_norm = _spectral_norm_flag(spectral_norm)
        super().__init__(latent_dim=latent_dim, **kwargs)

    def build_generator(self):
        z = keras.Input((self.latent_dim,), name="z")
        h = z
        for units in self.generator_units:
            h = layers.Dense(units, activation="relu")(h)
        images = layers.Reshape(validation.IMAGE_SHAPE)(layers.Dense(validation.IMAGE_PIXELS, activation="sigmoid")(h))
        return keras.Model(z, images, name="generator")

    def build_discriminator(self):
        dense = SpectralDense if self.spectral_norm else layers.Dense
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = layers.Flatten()(images)
        for units in self.discriminator_units:
            h = dense(units, activation="relu")(h)
        return keras.Model(images, dense(1, name="logit")(h), name="discriminator")

    def get_config(self):
        config = super().get_config()
        for name, default in self.SOURCE_SIZES.items():
            if getattr(self, name) != default:
                config[name] = list(getattr(self, name))
        if self.spectral_norm:
            config["spectral_norm"] = True
        return config


UPSAMPLING = ("transpose", "resize")


def _upsample(h, filters, upsampling, **kwargs):
    """Doubles the resolution: a 4x4 transposed convolution of stride 2, or ("resize")
    nearest-neighbour upsampling followed by a 3x3 convolution, which cannot make the
    checkerboard pattern of overlapping strided kernels (Odena et al., 2016)."""
    if upsampling == "transpose":
        return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", **kwargs)(h)
    h = layers.UpSampling2D(2, interpolation="nearest")(h)
    return layers.Conv2D(filters, 3, padding="same", **kwargs)(h)


def _dcgan_generator_body(h, filters, upsampling="transpose"):
    h = layers.Dense(7 * 7 * filters[0], use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    h = layers.LeakyReLU(0.2)(h)
    h = layers.Reshape((7, 7, filters[0]))(h)
    h = _upsample(h, filters[1], upsampling, use_bias=False)
    h = layers.BatchNormalization()(h)
    h = layers.LeakyReLU(0.2)(h)
    return _upsample(h, 1, upsampling, activation="sigmoid", name="images")


def _dcgan_discriminator_body(h, filters, spectral_norm=False):
    convolution = SpectralConv2D if spectral_norm else layers.Conv2D
    for f in filters[::-1]:
        h = convolution(f, 4, strides=2, padding="same")(h)
        h = layers.LeakyReLU(0.2)(h)
    return layers.Flatten()(h)


@keras.saving.register_keras_serializable(package="companion")
class DCGAN(GAN):
    """A DCGAN for 28x28 images.

    Generator: Dense 7x7xfilters[0] -> BN -> LeakyReLU -> ConvTranspose filters[1]
    (4x4, stride 2) -> BN -> LeakyReLU -> ConvTranspose 1 (4x4, stride 2, sigmoid).
    Discriminator: Conv d_filters[1] -> Conv d_filters[0] (4x4, stride 2, LeakyReLU) ->
    Dense 1 (logit); no batch normalization, so that it also serves as a WGAN-GP critic.

    Args:
        filters: the generator's channels at 7x7 and 14x14 (and the discriminator's,
            unless `d_filters` is given).
        d_filters: the discriminator's channels at 7x7 and 14x14.
        spectral_norm: the discriminator's convolutions and logit spectrally normalized
            (`gan_parts.SpectralConv2D`, `SpectralDense`; Miyato et al., 2018).
        upsampling: "transpose" (the default) or "resize" (see `_upsample`).
        **kwargs: the options of `GAN` (`gan_loss`, `r1_weight`, `ema_decay`, `augment`, `seed`).
    """

    def __init__(self, latent_dim=64, filters=(128, 64), d_filters=None, spectral_norm=False, upsampling="transpose", **kwargs):
        self.filters = self._two_filters("filters", filters)
        self.d_filters = self.filters if d_filters is None else self._two_filters("d_filters", d_filters)
        self.spectral_norm = _spectral_norm_flag(spectral_norm)
        if upsampling not in UPSAMPLING:
            raise ValueError(f"Expected `upsampling` among {', '.join(UPSAMPLING)}. Received: upsampling={upsampling!r}")
        self.upsampling = upsampling
        super().__init__(latent_dim=latent_dim, **kwargs)

    @staticmethod
    def _two_filters(name, filters):
        values = tuple(validation.positive_int(name, f) for f in filters)
        if len(values) != 2:
            raise ValueError(f"Expected two `{name}`. Received: {name}={filters!r}")
        return values

    def build_generator(self):
        z = keras.Input((self.latent_dim,), name="z")
        return keras.Model(z, _dcgan_generator_body(z, self.filters, self.upsampling), name="generator")

    def _logit_layer(self, units=1, name="logit"):
        return (SpectralDense if self.spectral_norm else layers.Dense)(units, name=name)

    def build_discriminator(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = _dcgan_discriminator_body(images, self.d_filters, self.spectral_norm)
        return keras.Model(images, self._logit_layer()(h), name="discriminator")

    def get_config(self):
        config = {**super().get_config(), "filters": list(self.filters)}
        if self.d_filters != self.filters:
            config["d_filters"] = list(self.d_filters)
        if self.spectral_norm:
            config["spectral_norm"] = True
        if self.upsampling != "transpose":
            config["upsampling"] = self.upsampling
        return config


def _on_real_and_fake(discriminate, real, fake, names):
    """Runs a two-headed `discriminate(images, training=True)` once on real and generated
    images together (one call, as `GAN.discriminator_outputs` explains) and splits each
    head: `{"real_<name>": ..., "fake_<name>": ...}` for each of the `names` of its outputs."""
    n = ops.shape(real)[0]
    heads = discriminate(ops.concatenate([real, fake], axis=0), training=True)
    outputs = {}
    for name, head in zip(names, heads, strict=True):
        outputs[f"real_{name}"], outputs[f"fake_{name}"] = head[:n], head[n:]
    return outputs


@keras.saving.register_keras_serializable(package="companion")
class InfoGAN(DCGAN):
    """A DCGAN whose latent ends in a categorical code, learned without labels (InfoGAN,
    Chen et al., 2016).

    The last `code_classes` of the `latent_dim` inputs of the generator are a one-hot code
    c drawn uniformly, the rest z ~ N(0, I). The discriminator has a second head, Q, on the
    same features, that predicts c from a generated image; both networks add `info_weight`
    times Q's cross-entropy on generated images (a lower bound on the mutual information
    between c and G(z, c)), so the generator learns to make c visible in its images. On
    MNIST the easiest thing for c to carry is the digit: the generator then draws each
    sample from one of `code_classes` discrete modes instead of the continuum between
    them, where in-between shapes live. No label is read anywhere: the model is
    unconditional, and `generate(n)` draws c uniformly.

    Args:
        code_classes: the number of values of c (10: one per digit, if it finds them).
        info_weight: the weight of Q's cross-entropy in both losses.
        **kwargs: the options of `DCGAN`.
    """

    def __init__(self, latent_dim=64, code_classes=10, info_weight=1.0, **kwargs):
        self.code_classes = validation.positive_int("code_classes", code_classes)
        self.info_weight = validation.non_negative("info_weight", info_weight)
        if not self.code_classes < latent_dim:
            raise ValueError(f"Expected `code_classes` < latent_dim = {latent_dim}. Received: code_classes={code_classes}")
        super().__init__(latent_dim=latent_dim, **kwargs)

    def build_discriminator(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = _dcgan_discriminator_body(images, self.d_filters, self.spectral_norm)
        heads = [self._logit_layer()(h), layers.Dense(self.code_classes, name="code_logits")(h)]
        return keras.Model(images, heads, name="discriminator")

    def discriminate_with_codes(self, images, training=False):
        """D's logits `(n,)` and Q's code logits `(n, code_classes)`."""
        logits, code_logits = self.discriminator(ops.reshape(images, (-1, *self.data_shape)), training=training)
        return ops.reshape(ops.cast(logits, "float32"), (-1,)), ops.cast(code_logits, "float32")

    def discriminate(self, images, labels=None, training=False):
        return self.discriminate_with_codes(images, training=training)[0]

    def codes_of(self, latents):
        """The code c (integers) of each latent: the largest of its last `code_classes` entries."""
        return ops.argmax(latents[:, self.latent_dim - self.code_classes :], axis=-1)

    def with_codes(self, z, codes):
        """Latents whose last `code_classes` entries are the one-hot `codes`."""
        one_hot = ops.one_hot(ops.cast(codes, "int32"), self.code_classes)
        return ops.concatenate([z[:, : self.latent_dim - self.code_classes], ops.cast(one_hot, z.dtype)], axis=-1)

    def sample_noise(self, batch_size):
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        codes = keras.random.randint((batch_size,), 0, self.code_classes, seed=self.seed_generator)
        return self.with_codes(z, codes)

    def discriminator_outputs(self, real, fake, labels):
        return _on_real_and_fake(self.discriminate_with_codes, real, fake, ("logits", "codes"))

    def info_loss(self, outputs):
        """Q's cross-entropy against the codes the generated images were drawn with."""
        return self.class_loss(outputs["fake_codes"], self.codes_of(outputs["latents"]))

    def discriminator_objective(self, outputs, labels):
        return super().discriminator_objective(outputs, labels) + self.info_weight * self.info_loss(outputs)

    def generator_outputs(self, fake, labels):
        logits, code_logits = self.discriminate_with_codes(fake, training=True)
        return {"fake_logits": logits, "fake_codes": code_logits}

    def generator_objective(self, outputs, labels):
        return super().generator_objective(outputs, labels) + self.info_weight * self.info_loss(outputs)

    def draw_codes(self, n, rng):
        """`n` codes as `generate` draws them: uniformly."""
        return rng.integers(0, self.code_classes, n)

    def sample_latents(self, n, seed=None, codes=None):
        """`n` latents as `generate` draws them, `(n, latent_dim)` float32, for
        `generate_from` (e.g. to interpolate between two): z ~ N(0, I), and a one-hot code
        in the last `code_classes` entries (drawn by `draw_codes`, or the given `codes`)."""
        n = validation.positive_int("n", n)
        rng = np.random.default_rng(validation.seed("seed", seed))
        z = rng.standard_normal((n, self.latent_dim)).astype("float32")
        codes = self.draw_codes(n, rng) if codes is None else validation.labels("codes", codes, self.code_classes, n=n)
        z[:, self.latent_dim - self.code_classes :] = np.eye(self.code_classes, dtype="float32")[codes]
        return z

    def generate(self, n, labels=None, seed=None, batch_size=1000, codes=None):
        """Draws `n` images in [0, 1] from `sample_latents(n, seed, codes)`."""
        n = validation.positive_int("n", n)
        validation.labels_for(self, labels, n)  # an unconditional model: refuses labels
        return self.generate_from(self.sample_latents(n, seed, codes), batch_size=batch_size)

    def get_config(self):
        return {**super().get_config(), "code_classes": self.code_classes, "info_weight": self.info_weight}


@keras.saving.register_keras_serializable(package="companion")
class ClusterGAN(InfoGAN):
    """A DCGAN trained on clusters of the training images in place of their labels: no
    label is read anywhere, and `generate(n)` takes none (after the self-conditioned GAN
    of Liu et al., 2020, with clusters found once, before training).

    Before the first step, `fit_clusters` groups the training images into `clusters`
    clusters by k-means (`companion.models.pca.kmeans`) on their first `cluster_components`
    principal components, and stores the projection, the centres and each cluster's
    share of the images in the model (saved in the `.keras` file). Then, as in `ACGAN`,
    the discriminator has a second head of `clusters + 1` classes on the same features:
    it learns to put real images in their cluster and generated ones in the last class,
    and the generator, whose latent ends in a one-hot cluster code drawn with the
    clusters' shares (as `InfoGAN`'s), wants its images in the cluster of its code.
    Both add `class_weight` times that cross-entropy to their losses.

    Why: an unconditional discriminator's only question is real or fake; the class head
    also makes its features tell the kinds of image apart, and tells the generator which
    kind each sample should be, which is what made `ACGAN` draw clean digits where the
    same networks without it did not. Clusters of pixels are not digits (on MNIST, 10
    clusters on 50 components hold the most common digit for 58% of the images), but
    they need no labels; a sample's kind is drawn with its cluster's share, so the
    samples keep the training images' mix.

    Args:
        clusters: the number of clusters (the code's values).
        cluster_components: the principal components k-means runs on.
        class_weight: the weight of the class head's cross-entropy in both losses.
        **kwargs: the options of `DCGAN` (`latent_dim` counts the code's entries).
    """

    def __init__(self, latent_dim=64, clusters=10, cluster_components=50, class_weight=1.0, **kwargs):
        self.clusters = validation.positive_int("clusters", clusters)
        self.cluster_components = validation.positive_int("cluster_components", cluster_components)
        if not self.cluster_components <= validation.IMAGE_PIXELS:
            raise ValueError(f"Expected `cluster_components` <= {validation.IMAGE_PIXELS}. Received: cluster_components={cluster_components}")
        kwargs.pop("code_classes", None)
        kwargs.pop("info_weight", None)
        super().__init__(latent_dim=latent_dim, code_classes=self.clusters, info_weight=class_weight, **kwargs)
        self.class_weight = self.info_weight
        weight = lambda name, shape: self.add_weight(name=name, shape=shape, initializer="zeros", trainable=False)
        self.cluster_mean = weight("cluster_mean", (validation.IMAGE_PIXELS,))
        self.cluster_projection = weight("cluster_projection", (validation.IMAGE_PIXELS, self.cluster_components))
        self.cluster_centres = weight("cluster_centres", (self.clusters, self.cluster_components))
        self.cluster_shares = weight("cluster_shares", (self.clusters,))

    @property
    def clusters_fitted(self):
        return bool(np.sum(ops.convert_to_numpy(self.cluster_shares)) > 0)

    def fit_clusters(self, images, seed=0, max_images=None):
        """Finds the clusters of `images` (in [0, 1], `(n, 28, 28, 1)`): principal components
        of the images, k-means on their codes; returns the cluster of each image."""
        from companion.models.pca import PCA, kmeans

        images = validation.images("images", images)
        if len(images) < max(self.clusters, self.cluster_components):
            raise ValueError(
                f"Expected at least {max(self.clusters, self.cluster_components)} images to find {self.clusters} clusters "
                f"on {self.cluster_components} components. Received: {len(images)} images"
            )
        flat = images.reshape(len(images), -1)
        pca = PCA(self.cluster_components).fit(flat)
        codes = pca.transform(flat)
        centres, assignments, _ = kmeans(codes, self.clusters, seed=seed)
        self.cluster_mean.assign(pca.mean.astype("float32"))
        self.cluster_projection.assign(pca.components.T.astype("float32"))
        self.cluster_centres.assign(centres.astype("float32"))
        shares = np.bincount(assignments, minlength=self.clusters) / len(assignments)
        self.cluster_shares.assign(np.maximum(shares, 1e-12).astype("float32"))  # an empty cluster is never drawn
        return assignments

    def clusters_of(self, images):
        """The cluster (int32) of each image: its nearest centre in the components' space."""
        flat = ops.reshape(ops.cast(images, "float32"), (-1, validation.IMAGE_PIXELS))
        codes = ops.matmul(flat - self.cluster_mean, self.cluster_projection)
        distances = (
            ops.sum(ops.square(codes), axis=1, keepdims=True)
            - 2.0 * ops.matmul(codes, ops.transpose(self.cluster_centres))
            + ops.sum(ops.square(self.cluster_centres), axis=1)[None, :]
        )
        return ops.cast(ops.argmin(distances, axis=1), "int32")

    def unpack_batch(self, data):
        """The real images and, as their labels, their clusters."""
        images, _ = super().unpack_batch(data)
        return images, self.clusters_of(images)

    def build_discriminator(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = _dcgan_discriminator_body(images, self.d_filters, self.spectral_norm)
        heads = [self._logit_layer()(h), self._logit_layer(self.clusters + 1, name="class_logits")(h)]
        return keras.Model(images, heads, name="discriminator")

    def sample_noise(self, batch_size):
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        log_shares = ops.log(ops.convert_to_tensor(self.cluster_shares))[None, :]
        codes = keras.random.categorical(log_shares, batch_size, seed=self.seed_generator)[0]
        return self.with_codes(z, codes)

    def discriminator_outputs(self, real, fake, labels):
        return _on_real_and_fake(self.discriminate_with_codes, real, fake, ("logits", "classes"))

    def discriminator_objective(self, outputs, labels):
        """The `gan_loss` plus `class_weight` times the class loss: real images in their
        cluster (`labels`, from `unpack_batch`), generated ones in the last class."""
        generated = ops.full((ops.shape(outputs["fake_classes"])[0],), self.clusters, dtype="int32")
        class_loss = self.class_loss(outputs["real_classes"], labels) + self.class_loss(outputs["fake_classes"], generated)
        # The adversarial term of the class after InfoGAN in the method order: GAN's
        # `gan_loss`, or, in `ClusterWGANGP`, the critic's.
        return super(InfoGAN, self).discriminator_objective(outputs, labels) + self.class_weight * class_loss

    def generator_outputs(self, fake, labels):
        logits, classes = self.discriminate_with_codes(fake, training=True)
        return {"fake_logits": logits, "fake_classes": classes}

    def generator_objective(self, outputs, labels):
        """The `gan_loss` plus `class_weight` times the class loss of its images against their codes."""
        class_loss = self.class_loss(outputs["fake_classes"], self.codes_of(outputs["latents"]))
        return super(InfoGAN, self).generator_objective(outputs, labels) + self.class_weight * class_loss

    def draw_codes(self, n, rng):
        """`n` cluster codes drawn with the clusters' shares of the training images."""
        shares = ops.convert_to_numpy(self.cluster_shares).astype("float64")
        return rng.choice(self.clusters, size=n, p=shares / shares.sum())

    def fit(self, x=None, y=None, *args, **kwargs):
        """Trains as `GAN.fit`; first finds the clusters of the images given (an array or
        `MNISTBatches`), unless the model has them (fitted before, or loaded)."""
        from companion import data

        if not self.clusters_fitted:
            images = x.x if isinstance(x, data.MNISTBatches) else x
            if not isinstance(images, np.ndarray):
                raise ValueError(
                    "ClusterGAN finds its clusters before training: call `fit_clusters(images)` first, or pass "
                    f"`x` as an array or MNISTBatches. Received: x of type {type(x).__name__}"
                )
            self.fit_clusters(images.reshape(len(images), *validation.IMAGE_SHAPE))
        return super().fit(x, y, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        for key in ("code_classes", "info_weight"):
            config.pop(key)
        return {**config, "clusters": self.clusters, "cluster_components": self.cluster_components, "class_weight": self.class_weight}


@keras.saving.register_keras_serializable(package="companion")
class ConditionalGAN(DCGAN):
    """A DCGAN conditioned on the label.

    The generator sees z concatenated with the one-hot label; the discriminator sees
    the image with one extra channel, a learned 28x28 map of the label.
    """

    conditional = True

    def build_generator(self):
        z = keras.Input((self.latent_dim,), name="z")
        one_hot = keras.Input((self.num_classes,), name="one_hot")
        h = layers.Concatenate()([z, one_hot])
        return keras.Model([z, one_hot], _dcgan_generator_body(h, self.filters, self.upsampling), name="generator")

    def build_discriminator(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        one_hot = keras.Input((self.num_classes,), name="one_hot")
        label_map = layers.Reshape(validation.IMAGE_SHAPE)(layers.Dense(validation.IMAGE_PIXELS, name="label_map")(one_hot))
        h = _dcgan_discriminator_body(layers.Concatenate()([images, label_map]), self.d_filters, self.spectral_norm)
        return keras.Model([images, one_hot], self._logit_layer()(h), name="discriminator")


@keras.saving.register_keras_serializable(package="companion")
class ACGAN(ConditionalGAN):
    """A conditional DCGAN with an auxiliary classifier (AC-GAN, Odena et al., 2017) that
    also knows a class for generated images.

    The generator is `ConditionalGAN`'s (z concatenated with the one-hot label). The
    discriminator sees the image alone and has two heads on the same features: the
    real/fake logit and the logits of `num_classes + 1` classes, the last meaning
    "generated". Both networks add `class_weight` times the class head's cross-entropy:
    the discriminator puts real images in their true class and generated ones in the
    last, the generator wants its images in the class it asked for. So the generator is
    rewarded for drawing the digit it was asked for, not only a real-looking one, which a
    discriminator that merely reads the label (`ConditionalGAN`) leaves to chance.

    Why the extra class: Odena et al.'s head has `num_classes` classes and learns from
    generated images with their requested labels. Trained so, the head learned a code
    that the generator left in its samples: after 5 of the recipe's 10 epochs it gave the
    requested label for 100% of 2,000 samples, the evaluation classifier for 56%. A head
    that learns from real images only was fooled the same way (after 3 epochs: 100%
    against 72%), since nothing taught it what generated images look like. With the last
    class, fooling the head takes what fooling the discriminator takes: a real-looking
    digit, here of the requested class.
    """

    def __init__(self, latent_dim=64, class_weight=1.0, **kwargs):
        self.class_weight = validation.non_negative("class_weight", class_weight)
        super().__init__(latent_dim=latent_dim, **kwargs)

    def build_discriminator(self):
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        h = _dcgan_discriminator_body(images, self.d_filters, self.spectral_norm)
        heads = [self._logit_layer()(h), self._logit_layer(self.num_classes + 1, name="class_logits")(h)]
        return keras.Model(images, heads, name="discriminator")

    def discriminate_with_classes(self, images, labels=None, training=False):
        """D's logits `(n,)` and class logits `(n, num_classes + 1)`; the labels are not read."""
        logits, class_logits = self.discriminator(ops.reshape(images, (-1, *self.data_shape)), training=training)
        return ops.reshape(ops.cast(logits, "float32"), (-1,)), ops.cast(class_logits, "float32")

    def discriminate(self, images, labels=None, training=False):
        return self.discriminate_with_classes(images, labels, training=training)[0]

    def discriminator_outputs(self, real, fake, labels):
        return _on_real_and_fake(self.discriminate_with_classes, real, fake, ("logits", "classes"))

    def discriminator_objective(self, outputs, labels):
        """The `gan_loss` plus `class_weight` times the class loss: real images in their
        class, generated ones in the last."""
        generated = ops.full((ops.shape(outputs["fake_classes"])[0],), self.num_classes, dtype="int32")
        class_loss = self.class_loss(outputs["real_classes"], labels) + self.class_loss(outputs["fake_classes"], generated)
        return super().discriminator_objective(outputs, labels) + self.class_weight * class_loss

    def generator_outputs(self, fake, labels):
        logits, classes = self.discriminate_with_classes(fake, training=True)
        return {"fake_logits": logits, "fake_classes": classes}

    def generator_objective(self, outputs, labels):
        """The `gan_loss` plus `class_weight` times the class loss of its images against the requested labels."""
        return super().generator_objective(outputs, labels) + self.class_weight * self.class_loss(outputs["fake_classes"], labels)

    def classify(self, images, batch_size=1000):
        """The class head's probabilities `(n, num_classes + 1)` for images in [0, 1]; the
        last column is the probability that the image was generated."""
        images = self._check_data("images", images)
        parts = []
        for part in _fit.chunks(len(images), batch_size):
            class_logits = self.discriminate_with_classes(ops.convert_to_tensor(images[part]))[1]
            parts.append(ops.convert_to_numpy(ops.softmax(class_logits, axis=-1)))
        return np.concatenate(parts)

    def get_config(self):
        return {**super().get_config(), "class_weight": self.class_weight}


@keras.saving.register_keras_serializable(package="companion")
class WGANGP(DCGAN):
    """WGAN-GP (Gulrajani et al., 2017) on the DCGAN networks.

    The critic takes `n_critic` steps per generator step, each on its own part of the
    batch (so the batch size should be a multiple of `n_critic`), with the gradient
    penalty weighted by `gp_weight` at points drawn uniformly on the segments between
    real and fake images. Default optimizers: Adam(1e-4, beta_1=0, beta_2=0.9).
    """

    gan_losses = ("wasserstein",)

    def __init__(self, latent_dim=64, n_critic=5, gp_weight=10.0, **kwargs):
        self.n_critic = validation.positive_int("n_critic", n_critic)
        self.gp_weight = validation.non_negative("gp_weight", gp_weight)
        super().__init__(latent_dim=latent_dim, **kwargs)

    def default_optimizer(self, learning_rate=None):
        return keras.optimizers.Adam(learning_rate or 1e-4, beta_1=0.0, beta_2=0.9)

    def discriminator_objective(self, outputs, labels):
        """The critic's estimate of -W1: mean C(G(z)) - mean C(x)."""
        return ops.mean(outputs["fake_logits"]) - ops.mean(outputs["real_logits"])

    def generator_objective(self, outputs, labels):
        return -ops.mean(outputs["fake_logits"])

    def penalty(self, real, fake, labels, input_gradient):
        """`gp_weight` times the gradient penalty at points uniformly between real and fake
        images, plus R1 where `r1_weight` is set."""
        noise_shape = (ops.shape(real)[0],) + (1,) * len(self.data_shape)
        alpha = keras.random.uniform(noise_shape, seed=self.seed_generator)
        interpolated = alpha * real + (1.0 - alpha) * fake
        gradient_penalty = self.gradient_penalty(interpolated, labels, input_gradient)
        return self.gp_weight * gradient_penalty + super().penalty(real, fake, labels, input_gradient)

    def gradient_penalty(self, images, labels, input_gradient):
        """mean over the batch of (||grad_x C(x)|| - 1)^2 at the given images."""
        grads = input_gradient(lambda x: self.discriminate(x, labels, training=True), images)
        norms = ops.sqrt(ops.sum(ops.square(ops.reshape(grads, (ops.shape(grads)[0], -1))), axis=-1) + 1e-12)
        return ops.mean(ops.square(norms - 1.0))

    def accuracies(self, real_logits, fake_logits):
        """A critic has no threshold; count a real image as told apart when it scores above
        the fakes' mean, and a fake when it scores below the reals' mean."""
        acc_real = ops.mean(ops.cast(real_logits > ops.mean(fake_logits), "float32"))
        acc_fake = ops.mean(ops.cast(fake_logits < ops.mean(real_logits), "float32"))
        return acc_real, acc_fake

    def scores(self, logits):
        """The critic's raw scores (a critic gives no probability)."""
        return logits

    def get_config(self):
        return {**super().get_config(), "n_critic": self.n_critic, "gp_weight": self.gp_weight}


@keras.saving.register_keras_serializable(package="companion")
class ClusterWGANGP(ClusterGAN, WGANGP):
    """`ClusterGAN`'s clusters and class head on a WGAN-GP critic: the critic's objective,
    its gradient penalty, `n_critic` steps per generator step and its optimizers are
    `WGANGP`'s; the class head's cross-entropy is added to both losses as in `ClusterGAN`
    (as the AC-GAN loss was added to a WGAN-GP critic by Gulrajani et al., 2017).

    Args: those of `ClusterGAN` and of `WGANGP` (`n_critic`, `gp_weight`).
    """
