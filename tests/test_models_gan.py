"""Tests of companion.models.gan: the GANs, their losses and training techniques (EMA, spectral
normalization, R1, TTUR, hinge loss), each against a computation that does not use the code under
test, run on every backend."""

import keras
import numpy as np
import pytest
from keras import layers, ops
from scipy.stats import norm

from companion import data, training
from companion.models import ACGAN, GAN, WGANGP, ClusterGAN, ClusterWGANGP, ConditionalGAN, DCGAN, InfoGAN, MLPGAN
from companion.models.gan_parts import SpectralConv2D, SpectralDense
from companion.training.checkpoints import save_for_inference

pytestmark = pytest.mark.backend


FACTORIES = {
    "mlp": lambda **kw: MLPGAN(latent_dim=8, **kw),
    "dcgan": lambda **kw: DCGAN(latent_dim=8, filters=(8, 4), **kw),
    "conditional": lambda **kw: ConditionalGAN(latent_dim=8, filters=(8, 4), **kw),
    "acgan": lambda **kw: ACGAN(latent_dim=8, filters=(8, 4), class_weight=0.7, **kw),
    "wgan_gp": lambda **kw: WGANGP(latent_dim=8, filters=(8, 4), n_critic=2, **kw),
    # every technique of the ablation at once: spectral norm, hinge, R1, EMA, augmentation, resize-convolutions
    "dcgan_techniques": lambda **kw: DCGAN(
        latent_dim=8, filters=(8, 4), d_filters=(6, 4), spectral_norm=True, gan_loss="hinge", r1_weight=1.0, ema_decay=0.9,
        augment=("translation", "cutout"), upsampling="resize", **kw,
    ),
    "infogan": lambda **kw: InfoGAN(latent_dim=8, filters=(8, 4), code_classes=3, info_weight=0.5, **kw),
    "clustergan": lambda **kw: ClusterGAN(latent_dim=8, filters=(8, 4), clusters=3, cluster_components=5, class_weight=0.5, **kw),
    "cluster_wgan_gp": lambda **kw: ClusterWGANGP(latent_dim=8, filters=(8, 4), clusters=3, cluster_components=5, n_critic=2, ema_decay=0.9, **kw),
    "mlp_techniques": lambda **kw: MLPGAN(
        latent_dim=8, generator_units=(16,), discriminator_units=(16, 8), spectral_norm=True, gan_loss="hinge", ema_decay=0.9, **kw
    ),
    "acgan_techniques": lambda **kw: ACGAN(latent_dim=8, filters=(8, 4), spectral_norm=True, ema_decay=0.9, augment="translation", **kw),
}
CLUSTER_SIZES = {"latent_dim": 8, "filters": (8, 4), "clusters": 3, "cluster_components": 5, "class_weight": 0.5, "seed": 0}
HISTORY_KEYS = {"d_loss", "g_loss", "d_acc_real", "d_acc_fake"}


@pytest.fixture(scope="module")
def real(scaled_train):
    x, y = scaled_train
    return x[:64], y[:64]


def make(kind, seed=0, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    model = FACTORIES[kind](seed=seed)
    model.compile(**compile_kwargs)
    return model


def batches(model, x, y, batch_size=32, seed=0):
    return data.MNISTBatches(x, y if model.conditional else None, batch_size=batch_size, seed=seed)


def labels_for(model, n):
    return np.arange(n) % 10 if model.conditional else None


def tiny_dcgan(**options):
    keras.utils.set_random_seed(0)
    model = DCGAN(latent_dim=8, filters=(8, 4), seed=0, **options)
    model.compile()
    return model


@pytest.mark.parametrize("kind", FACTORIES)
def test_gan_shapes_history_and_metrics(kind, real):
    x, y = real
    model = make(kind)
    history = model.fit(batches(model, x, y), epochs=2, verbose=0)
    assert set(history.history) == HISTORY_KEYS
    assert all(len(v) == 2 and np.isfinite(v).all() for v in history.history.values())
    for key in ("d_acc_real", "d_acc_fake"):
        assert all(0.0 <= v <= 1.0 for v in history.history[key])
    images = model.generate(5, labels=labels_for(model, 5), seed=0)
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    scores = model.discriminator_probability(x[:5], labels_for(model, 5))
    assert scores.shape == (5,)
    # Each step is one generator update and n_critic discriminator updates.
    steps = 2 * 2
    assert int(model.optimizer.iterations.numpy()) == steps == int(model.g_optimizer.iterations.numpy())
    assert int(model.d_optimizer.iterations.numpy()) == steps * model.n_critic


def test_gans_train_through_fit_with_callbacks(real):
    x, y = real
    model = make("dcgan")
    seen = []
    callback = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(sorted(logs)))
    model.fit(batches(model, x, y), epochs=1, verbose=0, callbacks=[callback])
    assert len(seen) == 2 and set(seen[0]) == HISTORY_KEYS


def _d_loss(model, x, z, labels=None):
    """The discriminator's cross-entropy on fixed real images and fixed noise, in NumPy."""
    fake = model.generate_from(z, labels)
    softplus = lambda a: np.logaddexp(0.0, a)
    logit = lambda p: np.log(p) - np.log1p(-p)
    return softplus(-logit(model.discriminator_probability(x, labels))).mean() + softplus(
        logit(model.discriminator_probability(fake, labels))
    ).mean()


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_one_step_lowers_each_networks_loss_on_a_fixed_batch(kind, real):
    x, _ = real
    z = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)

    # Discriminator step alone (the generator frozen): D's loss goes down.
    model = make(kind)
    model.generator.trainable = False
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3))
    before = _d_loss(model, x, z)
    model.fit(x, batch_size=64, epochs=1, verbose=0, shuffle=False)
    assert _d_loss(model, x, z) < before

    # Generator step alone (the discriminator frozen): G's loss -log D(G(z)) goes down.
    model = make(kind)
    model.discriminator.trainable = False
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3))
    g_loss = lambda: np.mean(-np.log(model.discriminator_probability(model.generate_from(z))))
    before = g_loss()
    model.fit(x, batch_size=64, epochs=1, verbose=0, shuffle=False)
    assert g_loss() < before


@pytest.mark.parametrize("kind", FACTORIES)
def test_gan_save_load_round_trip(kind, real, tmp_path):
    x, y = real
    model = make(kind)
    model.fit(batches(model, x, y), epochs=1, verbose=0)
    path = tmp_path / "gan.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    labels = labels_for(model, 6)
    np.testing.assert_array_equal(loaded.generate(6, labels, seed=1), model.generate(6, labels, seed=1))
    np.testing.assert_array_equal(
        loaded.discriminator_probability(x[:6], labels), model.discriminator_probability(x[:6], labels)
    )
    for name in ("d_optimizer", "g_optimizer"):
        for a, b in zip(getattr(loaded, name).variables, getattr(model, name).variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kind", ["dcgan", "wgan_gp"])
def test_gan_is_deterministic_for_a_seed(kind, real):
    x, y = real

    def train(seed):
        model = make(kind, seed=seed)
        model.fit(batches(model, x, y, seed=seed), epochs=1, verbose=0)
        return model.get_weights()

    first, second, other = train(3), train(3), train(4)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


class ToyGAN(GAN):
    """1-D data; a fixed affine generator G(z) = 1.5 z, so p_g = N(0, 1.5^2)."""

    data_shape = (1,)

    def build_generator(self):
        z = keras.Input((self.latent_dim,))
        affine = layers.Dense(1)
        generator = keras.Model(z, affine(z))
        affine.set_weights([np.array([[1.5]], np.float32), np.zeros(1, np.float32)])
        generator.trainable = False
        return generator

    def build_discriminator(self):
        x = keras.Input((1,))
        h = layers.Dense(64, activation="tanh")(x)
        h = layers.Dense(64, activation="tanh")(h)
        return keras.Model(x, layers.Dense(1)(h))


def test_discriminator_approaches_the_optimal_discriminator():
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) for a fixed generator (Goodfellow et al., Prop. 1)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = 40000
    x = (np.where(rng.random(n) < 0.5, -2.0, 2.0) + 0.5 * rng.standard_normal(n)).astype(np.float32)[:, None]
    model = ToyGAN(latent_dim=1, seed=0)
    model.compile(d_optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x, batch_size=500, epochs=8, verbose=0)

    grid = np.linspace(-3.5, 3.5, 71)
    p_data = 0.5 * norm.pdf(grid, -2, 0.5) + 0.5 * norm.pdf(grid, 2, 0.5)
    p_g = norm.pdf(grid, 0, 1.5)
    d_star = p_data / (p_data + p_g)
    d = model.discriminator_probability(grid.astype(np.float32)[:, None])
    where = p_data + p_g > 0.05  # where both densities give the discriminator samples to learn from
    error = np.abs(d - d_star)[where]
    # D estimates a class probability from samples: at the sparsest grid points it sees
    # about n * 0.05 * 0.5 = 1,000 nearby examples an epoch, a standard error of about
    # 0.5 / sqrt(1000) = 0.016. The worst point may reach ~5 of those; the mean about 2.
    assert error.max() < 0.08, error.max()
    assert error.mean() < 0.03, error.mean()


class TwoDimensional:
    """Networks on 2-D points, small enough to mirror in NumPy: G linear, D a tanh MLP."""

    data_shape = (2,)

    def build_generator(self):
        z = keras.Input((self.latent_dim,))
        return keras.Model(z, layers.Dense(2)(z))

    def build_discriminator(self):
        x = keras.Input((2,))
        return keras.Model(x, layers.Dense(1)(layers.Dense(3, activation="tanh")(x)))


class TinyCritic(TwoDimensional, WGANGP):
    pass


class TinyGAN(TwoDimensional, GAN):
    pass


def _finite_difference_gradients(model, points):
    """dD/dx at each point by central differences of D mirrored in NumPy (float64)."""
    (w1, b1), (w2, b2) = [
        [w.astype(np.float64) for w in layer.get_weights()] for layer in model.discriminator.layers if layer.get_weights()
    ]
    d = lambda p: (np.tanh(p @ w1 + b1) @ w2 + b2)[:, 0]
    h = 1e-5
    return np.stack([(d(points + h * e) - d(points - h * e)) / (2 * h) for e in np.eye(2)], axis=1)


# Central differences err by O(h^2) ~ 1e-10 in float64; the model computes in float32
# (relative rounding ~1e-7 per operation), so agreement to 1e-5 relative is expected.


def test_gradient_penalty_matches_finite_differences():
    keras.utils.set_random_seed(1)
    model = TinyCritic(latent_dim=2, seed=0)
    points = np.random.default_rng(2).standard_normal((5, 2))
    grads = _finite_difference_gradients(model, points)
    expected = np.mean((np.linalg.norm(grads, axis=1) - 1.0) ** 2)
    penalty = model.gradient_penalty(keras.ops.convert_to_tensor(points.astype(np.float32)), None, training.input_gradient)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(penalty)), expected, rtol=1e-5)


def test_r1_penalty_matches_finite_differences():
    keras.utils.set_random_seed(1)
    model = TinyGAN(latent_dim=2, r1_weight=4.0, seed=0)
    points = np.random.default_rng(2).standard_normal((5, 2))
    expected = np.mean(np.sum(_finite_difference_gradients(model, points) ** 2, axis=1))
    x = keras.ops.convert_to_tensor(points.astype(np.float32))
    r1 = model.r1_penalty(x, None, training.input_gradient)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(r1)), expected, rtol=1e-5)
    # D's penalty term: r1_weight / 2 times it
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(model.penalty(x, x, None, training.input_gradient))), 2.0 * expected, rtol=1e-5)


def test_conditional_gan_honours_its_labels(real):
    x, y = real
    model = make("conditional")
    model.fit(batches(model, x, y), epochs=1, verbose=0)
    z = np.repeat(np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32), 10, axis=0)
    images = model.generate_from(z, labels=np.arange(10))
    differences = [np.abs(images[i] - images[j]).max() for i in range(10) for j in range(i + 1, 10)]
    assert min(differences) > 0, "one z with different labels gives different images"
    with pytest.raises(ValueError, match=r"Expected `labels` in \[0, 9\]. Received values in \[-1, 3\]"):
        model.generate(2, labels=[3, -1])
    with pytest.raises(ValueError, match=r"Expected `y` in \[0, 9\]"):
        model.fit(x, np.full(len(x), 10), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"needs `labels`"):
        model.generate(3)


def test_acgan_losses_add_the_class_heads_cross_entropy(real):
    x, y = real
    model = make("acgan")
    z = np.random.default_rng(0).standard_normal((len(x), 8)).astype(np.float32)
    model.sample_noise = lambda n: keras.ops.convert_to_tensor(z[:n])  # the noise the losses draw, fixed
    labels = keras.ops.convert_to_tensor(y)
    # The losses generate in training mode (batch statistics in the generator's BN).
    fake = keras.ops.convert_to_numpy(model.generate_images(keras.ops.convert_to_tensor(z), labels, training=True))

    def heads(images):
        logits, class_logits = model.discriminate_with_classes(keras.ops.convert_to_tensor(images))
        class_logits = keras.ops.convert_to_numpy(class_logits).astype(np.float64)
        log_softmax = class_logits - np.logaddexp.reduce(class_logits, axis=1, keepdims=True)
        return keras.ops.convert_to_numpy(logits).astype(np.float64), -log_softmax[np.arange(len(y)), y].mean(), -log_softmax[:, 10].mean()

    softplus = lambda a: np.logaddexp(0.0, a)
    (real_logits, real_ce, _), (fake_logits, fake_ce, fake_as_generated_ce) = heads(x), heads(fake)
    assert model.classify(x[:3]).shape == (3, 11)  # ten digits and "generated"
    np.testing.assert_allclose(model.classify(x[:3]).sum(axis=1), 1.0, rtol=1e-6)
    d_loss, _ = model.discriminator_loss(keras.ops.convert_to_tensor(x), labels, training.input_gradient)
    g_loss = model.generator_loss(len(x), labels)
    # float32 logits of order 1, means of 64 terms: agreement to 1e-5 relative is float32 rounding.
    # D: real images in their class, generated ones in class 10; G: its images in the requested class.
    expected_d = softplus(-real_logits).mean() + softplus(fake_logits).mean() + 0.7 * (real_ce + fake_as_generated_ce)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(d_loss)), expected_d, rtol=1e-5)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(g_loss)), softplus(-fake_logits).mean() + 0.7 * fake_ce, rtol=1e-5)
    with pytest.raises(ValueError, match=r"Received: class_weight=-1"):
        ACGAN(class_weight=-1)


def _fixed_coded_noise(model, n):
    """Fixes the noise the losses draw (8 entries, the last 3 a one-hot code) and returns
    the codes and the images generated from it in training mode (batch statistics in BN)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, n)
    z = rng.standard_normal((n, 8)).astype(np.float32)
    z[:, -3:] = np.eye(3, dtype=np.float32)[codes]
    model.sample_noise = lambda m: keras.ops.convert_to_tensor(z[:m])
    return codes, keras.ops.convert_to_numpy(model.generate_images(keras.ops.convert_to_tensor(z), training=True))


def test_infogan_losses_add_the_code_heads_cross_entropy_on_generated_images(real):
    x, _ = real
    model = make("infogan")
    codes, fake = _fixed_coded_noise(model, len(x))

    def heads(images):
        logits, code_logits = (keras.ops.convert_to_numpy(t).astype(np.float64) for t in model.discriminate_with_codes(keras.ops.convert_to_tensor(images)))
        log_softmax = code_logits - np.logaddexp.reduce(code_logits, axis=1, keepdims=True)
        return logits, -log_softmax[np.arange(len(codes)), codes].mean()

    softplus = lambda a: np.logaddexp(0.0, a)
    (real_logits, _), (fake_logits, fake_ce) = heads(x), heads(fake)
    d_loss, _ = model.discriminator_loss(keras.ops.convert_to_tensor(x), None, training.input_gradient)
    # float32 logits of order 1, means of 64 terms: 1e-5 relative is float32 rounding.
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(d_loss)), softplus(-real_logits).mean() + softplus(fake_logits).mean() + 0.5 * fake_ce, rtol=1e-5)
    g_loss = model.generator_loss(len(x), None)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(g_loss)), softplus(-fake_logits).mean() + 0.5 * fake_ce, rtol=1e-5)
    # generate draws the code uniformly unless given; a given code is the latent's one-hot tail.
    a, b = model.generate(4, seed=3, codes=[0, 1, 2, 0]), model.generate(4, seed=3, codes=[1, 1, 2, 0])
    assert np.abs(a[0] - b[0]).max() > 0 and np.array_equal(a[1:], b[1:])
    with pytest.raises(ValueError, match=r"Expected `codes` in \[0, 2\]"):
        model.generate(2, codes=[0, 3])
    with pytest.raises(ValueError, match=r"Expected `code_classes` < latent_dim = 8. Received: code_classes=8"):
        InfoGAN(latent_dim=8, code_classes=8)


@pytest.mark.parametrize("critic", [False, True])
def test_clustergan_finds_clusters_and_adds_their_cross_entropy(real, critic):
    x, _ = real
    keras.utils.set_random_seed(0)
    # The critic without its gradient penalty, so that the loss is the objective alone.
    model = (ClusterWGANGP(gp_weight=0.0, **CLUSTER_SIZES) if critic else ClusterGAN(**CLUSTER_SIZES))
    model.compile()
    assert not model.clusters_fitted
    assignments = model.fit_clusters(x)
    # The model's own assignment (in the backend, from the stored projection and centres)
    # is k-means's: each image goes to its nearest centre.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.clusters_of(keras.ops.convert_to_tensor(x))), assignments)
    shares = np.bincount(assignments, minlength=3) / len(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.cluster_shares), shares, rtol=1e-6)
    _, labels = model.unpack_batch(keras.ops.convert_to_tensor(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(labels), assignments)

    codes, fake = _fixed_coded_noise(model, len(x))

    def heads(images, classes):
        logits, class_logits = (keras.ops.convert_to_numpy(t).astype(np.float64) for t in model.discriminate_with_codes(keras.ops.convert_to_tensor(images)))
        log_softmax = class_logits - np.logaddexp.reduce(class_logits, axis=1, keepdims=True)
        return logits, -log_softmax[np.arange(len(classes)), classes].mean(), -log_softmax[:, 3].mean()

    softplus = lambda a: np.logaddexp(0.0, a)
    (real_logits, real_ce, _), (fake_logits, fake_ce, fake_as_generated_ce) = heads(x, assignments), heads(fake, codes)
    d_loss, _ = model.discriminator_loss(keras.ops.convert_to_tensor(x), labels, training.input_gradient)
    # The adversarial terms: the non-saturating loss, or the critic's estimate of -W1.
    d_adversarial = fake_logits.mean() - real_logits.mean() if critic else softplus(-real_logits).mean() + softplus(fake_logits).mean()
    g_adversarial = -fake_logits.mean() if critic else softplus(-fake_logits).mean()
    # float32 logits of order 1, means of 64 terms: 1e-5 relative (1e-6 absolute, for a
    # critic's difference of means near 0) is float32 rounding.
    # D: real images in their cluster, generated ones in the last class; G: its images in its code's cluster.
    expected_d = d_adversarial + 0.5 * (real_ce + fake_as_generated_ce)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(d_loss)), expected_d, rtol=1e-5, atol=1e-6)
    g_loss = model.generator_loss(len(x), labels)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(g_loss)), g_adversarial + 0.5 * fake_ce, rtol=1e-5, atol=1e-6)


def test_clustergan_draws_codes_with_the_clusters_shares(real):
    x, _ = real
    model = make("clustergan")
    model.cluster_shares.assign(np.array([0.7, 0.2, 0.1], np.float32))
    n = 20000
    drawn = np.bincount(keras.ops.convert_to_numpy(model.codes_of(model.sample_noise(n))), minlength=3) / n
    # A share's standard error is sqrt(p(1 - p) / n) <= 0.0036: five of them is 0.018.
    np.testing.assert_allclose(drawn, [0.7, 0.2, 0.1], atol=0.018)
    with pytest.raises(ValueError, match=r"call `fit_clusters\(images\)` first.*Received: x of type"):
        make("clustergan").fit(iter([x]), epochs=1, steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match=r"Expected at least 5 images.*Received: 4 images"):
        make("clustergan").fit_clusters(x[:4])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, x: m.fit((x * 255).astype(np.uint8), epochs=1, verbose=0), TypeError, r"Received: x.dtype=uint8"),
        (lambda m, x: m.generate(2, labels=[1, 2]), ValueError, r"not conditional"),
        (lambda m, x: m.generate_from(np.zeros((2, 3), np.float32)), ValueError, r"Expected `z` of shape \(n, 8\)"),
        (lambda m, x: m.discriminator_probability(x[:, :20]), ValueError, r"Received: images.shape=\(64, 20, 28\)"),
        (lambda m, x: m.compile(optimizer="adam"), ValueError, r"takes `d_optimizer` and `g_optimizer`"),
        (lambda m, x: WGANGP(n_critic=0), ValueError, r"Received: n_critic=0"),
    ],
)
def test_gan_rejects_bad_input(real, call, error, message):
    with pytest.raises(error, match=message):
        call(make("dcgan"), real[0])


# -------------------------------------------------------------------------- EMA


def test_ema_is_the_exponentially_weighted_mean_of_a_known_weight_sequence(numpy_of):
    decay = 0.9
    model = tiny_dcgan(ema_decay=decay)
    rng = np.random.default_rng(0)
    sequence = [[rng.standard_normal(w.shape) for w in model.generator.get_weights()] for _ in range(30)]
    averages = []
    for weights in sequence:
        model.generator.set_weights([w.astype(np.float32) for w in weights])
        model.update_ema()
        averages.append(model.ema_generator.get_weights())
    # After K steps: sum_k decay^(K - k) w_k / sum_k decay^(K - k), whatever the starting
    # weights; after the first step, the generator's weights themselves.
    for K in (1, 2, 30):
        weights = decay ** (K - np.arange(1, K + 1))
        for i, ema in enumerate(averages[K - 1]):  # every weight, BN's statistics too
            expected = sum(c * w[i] for c, w in zip(weights, sequence[:K])) / weights.sum()
            # float32 storage: each step rounds to ~6e-8 relative; 30 steps stay within 1e-5.
            np.testing.assert_allclose(ema, expected, rtol=1e-5, atol=1e-6)
    assert float(numpy_of(model.ema_updates)) == len(sequence)


def test_ema_generator_is_updated_each_step_and_is_what_generate_and_saving_use(real_images, tmp_path, numpy_of):
    model = tiny_dcgan(ema_decay=0.99)
    model.fit(data.MNISTBatches(real_images, batch_size=32, seed=0), epochs=2, verbose=0)
    steps = int(model.optimizer.iterations.numpy())
    assert steps == 4 and float(numpy_of(model.ema_updates)) == steps
    z = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    from_ema = numpy_of(model.ema_generator(ops.convert_to_tensor(z), training=False))
    from_generator = numpy_of(model.generator(ops.convert_to_tensor(z), training=False))
    assert np.abs(from_ema - from_generator).max() > 1e-4  # the average lags the generator
    np.testing.assert_allclose(model.generate_from(z), from_ema, rtol=1e-6, atol=1e-6)
    path = tmp_path / "ema.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.generate_from(z), model.generate_from(z))
    # Shipped: one generator, holding the average, and the discriminator unchanged.
    save_for_inference(model, tmp_path / "shipped.keras")
    shipped = keras.saving.load_model(tmp_path / "shipped.keras", safe_mode=True)
    assert shipped.ema_generator is None and shipped.ema_decay is None
    np.testing.assert_allclose(shipped.generate_from(z), from_ema, rtol=1e-6, atol=1e-6)
    for a, b in zip(shipped.discriminator.get_weights(), model.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(shipped.weights) == len(model.weights) - len(model.ema_generator.weights) - 1  # no average, no step count


def test_ema_decay_is_checked():
    for bad in (0.0, 1.0, 1.5, "0.9"):
        with pytest.raises(ValueError, match=r"Expected `ema_decay` to be a finite number > 0 and < 1. Received: ema_decay="):
            DCGAN(ema_decay=bad)


# ------------------------------------------------------- spectral normalization


def test_spectrally_normalized_discriminator_trains_and_round_trips(real_images, tmp_path, numpy_of):
    # On PyTorch, keras.layers.SpectralNormalization fails here ("modified by an inplace operation").
    model = tiny_dcgan(spectral_norm=True)
    history = model.fit(data.MNISTBatches(real_images, batch_size=32, seed=0), epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"]).all()
    for layer in model.discriminator.layers:
        if isinstance(layer, (SpectralConv2D, SpectralDense)):
            kernel = numpy_of(layer.kernel).reshape(-1, layer.kernel.shape[-1])
            # One power-iteration step per call from a random u: a lower bound on sigma, within a factor of a few.
            estimate, largest = float(numpy_of(layer.singular_value())), np.linalg.svd(kernel, compute_uv=False)[0]
            assert 0 < estimate <= largest * (1 + 1e-5)
    path = tmp_path / "sn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.discriminator_probability(real_images[:4]), model.discriminator_probability(real_images[:4]))


# --------------------------------------------------------------------------- R1


def test_r1_penalty_is_differentiated_in_training(real_images, numpy_of):
    """The same discriminator steps from the same start, with and without R1: with it, the
    gradient norm at the real images ends lower. Were the penalty a constant to the
    optimizer (not differentiated through), both runs would end equal."""
    x = ops.convert_to_tensor(real_images)
    penalties = {}
    for weight in (0.0, 100.0):
        model = tiny_dcgan(r1_weight=weight)
        model.generator.trainable = False
        model.compile(d_optimizer=keras.optimizers.Adam(1e-3))
        model.fit(data.MNISTBatches(real_images, batch_size=64, seed=0), epochs=5, verbose=0)
        penalties[weight] = float(numpy_of(model.r1_penalty(x, None, training.input_gradient)))
    assert penalties[100.0] < penalties[0.0], penalties


# ------------------------------------------------------------------------- TTUR


def test_ttur_moves_each_network_by_its_own_learning_rate(real_images, numpy_of):
    """Adam's first step moves each weight by lr * g / (|g| + eps), i.e. by lr for any weight
    whose gradient is far above eps = 1e-7: the largest change in each network is its rate."""
    model = tiny_dcgan()
    model.compile(d_learning_rate=4e-4, g_learning_rate=1e-4)
    d_before = [numpy_of(v) for v in model.discriminator.trainable_variables]
    g_before = [numpy_of(v) for v in model.generator.trainable_variables]
    model.fit(real_images, batch_size=64, epochs=1, verbose=0, shuffle=False)
    d_change = max(np.abs(numpy_of(v) - b).max() for v, b in zip(model.discriminator.trainable_variables, d_before))
    g_change = max(np.abs(numpy_of(v) - b).max() for v, b in zip(model.generator.trainable_variables, g_before))
    # float32 weights of order 0.1 round to ~1e-8, i.e. 1e-4 of these steps.
    assert d_change == pytest.approx(4e-4, rel=1e-3) and g_change == pytest.approx(1e-4, rel=1e-3)
    with pytest.raises(ValueError, match=r"Expected `d_learning_rate` to be a finite number > 0. Received: d_learning_rate=-1"):
        model.compile(d_learning_rate=-1)
    with pytest.raises(ValueError, match=r"Give `g_optimizer` or `g_learning_rate`, not both"):
        model.compile(g_optimizer="adam", g_learning_rate=1e-3)


# ----------------------------------------------------------------------- losses


@pytest.mark.parametrize("gan_loss", ["non_saturating", "hinge"])
def test_losses_match_their_formulas_on_the_discriminators_logits(gan_loss, real_images, numpy_of):
    model = tiny_dcgan(gan_loss=gan_loss)
    z = np.random.default_rng(0).standard_normal((len(real_images), 8)).astype(np.float32)
    model.sample_noise = lambda n: ops.convert_to_tensor(z[:n])
    fake = model.generate_images(ops.convert_to_tensor(z), training=True)  # the losses generate in training mode
    real_logits = numpy_of(model.discriminate(ops.convert_to_tensor(real_images)))
    fake_logits = numpy_of(model.discriminate(fake))
    softplus = lambda a: np.logaddexp(0.0, a)
    relu = lambda a: np.maximum(a, 0.0)
    if gan_loss == "hinge":
        expected_d = relu(1 - real_logits).mean() + relu(1 + fake_logits).mean()
        expected_g = -fake_logits.mean()
    else:
        expected_d = softplus(-real_logits).mean() + softplus(fake_logits).mean()
        expected_g = softplus(-fake_logits).mean()
    d_loss, _ = model.discriminator_loss(ops.convert_to_tensor(real_images), None, training.input_gradient)
    # float32 logits of order 1, means of 64 terms: 1e-5 relative is float32 rounding.
    np.testing.assert_allclose(float(numpy_of(d_loss)), expected_d, rtol=1e-5)
    np.testing.assert_allclose(float(numpy_of(model.generator_loss(len(real_images), None))), expected_g, rtol=1e-5)


def test_gan_loss_is_checked():
    with pytest.raises(ValueError, match=r"Expected `gan_loss` among non_saturating, hinge. Received: gan_loss='wasserstein'"):
        DCGAN(gan_loss="wasserstein")
    with pytest.raises(ValueError, match=r"Expected `gan_loss` among wasserstein. Received: gan_loss='hinge'"):
        WGANGP(gan_loss="hinge")
