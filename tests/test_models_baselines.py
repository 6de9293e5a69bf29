"""Tests of companion.models.baselines against likelihoods computed by hand."""

import numpy as np
import pytest

from companion.models.baselines import BernoulliMixture, BernoulliPixels


def test_bernoulli_pixels_fit_is_the_smoothed_frequency():
    x = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]], np.float32)
    model = BernoulliPixels(smoothing=1.0).fit(x)
    np.testing.assert_allclose(model.probs, [5 / 6, 2 / 6, 2 / 6])


def test_bernoulli_pixels_log_prob_by_hand():
    x = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]], np.float32)
    model = BernoulliPixels(smoothing=1.0).fit(x)
    expected = np.log(5 / 6) + np.log(1 - 2 / 6) + np.log(2 / 6)
    np.testing.assert_allclose(model.log_prob(np.array([[1, 0, 1]]))[0], expected, rtol=1e-12)


def test_fair_coin_scores_d_log_2():
    # p_i = 1/2 everywhere (balanced data): every image of D pixels has log p = -D ln 2.
    x = np.array([[0, 1, 0, 1], [1, 0, 1, 0]], np.float32)
    model = BernoulliPixels(smoothing=1.0).fit(x)
    np.testing.assert_allclose(model.log_prob(x), -4 * np.log(2), rtol=1e-12)


def test_bernoulli_pixels_probabilities_sum_to_one():
    # Over all 2^4 binary images of 4 pixels, the probabilities sum to 1.
    rng = np.random.default_rng(0)
    model = BernoulliPixels(smoothing=0.5).fit((rng.random((50, 2, 2)) < 0.3).astype(np.float32))
    every_image = ((np.arange(16)[:, None] >> np.arange(4)) & 1).reshape(16, 2, 2)
    np.testing.assert_allclose(np.exp(model.log_prob(every_image)).sum(), 1.0, rtol=1e-12)


def test_bernoulli_pixels_sample_frequencies_match_probabilities():
    model = BernoulliPixels(smoothing=1.0).fit(np.array([[1, 0], [1, 0], [0, 0], [1, 1]], np.float32))
    samples = model.sample(20000, seed=0)
    assert samples.shape == (20000, 2)
    # Standard error of a frequency from 20,000 draws is at most 0.5/sqrt(20000) = 0.0035.
    np.testing.assert_allclose(samples.mean(0), model.probs, atol=5 * 0.0036)
    np.testing.assert_array_equal(model.sample(5, seed=3), model.sample(5, seed=3))


def test_bernoulli_mixture_log_prob_by_hand():
    x = np.array([[1, 1], [1, 0], [0, 0]], np.float32)
    y = np.array([0, 0, 1])
    model = BernoulliMixture(smoothing=1.0).fit(x, y)
    p0 = np.array([3 / 4, 2 / 4])  # class 0: two images
    p1 = np.array([1 / 3, 1 / 3])  # class 1: one image
    point = np.array([1, 0])
    like0 = np.prod(np.where(point, p0, 1 - p0))
    like1 = np.prod(np.where(point, p1, 1 - p1))
    expected = np.log(2 / 3 * like0 + 1 / 3 * like1)
    np.testing.assert_allclose(model.log_prob(point[None])[0], expected, rtol=1e-12)


def test_bernoulli_mixture_samples_requested_labels():
    x = np.array([[1, 1, 1], [0, 0, 0]], np.float32)
    model = BernoulliMixture(smoothing=1e-9).fit(x, np.array([3, 7]))
    samples = model.sample(4, seed=0, labels=np.array([3, 7, 3, 7]))
    np.testing.assert_array_equal(samples, [[1, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match=r"unknown values \[5\]"):
        model.sample(2, labels=np.array([3, 5]))


def test_baselines_reject_bad_input():
    with pytest.raises(ValueError, match=r"Expected binary `x`.*Received values in \[0, 255\]"):
        BernoulliPixels().fit(np.array([[0, 255]]))
    with pytest.raises(RuntimeError, match=r"not fitted"):
        BernoulliPixels().log_prob(np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"Received: smoothing=0"):
        BernoulliPixels(smoothing=0)
    model = BernoulliPixels().fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"images of 4 pixels"):
        model.log_prob(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"Received: y.shape=\(1,\)"):
        BernoulliMixture().fit(np.zeros((2, 4)), np.zeros(1))
