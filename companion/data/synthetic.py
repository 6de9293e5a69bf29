"""Toy data for the theory chapters: small problems whose densities are known exactly.

* `ring_of_gaussians`: the 2-D mixture of Gaussians on a circle that GAN papers use to show
  mode collapse (Metz et al. 2017; Srivastava et al. 2017), with `mode_coverage` to count
  the modes a generator's samples reach;
* `mixture_density`: the density of a 1-D or 2-D Gaussian mixture on a grid, for plots
  and for the exact quantities of `companion.teaching.theory`;
* `wave_series`: noisy sine waves of random frequency, amplitude and phase, the time
  series of the FAQ chapter, with `dominant_frequency` to read a series' frequency back.

Example:

>>> x, mode = ring_of_gaussians(1000, modes=8, seed=0)
>>> mode_coverage(x)["modes_covered"]
8
"""

import numpy as np

from companion import validation

__all__ = ["dominant_frequency", "mixture_density", "mode_coverage", "ring_centres", "ring_of_gaussians", "wave_series"]


def _positive(name, value, integer=False):
    if integer:
        return validation.positive_int(name, value)
    return validation.number(name, value, low=0, low_open=True)


def ring_centres(modes=8, radius=2.0):
    """The `(modes, 2)` centres, evenly spaced on a circle of `radius`."""
    _positive("modes", modes, integer=True)
    angles = 2 * np.pi * np.arange(modes) / modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype("float32")


def ring_of_gaussians(n, modes=8, radius=2.0, std=0.05, seed=None):
    """`n` points from an equal mixture of `modes` isotropic Gaussians on a circle.

    Returns:
        `(points, mode)`: float32 `(n, 2)` and the int `(n,)` index of each point's mode.
    """
    _positive("n", n, integer=True)
    _positive("std", std)
    rng = np.random.default_rng(seed)
    mode = rng.integers(0, modes, n)
    points = ring_centres(modes, radius)[mode] + std * rng.standard_normal((n, 2))
    return points.astype("float32"), mode


def mode_coverage(samples, modes=8, radius=2.0, std=0.05, within=3.0, min_share=0.1):
    """How many of the ring's modes a set of samples reaches, and how many samples are good.

    A sample is *high quality* if it lies within `within` standard deviations of some mode's
    centre; a mode is *covered* if it receives at least `min_share` of its fair share
    (`n / modes`) of high-quality samples.

    Returns:
        dict with `modes_covered` (int), `high_quality` (fraction of samples) and `counts`
        (high-quality samples per mode).
    """
    samples = np.asarray(samples, np.float64)
    if samples.ndim != 2 or samples.shape[1] != 2 or len(samples) == 0:
        raise ValueError(f"Expected `samples` of shape (n, 2). Received: samples.shape={samples.shape}")
    centres = ring_centres(modes, radius).astype(np.float64)
    distances = np.linalg.norm(samples[:, None, :] - centres[None], axis=-1)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= within * std
    counts = np.bincount(nearest[good], minlength=modes)
    return {
        "modes_covered": int(np.sum(counts >= min_share * len(samples) / modes)),
        "high_quality": float(good.mean()),
        "counts": counts,
    }


def mixture_density(x, means, stds, weights=None):
    """Density of a mixture of isotropic Gaussians at points `x`.

    Args:
        x: `(n,)` points on a line, or `(n, d)` points.
        means: `(k,)` or `(k, d)` centres; stds: `(k,)` standard deviations;
        weights: `(k,)` mixing weights summing to 1 (default: equal).
    """
    x = np.asarray(x, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    means = np.asarray(means, np.float64).reshape(-1, x.shape[1])
    stds = np.broadcast_to(np.asarray(stds, np.float64), (len(means),))
    weights = np.full(len(means), 1.0 / len(means)) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != (len(means),) or not np.isclose(weights.sum(), 1.0) or (weights < 0).any():
        raise ValueError(f"Expected {len(means)} non-negative `weights` summing to 1. Received: weights={weights!r}")
    d = x.shape[1]
    squared = np.sum((x[:, None, :] - means[None]) ** 2, axis=-1)
    components = np.exp(-0.5 * squared / stds**2) / (2 * np.pi * stds**2) ** (d / 2)
    return components @ weights


def wave_series(n, length=64, cycles=(1.0, 4.0), amplitude=(0.5, 1.5), noise=0.1, seed=None):
    """`n` series a * sin(2 pi f t / length + phase) + noise, t = 0 .. length - 1.

    Args:
        n, length: number of series and values per series.
        cycles: range of f, the number of cycles per series, drawn uniformly.
        amplitude: range of a, drawn uniformly; the phase is uniform in [0, 2 pi).
        noise: standard deviation of the Gaussian noise added to every value.

    Returns:
        `(series, f)`: float32 `(n, length)` and the `(n,)` cycles of each series.
    """
    _positive("n", n, integer=True)
    _positive("length", length, integer=True)
    if not 0 < cycles[0] <= cycles[1] < length / 2:
        raise ValueError(f"Expected `cycles` (low, high) with 0 < low <= high < length / 2 = {length / 2}. Received: cycles={cycles!r}")
    rng = np.random.default_rng(seed)
    f = rng.uniform(*cycles, n)
    a = rng.uniform(*amplitude, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    t = np.arange(length)
    series = a[:, None] * np.sin(2 * np.pi * f[:, None] * t / length + phase[:, None])
    series += noise * rng.standard_normal(series.shape)
    return series.astype("float32"), f


def dominant_frequency(series, resolution=8):
    """Cycles per series of each series' strongest frequency (the mean removed), read
    from its spectrum zero-padded `resolution` times: `(n,)` floats."""
    series = np.asarray(series, np.float64)
    if series.ndim != 2 or series.shape[1] < 4:
        raise ValueError(f"Expected `series` of shape (n, length) with length >= 4. Received: series.shape={series.shape}")
    length = series.shape[1]
    centred = series - series.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(centred, n=resolution * length, axis=1)) ** 2
    return power.argmax(axis=1) / resolution
