"""Denoising MNIST: the noise, and the classical filters the learned denoiser must beat.

The noise is additive Gaussian with standard deviation `sigma`, clipped back to [0, 1].
The baselines are a Gaussian filter and a median filter (SciPy), each with its one
parameter (the Gaussian's width, the median's window) tuned on validation images, the way
a careful practitioner would set them before comparing.

Example:

>>> noisy = add_noise(x_val, sigma=0.5, seed=0)
>>> best = tune_filters(x_val, noisy)          # {"gaussian": (psnr, width), "median": (psnr, size)}
>>> denoised = apply_filter("median", noisy, best["median"][1])
"""

import numpy as np
from scipy import ndimage

from companion import validation

__all__ = ["FILTER_GRIDS", "add_noise", "apply_filter", "tune_filters"]

# The parameters tried on the validation images: Gaussian widths in pixels, median windows.
FILTER_GRIDS = {
    "gaussian": (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.7, 2.0),
    "median": (2, 3, 4, 5, 6, 7),
}


def add_noise(x, sigma, seed=None):
    """x + N(0, sigma^2) per pixel, clipped to [0, 1]; float32, same shape as x."""
    x = np.asarray(x, np.float32)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"Expected `sigma` >= 0. Received: sigma={sigma!r}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"Expected `x` in [0, 1]. Received values in [{x.min()}, {x.max()}]")
    noise = np.random.default_rng(validation.seed("seed", seed)).standard_normal(x.shape).astype(np.float32)
    return np.clip(x + np.float32(sigma) * noise, 0.0, 1.0)


def apply_filter(name, images, parameter):
    """Filters each 28x28 image on its own (never across images)."""
    if name not in FILTER_GRIDS:
        raise ValueError(f"Expected `name` among {', '.join(FILTER_GRIDS)}. Received: name={name!r}")
    images = np.asarray(images, np.float32)
    flat = images.reshape(-1, 28, 28)
    if name == "gaussian":
        out = ndimage.gaussian_filter(flat, sigma=(0, parameter, parameter), mode="constant")
    else:
        out = ndimage.median_filter(flat, size=(1, parameter, parameter), mode="constant")
    return out.reshape(images.shape)


def tune_filters(clean, noisy, grids=None):
    """For each filter, the parameter with the best mean PSNR on these (validation) images.

    Returns:
        `{name: (psnr, parameter)}`.
    """
    from companion.evaluation.metrics import psnr

    grids = grids or FILTER_GRIDS
    best = {}
    for name, grid in grids.items():
        scores = [(psnr(clean, apply_filter(name, noisy, p)), p) for p in grid]
        best[name] = max(scores)
    return best
