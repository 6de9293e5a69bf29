"""Tests of the toy data, the numerical theory helpers and the small models of chapters 2-4."""

import keras
import numpy as np
import pytest
from scipy.stats import norm

from companion import data, theory, toy
from companion.pca import PCA, kmeans, knn_accuracy
from companion.training import GeneratorSnapshots
from companion.models import Autoencoder, VectorGAN
from companion.models.vae import gaussian_kl

GRID = np.linspace(-12, 12, 24001)
DX = GRID[1] - GRID[0]


def test_ring_of_gaussians_and_its_mode_coverage():
    x, mode = toy.ring_of_gaussians(20000, modes=8, radius=2.0, std=0.05, seed=0)
    assert x.shape == (20000, 2) and x.dtype == np.float32 and set(np.unique(mode)) == set(range(8))
    offsets = x - toy.ring_centres(8, 2.0)[mode]
    np.testing.assert_allclose(offsets.std(axis=0), 0.05, rtol=0.03)  # 20k draws: relative SE 0.5%
    coverage = toy.mode_coverage(x)
    # A 2-D standard normal lies within radius 3 with probability 1 - exp(-9/2) = 0.9889.
    assert coverage["modes_covered"] == 8
    assert coverage["high_quality"] == pytest.approx(1 - np.exp(-4.5), abs=0.003)
    collapsed = np.repeat(toy.ring_centres(8, 2.0)[:1], 100, axis=0)
    assert toy.mode_coverage(collapsed)["modes_covered"] == 1
    assert toy.mode_coverage(collapsed + 1.0)["high_quality"] == 0.0
    with pytest.raises(ValueError, match=r"Expected `samples` of shape \(n, 2\)"):
        toy.mode_coverage(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Expected `n` to be a positive integer. Received: n=0"):
        toy.ring_of_gaussians(0)


def test_mixture_density_integrates_to_one():
    p = toy.mixture_density(GRID, [-2.0, 3.0], [0.5, 1.0], [0.3, 0.7])
    assert np.sum(p) * DX == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(p, 0.3 * norm.pdf(GRID, -2, 0.5) + 0.7 * norm.pdf(GRID, 3, 1.0), atol=1e-12)
    g = np.linspace(-4, 4, 401)
    xx, yy = np.meshgrid(g, g)
    p2 = toy.mixture_density(np.stack([xx.ravel(), yy.ravel()], 1), toy.ring_centres(4, 2.0), 0.3)
    assert np.sum(p2) * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="summing to 1"):
        toy.mixture_density(GRID, [0.0, 1.0], 1.0, [0.5, 0.6])


def test_the_value_at_the_optimal_discriminator_is_minus_log_4_plus_twice_the_jsd():
    p_data = toy.mixture_density(GRID, [-2.0, 2.0], 0.5)
    p_g = norm.pdf(GRID, 0.5, 1.5)
    d_star = theory.optimal_discriminator(p_data, p_g)
    value = theory.gan_value(p_data, p_g, d_star, DX)
    assert value == pytest.approx(-np.log(4) + 2 * theory.jensen_shannon(p_data, p_g, DX), abs=1e-9)
    # D* is the maximizer: any other discriminator gives a smaller value.
    for other in (np.clip(d_star + 0.05, 0, 0.999), np.full_like(d_star, 0.5), np.clip(d_star**2, 1e-6, 1)):
        assert theory.gan_value(p_data, p_g, other, DX) < value
    # At p_g = p_data: D* = 1/2 everywhere and V = -log 4 (Goodfellow et al. 2014, Theorem 1).
    np.testing.assert_array_equal(theory.optimal_discriminator(p_data, p_data), 0.5)
    assert theory.gan_value(p_data, p_data, 0.5 * np.ones_like(GRID), DX) == pytest.approx(-np.log(4), abs=1e-9)


def test_jensen_shannon_bounds():
    p, q = norm.pdf(GRID, -6, 0.5), norm.pdf(GRID, 6, 0.5)
    assert theory.jensen_shannon(p, p, DX) == 0.0
    assert theory.jensen_shannon(p, q, DX) == pytest.approx(np.log(2), abs=1e-9)  # disjoint supports
    r = norm.pdf(GRID, -5, 1.0)
    assert theory.jensen_shannon(p, r, DX) == pytest.approx(theory.jensen_shannon(r, p, DX), abs=1e-12)
    with pytest.raises(ValueError, match="on one grid"):
        theory.jensen_shannon(p, q[:-1], DX)


def test_wasserstein_is_the_shift_between_translated_densities_where_jsd_saturates():
    p = norm.pdf(GRID, 0.0, 0.1)
    for shift in (0.5, 2.0, 5.0):
        q = norm.pdf(GRID, shift, 0.1)
        # Moving all the mass by `shift` costs exactly `shift`; the grid's rectangle rule is exact to ~1e-6.
        assert theory.wasserstein_1d(p, q, DX) == pytest.approx(shift, abs=1e-3)
        if shift >= 2.0:  # 20 standard deviations apart: the supports are disjoint and JSD is stuck at log 2
            assert theory.jensen_shannon(p, q, DX) == pytest.approx(np.log(2), abs=1e-9)
    # 5 standard deviations apart the densities still overlap a little: JSD is just below log 2.
    assert 0.6 < theory.jensen_shannon(p, norm.pdf(GRID, 0.5, 0.1), DX) < np.log(2) - 0.01
    assert theory.wasserstein_1d(p, p, DX) == 0.0


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


def test_vector_gan_trains_on_the_ring_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    x, _ = toy.ring_of_gaussians(2048, seed=0)
    model = VectorGAN(data_dim=2, latent_dim=2, hidden_units=(32, 32), seed=0)
    model.compile()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, batch_size=256, epochs=2, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    samples = model.generate(100, seed=1)
    assert samples.shape == (100, 2)
    model.save(tmp_path / "toy.keras")
    loaded = keras.saving.load_model(tmp_path / "toy.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.generate(100, seed=1), samples)
    with pytest.raises(ValueError, match=r"Expected `x` of shape \(n, 2\)"):
        model.fit(np.zeros((10, 3), np.float32), epochs=1, verbose=0)


def test_autoencoder_learns_and_round_trips(mnist, tmp_path):
    (x_train, _), _ = mnist
    x = data.scale(x_train[:256])
    keras.utils.set_random_seed(0)
    model = Autoencoder(latent_dim=4, hidden_units=(32,))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = np.mean((model.reconstruct(x) - x.reshape(-1, 28, 28, 1)) ** 2)
    model.fit(x, batch_size=64, epochs=5, verbose=0)
    after = np.mean((model.reconstruct(x) - x.reshape(-1, 28, 28, 1)) ** 2)
    assert after < 0.8 * before
    assert model.encode(x[:3]).shape == (3, 4) and model.decode(np.zeros((2, 4), np.float32)).shape == (2, 28, 28, 1)
    model.save(tmp_path / "ae.keras")
    loaded = keras.saving.load_model(tmp_path / "ae.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.encode(x[:5]), model.encode(x[:5]))
    with pytest.raises(ValueError, match="Expected `codes`"):
        model.decode(np.zeros((2, 3), np.float32))


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


def test_generator_snapshots_keep_the_same_noise_at_the_chosen_epochs():
    keras.utils.set_random_seed(0)
    x, _ = toy.ring_of_gaussians(512, seed=0)
    model = VectorGAN(hidden_units=(8,), seed=0)
    model.compile()
    snapshots = GeneratorSnapshots(epochs=(0, 1, 3), n=50, seed=4)
    model.fit(x, batch_size=128, epochs=3, verbose=0, callbacks=[snapshots])
    assert sorted(snapshots.snapshots) == [0, 1, 3]
    np.testing.assert_array_equal(snapshots.snapshots[3], model.generate(50, seed=4))
    assert not np.array_equal(snapshots.snapshots[0], snapshots.snapshots[3])
    with pytest.raises(ValueError, match="Expected non-negative `epochs`"):
        GeneratorSnapshots(epochs=(-1,))


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
