"""Tests of companion.data.synthetic: the ring of Gaussians and its mode coverage, mixture densities,
and the noisy waves of the time-series VAE."""

import numpy as np
import pytest
from scipy.stats import norm

from companion.data import synthetic


def test_ring_of_gaussians_and_its_mode_coverage():
    x, mode = synthetic.ring_of_gaussians(20000, modes=8, radius=2.0, std=0.05, seed=0)
    assert x.shape == (20000, 2) and x.dtype == np.float32 and set(np.unique(mode)) == set(range(8))
    offsets = x - synthetic.ring_centres(8, 2.0)[mode]
    np.testing.assert_allclose(offsets.std(axis=0), 0.05, rtol=0.03)  # 20k draws: relative SE 0.5%
    coverage = synthetic.mode_coverage(x)
    # A 2-D standard normal lies within radius 3 with probability 1 - exp(-9/2) = 0.9889.
    assert coverage["modes_covered"] == 8
    assert coverage["high_quality"] == pytest.approx(1 - np.exp(-4.5), abs=0.003)
    collapsed = np.repeat(synthetic.ring_centres(8, 2.0)[:1], 100, axis=0)
    assert synthetic.mode_coverage(collapsed)["modes_covered"] == 1
    assert synthetic.mode_coverage(collapsed + 1.0)["high_quality"] == 0.0
    with pytest.raises(ValueError, match=r"Expected `samples` of shape \(n, 2\)"):
        synthetic.mode_coverage(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Expected `n` to be a positive integer. Received: n=0"):
        synthetic.ring_of_gaussians(0)


def test_mixture_density_integrates_to_one(density_grid):
    grid, dx = density_grid
    p = synthetic.mixture_density(grid, [-2.0, 3.0], [0.5, 1.0], [0.3, 0.7])
    assert np.sum(p) * dx == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(p, 0.3 * norm.pdf(grid, -2, 0.5) + 0.7 * norm.pdf(grid, 3, 1.0), atol=1e-12)
    g = np.linspace(-4, 4, 401)
    xx, yy = np.meshgrid(g, g)
    p2 = synthetic.mixture_density(np.stack([xx.ravel(), yy.ravel()], 1), synthetic.ring_centres(4, 2.0), 0.3)
    assert np.sum(p2) * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="summing to 1"):
        synthetic.mixture_density(grid, [0.0, 1.0], 1.0, [0.5, 0.6])


def test_wave_series_and_dominant_frequency():
    x, f = synthetic.wave_series(3000, length=64, noise=0.1, seed=0)
    assert x.shape == (3000, 64) and x.dtype == np.float32 and f.min() >= 1 and f.max() <= 4
    error = np.abs(synthetic.dominant_frequency(x) - f)
    # The zero-padded spectrum reads frequencies on a grid of 1/8 cycle (error <= 1/16); a
    # sine with a non-integer number of cycles also leaks into its mirror image at -f,
    # which pulls the peak by up to about 0.2 cycles at f = 1 (measured: 0.20 noiseless).
    assert error.mean() < 0.1 and error.max() < 0.3
    with pytest.raises(ValueError, match=r"Expected `cycles`"):
        synthetic.wave_series(10, length=8, cycles=(1.0, 5.0))
