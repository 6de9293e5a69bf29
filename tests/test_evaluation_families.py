"""Tests of companion.evaluation.families: each family's best model by FID, its row from the
measured samples and its card, and the diffusion model's row."""

import time

import numpy as np
import pytest

from companion import weights
from companion.evaluation import families


class Fake:
    """A model whose samples are test images with noise of a given size: more noise, worse FID."""

    conditional = False

    def __init__(self, images, noise, first_call_seconds=0.0):
        self.images, self.noise, self.first_call_seconds = images, noise, first_call_seconds

    def generate(self, n, labels=None, seed=None):
        if self.first_call_seconds:  # as a compiled model's first call
            time.sleep(self.first_call_seconds)
            self.first_call_seconds = 0.0
        rng = np.random.default_rng(seed)
        return np.clip(self.images[:n] + self.noise * rng.standard_normal(self.images[:n].shape), 0, 1).astype("float32")


def card_of(name):
    metrics = {"iw_nll_k100": 90.0, "iw_nll_k1000": 89.5, "negative_elbo": 95.0} if name.startswith("v") else {"fid": 1.0}
    return {"train_seconds": 600.0, "parameters": 1234, "metrics": metrics}


def test_each_family_is_represented_by_its_lowest_fid_and_the_diffusion_row_by_its_results(clean):
    x = clean[:100, ..., None]
    noise = {"v1": 0.6, "v2": 0.1, "g1": 0.05, "g2": 0.4}
    models = {name: Fake(clean[100:200, ..., None], size) for name, size in noise.items()}
    diffusion_results = {"fid": 3.0, "precision": 0.8, "recall": 0.7, "density": 0.9, "coverage": 0.85, "sampling_steps": 50,
                         "eta": 1.0, "seconds_per_1000_images_50_steps": 12.5, "test_images": 100, "timed_images": 40}
    table = families.compare_families(("diffusion", {"train_seconds": 3000.0, "parameters": 703713, "metrics": {}}, diffusion_results),
                                      x, weights.load("classifier"), load=models.__getitem__, card=card_of, vaes=("v1", "v2"),
                                      gans=("g1", "g2"))
    assert (table["VAE"]["model"], table["GAN"]["model"]) == ("v2", "g1"), "the least noisy samples have the lowest FID"
    assert table["VAE"]["fid"] == min(table["VAE"]["fid_of_each"].values()) < table["VAE"]["fid_of_each"]["v1"]
    assert table["VAE"]["likelihood_nats"] == 89.5 and "k1000" in table["VAE"]["likelihood"], "the bound with the most samples"
    assert table["GAN"]["likelihood_nats"] is None and table["GAN"]["seconds_per_1000_images"] > 0
    assert (table["VAE"]["train_minutes"], table["VAE"]["parameters"]) == (10.0, 1234)
    row = table["diffusion"]
    assert (row["fid"], row["seconds_per_1000_images"], row["train_minutes"], row["parameters"]) == (3.0, 12.5, 50.0, 703713)
    assert row["likelihood_nats"] is None and row["likelihood"] == families.DIFFUSION_LIKELIHOOD
    assert set(families.ROW_KEYS) <= row.keys() and row["sampling"] == "DDIM, 50 steps, eta 1"
    assert (table["VAE"]["timed_images"], table["GAN"]["timed_images"], row["timed_images"]) == (100, 100, 40)
    # Given the test images' features, it uses them: the same table.
    from companion.evaluation import evaluate

    real = evaluate.classifier_features(weights.load("classifier"), x)
    again = families.compare_families(("diffusion", {"train_seconds": 3000.0, "parameters": 703713, "metrics": {}}, diffusion_results),
                                      x, weights.load("classifier"), load=models.__getitem__, card=card_of, vaes=("v1", "v2"),
                                      gans=("g1", "g2"), real_features=real)
    assert again["VAE"]["fid_of_each"] == pytest.approx(table["VAE"]["fid_of_each"], rel=1e-9)


def test_the_comparison_needs_the_classifier(clean):
    with pytest.raises(ValueError, match="Received: classifier=None"):
        families.compare_families(("diffusion", {}, {}), clean[:10], None)


def test_the_diffusion_results_must_be_of_the_same_test_images(clean):
    results = {"fid": 3.0, "sampling_steps": 50, "test_images": 1000}
    with pytest.raises(ValueError, match="measured on the 100 test images given. Received: results of 1000 test images"):
        families.compare_families(("diffusion", {}, results), clean[:100, ..., None], weights.load("classifier"))


def test_a_models_first_call_is_not_timed(clean):
    """A compiled model's first call traces and compiles: 0.5 s here, 5 s per 1,000 of the 100 images if it were timed."""
    x = clean[:100, ..., None]
    models = {"v": Fake(clean[100:200, ..., None], 0.1, first_call_seconds=0.5), "g": Fake(clean[100:200, ..., None], 0.1)}
    results = {"fid": 3.0, "precision": 0.8, "recall": 0.7, "density": 0.9, "coverage": 0.85, "sampling_steps": 50,
               "test_images": 100}
    table = families.compare_families(("diffusion", {"parameters": 1}, results), x, weights.load("classifier"),
                                      load=models.__getitem__, card=card_of, vaes=("v",), gans=("g",))
    assert table["VAE"]["seconds_per_1000_images"] < 1.0
