"""Tests of companion.models.pca: PCA, k-means and the k-nearest-neighbour accuracy."""

import numpy as np
import pytest

from companion.models.pca import PCA, kmeans, knn_accuracy


def test_pca_matches_the_eigendecomposition_and_its_error_is_the_discarded_variance():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6)) + 3.0
    pca = PCA(2).fit(x)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(x, rowvar=False))
    np.testing.assert_allclose(pca.explained_variance, eigenvalues[::-1][:2], rtol=1e-10)
    np.testing.assert_allclose(np.abs(pca.components @ eigenvectors[:, ::-1][:, :2]), np.eye(2), atol=1e-8)
    reconstruction = pca.inverse_transform(pca.transform(x))
    error = np.sum((x - reconstruction) ** 2) / (len(x) - 1)
    assert error == pytest.approx(eigenvalues[::-1][2:].sum(), rel=1e-10)
    with pytest.raises(ValueError, match=r"Expected `codes` of shape \(n, 2\)"):
        pca.inverse_transform(np.zeros((3, 3)))
    with pytest.raises(RuntimeError, match="not fitted"):
        PCA(1).transform(x)
    with pytest.raises(ValueError, match="Received: n_components=0"):
        PCA(0)


def test_knn_accuracy_on_separated_and_mixed_classes():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 200)
    separated = labels[:, None] * 10.0 + rng.standard_normal((400, 2))
    assert knn_accuracy(separated, labels, separated + 0.01, labels, k=5) == 1.0
    mixed = rng.standard_normal((400, 2))
    # Labels independent of the codes: accuracy is a coin flip, within 4 standard errors (0.1).
    assert abs(knn_accuracy(mixed[:200], labels[::2], mixed[200:], labels[1::2], k=5) - 0.5) < 0.1


def test_kmeans_reaches_a_fixed_point_of_lloyds_algorithm_and_finds_separated_blobs():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 5))
    centres, assignments, inertia = kmeans(x, 4, seed=1)
    # A fixed point: every point is at its nearest centre, and every centre is its members' mean.
    distances = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(assignments, distances.argmin(1))
    for c in range(4):
        np.testing.assert_allclose(centres[c], x[assignments == c].mean(0), atol=1e-12)
    np.testing.assert_allclose(inertia, distances.min(1).sum(), rtol=1e-12)
    # Four blobs 20 standard deviations apart: the partition is the blobs', as scikit-learn finds.
    blobs = np.repeat(rng.standard_normal((4, 5)) * 20, 50, axis=0) + rng.standard_normal((200, 5))
    _, ours, _ = kmeans(blobs, 4, seed=0)
    theirs = KMeans(4, n_init=3, random_state=0).fit(blobs).labels_
    pairs = {(a, b) for a, b in zip(ours, theirs)}
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4  # the same partition, up to the clusters' names
    with pytest.raises(ValueError, match=r"Expected `k` an integer \[1, 200\]. Received: k=201"):
        kmeans(blobs, 201)
