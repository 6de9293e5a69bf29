"""Tests of the GAN techniques (EMA, spectral normalization, R1, TTUR, hinge loss,
differentiable augmentation), each against a computation that does not use the code
under test, on every backend."""

import keras
import numpy as np
import pytest
from keras import layers, ops

from companion import data, training
from companion.models import DCGAN, WGANGP
from companion.models.gan_parts import DiffAugment, SpectralConv2D, SpectralDense, cutout, translate
from companion.training.checkpoints import save_for_inference

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def real(mnist):
    (x_train, _), _ = mnist
    return data.scale(x_train[:64]).reshape(-1, 28, 28, 1)


def tiny_dcgan(**options):
    keras.utils.set_random_seed(0)
    model = DCGAN(latent_dim=8, filters=(8, 4), seed=0, **options)
    model.compile()
    return model


def numpy_of(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


# ----------------------------------------------------------------------------- EMA


def test_ema_is_the_exponentially_weighted_mean_of_a_known_weight_sequence():
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


def test_ema_generator_is_updated_each_step_and_is_what_generate_and_saving_use(real, tmp_path):
    model = tiny_dcgan(ema_decay=0.99)
    model.fit(data.MNISTBatches(real, batch_size=32, seed=0), epochs=2, verbose=0)
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


# ----------------------------------------------------------------------------- spectral normalization


def _matrix_with_singular_values(rng, rows, columns, values):
    u, _ = np.linalg.qr(rng.standard_normal((rows, rows)))
    v, _ = np.linalg.qr(rng.standard_normal((columns, columns)))
    s = np.zeros((rows, columns))
    s[np.arange(len(values)), np.arange(len(values))] = values
    return u @ s @ v.T


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_spectral_layers_estimate_the_largest_singular_value(kind):
    rng = np.random.default_rng(0)
    if kind == "dense":
        layer, x = SpectralDense(5), rng.standard_normal((4, 7)).astype(np.float32)
        shape = (7, 5)
    else:
        layer, x = SpectralConv2D(5, 2), rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
        shape = (2, 2, 3, 5)
    layer(x)  # builds
    # Singular values 3, 1.5, 1, 0.5, 0.2: power iteration gains a factor (1.5/3)^2 per step.
    matrix = _matrix_with_singular_values(rng, int(np.prod(shape[:-1])), shape[-1], [3.0, 1.5, 1.0, 0.5, 0.2])
    layer.kernel.assign(matrix.reshape(shape).astype(np.float32))
    largest = np.linalg.svd(matrix, compute_uv=False)[0]
    u_before = numpy_of(layer.u)
    layer(x, training=False)
    np.testing.assert_array_equal(numpy_of(layer.u), u_before)  # inference leaves u alone
    for _ in range(30):
        layer(x, training=True)
    # After 30 steps the estimate's error is ~0.25^30 of sigma: float32 rounding (1e-6) dominates.
    assert float(numpy_of(layer.singular_value())) == pytest.approx(largest, rel=1e-5)
    normalized = numpy_of(layer.normalized_kernel()).reshape(-1, shape[-1])
    assert np.linalg.svd(normalized, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-5)
    # The output is the plain layer's with the normalized kernel.
    plain = (layers.Dense(5) if kind == "dense" else layers.Conv2D(5, 2))
    plain(x)
    plain.set_weights([numpy_of(layer.normalized_kernel()).reshape(shape).astype(np.float32), numpy_of(layer.bias).astype(np.float32)])
    np.testing.assert_allclose(numpy_of(layer(x)), numpy_of(plain(x)), rtol=1e-5, atol=1e-5)


def test_spectrally_normalized_discriminator_trains_and_round_trips(real, tmp_path):
    # On PyTorch, keras.layers.SpectralNormalization fails here ("modified by an inplace operation").
    model = tiny_dcgan(spectral_norm=True)
    history = model.fit(data.MNISTBatches(real, batch_size=32, seed=0), epochs=1, verbose=0)
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
    np.testing.assert_array_equal(loaded.discriminator_probability(real[:4]), model.discriminator_probability(real[:4]))


# ----------------------------------------------------------------------------- R1


# R1 against finite differences: tests/test_models_gan.py, beside the gradient penalty.


def test_r1_penalty_is_differentiated_in_training(real):
    """The same discriminator steps from the same start, with and without R1: with it, the
    gradient norm at the real images ends lower. Were the penalty a constant to the
    optimizer (not differentiated through), both runs would end equal."""
    x = ops.convert_to_tensor(real)
    penalties = {}
    for weight in (0.0, 100.0):
        model = tiny_dcgan(r1_weight=weight)
        model.generator.trainable = False
        model.compile(d_optimizer=keras.optimizers.Adam(1e-3))
        model.fit(data.MNISTBatches(real, batch_size=64, seed=0), epochs=5, verbose=0)
        penalties[weight] = float(numpy_of(model.r1_penalty(x, None, training.input_gradient)))
    assert penalties[100.0] < penalties[0.0], penalties


# ----------------------------------------------------------------------------- TTUR


def test_ttur_moves_each_network_by_its_own_learning_rate(real):
    """Adam's first step moves each weight by lr * g / (|g| + eps), i.e. by lr for any weight
    whose gradient is far above eps = 1e-7: the largest change in each network is its rate."""
    model = tiny_dcgan()
    model.compile(d_learning_rate=4e-4, g_learning_rate=1e-4)
    d_before = [numpy_of(v) for v in model.discriminator.trainable_variables]
    g_before = [numpy_of(v) for v in model.generator.trainable_variables]
    model.fit(real, batch_size=64, epochs=1, verbose=0, shuffle=False)
    d_change = max(np.abs(numpy_of(v) - b).max() for v, b in zip(model.discriminator.trainable_variables, d_before))
    g_change = max(np.abs(numpy_of(v) - b).max() for v, b in zip(model.generator.trainable_variables, g_before))
    # float32 weights of order 0.1 round to ~1e-8, i.e. 1e-4 of these steps.
    assert d_change == pytest.approx(4e-4, rel=1e-3) and g_change == pytest.approx(1e-4, rel=1e-3)
    with pytest.raises(ValueError, match=r"Expected `d_learning_rate` to be a finite number > 0. Received: d_learning_rate=-1"):
        model.compile(d_learning_rate=-1)
    with pytest.raises(ValueError, match=r"Give `g_optimizer` or `g_learning_rate`, not both"):
        model.compile(g_optimizer="adam", g_learning_rate=1e-3)


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("gan_loss", ["non_saturating", "hinge"])
def test_losses_match_their_formulas_on_the_discriminators_logits(gan_loss, real):
    model = tiny_dcgan(gan_loss=gan_loss)
    z = np.random.default_rng(0).standard_normal((len(real), 8)).astype(np.float32)
    model.sample_noise = lambda n: ops.convert_to_tensor(z[:n])
    fake = model.generate_images(ops.convert_to_tensor(z), training=True)  # the losses generate in training mode
    real_logits = numpy_of(model.discriminate(ops.convert_to_tensor(real)))
    fake_logits = numpy_of(model.discriminate(fake))
    softplus = lambda a: np.logaddexp(0.0, a)
    relu = lambda a: np.maximum(a, 0.0)
    if gan_loss == "hinge":
        expected_d = relu(1 - real_logits).mean() + relu(1 + fake_logits).mean()
        expected_g = -fake_logits.mean()
    else:
        expected_d = softplus(-real_logits).mean() + softplus(fake_logits).mean()
        expected_g = softplus(-fake_logits).mean()
    d_loss, _ = model.discriminator_loss(ops.convert_to_tensor(real), None, training.input_gradient)
    # float32 logits of order 1, means of 64 terms: 1e-5 relative is float32 rounding.
    np.testing.assert_allclose(float(numpy_of(d_loss)), expected_d, rtol=1e-5)
    np.testing.assert_allclose(float(numpy_of(model.generator_loss(len(real), None))), expected_g, rtol=1e-5)


def test_gan_loss_is_checked():
    with pytest.raises(ValueError, match=r"Expected `gan_loss` among non_saturating, hinge. Received: gan_loss='wasserstein'"):
        DCGAN(gan_loss="wasserstein")
    with pytest.raises(ValueError, match=r"Expected `gan_loss` among wasserstein. Received: gan_loss='hinge'"):
        WGANGP(gan_loss="hinge")


# ----------------------------------------------------------------------------- augmentation


def _translate_numpy(images, shifts):
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    for b, (dy, dx) in enumerate(shifts):
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    out[b, i, j] = images[b, i - dy, j - dx]
    return out


def test_translation_and_cutout_match_loops_and_pass_gradients(real):
    images = real[:3].astype(np.float64)
    shifts = np.array([[2, -3], [-4, 4], [0, 1]])
    np.testing.assert_allclose(numpy_of(translate(ops.convert_to_tensor(real[:3]), ops.convert_to_tensor(shifts))), _translate_numpy(images, shifts), atol=1e-6)
    centres = np.array([[0, 0], [14, 20], [27, 5]])
    expected = images.copy()
    for b, (r, c) in enumerate(centres):
        expected[b, max(r - 7, 0) : r + 7, max(c - 7, 0) : c + 7] = 0.0
    np.testing.assert_array_equal(numpy_of(cutout(ops.convert_to_tensor(real[:3]), ops.convert_to_tensor(centres), 14)), expected.astype(np.float32))
    # The gradient of the sum of a translated image is 1 on the pixels that stay in view, 0 on those pushed out.
    grad = numpy_of(training.input_gradient(lambda x: translate(x, ops.convert_to_tensor(shifts)), ops.convert_to_tensor(real[:3])))
    np.testing.assert_array_equal(grad, _translate_numpy(np.ones_like(images), -shifts))
    augment = DiffAugment(("translation", "cutout"), keras.random.SeedGenerator(0))
    out = numpy_of(augment(ops.convert_to_tensor(real[:8])))
    assert out.shape == (8, 28, 28, 1) and not np.allclose(out, real[:8])
    with pytest.raises(ValueError, match=r"Expected `augment` to list distinct names among translation, cutout. Received: augment=\('flip',\)"):
        DCGAN(augment=("flip",))
