"""MADE: a masked MLP whose i-th output depends only on inputs before i (Germain et al., 2015).

With binary inputs x = (x_1, ..., x_D) in raster order, output i is the logit of
p(x_i = 1 | x_<i, context), so one pass gives every conditional of

    log p(x | context) = sum_i log p(x_i | x_<i, context)

for training (teacher forcing), while sampling needs D passes, one pixel at a time.

Each unit gets a degree: input i has degree i (1..D); a hidden unit of degree m may see
inputs of degree <= m; output i may see hidden units of degree < i and, through the direct
connections, inputs before i. The context (here the VAE's latent code) enters every layer
unmasked: it is not one of the modelled variables.
"""

import keras
import numpy as np
from keras import layers, ops
from scipy.special import expit

from companion import validation

__all__ = ["MADE", "made_masks"]


def made_masks(input_dim, hidden_units):
    """The 0/1 masks of a MADE in raster order, as float32 arrays.

    Returns:
        `(hidden, output, direct)`: one `(fan_in, units)` mask per hidden layer, the
        `(hidden_units[-1], input_dim)` output mask and the `(input_dim, input_dim)` mask of
        the direct input-to-output connections (strictly lower triangular).
    """
    input_dim = validation.positive_int("input_dim", input_dim)
    if input_dim < 2:
        raise ValueError(f"Expected `input_dim` >= 2 (one variable has nothing to condition on). Received: {input_dim}")
    previous = np.arange(1, input_dim + 1)
    hidden = []
    for units in hidden_units:
        units = validation.positive_int("hidden_units", units)
        # Degrees spread evenly over 1..D-1, so that every input is seen by some unit.
        degrees = 1 + (np.arange(units) * (input_dim - 1)) // units
        hidden.append((previous[:, None] <= degrees[None, :]).astype("float32"))
        previous = degrees
    outputs = np.arange(1, input_dim + 1)
    output = (previous[:, None] < outputs[None, :]).astype("float32")
    direct = (np.arange(1, input_dim + 1)[:, None] < outputs[None, :]).astype("float32")
    return hidden, output, direct


def _numpy_activation(activation):
    numpy_versions = {"relu": lambda a: np.maximum(a, 0.0), "tanh": np.tanh, "linear": lambda a: a}
    name = keras.activations.serialize(activation)
    name = name if isinstance(name, str) else getattr(activation, "__name__", "")
    return numpy_versions.get(name, lambda a: ops.convert_to_numpy(activation(ops.convert_to_tensor(a))))


@keras.saving.register_keras_serializable(package="companion")
class MADE(layers.Layer):
    """A MADE with a context input: `MADE(...)([x, context])` gives `(n, D)` logits.

    Args:
        hidden_units: sizes of the masked hidden layers.
        activation: of the hidden layers.
        direct: add masked direct connections from inputs to outputs.
    """

    def __init__(self, hidden_units=(500,), activation="relu", direct=True, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(validation.positive_int("hidden_units", u) for u in hidden_units)
        self.activation = keras.activations.get(activation)
        self.direct = bool(direct)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"MADE takes `[x, context]`. Received input shapes: {input_shape}")
        x_shape, context_shape = input_shape
        self.input_dim, context_dim = int(x_shape[-1]), int(context_shape[-1])
        hidden, output, direct = made_masks(self.input_dim, self.hidden_units)
        masks = [*hidden, output] + ([direct] if self.direct else [])
        # Only the connections a mask allows are parameters: each masked kernel is stored
        # packed, as a vector of its free entries, and unpacked by one gather per call.
        self._shapes, self._gather = [], []
        self.kernels, self.context_kernels, self.biases = [], [], []
        for i, mask in enumerate(masks):
            fan_in, units = mask.shape
            index = np.zeros(mask.size, "int32")
            free = mask.reshape(-1) > 0
            index[free] = np.arange(1, free.sum() + 1)
            self._shapes.append(mask.shape)
            self._gather.append(ops.convert_to_tensor(index))
            limit = float(np.sqrt(6.0 / (fan_in + units)))  # Glorot's uniform limit of the dense kernel
            initializer = "zeros" if i == len(hidden) + 1 else keras.initializers.RandomUniform(-limit, limit)
            self.kernels.append(self.add_weight(shape=(int(free.sum()),), initializer=initializer, name=f"kernel_{i}"))
            if i <= len(hidden):  # the direct connections need no context or bias of their own
                self.context_kernels.append(
                    self.add_weight(shape=(context_dim, units), initializer="glorot_uniform", name=f"context_kernel_{i}")
                )
                self.biases.append(self.add_weight(shape=(units,), initializer="zeros", name=f"bias_{i}"))

    def _kernel(self, i):
        packed = ops.concatenate([ops.zeros((1,), dtype=self.kernels[i].dtype), self.kernels[i]])
        return ops.reshape(ops.take(packed, self._gather[i]), self._shapes[i])

    def kernel(self, i):
        """The i-th masked kernel as a dense `(fan_in, units)` array (zeros where masked)."""
        return ops.convert_to_numpy(self._kernel(i))

    def call(self, inputs):
        x, context = inputs
        h = x
        layers_ = len(self.hidden_units) + 1
        for i in range(layers_):
            h = ops.matmul(h, self._kernel(i)) + ops.matmul(context, self.context_kernels[i]) + self.biases[i]
            if i < layers_ - 1:
                h = self.activation(h)
        if self.direct:
            h = h + ops.matmul(x, self._kernel(layers_))
        return h

    def sample(self, context, rng, return_logits=False):
        """Draws x pixel by pixel given a NumPy `context` `(n, c)`; returns the `(n, D)`
        probabilities (or logits) of each x_i = 1 given the x_<i drawn before it.

        Runs in NumPy and updates the first layer incrementally: setting x_i adds row i
        of its kernel to the pre-activations, so each of the D steps costs O(n * units)
        there instead of a whole pass.
        """
        context = np.asarray(context, np.float32)
        n, layers_ = len(context), len(self.hidden_units) + 1
        kernels = [self.kernel(i) for i in range(len(self.kernels))]
        contexts = [context @ ops.convert_to_numpy(c) + ops.convert_to_numpy(b) for c, b in zip(self.context_kernels, self.biases)]
        activation = _numpy_activation(self.activation)
        x = np.zeros((n, self.input_dim), np.float32)
        logits = np.zeros_like(x)
        first = contexts[0].copy()  # pre-activations of the first hidden layer for x = 0
        for i in range(self.input_dim):
            h = activation(first)
            for layer in range(1, layers_ - 1):
                h = activation(h @ kernels[layer] + contexts[layer])
            logit = h @ kernels[layers_ - 1][:, i] + contexts[-1][:, i]
            if self.direct:
                logit = logit + x[:, :i] @ kernels[-1][:i, i]
            logits[:, i] = logit
            x[:, i] = rng.random(n) < expit(logit)
            first += x[:, i : i + 1] * kernels[0][i]
        return logits if return_logits else expit(logits)  # expit: no overflow for large negative logits

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], input_shape[0][-1])

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": list(self.hidden_units),
            "activation": keras.activations.serialize(self.activation),
            "direct": self.direct,
        }
