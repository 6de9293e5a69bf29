"""Tests of the command line, the recipes and the weights loader (on small, quick runs)."""

import json

import numpy as np
import pytest

from companion import cli, recipes, weights


def test_command_line_names_every_recipe():
    assert tuple(recipes.RECIPES) == cli.NAMES


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    folder = tmp_path_factory.mktemp("cli")
    argv = ["train", "classifier", "--epochs", "1", "--train-images", "512", "--data-dir", str(mnist_dir),
            "--out", str(folder / "classifier.keras"), "--checkpoint", str(folder / "ckpt.keras"), "--verbose", "0"]
    cli.run(argv)
    return folder, argv


def test_train_writes_weights_and_a_complete_model_card(trained):
    folder, argv = trained
    card = weights.card("classifier", directory=folder)
    for field in ("name", "command", "seed", "backend", "versions", "hardware", "train_seconds", "sha256", "metrics"):
        assert field in card, field
    assert card["command"] == "python -m companion " + " ".join(argv)
    assert card["sha256"] == weights.sha256_of(folder / "classifier.keras")
    assert card["train_images"] == 512 and card["epochs"] == 1
    assert 0.0 <= card["metrics"]["test_accuracy"] <= 1.0 and card["metrics"]["command"].startswith("python -m companion evaluate")
    assert (folder / "ckpt.keras").is_file()


def test_model_card_records_the_cpu_generation(trained):
    """"AMD EPYC" names several generations of different speed: the card also records the
    family and model numbers, as /proc/cpuinfo gives them for the first processor."""
    folder, _ = trained
    info = {}
    for line in open("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    if "cpu family" not in info:
        pytest.skip("this /proc/cpuinfo has no family and model numbers")
    hardware = weights.card("classifier", directory=folder)["hardware"]
    assert hardware["cpu"] == info["model name"]
    assert hardware["cpu_family_model"] == f"family {info['cpu family']}, model {info['model']}"


def test_evaluate_prints_and_writes_json(trained, mnist_dir, capsys):
    folder, _ = trained
    out = folder / "metrics.json"
    metrics = cli.run(["evaluate", "classifier", "--weights", str(folder / "classifier.keras"),
                        "--data-dir", str(mnist_dir), "--test-images", "300", "--json", str(out)])
    assert json.loads(out.read_text()) == metrics
    assert "test_accuracy" in capsys.readouterr().out
    # The same figure, computed independently with model.predict.
    import keras

    from companion import data

    model = keras.saving.load_model(folder / "classifier.keras")
    _, (x_test, y_test) = data.load_mnist(mnist_dir)
    predicted = np.argmax(model.predict(data.scale(x_test[:300])[..., None], verbose=0), axis=1)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(predicted == y_test[:300]))


def test_weights_load_verifies_the_sha256(trained):
    folder, _ = trained
    model = weights.load("classifier", directory=folder)
    assert model.count_params() > 0
    path = folder / "classifier.keras"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    tampered = folder / "tampered"
    tampered.mkdir()
    (tampered / "classifier.keras").write_bytes(bytes(content))
    (tampered / "classifier.json").write_text((folder / "classifier.json").read_text())
    with pytest.raises(weights.WeightsIntegrityError, match=r"classifier.keras: SHA-256 [0-9a-f]{64} does not match"):
        weights.load("classifier", directory=tampered)
    with pytest.raises(FileNotFoundError, match=r"Expected `name` among: classifier. Received: name='nothing'"):
        weights.card("nothing", directory=folder)


@pytest.mark.backend
def test_a_killed_training_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, mnist_dir):
    """SIGKILL right after the checkpoint of epoch 2 of 3 (a script wraps the real command line),
    then `--resume` in a fresh process: the weights equal, bit for bit, those of a run that
    was never interrupted."""
    import os
    import signal
    import subprocess
    import sys

    import keras

    from companion.training.checkpoints import read_progress

    script = tmp_path / "killed_after_epoch_2.py"
    script.write_text(
        "import os, signal, sys\n"
        "from companion import cli\n"
        "from companion.training import callbacks\n"
        "write = callbacks.ResumableCheckpoint.on_epoch_end\n"
        "def write_then_die(self, epoch, logs=None):\n"
        "    write(self, epoch, logs)\n"
        "    if epoch + 1 == 2:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "callbacks.ResumableCheckpoint.on_epoch_end = write_then_die\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    common = ["train", "mlp_vae", "--epochs", "3", "--train-images", "512", "--data-dir", str(mnist_dir), "--verbose", "0",
              "--backend", keras.backend.backend()]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = lambda *argv: subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=600)
    paths = lambda name: ["--out", str(tmp_path / f"{name}.keras"), "--checkpoint", str(tmp_path / f"{name}.ckpt.keras")]

    killed = run(str(script), *common, *paths("killed"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert read_progress(tmp_path / "killed.ckpt.keras")["epoch"] == 2 and not (tmp_path / "killed.keras").exists()
    resumed = run("-m", "companion", *common, "--resume", *paths("killed"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at epoch 3 of 3" in resumed.stdout
    whole = run("-m", "companion", *common, *paths("whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    a, b = weights.load_file(tmp_path / "killed.keras"), weights.load_file(tmp_path / "whole.keras")
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)


def test_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.run(["train", "resnet"])
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"Expected a model among classifier, .* Received: 'resnet'"):
        recipes.get("resnet")


@pytest.mark.parametrize("model, keys", [
    ("mlp_vae", {"test_images", "negative_elbo", "iw_nll_k5"}),
    ("conditional_gan", {"test_images", "fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "confident_share",
                         "digits_read_3pct", "largest_digit_share", "nn_distance_median", "conditional_accuracy"}),
])
def test_evaluate_measures_vaes_and_gans(trained, tmp_path, mnist_dir, model, keys):
    folder, _ = trained
    out = tmp_path / f"{model}.keras"
    cli.run(["train", model, "--epochs", "1", "--train-images", "256", "--data-dir", str(mnist_dir), "--out", str(out),
              "--checkpoint", str(tmp_path / "ckpt.keras"), "--verbose", "0"])
    metrics = cli.run(["evaluate", model, "--weights", str(out), "--classifier", str(folder / "classifier.keras"),
                        "--data-dir", str(mnist_dir), "--test-images", "40", "--k", "5", "--update-card"])
    assert set(metrics) == keys
    assert all(np.isfinite(v) for v in metrics.values())
    card = json.loads(out.with_suffix(".json").read_text())
    assert {k: card["metrics"][k] for k in keys} == pytest.approx(metrics, rel=1e-5, abs=1e-6)  # cards keep 6 decimals
    assert card["metrics"]["command"].startswith(f"python -m companion evaluate {model} --weights")


def test_bench_reports_the_median_of_its_timed_runs(capsys, tmp_path):
    import statistics

    out = tmp_path / "bench.json"
    result = cli.run(["bench", "mlp_vae", "--steps", "2", "--repeats", "3", "--batch-size", "32", "--json", str(out)])
    assert len(result["runs"]) == 3 and result["images_per_second"] == statistics.median(result["runs"])
    assert result["step_seconds"] == pytest.approx(32 / result["images_per_second"])
    assert result["final_loss_finite"] and result["outputs_finite"] and not result["mixed_precision"]
    assert json.loads(out.read_text())["model"] == "mlp_vae"
    assert "mlp_vae on" in capsys.readouterr().out


def test_bench_times_a_second_model_in_the_same_rounds():
    import keras

    from companion import benchmark, data, recipes

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

    from companion import benchmark

    [result] = benchmark.compare_backends("mlp_gan", [keras.backend.backend()], batch_size=16, steps=2, repeats=2)
    assert result["backend"] == keras.backend.backend() and result["model"] == "mlp_gan" and len(result["runs"]) == 2
    with pytest.raises(ValueError, match="Expected `steps` to be a positive integer. Received: steps=0"):
        benchmark.throughput("mlp_vae", steps=0)


@pytest.mark.parametrize("name", ["conditional_gan", "classifier"])
def test_the_outputs_check_sees_a_nan_weight(name):
    """Samples (conditional ones here) or predictions: finite as built, not once a weight is NaN."""
    import keras

    from companion import benchmark, recipes

    recipe = recipes.get(name)
    model = recipe.build(0)
    rng = np.random.default_rng(0)
    x, y = rng.random((4, 28, 28, 1)).astype("float32"), np.arange(4)
    model(x) if name == "classifier" else model.generate(1, labels=[0])  # builds the weights
    assert benchmark._outputs_finite(model, recipe, x, y)
    weight = (model.generator if name == "conditional_gan" else model).weights[-1]
    weight.assign(keras.ops.full(weight.shape, float("nan")))
    assert not benchmark._outputs_finite(model, recipe, x, y)


@pytest.mark.backend
@pytest.mark.parametrize("name", ["mlp_vae", "mlp_gan"])
def test_mixed_precision_training_stays_finite_and_restores_the_policy(name):
    import keras

    from companion import benchmark

    before = keras.config.dtype_policy().name
    result = benchmark.throughput(name, batch_size=16, steps=2, repeats=1, mixed_precision=True)
    assert result["mixed_precision"] and result["final_loss_finite"]
    assert keras.config.dtype_policy().name == before
