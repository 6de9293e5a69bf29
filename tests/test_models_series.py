"""Tests of companion.models.series: the time-series VAE and its Gaussian likelihood."""

import keras
import numpy as np
import pytest
from scipy.stats import norm

from companion.data import synthetic
from companion.models import SeriesVAE
from companion.models.series import gaussian_nll


def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(4, 7)), rng.normal(size=(4, 7))
    got = keras.ops.convert_to_numpy(gaussian_nll(x.astype("float32"), mean.astype("float32"), np.float32(-0.3)))
    np.testing.assert_allclose(got, -norm.logpdf(x, mean, np.exp(-0.3)).sum(axis=1), rtol=1e-5)


@pytest.mark.backend
def test_series_vae_learns_the_waves_and_round_trips(tmp_path):
    x, _ = synthetic.wave_series(4000, length=64, noise=0.1, seed=0)
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
    frequencies = synthetic.dominant_frequency(vae.generate(500, seed=1, noise=False))
    assert np.mean((frequencies >= 0.75) & (frequencies <= 4.25)) > 0.9
    path = tmp_path / "series.keras"
    vae.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.decode(np.ones((2, 4), "float32")), vae.decode(np.ones((2, 4), "float32")), atol=1e-5)
    with pytest.raises(ValueError, match=r"Expected `x` of shape \(n, 64\).*Received: x.shape=\(3, 10\)"):
        vae.encode(np.zeros((3, 10)))
