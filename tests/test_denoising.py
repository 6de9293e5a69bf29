"""Tests of the denoising baselines and the denoiser model."""

import keras
import numpy as np
import pytest

from companion import data, denoising, evaluation, metrics
from companion.models import Denoiser


@pytest.fixture(scope="module")
def clean(mnist):
    (x_train, _), _ = mnist
    return data.scale(x_train[:200])


def test_noise_has_the_requested_spread_and_stays_in_range(clean):
    flat = np.full((4000, 784), 0.5, np.float32)
    noisy = denoising.add_noise(flat, 0.1, seed=0)
    # 3.1M draws of N(0.5, 0.01), none clipped (0.5 is 5 sigma from either edge): the sample
    # standard deviation is within 0.1 * 5 / sqrt(2 * 3.1M) ~ 2e-4 of 0.1.
    assert abs(noisy.std() - 0.1) < 3e-4 and abs(noisy.mean() - 0.5) < 3e-4
    heavy = denoising.add_noise(clean, 0.5, seed=0)
    assert heavy.shape == clean.shape and heavy.min() == 0.0 and heavy.max() == 1.0
    np.testing.assert_array_equal(heavy, denoising.add_noise(clean, 0.5, seed=0))
    np.testing.assert_array_equal(denoising.add_noise(clean, 0.0, seed=3), clean)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: denoising.add_noise(x, -1.0), r"Expected `sigma` >= 0. Received: sigma=-1.0"),
        (lambda x: denoising.add_noise(x * 255, 0.5), r"Expected `x` in \[0, 1\]"),
        (lambda x: denoising.apply_filter("wiener", x, 3), r"Expected `name` among gaussian, median. Received: name='wiener'"),
    ],
)
def test_denoising_rejects_bad_input(clean, call, message):
    with pytest.raises(ValueError, match=message):
        call(clean)


def test_filters_work_image_by_image(clean):
    """A filter must not blur one image into the next: filtering a batch equals filtering
    each image alone."""
    noisy = denoising.add_noise(clean[:3], 0.5, seed=1)
    for name, parameter in (("gaussian", 1.0), ("median", 3)):
        batch = denoising.apply_filter(name, noisy, parameter)
        alone = np.concatenate([denoising.apply_filter(name, noisy[i : i + 1], parameter) for i in range(3)])
        np.testing.assert_allclose(batch, alone, atol=1e-6)
    constant = np.full((2, 28, 28), 0.25, np.float32)
    # A median of a constant image is the constant away from the zero-padded border.
    np.testing.assert_allclose(denoising.apply_filter("median", constant, 3)[:, 1:-1, 1:-1], 0.25)


def test_tuned_filters_beat_the_noisy_input_and_pick_from_the_grid(clean):
    noisy = denoising.add_noise(clean, 0.5, seed=2)
    best = denoising.tune_filters(clean, noisy)
    for name, (score, parameter) in best.items():
        assert parameter in denoising.FILTER_GRIDS[name]
        assert score > metrics.psnr(clean, noisy) + 2.0, f"{name} filter should remove a good part of sigma = 0.5 noise"
        others = [metrics.psnr(clean, denoising.apply_filter(name, noisy, p)) for p in denoising.FILTER_GRIDS[name]]
        assert score == pytest.approx(max(others))


def test_denoiser_adds_noise_only_while_training(clean):
    keras.utils.set_random_seed(0)
    model = Denoiser(filters=(4, 8), seed=0)
    clean = clean[:8].reshape(8, 28, 28, 1)
    x = keras.ops.convert_to_tensor(clean)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(model(x)))
    noisy_input = model.network.get_layer("clip")
    probe = keras.Model(model.network.inputs, noisy_input.output)
    seen = keras.ops.convert_to_numpy(probe(x, training=True))
    assert seen.min() >= 0.0 and seen.max() <= 1.0 and np.abs(seen - clean).mean() > 0.1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(probe(x, training=False)), clean)


def test_denoiser_learns_and_round_trips(clean, tmp_path):
    keras.utils.set_random_seed(0)
    model = Denoiser(filters=(8, 16), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    noisy = denoising.add_noise(clean[:64], 0.5, seed=5)
    before = metrics.psnr(clean[:64], model.denoise(noisy))
    model.fit(clean, batch_size=32, epochs=6, verbose=0)
    after = metrics.psnr(clean[:64], model.denoise(noisy))
    # A blank image is a cheap first answer (about 10 dB); the model must beat it clearly.
    blank = metrics.psnr(clean[:64], np.zeros_like(clean[:64]))
    assert after > max(before, blank) + 2.0, (before, blank, after)
    model.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.denoise(noisy[:4]), model.denoise(noisy[:4]))
    with pytest.raises(ValueError, match=r"Expected `noisy` with values in \[0, 1\]"):
        model.denoise(noisy * 2)


def test_evaluate_denoiser_reports_the_gain_over_the_better_filter(clean, mnist):
    keras.utils.set_random_seed(0)
    model = Denoiser(filters=(4, 8), seed=0)
    results = evaluation.evaluate_denoiser(model, clean[:50], clean)
    assert results["best_filter_psnr"] == max(results["gaussian_filter_psnr"], results["median_filter_psnr"])
    assert results["psnr_gain_db"] == pytest.approx(results["psnr"] - results["best_filter_psnr"])
    assert results["sigma"] == evaluation.DENOISING_SIGMA == 0.5
    with pytest.raises(ValueError, match="Received: x_train=None"):
        evaluation.evaluate_denoiser(model, clean[:50], None)


def test_denoiser_bottleneck_convolutions_add_residual_layers(tmp_path):
    plain, deeper = Denoiser(filters=(4, 8), seed=0), Denoiser(filters=(4, 8), bottleneck_convs=2, seed=0)
    # Each extra 3x3 convolution at 7x7 maps 8 channels to 8: 9 * 8 * 8 weights and 8 biases.
    assert deeper.count_params() - plain.count_params() == 2 * (9 * 8 * 8 + 8)
    deeper.save(tmp_path / "deeper.keras")
    assert keras.saving.load_model(tmp_path / "deeper.keras", safe_mode=True).bottleneck_convs == 2
    with pytest.raises(ValueError, match="Expected `bottleneck_convs` to be a non-negative integer. Received: bottleneck_convs=-1"):
        Denoiser(bottleneck_convs=-1)
