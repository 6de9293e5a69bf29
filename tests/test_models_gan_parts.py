"""Tests of companion.models.gan_parts: the spectrally normalized layers and the differentiable
augmentation, each against a computation that does not use the code under test, on every backend."""

import keras
import numpy as np
import pytest
from keras import layers, ops

from companion import training
from companion.models import DCGAN
from companion.models.gan_parts import DiffAugment, SpectralConv2D, SpectralDense, cutout, translate

pytestmark = pytest.mark.backend


# ------------------------------------------------------- spectral normalization


def _matrix_with_singular_values(rng, rows, columns, values):
    u, _ = np.linalg.qr(rng.standard_normal((rows, rows)))
    v, _ = np.linalg.qr(rng.standard_normal((columns, columns)))
    s = np.zeros((rows, columns))
    s[np.arange(len(values)), np.arange(len(values))] = values
    return u @ s @ v.T


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_spectral_layers_estimate_the_largest_singular_value(kind, numpy_of):
    rng = np.random.default_rng(0)
    if kind == "dense":
        layer, x = SpectralDense(5), rng.standard_normal((4, 7)).astype(np.float32)
        shape = (7, 5)
    else:
        layer, x = SpectralConv2D(5, 2), rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
        shape = (2, 2, 3, 5)
    layer(x)  # builds
    # Singular values 3, 1.5, 1, 0.5, 0.2: power iteration gains a factor (1.5/3)^2 per step.
    matrix = _matrix_with_singular_values(rng, int(np.prod(shape[:-1])), shape[-1], [3.0, 1.5, 1.0, 0.5, 0.2])
    layer.kernel.assign(matrix.reshape(shape).astype(np.float32))
    largest = np.linalg.svd(matrix, compute_uv=False)[0]
    u_before = numpy_of(layer.u)
    layer(x, training=False)
    np.testing.assert_array_equal(numpy_of(layer.u), u_before)  # inference leaves u alone
    for _ in range(30):
        layer(x, training=True)
    # After 30 steps the estimate's error is ~0.25^30 of sigma: float32 rounding (1e-6) dominates.
    assert float(numpy_of(layer.singular_value())) == pytest.approx(largest, rel=1e-5)
    normalized = numpy_of(layer.normalized_kernel()).reshape(-1, shape[-1])
    assert np.linalg.svd(normalized, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-5)
    # The output is the plain layer's with the normalized kernel.
    plain = (layers.Dense(5) if kind == "dense" else layers.Conv2D(5, 2))
    plain(x)
    plain.set_weights([numpy_of(layer.normalized_kernel()).reshape(shape).astype(np.float32), numpy_of(layer.bias).astype(np.float32)])
    np.testing.assert_allclose(numpy_of(layer(x)), numpy_of(plain(x)), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- augmentation


def _translate_numpy(images, shifts):
    out = np.zeros_like(images)
    h, w = images.shape[1:3]
    for b, (dy, dx) in enumerate(shifts):
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    out[b, i, j] = images[b, i - dy, j - dx]
    return out


def test_translation_and_cutout_match_loops_and_pass_gradients(real_images, numpy_of):
    images = real_images[:3].astype(np.float64)
    shifts = np.array([[2, -3], [-4, 4], [0, 1]])
    np.testing.assert_allclose(numpy_of(translate(ops.convert_to_tensor(real_images[:3]), ops.convert_to_tensor(shifts))), _translate_numpy(images, shifts), atol=1e-6)
    centres = np.array([[0, 0], [14, 20], [27, 5]])
    expected = images.copy()
    for b, (r, c) in enumerate(centres):
        expected[b, max(r - 7, 0) : r + 7, max(c - 7, 0) : c + 7] = 0.0
    np.testing.assert_array_equal(numpy_of(cutout(ops.convert_to_tensor(real_images[:3]), ops.convert_to_tensor(centres), 14)), expected.astype(np.float32))
    # The gradient of the sum of a translated image is 1 on the pixels that stay in view, 0 on those pushed out.
    grad = numpy_of(training.input_gradient(lambda x: translate(x, ops.convert_to_tensor(shifts)), ops.convert_to_tensor(real_images[:3])))
    np.testing.assert_array_equal(grad, _translate_numpy(np.ones_like(images), -shifts))
    augment = DiffAugment(("translation", "cutout"), keras.random.SeedGenerator(0))
    out = numpy_of(augment(ops.convert_to_tensor(real_images[:8])))
    assert out.shape == (8, 28, 28, 1) and not np.allclose(out, real_images[:8])
    with pytest.raises(ValueError, match=r"Expected `augment` to list distinct names among translation, cutout. Received: augment=\('flip',\)"):
        DCGAN(augment=("flip",))
