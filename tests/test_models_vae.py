"""Tests of companion.models.vae: the VAEs (MLP, convolutional, conditional, and the AR VAE with its
autoregressive decoder), run on every backend (make test runs them under jax and torch too)."""

import keras
import numpy as np
import pytest

from companion import data
from companion.models import ARVAE, VAE, ConditionalVAE, ConvVAE, MLPVAE
from companion.models.vae import gaussian_kl

pytestmark = pytest.mark.backend


# Small versions of each model, so that every backend runs the suite in seconds.
FACTORIES = {
    "mlp": lambda **kw: MLPVAE(latent_dim=2, **kw),
    "conv": lambda **kw: ConvVAE(latent_dim=4, filters=(4, 8), dense_units=16, **kw),
    "conditional": lambda **kw: ConditionalVAE(latent_dim=3, hidden_units=(32, 16), **kw),
}


def labels_for(model, y):
    return y if model.conditional else None


def inputs_for(model, x, y):
    return (x, y) if model.conditional else x


def make(kind, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = FACTORIES[kind](seed=seed, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


@pytest.mark.parametrize("kind", FACTORIES)
def test_vae_shapes_and_dtypes(kind, binary_images):
    x, y = binary_images
    model = make(kind)
    labels = labels_for(model, y[:5])
    mean, logvar = model.encode(x[:5], labels)
    assert mean.shape == logvar.shape == (5, model.latent_dim) and mean.dtype == np.float32
    assert model.sample_posterior(x[:5], labels, seed=0).shape == (5, model.latent_dim)
    probs = model.decode(mean, labels)
    logits = model.decode(mean, labels, return_logits=True)
    assert probs.shape == logits.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)
    assert model.reconstruct(x[:5], labels).shape == (5, 28, 28, 1)
    generated = model.generate(7, labels=np.arange(7) if model.conditional else None, seed=0)
    assert generated.shape == (7, 28, 28, 1) and generated.min() >= 0 and generated.max() <= 1
    terms = model.elbo_terms(x[:5], labels, seed=0)
    assert {k: v.shape for k, v in terms.items()} == {"reconstruction": (5,), "kl": (5,), "elbo": (5,)}
    np.testing.assert_allclose(terms["elbo"], -terms["reconstruction"] - terms["kl"])


def test_vaes_use_the_default_training_step():
    # Only compute_loss is overridden: fit, evaluate and callbacks are Keras's own.
    for cls in (VAE, MLPVAE, ConvVAE, ConditionalVAE, ARVAE):
        assert "train_step" not in vars(cls) and "test_step" not in vars(cls)
    assert "compute_loss" in vars(VAE)


@pytest.mark.parametrize("kind", FACTORIES)
def test_vae_fit_step_lowers_the_loss_on_a_fixed_batch(kind, binary_images):
    x, y = binary_images
    model = make(kind)
    labels = labels_for(model, y)
    noise = np.zeros((len(x), model.latent_dim), np.float32)  # evaluate at z = mean

    def loss():
        return -model.elbo_terms(x, labels, noise=noise)["elbo"].mean()

    before = loss()
    history = model.fit(inputs_for(model, x, y), batch_size=len(x), epochs=1, verbose=0)
    assert set(history.history) >= {"loss", "reconstruction", "kl", "neg_elbo"}
    assert loss() < before


@pytest.mark.parametrize("kind", FACTORIES)
def test_vae_save_load_round_trip(kind, binary_images, tmp_path):
    x, y = binary_images
    model = make(kind)
    model.fit(inputs_for(model, x, y), batch_size=32, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    labels = labels_for(model, y[:8])
    np.testing.assert_array_equal(loaded.encode(x[:8], labels)[0], model.encode(x[:8], labels)[0])
    np.testing.assert_array_equal(
        loaded.elbo_terms(x[:8], labels, seed=3)["elbo"], model.elbo_terms(x[:8], labels, seed=3)["elbo"]
    )
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 2
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_vae_from_config_rebuilds_the_same_architecture():
    model = make("conv")
    clone = ConvVAE.from_config(model.get_config())
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_vae_is_deterministic_for_a_seed(kind, binary_images):
    x, _ = binary_images

    def train(seed):
        model = make(kind, seed=seed)
        model.fit(data.MNISTBatches(x, batch_size=16, binarize="dynamic", seed=seed), epochs=1, verbose=0)
        return model.get_weights()

    first, second, other = train(1), train(1), train(2)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def _numpy_mlp(x, kernels_and_biases, last_linear=True):
    h = x
    for i, (kernel, bias) in enumerate(kernels_and_biases):
        h = h @ kernel + bias
        if not (last_linear and i == len(kernels_and_biases) - 1):
            h = np.maximum(h, 0.0)
    return h


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "grey"])
def test_elbo_matches_an_independent_numpy_computation(binary_images, mnist, binary):
    """-ELBO = sum_i [softplus(l_i) - x_i l_i] + 0.5 sum_j (mu_j^2 + s_j^2 - log s_j^2 - 1)."""
    keras.utils.set_random_seed(4)
    model = MLPVAE(latent_dim=2, hidden_units=(5, 3), seed=0)
    x = binary_images[0][:6] if binary else data.scale(mnist[0][0][:6])
    x = x.reshape(6, 784).astype(np.float64)
    eps = np.random.default_rng(7).standard_normal((6, 2))
    weights = lambda net: [(layer.get_weights()[0].astype(np.float64), layer.get_weights()[1].astype(np.float64))
                           for layer in net.layers if layer.get_weights()]
    h = _numpy_mlp(x, weights(model.encoder))
    mean, logvar = h[:, :2], h[:, 2:]
    z = mean + np.exp(0.5 * logvar) * eps
    logits = _numpy_mlp(z, weights(model.decoder))
    reconstruction = np.sum(np.logaddexp(0.0, logits) - x * logits, axis=1)
    kl = 0.5 * np.sum(mean**2 + np.exp(logvar) - logvar - 1.0, axis=1)

    terms = model.elbo_terms(x.reshape(6, 28, 28).astype(np.float32), noise=eps.astype(np.float32))
    # float32 against float64: each of the 784 pixel terms carries a relative rounding error
    # of about 1e-7, and the sum (about 550 nats) accumulates at most 784 of them, so
    # 784 * 1e-7 * 550 / 550 ~ 1e-4 bounds the relative error.
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-4)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(terms["elbo"], -reconstruction - kl, rtol=1e-4)


def test_kl_is_non_negative_and_zero_exactly_at_the_prior():
    rng = np.random.default_rng(0)
    mean = rng.standard_normal((100, 4)).astype(np.float32)
    logvar = rng.uniform(-3, 3, (100, 4)).astype(np.float32)
    tensor = keras.ops.convert_to_tensor
    kl = keras.ops.convert_to_numpy(gaussian_kl(tensor(mean), tensor(logvar)))
    assert (kl >= 0).all() and (kl > 0).all()
    zero = keras.ops.convert_to_numpy(gaussian_kl(tensor(np.zeros((3, 4), np.float32)), tensor(np.zeros((3, 4), np.float32))))
    assert (zero == 0.0).all()


def test_kl_of_a_model_whose_encoder_outputs_the_prior_is_zero(binary_images):
    model = make("mlp")
    last = model.encoder.get_layer("mean_logvar")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    assert (model.elbo_terms(binary_images[0][:4], seed=0)["kl"] == 0.0).all()


def test_beta_and_kl_warmup_schedule(binary_images):
    model = make("mlp", beta=2.0, kl_warmup_steps=4)
    weights = []
    for step in range(6):
        model.train_steps.assign(float(step))
        weights.append(float(keras.ops.convert_to_numpy(model.kl_weight(training=True))))
    np.testing.assert_allclose(weights, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    assert float(keras.ops.convert_to_numpy(model.kl_weight(training=False))) == 2.0
    model.train_steps.assign(0.0)
    model.fit(binary_images[0], batch_size=16, epochs=1, verbose=0)
    assert float(model.train_steps.numpy()) == 4.0, "one warm-up step per training batch"


def test_free_bits_charge_each_dimension_at_least_its_allowance(binary_images):
    x = binary_images[0][:16]
    model = make("mlp", free_bits=0.5)
    mean, logvar = (m.astype(np.float64) for m in model.encode(x))
    # The loss the model charges, recomputed in NumPy with the same noise.
    noise = np.random.default_rng(3).standard_normal(mean.shape).astype("float32")
    z = (mean + np.exp(0.5 * logvar) * noise).astype("float32")
    logits = model.decode(z, return_logits=True).reshape(16, -1).astype(np.float64)
    flat = x.reshape(16, -1)
    reconstruction = np.sum(np.logaddexp(0, logits) - flat * logits, axis=1)
    kl_dims = 0.5 * (mean**2 + np.exp(logvar) - logvar - 1)
    expected = reconstruction.mean() + np.maximum(kl_dims.mean(axis=0), 0.5).sum()
    outputs = {"logits": keras.ops.convert_to_tensor(logits.reshape(16, 28, 28, 1).astype("float32")),
               "mean": keras.ops.convert_to_tensor(mean.astype("float32")), "logvar": keras.ops.convert_to_tensor(logvar.astype("float32"))}
    charged = float(keras.ops.convert_to_numpy(model.compute_loss(x, y_pred=outputs, training=True)))
    np.testing.assert_allclose(charged, expected, rtol=1e-4)
    # Outside training the loss is the negative ELBO, and so is the reported metric.
    evaluated = float(keras.ops.convert_to_numpy(model.compute_loss(x, y_pred=outputs, training=False)))
    np.testing.assert_allclose(evaluated, reconstruction.mean() + kl_dims.sum(axis=1).mean(), rtol=1e-4)
    assert charged >= evaluated - 1e-3, "free bits only ever add to the loss"
    with pytest.raises(ValueError, match=r"free_bits"):
        make("mlp", free_bits=-1.0)
    assert MLPVAE.from_config(model.get_config()).free_bits == 0.5


def test_conditional_vae_honours_its_labels(binary_images):
    x, y = binary_images
    model = make("conditional")
    model.fit(data.MNISTBatches(x, y, batch_size=16, labels_as_input=True), epochs=1, verbose=0)
    z = np.zeros((10, model.latent_dim), np.float32)
    decoded = model.decode(z, labels=np.arange(10))
    differences = [np.abs(decoded[i] - decoded[j]).max() for i in range(10) for j in range(i + 1, 10)]
    assert min(differences) > 0, "decoding one z with different labels gives different images"
    with pytest.raises(ValueError, match=r"Expected `labels` in \[0, 9\]. Received values in \[0, 10\]"):
        model.generate(2, labels=[0, 10])
    with pytest.raises(ValueError, match=r"needs `labels`"):
        model.generate(2)
    with pytest.raises(ValueError, match=r"Expected `x\[1\]` in \[0, 9\]"):
        model.fit((x, np.full(len(x), 12)), epochs=1, verbose=0)


def test_mlp_vae_dropout_acts_only_in_training(tmp_path):
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype("float32")
    vae = MLPVAE(latent_dim=2, hidden_units=(32, 16), dropout=0.5, seed=0)
    assert sum("dropout" in layer.name for layer in vae.encoder.layers + vae.decoder.layers) == 4
    evaluation = keras.ops.convert_to_numpy(vae.encoder(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vae.encoder(x, training=False)), evaluation)
    assert not np.allclose(keras.ops.convert_to_numpy(vae.encoder(x, training=True)), evaluation)
    path = tmp_path / "dropout.keras"
    vae.save(path)
    assert keras.saving.load_model(path).dropout == 0.5
    with pytest.raises(ValueError, match=r"Expected `dropout` in \[0, 1\). Received: dropout=1.0"):
        MLPVAE(dropout=1.0)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, x: m.encode((x * 255).astype(np.uint8)), TypeError, r"float dtype .* Received: x.dtype=uint8"),
        (lambda m, x: m.encode(x * 2), ValueError, r"values in \[0, 1\]. Received values in \[0, 2\]"),
        (lambda m, x: m.encode(x[:, :27]), ValueError, r"Received: x.shape=\(64, 27, 28\)"),
        (lambda m, x: m.decode(np.zeros((2, 5), np.float32)), ValueError, r"Expected `z` of shape \(n, 2\). Received: z.shape=\(2, 5\)"),
        (lambda m, x: m.generate(0), ValueError, r"Received: n=0"),
        (lambda m, x: m.encode(x, labels=np.zeros(64)), ValueError, r"not conditional"),
        (lambda m, x: m.fit(x * 3, epochs=1, verbose=0), ValueError, r"Expected `x` with values in \[0, 1\]"),
        (lambda m, x: MLPVAE(latent_dim=0), ValueError, r"Expected `latent_dim` to be a positive integer. Received: latent_dim=0"),
        (lambda m, x: MLPVAE(beta=-1), ValueError, r"Received: beta=-1"),
    ],
)
def test_vae_rejects_bad_input(binary_images, call, error, message):
    with pytest.raises(error, match=message):
        call(make("mlp"), binary_images[0])


# ----------------------------------------------------------------------- AR VAE


def test_arvae_logit_of_pixel_i_ignores_pixels_from_i_on(binary_images, small_arvae):
    """Teacher forcing is exact: the logit of pixel i is the same whatever x_i, ..., x_784 are."""
    binary = binary_images[0][:32]
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


def test_arvae_log_likelihood_is_minus_the_bernoulli_nll_of_the_teacher_forced_logits(binary_images, small_arvae):
    binary = binary_images[0][:32]
    model = small_arvae()
    x = binary[:5]
    z = np.random.default_rng(1).standard_normal((5, 3)).astype("float32")
    logits = np.asarray(keras.ops.convert_to_numpy(model.decoder([z, x]))).reshape(5, -1).astype(np.float64)
    expected = -np.sum(np.logaddexp(0.0, logits) - x.reshape(5, -1) * logits, axis=1)
    # float32 sum of 784 terms of about 0.7 nats: relative error below 784 * 6e-8.
    np.testing.assert_allclose(model.log_likelihood(x, z), expected, rtol=1e-4)
    with pytest.raises(ValueError, match=r"Expected one latent per image"):
        model.log_likelihood(x, z[:4])


def test_arvae_sampling_feeds_each_drawn_pixel_to_the_next(small_arvae):
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


def test_arvae_generate_is_deterministic_for_a_seed(small_arvae):
    model = small_arvae()
    a, b, c = model.generate(3, seed=5), model.generate(3, seed=5), model.generate(3, seed=6)
    assert a.shape == (3, 28, 28, 1) and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_arvae_trains_saves_and_loads(binary_images, tmp_path, small_arvae):
    binary = binary_images[0][:32]
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


def test_arvae_has_no_decoder_without_pixels(small_arvae):
    model = small_arvae()
    with pytest.raises(TypeError, match="use `decode` to sample"):
        model._decode(np.zeros((1, 3), "float32"), None)
