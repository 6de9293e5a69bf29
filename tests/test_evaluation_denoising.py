"""Tests of companion.evaluation.denoising: the Gaussian noise and the classical filters the denoiser is measured against."""

import numpy as np
import pytest

from companion.evaluation import denoising, metrics


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
