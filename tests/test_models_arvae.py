"""Tests of the MADE layer and the VAE with an autoregressive decoder, on every backend."""

import zipfile

import keras
import numpy as np
import pytest

from companion import data
from companion.models import ARVAE, MADE
from companion.models.made import made_masks
from companion.training.checkpoints import save_checkpoint, save_for_inference

pytestmark = pytest.mark.backend

SMALL = dict(latent_dim=3, hidden_units=(16,), made_units=(24,))


def small_arvae(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = ARVAE(seed=seed, **{**SMALL, **kwargs})
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.fixture(scope="module")
def binary(mnist):
    (x_train, _), _ = mnist
    return data.binarize_static(x_train[:32], seed=0)


@pytest.mark.parametrize("hidden", [(5,), (7, 3), (100, 100)])
def test_made_masks_connect_output_i_only_to_inputs_before_i(hidden):
    d = 9
    masks, output, direct = made_masks(d, hidden)
    paths = masks[0]
    for mask in masks[1:]:
        paths = paths @ mask
    paths = paths @ output + direct  # paths[j, i] counts the routes from input j to output i
    j, i = np.nonzero(paths)
    assert (j < i).all()
    # Not over-masked either: with enough units every earlier input reaches every output.
    if min(hidden) >= d - 1:
        assert ((paths > 0) == (np.arange(d)[:, None] < np.arange(d)[None, :])).all()


def test_made_rejects_a_single_variable():
    with pytest.raises(ValueError, match="Expected `input_dim` >= 2"):
        made_masks(1, (4,))


def test_made_stores_only_the_free_connections():
    layer = MADE((24,), direct=True)
    layer.build([(None, 784), (None, 3)])
    masks, output, direct = made_masks(784, (24,))
    for i, mask in enumerate([*masks, output, direct]):
        assert layer.kernels[i].shape == (int(mask.sum()),)
        dense = layer.kernel(i)
        assert dense.shape == mask.shape and (dense[mask == 0] == 0).all()


def test_arvae_logit_of_pixel_i_ignores_pixels_from_i_on(binary):
    """Teacher forcing is exact: the logit of pixel i is the same whatever x_i, ..., x_784 are."""
    model = small_arvae()
    made = model.decoder.get_layer("made")
    rng = np.random.default_rng(0)
    for variable in made.kernels:  # the direct kernel starts at zero; make every path live
        variable.assign(rng.normal(0, 0.1, variable.shape).astype("float32"))
    x = binary[:4]
    z = rng.standard_normal((4, 3)).astype("float32")
    full = np.asarray(keras.ops.convert_to_numpy(model.decoder([z, x]))).reshape(4, -1)
    for i in rng.choice(784, 12, replace=False):
        changed = x.reshape(4, -1).copy()
        changed[:, i:] = rng.random((4, 784 - i)) < 0.5
        logits = np.asarray(keras.ops.convert_to_numpy(model.decoder([z, changed.reshape(x.shape)]))).reshape(4, -1)
        np.testing.assert_array_equal(logits[:, : i + 1], full[:, : i + 1])
        if i < 783:
            assert not np.allclose(logits[:, i + 1 :], full[:, i + 1 :]), "later pixels do depend on pixel i"


def test_arvae_log_likelihood_is_minus_the_bernoulli_nll_of_the_teacher_forced_logits(binary):
    model = small_arvae()
    x = binary[:5]
    z = np.random.default_rng(1).standard_normal((5, 3)).astype("float32")
    logits = np.asarray(keras.ops.convert_to_numpy(model.decoder([z, x]))).reshape(5, -1).astype(np.float64)
    expected = -np.sum(np.logaddexp(0.0, logits) - x.reshape(5, -1) * logits, axis=1)
    # float32 sum of 784 terms of about 0.7 nats: relative error below 784 * 6e-8.
    np.testing.assert_allclose(model.log_likelihood(x, z), expected, rtol=1e-4)
    with pytest.raises(ValueError, match=r"Expected one latent per image"):
        model.log_likelihood(x, z[:4])


def test_arvae_sampling_feeds_each_drawn_pixel_to_the_next():
    """Pixel 0 is a fair coin and pixel 1 copies it through a direct connection, so the
    drawn probabilities of pixel 1 are near 0 or near 1, about half of each."""
    model = small_arvae()
    made = model.decoder.get_layer("made")
    for variable in [*made.kernels, *made.context_kernels]:
        variable.assign(np.zeros(variable.shape, "float32"))
    bias = np.full(784, -10.0, "float32")
    bias[0] = 0.0
    made.biases[-1].assign(bias)
    direct = np.zeros(made.kernels[-1].shape, "float32")
    direct[0] = 20.0  # the first free direct connection: input 0 -> output 1
    made.kernels[-1].assign(direct)
    probs = model.generate(200, seed=0).reshape(200, -1)
    np.testing.assert_allclose(probs[:, 0], 0.5, rtol=1e-6)
    ones = probs[:, 1] > 0.5
    np.testing.assert_allclose(probs[ones, 1], 1 / (1 + np.exp(-10.0)), rtol=1e-5)
    np.testing.assert_allclose(probs[~ones, 1], 1 / (1 + np.exp(10.0)), rtol=1e-5)
    # 200 fair coins: the count of ones lies within 4.5 standard deviations (sqrt(50)) of 100.
    assert abs(ones.sum() - 100) < 4.5 * np.sqrt(50)
    np.testing.assert_allclose(probs[:, 2:], 1 / (1 + np.exp(10.0)), rtol=1e-5)


def test_arvae_generate_is_deterministic_for_a_seed():
    model = small_arvae()
    a, b, c = model.generate(3, seed=5), model.generate(3, seed=5), model.generate(3, seed=6)
    assert a.shape == (3, 28, 28, 1) and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_arvae_trains_saves_and_loads(binary, tmp_path):
    model = small_arvae()
    noise = np.zeros((len(binary), 3), np.float32)
    before = -model.elbo_terms(binary, noise=noise)["elbo"].mean()
    history = model.fit(binary, batch_size=len(binary), epochs=3, verbose=0)
    assert -model.elbo_terms(binary, noise=noise)["elbo"].mean() < before
    assert set(history.history) >= {"loss", "reconstruction", "kl", "neg_elbo"}
    path = tmp_path / "arvae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is ARVAE and loaded.get_config() == model.get_config()
    z = np.random.default_rng(2).standard_normal((4, 3)).astype("float32")
    np.testing.assert_array_equal(loaded.log_likelihood(binary[:4], z), model.log_likelihood(binary[:4], z))


def test_arvae_has_no_decoder_without_pixels():
    model = small_arvae()
    with pytest.raises(TypeError, match="use `decode` to sample"):
        model._decode(np.zeros((1, 3), "float32"), None)


def test_save_for_inference_drops_the_optimizer_and_keeps_the_weights(binary, tmp_path):
    model = small_arvae()
    model.fit(binary, batch_size=16, epochs=1, verbose=0)
    save_checkpoint(model, tmp_path / "full.keras", {})
    save_for_inference(model, tmp_path / "slim.keras")
    slim = keras.saving.load_model(tmp_path / "slim.keras", safe_mode=True)
    assert getattr(slim, "optimizer", None) is None and not slim.compiled
    for a, b in zip(slim.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Adam keeps two moments per weight: the full file holds about three times the numbers.
    assert (tmp_path / "slim.keras").stat().st_size < 0.5 * (tmp_path / "full.keras").stat().st_size
    with zipfile.ZipFile(tmp_path / "slim.keras") as archive:  # shipped deflated; the checkpoint as Keras writes it
        assert {entry.compress_type for entry in archive.infolist()} == {zipfile.ZIP_DEFLATED}


@pytest.mark.parametrize("made_units", [(24,), (24, 16)])
def test_the_fast_sampler_agrees_with_the_network_on_what_it_drew(made_units):
    """The incremental NumPy sampler must give, pixel by pixel, the network's own logits
    for the image it drew (replayed from the same random numbers)."""
    model = small_arvae(made_units=made_units)
    made = model.decoder.get_layer("made")
    rng = np.random.default_rng(0)
    for variable in made.kernels:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))
    z = rng.standard_normal((6, 3)).astype("float32")
    context = keras.ops.convert_to_tensor(z)
    for i in range(len(model.hidden_units)):
        context = model.decoder.get_layer(f"context_dense_{i}")(context)
    logits = made.sample(keras.ops.convert_to_numpy(context), np.random.default_rng(9), return_logits=True)
    replay = np.random.default_rng(9)
    drawn = np.stack([replay.random(6) < 1 / (1 + np.exp(-logits[:, i])) for i in range(784)], axis=1)
    network = keras.ops.convert_to_numpy(model.decoder([z, drawn.reshape(6, 28, 28, 1).astype("float32")]))
    # Same float32 sums in another order: logits of size ~10 agree to ~1e-5 relative.
    np.testing.assert_allclose(logits, np.asarray(network).reshape(6, -1), rtol=1e-4, atol=1e-4)
