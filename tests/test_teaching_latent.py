"""Tests of companion.teaching.latent: interpolation, manifold grids, attribute vectors, slant and thickness."""

import numpy as np
import pytest
from scipy.stats import norm


def test_interpolate_ends_at_both_points_and_slerp_keeps_the_norm():
    from companion.teaching import latent

    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    line = latent.interpolate(a, b, steps=5)
    np.testing.assert_allclose(line[[0, -1]], [a, b], atol=1e-6)
    np.testing.assert_allclose(np.diff(line, axis=0), np.tile((b - a) / 4, (4, 1)), atol=1e-6)
    arc = latent.interpolate(a, b, steps=5, spherical=True)
    np.testing.assert_allclose(arc[[0, -1]], [a, b], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 3.0, rtol=1e-6)  # a quarter circle
    np.testing.assert_allclose(np.arctan2(arc[:, 1], arc[:, 0]), np.linspace(0, np.pi / 2, 5), atol=1e-6)
    # The straight line's midpoint is shorter by cos(45 degrees): the dip slerp avoids.
    assert np.linalg.norm(line[2]) == pytest.approx(3.0 * np.cos(np.pi / 4), rel=1e-6)
    with pytest.raises(ValueError, match="Expected `steps` to be an integer >= 2. Received: steps=1"):
        latent.interpolate(a, b, steps=1)


def test_grid_points_are_normal_quantiles_read_like_an_image():
    from companion.teaching import latent

    z = latent.grid_points(3, edge=0.1)
    q = norm.ppf(0.1)
    np.testing.assert_allclose(z[:3], [[q, -q], [0, -q], [-q, -q]], atol=1e-6)  # top row first
    np.testing.assert_allclose(z[-1], [-q, q], atol=1e-6)


def test_attribute_vector_recovers_a_planted_direction():
    from companion.teaching import latent

    rng = np.random.default_rng(0)
    mask = rng.random(20000) < 0.3
    z = rng.standard_normal((20000, 4)) + np.outer(mask, [2.0, 0, 0, -1.0])
    # Each mean has standard error about 1/sqrt(6000): 0.05 is over 3 standard errors.
    np.testing.assert_allclose(latent.attribute_vector(z, mask), [2.0, 0, 0, -1.0], atol=0.05)
    with pytest.raises(ValueError, match="both true and false"):
        latent.attribute_vector(z, np.ones(20000, bool))


def test_slant_and_thickness_of_drawn_strokes():
    from companion.teaching import latent

    def stroke(slope, width=1):
        image = np.zeros((28, 28))
        for row in range(4, 24):
            col = int(round(14 + slope * (14 - row)))  # rows grow downward; y = 14 - row
            image[row, col : col + width] = 1.0
        return image

    images = np.stack([stroke(0.0), stroke(0.5), stroke(-0.5), stroke(0.0, width=3)])
    s = latent.slant(images)
    # Rounding each row's column to the nearest pixel leaves the fitted slope within 0.02.
    np.testing.assert_allclose(s, [0.0, 0.5, -0.5, 0.0], atol=0.02)
    np.testing.assert_allclose(latent.thickness(images), [20 / 784, 20 / 784, 20 / 784, 60 / 784])
    with pytest.raises(ValueError, match="Expected a batch of 28x28 images"):
        latent.slant(np.zeros((2, 10)))
