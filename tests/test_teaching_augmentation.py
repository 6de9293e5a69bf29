"""Tests of companion.teaching.augmentation: the data-augmentation experiment of chapter 7."""

import numpy as np
import pytest

from companion.teaching import augmentation


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
