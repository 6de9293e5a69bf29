"""A denoising diffusion model for 28x28 images (Ho et al. 2020).

The forward process adds Gaussian noise in `timesteps` steps; its marginal has a closed form,

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),

with `alpha_bar_t` from the cosine schedule of Nichol and Dhariwal (2021) (`cosine_alpha_bar`).
A U-Net learns to predict, from `x_t` and `t`, either the noise that made `x_t` from `x_0`
(`prediction="eps"`; the loss is the "simple" one of Ho et al., the mean squared error of that
prediction, with `t` drawn uniformly) or v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x_0
(`prediction="v"`, Salimans and Ho 2022: the same squared error of the noise, weighted by
1 / alpha_bar_t, and an estimate of x_0 that stays bounded where alpha_bar_t is near 0).
`snr_gamma` adds the Min-SNR-gamma weights of Hang et al. (2023). Images in [0, 1] are mapped
to [-1, 1] for the process and back for the samples.

Sampling runs the process backwards from pure noise over a chosen subsequence of the
timesteps (`steps` of them, evenly spaced):

* `sampler="ddpm"`: the ancestral sampler of Ho et al., each step a draw from the Gaussian
  posterior q(x_{t'} | x_t, x_0) with x_0 predicted from the noise estimate (with fewer steps
  than `timesteps`, the respaced process of Nichol and Dhariwal);
* `sampler="ddim"`: DDIM (Song et al. 2021), x_{t'} = sqrt(alpha_bar_{t'}) x0_hat +
  sqrt(1 - alpha_bar_{t'} - sigma^2) eps_hat + sigma z, where `eta` scales sigma from 0
  (deterministic given the starting noise) to 1 (the ancestral sampler's variance).

The network is a small U-Net at 28, 14 and 7 pixels, built like `companion.models.denoiser`'s
(3x3 convolutions, stride-2 downsampling, transposed-convolution upsampling, skip
connections), with residual blocks that add a learned projection of a sinusoidal timestep
embedding, and group normalization.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from companion import validation
from companion.models import _fit
from companion.models._seeded import SeedStateMixin
from companion.training.distribute import scale_for_replicas

__all__ = ["Diffusion", "cosine_alpha_bar", "ddim_sigma", "ddim_step", "ddim_update", "timestep_subsequence"]

SAMPLERS = ("ddim", "ddpm")
PREDICTIONS = ("eps", "v")


def cosine_alpha_bar(timesteps, s=0.008, max_beta=0.999):
    """alpha_bar_t for t = 0 .. `timesteps` under the cosine schedule (float64, alpha_bar_0 = 1).

    alpha_bar_t = f(t) / f(0) with f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2); each step's
    beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} is clipped at `max_beta`, as Nichol and Dhariwal
    do, so that the last steps (where alpha_bar reaches 0) stay finite.
    """
    timesteps = validation.positive_int("timesteps", timesteps)
    t = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], max_beta)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def timestep_subsequence(timesteps, steps):
    """`steps` timesteps from `timesteps` down to 1, evenly spaced (the first is `timesteps`, the
    last 1 unless `steps` is 1), then 0: the steps a sampler takes."""
    steps = validation.positive_int("steps", steps)
    if steps > timesteps:
        raise ValueError(f"Expected `steps` <= timesteps ({timesteps}). Received: steps={steps}")
    sequence = np.unique(np.round(np.linspace(timesteps, 1, steps)).astype(int))[::-1]
    return np.concatenate([sequence, [0]])


def ddim_sigma(alpha_bar_t, alpha_bar_next, eta):
    """The standard deviation of DDIM's fresh noise (Song et al. 2021, eq. 16):
    sigma = eta * sqrt((1 - a_t') / (1 - a_t)) * sqrt(1 - a_t / a_t'). eta = 0 is deterministic DDIM;
    eta = 1 gives the posterior's variance, the ancestral sampler of the respaced process."""
    if not (0.0 < alpha_bar_t < 1.0 and alpha_bar_t <= alpha_bar_next <= 1.0):
        raise ValueError("Expected 0 < alpha_bar_t < 1 and alpha_bar_t <= alpha_bar_next <= 1 (a step towards less noise). "
                         f"Received: alpha_bar_t={alpha_bar_t}, alpha_bar_next={alpha_bar_next}")
    return eta * math.sqrt((1.0 - alpha_bar_next) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_next))


def ddim_update(x0, eps, alpha_bar_t, alpha_bar_next, eta=0.0, noise=None):
    """DDIM's x_{t'} from the estimates x0_hat and eps_hat at x_t (Song et al. 2021, eq. 12):
    sqrt(a_t') x0_hat + sqrt(1 - a_t' - sigma^2) eps_hat + sigma noise, sigma = `ddim_sigma(.., eta)`.
    With eta = 0 (the default) the step is deterministic and `noise` unused."""
    sigma = ddim_sigma(alpha_bar_t, alpha_bar_next, eta)
    x_next = math.sqrt(alpha_bar_next) * x0 + math.sqrt(max(1.0 - alpha_bar_next - sigma**2, 0.0)) * eps
    if sigma == 0.0:
        return x_next
    if noise is None:
        raise ValueError(f"Expected `noise` for a stochastic DDIM step (eta={eta}). Received: noise=None")
    return x_next + sigma * noise


def ddim_step(x_t, eps, alpha_bar_t, alpha_bar_next, eta=0.0, noise=None):
    """One DDIM step from x_t to x_{t'}, given the predicted noise `eps`:
    x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t), then `ddim_update`. Works on NumPy arrays or
    tensors alike; the caller clips x0_hat if it wants to (the samplers call `ddim_update`
    with their x0_hat, which they need not recompute, in float32, by dividing by sqrt(a_t) ~ 0)."""
    x0 = (x_t - math.sqrt(1.0 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)
    return ddim_update(x0, eps, alpha_bar_t, alpha_bar_next, eta, noise)


def _sinusoidal(t, dim):
    """The transformer's sinusoidal embedding of timesteps `t` `(n, 1)` (float), `(n, dim)`."""
    half = dim // 2
    frequencies = np.exp(-math.log(10000.0) * np.arange(half) / half).astype("float32")
    angles = t * ops.convert_to_tensor(frequencies[None, :])
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


@keras.saving.register_keras_serializable(package="companion")
class Diffusion(SeedStateMixin, keras.Model):
    """A DDPM with a small U-Net, for 28x28 images in [0, 1].

    Args:
        timesteps: T, the number of steps of the forward process.
        filters: channels at 28, 14 and 7 pixels.
        blocks: residual blocks per resolution on the way down (one more on the way up).
        embedding_dim: size of the timestep embedding.
        groups: groups of the group normalizations (divides every entry of `filters`).
        prediction: what the network predicts, "eps" (the noise) or "v".
        snr_gamma: if set, the loss is weighted by Min-SNR-gamma (`min_snr_weight`).
        eta: DDIM's default eta in `generate`, in [0, 1].
        seed: seed of the training noise and timesteps.
    """

    conditional = False  # unconditional: `generate` takes no labels

    def __init__(self, timesteps=1000, filters=(32, 64, 64), blocks=1, embedding_dim=128, groups=8, prediction="eps", snr_gamma=None,
                 eta=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.prediction = validation.one_of("prediction", prediction, PREDICTIONS)
        if snr_gamma is not None:
            snr_gamma = validation.number("snr_gamma", snr_gamma, low=0, low_open=True)
        self.snr_gamma = snr_gamma
        self.eta = self._check_eta(eta)  # DDIM's default eta (see `generate`)
        self.timesteps = validation.positive_int("timesteps", timesteps)
        if isinstance(filters, (str, bytes)) or not hasattr(filters, "__len__") or len(filters) != 3:
            raise ValueError(f"Expected three `filters` (28, 14 and 7 pixels). Received: filters={filters!r}")
        self.filters = tuple(validation.positive_int("filters", f) for f in filters)
        self.blocks = validation.positive_int("blocks", blocks)
        self.embedding_dim = validation.positive_int("embedding_dim", embedding_dim)
        if self.embedding_dim % 2:
            raise ValueError(f"Expected an even `embedding_dim`. Received: embedding_dim={embedding_dim}")
        self.groups = validation.positive_int("groups", groups)
        if any(f % self.groups for f in self.filters):
            raise ValueError(f"Expected `groups` to divide every entry of filters {self.filters}. Received: groups={groups}")
        self.seed = validation.seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.alpha_bar = cosine_alpha_bar(self.timesteps)
        self.network = self._build_network()
        self.mse_tracker = keras.metrics.Mean(name="mse")
        self.built = True

    # ------------------------------------------------------------------ network

    def _block(self, h, embedding, channels, name):
        skip = h if h.shape[-1] == channels else layers.Conv2D(channels, 1, name=f"{name}_skip")(h)
        h = layers.GroupNormalization(self.groups, name=f"{name}_norm1")(h)
        h = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv1")(layers.Activation("swish")(h))
        h = h + layers.Reshape((1, 1, channels))(layers.Dense(channels, name=f"{name}_time")(embedding))
        h = layers.GroupNormalization(self.groups, name=f"{name}_norm2")(h)
        h = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(layers.Activation("swish")(h))
        return layers.Add(name=f"{name}_add")([skip, h])

    def _build_network(self):
        f28, f14, f7 = self.filters
        images = keras.Input(validation.IMAGE_SHAPE, name="x_t")
        t = keras.Input((1,), name="t")
        embedding = _sinusoidal(t, self.embedding_dim)
        embedding = layers.Dense(self.embedding_dim, activation="swish", name="time_dense1")(embedding)
        embedding = layers.Dense(self.embedding_dim, activation="swish", name="time_dense2")(embedding)

        h = layers.Conv2D(f28, 3, padding="same", name="stem")(images)
        skips = []
        for level, (channels, size) in enumerate(((f28, 28), (f14, 14), (f7, 7))):
            if level:
                h = layers.Conv2D(channels, 3, strides=2, padding="same", name=f"down{size}")(h)
            for i in range(self.blocks):
                h = self._block(h, embedding, channels, f"enc{size}_{i}")
            skips.append(h)
        h = self._block(h, embedding, f7, "middle")
        for channels, size in ((f7, 7), (f14, 14), (f28, 28)):
            if size != 7:
                h = layers.Conv2DTranspose(channels, 3, strides=2, padding="same", name=f"up{size}")(h)
            h = layers.Concatenate(name=f"cat{size}")([h, skips.pop()])
            h = self._block(h, embedding, channels, f"dec{size}")
        h = layers.Activation("swish")(layers.GroupNormalization(self.groups, name="out_norm")(h))
        eps = layers.Conv2D(1, 3, padding="same", kernel_initializer="zeros", name="eps")(h)
        return keras.Model([images, t], eps, name="unet")

    def network_output(self, x_t, t, training=False):
        """The network's eps (or v) for tensors `x_t` `(n, 28, 28, 1)` and integer timesteps `t` `(n,)`."""
        t = ops.reshape(ops.cast(t, "float32"), (-1, 1))
        return ops.cast(self.network([x_t, t], training=training), "float32")

    # ------------------------------------------------------------------ training

    def _alpha_bar_at(self, t):
        return ops.take(ops.convert_to_tensor(self.alpha_bar.astype("float32")), t)

    def noisy(self, x0, t, noise):
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, for `x0` in [-1, 1] (tensors)."""
        a = ops.reshape(self._alpha_bar_at(t), (-1, 1, 1, 1))
        return ops.sqrt(a) * x0 + ops.sqrt(1.0 - a) * noise

    def call(self, inputs, training=False):
        """The network's output and its target for a batch of images: the noise (`prediction`
        "eps"), or v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x0 ("v")."""
        x0 = ops.reshape(ops.cast(inputs, "float32"), (-1, *validation.IMAGE_SHAPE)) * 2.0 - 1.0
        n = ops.shape(x0)[0]
        t = keras.random.randint((n,), 1, self.timesteps + 1, seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(x0), seed=self.seed_generator)
        output = self.network_output(self.noisy(x0, t, noise), t, training=training)
        if self.prediction == "eps":
            return {"output": output, "target": noise, "noise": noise, "t": t}
        a = ops.reshape(self._alpha_bar_at(t), (-1, 1, 1, 1))
        return {"output": output, "target": ops.sqrt(a) * noise - ops.sqrt(1.0 - a) * x0, "noise": noise, "t": t}

    def min_snr_weight(self, t):
        """The Min-SNR-gamma weights (Hang et al. 2023) of timesteps `t`: the loss of x0 weighted by
        min(SNR_t, gamma), SNR_t = alpha_bar_t / (1 - alpha_bar_t), written for the network's
        target: min(SNR, gamma) / SNR for eps, min(SNR, gamma) / (SNR + 1) for v."""
        a = self._alpha_bar_at(t)
        snr = a / (1.0 - a)
        return ops.minimum(snr, self.snr_gamma) / (snr if self.prediction == "eps" else snr + 1.0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_example = ops.mean(ops.square(y_pred["output"] - y_pred["target"]), axis=(1, 2, 3))
        if self.snr_gamma is not None:
            per_example = per_example * self.min_snr_weight(y_pred["t"])
        if sample_weight is None:
            loss = ops.mean(per_example)
        else:
            sample_weight = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            loss = ops.sum(per_example * sample_weight) / ops.sum(sample_weight)
        self.mse_tracker.update_state(per_example, sample_weight=sample_weight)
        return scale_for_replicas(loss)

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, np.ndarray):
            validation.images("x", x)
        return _fit.fit(super().fit, self, x, y, args, kwargs)

    # ------------------------------------------------------------------ sampling (NumPy out)

    def generate(self, n, labels=None, seed=None, steps=50, sampler="ddim", batch_size=500, clip=True, eta=None, progress=False):
        """Draws `n` images `(n, 28, 28, 1)` in [0, 1] by `steps` steps of `sampler` ("ddim" or "ddpm").

        `eta` (DDIM only, in [0, 1]; default `self.eta`) scales DDIM's fresh noise: 0 is
        deterministic, 1 the ancestral sampler's variance. The same `seed` gives the same starting
        noise and the same fresh noise for either sampler, so DDIM with eta = 1 draws the images
        the ancestral sampler draws. `clip` clips each step's x0 estimate to [-1, 1], as Ho et al. do.
        `progress` shows a progress bar over the steps; each step runs the network on batches of
        `batch_size` images; the images do not depend on `batch_size` (up to floating-point rounding).
        """
        n = validation.positive_int("n", n)
        batch_size = validation.positive_int("batch_size", batch_size)
        if labels is not None:
            raise ValueError(f"Diffusion is unconditional: it takes no `labels`. Received: labels of type {type(labels).__name__}")
        sampler = validation.one_of("sampler", sampler, SAMPLERS)
        if sampler == "ddpm" and eta is not None:
            raise ValueError(f"`eta` applies to sampler='ddim' only (the ancestral sampler is eta = 1). Received: eta={eta!r}")
        eta = self._check_eta(self.eta if eta is None else eta) if sampler == "ddim" else 1.0
        sequence = timestep_subsequence(self.timesteps, steps)
        rng = np.random.default_rng(validation.seed("seed", seed))
        x = rng.standard_normal((n, *validation.IMAGE_SHAPE)).astype("float32")
        parts = _fit.chunks(n, batch_size)
        pairs = list(zip(sequence[:-1], sequence[1:]))
        if progress:
            from tqdm.auto import tqdm

            pairs = tqdm(pairs, desc=f"{sampler.upper()}, {len(pairs)} steps, {n} images in batches of {batch_size}")
        for t, t_next in pairs:
            # Each step's fresh noise for all n images, drawn step by step: the stream of one draw
            # of every step at once, in memory for one step (n x 784 numbers, not steps x n x 784).
            noise = rng.standard_normal(x.shape).astype("float32") if eta > 0 else None
            x = np.concatenate([self._step(x[part], int(t), int(t_next), sampler, eta, None if noise is None else noise[part], clip)
                                for part in parts])
        return np.clip((x + 1.0) / 2.0, 0.0, 1.0)

    @staticmethod
    def _check_eta(eta):
        return validation.number("eta", eta, low=0.0, high=1.0)

    def network_estimate(self, x_t, t):
        """The network's output (eps or v, see `prediction`) as a NumPy array, for a NumPy batch
        `x_t` `(n, 28, 28, 1)` at one integer timestep `t`, through its compiled predict function."""
        column = np.full((len(x_t), 1), float(t), dtype="float32")
        return np.asarray(self.network.predict_on_batch([x_t, column]), dtype="float32")

    def estimates(self, x_t, t):
        """(x0_hat, eps_hat) at integer timestep `t` >= 1, for a NumPy batch `x_t`: what the samplers use.

        From eps_hat, x0_hat = (x_t - sqrt(1 - a) eps_hat) / sqrt(a); from v_hat, x0_hat =
        sqrt(a) x_t - sqrt(1 - a) v_hat and eps_hat = sqrt(1 - a) x_t + sqrt(a) v_hat, which stay
        exact where a = alpha_bar_t is near 0 (the first steps, where 1 / sqrt(a) would amplify
        the noise estimate's error)."""
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= self.timesteps:
            raise ValueError(f"Expected an integer timestep `t` in [1, {self.timesteps}]. Received: t={t!r}")
        a = float(self.alpha_bar[t])
        out = self.network_estimate(x_t, t)
        if self.prediction == "eps":
            return (x_t - math.sqrt(1.0 - a) * out) / math.sqrt(a), out
        return math.sqrt(a) * x_t - math.sqrt(1.0 - a) * out, math.sqrt(1.0 - a) * x_t + math.sqrt(a) * out

    def _step(self, x, t, t_next, sampler, eta, noise, clip):
        """One sampler step of a batch `x` from timestep `t` to `t_next` (`noise`: its fresh noise)."""
        a_t, a_next = float(self.alpha_bar[t]), float(self.alpha_bar[t_next])
        x0, eps = self.estimates(x, t)
        if clip:
            x0 = np.clip(x0, -1.0, 1.0)
        if t_next == 0:
            return x0.astype("float32")
        if sampler == "ddim":
            if clip:  # the noise estimate consistent with the clipped x0 keeps DDIM's update exact
                eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
            return ddim_update(x0, eps, a_t, a_next, eta, noise).astype("float32")
        beta = 1.0 - a_t / a_next  # the respaced step's beta
        mean = (math.sqrt(a_next) * beta / (1.0 - a_t)) * x0 + (math.sqrt(1.0 - beta) * (1.0 - a_next) / (1.0 - a_t)) * x
        variance = beta * (1.0 - a_next) / (1.0 - a_t)  # the posterior's, beta tilde
        return (mean + math.sqrt(variance) * noise).astype("float32")

    def get_config(self):
        return {**super().get_config(), "timesteps": self.timesteps, "filters": list(self.filters), "blocks": self.blocks,
                "embedding_dim": self.embedding_dim, "groups": self.groups, "prediction": self.prediction,
                "snr_gamma": self.snr_gamma, "eta": self.eta, "seed": self.seed}
