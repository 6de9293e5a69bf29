"""Tests of companion.teaching.rings: the small GAN and VAE of chapters 2 and 10 trained on the ring of
Gaussians, and the figure that draws their samples over the data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from companion.data import synthetic
from companion.teaching import rings


@pytest.fixture(scope="module")
def ring():
    """4,096 points of the ring (eight modes of standard deviation 0.05 on a circle of radius 2)."""
    points, _ = synthetic.ring_of_gaussians(4096, std=0.05, seed=0)
    return points


@pytest.fixture(scope="module")
def gans(ring):
    """Three short GAN runs: seed 0 twice (one of them for two epochs) and seed 1, with the same
    data and settings otherwise."""
    return {name: rings.train_gan(ring, epochs=epochs, batch_size=256, seed=seed)
            for name, epochs, seed in (("a", 1, 0), ("b", 1, 0), ("other", 1, 1), ("two_epochs", 2, 0))}


def test_train_gan_returns_a_generator_of_points_and_the_losses_of_each_epoch(gans):
    model, history = gans["a"]
    samples = model.generate(300, seed=1)
    assert samples.shape == (300, 2) and samples.dtype == np.float32 and np.isfinite(samples).all()
    assert model.latent_dim == 2 and model.hidden_units == (128, 128)
    for key in ("d_loss", "g_loss"):
        assert len(history[key]) == 1 and np.isfinite(history[key]).all()
        assert len(gans["two_epochs"][1][key]) == 2


def test_train_gan_is_repeatable_for_a_seed(gans):
    (a, _), (b, _), (other, _) = gans["a"], gans["b"], gans["other"]
    np.testing.assert_array_equal(a.generate(200, seed=1), b.generate(200, seed=1))
    assert a.generate(200, seed=1).tolist() != other.generate(200, seed=1).tolist()
    # The weights themselves, not only the samples: training seed 0 ended where it ended before.
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)


def test_train_gan_gives_each_network_its_own_learning_rate(ring):
    """Adam's first step moves each weight by lr * g / (|g| + 1e-7), i.e. by the learning rate
    for any weight whose gradient is far above 1e-7: after one step (256 points, batch 256) the
    largest change in each network is its rate. Were the two rates swapped, or one of them
    ignored, the figures would differ by a factor of 100."""
    import keras

    from companion.models import VectorGAN

    keras.utils.set_random_seed(0)  # as train_gan does before building its model: the same initial weights
    start = VectorGAN(data_dim=2, latent_dim=2, hidden_units=(128, 128), seed=0)
    model, _ = rings.train_gan(ring[:256], epochs=1, batch_size=256, d_learning_rate=1e-3, g_learning_rate=1e-5, seed=0)

    def change(trained, initial):
        return max(np.abs(u - v).max() for u, v in zip(trained.get_weights(), initial.get_weights(), strict=True))

    # float32 weights of order 0.1 round to ~1e-8, i.e. 1e-3 of the smaller step.
    assert change(model.discriminator, start.discriminator) == pytest.approx(1e-3, rel=1e-2)
    assert change(model.generator, start.generator) == pytest.approx(1e-5, rel=1e-2)


@pytest.fixture(scope="module")
def vaes(ring):
    return {name: rings.train_vae(ring, epochs=1, seed=seed) for name, seed in (("a", 0), ("b", 0), ("other", 1))}


def test_train_vae_returns_a_model_of_points_repeatable_for_a_seed(vaes):
    a, b, other = vaes["a"], vaes["b"], vaes["other"]
    samples = a.generate(200, seed=1)
    assert samples.shape == (200, 2) and np.isfinite(samples).all()
    assert a.latent_dim == 2 and a.length == 2
    np.testing.assert_array_equal(samples, b.generate(200, seed=1))
    assert samples.tolist() != other.generate(200, seed=1).tolist()


def assert_same_coverage(got, expected):
    """`mode_coverage`'s dict: two numbers and an array of counts per mode."""
    assert got.keys() == expected.keys()
    assert (got["modes_covered"], got["high_quality"]) == (expected["modes_covered"], expected["high_quality"])
    np.testing.assert_array_equal(got["counts"], expected["counts"])


def test_draw_returns_the_coverage_and_puts_it_in_the_title(ring):
    collapsed = np.repeat(synthetic.ring_centres(8, 2.0)[:2], 50, axis=0) + 0.01  # two modes, all close
    fig, ax = plt.subplots()
    try:
        coverage = rings.draw(ax, ring, collapsed, "GAN: {modes} modes, {good:.0%} good", limit=3.0, background=500)
        assert_same_coverage(coverage, synthetic.mode_coverage(collapsed))
        assert (coverage["modes_covered"], coverage["high_quality"]) == (2, 1.0)
        assert coverage["counts"].tolist() == [50, 50, 0, 0, 0, 0, 0, 0]
        assert ax.get_title() == "GAN: 2 modes, 100% good"
        # The data's first `background` points behind, the samples in front, in a square of +-limit.
        behind, front = ax.collections
        np.testing.assert_array_equal(behind.get_offsets(), ring[:500])
        np.testing.assert_array_equal(front.get_offsets(), collapsed)
        assert ax.get_xlim() == ax.get_ylim() == (-3.0, 3.0) and ax.get_aspect() == 1.0
        assert not ax.get_xticks().size and not ax.get_yticks().size
        # Another set of points: its own coverage, and a title that says so.
        ax.clear()
        spread = rings.draw(ax, ring, ring[:300], "{modes}/{good:.0%}")
        assert_same_coverage(spread, synthetic.mode_coverage(ring[:300]))
        assert spread["modes_covered"] == 8
        assert ax.get_title() == f"8/{spread['high_quality']:.0%}"
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "train, kwargs, name",
    [
        (rings.train_gan, {"epochs": 0}, "epochs"),
        (rings.train_gan, {"epochs": 1, "seed": -1}, "seed"),
        (rings.train_gan, {"epochs": 1, "d_learning_rate": 0}, "d_learning_rate"),
        (rings.train_gan, {"epochs": 1, "g_learning_rate": -1e-3}, "g_learning_rate"),
        (rings.train_vae, {"epochs": 0}, "epochs"),
        (rings.train_vae, {"epochs": 2.5}, "epochs"),
        (rings.train_vae, {"epochs": 1, "seed": -1}, "seed"),
    ],
    ids=["gan epochs 0", "gan seed -1", "gan d rate 0", "gan g rate negative", "vae epochs 0", "vae epochs 2.5", "vae seed -1"],
)
def test_training_refuses_bad_settings_by_name(ring, train, kwargs, name):
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}={kwargs[name]!r}"):
        train(ring, **kwargs)
