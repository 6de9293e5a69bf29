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


def test_evaluate_diffusion_measures_ddim_samples_and_times_each_step_count(clean, monkeypatch):
    """The sample metrics are evaluate_gan's on DDIM samples of the asked step count, and the
    timings come from one draw per step count, longer for more steps."""
    from companion import weights
    from companion.models import Diffusion

    keras.utils.set_random_seed(0)
    model = Diffusion(timesteps=250, filters=(8, 8, 8), embedding_dim=16, groups=4, seed=0)
    calls = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda n, **kw: calls.append((n, kw)) or generate(n, **kw))
    results = evaluation.evaluate_diffusion(model, clean[:40], classifier=weights.load("classifier"), seed=0, steps=5,
                                            timed_images=60, progress=False)
    assert calls[0] == (40, {"labels": None, "seed": 0, "steps": 5, "sampler": "ddim", "progress": False})
    assert [kw["steps"] for n, kw in calls[2:]] == list(evaluation.evaluate.SAMPLING_STEPS)
    assert results["timed_images"] == 40 and {n for n, kw in calls[1:]} == {40}, "at most the 40 test images are timed"
    assert (results["sampler"], results["eta"], results["sampling_steps"], results["test_images"]) == ("ddim", 0.0, 5, 40)
    assert {"fid", "precision", "recall", "density", "coverage", "kid"} <= results.keys()
    seconds = [results[f"seconds_per_1000_images_{s}_steps"] for s in evaluation.evaluate.SAMPLING_STEPS]
    assert all(s > 0 for s in seconds) and seconds[-1] > seconds[0], "250 steps take longer than 10"
    fids = results["fid_by_steps"]
    assert list(fids) == [str(s) for s in evaluation.evaluate.SAMPLING_STEPS] and all(f > 0 for f in fids.values())
    assert len(set(fids.values())) > 1, "each step count draws other samples"
    with pytest.raises(ValueError, match="Received: classifier=None"):
        evaluation.evaluate_diffusion(model, clean[:40], classifier=None)


def test_evaluate_diffusion_uses_the_real_features_it_is_given(clean):
    """The caller's features of the test images replace the ones evaluate_diffusion would compute
    (`evaluate diffusion` computes them once for it and for the families' table)."""
    from companion import weights
    from companion.models import Diffusion

    classifier = weights.load("classifier")
    model = Diffusion(timesteps=50, filters=(8, 8, 8), embedding_dim=16, groups=4, seed=0)
    options = {"classifier": classifier, "seed": 0, "steps": 3, "timed_images": 0, "progress": False}
    real = evaluation.classifier_features(classifier, clean[:40])
    computed = evaluation.evaluate_diffusion(model, clean[:40], **options)
    given = evaluation.evaluate_diffusion(model, clean[:40], real_features=real, **options)
    assert given["fid"] == pytest.approx(computed["fid"], rel=1e-9)
    # Shifting the real features by c in each of D dimensions leaves their covariance and moves
    # |mu_real - mu_fake|^2 by 2 c sum(mu_real - mu_fake) + c^2 D: the shifts +1 and -1 together
    # move FID by exactly 2 D, which only the given features can do.
    up = evaluation.evaluate_diffusion(model, clean[:40], real_features=real + 1.0, **options)["fid"]
    down = evaluation.evaluate_diffusion(model, clean[:40], real_features=real - 1.0, **options)["fid"]
    assert up + down - 2 * computed["fid"] == pytest.approx(2 * real.shape[1], rel=1e-6)


def test_evaluate_diffusion_refuses_a_model_too_short_for_the_curve_before_any_work(clean, monkeypatch):
    from companion import weights
    from companion.models import Diffusion

    model = Diffusion(timesteps=50, filters=(8, 8, 8), embedding_dim=16, groups=4, seed=0)
    monkeypatch.setattr(model, "generate", lambda *a, **kw: pytest.fail("no sample is drawn before the check"))
    with pytest.raises(ValueError, match="Expected a model of at least 250 timesteps .* Received: a model of 50 timesteps"):
        evaluation.evaluate_diffusion(model, clean[:40], classifier=weights.load("classifier"), steps=3, timed_images=10)
