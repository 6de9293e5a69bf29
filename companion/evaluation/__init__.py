"""Measuring models: the metrics, what `python -m companion evaluate` reports, and the
yardsticks a measurement is set beside.

* `companion.evaluation.metrics`: likelihood bounds, FID, KID, precision and recall,
  density and coverage, PSNR, SSIM and the other measures, as functions of arrays;
* `companion.evaluation.evaluate`: the evaluation classifier's features, probabilities and
  labels, and the measurements of each kind of model (`evaluate_vae`, `evaluate_gan`, ...);
  its names are importable from `companion.evaluation` itself (on first use, so that the
  other modules import without Keras);
* `companion.evaluation.denoising`: Gaussian noise and the tuned classical filters the
  denoiser is measured against;
* `companion.evaluation.families`: the diffusion model beside the best VAE and the best
  unconditional GAN, measured in one run;
* `companion.evaluation.published`: published MNIST likelihoods with the protocol of each.
"""

__all__ = [
    "DENOISING_SIGMA", "class_probabilities", "classifier_features", "evaluate_classifier", "evaluate_denoiser", "evaluate_gan",
    "evaluate_diffusion", "evaluate_vae", "predicted_labels", "sample_metrics", "timed_generate",
]


def __getattr__(name):
    # `evaluate` imports the classifier, and with it Keras and the backend; importing it on first
    # use keeps `from companion.evaluation import published` (or `metrics`) free of both.
    if name in __all__:
        from companion.evaluation import evaluate

        return getattr(evaluate, name)
    raise AttributeError(f"module 'companion.evaluation' has no attribute {name!r}")
