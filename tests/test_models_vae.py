"""Tests of the VAEs, run on every backend (make test runs them under jax and torch too)."""

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


@pytest.fixture(scope="module")
def images(mnist):
    (x_train, y_train), _ = mnist
    return data.binarize_static(x_train[:64], seed=0), y_train[:64].astype("int32")


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
def test_vae_shapes_and_dtypes(kind, images):
    x, y = images
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
def test_vae_fit_step_lowers_the_loss_on_a_fixed_batch(kind, images):
    x, y = images
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
def test_vae_save_load_round_trip(kind, images, tmp_path):
    x, y = images
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
def test_vae_is_deterministic_for_a_seed(kind, images):
    x, _ = images

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
def test_elbo_matches_an_independent_numpy_computation(images, mnist, binary):
    """-ELBO = sum_i [softplus(l_i) - x_i l_i] + 0.5 sum_j (mu_j^2 + s_j^2 - log s_j^2 - 1)."""
    keras.utils.set_random_seed(4)
    model = MLPVAE(latent_dim=2, hidden_units=(5, 3), seed=0)
    x = images[0][:6] if binary else data.scale(mnist[0][0][:6])
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


def test_kl_of_a_model_whose_encoder_outputs_the_prior_is_zero(images):
    model = make("mlp")
    last = model.encoder.get_layer("mean_logvar")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    assert (model.elbo_terms(images[0][:4], seed=0)["kl"] == 0.0).all()


def test_beta_and_kl_warmup_schedule(images):
    model = make("mlp", beta=2.0, kl_warmup_steps=4)
    weights = []
    for step in range(6):
        model.train_steps.assign(float(step))
        weights.append(float(keras.ops.convert_to_numpy(model.kl_weight(training=True))))
    np.testing.assert_allclose(weights, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    assert float(keras.ops.convert_to_numpy(model.kl_weight(training=False))) == 2.0
    model.train_steps.assign(0.0)
    model.fit(images[0], batch_size=16, epochs=1, verbose=0)
    assert float(model.train_steps.numpy()) == 4.0, "one warm-up step per training batch"


def test_free_bits_charge_each_dimension_at_least_its_allowance(images):
    x = images[0][:16]
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


def test_kl_per_dimension_and_active_units_from_the_encoder(images):
    from companion import metrics

    x = images[0][:32]
    model = make("conv")
    mean, logvar = (m.astype(np.float64) for m in model.encode(x))
    per_dimension = metrics.kl_per_dimension(model, x)
    assert per_dimension.shape == (model.latent_dim,) and (per_dimension >= 0).all()
    # Their sum is the KL term of the ELBO, which gaussian_kl computes on its own.
    total = keras.ops.convert_to_numpy(gaussian_kl(keras.ops.convert_to_tensor(mean), keras.ops.convert_to_tensor(logvar)))
    np.testing.assert_allclose(per_dimension.sum(), total.mean(), rtol=1e-5)
    count, variances = metrics.active_units(model, x, threshold=0.01)
    np.testing.assert_allclose(variances, mean.var(axis=0), rtol=1e-6)
    assert count == int(np.sum(mean.var(axis=0) > 0.01))
    # An encoder that ignores its input uses no dimension, and its KL is the prior's: zero.
    last = model.encoder.get_layer("mean_logvar")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    assert metrics.active_units(model, x)[0] == 0 and np.allclose(metrics.kl_per_dimension(model, x), 0.0)
    with pytest.raises(ValueError, match=r"threshold"):
        metrics.active_units(model, x, threshold=0)


def test_conditional_vae_honours_its_labels(images):
    x, y = images
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
def test_vae_rejects_bad_input(images, call, error, message):
    with pytest.raises(error, match=message):
        call(make("mlp"), images[0])
