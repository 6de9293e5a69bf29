"""Tests of companion.cli, the command line (on small, quick runs): train, evaluate and bench, the
model card they write, and resuming a killed training."""

import json

import numpy as np
import pytest

from companion import cli, recipes, weights


def test_command_line_names_every_recipe():
    assert tuple(recipes.RECIPES) == cli.NAMES


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
              "--backend", keras.backend.backend(), "--precision", "float32"]
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
    ("acgan", {"test_images", "fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "confident_share",
                         "digits_read_3pct", "largest_digit_share", "nn_distance_median", "conditional_accuracy"}),
])
def test_evaluate_measures_vaes_and_gans(trained, tmp_path, mnist_dir, model, keys):
    folder, _ = trained
    out = tmp_path / f"{model}.keras"
    cli.run(["train", model, "--epochs", "1", "--train-images", "256", "--data-dir", str(mnist_dir), "--out", str(out),
              "--checkpoint", str(tmp_path / "ckpt.keras"), "--verbose", "0", "--precision", "float32"])
    metrics = cli.run(["evaluate", model, "--weights", str(out), "--classifier", str(folder / "classifier.keras"),
                        "--data-dir", str(mnist_dir), "--test-images", "40", "--k", "5", "--update-card"])
    assert set(metrics) == keys
    assert all(np.isfinite(v) for v in metrics.values())
    card = json.loads(out.with_suffix(".json").read_text())
    assert {k: card["metrics"][k] for k in keys} == pytest.approx(metrics, rel=1e-5, abs=1e-6)  # cards keep 6 decimals
    assert card["metrics"]["command"].startswith(f"python -m companion evaluate {model} --weights")


def test_evaluate_measures_the_diffusion_model_beside_the_best_vae_and_gan(trained, tmp_path, mnist_dir):
    folder, _ = trained
    out = tmp_path / "diffusion.keras"
    cli.run(["train", "diffusion", "--epochs", "1", "--train-images", "256", "--data-dir", str(mnist_dir), "--out", str(out),
             "--checkpoint", str(tmp_path / "ckpt.keras"), "--verbose", "0", "--precision", "float32"])
    argv = ["evaluate", "diffusion", "--weights", str(out), "--classifier", str(folder / "classifier.keras"), "--data-dir",
            str(mnist_dir), "--test-images", "30"]
    metrics = cli.run(argv + ["--sampling-steps", "3", "--timed-images", "10", "--update-card"])
    assert metrics["sampling_steps"] == 3 and set(metrics["fid_by_steps"]) == {"10", "25", "50", "250"}
    assert set(metrics["families"]) == {"VAE", "GAN", "diffusion"}
    assert metrics["families"]["diffusion"]["fid"] == pytest.approx(metrics["fid"], abs=1e-6) and metrics["families"]["diffusion"]["train_minutes"] > 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["metrics"]["families"]["VAE"]["model"] == metrics["families"]["VAE"]["model"]
    bare = cli.run(argv + ["--sampling-steps", "3", "--timed-images", "0", "--no-families"])
    assert "families" not in bare and "fid_by_steps" not in bare and bare["fid"] == pytest.approx(metrics["fid"], rel=1e-4)
    assert bare["eta"] == metrics["eta"] == 1.0, "the model's own eta (the recipe's) unless --eta"
    quiet = cli.run(argv + ["--sampling-steps", "3", "--timed-images", "0", "--no-families", "--eta", "0"])
    assert quiet["eta"] == 0.0 and quiet["fid"] != pytest.approx(bare["fid"], rel=1e-3), "eta 0 draws other samples"
    with pytest.raises(cli.UsageError, match=r"--sampling-steps: expected at most 1000 \(the model's timesteps\), received 2000"):
        cli.run(argv + ["--sampling-steps", "2000"])


def test_bench_reports_the_median_of_its_timed_runs(capsys, tmp_path):
    import statistics

    out = tmp_path / "bench.json"
    result = cli.run(["bench", "mlp_vae", "--steps", "2", "--repeats", "3", "--batch-size", "32", "--json", str(out)])
    assert len(result["runs"]) == 3 and result["images_per_second"] == statistics.median(result["runs"])
    assert result["step_seconds"] == pytest.approx(32 / result["images_per_second"])
    assert result["final_loss_finite"] and result["outputs_finite"] and not result["mixed_precision"]
    assert json.loads(out.read_text())["model"] == "mlp_vae"
    assert "mlp_vae on" in capsys.readouterr().out
