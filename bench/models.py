"""Parameter counts of every model, and its training speed relative to the source's VAE.

For each model with its default sizes: the parameter count (and per network), then the
training throughput in images per second on the active Keras backend, measured after a
warm-up epoch (which includes compilation), and that throughput as a ratio of the
source-sized MLP VAE's, measured in the same process.

    KERAS_BACKEND=jax .venv/bin/python bench/models.py [--images 2048] [--epochs 2]
"""

import argparse
import time

import keras

from companion import data
from companion.models import ACGAN, DCGAN, MLPGAN, WGANGP, ConditionalGAN, ConditionalVAE, ConvVAE, MLPVAE

MODELS = {
    "MLPVAE (source)": (MLPVAE, False),
    "ConvVAE": (ConvVAE, False),
    "ConditionalVAE": (ConditionalVAE, True),
    "MLPGAN (source)": (MLPGAN, False),
    "DCGAN": (DCGAN, False),
    "ConditionalGAN": (ConditionalGAN, True),
    "ACGAN": (ACGAN, True),
    "WGANGP": (WGANGP, False),
}


def parts(model):
    networks = ("encoder", "decoder") if hasattr(model, "encoder") else ("generator", "discriminator")
    return ", ".join(f"{name} {getattr(model, name).count_params():,}" for name in networks)


def throughput(cls, conditional, x, y, epochs, batch_size):
    keras.utils.set_random_seed(0)
    model = cls(seed=0)
    model.compile(**({"optimizer": keras.optimizers.Adam(1e-3)} if hasattr(model, "encoder") else {}))
    batches = data.MNISTBatches(x, y if conditional else None, batch_size=batch_size,
                                labels_as_input=conditional and hasattr(model, "encoder"), drop_remainder=True)
    model.fit(batches, epochs=1, verbose=0)  # warm-up: tracing and compilation
    start = time.perf_counter()
    model.fit(batches, epochs=epochs, verbose=0)
    return model, len(batches) * batch_size * epochs / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    (x_train, y_train), _ = data.load_mnist()
    x, y = data.scale(x_train[: args.images]), y_train[: args.images]
    print(f"backend: {keras.backend.backend()}, {args.images} images, batch {args.batch_size}")
    print(f"{'model':18} {'parameters':>11}  {'images/s':>9}  {'vs source VAE':>13}  networks")
    reference = None
    for name, (cls, conditional) in MODELS.items():
        model, speed = throughput(cls, conditional, x, y, args.epochs, args.batch_size)
        reference = reference or speed
        print(f"{name:18} {model.count_params():>11,}  {speed:>9.0f}  {speed / reference:>12.2f}x  {parts(model)}")


if __name__ == "__main__":
    main()
