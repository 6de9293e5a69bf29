"""Tests of the data-augmentation experiment (chapter 7) and the FAQ chapter's helpers:
the time-series VAE and its data, dropout in the MLP VAE, and the ELBO-gap callback."""

import keras
import numpy as np
import pytest
from scipy.stats import norm

from companion import augmentation, data, toy
from companion.models import MLPVAE, SeriesVAE
from companion.models.series import gaussian_nll
from companion.training import ELBOHistory


@pytest.fixture(scope="module")
def small_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    return data.scale(x_train[:5000]), y_train[:5000], data.scale(x_test[:1000]), y_test[:1000]


# ------------------------------------------------------------------ augmentation


def test_balanced_subset_takes_the_same_count_of_each_digit(small_mnist):
    x, y, _, _ = small_mnist
    xs, ys = augmentation.balanced_subset(x, y, 100, seed=3)
    assert xs.shape == (100, 28, 28) and np.array_equal(np.bincount(ys, minlength=10), np.full(10, 10))
    again, _ = augmentation.balanced_subset(x, y, 100, seed=3)
    other, _ = augmentation.balanced_subset(x, y, 100, seed=4)
    assert np.array_equal(xs, again) and not np.array_equal(xs, other)
    # Every picked image is one of the originals, with its own label.
    index = [int(np.flatnonzero((x == image).all(axis=(1, 2)))[0]) for image in xs[:10]]
    assert np.array_equal(y[index], ys[:10])
    with pytest.raises(ValueError, match=r"Expected `n` to be a positive multiple of 10.*Received: n=15"):
        augmentation.balanced_subset(x, y, 15)


def test_shift_rotate_moves_ink_by_at_most_the_shift(small_mnist):
    x = small_mnist[0][:200]
    border = np.ones((28, 28), bool)
    border[3:25, 3:25] = False
    x = x[~(x[:, border] > 0).any(axis=1)][:20]  # ink at least 3 pixels from every edge
    assert len(x) == 20
    same = augmentation.shift_rotate(x, copies=2, max_shift=0.0, max_degrees=0.0)
    assert same.shape == (40, 28, 28, 1)
    np.testing.assert_allclose(same[::2, ..., 0], x, atol=1e-6)  # no motion: the image itself
    moved = augmentation.shift_rotate(x, copies=3, max_shift=2.0, max_degrees=0.0, seed=1)[..., 0]
    assert moved.min() >= 0 and moved.max() <= 1

    def centre(images):
        grid = np.arange(28)
        mass = images.sum(axis=(1, 2))
        return np.stack([(images.sum(axis=2) * grid).sum(1) / mass, (images.sum(axis=1) * grid).sum(1) / mass], 1)

    shift = centre(moved) - np.repeat(centre(x), 3, axis=0)
    # Linear interpolation moves the centre of mass by the shift itself (up to 2 pixels per
    # axis) and keeps the total ink (its weights sum to 1) as long as no ink leaves the
    # frame, which the 3-pixel margin of the chosen images guarantees.
    assert np.abs(shift).max() <= 2.0 + 1e-3 and np.abs(shift).mean() > 0.5
    np.testing.assert_allclose(moved.sum(axis=(1, 2)), np.repeat(x.sum(axis=(1, 2)), 3), rtol=1e-3)


def test_generated_examples_keep_the_labels_asked_for(small_mnist):
    x, y, _, _ = small_mnist
    xs, ys = augmentation.balanced_subset(x, y, 20, seed=0)
    images, labels = augmentation.generated_examples(xs, ys, copies=3, steps=5, seed=0)
    assert images.shape == (60, 28, 28, 1) and np.array_equal(labels, np.repeat(ys, 3))
    assert images.min() >= 0 and images.max() <= 1


def test_train_and_test_learns_far_beyond_chance(small_mnist):
    x, y, x_test, y_test = small_mnist
    accuracy = augmentation.train_and_test(x[:2000], y[:2000], x_test, y_test, steps=150, seed=0)
    # Chance is 0.10; a small CNN passes 0.8 after about two epochs of 2,000 images.
    assert accuracy > 0.8


def test_augmentation_experiment_counts_its_training_images(small_mnist):
    x, y, x_test, y_test = small_mnist
    rows = augmentation.augmentation_experiment(
        x, y, x_test[:200], y_test[:200], sizes=(10,), seeds=(0,), copies=4, steps=2, generator_steps=2, progress=False
    )
    counts = {row["method"]: row["train_images"] for row in rows}
    assert counts == {"none": 10, "classical": 50, "generated": 50, "both": 50}
    assert all(0.0 <= row["accuracy"] <= 1.0 for row in rows)
    with pytest.raises(ValueError, match=r"Expected `methods` among .*Received: methods=\('mixup',\)"):
        augmentation.augmentation_experiment(x, y, x_test, y_test, methods=("mixup",))


def test_summarize_gives_mean_and_sample_standard_deviation():
    rows = [{"labelled": 100, "method": "none", "accuracy": a} for a in (0.7, 0.8, 0.9)]
    rows.append({"labelled": 1000, "method": "none", "accuracy": 0.95})
    summary = augmentation.summarize(rows)
    assert summary[(100, "none")] == pytest.approx((0.8, 0.1, 3))
    assert summary[(1000, "none")][0] == 0.95 and np.isnan(summary[(1000, "none")][1])


# ------------------------------------------------------------------ time series


def test_wave_series_and_dominant_frequency():
    x, f = toy.wave_series(3000, length=64, noise=0.1, seed=0)
    assert x.shape == (3000, 64) and x.dtype == np.float32 and f.min() >= 1 and f.max() <= 4
    error = np.abs(toy.dominant_frequency(x) - f)
    # The zero-padded spectrum reads frequencies on a grid of 1/8 cycle (error <= 1/16); a
    # sine with a non-integer number of cycles also leaks into its mirror image at -f,
    # which pulls the peak by up to about 0.2 cycles at f = 1 (measured: 0.20 noiseless).
    assert error.mean() < 0.1 and error.max() < 0.3
    with pytest.raises(ValueError, match=r"Expected `cycles`"):
        toy.wave_series(10, length=8, cycles=(1.0, 5.0))


def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(4, 7)), rng.normal(size=(4, 7))
    got = keras.ops.convert_to_numpy(gaussian_nll(x.astype("float32"), mean.astype("float32"), np.float32(-0.3)))
    np.testing.assert_allclose(got, -norm.logpdf(x, mean, np.exp(-0.3)).sum(axis=1), rtol=1e-5)


@pytest.mark.backend
def test_series_vae_learns_the_waves_and_round_trips(tmp_path):
    x, _ = toy.wave_series(4000, length=64, noise=0.1, seed=0)
    keras.utils.set_random_seed(0)
    vae = SeriesVAE(length=64, latent_dim=4, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(2e-3))
    before = float(np.mean(vae.negative_elbo(x[:500])))
    vae.fit(x, batch_size=100, epochs=15, verbose=0)
    after = float(np.mean(vae.negative_elbo(x[:500])))
    assert after < before - 50
    # The data's noise has sigma 0.1; a fitted model's sigma cannot be far below it and
    # should be well below the initial 1.
    assert 0.08 < vae.sigma < 0.5
    frequencies = toy.dominant_frequency(vae.generate(500, seed=1, noise=False))
    assert np.mean((frequencies >= 0.75) & (frequencies <= 4.25)) > 0.9
    path = tmp_path / "series.keras"
    vae.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.decode(np.ones((2, 4), "float32")), vae.decode(np.ones((2, 4), "float32")), atol=1e-5)
    with pytest.raises(ValueError, match=r"Expected `x` of shape \(n, 64\).*Received: x.shape=\(3, 10\)"):
        vae.encode(np.zeros((3, 10)))


# ------------------------------------------------------------------ overfitting helpers


@pytest.mark.backend
def test_mlp_vae_dropout_acts_only_in_training(tmp_path):
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")
    vae = MLPVAE(latent_dim=2, hidden_units=(32, 16), dropout=0.5, seed=0)
    assert sum("dropout" in layer.name for layer in vae.encoder.layers + vae.decoder.layers) == 4
    evaluation = keras.ops.convert_to_numpy(vae.encoder(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vae.encoder(x, training=False)), evaluation)
    assert not np.allclose(keras.ops.convert_to_numpy(vae.encoder(x, training=True)), evaluation)
    path = tmp_path / "dropout.keras"
    vae.save(path)
    assert keras.saving.load_model(path).dropout == 0.5
    with pytest.raises(ValueError, match=r"Expected `dropout` in \[0, 1\). Received: dropout=1.0"):
        MLPVAE(dropout=1.0)


@pytest.mark.backend
def test_elbo_history_records_both_sets_with_fixed_noise(small_mnist):
    x, _, x_test, _ = small_mnist
    train, test = data.binarize_static(x[:256], seed=0), data.binarize_static(x_test[:128], seed=0)
    vae = MLPVAE(latent_dim=2, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    tracker = ELBOHistory(train, test, seed=5)
    vae.fit(train, batch_size=64, epochs=3, verbose=0, callbacks=[tracker])
    assert [len(tracker.history[k]) for k in ("train", "test")] == [3, 3]
    assert tracker.history["train"][-1] < tracker.history["train"][0]
    assert tracker.history["test"][-1] == pytest.approx(-np.mean(vae.elbo_terms(test, seed=5)["elbo"]), rel=1e-5)


# ------------------------------------------------------------------ latent walks


def test_interpolate_ends_at_both_points_and_slerp_keeps_the_norm():
    from companion import latent

    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    line = latent.interpolate(a, b, steps=5)
    np.testing.assert_allclose(line[[0, -1]], [a, b], atol=1e-6)
    np.testing.assert_allclose(np.diff(line, axis=0), np.tile((b - a) / 4, (4, 1)), atol=1e-6)
    arc = latent.interpolate(a, b, steps=5, spherical=True)
    np.testing.assert_allclose(arc[[0, -1]], [a, b], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 3.0, rtol=1e-6)  # a quarter circle
    np.testing.assert_allclose(np.arctan2(arc[:, 1], arc[:, 0]), np.linspace(0, np.pi / 2, 5), atol=1e-6)
    # The straight line's midpoint is shorter by cos(45 degrees): the dip slerp avoids.
    assert np.linalg.norm(line[2]) == pytest.approx(3.0 * np.cos(np.pi / 4), rel=1e-6)
    with pytest.raises(ValueError, match="Expected `steps` to be an integer >= 2. Received: steps=1"):
        latent.interpolate(a, b, steps=1)


def test_grid_points_are_normal_quantiles_read_like_an_image():
    from companion import latent

    z = latent.grid_points(3, edge=0.1)
    q = norm.ppf(0.1)
    np.testing.assert_allclose(z[:3], [[q, -q], [0, -q], [-q, -q]], atol=1e-6)  # top row first
    np.testing.assert_allclose(z[-1], [-q, q], atol=1e-6)


def test_attribute_vector_recovers_a_planted_direction():
    from companion import latent

    rng = np.random.default_rng(0)
    mask = rng.random(20000) < 0.3
    z = rng.standard_normal((20000, 4)) + np.outer(mask, [2.0, 0, 0, -1.0])
    # Each mean has standard error about 1/sqrt(6000): 0.05 is over 3 standard errors.
    np.testing.assert_allclose(latent.attribute_vector(z, mask), [2.0, 0, 0, -1.0], atol=0.05)
    with pytest.raises(ValueError, match="both true and false"):
        latent.attribute_vector(z, np.ones(20000, bool))


def test_slant_and_thickness_of_drawn_strokes():
    from companion import latent

    def stroke(slope, width=1):
        image = np.zeros((28, 28))
        for row in range(4, 24):
            col = int(round(14 + slope * (14 - row)))  # rows grow downward; y = 14 - row
            image[row, col : col + width] = 1.0
        return image

    images = np.stack([stroke(0.0), stroke(0.5), stroke(-0.5), stroke(0.0, width=3)])
    s = latent.slant(images)
    # Rounding each row's column to the nearest pixel leaves the fitted slope within 0.02.
    np.testing.assert_allclose(s, [0.0, 0.5, -0.5, 0.0], atol=0.02)
    np.testing.assert_allclose(latent.thickness(images), [20 / 784, 20 / 784, 20 / 784, 60 / 784])
    with pytest.raises(ValueError, match="Expected a batch of 28x28 images"):
        latent.slant(np.zeros((2, 10)))
