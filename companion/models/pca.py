"""Principal component analysis, the linear encoder-decoder the book compares autoencoders with.

`PCA(k).fit(x)` finds the k directions of largest variance; `transform` is the encoder
(projection onto them), `inverse_transform` the decoder. Among all linear maps to k
dimensions and back, it has the smallest mean squared reconstruction error, which equals
the sum of the discarded eigenvalues of the covariance divided by the dimension.

Example:

>>> pca = PCA(2).fit(flatten(x_train))
>>> codes = pca.transform(flatten(x_test))        # (n, 2)

`kmeans(codes, k)` groups codes into k clusters (Lloyd's algorithm from k-means++ seeds);
`ClusterGAN` trains on such clusters of the training images instead of their labels.
"""

import numpy as np

from companion import validation

__all__ = ["PCA", "kmeans", "knn_accuracy"]


class PCA:
    """Principal components by the SVD of the centred data.

    Args:
        n_components: number of components kept.

    Attributes (after `fit`): `mean` `(d,)`, `components` `(n_components, d)` (orthonormal
    rows), `explained_variance` `(n_components,)`, `all_variances` `(min(n, d),)`.
    """

    def __init__(self, n_components):
        validation.positive_int("n_components", n_components)
        self.n_components = int(n_components)
        self.mean = None

    def _flat(self, x, name="x"):
        x = np.asarray(x, np.float64)
        return x.reshape(len(x), -1)

    def fit(self, x):
        x = self._flat(x)
        if self.n_components > min(x.shape):
            raise ValueError(f"Expected `n_components` <= {min(x.shape)} for data of shape {x.shape}. Received: {self.n_components}")
        self.mean = x.mean(axis=0)
        _, singular, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.all_variances = singular**2 / (len(x) - 1)
        self.components = vt[: self.n_components]
        self.explained_variance = self.all_variances[: self.n_components]
        return self

    def _check_fitted(self):
        if self.mean is None:
            raise RuntimeError("This PCA is not fitted yet: call fit(x) first")

    def transform(self, x):
        self._check_fitted()
        return (self._flat(x) - self.mean) @ self.components.T

    def inverse_transform(self, codes):
        self._check_fitted()
        codes = np.asarray(codes, np.float64)
        if codes.ndim != 2 or codes.shape[1] != self.n_components:
            raise ValueError(f"Expected `codes` of shape (n, {self.n_components}). Received: codes.shape={codes.shape}")
        return codes @ self.components + self.mean


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k=5, block=2000):
    """Accuracy of a k-nearest-neighbour vote in a code space: how well the codes keep the
    classes apart (the book's measure of a 2-D latent map)."""
    train_codes, test_codes = np.asarray(train_codes, np.float64), np.asarray(test_codes, np.float64)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if not 1 <= k <= len(train_codes):
        raise ValueError(f"Expected `k` in [1, {len(train_codes)}]. Received: k={k}")
    correct = 0
    for start in range(0, len(test_codes), block):
        part = test_codes[start : start + block]
        d = np.sum(part**2, 1)[:, None] - 2 * part @ train_codes.T + np.sum(train_codes**2, 1)[None]
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        votes = train_labels[nearest]
        predicted = np.array([np.bincount(v).argmax() for v in votes])
        correct += int(np.sum(predicted == test_labels[start : start + block]))
    return correct / len(test_codes)


def _squared_distances(x, centres):
    return np.maximum(np.sum(x**2, 1)[:, None] - 2 * x @ centres.T + np.sum(centres**2, 1)[None], 0.0)


def kmeans(x, k, n_init=3, iterations=100, seed=0):
    """k-means clustering: Lloyd's algorithm from k-means++ seeds (Arthur and Vassilvitskii,
    2007), the best of `n_init` starts by inertia (the sum of squared distances from each
    point to its centre).

    Args:
        x: points `(n, d)`.
        k: number of clusters, 1 <= k <= n.
        n_init: independent starts; iterations: at most this many Lloyd steps per start
            (each stops early once no point changes cluster).
        seed: seed of the k-means++ draws.

    Returns:
        `(centres, assignments, inertia)`: `(k, d)` float64, `(n,)` int64, a float.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"Expected `x` of shape (n, d) with n >= 1. Received: x.shape={x.shape}")
    for name, value, low, high in (("k", k, 1, len(x)), ("n_init", n_init, 1, None), ("iterations", iterations, 1, None)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low or (high is not None and value > high):
            bound = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise ValueError(f"Expected `{name}` an integer {bound}. Received: {name}={value!r}")
    rng = np.random.default_rng(validation.seed("seed", seed))
    best = None
    for _ in range(n_init):
        centres = [x[rng.integers(len(x))]]
        closest = _squared_distances(x, np.array(centres))[:, 0]
        for _ in range(1, k):  # each next seed drawn with probability proportional to D(x)^2
            total = closest.sum()
            index = rng.choice(len(x), p=closest / total) if total > 0 else rng.integers(len(x))
            centres.append(x[index])
            closest = np.minimum(closest, _squared_distances(x, x[index][None])[:, 0])
        centres = np.array(centres)
        assignments = None
        for _ in range(iterations):
            new = _squared_distances(x, centres).argmin(axis=1)
            if assignments is not None and np.array_equal(new, assignments):
                break
            assignments = new
            for c in range(k):  # an emptied cluster keeps its centre
                members = x[assignments == c]
                if len(members):
                    centres[c] = members.mean(axis=0)
        distances = _squared_distances(x, centres)
        assignments = distances.argmin(axis=1)
        inertia = float(distances[np.arange(len(x)), assignments].sum())
        if best is None or inertia < best[2]:
            best = (centres, assignments, inertia)
    return best
