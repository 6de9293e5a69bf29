"""Pixel-independent models of binary images: the simplest generative models.

They give the yardstick every later model must beat. A VAE's negative ELBO on
binarized MNIST is reported in nats per image; so is the negative log-likelihood
of these models, which can be computed exactly.

Example:

>>> model = BernoulliPixels().fit(x_binary_train)
>>> nll = -model.log_prob(x_binary_test).mean()   # nats per image
>>> samples = model.sample(16, seed=0)
"""

import numpy as np
from scipy.special import logsumexp

from companion import validation

__all__ = ["BernoulliMixture", "BernoulliPixels"]


def _as_binary_vectors(x, name="x"):
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"Expected `{name}` to be a non-empty batch of images. Received: {name}.shape={x.shape}")
    flat = x.reshape(len(x), -1)
    if not np.isin(flat, (0, 1)).all():
        raise ValueError(
            f"Expected binary `{name}` (values 0 and 1); binarize it first, e.g. with "
            f"companion.data.binarize_static. Received values in [{flat.min():g}, {flat.max():g}]"
        )
    return flat.astype(np.float64)


def _bernoulli_log_prob(flat, log_p, log_1mp):
    """log p(x) per example for independent Bernoulli pixels; one row of `log_p` per component."""
    return flat @ log_p.T + (1.0 - flat) @ log_1mp.T


class BernoulliPixels:
    """Every pixel an independent coin: p(x) = prod_i p_i^x_i (1 - p_i)^(1 - x_i).

    Args:
        smoothing: pseudo-count added to the ones and the zeros of each pixel, so that
            no probability is exactly 0 or 1 (add-one smoothing for `smoothing=1`).
    """

    def __init__(self, smoothing=1.0):
        validation.number("smoothing", smoothing, low=0, low_open=True)
        self.smoothing = smoothing
        self.probs = None

    def fit(self, x):
        """Estimates each pixel's probability of being 1 from binary images `x`."""
        flat = _as_binary_vectors(x)
        self.shape = np.asarray(x).shape[1:]
        self.probs = (flat.sum(0) + self.smoothing) / (len(flat) + 2 * self.smoothing)
        return self

    def _check_fitted(self):
        if self.probs is None:
            raise RuntimeError("This model is not fitted yet: call fit(x) first")

    def log_prob(self, x):
        """Log-likelihood of each binary image, in nats, shape `(n,)`."""
        self._check_fitted()
        flat = _as_binary_vectors(x)
        if flat.shape[1] != self.probs.size:
            raise ValueError(
                f"Expected images of {self.probs.size} pixels. Received: x.shape={np.asarray(x).shape}"
            )
        return _bernoulli_log_prob(flat, np.log(self.probs)[None], np.log1p(-self.probs)[None])[:, 0]

    def sample(self, n, seed=None):
        """Draws `n` binary images of the training shape."""
        self._check_fitted()
        rng = np.random.default_rng(validation.seed("seed", seed))
        return (rng.random((n, *self.shape)) < self.probs.reshape(self.shape)).astype(np.float32)


class BernoulliMixture:
    """A mixture with one `BernoulliPixels` per class, fitted from the labels.

    p(x) = sum_k pi_k p(x | k), where pi_k is the frequency of class k. Knowing which
    digit to draw already helps a lot; what it cannot capture is how pixels vary
    together within a class (stroke thickness, slant), which is what a latent
    variable model adds.
    """

    def __init__(self, smoothing=1.0):
        validation.number("smoothing", smoothing, low=0, low_open=True)
        self.smoothing = smoothing
        self.probs = None

    def fit(self, x, y):
        """Fits one pixel model per label value in `y`."""
        flat = _as_binary_vectors(x)
        y = np.asarray(y)
        if y.shape != (len(flat),):
            raise ValueError(f"Expected `y` of shape ({len(flat)},). Received: y.shape={y.shape}")
        self.shape = np.asarray(x).shape[1:]
        self.classes, counts = np.unique(y, return_counts=True)
        self.weights = counts / counts.sum()
        self.probs = np.stack([
            (flat[y == k].sum(0) + self.smoothing) / (n_k + 2 * self.smoothing)
            for k, n_k in zip(self.classes, counts)
        ])
        return self

    def _check_fitted(self):
        if self.probs is None:
            raise RuntimeError("This model is not fitted yet: call fit(x, y) first")

    def log_prob(self, x):
        """Log-likelihood of each binary image, in nats, shape `(n,)`."""
        self._check_fitted()
        flat = _as_binary_vectors(x)
        if flat.shape[1] != self.probs.shape[1]:
            raise ValueError(
                f"Expected images of {self.probs.shape[1]} pixels. Received: x.shape={np.asarray(x).shape}"
            )
        per_class = _bernoulli_log_prob(flat, np.log(self.probs), np.log1p(-self.probs))
        return logsumexp(per_class + np.log(self.weights), axis=1)

    def sample(self, n, seed=None, labels=None):
        """Draws `n` binary images; of the given `labels`, or of classes drawn from the weights."""
        self._check_fitted()
        rng = np.random.default_rng(validation.seed("seed", seed))
        if labels is None:
            which = rng.choice(len(self.classes), size=n, p=self.weights)
        else:
            labels = np.asarray(labels)
            unknown = np.setdiff1d(labels, self.classes)
            if labels.shape != (n,) or unknown.size:
                raise ValueError(
                    f"Expected `labels` of shape ({n},) with values in {self.classes.tolist()}. "
                    f"Received: labels.shape={labels.shape}, unknown values {unknown.tolist()}"
                )
            which = np.searchsorted(self.classes, labels)
        probs = self.probs[which].reshape((n, *self.shape))
        return (rng.random(probs.shape) < probs).astype(np.float32)
