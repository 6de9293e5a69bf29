"""Data-parallel training (`companion.training.distribute`, `train --distribute`) on a CPU presented as two devices.

Each case runs in a fresh process, since the device count is fixed when the backend starts:
`XLA_FLAGS=--xla_force_host_platform_device_count=2` for JAX, two logical CPUs for TensorFlow.
The source-sized VAE trains for 16 steps (1,024 images, global batch 128) with plain SGD, whose
steps, unlike Adam's, scale with the gradient, so a wrongly scaled gradient would show.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

SCRIPT = r'''
import contextlib, json, os, sys
from companion.training import distribute
if os.environ["KERAS_BACKEND"] == "tensorflow":
    distribute.split_cpu(2)
import keras
import numpy as np
from companion import data
from companion.models import MLPVAE

(x, _), _ = data.load_mnist()
x = (data.scale(x[:1024]) > 0.5).astype("float32")
STEPS, EPOCHS = 8, 2


class PerStep(keras.callbacks.Callback):
    """The -ELBO of each step (Keras logs running means within an epoch)."""

    def on_train_begin(self, logs=None):
        self.means = []

    def on_train_batch_end(self, batch, logs=None):
        self.means.append(float(logs["neg_elbo"]))


def run(parallel, noise_seed=0):
    keras.utils.set_random_seed(0)
    devices = []
    with (distribute.data_parallel() if parallel else contextlib.nullcontext()) as devices:
        model = MLPVAE(seed=0)
        model.seed_generator = keras.random.SeedGenerator(noise_seed)  # the noise of z only
        model.compile(optimizer=keras.optimizers.SGD(1e-3))
        callback = PerStep()
        model.fit(x, batch_size=128, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[callback])
    means = np.array(callback.means).reshape(EPOCHS, STEPS)
    k = np.arange(1, STEPS + 1)
    steps = k * means - np.concatenate([np.zeros((EPOCHS, 1)), k[:-1] * means[:, :-1]], axis=1)
    return steps.ravel().tolist(), len(devices or [])


out = {}
out["single"], _ = run(False)
out["parallel"], out["devices"] = run(True)
out["other_noise"], _ = run(False, noise_seed=1)
distribute.replica_loss_scale = lambda: 1.0  # the control: replicas' gradients summed unscaled
out["unscaled"], _ = run(True)
print(json.dumps(out))
'''


def trajectories(backend, tmp_path, mnist_dir):
    script = tmp_path / "trajectories.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "KERAS_BACKEND": backend, "COMPANION_MNIST_DIR": str(mnist_dir), "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2, "the parallel run had two devices"
    single = np.array(out["single"])
    assert single[-1] < single[0] - 1, "the single-device run learned"
    return {name: float(np.abs(np.array(out[name]) - single).max()) for name in ("parallel", "other_noise", "unscaled")}


def test_jax_data_parallel_is_the_single_device_computation(tmp_path, mnist_dir):
    gap = trajectories("jax", tmp_path, mnist_dir)
    # DataParallel shards the batch and the compiled step computes the global batch's loss,
    # with the same noise: only the order of float32 sums differs. The loss (~540 nats) is a
    # sum of 100,352 terms per step; reordering it moves it by well under 1e-5 of its value,
    # and 16 steps of SGD do not amplify that by more than a few times.
    assert gap["parallel"] < 540 * 1e-5
    # Another draw of the noise moves the trajectory far more: the test can tell the two apart.
    assert gap["other_noise"] > 20 * 540 * 1e-5
    # JAX's step differentiates the global mean itself: the TensorFlow scale is not used.
    assert gap["unscaled"] < 540 * 1e-5


def test_tensorflow_mirrored_strategy_matches_single_device_training(tmp_path, mnist_dir):
    gap = trajectories("tensorflow", tmp_path, mnist_dir)
    # Each replica draws its own noise for z, so a correct run is the single-device run with
    # other noise: it may differ from it about as much as another noise seed does (2x allows
    # for the spread of a maximum over 16 steps).
    assert gap["parallel"] <= 2 * gap["other_noise"]
    # Without the 1 / replicas loss scale the summed gradient is twice the mean's: SGD then
    # takes double steps, and the same check fails, by far.
    assert gap["unscaled"] > 5 * gap["other_noise"]


@pytest.mark.backend
def test_data_parallel_refuses_pytorch_and_too_few_devices():
    from companion.training import distribute

    if keras.backend.backend() == "torch":
        with pytest.raises(RuntimeError, match="jax and tensorflow"):
            with distribute.data_parallel():
                pass
        return
    # This process sees one device (no XLA_FLAGS, no split CPU): asking for more is refused, by name.
    with pytest.raises(RuntimeError, match="at least 2 devices; found 1"):
        with distribute.data_parallel():
            pass
    with pytest.raises(ValueError, match="count"):
        distribute.split_cpu(0)


def test_command_line_trains_data_parallel_and_says_so_in_the_card(tmp_path, mnist_dir):
    script = tmp_path / "cli.py"
    script.write_text(
        "import os, sys\n"
        "from companion import cli\n"
        "from companion.training import distribute\n"
        "if os.environ['KERAS_BACKEND'] == 'tensorflow':\n"
        "    distribute.split_cpu(2)\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    for backend in ("jax", "tensorflow"):
        out = tmp_path / backend / "mlp_vae.keras"
        argv = ["train", "mlp_vae", "--epochs", "1", "--train-images", "512", "--distribute", "--data-dir", str(mnist_dir),
                "--out", str(out), "--checkpoint", str(tmp_path / backend / "ckpt.keras"), "--verbose", "0",
                "--precision", "float32"]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
        done = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Data-parallel training on 2 devices" in done.stdout
        card = json.loads(out.with_suffix(".json").read_text())
        assert card["distribute"] is True and card["backend"] == backend
        assert card["compile_options"] == {}  # XLA cannot read mirrored variables (Recipe.compile_options)
