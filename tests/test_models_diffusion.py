"""Tests of companion.models.diffusion: the cosine schedule, the forward process against its closed
form, the loss, the DDIM step and both samplers against NumPy, fit, save and load, bad input."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from companion.models.diffusion import Diffusion, cosine_alpha_bar, ddim_step, timestep_subsequence

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


def test_the_loss_is_the_mean_squared_error_of_the_noise_estimate():
    model = tiny()
    rng = np.random.default_rng(2)
    eps, noise = (rng.standard_normal((6, 28, 28, 1)).astype("float32") for _ in range(2))
    loss = model.compute_loss(y_pred={"eps": ops.convert_to_tensor(eps), "noise": ops.convert_to_tensor(noise)})
    assert float(ops.convert_to_numpy(loss)) == pytest.approx(np.mean((eps - noise) ** 2), rel=1e-6)
    weights = np.array([1, 0, 0, 2, 0, 1], "float32")
    weighted = model.compute_loss(y_pred={"eps": ops.convert_to_tensor(eps), "noise": ops.convert_to_tensor(noise)},
                                  sample_weight=ops.convert_to_tensor(weights))
    per_example = np.mean((eps - noise) ** 2, axis=(1, 2, 3))
    assert float(ops.convert_to_numpy(weighted)) == pytest.approx(np.sum(per_example * weights) / weights.sum(), rel=1e-6)


def test_an_untrained_model_predicts_no_noise_so_its_loss_is_the_noise_energy():
    """The output convolution starts at zero, so eps_theta = 0 and the loss is mean(noise^2),
    which must then be near 1 (784 standard normal draws per image)."""
    model = tiny()
    images = np.random.default_rng(3).uniform(size=(16, 28, 28, 1)).astype("float32")
    out = model(ops.convert_to_tensor(images), training=True)
    assert np.all(ops.convert_to_numpy(out["eps"]) == 0)
    loss = float(ops.convert_to_numpy(model.compute_loss(y_pred=out)))
    assert loss == pytest.approx(float(np.mean(ops.convert_to_numpy(out["noise"]) ** 2)), rel=1e-6)
    assert abs(loss - 1) < 5 * math.sqrt(2 / (16 * 784))


def test_the_ddim_step_matches_numpy():
    rng = np.random.default_rng(4)
    x_t, eps = rng.standard_normal((2, 3, 28, 28, 1))
    a_t, a_next = 0.3, 0.8
    x0 = (x_t - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
    np.testing.assert_allclose(ddim_step(x_t, eps, a_t, a_next), np.sqrt(a_next) * x0 + np.sqrt(1 - a_next) * eps, rtol=1e-12)
    # On tensors alike
    got = ddim_step(ops.convert_to_tensor(x_t.astype("float32")), ops.convert_to_tensor(eps.astype("float32")), a_t, a_next)
    np.testing.assert_allclose(ops.convert_to_numpy(got), np.sqrt(a_next) * x0 + np.sqrt(1 - a_next) * eps, rtol=1e-4, atol=1e-5)


def test_the_timestep_subsequences():
    assert timestep_subsequence(1000, 4).tolist() == [1000, 667, 334, 1, 0]
    assert timestep_subsequence(10, 10).tolist() == list(range(10, -1, -1))
    assert timestep_subsequence(1000, 1).tolist() == [1000, 0], "one step starts from pure noise too"
    assert len(timestep_subsequence(1000, 250)) == 251


def _numpy_sampler(model, x, sequence, eps_of, sampler, extra):
    """Both samplers, written in NumPy from the papers' formulas, for a known noise predictor."""
    for i, (t, t_next) in enumerate(zip(sequence[:-1], sequence[1:])):
        a_t, a_next = model.alpha_bar[t], model.alpha_bar[t_next]
        x0 = np.clip((x - np.sqrt(1 - a_t) * eps_of(x, t)) / np.sqrt(a_t), -1, 1)
        if t_next == 0:
            x = x0
        elif sampler == "ddim":
            x = np.sqrt(a_next) * x0 + np.sqrt(1 - a_next) * (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
        else:  # the posterior q(x_{t'} | x_t, x0) of the respaced process
            beta = 1 - a_t / a_next
            mean = np.sqrt(a_next) * beta / (1 - a_t) * x0 + np.sqrt(1 - beta) * (1 - a_next) / (1 - a_t) * x
            x = mean + np.sqrt(beta * (1 - a_next) / (1 - a_t)) * extra[i]
    return np.clip((x + 1) / 2, 0, 1)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_the_samplers_match_numpy_for_a_known_noise_predictor(sampler, monkeypatch):
    model = tiny()
    eps_of = lambda x, t: np.tanh(x) * (t / model.timesteps)  # any smooth function of x_t and t
    monkeypatch.setattr(model, "noise_estimate", lambda x, t: eps_of(x, t).astype("float32"))
    steps, n, seed = 5, 3, 7
    got = model.generate(n, seed=seed, steps=steps, sampler=sampler)
    rng = np.random.default_rng(seed)
    sequence = timestep_subsequence(model.timesteps, steps)
    x = rng.standard_normal((n, 28, 28, 1))
    extra = rng.standard_normal((len(sequence) - 1, n, 28, 28, 1)) if sampler == "ddpm" else None
    np.testing.assert_allclose(got, _numpy_sampler(model, x, sequence, eps_of, sampler, extra), atol=2e-5)


def test_fit_then_generate_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = np.random.default_rng(5).uniform(size=(64, 28, 28, 1)).astype("float32")
    history = model.fit(images, batch_size=32, epochs=2, verbose=0)
    assert len(history.history["mse"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    x_t = np.random.default_rng(7).standard_normal((4, 28, 28, 1)).astype("float32")
    eager = ops.convert_to_numpy(model.predict_noise(ops.convert_to_tensor(x_t), ops.full((4,), 7, dtype="int32")))
    np.testing.assert_allclose(model.noise_estimate(x_t, 7), eager, atol=1e-5), "the compiled estimate is the network's"
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
        (lambda: tiny().generate(2, labels=[1, 2]), r"unconditional"),
        (lambda: tiny().fit(np.full((4, 28, 28, 1), 2.0, "float32"), epochs=1, verbose=0), r"`x`.*\[0, 1\]"),
    ],
    ids=["timesteps 0", "two filters", "groups 3", "odd embedding", "seed -1", "n 0", "steps 0", "steps > T",
         "unknown sampler", "labels", "images above 1"],
)
def test_bad_input_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
