"""Metrics of the book: likelihood bounds for VAEs, sample quality for every generator.

Likelihood (VAEs, nats per image, lower is better):

* `negative_elbo`: the mean of -ELBO over images, one sample of z per image;
* `importance_weighted_nll`: -log of the importance-weighted estimate of p(x) with k
  samples (Burda et al., 2015). Its expectation is an upper bound on -log p(x) that
  tightens as k grows; k = 1 is the ELBO.

Samples, in the feature space of the book's MNIST classifier:

* `frechet_distance` (the "classifier FID") and `kernel_distance` (KID);
* `precision_recall` with k-nearest-neighbour manifolds (Kynkäänniemi et al., 2019);
* `density_coverage` (Naeem et al., 2020): how many real neighbourhoods each sample falls
  in, and how many real neighbourhoods hold a sample. Unlike precision, which one outlier
  real image with a wide ball can make 1.00 for blank or collapsed samples, density
  counts balls, so a few wide ones barely move it, and coverage falls when samples gather
  in one place;
* `confident_share`: the share of samples the classifier reads with confidence >= 0.9;
* `conditional_accuracy`: how often the classifier agrees with the requested label;
* `nearest_neighbour_distance`: from each sample to the closest training image, a check
  for memorization;
* `period_two_share`: the share of an image's variance in a pattern that repeats every
  two pixels, the checkerboard artefact of strided transposed convolutions.

Reconstructions and denoising: `psnr` and `ssim` (scikit-image).
"""

import warnings

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from companion import validation

__all__ = [
    "active_units",
    "conditional_accuracy",
    "confident_share",
    "density_coverage",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "importance_weighted_nll",
    "kernel_distance",
    "mean_gradient",
    "kl_per_dimension",
    "negative_elbo",
    "nearest_neighbour_distance",
    "period_two_share",
    "precision_recall",
    "psnr",
    "ssim",
]

LOG_2PI = np.log(2.0 * np.pi)


def _features(name, x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"Expected `{name}` of shape (n, d) with n >= 2. Received: {name}.shape={x.shape}")
    return x


# ----------------------------------------------------------------------------- likelihood


def negative_elbo(vae, x, labels=None, seed=0):
    """Mean negative ELBO per image, in nats, with one posterior sample per image."""
    return float(-np.mean(vae.elbo_terms(x, labels, seed=seed)["elbo"]))


def kl_per_dimension(vae, x, labels=None):
    """The KL of q(z | x) from the prior in each latent dimension, averaged over the images
    `(latent_dim,)`, in nats. Its sum is the ELBO's KL term; a dimension near 0 carries
    nothing about the image: the posterior has collapsed onto the prior there."""
    from keras import ops

    from companion.models.vae import gaussian_kl_per_dimension  # the formula the loss uses

    mean, logvar = vae.encode(x, labels)
    per_image = ops.convert_to_numpy(gaussian_kl_per_dimension(ops.convert_to_tensor(mean), ops.convert_to_tensor(logvar)))
    return np.mean(per_image.astype(np.float64), axis=0)


def active_units(vae, x, labels=None, threshold=0.01):
    """How many latent dimensions the encoder uses (Burda et al. 2016): a dimension is
    active when the posterior mean E_q[z_j | x] varies over the images with variance above
    `threshold`. Returns `(count, variances)`, the variances `(latent_dim,)`."""
    validation.number("threshold", threshold, low=0, low_open=True)
    mean, _ = vae.encode(x, labels)
    variances = np.var(np.asarray(mean, np.float64), axis=0)
    return int(np.sum(variances > threshold)), variances


def importance_weighted_nll(vae, x, labels=None, k=1000, seed=0, batch_size=None, progress=False, decode_batch_size=4096):
    """-log p(x) estimated with `k` importance samples from q(z | x), per image, in nats.

    log p(x) ~ log (1/k) sum_j p(x | z_j) p(z_j) / q(z_j | x),  z_j ~ q(z | x).

    Work is done in chunks of images x samples so that memory stays bounded: about
    `batch_size * 784` floats of logits at a time (default: 65,536 decoded images), each
    chunk decoded `decode_batch_size` latents at a time (a convolutional decoder's
    activations for 65,536 images at once would take tens of GB).

    Returns:
        An array `(n,)` of estimates; its mean is the figure to report.
    """
    x, labels = vae._inputs(x, labels)
    k = validation.positive_int("k", k)
    decode_batch_size = validation.positive_int("decode_batch_size", decode_batch_size)
    budget = batch_size or 65536
    images_per_chunk = max(1, min(len(x), budget // k))
    samples_per_chunk = max(1, min(k, budget // images_per_chunk))
    rng = np.random.default_rng(validation.seed("seed", seed))
    out = np.empty(len(x))
    chunks = [slice(start, start + images_per_chunk) for start in range(0, len(x), images_per_chunk)]
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"IW bound, k={k}", unit="chunk")
    for part in chunks:
        xb = x[part]
        yb = None if labels is None else labels[part]
        mean, logvar = vae.encode(xb, yb)
        n, d = mean.shape
        log_weights = []
        for start in range(0, k, samples_per_chunk):
            m = min(samples_per_chunk, k - start)
            eps = rng.standard_normal((n, m, d)).astype(np.float32)
            z = mean[:, None] + np.exp(0.5 * logvar)[:, None] * eps
            flat_z = z.reshape(n * m, d)
            flat_y = None if yb is None else np.repeat(yb, m)
            x_rep = np.repeat(xb, m, axis=0)
            log_px_z = vae.log_likelihood(x_rep, flat_z, flat_y, batch_size=min(n * m, decode_batch_size)).reshape(n, m).astype(np.float64)
            log_pz = -0.5 * np.sum(z.astype(np.float64) ** 2 + LOG_2PI, axis=-1)
            log_qz = -0.5 * np.sum(eps.astype(np.float64) ** 2 + LOG_2PI + logvar[:, None], axis=-1)
            log_weights.append(log_px_z + log_pz - log_qz)
        out[part] = -(logsumexp(np.concatenate(log_weights, axis=1), axis=1) - np.log(k))
    return out


# ----------------------------------------------------------------------------- distributions of features


def frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) between Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(
            f"Expected means of one shape (d,) and covariances (d, d). Received: mu1 {mu1.shape}, "
            f"mu2 {mu2.shape}, sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )
    # ReLU features that are zero for every image make the covariances singular; sqrtm then
    # warns but still returns the root of the non-singular part, which is what we want.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():  # near-singular product: regularize, as the FID reference code does
            offset = np.eye(len(mu1)) * 1e-6
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(distance, 0.0))


def frechet_distance(features_a, features_b):
    """The Fréchet distance between Gaussians fitted to two sets of features `(n, d)`."""
    a, b = _features("features_a", features_a), _features("features_b", features_b)
    return frechet_distance_from_statistics(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _polynomial_kernel(a, b):
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kernel_distance(features_a, features_b, subsets=10, subset_size=1000, seed=0):
    """KID: the unbiased squared MMD with kernel (x.y / d + 1)^3, averaged over subsets.

    Returns:
        `(mean, standard deviation)` over the `subsets` random subsets.
    """
    a, b = _features("features_a", features_a), _features("features_b", features_b)
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(validation.seed("seed", seed))
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
        off_diagonal = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))
        values.append(off_diagonal(kxx) + off_diagonal(kyy) - 2.0 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def _pairwise_distances(a, b, batch_size=2048):
    """Euclidean distances `(len(a), len(b))`, computed in row blocks."""
    b_sq = np.sum(b**2, axis=1)
    rows = []
    for start in range(0, len(a), batch_size):
        block = a[start : start + batch_size]
        squared = np.sum(block**2, axis=1)[:, None] + b_sq[None] - 2.0 * block @ b.T
        rows.append(np.sqrt(np.maximum(squared, 0.0)))
    return np.concatenate(rows)


def _knn_radii(x, k):
    distances = _pairwise_distances(x, x)
    return np.partition(distances, k, axis=1)[:, k]  # the (k+1)-th smallest: the point itself is the first


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall (Kynkäänniemi et al., 2019).

    Each set's manifold is the union of balls around its points, each reaching the
    point's k-th nearest neighbour within the set. Precision is the fraction of fake
    points inside the real manifold (are samples realistic?); recall the fraction of
    real points inside the fake manifold (is the data covered?).
    """
    real, fake = _features("real_features", real_features), _features("fake_features", fake_features)
    if not 1 <= k < min(len(real), len(fake)):
        raise ValueError(f"Expected `k` in [1, {min(len(real), len(fake)) - 1}]. Received: k={k}")
    real_radii, fake_radii = _knn_radii(real, k), _knn_radii(fake, k)
    precision = np.mean(np.any(_pairwise_distances(fake, real) <= real_radii[None], axis=1))
    recall = np.mean(np.any(_pairwise_distances(real, fake) <= fake_radii[None], axis=1))
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, k=5):
    """Density and coverage (Naeem et al., 2020), with each real point's ball reaching its
    k-th nearest real neighbour (k = 5, the authors' default).

    density = 1/(k M) sum_j #{i : fake_j in B(real_i)}: about 1 for samples distributed as
    the data, above 1 where they crowd into dense regions; coverage = the fraction of
    real balls that hold at least one sample. Points on a ball's surface count as
    outside, as in the authors' `prdc`.
    """
    real, fake = _features("real_features", real_features), _features("fake_features", fake_features)
    if not 1 <= k < len(real):
        raise ValueError(f"Expected `k` in [1, {len(real) - 1}]. Received: k={k}")
    radii = _knn_radii(real, k)
    inside = _pairwise_distances(real, fake) < radii[:, None]  # (real, fake)
    return float(inside.sum(axis=0).mean() / k), float(inside.any(axis=1).mean())


def confident_share(probabilities, threshold=0.9):
    """The fraction of samples whose most likely class has probability >= `threshold`."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2:
        raise ValueError(f"Expected `probabilities` of shape (n, classes). Received: shape={probabilities.shape}")
    return float(np.mean(probabilities.max(axis=1) >= threshold))


def conditional_accuracy(predicted_labels, requested_labels):
    """The fraction of samples the classifier assigns to the label they were drawn for."""
    predicted, requested = np.asarray(predicted_labels), np.asarray(requested_labels)
    if predicted.shape != requested.shape or predicted.ndim != 1:
        raise ValueError(
            f"Expected `predicted_labels` and `requested_labels` of one shape (n,). "
            f"Received: {predicted.shape} and {requested.shape}"
        )
    return float(np.mean(predicted == requested))


def nearest_neighbour_distance(samples, training_images):
    """Euclidean distance (pixels in [0, 1]) from each sample to its closest training image."""
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    training_images = np.asarray(training_images, dtype=np.float64).reshape(len(training_images), -1)
    best = np.full(len(samples), np.inf)
    for start in range(0, len(training_images), 10000):
        block = training_images[start : start + 10000]
        best = np.minimum(best, _pairwise_distances(samples, block).min(axis=1))
    return best


# ----------------------------------------------------------------------------- images


def _image_pairs(reference, estimate):
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if len(reference) != len(estimate) or reference[0].size != 784 or estimate[0].size != 784:
        raise ValueError(
            "Expected `reference` and `estimate` to hold as many 28x28 images each (shape (n, 28, 28), "
            f"(n, 28, 28, 1) or (n, 784)). Received: {reference.shape} and {estimate.shape}"
        )
    return reference.reshape(len(reference), 28, 28), estimate.reshape(len(estimate), 28, 28)


def psnr(reference, estimate, data_range=1.0):
    """Mean peak signal-to-noise ratio in dB over a batch of images."""
    from skimage.metrics import peak_signal_noise_ratio

    reference, estimate = _image_pairs(reference, estimate)
    return float(np.mean([peak_signal_noise_ratio(r, e, data_range=data_range) for r, e in zip(reference, estimate)]))


def ssim(reference, estimate, data_range=1.0):
    """Mean structural similarity over a batch of images."""
    from skimage.metrics import structural_similarity

    reference, estimate = _image_pairs(reference, estimate)
    return float(np.mean([structural_similarity(r, e, data_range=data_range) for r, e in zip(reference, estimate)]))


def period_two_share(images):
    """For each image, the share of its variance (about its mean) in the pattern that
    repeats every two pixels in both directions: the four means over the pixels of each
    parity (row even or odd, column even or odd), less the image's mean. 1 for a pure
    checkerboard, 0 for an image whose four parity classes have the same mean; a smooth
    image puts little there. In Fourier terms, the power at the frequencies (0, N/2),
    (N/2, 0) and (N/2, N/2) over all but the constant term. Even heights and widths only.

    Returns: `(n,)` float64 (0 for a constant image).
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1] % 2 or x.shape[2] % 2:
        raise ValueError(f"Expected images of shape (n, h, w) or (n, h, w, 1), h and w even. Received: shape={np.shape(images)}")
    centred = x - x.mean(axis=(1, 2), keepdims=True)
    n, h, w = x.shape
    phases = centred.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # (n, 2, 2): each parity's mean
    periodic = np.sum(phases**2, axis=(1, 2)) * (h * w / 4)
    total = np.sum(centred**2, axis=(1, 2))
    return np.divide(periodic, total, out=np.zeros(n), where=total > 0)


def mean_gradient(images):
    """Sharpness: the mean absolute difference between neighbouring pixels, down the rows plus
    across the columns, over a batch of images in [0, 1]. Blur lowers it; a binary image's
    edges and speckle raise it. Chapter 11 compares it between samples and real images.

    Returns: a float, 0 for constant images and at most 2.
    """
    x = validation.images("images", images).reshape(-1, validation.IMAGE_SIZE, validation.IMAGE_SIZE).astype(np.float64)
    return float(np.mean(np.abs(np.diff(x, axis=1))) + np.mean(np.abs(np.diff(x, axis=2))))
