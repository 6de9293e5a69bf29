"""The reference DCGAN: the TensorFlow DCGAN tutorial's model and loop, for a wall-clock budget.

The floor the book's GANs are measured against (issue: "at equal wall-clock time, ours at
most one fifth of the reference's FID"). Written as the tutorial writes it, on TensorFlow:

* generator Dense 7x7x256 (no bias) -> BN -> LeakyReLU -> ConvTranspose 128 (5x5, stride 1)
  -> BN -> LeakyReLU -> ConvTranspose 64 (5x5, stride 2) -> BN -> LeakyReLU ->
  ConvTranspose 1 (5x5, stride 2, tanh); noise of dimension 100;
* discriminator Conv 64 (5x5, stride 2) -> LeakyReLU -> Dropout 0.3 -> Conv 128 (5x5,
  stride 2) -> LeakyReLU -> Dropout 0.3 -> Flatten -> Dense 1;
* binary cross-entropy on logits, Adam(1e-4) for each network, batch 256, images in
  [-1, 1], one `tf.function` step with two gradient tapes.

It trains until `--seconds` of wall-clock time have passed (by default the training time
in the shipped cluster_gan's model card, so that both had the same time on this machine), then
draws 10,000 samples and measures them exactly as `python -m companion evaluate cluster_gan`
does: classifier FID and KID against the 10,000 test images, precision and recall.

    KERAS_BACKEND=tensorflow .venv/bin/python bench/reference_dcgan.py [--seconds S] [--seed 0]

Writes `bench/results/reference_dcgan.json` and the generator to `runs/`.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from companion import data, evaluation, weights  # noqa: E402
from companion.evaluation import metrics
from companion.cli import _hardware  # noqa: E402

NOISE_DIM, BATCH_SIZE = 100, 256
TUTORIAL_EPOCHS = 50  # what the tutorial itself trains for
RESULTS = Path(__file__).resolve().parent / "results" / "reference_dcgan.json"


def make_generator():
    return keras.Sequential(
        [
            keras.Input((NOISE_DIM,)),
            layers.Dense(7 * 7 * 256, use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Reshape((7, 7, 256)),
            layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),
        ]
    )


def make_discriminator():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, 5, strides=2, padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Conv2D(128, 5, strides=2, padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )


CHECKPOINT = Path("runs") / "reference_dcgan_checkpoint.npz"
CHECKPOINT_EVERY = 300.0  # seconds of training between checkpoints


def _state(networks, optimizers):
    return [v for n in networks for v in n.weights] + [v for o in optimizers for v in o.variables]


def save_checkpoint(networks, optimizers, steps, elapsed, seconds, seed):
    """All weights and optimizer slots, the steps taken and the time spent, written atomically."""
    CHECKPOINT.parent.mkdir(exist_ok=True)
    values = {f"v{i}": np.asarray(v) for i, v in enumerate(_state(networks, optimizers))}
    partial = CHECKPOINT.with_name(CHECKPOINT.stem + ".partial.npz")
    np.savez(partial, steps=steps, elapsed=elapsed, seconds=seconds, seed=seed, **values)
    os.replace(partial, CHECKPOINT)


def load_checkpoint(networks, optimizers, seconds, seed):
    """(steps, elapsed) of an interrupted run of the same budget and seed, its state restored; else (0, 0)."""
    if not CHECKPOINT.is_file():
        return 0, 0.0
    saved = np.load(CHECKPOINT)
    if float(saved["seconds"]) != round(seconds, 1) or int(saved["seed"]) != seed:
        print(f"{CHECKPOINT} is of another run (budget {float(saved['seconds'])} s, seed {int(saved['seed'])}): starting afresh")
        return 0, 0.0
    for network, optimizer in zip(networks, optimizers):
        optimizer.build(network.trainable_variables)
    state = _state(networks, optimizers)
    if len(state) != len(saved.files) - 4:
        raise ValueError(f"Expected {len(state)} arrays in {CHECKPOINT}. Received: {len(saved.files) - 4}")
    for i, variable in enumerate(state):
        variable.assign(saved[f"v{i}"])
    steps, elapsed = int(saved["steps"]), float(saved["elapsed"])
    print(f"resuming from {CHECKPOINT}: {steps} steps, {elapsed:.0f} s of {seconds:.0f} s trained")
    return steps, elapsed


def train(seconds, seed):
    """Trains for `seconds` of wall-clock time, checkpointing every five minutes; an
    interrupted run resumes from its checkpoint (not bit for bit: the noise differs)."""
    seconds = round(seconds, 1)
    keras.utils.set_random_seed(seed)
    generator, discriminator = make_generator(), make_discriminator()
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    g_optimizer, d_optimizer = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    networks, optimizers = (generator, discriminator), (g_optimizer, d_optimizer)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, NOISE_DIM])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            g_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            d_loss = cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output
            )
        g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables), generator.trainable_variables))
        d_optimizer.apply_gradients(
            zip(d_tape.gradient(d_loss, discriminator.trainable_variables), discriminator.trainable_variables)
        )
        return g_loss, d_loss

    (x_train, _), _ = data.load_mnist()
    images = (x_train.astype("float32")[..., None] - 127.5) / 127.5
    steps, before = load_checkpoint(networks, optimizers, seconds, seed)
    epoch = steps // (len(images) // BATCH_SIZE)
    started = time.monotonic() - before  # the clock counts the time trained before an interruption
    saved_at = time.monotonic()
    while time.monotonic() - started < seconds:
        dataset = tf.data.Dataset.from_tensor_slices(images).shuffle(60000, seed=seed + epoch).batch(BATCH_SIZE, drop_remainder=True)
        for batch in dataset:
            g_loss, d_loss = train_step(batch)
            steps += 1
            if time.monotonic() - started >= seconds:
                break
            if time.monotonic() - saved_at >= CHECKPOINT_EVERY:
                save_checkpoint(networks, optimizers, steps, time.monotonic() - started, seconds, seed)
                saved_at = time.monotonic()
        epoch += 1
        print(f"epoch {epoch}: {steps} steps, {time.monotonic() - started:.0f} s, g_loss {float(g_loss):.3f}, d_loss {float(d_loss):.3f}", flush=True)
    return generator, steps, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="wall-clock budget (default: the shipped cluster_gan's train_seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds = args.seconds or weights.card("cluster_gan")["train_seconds"]
    generator, steps, elapsed = train(seconds, args.seed)
    Path("runs").mkdir(exist_ok=True)
    generator.save("runs/reference_dcgan_generator.keras")
    CHECKPOINT.unlink(missing_ok=True)

    (_, _), (x_test, _) = data.load_mnist()
    x_test = data.scale(x_test)
    noise = np.random.default_rng(args.seed).standard_normal((len(x_test), NOISE_DIM)).astype("float32")
    samples = (np.asarray(generator.predict(noise, batch_size=1000, verbose=0)) + 1.0) / 2.0
    classifier = weights.load("classifier")
    real = evaluation.classifier_features(classifier, x_test)
    fake = evaluation.classifier_features(classifier, np.clip(samples, 0.0, 1.0))
    kid, kid_std = metrics.kernel_distance(real, fake, seed=args.seed)
    precision, recall = metrics.precision_recall(real, fake, k=3)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    result = {
        "name": "reference_dcgan",
        "what": "TensorFlow DCGAN tutorial architecture and settings, trained for a wall-clock budget",
        "command": f"KERAS_BACKEND=tensorflow .venv/bin/python bench/reference_dcgan.py --seconds {seconds:.1f} --seed {args.seed}",
        "budget_seconds": round(seconds, 1),
        "train_seconds": round(elapsed, 1),
        "steps": steps,
        "images_per_second": round(steps * BATCH_SIZE / elapsed, 1),
        "tutorial_steps": TUTORIAL_EPOCHS * (60000 // BATCH_SIZE),
        "hardware": _hardware(),
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "metrics": {
            "test_images": len(x_test),
            "fid": metrics.frechet_distance(real, fake),
            "kid": kid,
            "kid_std": kid_std,
            "precision": precision,
            "recall": recall,
            "density": density,
            "coverage": coverage,
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
