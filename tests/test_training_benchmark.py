"""Tests of companion.training.benchmark: the FLOP count of a training step, the SGEMM rate, the timing
loops, throughput on one backend or several, mixed precision."""

import time
import types

import keras
import numpy as np
import pytest

from companion import recipes
from companion.training import benchmark


def dense_macs(network):
    """Multiply-adds of one example through the network's Dense layers."""
    return sum(layer.kernel.shape[0] * layer.kernel.shape[1] for layer in network.layers if isinstance(layer, keras.layers.Dense))


@pytest.mark.backend
def test_train_step_flops_of_the_mlp_vae_match_the_count_of_its_matrix_products(mnist_dir):
    if keras.backend.backend() != "jax":
        with pytest.raises(RuntimeError, match="KERAS_BACKEND=jax"):
            benchmark.train_step_flops("mlp_vae", batch_size=8)
        return
    model = recipes.get("mlp_vae").build(0)
    macs = dense_macs(model.encoder) + dense_macs(model.decoder)
    first = model.encoder.get_layer("encoder_dense_0").kernel.shape
    # Per example: forward 2 * macs; backward 4 * macs (input and weight gradients), less the
    # input gradient of the first layer, which nothing needs and XLA removes.
    matmul = 6 * macs - 2 * first[0] * first[1]
    # The difference of two batch sizes holds the per-example work only (the optimizer's update
    # of the weights costs the same at any batch size and cancels).
    per_example = (benchmark.train_step_flops("mlp_vae", 128) - benchmark.train_step_flops("mlp_vae", 64)) / 64
    # Besides the products, XLA counts element-wise work: activations, the sampling of z and
    # the Bernoulli likelihood, forward and backward. At most 30 operations for each of the
    # 1,764 activations of an example (input, hidden units, logits) allows about a tenth more.
    activations = 784 + sum(layer.units for layer in model.encoder.layers + model.decoder.layers
                            if isinstance(layer, keras.layers.Dense))
    assert matmul <= per_example <= matmul + 30 * activations


@pytest.mark.backend
def test_sgemm_rate_is_measured_and_checks_its_arguments():
    rate = benchmark.sgemm_rate(n=256, repeats=3)
    # Two cores can neither do less than a hundred million nor more than ten trillion float32
    # operations a second; a wrong operation count (n^2 or n^4) would fall outside.
    assert 1e8 < rate < 1e13
    with pytest.raises(ValueError, match="repeats"):
        benchmark.sgemm_rate(n=16, repeats=0)


class _SleepingModel:
    """Stands in for a Keras model in `timed_fits`: each step of `fit` takes `step_seconds`."""

    def __init__(self, step_seconds, calls=None):
        self.step_seconds, self.fits, self.calls = step_seconds, [], calls if calls is not None else []

    def fit(self, batches, epochs, steps_per_epoch, verbose):
        self.fits.append(steps_per_epoch)
        self.calls.append(self)  # a list shared by several models records the order of their fits
        time.sleep(self.step_seconds * steps_per_epoch)
        return types.SimpleNamespace(history={"loss": [0.0]})


@pytest.mark.backend
def test_timed_fits_calibrates_the_steps_so_that_a_run_lasts_min_seconds():
    model = _SleepingModel(0.01)
    runs, _, steps = benchmark.timed_fits(model, range(1000), repeats=3, batch_size=8, min_seconds=0.2)
    # Calibration: a 2-step fit measures at least 10 ms a step (sleep never returns early), so
    # the next try has at most ceil(0.2 / 0.01) = 20 steps, and 20 steps sleep 0.2 s: enough,
    # so never more than 20. Scheduler delay lengthens a try and can end the search a step or
    # two early; fewer than 10 steps would take 0.1 s of delay. Without calibration: 2.
    assert 10 <= steps <= 20
    assert model.fits[:2] == [2, 2] and model.fits[-4:] == [steps] * 4  # warm-up; tries ending with `steps`; 3 runs
    # The batches limit a run; an explicit `steps` skips the calibration.
    assert benchmark.timed_fits(_SleepingModel(0.001), range(5), repeats=1, batch_size=8, min_seconds=1.0)[2] == 5
    model = _SleepingModel(0.001)
    assert benchmark.timed_fits(model, range(100), repeats=2, batch_size=8, steps=7)[2] == 7
    assert model.fits == [7, 7, 7]  # warm-up and two timed runs


@pytest.mark.backend
def test_interleaved_fits_time_each_model_once_per_round():
    calls = []
    fast, slow = _SleepingModel(0.001, calls), _SleepingModel(0.004, calls)
    (fast_runs, _, fast_steps), (slow_runs, _, slow_steps) = benchmark.interleaved_fits(
        [(fast, range(1000)), (slow, range(1000))], repeats=3, batch_size=4, min_seconds=0.05)
    # Each model is calibrated on its own: the faster one needs more steps to fill 0.05 s.
    assert fast_steps > slow_steps
    # After both calibrations, the timed runs alternate: fast, slow, fast, slow, fast, slow.
    assert calls[-6:] == [fast, slow] * 3 and len(fast_runs) == len(slow_runs) == 3
    # A step sleeps 1 and 4 ms: the fast model's runs give at most 4 / 0.001 images per second.
    assert max(fast_runs) <= 4 / 0.001 and max(slow_runs) <= 4 / 0.004 < min(fast_runs)


def test_bench_times_a_second_model_in_the_same_rounds():
    import keras

    from companion import data, recipes
    from companion.training import benchmark

    recipe = recipes.get("mlp_vae")
    other = recipe.build(1)
    recipe.compile(other, steps_per_epoch=4, epochs=1)
    (x, y), _ = data.load_mnist()
    batches = recipe.batches(data.scale(x[:128]), y[:128], batch_size=32)
    result = benchmark.throughput("mlp_vae", batch_size=32, steps=3, repeats=3, alongside=(other, batches))
    assert len(result["runs"]) == len(result["alongside_runs"]) == 3 and result["alongside_steps"] == 3
    assert all(r > 0 for r in result["alongside_runs"])
    assert int(keras.ops.convert_to_numpy(other.optimizer.iterations)) == 3 + 3 * 3  # warm-up, three timed runs


def test_bench_in_a_subprocess_and_its_argument_checks():
    import keras

    from companion.training import benchmark

    [result] = benchmark.compare_backends("mlp_gan", [keras.backend.backend()], batch_size=16, steps=2, repeats=2)
    assert result["backend"] == keras.backend.backend() and result["model"] == "mlp_gan" and len(result["runs"]) == 2
    with pytest.raises(ValueError, match="Expected `steps` to be a positive integer. Received: steps=0"):
        benchmark.throughput("mlp_vae", steps=0)


@pytest.mark.parametrize("name", ["acgan", "classifier"])
def test_the_outputs_check_sees_a_nan_weight(name):
    """Samples (conditional ones here) or predictions: finite as built, not once a weight is NaN."""
    import keras

    from companion import recipes
    from companion.training import benchmark

    recipe = recipes.get(name)
    model = recipe.build(0)
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 28, 28, 1)).astype("float32"), np.arange(4)
    model(x) if name == "classifier" else model.generate(1, labels=[0])  # builds the weights
    assert benchmark._outputs_finite(model, recipe, x, y)
    weight = (model.generator if name == "acgan" else model).weights[-1]
    weight.assign(keras.ops.full(weight.shape, float("nan")))
    assert not benchmark._outputs_finite(model, recipe, x, y)


@pytest.mark.backend
@pytest.mark.parametrize("name", ["mlp_vae", "mlp_gan"])
def test_mixed_precision_training_stays_finite_and_restores_the_policy(name):
    import keras

    from companion.training import benchmark

    before = keras.config.dtype_policy().name
    result = benchmark.throughput(name, batch_size=16, steps=2, repeats=1, mixed_precision=True)
    assert result["mixed_precision"] and result["final_loss_finite"]
    assert keras.config.dtype_policy().name == before
