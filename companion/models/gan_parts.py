"""Parts that GANs add to their networks: spectrally normalized layers and the
differentiable augmentation shown to the discriminator.

* `SpectralConv2D`, `SpectralDense`: a `Conv2D` / `Dense` whose kernel is divided by an
  estimate of its largest singular value (Miyato et al., 2018), so that the layer is
  1-Lipschitz in the kernel's matrix norm. The estimate comes from one step of power
  iteration per training call, on a vector `u` the layer keeps. Unlike
  `keras.layers.SpectralNormalization`, which assigns the normalized kernel into the
  wrapped layer's variable, these layers never change a variable that a gradient needs:
  the kernel is divided as a tensor, and `u` is a new tensor each call, assigned to its
  variable only after it has been used (PyTorch's autograd refuses a variable modified
  in place between the forward pass and `backward`).
* `translate`, `cutout` and `DiffAugment`: shifts of up to `max_shift` pixels (the
  image padded with background) and one zeroed square per image, written as products
  and masks so that gradients flow through them to the generator (Zhao et al., 2020:
  "Differentiable Augmentation for Data-Efficient GAN Training"). The discriminator
  sees real and generated images through the same random augmentation, so it cannot
  tell them apart by the augmentation itself.
"""

import keras
from keras import layers, ops

__all__ = ["AUGMENTATIONS", "DiffAugment", "SpectralConv2D", "SpectralDense", "cutout", "translate"]


def _l2_normalize(x, epsilon=1e-12):
    return x / ops.sqrt(ops.sum(ops.square(x)) + epsilon)


class _SpectralNorm:
    """What both layers share: `u` and the normalized kernel."""

    def _build_u(self, units):
        self.u = self.add_weight(
            name="u", shape=(1, units), initializer=keras.initializers.RandomNormal(stddev=1.0), trainable=False
        )

    def singular_value(self, training=False):
        """The power-iteration estimate of the kernel's largest singular value, with the
        kernel as a matrix `(inputs, units)` (a convolution's `(kh * kw * in, filters)`).
        In training, one step of power iteration first updates `u`."""
        kernel = ops.reshape(self.kernel, (-1, ops.shape(self.kernel)[-1]))
        fixed = ops.stop_gradient(kernel)
        u = ops.stop_gradient(ops.convert_to_tensor(self.u))
        v = _l2_normalize(ops.matmul(u, ops.transpose(fixed)))  # (1, inputs)
        if training:
            u = _l2_normalize(ops.matmul(v, fixed))  # (1, units)
            self.u.assign(u)
            v = _l2_normalize(ops.matmul(u, ops.transpose(fixed)))
        # sigma = u^T W v, differentiable in W, with u and v held fixed (Miyato et al.'s gradient)
        return ops.sum(ops.matmul(v, kernel) * u)

    def normalized_kernel(self, training=False):
        return self.kernel / self.singular_value(training)

    # All the layer's variables, `u` included (Conv2D's and Dense's own methods save the
    # kernel and bias only, for their quantization and LoRA modes, which these layers lack).
    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)


@keras.saving.register_keras_serializable(package="companion")
class SpectralConv2D(_SpectralNorm, layers.Conv2D):
    """`Conv2D` with a spectrally normalized kernel (see the module docstring)."""

    def build(self, input_shape):
        super().build(input_shape)
        self._build_u(self.filters)

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="companion")
class SpectralDense(_SpectralNorm, layers.Dense):
    """`Dense` with a spectrally normalized kernel (see the module docstring)."""

    def build(self, input_shape):
        super().build(input_shape)
        self._build_u(self.units)

    def call(self, inputs, training=False):
        x = ops.matmul(inputs, self.normalized_kernel(training))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x) if self.activation is not None else x


# ----------------------------------------------------------------------------- augmentation


def _shift_matrices(shifts, size):
    """`(n, size, size)` matrices S with S[b, i, j] = 1 where j = i - shifts[b]: S @ x moves
    the rows of x down by `shifts[b]`, filling with zeros."""
    index = ops.arange(size, dtype="int32")
    source = index[None, :, None] - ops.cast(shifts, "int32")[:, None, None]
    return ops.cast(ops.equal(source, index[None, None, :]), "float32")


def translate(images, shifts):
    """Images `(n, h, w, c)` moved by `shifts` `(n, 2)` pixels (down, right), the space left
    filled with zeros (the background of MNIST in [0, 1])."""
    images = ops.convert_to_tensor(images, "float32")
    _, height, width, _ = ops.shape(images)
    rows = _shift_matrices(shifts[:, 0], height)
    columns = _shift_matrices(shifts[:, 1], width)
    moved = ops.einsum("bij,bjkc->bikc", rows, images)
    return ops.einsum("bkl,bilc->bikc", columns, moved)


def cutout(images, centres, size):
    """Images `(n, h, w, c)` with a `size` x `size` square around `centres` `(n, 2)` (row,
    column) set to zero, clipped at the borders."""
    images = ops.convert_to_tensor(images, "float32")
    _, height, width, _ = ops.shape(images)
    low = ops.cast(centres, "int32") - size // 2
    rows = ops.arange(height, dtype="int32")[None, :]
    columns = ops.arange(width, dtype="int32")[None, :]
    in_rows = ops.logical_and(rows >= low[:, :1], rows < low[:, :1] + size)  # (n, h)
    in_columns = ops.logical_and(columns >= low[:, 1:], columns < low[:, 1:] + size)  # (n, w)
    inside = ops.logical_and(in_rows[:, :, None], in_columns[:, None, :])
    return images * ops.cast(ops.logical_not(inside), "float32")[..., None]


AUGMENTATIONS = ("translation", "cutout")


class DiffAugment:
    """Random `translate` (up to `max_shift` pixels each way, 1/8 of 28 rounded up as in
    Zhao et al.) and `cutout` (a square of half the image's side), in the order given.

    Args:
        policy: a tuple of names among `AUGMENTATIONS`.
        seed_generator: the `keras.random.SeedGenerator` the offsets are drawn from.
    """

    def __init__(self, policy, seed_generator, max_shift=4, cutout_size=14):
        unknown = [name for name in policy if name not in AUGMENTATIONS]
        if unknown or len(set(policy)) != len(policy):
            raise ValueError(
                f"Expected `augment` to list distinct names among {', '.join(AUGMENTATIONS)}. Received: augment={tuple(policy)!r}"
            )
        self.policy = tuple(policy)
        self.seed_generator = seed_generator
        self.max_shift = max_shift
        self.cutout_size = cutout_size

    def __call__(self, images):
        n = ops.shape(images)[0]
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        for name in self.policy:
            if name == "translation":
                shifts = keras.random.randint((n, 2), -self.max_shift, self.max_shift + 1, seed=self.seed_generator)
                images = translate(images, shifts)
            else:
                rows = keras.random.randint((n, 1), 0, height, seed=self.seed_generator)
                columns = keras.random.randint((n, 1), 0, width, seed=self.seed_generator)
                images = cutout(images, ops.concatenate([rows, columns], axis=1), self.cutout_size)
        return images
