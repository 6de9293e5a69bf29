"""Tests of companion.models.made: the MADE masks and layer, and its fast sampler against the network,
on every backend."""

import keras
import numpy as np
import pytest

from companion.models import MADE
from companion.models.made import made_masks

pytestmark = pytest.mark.backend


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


@pytest.mark.parametrize("made_units", [(24,), (24, 16)])
def test_the_fast_sampler_agrees_with_the_network_on_what_it_drew(made_units, small_arvae):
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
