"""Tests of companion.models.diffusion: the cosine schedule, the forward process against its closed
form, the loss, the DDIM step and both samplers against NumPy, fit, save and load, bad input."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from companion.models.diffusion import Diffusion, cosine_alpha_bar, ddim_sigma, ddim_step, timestep_subsequence

pytestmark = pytest.mark.backend


def tiny(**kwargs):
    return Diffusion(**{"timesteps": 50, "filters": (8, 8, 8), "embedding_dim": 16, "groups": 4, "seed": 0, **kwargs})


def test_the_cosine_schedule_is_nichol_and_dhariwals():
    T, s = 1000, 0.008
    alpha_bar = cosine_alpha_bar(T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    # Where no beta is clipped (all but the last few steps), alpha_bar_t = f(t) / f(0).
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    unclipped = np.flatnonzero(betas < 0.999)
    assert len(unclipped) > 0.99 * T
    for t in (1, 10, 250, 500, 900, unclipped[-1]):
        assert alpha_bar[t] == pytest.approx(f(t) / f(0), rel=1e-12)
    assert alpha_bar[0] == 1.0 and np.all(np.diff(alpha_bar) < 0), "strictly decreasing from 1"
    assert betas.max() == pytest.approx(0.999) and alpha_bar[-1] < 1e-6, "the last step leaves almost pure noise"
    assert 1 - alpha_bar[1] < 1e-3, "the first step adds little noise"


def test_the_forward_chain_has_the_closed_form_marginal():
    """Running q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t) step by step from x_0 gives
    N(sqrt(alpha_bar_t) x_0, 1 - alpha_bar_t): checked by Monte Carlo, 5 standard errors."""
    T, n = 200, 40000
    alpha_bar = cosine_alpha_bar(T)
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    rng = np.random.default_rng(0)
    x0 = 0.7
    x = np.full(n, x0)
    for t in range(1, T + 1):
        x = math.sqrt(1 - betas[t - 1]) * x + math.sqrt(betas[t - 1]) * rng.standard_normal(n)
        if t in (1, 20, 100, 160, T):
            mean, var = math.sqrt(alpha_bar[t]) * x0, 1 - alpha_bar[t]
            assert abs(x.mean() - mean) < 5 * math.sqrt(var / n), t
            assert abs(x.var() - var) < 5 * var * math.sqrt(2 / n), t


def test_noisy_draws_from_the_closed_form_marginal():
    model = tiny()
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-1, 1, size=(1, 28, 28, 1)).astype("float32")
    n = 8
    for t in (1, 10, 25, 50):
        noise = rng.standard_normal((n, 28, 28, 1)).astype("float32")
        x_t = ops.convert_to_numpy(model.noisy(ops.convert_to_tensor(np.repeat(x0, n, axis=0)),
                                               ops.full((n,), t, dtype="int32"), ops.convert_to_tensor(noise)))
        a = model.alpha_bar[t]
        np.testing.assert_allclose(x_t, math.sqrt(a) * x0 + math.sqrt(1 - a) * noise, atol=1e-5)


def test_the_loss_is_the_mean_squared_error_of_the_networks_estimate():
    model = tiny()
    rng = np.random.default_rng(2)
    out, target = (rng.standard_normal((6, 28, 28, 1)).astype("float32") for _ in range(2))
    y_pred = {"output": ops.convert_to_tensor(out), "target": ops.convert_to_tensor(target)}
    loss = model.compute_loss(y_pred=y_pred)
    assert float(ops.convert_to_numpy(loss)) == pytest.approx(np.mean((out - target) ** 2), rel=1e-6)
    weights = np.array([1, 0, 0, 2, 0, 1], "float32")
    weighted = model.compute_loss(y_pred=y_pred, sample_weight=ops.convert_to_tensor(weights))
    per_example = np.mean((out - target) ** 2, axis=(1, 2, 3))
    assert float(ops.convert_to_numpy(weighted)) == pytest.approx(np.sum(per_example * weights) / weights.sum(), rel=1e-6)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_an_untrained_model_predicts_zero_so_its_loss_is_the_targets_energy(prediction):
    """The output convolution starts at zero, so the estimate is 0 and the loss is mean(target^2).
    The target is the noise ("eps"), or v = sqrt(a_t) noise - sqrt(1 - a_t) x0 ("v"), from the
    timesteps `call` drew; for "eps" the loss must be near 1 (784 standard normal draws per image)."""
    model = tiny(prediction=prediction)
    images = np.random.default_rng(3).uniform(size=(16, 28, 28, 1)).astype("float32")
    out = model(ops.convert_to_tensor(images), training=True)
    assert np.all(ops.convert_to_numpy(out["output"]) == 0)
    noise, t = ops.convert_to_numpy(out["noise"]), ops.convert_to_numpy(out["t"])
    assert t.min() >= 1 and t.max() <= model.timesteps
    a = model.alpha_bar[t].reshape(-1, 1, 1, 1)
    target = noise if prediction == "eps" else np.sqrt(a) * noise - np.sqrt(1 - a) * (images * 2 - 1)
    np.testing.assert_allclose(ops.convert_to_numpy(out["target"]), target, atol=1e-5)
    loss = float(ops.convert_to_numpy(model.compute_loss(y_pred=out)))
    assert loss == pytest.approx(float(np.mean(target**2)), rel=1e-5)
    if prediction == "eps":
        assert abs(loss - 1) < 5 * math.sqrt(2 / (16 * 784))


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_min_snr_weights_the_loss_of_x0_by_min_snr_gamma(prediction):
    """With `snr_gamma`, each example's loss is the squared error of x0_hat weighted by
    min(SNR_t, gamma) (Hang et al. 2023): for an error d in the network's output, x0_hat moves by
    d sqrt(1 - a) / sqrt(a) (eps) or d sqrt(1 - a) (v)."""
    model = tiny(prediction=prediction, snr_gamma=5.0)
    t = np.array([1, 10, 25, 40, 50])
    rng = np.random.default_rng(9)
    out, target = (rng.standard_normal((5, 28, 28, 1)).astype("float32") for _ in range(2))
    loss = float(ops.convert_to_numpy(model.compute_loss(y_pred={
        "output": ops.convert_to_tensor(out), "target": ops.convert_to_tensor(target), "t": ops.convert_to_tensor(t)})))
    a = model.alpha_bar[t]
    snr = a / (1 - a)
    x0_scale = np.sqrt(1 - a) / np.sqrt(a) if prediction == "eps" else np.sqrt(1 - a)
    x0_error = np.mean((out - target) ** 2, axis=(1, 2, 3)) * x0_scale**2
    assert loss == pytest.approx(np.mean(np.minimum(snr, 5.0) * x0_error), rel=1e-4)
    assert snr[0] > 5 > snr[-1], "the cap binds at t = 1 and not at t = T"


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_the_estimates_recover_x0_and_the_noise_from_an_exact_network(prediction, monkeypatch):
    """Given the exact eps (or v) of x_t = sqrt(a) x0 + sqrt(1 - a) noise, `estimates` returns
    x0 and the noise, at every noise level, the first step's (a near 0) included."""
    model = tiny(prediction=prediction)
    rng = np.random.default_rng(8)
    x0 = rng.uniform(-1, 1, (3, 28, 28, 1))
    noise = rng.standard_normal((3, 28, 28, 1))
    for t in (1, 25, model.timesteps):
        a = model.alpha_bar[t]
        x_t = np.sqrt(a) * x0 + np.sqrt(1 - a) * noise
        exact = noise if prediction == "eps" else np.sqrt(a) * noise - np.sqrt(1 - a) * x0
        monkeypatch.setattr(model, "network_estimate", lambda x, t, exact=exact: exact)
        x0_hat, eps_hat = model.estimates(x_t, t)
        np.testing.assert_allclose(eps_hat, noise, atol=1e-9)
        np.testing.assert_allclose(x0_hat, x0, atol=1e-6)
    if prediction == "v":  # where a ~ 1e-6, a v error of 0.01 moves x0_hat by about as much ...
        monkeypatch.setattr(model, "network_estimate", lambda x, t: exact + 0.01)
        assert np.abs(model.estimates(x_t, model.timesteps)[0] - x0).max() < 0.011
    else:  # ... and an eps error of 0.01 by 0.01 / sqrt(a), hundreds of times more
        monkeypatch.setattr(model, "network_estimate", lambda x, t: exact + 0.01)
        assert np.abs(model.estimates(x_t, model.timesteps)[0] - x0).min() > 1.0


def test_the_ddim_step_matches_numpy():
    rng = np.random.default_rng(4)
    x_t, eps = rng.standard_normal((2, 3, 28, 28, 1))
    a_t, a_next = 0.3, 0.8
    x0 = (x_t - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
    np.testing.assert_allclose(ddim_step(x_t, eps, a_t, a_next), np.sqrt(a_next) * x0 + np.sqrt(1 - a_next) * eps, rtol=1e-12)
    # On tensors alike
    got = ddim_step(ops.convert_to_tensor(x_t.astype("float32")), ops.convert_to_tensor(eps.astype("float32")), a_t, a_next)
    np.testing.assert_allclose(ops.convert_to_numpy(got), np.sqrt(a_next) * x0 + np.sqrt(1 - a_next) * eps, rtol=1e-4, atol=1e-5)


def test_the_stochastic_ddim_step_matches_numpy():
    """Song et al.'s eq. 12 with sigma of eq. 16, and at eta = 1 sigma^2 is the variance of the
    posterior q(x_t' | x_t, x_0), as the ancestral sampler draws it: by Bayes, the prior
    x_t' ~ N(sqrt(a_t') x_0, 1 - a_t') and the step x_t | x_t' ~ N(sqrt(a_t / a_t') x_t', 1 - a_t / a_t')
    give a posterior precision 1 / (1 - a_t') + (a_t / a_t') / (1 - a_t / a_t')."""
    rng = np.random.default_rng(5)
    x_t, eps, z = rng.standard_normal((3, 2, 28, 28, 1))
    a_t, a_next = 0.3, 0.8
    beta_tilde = 1 / (1 / (1 - a_next) + (a_t / a_next) / (1 - a_t / a_next))
    assert ddim_sigma(a_t, a_next, 1.0) ** 2 == pytest.approx(beta_tilde, rel=1e-12)
    assert ddim_sigma(a_t, a_next, 0.0) == 0.0
    sigma = 0.5 * math.sqrt(beta_tilde)
    x0 = (x_t - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
    want = np.sqrt(a_next) * x0 + np.sqrt(1 - a_next - sigma**2) * eps + sigma * z
    np.testing.assert_allclose(ddim_step(x_t, eps, a_t, a_next, eta=0.5, noise=z), want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"Expected `noise` for a stochastic DDIM step \(eta=0.5\)"):
        ddim_step(x_t, eps, a_t, a_next, eta=0.5)


def test_the_timestep_subsequences():
    assert timestep_subsequence(1000, 4).tolist() == [1000, 667, 334, 1, 0]
    assert timestep_subsequence(10, 10).tolist() == list(range(10, -1, -1))
    assert timestep_subsequence(1000, 1).tolist() == [1000, 0], "one step starts from pure noise too"
    assert len(timestep_subsequence(1000, 250)) == 251


def _numpy_sampler(model, x, sequence, eps_of, sampler, extra, eta=0.0, prediction="eps", clip=True):
    """Both samplers, written in NumPy from the papers' formulas, for a known network (its output
    the noise or v, Salimans and Ho's x0 = sqrt(a) x_t - sqrt(1 - a) v, eps = sqrt(1 - a) x_t + sqrt(a) v)."""
    for i, (t, t_next) in enumerate(zip(sequence[:-1], sequence[1:])):
        a_t, a_next = model.alpha_bar[t], model.alpha_bar[t_next]
        out = eps_of(x, t)
        if prediction == "eps":
            x0, eps = (x - np.sqrt(1 - a_t) * out) / np.sqrt(a_t), out
        else:
            x0, eps = np.sqrt(a_t) * x - np.sqrt(1 - a_t) * out, np.sqrt(1 - a_t) * x + np.sqrt(a_t) * out
        if clip:
            x0 = np.clip(x0, -1, 1)
            eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
        if t_next == 0:
            x = x0
        elif sampler == "ddim":  # Song et al.'s eq. 12, sigma of eq. 16
            sigma = eta * np.sqrt((1 - a_next) / (1 - a_t) * (1 - a_t / a_next))
            x = np.sqrt(a_next) * x0 + np.sqrt(1 - a_next - sigma**2) * eps + (sigma * extra[i] if eta else 0)
        else:  # the posterior q(x_{t'} | x_t, x0) of the respaced process
            beta = 1 - a_t / a_next
            mean = np.sqrt(a_next) * beta / (1 - a_t) * x0 + np.sqrt(1 - beta) * (1 - a_next) / (1 - a_t) * x
            x = mean + np.sqrt(beta * (1 - a_next) / (1 - a_t)) * extra[i]
    return np.clip((x + 1) / 2, 0, 1)


def _known_predictor(model, monkeypatch):
    eps_of = lambda x, t: np.tanh(x) * (t / model.timesteps)  # any smooth function of x_t and t
    monkeypatch.setattr(model, "network_estimate", lambda x, t: eps_of(x, t).astype("float32"))
    return eps_of


@pytest.mark.parametrize("sampler, eta, prediction, clip", [
    ("ddim", 0.0, "eps", True), ("ddim", 0.5, "eps", True), ("ddim", 1.0, "eps", True), ("ddpm", None, "eps", True),
    ("ddim", 0.0, "v", True), ("ddim", 1.0, "v", True), ("ddpm", None, "v", True), ("ddim", 0.0, "v", False), ("ddim", 1.0, "v", False),
])
def test_the_samplers_match_numpy_for_a_known_network(sampler, eta, prediction, clip, monkeypatch):
    """(Without clipping, x0 from the noise divides by sqrt(alpha_bar_T) ~ 1e-3 and float32 is not
    float64 to 2e-5: clip=False is checked with v, whose x0 stays bounded.)"""
    model = tiny(prediction=prediction)
    eps_of = _known_predictor(model, monkeypatch)
    steps, n, seed = 5, 3, 7
    got = model.generate(n, seed=seed, steps=steps, sampler=sampler, eta=eta, clip=clip)
    rng = np.random.default_rng(seed)
    sequence = timestep_subsequence(model.timesteps, steps)
    x = rng.standard_normal((n, 28, 28, 1))
    extra = rng.standard_normal((len(sequence) - 1, n, 28, 28, 1)) if sampler == "ddpm" or eta else None
    want = _numpy_sampler(model, x, sequence, eps_of, sampler, extra, eta, prediction, clip)
    np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.parametrize("sampler, eta", [("ddim", 1.0), ("ddpm", None)])
def test_the_images_do_not_depend_on_the_batch_size(sampler, eta, monkeypatch):
    """Each image keeps its own starting and fresh noise whatever the batches: with a known
    network, which acts on each image alone, exactly; with a real one, to float32 rounding."""
    model = tiny()
    whole = model.generate(5, seed=3, steps=4, sampler=sampler, eta=eta, batch_size=5)
    np.testing.assert_allclose(model.generate(5, seed=3, steps=4, sampler=sampler, eta=eta, batch_size=2), whole, atol=1e-5)
    _known_predictor(model, monkeypatch)
    whole = model.generate(5, seed=3, steps=4, sampler=sampler, eta=eta, batch_size=5)
    np.testing.assert_array_equal(model.generate(5, seed=3, steps=4, sampler=sampler, eta=eta, batch_size=2), whole)


def test_ddim_at_eta_1_is_the_ancestral_sampler(monkeypatch):
    """sigma^2 at eta = 1 is the posterior's variance and the means agree, so with the same seed
    (the same starting and fresh noise) both samplers draw the same images."""
    model = tiny()
    _known_predictor(model, monkeypatch)
    ddim = model.generate(3, seed=7, steps=5, eta=1.0)
    # Two formulas of one Gaussian step, each within 2e-5 of float64 (the test above), so
    # within 4e-5 of each other.
    np.testing.assert_allclose(ddim, model.generate(3, seed=7, steps=5, sampler="ddpm"), atol=4e-5)
    assert np.abs(model.generate(3, seed=7, steps=5, eta=0.5) - ddim).max() > 1e-2, "eta < 1 draws with less noise"


def test_the_default_eta_is_the_models_and_is_saved_with_the_objective(tmp_path):
    model = tiny(eta=0.5, prediction="v", snr_gamma=5.0)
    path = tmp_path / "diffusion.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert (loaded.eta, loaded.prediction, loaded.snr_gamma) == (0.5, "v", 5.0)
    np.testing.assert_array_equal(loaded.generate(3, seed=3, steps=4, batch_size=2, progress=True),
                                  loaded.generate(3, seed=3, steps=4, batch_size=2)), "a progress bar changes nothing"
    np.testing.assert_allclose(loaded.generate(2, seed=3, steps=4), loaded.generate(2, seed=3, steps=4, eta=0.5), atol=1e-6)
    assert not np.allclose(loaded.generate(2, seed=3, steps=4), loaded.generate(2, seed=3, steps=4, eta=0.0), atol=1e-3)


def test_fit_then_generate_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = np.random.default_rng(5).uniform(size=(64, 28, 28, 1)).astype("float32")
    history = model.fit(images, batch_size=32, epochs=2, verbose=0)
    assert len(history.history["mse"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    x_t = np.random.default_rng(7).standard_normal((4, 28, 28, 1)).astype("float32")
    eager = ops.convert_to_numpy(model.network_output(ops.convert_to_tensor(x_t), ops.full((4,), 7, dtype="int32")))
    np.testing.assert_allclose(model.network_estimate(x_t, 7), eager, atol=1e-5), "the compiled estimate is the network's"
    samples = model.generate(4, seed=1, steps=5)
    assert samples.shape == (4, 28, 28, 1) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, model.generate(4, seed=1, steps=5)), "DDIM is deterministic given the seed"
    assert not np.array_equal(samples, model.generate(4, seed=2, steps=5))
    path = tmp_path / "diffusion.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Diffusion) and loaded.timesteps == 50 and loaded.filters == (8, 8, 8)
    np.testing.assert_allclose(loaded.generate(4, seed=1, steps=5), samples, atol=1e-6)
    ddpm = loaded.generate(4, seed=1, steps=50, sampler="ddpm")
    assert ddpm.shape == (4, 28, 28, 1) and np.isfinite(ddpm).all()


def test_with_averaged_weights_fit_ends_on_the_average_and_can_run_again():
    """Adam's `use_ema`: after `fit` the weights are its moving averages (not the last step's), and
    a second `fit` trains on (on JAX the two shared one buffer, which its next step donated twice)."""
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.5))
    images = np.random.default_rng(6).uniform(size=(64, 28, 28, 1)).astype("float32")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    averages = [ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    weights = [ops.convert_to_numpy(v) for v in model.trainable_variables]
    for average, weight in zip(averages, weights):
        np.testing.assert_array_equal(weight, average)
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    changed = [not np.array_equal(ops.convert_to_numpy(v), w) for v, w in zip(model.trainable_variables, weights)]
    assert any(changed), "the second fit trained"
    assert all(np.isfinite(ops.convert_to_numpy(v)).all() for v in model.trainable_variables)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: tiny(timesteps=0), r"`timesteps`.*Received: timesteps=0"),
        (lambda: tiny(filters=(8, 8)), r"three `filters`"),
        (lambda: tiny(groups=3), r"`groups` to divide"),
        (lambda: tiny(embedding_dim=15), r"even `embedding_dim`"),
        (lambda: tiny(seed=-1), r"`seed`.*Received: seed=-1"),
        (lambda: tiny().generate(0), r"`n`.*Received: n=0"),
        (lambda: tiny().generate(2, steps=0), r"`steps`.*Received: steps=0"),
        (lambda: tiny().generate(2, steps=51), r"`steps` <= timesteps \(50\). Received: steps=51"),
        (lambda: tiny().generate(2, sampler="euler"), r"`sampler`.*Received: sampler='euler'"),
        (lambda: tiny().generate(2, labels=[1, 2]), r"unconditional: it takes no `labels`. Received: labels of type list"),
        (lambda: tiny().generate(2, eta=1.5), r"`eta` to be a finite number >= 0 and <= 1. Received: eta=1.5"),
        (lambda: tiny().generate(2, eta="0"), r"`eta` to be a finite number >= 0 and <= 1. Received: eta='0'"),
        (lambda: tiny().generate(2, sampler="ddpm", eta=0.5), r"`eta` applies to sampler='ddim' only"),
        (lambda: tiny(snr_gamma=0), r"`snr_gamma` to be a finite number > 0. Received: snr_gamma=0"),
        (lambda: tiny(prediction="x0"), r"`prediction`.*Received: prediction='x0'"),
        (lambda: tiny(eta=-0.1), r"`eta` to be a finite number >= 0 and <= 1. Received: eta=-0.1"),
        (lambda: tiny().fit(np.full((4, 28, 28, 1), 2.0, "float32"), epochs=1, verbose=0), r"`x`.*\[0, 1\]"),
        (lambda: tiny(filters=32), r"three `filters` \(28, 14 and 7 pixels\). Received: filters=32"),
        (lambda: tiny().generate(2, batch_size=0), r"`batch_size` to be a positive integer. Received: batch_size=0"),
        (lambda: tiny().generate(2, batch_size=2.0), r"`batch_size` to be a positive integer. Received: batch_size=2.0"),
        (lambda: tiny().estimates(np.zeros((1, 28, 28, 1), "float32"), 0), r"timestep `t` in \[1, 50\]. Received: t=0"),
        (lambda: tiny().estimates(np.zeros((1, 28, 28, 1), "float32"), 51), r"timestep `t` in \[1, 50\]. Received: t=51"),
        (lambda: tiny().estimates(np.zeros((1, 28, 28, 1), "float32"), 1.5), r"timestep `t` in \[1, 50\]. Received: t=1.5"),
        (lambda: ddim_sigma(0.8, 0.3, 1.0), r"a step towards less noise\). Received: alpha_bar_t=0.8, alpha_bar_next=0.3"),
    ],
    ids=["timesteps 0", "two filters", "groups 3", "odd embedding", "seed -1", "n 0", "steps 0", "steps > T",
         "unknown sampler", "labels", "eta 1.5", "eta a string", "eta with ddpm", "snr_gamma 0", "prediction x0", "model eta -0.1",
         "images above 1", "filters an int", "batch_size 0", "batch_size a float", "t 0", "t > T", "t a float", "sigma backwards"],
)
def test_bad_input_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
