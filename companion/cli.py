"""The command line: train, evaluate and benchmark the book's models.

    python -m companion train MODEL [--epochs N] [--seed S] [--backend B] [--out PATH]
    python -m companion evaluate MODEL [--weights PATH] [--json PATH]
    python -m companion bench MODEL [--backend B] [--batch-size N] [--json PATH]

`train` shows Keras's progress bar, writes an atomic checkpoint after every epoch and,
with `--resume`, continues an interrupted run from it. When it finishes it saves the
model to `--out` and writes the model card beside it. `evaluate` prints a table of the
model's metrics and writes them as JSON. `bench` measures training images per second
(`companion.benchmark`). The same program is installed as `companion`.
"""

import argparse
import contextlib
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
# The names of companion.recipes.RECIPES, listed here so that parsing the command line
# imports no Keras (the backend must be chosen first); a test keeps the two equal.
NAMES = ("classifier", "mlp_vae", "conv_vae", "ar_vae", "conditional_vae", "mlp_gan", "dcgan", "conditional_gan", "wgan_gp", "denoiser")


def _parser():
    parser = argparse.ArgumentParser(prog="python -m companion", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model and write its weights and model card")
    train.add_argument("model", choices=NAMES)
    train.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    train.add_argument("--batch-size", type=int, help="batch size (default: the recipe's)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    train.add_argument("--out", type=Path, help="weights file (default: companion/weights/MODEL.keras)")
    train.add_argument("--checkpoint", type=Path, help="checkpoint file (default: runs/MODEL.ckpt.keras)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint if there is one")
    train.add_argument("--data-dir", type=Path, help="folder of the MNIST IDX files (default: COMPANION_MNIST_DIR, else download)")
    train.add_argument("--train-images", type=int, help="train on the first N images only (quick runs)")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    train.add_argument("--distribute", action="store_true",
                       help="data-parallel training on all local devices: keras.distribution.DataParallel on jax, "
                            "tf.distribute.MirroredStrategy on tensorflow (companion.distribute)")

    evaluate = commands.add_parser("evaluate", help="measure a model and print its metrics")
    evaluate.add_argument("model", choices=NAMES)
    evaluate.add_argument("--weights", type=Path, help="weights file (default: the shipped one)")
    evaluate.add_argument("--backend", choices=BACKENDS)
    evaluate.add_argument("--data-dir", type=Path)
    evaluate.add_argument("--test-images", type=int, help="evaluate on the first N test images only")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--k", type=int, default=1000, help="importance samples per image for the VAEs' NLL bound")
    evaluate.add_argument("--classifier", type=Path, help="evaluation classifier (default: the shipped one)")
    evaluate.add_argument("--json", type=Path, help="write the metrics here (default: print only)")
    evaluate.add_argument("--update-card", action="store_true", help="record the metrics in the model card beside the weights")
    evaluate.add_argument("--record-as", help="with --update-card: record under metrics[RECORD_AS] (e.g. a subset's figures)")

    bench = commands.add_parser("bench", help="measure training images per second on one backend")
    bench.add_argument("model", choices=NAMES)
    bench.add_argument("--backend", choices=BACKENDS)
    bench.add_argument("--batch-size", type=int, default=128)
    bench.add_argument("--steps", type=int, help="steps per timed run (default: as many as fill --min-seconds)")
    bench.add_argument("--min-seconds", type=float, default=2.0, help="length of a timed run when --steps is not given")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs after one warm-up run; the median is reported")
    bench.add_argument("--mixed-precision", action="store_true", help="train under the mixed_bfloat16 policy")
    bench.add_argument("--json", help="write the result as JSON to this file, or to standard output with -")
    return parser


def _set_backend(backend):
    if not backend:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise SystemExit(f"--backend {backend}: Keras is already running on {keras.backend.backend()}")
    os.environ["KERAS_BACKEND"] = backend


def _versions():
    import importlib.metadata as metadata

    import keras

    names = ["keras", "numpy", {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[keras.backend.backend()]]
    versions = {"python": platform.python_version(), "companion": metadata.version("companion")}
    versions.update({name: metadata.version(name) for name in names})
    return versions


def _command(argv):
    return "python -m companion " + " ".join(shlex.quote(a) for a in argv)


def train(args, argv):
    from companion import data, recipes
    from companion.weights import WEIGHTS_DIR

    recipe = recipes.get(args.model)
    epochs = args.epochs or recipe.epochs
    out = args.out or WEIGHTS_DIR / f"{recipe.name}.keras"
    checkpoint_path = args.checkpoint or Path("runs") / f"{recipe.name}.ckpt.keras"
    (x_train, y_train), (x_test, y_test) = data.load_mnist(args.data_dir)
    x_train, y_train = data.scale(x_train), y_train.astype("int32")
    if args.train_images:
        x_train, y_train = x_train[: args.train_images], y_train[: args.train_images]

    with contextlib.ExitStack() as stack:
        if args.distribute:
            from companion import distribute

            devices = stack.enter_context(distribute.data_parallel())
            print(f"Data-parallel training on {len(devices)} devices: {', '.join(map(str, devices))}")
        return _train(args, argv, recipe, epochs, out, checkpoint_path, x_train, y_train, x_test, y_test)


def _train(args, argv, recipe, epochs, out, checkpoint_path, x_train, y_train, x_test, y_test):
    import keras

    from companion import config, data, evaluation
    from companion.training import NaNGuard, ResumableCheckpoint, resume_training
    from companion.training.callbacks import read_progress, save_for_inference
    from companion.weights import sha256_of

    options = recipe.compile_options()  # on TensorFlow: XLA, unless a multi-replica strategy is active
    initial_epoch, seconds_before = 0, 0.0
    if args.resume and checkpoint_path.is_file():
        model, initial_epoch = resume_training(checkpoint_path)
        seconds_before = float(read_progress(checkpoint_path).get("train_seconds", 0.0))
        print(f"Resuming {recipe.name} from {checkpoint_path} at epoch {initial_epoch + 1} of {epochs}")
        for option, value in options.items():  # not all are kept in the checkpoint
            setattr(model, option, value)
    else:
        keras.utils.set_random_seed(args.seed)
        model = recipe.build(args.seed)
    batches = recipe.batches(x_train, y_train, args.batch_size, seed=args.seed, epoch=initial_epoch)
    if initial_epoch == 0:
        recipe.compile(model, len(batches), epochs, **options)

    started = time.monotonic()
    elapsed = lambda: seconds_before + time.monotonic() - started
    checkpoint = ResumableCheckpoint(checkpoint_path, extra_progress=lambda: {"train_seconds": elapsed()})
    guard = NaNGuard()
    model.fit(batches, epochs=epochs, initial_epoch=initial_epoch, verbose=args.verbose, callbacks=[guard, checkpoint])
    train_seconds = elapsed()
    if guard.stopped:
        raise SystemExit(f"Training stopped on a non-finite value: {guard.stopped}; the last good checkpoint is {checkpoint_path}")

    out.parent.mkdir(parents=True, exist_ok=True)
    shipped = save_for_inference(model, out, {"epoch": epochs, "train_seconds": train_seconds})  # no optimizer state
    card = {
        "name": recipe.name,
        "command": _command(argv),
        "seed": args.seed,
        "backend": keras.backend.backend(),
        "epochs": epochs,
        "batch_size": args.batch_size or recipe.batch_size,
        "distribute": bool(args.distribute),
        "compile_options": options,
        "train_images": len(x_train),
        "parameters": int(shipped.count_params()),  # what is shipped (a moving average replaces its generator)
        "versions": _versions(),
        "hardware": config.hardware(),
        "train_seconds": round(train_seconds, 1),
        "sha256": sha256_of(out),
        "metrics": {},
    }
    card_path = out.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"Wrote {out} and {card_path} ({train_seconds / 60:.1f} min of training)")
    if recipe.kind == "classifier":
        metrics = evaluation.evaluate("classifier", model, data.scale(x_test), y_test)
        _record(card_path, metrics, f"python -m companion evaluate {recipe.name}")
        _print_table(recipe.name, metrics)
    return model


def _record(card_path, metrics, command, key=None):
    """Writes metrics and the command that measured them into a model card."""
    card = json.loads(Path(card_path).read_text())
    entry = {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
    entry["command"] = command
    if key:
        card["metrics"][key] = entry
    else:
        card["metrics"].update(entry)
    Path(card_path).write_text(json.dumps(card, indent=2) + "\n")


def _print_table(name, metrics):
    width = max(len(k) for k in metrics)
    print(f"\n{name}")
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")


def evaluate(args, argv):
    import keras

    from companion import data, evaluation, recipes, weights

    recipe = recipes.get(args.model)
    model = keras.saving.load_model(args.weights, safe_mode=True) if args.weights else weights.load(recipe.name)
    (x_train, _), (x_test, y_test) = data.load_mnist(args.data_dir)
    x_test, y_test = data.scale(x_test), y_test.astype("int32")
    if args.test_images:
        x_test, y_test = x_test[: args.test_images], y_test[: args.test_images]
    classifier = None
    if recipe.kind == "gan" or recipe.conditional:
        classifier = keras.saving.load_model(args.classifier, safe_mode=True) if args.classifier else weights.load("classifier")
    metrics = evaluation.evaluate(
        recipe.kind, model, x_test, y_test, x_train=data.scale(x_train), classifier=classifier, k=args.k, seed=args.seed
    )
    _print_table(recipe.name, metrics)
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=2) + "\n")
    if args.update_card:
        weights_path = args.weights or weights.WEIGHTS_DIR / f"{recipe.name}.keras"
        _record(weights_path.with_suffix(".json"), metrics, _command(argv), key=args.record_as)
    return metrics


def bench(args, argv):
    from companion import benchmark

    result = benchmark.throughput(
        args.model, batch_size=args.batch_size, steps=args.steps, repeats=args.repeats, mixed_precision=args.mixed_precision,
        min_seconds=args.min_seconds,
    )
    if args.json == "-":
        print(json.dumps(result))
    else:
        print(f"{args.model} on {result['backend']}: {result['images_per_second']:.0f} images/s "
              f"(batch {args.batch_size}, median of {args.repeats})")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _set_backend(args.backend)
    return {"train": train, "evaluate": evaluate, "bench": bench}[args.command](args, argv)
