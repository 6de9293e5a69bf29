"""Reference implementations of the book's models, written the way the keras.io examples are.

Each reference trains exactly the networks of the companion's model (built by the same
recipe, so the architecture is identical layer for layer) with a training loop in the
style of the keras.io examples, on TensorFlow:

* VAEs (keras.io "Variational AutoEncoder"): a `keras.Model` subclass whose `train_step`
  runs the encoder, samples z, applies a sigmoid to the decoder's output and sums
  `keras.losses.binary_crossentropy` over the pixels, inside one `tf.GradientTape`, then
  `optimizer.apply_gradients`, with three `Mean` trackers;
* GANs (keras.io "DCGAN to generate face images"): generated and real images concatenated
  for one discriminator pass under its own tape, with noisy labels, then a *second*
  generator pass for the generator's tape; `BinaryCrossentropy(from_logits=True)`;
  the conditional GAN (an AC-GAN) adds its class head's cross-entropy to both losses, as
  the companion's does (real images in their class, generated ones in the extra class);
* WGAN-GP (keras.io "WGAN-GP overriding `Model.train_step`"): `d_steps` critic steps, each
  on the whole batch with fresh noise and a nested tape for the gradient penalty, then a
  generator step;
* the classifier and the denoiser (keras.io "Simple MNIST convnet", "Convolutional
  autoencoder for image denoising"): `compile(loss=...)` and `fit`; these are what the
  companion does too, so their ratio is expected to be about 1.

Everything is left at Keras's defaults (`fit` without `jit_compile` or
`steps_per_execution`), as the examples leave it.

    from bench.reference import reference_throughput, reference_trainee
    reference_throughput("cluster_gan", batch_size=128)
    benchmark.throughput("cluster_gan", alongside=reference_trainee("cluster_gan"))  # interleaved runs
"""

import statistics

import keras
import tensorflow as tf
from keras import ops

from companion import data, recipes
from companion.models import ACGAN, WGANGP
from companion.training import benchmark

__all__ = ["build_reference", "reference_throughput", "reference_trainee"]


class KerasIOVAE(keras.Model):
    def __init__(self, encoder, decoder, decoder_reads="z", num_classes=10, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.decoder_reads, self.num_classes = decoder_reads, num_classes
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        data, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        labels = None
        if isinstance(data, (tuple, list)):  # conditional: the input is (images, labels)
            data, labels = data
            labels = tf.one_hot(tf.cast(labels, "int32"), self.num_classes)
        data = tf.reshape(data, (-1, 28, 28, 1))  # keras.io feeds (n, 28, 28, 1) arrays
        with tf.GradientTape() as tape:
            z_mean, z_log_var = tf.split(self.encoder(data if labels is None else [data, labels]), 2, axis=-1)
            epsilon = keras.random.normal(shape=tf.shape(z_mean), seed=self.seed_generator)
            z = z_mean + tf.exp(0.5 * z_log_var) * epsilon
            inputs = {"z": z, "labels": [z, labels], "images": [z, data]}[self.decoder_reads]
            reconstruction = tf.sigmoid(self.decoder(inputs))
            reconstruction_loss = tf.reduce_mean(
                tf.reduce_sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
            kl_loss = tf.reduce_mean(tf.reduce_sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


class KerasIOGAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim, conditional=False, num_classes=10, class_weight=0.0, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator = discriminator, generator
        self.latent_dim, self.conditional, self.num_classes = latent_dim, conditional, num_classes
        self.class_weight = class_weight  # > 0: an AC-GAN, whose discriminator reads images only and has a class head
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def _inputs(self, x, labels):
        return x if labels is None else [x, labels]

    def _loss(self, targets, images, labels, class_targets=None):
        """The loss of the discriminator's outputs on `images` against `targets` (either network's); an AC-GAN
        adds its class head's cross-entropy against `class_targets` (one-hot, digits + "generated")."""
        if not self.class_weight:
            return self.loss_fn(targets, self.discriminator(self._inputs(images, labels)))
        logits, class_logits = self.discriminator(images)
        class_loss = keras.losses.categorical_crossentropy(class_targets, class_logits, from_logits=True)
        return self.loss_fn(targets, logits) + self.class_weight * tf.reduce_mean(class_loss)

    def _class_targets(self, labels, generated=False):
        if generated:
            return tf.one_hot(tf.fill((tf.shape(labels)[0],), self.num_classes), self.num_classes + 1)
        return tf.pad(labels, [[0, 0], [0, 1]])

    def train_step(self, data):
        real_images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        if labels is not None:
            labels = tf.one_hot(tf.cast(labels, "int32"), self.num_classes)
        real_images = tf.reshape(real_images, (-1, 28, 28, 1))  # keras.io feeds (n, 28, 28, 1) arrays
        batch_size = tf.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        generated_images = self.generator(self._inputs(random_latent_vectors, labels))
        combined_images = tf.concat([generated_images, real_images], axis=0)
        combined_labels = None if labels is None else tf.concat([labels, labels], axis=0)
        targets = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        targets += 0.05 * tf.random.uniform(tf.shape(targets))  # label noise, as in the example
        with tf.GradientTape() as tape:
            class_targets = None
            if self.class_weight:  # generated images first, as in combined_images
                class_targets = tf.concat([self._class_targets(labels, generated=True), self._class_targets(labels)], axis=0)
            d_loss = self._loss(targets, combined_images, combined_labels, class_targets)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            fake = self.generator(self._inputs(random_latent_vectors, labels))
            g_loss = self._loss(misleading_labels, fake, labels,
                                              self._class_targets(labels) if self.class_weight else None)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


class KerasIOWGANGP(keras.Model):
    def __init__(self, discriminator, generator, latent_dim, discriminator_extra_steps=5, gp_weight=10.0, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator = discriminator, generator
        self.latent_dim, self.d_steps, self.gp_weight = latent_dim, discriminator_extra_steps, gp_weight

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def gradient_penalty(self, batch_size, real_images, fake_images):
        alpha = tf.random.uniform([batch_size, 1, 1, 1], 0.0, 1.0)
        interpolated = real_images + alpha * (fake_images - real_images)
        with tf.GradientTape() as gp_tape:
            gp_tape.watch(interpolated)
            pred = self.discriminator(interpolated, training=True)
        grads = gp_tape.gradient(pred, [interpolated])[0]
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
        return tf.reduce_mean((norm - 1.0) ** 2)

    def train_step(self, real_images):
        real_images, _, _ = keras.utils.unpack_x_y_sample_weight(real_images)
        real_images = tf.reshape(real_images, (-1, 28, 28, 1))  # keras.io feeds (n, 28, 28, 1) arrays
        batch_size = tf.shape(real_images)[0]
        for _ in range(self.d_steps):
            random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
            with tf.GradientTape() as tape:
                fake_images = self.generator(random_latent_vectors, training=True)
                fake_logits = self.discriminator(fake_images, training=True)
                real_logits = self.discriminator(real_images, training=True)
                d_cost = tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits)
                gp = self.gradient_penalty(batch_size, real_images, fake_images)
                d_loss = d_cost + gp * self.gp_weight
            d_gradient = tape.gradient(d_loss, self.discriminator.trainable_variables)
            self.d_optimizer.apply_gradients(zip(d_gradient, self.discriminator.trainable_variables))
        random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
        with tf.GradientTape() as tape:
            generated_images = self.generator(random_latent_vectors, training=True)
            gen_img_logits = self.discriminator(generated_images, training=True)
            g_loss = -tf.reduce_mean(gen_img_logits)
        gen_gradient = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(gen_gradient, self.generator.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss}


def _vae_reference(name, recipe, model):
    reads = "images" if name == "ar_vae" else "labels" if recipe.conditional else "z"
    reference = KerasIOVAE(model.encoder, model.decoder, decoder_reads=reads, num_classes=model.num_classes)
    reference.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate))
    return reference


def _gan_reference(name, recipe, model):
    if isinstance(model, WGANGP):
        reference = KerasIOWGANGP(model.discriminator, model.generator, model.latent_dim, model.n_critic, model.gp_weight)
        reference.compile(model.default_optimizer(), model.default_optimizer())
        return reference
    reference = KerasIOGAN(model.discriminator, model.generator, model.latent_dim, recipe.conditional, model.num_classes,
                           model.class_weight if isinstance(model, ACGAN) else 0.0)
    reference.compile(model.default_optimizer(), model.default_optimizer(), keras.losses.BinaryCrossentropy(from_logits=True))
    return reference


def _classifier_reference(name, recipe, model):
    model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate),  # the companion compiles and fits it as keras.io does
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def _denoiser_reference(name, recipe, model):
    network = model.network  # the same U-Net (with its training noise), a sigmoid on its logits
    reference = keras.Model(network.inputs, ops.sigmoid(network.outputs[0]))
    reference.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate), loss="binary_crossentropy")
    return reference


# The keras.io-style counterpart of each kind of recipe.
REFERENCES = {recipes.VAE: _vae_reference, recipes.GAN: _gan_reference, recipes.CLASSIFIER: _classifier_reference,
              recipes.DENOISER: _denoiser_reference}


def build_reference(name, seed=0):
    """The keras.io-style model for recipe `name`, compiled; its networks are the
    companion model's, freshly built by the same recipe."""
    recipe = recipes.get(name)
    return recipe, REFERENCES[recipe.kind](name, recipe, recipe.build(seed))


class _Targets(keras.utils.PyDataset):
    """The denoiser's batches as `(x, x)` pairs: keras.io fits (noisy input, clean target)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        x = self.batches[index]
        return x, x


def reference_trainee(name, batch_size=128, steps=None, seed=0):
    """The compiled keras.io-style reference of `name` and its training batches: the
    `(model, batches)` pair that `benchmark.throughput(..., alongside=...)` times in the same
    rounds as the companion's model."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"The keras.io-style references use tf.GradientTape: run them with KERAS_BACKEND=tensorflow, "
                           f"not {keras.backend.backend()!r}")
    keras.utils.set_random_seed(seed)
    recipe, model = build_reference(name, seed)
    (x_train, y_train), _ = data.load_mnist()
    n = batch_size * steps if steps else len(x_train)
    batches = recipe.batches(data.scale(x_train[:n]), y_train[:n], batch_size=batch_size, seed=seed)
    if recipe.kind is recipes.DENOISER:  # keras.io fits (input, target) pairs
        batches = _Targets(batches)
    return model, batches


def reference_throughput(name, batch_size=128, steps=None, repeats=5, seed=0, min_seconds=2.0):
    """Median training images per second of the keras.io-style reference of `name` alone,
    timed as `companion.training.benchmark.throughput` times the companion's model."""
    model, batches = reference_trainee(name, batch_size, steps, seed)
    runs, _, steps = benchmark.timed_fits(model, batches, repeats, batch_size, steps=steps, min_seconds=min_seconds)
    median = statistics.median(runs)
    return {"model": name, "implementation": "keras.io-style reference", "batch_size": batch_size,
            "images_per_second": median, "step_seconds": batch_size / median, "steps": steps, "runs": runs}
