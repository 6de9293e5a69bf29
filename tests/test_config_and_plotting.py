"""Tests of the quick-mode switch and the image grid."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from companion import config, plotting


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode_reads_environment(monkeypatch, value, expected):
    monkeypatch.setenv(config.QUICK_ENV, value)
    assert config.quick_mode() is expected
    assert config.choose(full=100, quick=3) == (3 if expected else 100)


def test_quick_mode_unset_is_full(monkeypatch):
    monkeypatch.delenv(config.QUICK_ENV, raising=False)
    assert config.choose(full="full", quick="quick") == "full"


def test_quick_mode_rejects_unknown_value(monkeypatch):
    monkeypatch.setenv(config.QUICK_ENV, "maybe")
    with pytest.raises(ValueError, match=r"COMPANION_QUICK.*Received: COMPANION_QUICK='maybe'"):
        config.quick_mode()


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
