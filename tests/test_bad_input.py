"""Bad input, tried as a hostile user would: each case asserts the type of the error and that
its message names the argument and echoes what was received, so that the user can fix it.

Areas: data (loading and batching MNIST), models (constructors and main methods), metrics,
files (weights, checkpoints, model cards) and the command line (every option is checked
before any work starts; a bad one exits with status 2 and a message naming it).
"""

import json
import math
import zipfile

import numpy as np
import pytest

from companion import cli, data, validation, weights
from companion.evaluation import metrics
from companion.models import ConditionalVAE, DCGAN, MLPGAN, MLPVAE
from companion.training import resume_training
from companion.training.checkpoints import read_progress, save_checkpoint

pytestmark = pytest.mark.backend  # the models' checks run on every backend

GOOD = np.full((4, 28, 28), 0.5, np.float32)


def with_values(value, at=(0, 3, 3)):
    x = GOOD.copy()
    x[at] = value
    return x


# ----------------------------------------------------------------------------- data

DATA_CASES = [
    ("nan image", lambda: data.MNISTBatches(with_values(np.nan)), ValueError, r"`x`.*nan"),
    ("image above 1", lambda: data.MNISTBatches(with_values(5.0)), ValueError, r"`x`.*\[0, 1\].*Received values in \[0.5, 5\]"),
    ("label 99", lambda: data.MNISTBatches(GOOD, np.array([0, 1, 2, 99])), ValueError, r"`y` in \[0, 9\]. Received values in \[0, 99\]"),
    ("label -5", lambda: data.MNISTBatches(GOOD, np.array([0, -5, 2, 3])), ValueError, r"`y` in \[0, 9\]. Received values in \[-5, 3\]"),
    ("labels too few", lambda: data.MNISTBatches(GOOD, np.array([0, 1])), ValueError, r"`y` of shape \(4,\).*Received: y.shape=\(2,\)"),
    ("fractional labels", lambda: data.MNISTBatches(GOOD, np.array([0, 1.5, 2, 3])), TypeError, r"integer `y`. Received: y.dtype=float64"),
    ("batch size 0", lambda: data.MNISTBatches(GOOD, batch_size=0), ValueError, r"`batch_size` to be a positive integer. Received: batch_size=0"),
    ("batch size 2.5", lambda: data.MNISTBatches(GOOD, batch_size=2.5), ValueError, r"`batch_size`.*Received: batch_size=2.5"),
    ("seed -1", lambda: data.MNISTBatches(GOOD, seed=-1), ValueError, r"`seed`.*Received: seed=-1"),
    ("seed a string", lambda: data.MNISTBatches(GOOD, seed="0"), ValueError, r"`seed`.*Received: seed='0'"),
    ("binarize static", lambda: data.MNISTBatches(GOOD, binarize="static"), ValueError, r"`binarize`.*Received: binarize='static'"),
    ("binarize nan images", lambda: data.binarize_static(with_values(np.nan)), ValueError, r"`images`.*nan"),
    ("scale floats", lambda: data.scale(GOOD), TypeError, r"`images` of dtype uint8.*Received: images.dtype=float32"),
    ("missing folder", lambda: data.load_mnist("/nonexistent/mnist"), data.MNISTNotFoundError, r"/nonexistent/mnist"),
]


@pytest.mark.parametrize("case, make, error, message", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_refuses(case, make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_truncated_idx_file_is_named(tmp_path, mnist_dir):
    for source in mnist_dir.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    victim = sorted(p for p in tmp_path.iterdir() if "t10k-images" in p.name)[0]
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.raises(data.MNISTFormatError, match=victim.name):
        data.load_mnist(tmp_path)


# ----------------------------------------------------------------------------- models

MODEL_CASES = [
    ("beta nan", lambda: MLPVAE(beta=float("nan")), ValueError, r"`beta`.*Received: beta=nan"),
    ("beta negative", lambda: MLPVAE(beta=-1.0), ValueError, r"`beta`.*Received: beta=-1.0"),
    ("beta infinite", lambda: MLPVAE(beta=math.inf), ValueError, r"`beta`.*Received: beta=inf"),
    ("free bits nan", lambda: MLPVAE(free_bits=float("nan")), ValueError, r"`free_bits`.*Received: free_bits=nan"),
    ("latent dim 0", lambda: MLPVAE(latent_dim=0), ValueError, r"`latent_dim` to be a positive integer. Received: latent_dim=0"),
    ("warm-up steps 2.5", lambda: MLPVAE(kl_warmup_steps=2.5), ValueError, r"`kl_warmup_steps`.*Received: kl_warmup_steps=2.5"),
    ("vae seed float", lambda: MLPVAE(seed=1.5), ValueError, r"`seed`.*Received: seed=1.5"),
    ("gan seed negative", lambda: MLPGAN(seed=-3), ValueError, r"`seed`.*Received: seed=-3"),
    ("gan latent dim", lambda: DCGAN(latent_dim=-1), ValueError, r"`latent_dim`.*Received: latent_dim=-1"),
    ("ema decay 1", lambda: MLPGAN(ema_decay=1.0), ValueError, r"`ema_decay`.*Received: ema_decay=1.0"),
    ("r1 weight nan", lambda: DCGAN(r1_weight=float("nan")), ValueError, r"`r1_weight`.*Received: r1_weight=nan"),
]


@pytest.mark.parametrize("case, make, error, message", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_models_refuse(case, make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.fixture(scope="module")
def vae():
    return MLPVAE(latent_dim=2, hidden_units=(8,), seed=0)


@pytest.fixture(scope="module")
def cvae():
    return ConditionalVAE(latent_dim=2, seed=0)


METHOD_CASES = [
    ("encode values 5", lambda m, c: m.encode(with_values(5.0)), ValueError, r"`x` with values in \[0, 1\]. Received values in \[0.5, 5\]"),
    ("encode nan", lambda m, c: m.encode(with_values(np.nan)), ValueError, r"`x` with values in \[0, 1\]. Received values in \[nan"),
    ("generate 0", lambda m, c: m.generate(0), ValueError, r"`n` to be a positive integer. Received: n=0"),
    ("generate with seed 'one'", lambda m, c: m.generate(2, seed="one"), ValueError, r"`seed`.*Received: seed='one'"),
    ("decode wrong width", lambda m, c: m.decode(np.zeros((3, 5), np.float32)), ValueError, r"`z` of shape \(n, 2\). Received: z.shape=\(3, 5\)"),
    ("conditional label 10", lambda m, c: c.generate(2, labels=[3, 10]), ValueError, r"`labels` in \[0, 9\]. Received values in \[3, 10\]"),
    ("conditional without labels", lambda m, c: c.encode(GOOD), ValueError, r"needs `labels`.*Received: labels=None"),
    ("log-likelihood of values 5", lambda m, c: metrics.importance_weighted_nll(m, with_values(5.0), k=2), ValueError,
     r"`x` with values in \[0, 1\]. Received values in \[0.5, 5\]"),
    ("log p(x | z) of values 5", lambda m, c: m.log_likelihood(with_values(5.0), np.zeros((4, 2), np.float32)), ValueError,
     r"`x` with values in \[0, 1\]. Received values in \[0.5, 5\]"),
    ("log p(x | z) with too few z", lambda m, c: m.log_likelihood(GOOD, np.zeros((3, 2), np.float32)), ValueError,
     r"one latent per image.*Received: z.shape=\(3, 2\)"),
    ("log-likelihood k 0", lambda m, c: metrics.importance_weighted_nll(m, np.round(GOOD), k=0), ValueError, r"`k` to be a positive integer. Received: k=0"),
    ("negative ELBO of nan", lambda m, c: metrics.negative_elbo(m, with_values(np.nan)), ValueError, r"`x`.*Received values in \[nan"),
    ("active units threshold 0", lambda m, c: metrics.active_units(m, GOOD, threshold=0), ValueError, r"`threshold`.*Received: threshold=0"),
    ("psnr of two shapes", lambda m, c: metrics.psnr(GOOD, GOOD[:2]), ValueError, r"shape"),
]


@pytest.mark.parametrize("case, call, error, message", METHOD_CASES, ids=[c[0] for c in METHOD_CASES])
def test_model_methods_and_metrics_refuse(vae, cvae, case, call, error, message):
    with pytest.raises(error, match=message):
        call(vae, cvae)


def test_validation_echoes_what_it_received():
    with pytest.raises(ValueError, match=r"Expected `p` to be a finite number >= 0 and <= 1. Received: p=1.5"):
        validation.number("p", 1.5, low=0, high=1)
    with pytest.raises(ValueError, match=r"Expected `rate` to be a finite number > 0. Received: rate=0"):
        validation.number("rate", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"Received: flag=True"):
        validation.positive_int("flag", True)
    assert validation.seed("seed", None) is None and validation.seed("seed", np.int64(3)) == 3


# ----------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vae):
    import keras

    folder = tmp_path_factory.mktemp("files")
    model = MLPVAE(latent_dim=2, hidden_units=(8,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(np.round(GOOD), epochs=1, batch_size=2, verbose=0)
    path = folder / "run.keras"
    save_checkpoint(model, path, {"epoch": 1})
    return path


def truncated_copy(path, tmp_path, keep=0.5):
    copy = tmp_path / path.name
    content = path.read_bytes()
    copy.write_bytes(content[: int(len(content) * keep)])
    return copy


def test_a_truncated_checkpoint_is_named(checkpoint, tmp_path):
    broken = truncated_copy(checkpoint, tmp_path)
    with pytest.raises(ValueError, match=rf"{broken.name}: not a complete checkpoint"):
        resume_training(broken)
    with pytest.raises(ValueError, match=rf"{broken.name}: not a complete checkpoint"):
        read_progress(broken)


def test_a_checkpoint_without_progress_is_named(checkpoint, tmp_path):
    bare = tmp_path / "bare.keras"
    with zipfile.ZipFile(checkpoint) as source, zipfile.ZipFile(bare, "w") as target:
        for entry in source.namelist():
            if entry != "progress.json":
                target.writestr(entry, source.read(entry))
    with pytest.raises(ValueError, match=r"bare.keras: not a checkpoint written by ResumableCheckpoint"):
        resume_training(bare)


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing.keras: no checkpoint to resume from"):
        resume_training(tmp_path / "nothing.keras")


def test_a_checkpoint_of_another_suffix_is_refused(vae, tmp_path):
    with pytest.raises(ValueError, match=r"ending in .keras. Received: path='.*model.h5'"):
        save_checkpoint(vae, tmp_path / "model.h5", {"epoch": 0})


def test_truncated_weights_are_named(checkpoint, tmp_path):
    broken = truncated_copy(checkpoint, tmp_path)
    with pytest.raises(weights.WeightsFileError, match=rf"{broken.name}: cannot be read as a Keras model"):
        weights.load_file(broken)


def test_a_corrupted_model_card_is_named(tmp_path):
    (tmp_path / "mlp_vae.json").write_text('{"name": "mlp_vae", "sha256": ')
    (tmp_path / "mlp_vae.keras").write_bytes(b"")
    with pytest.raises(weights.WeightsFileError, match=r"mlp_vae.json: not a valid model card"):
        weights.card("mlp_vae", directory=tmp_path)


# ----------------------------------------------------------------------------- command line


def refused(argv, capsys, message):
    """Runs the program with `argv`; it must exit 2 before any work, with `message` on stderr."""
    try:
        status = cli.main(argv)
    except SystemExit as stop:  # argparse's own errors
        status = stop.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert any(word in err for word in ("error:",)), err
    assert __import__("re").search(message, err), err
    return err


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, mnist_dir):
    """A one-epoch run of the source-sized VAE, with its checkpoint."""
    folder = tmp_path_factory.mktemp("cli_bad")
    common = ["--train-images", "256", "--data-dir", str(mnist_dir), "--verbose", "0", "--precision", "float32"]
    cli.run(["train", "mlp_vae", "--epochs", "1", "--out", str(folder / "vae.keras"), "--checkpoint", str(folder / "vae.ckpt.keras"), *common])
    return folder, common


CLI_CASES = [
    ("epochs 0", ["train", "mlp_vae", "--epochs", "0"], r"--epochs: expected a positive integer, received '0'"),
    ("epochs -3", ["train", "mlp_vae", "--epochs", "-3"], r"--epochs: expected a positive integer, received '-3'"),
    ("batch size 0", ["train", "mlp_vae", "--batch-size", "0"], r"--batch-size: expected a positive integer, received '0'"),
    ("train images 0", ["train", "mlp_vae", "--train-images", "0"], r"--train-images: expected a positive integer, received '0'"),
    ("seed -1", ["train", "mlp_vae", "--seed", "-1"], r"--seed: expected a non-negative integer, received '-1'"),
    ("seed a word", ["train", "mlp_vae", "--seed", "zero"], r"--seed: expected a non-negative integer, received 'zero'"),
    ("out .h5", ["train", "mlp_vae", "--out", "model.h5"], r"--out: expected a file ending in .keras, received 'model.h5'"),
    ("checkpoint .ckpt", ["train", "mlp_vae", "--checkpoint", "run.ckpt"], r"--checkpoint: expected a file ending in .keras, received 'run.ckpt'"),
    ("allow fresh alone", ["train", "mlp_vae", "--allow-fresh"], r"--allow-fresh: expected together with --resume"),
    ("resume and restart", ["train", "mlp_vae", "--resume", "--restart"], r"argument --restart: not allowed with argument --resume"),
    ("data dir missing", ["train", "mlp_vae", "--data-dir", "/nonexistent/mnist"], r"--data-dir: expected an existing folder, received '/nonexistent/mnist'"),
    ("evaluate weights missing", ["evaluate", "mlp_vae", "--weights", "/nonexistent/vae.keras"],
     r"--weights: expected an existing file, received '/nonexistent/vae.keras'"),
    ("evaluate weights .h5", ["evaluate", "mlp_vae", "--weights", "vae.h5"], r"--weights: expected a file ending in .keras, received 'vae.h5'"),
    ("evaluate k 0", ["evaluate", "mlp_vae", "--k", "0"], r"--k: expected a positive integer, received '0'"),
    ("evaluate test images 20000", ["evaluate", "mlp_vae", "--test-images", "20000"], r"--test-images: expected at most 10,000.*received 20000"),
    ("evaluate record-as alone", ["evaluate", "mlp_vae", "--record-as", "subset"], r"--record-as: expected together with --update-card"),
    ("evaluate json .txt", ["evaluate", "mlp_vae", "--json", "metrics.txt"], r"--json: expected a file ending in .json, received 'metrics.txt'"),
    ("evaluate sampling steps of a VAE", ["evaluate", "mlp_vae", "--sampling-steps", "10"],
     r"--sampling-steps: expected only with the diffusion model, received with mlp_vae"),
    ("evaluate no families of a GAN", ["evaluate", "cluster_gan", "--no-families"],
     r"--no-families: expected only with the diffusion model, received with cluster_gan"),
    ("evaluate sampling steps 0", ["evaluate", "diffusion", "--sampling-steps", "0"], r"--sampling-steps: expected a positive integer, received '0'"),
    ("evaluate timed images -1", ["evaluate", "diffusion", "--timed-images", "-1"], r"--timed-images: expected a non-negative integer, received '-1'"),
    ("evaluate eta 2", ["evaluate", "diffusion", "--eta", "2"], r"--eta: expected a number in \[0, 1\], received '2'"),
    ("evaluate eta of a GAN", ["evaluate", "cluster_gan", "--eta", "0.5"], r"--eta: expected only with the diffusion model, received with cluster_gan"),
    ("bench min seconds nan", ["bench", "mlp_vae", "--min-seconds", "nan"], r"--min-seconds: expected a number of seconds > 0, received 'nan'"),
    ("bench repeats 0", ["bench", "mlp_vae", "--repeats", "0"], r"--repeats: expected a positive integer, received '0'"),
    ("unknown model", ["train", "resnet"], r"invalid choice: 'resnet'"),
    ("precision fp16", ["train", "mlp_vae", "--precision", "fp16"],
     r"argument --precision: invalid choice: 'fp16' \(choose from '?auto'?, '?float32'?, '?bfloat16'?\)"),
]


@pytest.mark.parametrize("case, argv, message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_command_line_refuses(case, argv, message, capsys):
    refused(argv, capsys, message)


def test_an_output_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    refused(["train", "mlp_vae", "--out", str(tmp_path / "afile" / "model.keras")], capsys, r"--out: expected a path in a folder.*under the file")


def test_resume_without_a_checkpoint_is_refused_unless_allowed(tmp_path, capsys):
    missing = tmp_path / "typo.ckpt.keras"
    refused(["train", "mlp_vae", "--resume", "--checkpoint", str(missing)], capsys, r"--resume: expected a checkpoint at '.*typo.ckpt.keras', received no such file")


def test_resume_of_another_model_is_refused(small_run, capsys):
    folder, common = small_run
    refused(["train", "cluster_gan", "--resume", "--checkpoint", str(folder / "vae.ckpt.keras"), "--out", str(folder / "gan.keras"), *common],
            capsys, r"MODEL: the checkpoint '.*vae.ckpt.keras' was written by a run with model='mlp_vae', received 'cluster_gan'")


def test_resume_with_other_epochs_is_refused(small_run, capsys):
    folder, common = small_run
    refused(["train", "mlp_vae", "--epochs", "3", "--resume", "--checkpoint", str(folder / "vae.ckpt.keras"), "--out", str(folder / "v.keras"), *common],
            capsys, r"--epochs: the checkpoint .* with epochs=1, received 3")


def test_a_fresh_run_does_not_replace_a_checkpoint_silently(small_run, capsys):
    folder, common = small_run
    refused(["train", "mlp_vae", "--epochs", "1", "--checkpoint", str(folder / "vae.ckpt.keras"), "--out", str(folder / "v.keras"), *common],
            capsys, r"--checkpoint: a checkpoint already exists at .*pass --resume.*or --restart")


def test_more_training_images_than_there_are_is_refused(small_run, capsys, mnist_dir):
    folder, _ = small_run
    refused(["train", "mlp_vae", "--train-images", "70000", "--data-dir", str(mnist_dir), "--out", str(folder / "x.keras"),
             "--checkpoint", str(folder / "x.ckpt.keras")], capsys, r"--train-images: expected at most 60,000.*received 70,000")


def test_the_program_exits_0_and_prints_only_what_was_asked(tmp_path):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "companion", "bench", "mlp_vae", "--steps", "1", "--repeats", "1", "--batch-size", "8", "--json", "-"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "mlp_vae"  # the JSON asked for, and nothing else
    bad = subprocess.run([sys.executable, "-m", "companion", "train", "mlp_vae", "--epochs", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--epochs: expected a positive integer, received '0'" in bad.stderr and not bad.stdout
