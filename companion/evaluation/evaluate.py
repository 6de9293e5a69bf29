"""What `python -m companion evaluate` measures for each kind of model (`recipes.Kind.evaluate`
calls the function of its kind).

* classifier: test accuracy;
* VAE: negative ELBO and the importance-weighted NLL bound (k samples) on the test set,
  binarized once with the evaluation seed, in nats per image; conditional VAEs also the
  conditional accuracy of their samples;
* GAN: classifier FID and KID between samples and test images, precision and recall,
  density and coverage, the share of samples the classifier reads with confidence >= 0.9,
  how many digits it reads in at least 3% of the samples and the largest share of one digit,
  the median distance from samples to their nearest training image; conditional GANs
  also the conditional accuracy of their samples;
* diffusion model: the GAN's sample metrics with 50 DDIM steps, and the sampling time and
  FID of 1,000 images at 10, 25, 50 and 250 steps (`evaluate_diffusion`), then the three
  families side by side (`companion.evaluation.families`);
* denoiser: PSNR and SSIM on test images with Gaussian noise (sigma = 0.5, clipped), beside
  the noisy input and a Gaussian and a median filter, each tuned on 2,000 validation
  images (the last training images, with their own noise), and the gain over the better.
"""

import numpy as np

from companion import data, validation
from companion.evaluation import denoising, metrics
from companion.models.classifier import feature_extractor

__all__ = [
    "DENOISING_SIGMA", "class_probabilities", "classifier_features", "evaluate_classifier", "evaluate_denoiser", "evaluate_gan",
    "evaluate_diffusion", "evaluate_vae", "predicted_labels", "sample_metrics", "timed_generate",
]

DENOISING_SIGMA = 0.5


def _predict(model, x, batch_size=1000):
    return np.concatenate(
        [np.asarray(model.predict(x[i : i + batch_size], verbose=0)) for i in range(0, len(x), batch_size)]
    )


def classifier_features(classifier, images):
    """The evaluation classifier's 128 features of images in [0, 1]."""
    images = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
    return _predict(feature_extractor(classifier), images)


def class_probabilities(classifier, images):
    """The evaluation classifier's probabilities of the ten digits for images in [0, 1]."""
    images = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
    logits = _predict(classifier, images).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def predicted_labels(classifier, images):
    """The evaluation classifier's digit for each image in [0, 1]."""
    images = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
    return np.argmax(_predict(classifier, images), axis=1)


def sample_metrics(real_features, fake_features):
    """The distances between two sets of the classifier's features that `evaluate_gan` and
    chapter 6 report: FID, precision and recall (k = 3), density and coverage (k = 5)."""
    precision, recall = metrics.precision_recall(real_features, fake_features, k=3)
    density, coverage = metrics.density_coverage(real_features, fake_features, k=5)
    return {"fid": metrics.frechet_distance(real_features, fake_features), "precision": precision, "recall": recall,
            "density": density, "coverage": coverage}


def _conditional_accuracy(model, classifier, n, seed):
    labels = np.arange(n) % 10
    samples = model.generate(n, labels=labels, seed=seed)
    return metrics.conditional_accuracy(predicted_labels(classifier, samples), labels)


def evaluate_classifier(model, x_test, y_test):
    """The test accuracy of a classifier on images in [0, 1]."""
    return {"test_accuracy": float(np.mean(predicted_labels(model, x_test) == y_test))}


def evaluate_vae(model, x_test, y_test=None, classifier=None, k=1000, seed=0, progress=True):
    """-ELBO and the k-sample bound on the test images binarized with `seed`; a conditional
    VAE's `y_test` labels condition it, and with the `classifier` its samples' conditional
    accuracy is measured too."""
    n = len(x_test)
    results = {"test_images": n}
    x_binary = data.binarize_static(x_test, seed=seed)
    labels = y_test if model.conditional else None
    results["negative_elbo"] = metrics.negative_elbo(model, x_binary, labels, seed=seed)
    results[f"iw_nll_k{k}"] = float(metrics.importance_weighted_nll(model, x_binary, labels, k=k, seed=seed, progress=progress).mean())
    if model.conditional and classifier is not None:
        results["conditional_accuracy"] = _conditional_accuracy(model, classifier, n, seed)
    return results


def evaluate_gan(model, x_test, x_train=None, classifier=None, seed=0, real_features=None, **generate_options):
    """The sample metrics of a GAN (see the module docstring): as many samples as test images,
    drawn by `model.generate(n, labels, seed, **generate_options)`. `real_features`: the
    classifier's features of `x_test`, if the caller has them (else computed)."""
    if classifier is None:
        raise ValueError("Evaluating a GAN needs the evaluation `classifier`. Received: classifier=None")
    n = len(x_test)
    results = {"test_images": n}
    labels = (np.arange(n) % 10) if model.conditional else None
    samples = model.generate(n, labels=labels, seed=seed, **generate_options)
    fake = classifier_features(classifier, samples)
    real = classifier_features(classifier, x_test) if real_features is None else real_features
    results.update(sample_metrics(real, fake))
    results["kid"], results["kid_std"] = metrics.kernel_distance(real, fake, seed=seed)
    probabilities = class_probabilities(classifier, samples)
    results["confident_share"] = metrics.confident_share(probabilities)
    # How the samples spread over the digits: a collapsed GAN draws few of them.
    shares = np.bincount(probabilities.argmax(axis=1), minlength=10) / n
    results["digits_read_3pct"] = int(np.sum(shares >= 0.03))
    results["largest_digit_share"] = float(shares.max())
    if x_train is not None:
        results["nn_distance_median"] = float(np.median(metrics.nearest_neighbour_distance(samples[:1000], x_train)))
    if model.conditional:  # the argmax of the probabilities computed above
        results["conditional_accuracy"] = metrics.conditional_accuracy(probabilities.argmax(axis=1), labels)
    return results


SAMPLING_STEPS = (10, 25, 50, 250)


def timed_generate(model, n, seed=0, **generate_options):
    """`model.generate(n, seed=seed, **generate_options)` and the seconds it took per 1,000 images."""
    import time

    start = time.perf_counter()
    samples = model.generate(n, seed=seed, **generate_options)
    return samples, (time.perf_counter() - start) * 1000 / n


def evaluate_diffusion(model, x_test, x_train=None, classifier=None, seed=0, steps=50, timed_images=1000, progress=True,
                       real_features=None):
    """A diffusion model's samples measured as a GAN's (`evaluate_gan`), drawn by DDIM in `steps`
    steps with the model's `eta`, and, at each number of DDIM steps in `SAMPLING_STEPS`, the seconds per 1,000 images
    of drawing `timed_images` images and their FID against the first `timed_images` test images
    (`fid_by_steps`: the curve of quality against sampling cost; the FID of fewer images is
    higher for the same model, so it is compared only along the curve). `timed_images=0`
    leaves out the timings and the curve."""
    if classifier is None:
        raise ValueError("Evaluating a diffusion model needs the evaluation `classifier`. Received: classifier=None")
    timed_images = min(validation.non_negative("timed_images", timed_images, integer=True), len(x_test))
    longest = max(steps, *SAMPLING_STEPS) if timed_images else steps
    if longest > model.timesteps:  # before any work: the curve's longest run would fail at the end
        raise ValueError(f"Expected a model of at least {longest} timesteps (steps={steps}, the curve's {SAMPLING_STEPS} "
                         f"unless timed_images=0). Received: a model of {model.timesteps} timesteps")
    results = evaluate_gan(model, x_test, x_train=x_train, classifier=classifier, seed=seed, real_features=real_features,
                           steps=steps, sampler="ddim", progress=progress)
    results.update(sampler="ddim", eta=model.eta, sampling_steps=steps, timed_images=timed_images)
    if not timed_images:
        return results
    real = classifier_features(classifier, x_test[:timed_images]) if real_features is None else real_features[:timed_images]
    model.generate(min(timed_images, 100), seed=seed, steps=2)  # warm-up: the first call compiles
    fids = {}
    for count in _progress(SAMPLING_STEPS, progress, "DDIM steps"):
        samples, seconds = timed_generate(model, timed_images, seed=seed, steps=count, sampler="ddim")
        results[f"seconds_per_1000_images_{count}_steps"] = round(seconds, 3)
        fids[str(count)] = round(metrics.frechet_distance(real, classifier_features(classifier, samples)), 6)
    results["fid_by_steps"] = fids
    return results


def _progress(items, progress, description):
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=description)


def evaluate_denoiser(model, x_test, x_train, seed=0):
    """PSNR and SSIM of the denoised test images at sigma 0.5, beside the tuned filters."""
    if x_train is None:
        raise ValueError("Evaluating a denoiser tunes its baselines on training images. Received: x_train=None")
    results = {"test_images": len(x_test)}
    validation = x_train[-2000:]
    best = denoising.tune_filters(validation, denoising.add_noise(validation, DENOISING_SIGMA, seed=seed + 1))
    noisy = denoising.add_noise(x_test, DENOISING_SIGMA, seed=seed)
    denoised = model.denoise(noisy)
    results.update(
        sigma=DENOISING_SIGMA,
        noisy_psnr=metrics.psnr(x_test, noisy),
        psnr=metrics.psnr(x_test, denoised),
        ssim=metrics.ssim(x_test, denoised),
    )
    for name, (_, parameter) in best.items():
        filtered = denoising.apply_filter(name, noisy, parameter)
        results[f"{name}_filter_parameter"] = parameter
        results[f"{name}_filter_psnr"] = metrics.psnr(x_test, filtered)
        results[f"{name}_filter_ssim"] = metrics.ssim(x_test, filtered)
    results["best_filter_psnr"] = max(results[f"{name}_filter_psnr"] for name in best)
    results["psnr_gain_db"] = results["psnr"] - results["best_filter_psnr"]
    return results
