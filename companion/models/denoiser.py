"""A denoising autoencoder: noisy digit in, clean digit out.

Trained on clean images only: while training, the model adds Gaussian noise of standard
deviation `noise_std` to its input and clips it to [0, 1] (a `GaussianNoise` layer, active
only in training, then a clip); the loss is the cross-entropy of the clean image's pixels
under the predicted ones (grey levels as targets), computed from logits. At inference the noise layer is the identity, so
`model.denoise(noisy)` sees the noisy image as given.

Architecture (a small U-Net): Conv 3x3 `filters[0]` at 28x28 -> Conv 3x3 stride 2
`filters[1]` (14x14) -> Conv 3x3 stride 2 `filters[1]` (7x7) [-> `bottleneck_convs` more
Conv 3x3 at 7x7, residual, which widen the field of view to the whole digit] -> ConvTranspose back to
14x14, concatenated with the 14x14 features -> ConvTranspose to 28x28, concatenated with
the 28x28 features -> Conv 3x3 to one channel of logits; sigmoid.
"""

import keras
import numpy as np
from keras import layers, ops

from companion import validation
from companion.models import _fit
from companion.training.distribute import scale_for_replicas

__all__ = ["Denoiser"]


@keras.saving.register_keras_serializable(package="companion")
class Denoiser(keras.Model):
    """A U-Net denoiser for 28x28 images in [0, 1].

    Args:
        filters: channels at 28x28 and at the two coarser scales.
        bottleneck_convs: extra 3x3 convolutions at 7x7, each added to its input.
        noise_std: standard deviation of the Gaussian noise added in training.
        seed: seed of that noise.
    """

    def __init__(self, filters=(32, 64), bottleneck_convs=0, noise_std=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(validation.positive_int("filters", f) for f in filters)
        if len(self.filters) != 2:
            raise ValueError(f"Expected two `filters`. Received: filters={filters!r}")
        self.bottleneck_convs = validation.non_negative("bottleneck_convs", bottleneck_convs, integer=True)
        self.noise_std = validation.non_negative("noise_std", noise_std)
        self.seed = validation.seed("seed", seed)
        self.network = self._build_network()
        self.built = True

    def _build_network(self):
        f0, f1 = self.filters
        images = keras.Input(validation.IMAGE_SHAPE, name="images")
        noisy = layers.GaussianNoise(self.noise_std, seed=self.seed, name="training_noise")(images)
        noisy = layers.ReLU(max_value=1.0, name="clip")(noisy)  # clip to [0, 1]
        c28 = layers.Conv2D(f0, 3, padding="same", activation="relu", name="conv28")(noisy)
        c14 = layers.Conv2D(f1, 3, strides=2, padding="same", activation="relu", name="conv14")(c28)
        c7 = layers.Conv2D(f1, 3, strides=2, padding="same", activation="relu", name="conv7")(c14)
        for i in range(self.bottleneck_convs):
            c7 = layers.Add()([c7, layers.Conv2D(f1, 3, padding="same", activation="relu", name=f"conv7_{i}")(c7)])
        u14 = layers.Conv2DTranspose(f1, 3, strides=2, padding="same", activation="relu", name="up14")(c7)
        u14 = layers.Concatenate()([u14, c14])
        u28 = layers.Conv2DTranspose(f0, 3, strides=2, padding="same", activation="relu", name="up28")(u14)
        u28 = layers.Concatenate()([u28, c28])
        logits = layers.Conv2D(1, 3, padding="same", name="logits")(u28)
        return keras.Model(images, logits, name="unet")

    def call(self, inputs, training=False):
        # Logits while training (the loss needs them), pixel values in [0, 1] otherwise.
        logits = self.network(ops.reshape(inputs, (-1, *validation.IMAGE_SHAPE)), training=training)
        return logits if training else ops.sigmoid(logits)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Cross-entropy on the logits, not the squared error through a sigmoid: once the
        # sigmoid saturates near 0 (a blank image is a cheap first answer), the squared
        # error's gradient vanishes and training stalls there; the cross-entropy's
        # gradient, sigmoid(logit) - x, does not.
        clean = ops.reshape(ops.cast(x, "float32"), (-1, *validation.IMAGE_SHAPE))
        y_pred = ops.cast(y_pred, "float32")  # the loss in float32, also under a mixed-precision policy
        if not training:
            y_pred = ops.log(ops.clip(y_pred, 1e-7, 1 - 1e-7) / (1 - ops.clip(y_pred, 1e-7, 1 - 1e-7)))
        per_example = ops.mean(ops.softplus(y_pred) - clean * y_pred, axis=(1, 2, 3))
        if sample_weight is None:
            return scale_for_replicas(ops.mean(per_example))
        sample_weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        return scale_for_replicas(ops.sum(per_example * sample_weight) / ops.sum(sample_weight))

    def denoise(self, noisy, batch_size=1000):
        """Denoised images `(n, 28, 28, 1)` in [0, 1] from noisy ones in [0, 1] (NumPy in, NumPy out)."""
        noisy = validation.images("noisy", noisy)
        return np.concatenate(
            [ops.convert_to_numpy(self(ops.convert_to_tensor(noisy[part]))) for part in _fit.chunks(len(noisy), batch_size)]
        )

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            validation.images("x", x)
        return _fit.fit(super().fit, self, x, y, args, kwargs)

    def get_config(self):
        config = {**super().get_config(), "filters": list(self.filters), "noise_std": self.noise_std, "seed": self.seed}
        if self.bottleneck_convs:
            config["bottleneck_convs"] = self.bottleneck_convs
        return config
