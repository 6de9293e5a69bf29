"""Tests of companion.models.small: the small models of the theory chapters, `VectorGAN` and `Autoencoder`."""

import keras
import numpy as np
import pytest

from companion import data
from companion.data import synthetic
from companion.models import Autoencoder, VectorGAN


def test_vector_gan_trains_on_the_ring_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    x, _ = synthetic.ring_of_gaussians(2048, seed=0)
    model = VectorGAN(data_dim=2, latent_dim=2, hidden_units=(32, 32), seed=0)
    model.compile()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, batch_size=256, epochs=2, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    samples = model.generate(100, seed=1)
    assert samples.shape == (100, 2)
    model.save(tmp_path / "synthetic.keras")
    loaded = keras.saving.load_model(tmp_path / "synthetic.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.generate(100, seed=1), samples)
    with pytest.raises(ValueError, match=r"Expected `x` of shape \(n, 2\)"):
        model.fit(np.zeros((10, 3), np.float32), epochs=1, verbose=0)


def test_autoencoder_learns_and_round_trips(mnist, tmp_path):
    (x_train, _), _ = mnist
    x = data.scale(x_train[:256])
    keras.utils.set_random_seed(0)
    model = Autoencoder(latent_dim=4, hidden_units=(32,))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = np.mean((model.reconstruct(x) - x.reshape(-1, 28, 28, 1)) ** 2)
    model.fit(x, batch_size=64, epochs=5, verbose=0)
    after = np.mean((model.reconstruct(x) - x.reshape(-1, 28, 28, 1)) ** 2)
    assert after < 0.8 * before
    assert model.encode(x[:3]).shape == (3, 4) and model.decode(np.zeros((2, 4), np.float32)).shape == (2, 28, 28, 1)
    model.save(tmp_path / "ae.keras")
    loaded = keras.saving.load_model(tmp_path / "ae.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.encode(x[:5]), model.encode(x[:5]))
    with pytest.raises(ValueError, match="Expected `codes`"):
        model.decode(np.zeros((2, 3), np.float32))
