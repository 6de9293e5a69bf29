"""Walking in a latent space: interpolation, the 2-D manifold grid, and attribute vectors.

* `interpolate(a, b, steps)`: points from `a` to `b`, on a straight line or, for Gaussian
  latents, on the great circle (`spherical=True`, "slerp"), which keeps the points at the
  norms the prior puts its mass on (White 2016);
* `grid_points(n)`: an n x n grid of 2-D latents at evenly spaced quantiles of N(0, 1), the
  points behind the classic "decoded manifold" figure of Kingma and Welling (2014);
* `attribute_vector(z, has_attribute)`: the mean latent of the examples with an attribute
  minus the mean of those without; adding it to a code adds the attribute;
* `thickness(images)` and `slant(images)`: two measurable attributes of a handwritten
  digit (mean ink, and how far the strokes lean right), to pick examples by and to check
  what a latent edit did.

Example:

>>> z = latent.interpolate(vae.encode(x[:1])[0][0], vae.encode(x[1:2])[0][0], steps=8)
>>> images = vae.decode(z)
"""

import numpy as np
from scipy.stats import norm

__all__ = ["attribute_vector", "grid_points", "interpolate", "slant", "thickness"]


def _vector(name, v):
    v = np.asarray(v, np.float64)
    if v.ndim != 1 or len(v) == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"Expected `{name}` to be a finite 1-D latent vector. Received: {name}.shape={v.shape}")
    return v


def interpolate(a, b, steps=8, spherical=False):
    """`steps` latents from `a` to `b` inclusive, `(steps, d)` float32.

    With `spherical=True`, the angle between `a` and `b` (as vectors from the origin) is
    divided evenly and the norm interpolated linearly, so that no point falls into the
    low-probability centre of a high-dimensional Gaussian.
    """
    a, b = _vector("a", a), _vector("b", b)
    if a.shape != b.shape:
        raise ValueError(f"Expected `a` and `b` of the same shape. Received: a.shape={a.shape}, b.shape={b.shape}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"Expected `steps` to be an integer >= 2. Received: steps={steps!r}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if not spherical:
        return ((1 - t) * a + t * b).astype("float32")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise ValueError("Spherical interpolation needs non-zero `a` and `b`; use spherical=False")
    omega = np.arccos(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * a + t * b).astype("float32")
    direction = (np.sin((1 - t) * omega) * a / na + np.sin(t * omega) * b / nb) / np.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).astype("float32")


def grid_points(n=15, edge=0.05):
    """An `(n * n, 2)` grid of latents at the N(0, 1) quantiles `edge` .. `1 - edge` on each
    axis, row by row from the top (largest second coordinate) so it reads like an image."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"Expected `n` to be an integer >= 2. Received: n={n!r}")
    if not 0 < edge < 0.5:
        raise ValueError(f"Expected `edge` in (0, 0.5). Received: edge={edge!r}")
    values = norm.ppf(np.linspace(edge, 1 - edge, n))
    first, second = np.meshgrid(values, values[::-1])
    return np.stack([first.ravel(), second.ravel()], axis=1).astype("float32")


def attribute_vector(z, has_attribute):
    """Mean of `z` over rows where `has_attribute` is true minus the mean over the rest."""
    z = np.asarray(z, np.float64)
    mask = np.asarray(has_attribute, bool)
    if z.ndim != 2 or mask.shape != (len(z),):
        raise ValueError(f"Expected `z` of shape (n, d) and `has_attribute` of shape (n,). Received: {z.shape}, {mask.shape}")
    if mask.all() or not mask.any():
        raise ValueError("Expected `has_attribute` to hold both true and false entries")
    return (z[mask].mean(axis=0) - z[~mask].mean(axis=0)).astype("float32")


def _ink(images):
    images = np.asarray(images, np.float64)
    if images.ndim < 2 or len(images) == 0 or images[0].size != 784:
        raise ValueError(f"Expected a batch of 28x28 images. Received: images.shape={images.shape}")
    return images.reshape(len(images), 28, 28)


def thickness(images):
    """Mean grey level of each image in [0, 1]: thicker strokes put down more ink."""
    return _ink(images).mean(axis=(1, 2))


def slant(images):
    """How far each digit leans right: the slope dx/dy of the least-squares line through its
    ink (x to the right, y up), weighted by grey level. 0 is upright; 0.3 leans right by
    about 17 degrees; negative values lean left."""
    ink = _ink(images)
    rows, cols = np.mgrid[0:28, 0:28]
    y, x = -rows.astype(np.float64), cols.astype(np.float64)
    mass = ink.sum(axis=(1, 2)) + 1e-12
    mean_x = (ink * x).sum(axis=(1, 2)) / mass
    mean_y = (ink * y).sum(axis=(1, 2)) / mass
    cov = (ink * (x - mean_x[:, None, None]) * (y - mean_y[:, None, None])).sum(axis=(1, 2)) / mass
    var_y = (ink * (y - mean_y[:, None, None]) ** 2).sum(axis=(1, 2)) / mass
    return cov / (var_y + 1e-12)
