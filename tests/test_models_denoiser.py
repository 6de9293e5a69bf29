"""Tests of companion.models.denoiser: the U-Net that removes Gaussian noise."""

import keras
import numpy as np
import pytest

from companion.evaluation import denoising, metrics
from companion.models import Denoiser


def test_denoiser_adds_noise_only_while_training(clean):
    keras.utils.set_random_seed(0)
    model = Denoiser(filters=(4, 8), seed=0)
    clean = clean[:8].reshape(8, 28, 28, 1)
    x = keras.ops.convert_to_tensor(clean)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(model(x)))
    noisy_input = model.network.get_layer("clip")
    probe = keras.Model(model.network.inputs, noisy_input.output)
    seen = keras.ops.convert_to_numpy(probe(x, training=True))
    assert seen.min() >= 0.0 and seen.max() <= 1.0 and np.abs(seen - clean).mean() > 0.1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(probe(x, training=False)), clean)


def test_denoiser_learns_and_round_trips(clean, tmp_path):
    keras.utils.set_random_seed(0)
    model = Denoiser(filters=(8, 16), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    noisy = denoising.add_noise(clean[:64], 0.5, seed=5)
    before = metrics.psnr(clean[:64], model.denoise(noisy))
    model.fit(clean, batch_size=32, epochs=6, verbose=0)
    after = metrics.psnr(clean[:64], model.denoise(noisy))
    # A blank image is a cheap first answer (about 10 dB); the model must beat it clearly.
    blank = metrics.psnr(clean[:64], np.zeros_like(clean[:64]))
    assert after > max(before, blank) + 2.0, (before, blank, after)
    model.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.denoise(noisy[:4]), model.denoise(noisy[:4]))
    with pytest.raises(ValueError, match=r"Expected `noisy` with values in \[0, 1\]"):
        model.denoise(noisy * 2)


def test_denoiser_bottleneck_convolutions_add_residual_layers(tmp_path):
    plain, deeper = Denoiser(filters=(4, 8), seed=0), Denoiser(filters=(4, 8), bottleneck_convs=2, seed=0)
    # Each extra 3x3 convolution at 7x7 maps 8 channels to 8: 9 * 8 * 8 weights and 8 biases.
    assert deeper.count_params() - plain.count_params() == 2 * (9 * 8 * 8 + 8)
    deeper.save(tmp_path / "deeper.keras")
    assert keras.saving.load_model(tmp_path / "deeper.keras", safe_mode=True).bottleneck_convs == 2
    with pytest.raises(ValueError, match="Expected `bottleneck_convs` to be a non-negative integer. Received: bottleneck_convs=-1"):
        Denoiser(bottleneck_convs=-1)
