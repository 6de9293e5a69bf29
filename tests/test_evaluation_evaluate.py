"""Tests of companion.evaluation.evaluate: what `python -m companion evaluate` measures for each kind of model."""

import keras
import numpy as np
import pytest

from companion import evaluation
from companion.evaluation import metrics
from companion.models import Denoiser


@pytest.fixture(scope="module")
def features():
    """Random Gaussian features: 300 "real" and 250 "generated" ones, narrower and shifted."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((300, 16)), 0.8 * rng.standard_normal((250, 16)) + 0.3


def test_sample_metrics_are_the_separate_metrics_in_a_fixed_order(features):
    real, fake = features
    scores = evaluation.sample_metrics(real, fake)
    assert list(scores) == ["fid", "precision", "recall", "density", "coverage"]
    precision, recall = metrics.precision_recall(real, fake, k=3)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    assert scores == {"fid": metrics.frechet_distance(real, fake), "precision": precision, "recall": recall,
                      "density": density, "coverage": coverage}
    # The k of each is the one documented: another k gives other figures on these features.
    assert (scores["precision"], scores["recall"]) != metrics.precision_recall(real, fake, k=5)
    assert (scores["density"], scores["coverage"]) != metrics.density_coverage(real, fake, k=3)
    assert scores["fid"] > 1.0  # a shift of 0.3 in 16 dimensions alone is 16 * 0.09 = 1.44


def test_sample_metrics_of_one_set_against_itself(features):
    real, _ = features
    scores = evaluation.sample_metrics(real, real)
    # FID = |mu - mu|^2 + tr(S + S - 2 sqrtm(S S)); sqrtm(S S) is S up to rounding, so what is
    # left is float64 rounding of sums of about tr(S) ~ 16: far below 1e-8 of the trace.
    assert abs(scores["fid"]) < 1e-8 * np.trace(np.cov(real, rowvar=False))
    # Every point lies in its own ball (distance 0 < a radius that is positive for distinct
    # points), so every sample is realistic and every real point covered.
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0


def test_evaluate_denoiser_reports_the_gain_over_the_better_filter(clean, mnist):
    keras.utils.set_random_seed(0)
    model = Denoiser(filters=(4, 8), seed=0)
    results = evaluation.evaluate_denoiser(model, clean[:50], clean)
    assert results["best_filter_psnr"] == max(results["gaussian_filter_psnr"], results["median_filter_psnr"])
    assert results["psnr_gain_db"] == pytest.approx(results["psnr"] - results["best_filter_psnr"])
    assert results["sigma"] == evaluation.DENOISING_SIGMA == 0.5
    with pytest.raises(ValueError, match="Received: x_train=None"):
        evaluation.evaluate_denoiser(model, clean[:50], None)
