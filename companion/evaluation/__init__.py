"""Measuring models: the metrics, what `python -m companion evaluate` reports, and the
yardsticks a measurement is set beside.

* `companion.evaluation.metrics`: likelihood bounds, FID, KID, precision and recall,
  density and coverage, PSNR, SSIM and the other measures, as functions of arrays;
* `companion.evaluation.evaluate`: the evaluation classifier's features, probabilities and
  labels, and the measurements of each kind of model (`evaluate_vae`, `evaluate_gan`, ...);
  its names are importable from `companion.evaluation` itself;
* `companion.evaluation.denoising`: Gaussian noise and the tuned classical filters the
  denoiser is measured against;
* `companion.evaluation.published`: published MNIST likelihoods with the protocol of each.
"""

from companion.evaluation.evaluate import (
    DENOISING_SIGMA,
    class_probabilities,
    classifier_features,
    evaluate_classifier,
    evaluate_denoiser,
    evaluate_gan,
    evaluate_vae,
    predicted_labels,
    sample_metrics,
)

__all__ = [
    "DENOISING_SIGMA", "class_probabilities", "classifier_features", "evaluate_classifier", "evaluate_denoiser", "evaluate_gan",
    "evaluate_vae", "predicted_labels", "sample_metrics",
]
