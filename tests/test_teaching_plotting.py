"""Tests of companion.teaching.plotting: the image grid, the mosaic, the latent scatter and Markdown tables."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from companion.teaching import plotting


def test_image_grid_lays_out_images():
    images = np.random.default_rng(0).random((13, 784))
    fig = plotting.image_grid(images, labels=list(range(13)), ncols=5, title="t")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 15 and len(shown) == 13  # 3 rows of 5, two left blank
    np.testing.assert_allclose(shown[2].images[0].get_array(), images[2].reshape(28, 28))
    assert shown[4].get_title() == "4"


def test_image_grid_rejects_bad_input():
    with pytest.raises(ValueError, match=r"Expected 3 labels.*Received: len\(labels\)=2"):
        plotting.image_grid(np.zeros((3, 28, 28)), labels=[1, 2])
    with pytest.raises(ValueError, match=r"square single-channel images"):
        plotting.image_grid(np.zeros((3, 10)))


def test_mosaic_puts_each_image_in_its_cell_with_padding_between():
    images = np.arange(5 * 4, dtype=float).reshape(5, 2, 2) + 1  # five 2x2 images, no zero pixel
    tiled = plotting.mosaic(images, ncols=3, pad=1, background=0.0)
    assert tiled.shape == (2 * 3 - 1, 3 * 3 - 1)
    np.testing.assert_array_equal(tiled[0:2, 3:5], images[1])  # first row, second column
    np.testing.assert_array_equal(tiled[3:5, 3:5], images[4])  # second row, second column
    assert np.all(tiled[2, :] == 0) and np.all(tiled[:, 2] == 0)  # the padding
    assert np.all(tiled[3:5, 6:8] == 0)  # the empty sixth cell
    with pytest.raises(ValueError, match=r"Received: ncols=0"):
        plotting.mosaic(images, ncols=0)
    with pytest.raises(ValueError, match=r"square single-channel images. Received: images.shape=\(3, 6\)"):
        plotting.mosaic(np.zeros((3, 6)))


def test_latent_scatter_draws_one_series_per_digit_and_caps_the_points():
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(900, 2)), np.arange(900) % 3
    ax = plotting.latent_scatter(z, labels, max_points=300)
    offsets = [collection.get_offsets() for collection in ax.collections]
    assert len(offsets) == 3 and sum(len(o) for o in offsets) == 300
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    # Every drawn point is one of the inputs, in the series of its own label.
    for digit, points in enumerate(offsets):
        assert all(labels[np.flatnonzero((z == p).all(axis=1))[0]] == digit for p in points[:20])
    with pytest.raises(ValueError, match=r"Expected `z` of shape \(n, 2\)"):
        plotting.latent_scatter(np.zeros((5, 3)), np.zeros(5))


def test_markdown_table_formats_each_column():
    table = plotting.markdown_table([("a|b", 1.23456, None), ("c", 2.0, 3)], ["name", "x", "|y|"], [None, "{:.2f}", "{:d}"])
    assert table.data.splitlines() == ["| name | x | \\|y\\| |", "| --- | --- | --- |", "| a\\|b | 1.23 |  |", "| c | 2.00 | 3 |"]
    with pytest.raises(ValueError, match="Expected rows of 3 cells. Received: row 0 has 2"):
        plotting.markdown_table([(1, 2)], ["a", "b", "c"])
