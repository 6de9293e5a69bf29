"""Tests of companion.teaching.theory: the exact quantities of the VAE and GAN derivations."""

import keras
import numpy as np
import pytest
from scipy.stats import norm

from companion.data import synthetic
from companion.models.vae import gaussian_kl
from companion.teaching import theory


def test_the_value_at_the_optimal_discriminator_is_minus_log_4_plus_twice_the_jsd(density_grid):
    grid, dx = density_grid
    p_data = synthetic.mixture_density(grid, [-2.0, 2.0], 0.5)
    p_g = norm.pdf(grid, 0.5, 1.5)
    d_star = theory.optimal_discriminator(p_data, p_g)
    value = theory.gan_value(p_data, p_g, d_star, dx)
    assert value == pytest.approx(-np.log(4) + 2 * theory.jensen_shannon(p_data, p_g, dx), abs=1e-9)
    # D* is the maximizer: any other discriminator gives a smaller value.
    for other in (np.clip(d_star + 0.05, 0, 0.999), np.full_like(d_star, 0.5), np.clip(d_star**2, 1e-6, 1)):
        assert theory.gan_value(p_data, p_g, other, dx) < value
    # At p_g = p_data: D* = 1/2 everywhere and V = -log 4 (Goodfellow et al. 2014, Theorem 1).
    np.testing.assert_array_equal(theory.optimal_discriminator(p_data, p_data), 0.5)
    assert theory.gan_value(p_data, p_data, 0.5 * np.ones_like(grid), dx) == pytest.approx(-np.log(4), abs=1e-9)


def test_jensen_shannon_bounds(density_grid):
    grid, dx = density_grid
    p, q = norm.pdf(grid, -6, 0.5), norm.pdf(grid, 6, 0.5)
    assert theory.jensen_shannon(p, p, dx) == 0.0
    assert theory.jensen_shannon(p, q, dx) == pytest.approx(np.log(2), abs=1e-9)  # disjoint supports
    r = norm.pdf(grid, -5, 1.0)
    assert theory.jensen_shannon(p, r, dx) == pytest.approx(theory.jensen_shannon(r, p, dx), abs=1e-12)
    with pytest.raises(ValueError, match="on one grid"):
        theory.jensen_shannon(p, q[:-1], dx)


def test_wasserstein_is_the_shift_between_translated_densities_where_jsd_saturates(density_grid):
    grid, dx = density_grid
    p = norm.pdf(grid, 0.0, 0.1)
    for shift in (0.5, 2.0, 5.0):
        q = norm.pdf(grid, shift, 0.1)
        # Moving all the mass by `shift` costs exactly `shift`; the grid's rectangle rule is exact to ~1e-6.
        assert theory.wasserstein_1d(p, q, dx) == pytest.approx(shift, abs=1e-3)
        if shift >= 2.0:  # 20 standard deviations apart: the supports are disjoint and JSD is stuck at log 2
            assert theory.jensen_shannon(p, q, dx) == pytest.approx(np.log(2), abs=1e-9)
    # 5 standard deviations apart the densities still overlap a little: JSD is just below log 2.
    assert 0.6 < theory.jensen_shannon(p, norm.pdf(grid, 0.5, 0.1), dx) < np.log(2) - 0.01
    assert theory.wasserstein_1d(p, p, dx) == 0.0


def test_generator_loss_gradients_match_finite_differences():
    logits = np.linspace(-6, 6, 25)
    d = 1 / (1 + np.exp(-logits))
    h = 1e-6
    saturating = lambda l: np.log1p(-1 / (1 + np.exp(-l)))
    non_saturating = lambda l: -np.log(1 / (1 + np.exp(-l)))
    grads = theory.generator_loss_gradients(d)
    np.testing.assert_allclose(grads["saturating"], (saturating(logits + h) - saturating(logits - h)) / (2 * h), rtol=1e-5)
    np.testing.assert_allclose(grads["non_saturating"], (non_saturating(logits + h) - non_saturating(logits - h)) / (2 * h), rtol=1e-5)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        theory.generator_loss_gradients([0.0, 0.5])


def test_gradient_estimators_are_unbiased_with_the_variances_of_the_closed_form():
    """f(z) = z^2, z ~ N(mu, s^2): the gradient is 2 mu; the reparameterization estimate
    2(mu + s eps) has variance 4 s^2; the score-function estimate z^2 eps / s has variance
    mu^4 / s^2 + 14 mu^2 + 15 s^2 (expand (mu^2 eps + 2 mu s eps^2 + s^2 eps^3)^2 / s^2 with
    E[eps^2] = 1, E[eps^4] = 3, E[eps^6] = 15)."""
    mu, s, n = 1.0, 0.5, 400000
    estimates = theory.gradient_estimates(lambda z: z**2, lambda z: 2 * z, mu, s, n, seed=0)
    expected_variance = {"reparameterization": 4 * s**2, "score_function": mu**4 / s**2 + 14 * mu**2 + 15 * s**2}
    for name, values in estimates.items():
        assert abs(values.mean() - 2 * mu) < 5 * values.std() / np.sqrt(n), name
        # The sample variance of 400k heavy-tailed draws is within a few percent of its value.
        assert values.var() == pytest.approx(expected_variance[name], rel=0.05), name
    with pytest.raises(ValueError, match=r"Expected `std` to be a finite number > 0. Received: std=0.0"):
        theory.gradient_estimates(np.square, np.abs, 0.0, 0.0, 10)


def test_monte_carlo_kl_agrees_with_the_closed_form():
    mean, logvar = np.array([0.5, -1.0, 2.0]), np.array([0.2, -1.5, 0.7])
    estimate, standard_error = theory.gaussian_kl_monte_carlo(mean, logvar, 200000, seed=1)
    exact = float(keras.ops.convert_to_numpy(gaussian_kl(keras.ops.convert_to_tensor(mean[None].astype("float32")),
                                                        keras.ops.convert_to_tensor(logvar[None].astype("float32"))))[0])
    assert abs(estimate - exact) < 4 * standard_error
    assert theory.gaussian_kl_monte_carlo(np.zeros(2), np.zeros(2), 100, seed=0) == (0.0, 0.0)
