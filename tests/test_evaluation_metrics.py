"""Tests of companion.evaluation.metrics against cases computable by hand."""

import keras
import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from companion import data
from companion.evaluation import metrics
from companion.models import MLPVAE, ConvVAE
from companion.models.vae import gaussian_kl


def test_frechet_distance_of_identical_sets_is_zero():
    features = np.random.default_rng(0).standard_normal((500, 8))
    # sqrtm(S S) = S up to rounding: the result is 0 to about 1e-12 of the trace.
    assert metrics.frechet_distance(features, features) < 1e-8 * np.trace(np.cov(features, rowvar=False))


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    closed_form = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    exact = metrics.frechet_distance_from_statistics(mu1, np.diag(var1), mu2, np.diag(var2))
    assert exact == pytest.approx(closed_form, rel=1e-9)

    rng = np.random.default_rng(1)
    n = 50000
    a = mu1 + np.sqrt(var1) * rng.standard_normal((n, 3))
    b = mu2 + np.sqrt(var2) * rng.standard_normal((n, 3))
    # Sample means and covariances err by about sigma / sqrt(n) ~ 0.01 per entry, so the
    # estimated distance (about 8.5) lies within a few hundredths of the closed form.
    assert metrics.frechet_distance(a, b) == pytest.approx(closed_form, abs=0.1)


def test_kernel_distance_matches_a_brute_force_computation():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)) + 0.5
    k = lambda u, v: (u @ v / 3 + 1) ** 3
    m = 5
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    mean, std = metrics.kernel_distance(x, y, subsets=3, subset_size=5)
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_kernel_distance_of_one_distribution_is_near_zero():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2000, 4)), rng.standard_normal((2000, 4))
    mean, std = metrics.kernel_distance(a, b, subsets=20, subset_size=500)
    shifted, _ = metrics.kernel_distance(a, b + 1.0, subsets=20, subset_size=500)
    assert abs(mean) < 3 * std + 1e-3  # the estimator is unbiased: 0 in expectation
    assert shifted > 10 * abs(mean)


def test_precision_and_recall_by_hand():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    # k = 1: each real ball reaches its nearest neighbour, radius 1.
    fake = np.array([[0.5], [10.0]])
    precision, recall = metrics.precision_recall(real, fake, k=1)
    assert precision == 0.5  # 0.5 lies in the real manifold, 10 does not
    assert recall == 1.0  # both fake balls have radius 9.5 and cover every real point
    assert metrics.precision_recall(real, real, k=1) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100.0, k=1) == (0.0, 0.0)
    with pytest.raises(ValueError, match=r"Received: k=4"):
        metrics.precision_recall(real, real, k=4)


def test_conditional_accuracy_and_nearest_neighbours():
    assert metrics.conditional_accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    with pytest.raises(ValueError, match=r"one shape"):
        metrics.conditional_accuracy([1, 2], [1, 2, 3])
    train = np.zeros((3, 28, 28))
    train[1] = 1.0
    samples = np.stack([train[1], np.full((28, 28), 0.5)])
    np.testing.assert_allclose(metrics.nearest_neighbour_distance(samples, train), [0.0, 0.5 * 28])


def test_psnr_and_ssim():
    reference = np.zeros((2, 28, 28))
    estimate = reference + 0.1  # MSE 0.01: PSNR = 10 log10(1 / 0.01) = 20 dB
    assert metrics.psnr(reference, estimate) == pytest.approx(20.0)
    images = np.random.default_rng(0).random((2, 28, 28))
    assert metrics.ssim(images, images) == pytest.approx(1.0)
    assert metrics.ssim(images, 1 - images) < 0.5


@pytest.fixture(scope="module")
def binary_test_images(mnist):
    return data.binarize_static(mnist[1][0][:60], seed=0)


def small_vae():
    keras.utils.set_random_seed(0)
    return MLPVAE(latent_dim=2, hidden_units=(8, 4), seed=0)


@pytest.mark.backend
def test_importance_weighted_bound_is_exact_when_q_is_the_posterior(binary_test_images):
    """With the encoder giving the prior and a decoder that ignores z, p(z | x) = q(z | x)
    and every importance weight equals p(x): the estimate is exact for any k."""
    model = small_vae()
    encoder_out = model.encoder.get_layer("mean_logvar")
    encoder_out.set_weights([np.zeros_like(w) for w in encoder_out.get_weights()])  # mean 0, log-variance 0
    decoder_out = model.decoder.get_layer("logits")
    kernel, bias = decoder_out.get_weights()
    decoder_out.set_weights([np.zeros_like(kernel), np.linspace(-2, 2, bias.size).astype(np.float32)])
    x = binary_test_images[:10].reshape(10, 784).astype(np.float64)
    logits = np.linspace(-2, 2, 784)
    exact = np.sum(np.logaddexp(0, logits) - x * logits, axis=1)
    for k in (1, 7):
        np.testing.assert_allclose(metrics.importance_weighted_nll(model, binary_test_images[:10], k=k), exact, rtol=1e-5)


@pytest.mark.backend
def test_importance_weighted_bound_tightens_with_k(binary_test_images):
    model = small_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(binary_test_images, batch_size=20, epochs=5, verbose=0)
    x = binary_test_images
    # With the same seed, k = 1 draws the same z as elbo_terms; the two then differ only
    # in the KL term, sampled (log q(z|x) - log p(z)) against closed form. The difference
    # has mean 0, so its average must lie within a few standard errors of 0.
    difference = metrics.importance_weighted_nll(model, x, k=1, seed=1) + model.elbo_terms(x, seed=1)["elbo"]
    assert abs(difference.mean()) < 4 * difference.std(ddof=1) / np.sqrt(len(difference))
    # The k-sample bound tightens in expectation: -L_1 >= -L_10 >= -L_100 >= -log p(x).
    nll = {k: metrics.importance_weighted_nll(model, x, k=k, seed=2, batch_size=256).mean() for k in (1, 10, 100)}
    assert nll[100] < nll[10] < nll[1]


@pytest.mark.backend
def test_importance_weighted_bound_does_not_depend_on_how_it_is_batched(binary_test_images):
    """Chunks of images x samples and the decoder's sub-batches change memory, not the figure."""
    model = small_vae()
    x = binary_test_images[:12]
    whole = metrics.importance_weighted_nll(model, x, k=20, seed=3)
    pieces = metrics.importance_weighted_nll(model, x, k=20, seed=3, batch_size=30, decode_batch_size=7)
    np.testing.assert_allclose(pieces, whole, rtol=1e-5)
    with pytest.raises(ValueError, match="decode_batch_size"):
        metrics.importance_weighted_nll(model, x, k=2, decode_batch_size=0)


@pytest.mark.backend
def test_kl_per_dimension_and_active_units_from_the_encoder(binary_images):
    x = binary_images[0][:32]
    keras.utils.set_random_seed(0)
    model = ConvVAE(latent_dim=4, filters=(4, 8), dense_units=16, seed=0)
    mean, logvar = (m.astype(np.float64) for m in model.encode(x))
    per_dimension = metrics.kl_per_dimension(model, x)
    assert per_dimension.shape == (model.latent_dim,) and (per_dimension >= 0).all()
    # Their sum is the KL term of the ELBO, which gaussian_kl computes on its own.
    total = keras.ops.convert_to_numpy(gaussian_kl(keras.ops.convert_to_tensor(mean), keras.ops.convert_to_tensor(logvar)))
    np.testing.assert_allclose(per_dimension.sum(), total.mean(), rtol=1e-5)
    count, variances = metrics.active_units(model, x, threshold=0.01)
    np.testing.assert_allclose(variances, mean.var(axis=0), rtol=1e-6)
    assert count == int(np.sum(mean.var(axis=0) > 0.01))
    # An encoder that ignores its input uses no dimension, and its KL is the prior's: zero.
    last = model.encoder.get_layer("mean_logvar")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    assert metrics.active_units(model, x)[0] == 0 and np.allclose(metrics.kl_per_dimension(model, x), 0.0)
    with pytest.raises(ValueError, match=r"threshold"):
        metrics.active_units(model, x, threshold=0)


def test_density_and_coverage_match_the_authors_prdc_on_random_features():
    import prdc  # the authors' package, a test dependency (pyproject's `test` extra)
    rng = np.random.default_rng(3)
    real, fake = rng.standard_normal((300, 10)), 0.8 * rng.standard_normal((250, 10)) + 0.3
    theirs = prdc.compute_prdc(real, fake, nearest_k=5)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    # Both count strict memberships "distance < radius"; distances here differ by float64 rounding
    # only (ours by the expansion |a|^2 + |b|^2 - 2ab, theirs directly), and continuous random
    # points lie nowhere near 1e-12 of a ball's surface, so the counts agree exactly.
    assert density == pytest.approx(theirs["density"], abs=1e-12)
    assert coverage == pytest.approx(theirs["coverage"], abs=1e-12)
    theirs = prdc.compute_prdc(real, fake, nearest_k=3)
    assert metrics.precision_recall(real, fake, k=3) == pytest.approx((theirs["precision"], theirs["recall"]), abs=1e-12)


def test_coverage_tells_real_images_from_one_repeated_image_and_from_blank_ones(mnist):
    from companion import evaluation, weights

    (x_train, _), (x_test, _) = mnist
    classifier = weights.load("classifier")
    features = lambda images: evaluation.classifier_features(classifier, data.scale(images))
    real = features(x_test[:1000])
    sets = {
        "real": features(x_train[:1000]),
        "repeated": features(np.repeat(x_train[:1], 1000, axis=0)),
        "blank": features(np.zeros((1000, 28, 28), np.uint8)),
    }
    scores = {name: metrics.density_coverage(real, fake) for name, fake in sets.items()}
    # One image repeated is realistic (precision 1.0 here: it lies in a real ball) but covers
    # a handful of the 1,000 real balls; held-out real images cover most of them.
    assert metrics.precision_recall(real, sets["repeated"])[0] == 1.0
    assert scores["real"][1] > 0.8 > 0.05 > max(scores["repeated"][1], scores["blank"][1]), scores
    # Real images against real ones: density near 1 (Naeem et al.: its expectation is 1 for
    # samples from the data's distribution; 1,000 points leave it within tens of percent).
    assert 0.5 < scores["real"][0] < 1.5, scores
    with pytest.raises(ValueError, match=r"Expected `k` in \[1, 999\]. Received: k=1000"):
        metrics.density_coverage(real, real, k=1000)


def test_confident_share_counts_samples_at_or_above_the_threshold():
    probabilities = np.array([[0.9, 0.1], [0.5, 0.5], [0.05, 0.95], [0.89, 0.11]])
    assert metrics.confident_share(probabilities) == 0.5
    assert metrics.confident_share(probabilities, threshold=0.5) == 1.0
    with pytest.raises(ValueError, match=r"Expected `probabilities` of shape \(n, classes\). Received: shape=\(4,\)"):
        metrics.confident_share(probabilities[:, 0])


def test_period_two_share_against_the_fourier_power_at_the_highest_frequencies():
    rng = np.random.default_rng(0)
    i, j = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    checkerboard = ((i + j) % 2).astype(float)
    smooth = np.exp(-((i - 14.0) ** 2 + (j - 12.0) ** 2) / 40.0)
    noise = rng.random((3, 28, 28))
    images = np.concatenate([checkerboard[None], smooth[None], noise, np.ones((1, 28, 28))])
    share = metrics.period_two_share(images[..., None])
    power = np.abs(np.fft.fft2(images - images.mean(axis=(1, 2), keepdims=True))) ** 2
    total = power.sum(axis=(1, 2))
    expected = np.divide(power[:, 0, 14] + power[:, 14, 0] + power[:, 14, 14], total, out=np.zeros(len(images)), where=total > 0)
    np.testing.assert_allclose(share, expected, atol=1e-12)
    assert share[0] == pytest.approx(1.0) and share[1] < 1e-3 and share[-1] == 0.0
    # White noise spreads its variance evenly over the 784 - 1 frequencies: 3 of them here.
    assert np.all(np.abs(share[2:5] - 3 / 783) < 0.01)
    with pytest.raises(ValueError, match=r"h and w even. Received: shape=\(2, 27, 28\)"):
        metrics.period_two_share(np.zeros((2, 27, 28)))


# ----------------------------------------------------------------------------- sharpness


def _edges():
    """A vertical edge (left half 0, right half 1) and the same edge turned a quarter."""
    vertical = np.zeros((1, 28, 28))
    vertical[:, :, 14:] = 1.0
    return vertical, vertical.transpose(0, 2, 1).copy()


def test_mean_gradient_of_constant_images_is_zero():
    for value in (0.0, 0.3, 1.0):
        assert metrics.mean_gradient(np.full((3, 28, 28), value)) == 0.0


def test_mean_gradient_of_an_edge_is_one_step_over_the_27_differences_of_a_row():
    """Each of the 28 rows crosses the edge once, a step of 1 among its 27 differences across the
    columns; down the columns nothing changes. The mean is 28 / (28 * 27) = 1/27, whichever way
    the edge runs. The 0/1 pixels, their differences and the sum (28) are exact in floating
    point, so the mean is 1/27 rounded once: equal, not only close."""
    vertical, horizontal = _edges()
    assert metrics.mean_gradient(vertical) == 1 / 27
    assert metrics.mean_gradient(horizontal) == 1 / 27
    # The channel axis and flat vectors are read as the same image.
    assert metrics.mean_gradient(vertical[..., None]) == metrics.mean_gradient(vertical.reshape(1, 784)) == 1 / 27
    # A batch is averaged over all its differences: beside a blank image the edge counts half.
    assert metrics.mean_gradient(np.concatenate([vertical, np.zeros((1, 28, 28))])) == pytest.approx(1 / 54, rel=1e-12)


def test_mean_gradient_of_a_checkerboard_is_two():
    i, j = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    checkerboard = ((i + j) % 2).astype(float)[None]
    # Every neighbouring pair differs by 1, down the rows and across the columns: 1 + 1.
    assert metrics.mean_gradient(checkerboard) == 2.0
    assert metrics.mean_gradient(1.0 - checkerboard) == 2.0


def test_blurring_lowers_the_mean_gradient(mnist):
    digits = mnist[1][0][:50] / 255.0
    # A 3x3 box blur of each image alone; its running sums leave rounding errors of ~1e-16
    # below 0, which the clip removes.
    blurred = np.clip(uniform_filter(digits, size=(1, 3, 3)), 0.0, 1.0)
    sharp, soft = metrics.mean_gradient(digits), metrics.mean_gradient(blurred)
    assert 0 < soft < sharp


def test_mean_gradient_refuses_values_outside_the_unit_interval_and_other_shapes():
    vertical, _ = _edges()
    with pytest.raises(ValueError, match=r"`images` with values in \[0, 1\]. Received values in \[0, 255\]"):
        metrics.mean_gradient(vertical * 255)
    with pytest.raises(ValueError, match=r"Received values in \[-1, 1\]"):
        metrics.mean_gradient(vertical * 2 - 1)
    with pytest.raises(ValueError, match=r"batch of 28x28 images.*Received: images.shape=\(2, 27, 28\)"):
        metrics.mean_gradient(np.zeros((2, 27, 28)))
    with pytest.raises(ValueError, match=r"Received: images.shape=\(28, 28\)"):
        metrics.mean_gradient(vertical[0])  # one image without its batch axis
