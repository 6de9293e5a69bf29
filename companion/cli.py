"""The command line: train, evaluate and benchmark the book's models.

    python -m companion train MODEL [--epochs N] [--seed S] [--backend B] [--out PATH] [--resume]
                                    [--precision auto|float32|bfloat16]
    python -m companion evaluate MODEL [--weights PATH] [--json PATH]
    python -m companion bench MODEL [--backend B] [--batch-size N] [--json PATH]

Every option is checked before any work starts: counts positive, files of the right
suffix in folders that can be written, the checkpoint of `--resume` present and written by
a run of the same model with the same settings. An error names the option, what was
expected and what was received, and exits with status 2; success exits with 0.

`train` shows Keras's progress bar, writes an atomic checkpoint after every epoch and,
with `--resume`, continues an interrupted run from it. When it finishes it saves the
model to `--out` and writes the model card beside it. `--precision auto` (the default) trains
under bfloat16 only where the machine has bfloat16 units and a short measurement finds it
pays (`companion.training.precision`); it prints what it chose and why, and the card records
it. `evaluate` prints a table of the
model's metrics and writes them as JSON. `bench` measures training images per second
(`companion.training.benchmark`). The same program is installed as `companion`.
"""

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
# The names of companion.recipes.RECIPES, listed here so that parsing the command line
# imports no Keras (the backend must be chosen first); a test keeps the two equal.
NAMES = ("classifier", "mlp_vae", "conv_vae", "ar_vae", "conditional_vae", "mlp_gan", "cluster_gan", "acgan", "cluster_wgan_gp", "denoiser", "diffusion")
# The settings of a run that its checkpoint records; resuming with other values is refused.
RUN_SETTINGS = ("model", "epochs", "batch_size", "seed", "train_images", "precision")
MNIST_TEST_IMAGES = 10000


class UsageError(Exception):
    """A bad option, found before any work started; the message names the option."""


def _count(text):
    """argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _seed(text):
    """argparse type: a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, received {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, received {text!r}")
    return value


def _seconds(text):
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, received {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, received {text!r}")
    return value


def _unit_interval(text):
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], received {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], received {text!r}")
    return value


def _parser():
    parser = argparse.ArgumentParser(prog="python -m companion", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model and write its weights and model card")
    train.add_argument("model", choices=NAMES)
    train.add_argument("--epochs", type=_count, help="number of epochs (default: the recipe's)")
    train.add_argument("--batch-size", type=_count, help="batch size (default: the recipe's)")
    train.add_argument("--seed", type=_seed, default=0)
    train.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    train.add_argument("--out", type=Path, help="weights file, .keras (default: companion/weights/MODEL.keras)")
    train.add_argument("--checkpoint", type=Path, help="checkpoint file, .keras (default: runs/MODEL.ckpt.keras)")
    resume = train.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="continue the run of the checkpoint (an error if there is none, unless --allow-fresh)")
    resume.add_argument("--restart", action="store_true", help="start afresh, replacing an existing checkpoint")
    train.add_argument("--allow-fresh", action="store_true", help="with --resume: start afresh when no checkpoint exists")
    train.add_argument("--data-dir", type=Path, help="folder of the MNIST IDX files (default: COMPANION_MNIST_DIR, else download)")
    train.add_argument("--train-images", type=_count, help="train on the first N images only (quick runs)")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    train.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                       help="float32, or bfloat16 (Keras's mixed_bfloat16 policy: bfloat16 layers, float32 weights); auto "
                            "(default): bfloat16 only where the CPU or GPU has bfloat16 units and a short measurement "
                            "finds its step at least 1.1x as fast (companion.training.precision)")
    train.add_argument("--distribute", action="store_true",
                       help="data-parallel training on all local devices: keras.distribution.DataParallel on jax, "
                            "tf.distribute.MirroredStrategy on tensorflow (companion.training.distribute)")

    evaluate = commands.add_parser("evaluate", help="measure a model and print its metrics")
    evaluate.add_argument("model", choices=NAMES)
    evaluate.add_argument("--weights", type=Path, help="weights file, .keras (default: the shipped one)")
    evaluate.add_argument("--backend", choices=BACKENDS)
    evaluate.add_argument("--data-dir", type=Path)
    evaluate.add_argument("--test-images", type=_count, help="evaluate on the first N test images only")
    evaluate.add_argument("--seed", type=_seed, default=0)
    evaluate.add_argument("--k", type=_count, default=1000, help="importance samples per image for the VAEs' NLL bound")
    evaluate.add_argument("--classifier", type=Path, help="evaluation classifier, .keras (default: the shipped one)")
    evaluate.add_argument("--sampling-steps", type=_count, help="diffusion: DDIM steps of the measured samples (default: 50)")
    evaluate.add_argument("--eta", type=_unit_interval,
                          help="diffusion: DDIM's eta, 0 (deterministic) to 1 (the ancestral sampler's noise) (default: the model's)")
    evaluate.add_argument("--timed-images", type=_seed,
                          help="diffusion: images timed and measured at each step count, 0 for none (default: 1000)")
    evaluate.add_argument("--no-families", action="store_true",
                          help="diffusion: leave out the comparison with the best VAE and GAN")
    evaluate.add_argument("--json", type=Path, help="write the metrics here, .json (default: print only)")
    evaluate.add_argument("--update-card", action="store_true", help="record the metrics in the model card beside the weights")
    evaluate.add_argument("--record-as", help="with --update-card: record under metrics[RECORD_AS] (e.g. a subset's figures)")

    bench = commands.add_parser("bench", help="measure training images per second on one backend")
    bench.add_argument("model", choices=NAMES)
    bench.add_argument("--backend", choices=BACKENDS)
    bench.add_argument("--batch-size", type=_count, default=128)
    bench.add_argument("--steps", type=_count, help="steps per timed run (default: as many as fill --min-seconds)")
    bench.add_argument("--min-seconds", type=_seconds, default=2.0, help="length of a timed run when --steps is not given")
    bench.add_argument("--repeats", type=_count, default=5, help="timed runs after one warm-up run; the median is reported")
    bench.add_argument("--mixed-precision", action="store_true", help="train under the mixed_bfloat16 policy")
    bench.add_argument("--json", help="write the result as JSON to this file (.json), or to standard output with -")
    return parser


# ----------------------------------------------------------------------------- checks before work


def _writable_file(option, path, suffix):
    """Refuses `path` unless it ends in `suffix` and lies in a folder that exists or can be made."""
    path = Path(path)
    if path.suffix != suffix:
        raise UsageError(f"{option}: expected a file ending in {suffix}, received {str(path)!r}")
    if path.is_dir():
        raise UsageError(f"{option}: expected a file ending in {suffix}, received {str(path)!r}, which is a folder")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option}: expected a path in a folder, received {str(path)!r}, under the file {str(ancestor)!r}")
    if not os.access(ancestor, os.W_OK):
        raise UsageError(f"{option}: expected a path that can be written, received {str(path)!r} ({str(ancestor)!r} is read-only)")
    return path


def _readable_file(option, path, suffix):
    path = Path(path)
    if path.suffix != suffix:
        raise UsageError(f"{option}: expected a file ending in {suffix}, received {str(path)!r}")
    if not path.is_file():
        raise UsageError(f"{option}: expected an existing file, received {str(path)!r}, which does not exist")
    return path


def _folder(option, path):
    if path is not None and not Path(path).is_dir():
        raise UsageError(f"{option}: expected an existing folder, received {str(path)!r}")
    return path


def _run_settings(args, recipe, train_images):
    return {"model": recipe.name, "epochs": args.epochs or recipe.epochs, "batch_size": args.batch_size or recipe.batch_size,
            "seed": args.seed, "train_images": train_images}


def _check_resume(args, checkpoint_path, settings):
    """What to do with the checkpoint: returns True to resume from it; refuses a mismatch."""
    from companion.training.checkpoints import read_progress

    exists = checkpoint_path.is_file()
    if args.allow_fresh and not args.resume:
        raise UsageError("--allow-fresh: expected together with --resume, received it alone")
    if not args.resume:
        if exists and not args.restart:
            raise UsageError(
                f"--checkpoint: a checkpoint already exists at {str(checkpoint_path)!r}; pass --resume to continue its run, "
                "or --restart to start afresh and replace it"
            )
        return False
    if not exists:
        if args.allow_fresh:
            return False
        raise UsageError(
            f"--resume: expected a checkpoint at {str(checkpoint_path)!r}, received no such file "
            "(name it with --checkpoint, or add --allow-fresh to start afresh when there is none)"
        )
    try:
        progress = read_progress(checkpoint_path)
    except Exception as error:  # a truncated or foreign file: say which and why
        raise UsageError(f"--resume: the checkpoint {str(checkpoint_path)!r} cannot be read: {error}") from None
    recorded = progress.get("run")
    if not recorded:
        raise UsageError(
            f"--resume: the checkpoint {str(checkpoint_path)!r} records no run settings (it was not written by "
            "`companion train`); pass --restart to start afresh"
        )
    for key in RUN_SETTINGS:
        if key in recorded and key in settings and recorded[key] != settings[key]:
            option = "MODEL" if key == "model" else "--" + key.replace("_", "-")
            raise UsageError(
                f"{option}: the checkpoint {str(checkpoint_path)!r} was written by a run with {key}={recorded[key]!r}, "
                f"received {settings[key]!r}; resume with the same settings (its learning-rate schedule and data "
                "order depend on them), or pass --restart to start afresh"
            )
    return True


def _check_train(args, recipe):
    from companion.weights import WEIGHTS_DIR

    out = _writable_file("--out", args.out or WEIGHTS_DIR / f"{recipe.name}.keras", ".keras")
    checkpoint = _writable_file("--checkpoint", args.checkpoint or Path("runs") / f"{recipe.name}.ckpt.keras", ".keras")
    if out.resolve() == checkpoint.resolve():
        raise UsageError(f"--out: expected a file other than the checkpoint, received {str(out)!r} for both")
    _folder("--data-dir", args.data_dir)
    return out, checkpoint


def _check_evaluate(args):
    if args.weights is not None:
        _readable_file("--weights", args.weights, ".keras")
    if args.classifier is not None:
        _readable_file("--classifier", args.classifier, ".keras")
    if args.json is not None:
        _writable_file("--json", args.json, ".json")
    if args.record_as is not None and not args.update_card:
        raise UsageError(f"--record-as: expected together with --update-card, received --record-as {args.record_as!r} alone")
    if args.test_images is not None and args.test_images > MNIST_TEST_IMAGES:
        raise UsageError(f"--test-images: expected at most {MNIST_TEST_IMAGES:,} (MNIST's test set), received {args.test_images}")
    _folder("--data-dir", args.data_dir)
    for option, value in (("--sampling-steps", args.sampling_steps), ("--eta", args.eta), ("--timed-images", args.timed_images),
                          ("--no-families", args.no_families or None)):
        if value is not None and args.model != "diffusion":
            raise UsageError(f"{option}: expected only with the diffusion model, received with {args.model}")
    if args.update_card:
        from companion.weights import WEIGHTS_DIR

        card = (args.weights or WEIGHTS_DIR / f"{args.model}.keras").with_suffix(".json")
        if not card.is_file():
            raise UsageError(f"--update-card: expected a model card at {str(card)!r}, beside the weights; there is none")


def _check_bench(args):
    if args.json not in (None, "-"):
        _writable_file("--json", args.json, ".json")


def _set_backend(backend):
    if not backend:
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise UsageError(f"--backend: expected the running backend {keras.backend.backend()!r}, received {backend!r} "
                             "(Keras is already imported in this process)")
    os.environ["KERAS_BACKEND"] = backend


def _command(argv):
    return "python -m companion " + " ".join(shlex.quote(a) for a in argv)


def train(args, argv):
    from companion import data, recipes
    from companion.training import precision

    recipe = recipes.get(args.model)
    out, checkpoint_path = _check_train(args, recipe)
    (x_train, y_train), (x_test, y_test) = data.load_mnist(args.data_dir)
    if args.train_images is not None and args.train_images > len(x_train):
        raise UsageError(f"--train-images: expected at most {len(x_train):,}, the training images there are, received {args.train_images:,}")
    x_train, y_train = data.scale(x_train), y_train.astype("int32")
    if args.train_images:
        x_train, y_train = x_train[: args.train_images], y_train[: args.train_images]
    settings = _run_settings(args, recipe, len(x_train))
    resume = _check_resume(args, checkpoint_path, settings)
    choice = _choose_precision(args, recipe, resume, checkpoint_path, x_train, y_train, settings)
    settings["precision"] = choice["policy"]

    with contextlib.ExitStack() as stack:
        if args.distribute:
            from companion.training import distribute

            devices = stack.enter_context(distribute.data_parallel())
            print(f"Data-parallel training on {len(devices)} devices: {', '.join(map(str, devices))}")
        stack.enter_context(precision.policy_scope(choice["policy"]))  # the layers take it when they are built or loaded
        return _train(args, argv, recipe, settings, choice, resume, out, checkpoint_path, x_train, y_train, x_test, y_test)


def _choose_precision(args, recipe, resume, checkpoint_path, x_train, y_train, settings):
    """`precision.choose` for `--precision`; a resumed run keeps its checkpoint's policy."""
    from companion.training import precision
    from companion.training.checkpoints import read_progress

    if resume:
        recorded = read_progress(checkpoint_path)["run"].get("precision", "float32")  # older checkpoints: float32
        if args.precision != "auto" and precision.POLICIES[args.precision] != recorded:
            raise UsageError(
                f"--precision: the checkpoint {str(checkpoint_path)!r} was written by a run under the {recorded} policy, "
                f"received --precision {args.precision}; resume with the same precision (or auto), or pass --restart"
            )
        choice = {"requested": args.precision, "policy": recorded, "reason": "the resumed run's policy"}
    else:
        choice = precision.choose(args.precision, probe=lambda: precision.probe_ratio(
            recipe, x_train, y_train, settings["batch_size"], seed=args.seed))
    print(f"Precision: {choice['policy']} ({choice['reason']})")
    return choice


def _train(args, argv, recipe, settings, choice, resume, out, checkpoint_path, x_train, y_train, x_test, y_test):
    import keras

    from companion import data, weights
    from companion.training import NaNGuard, ResumableCheckpoint, resume_training
    from companion.training.checkpoints import read_progress, remove_leftovers, save_for_inference

    remove_leftovers(out)  # what a killed write of the weights left (the checkpoint's own: ResumableCheckpoint)
    epochs = settings["epochs"]
    options = recipe.compile_options()  # on TensorFlow: XLA, unless a multi-replica strategy is active
    initial_epoch, seconds_before = 0, 0.0
    if resume:
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
    checkpoint = ResumableCheckpoint(checkpoint_path, extra_progress=lambda: {"train_seconds": elapsed(), "run": settings})
    guard = NaNGuard()
    model.fit(batches, epochs=epochs, initial_epoch=initial_epoch, verbose=args.verbose, callbacks=[guard, checkpoint])
    train_seconds = elapsed()
    if guard.stopped:
        raise SystemExit(f"Training stopped on a non-finite value: {guard.stopped}; the last good checkpoint is {checkpoint_path}")

    out.parent.mkdir(parents=True, exist_ok=True)
    shipped = save_for_inference(model, out, {"epoch": epochs, "train_seconds": train_seconds})  # no optimizer state
    card_path = weights.write_card(
        out, name=recipe.name, command=_command(argv), seed=args.seed, epochs=epochs, batch_size=settings["batch_size"],
        distribute=bool(args.distribute), compile_options=options, train_images=len(x_train),
        parameters=int(shipped.count_params()),  # what is shipped (a moving average replaces its generator)
        train_seconds=train_seconds, precision=choice,
    )
    print(f"Wrote {out} and {card_path} ({train_seconds / 60:.1f} min of training)")
    if recipe.kind.measured_when_trained:
        metrics = recipe.evaluate(model, data.scale(x_test), y_test)
        weights.record_metrics(card_path, metrics, f"python -m companion evaluate {recipe.name}")
        _print_table(recipe.name, metrics)
    return model


def _print_table(name, metrics):
    width = max(len(k) for k in metrics)
    print(f"\n{name}")
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")


def evaluate(args, argv):
    _check_evaluate(args)
    from companion import data, recipes, weights

    recipe = recipes.get(args.model)
    model = weights.load_file(args.weights) if args.weights else weights.load(recipe.name)
    if recipe.name == "diffusion" and args.sampling_steps is not None and args.sampling_steps > model.timesteps:
        raise UsageError(f"--sampling-steps: expected at most {model.timesteps} (the model's timesteps), received {args.sampling_steps}")
    (x_train, _), (x_test, y_test) = data.load_mnist(args.data_dir)
    x_test, y_test = data.scale(x_test), y_test.astype("int32")
    if args.test_images:
        x_test, y_test = x_test[: args.test_images], y_test[: args.test_images]
    classifier = None
    if recipe.kind.needs_classifier(recipe):
        classifier = weights.load_file(args.classifier) if args.classifier else weights.load("classifier")
    options = {}
    if recipe.name == "diffusion":
        if args.eta is not None:
            model.eta = args.eta  # the samplers' default, which evaluate_diffusion records
        weights_path = args.weights or weights.WEIGHTS_DIR / f"{recipe.name}.keras"
        card_path = weights_path.with_suffix(".json")
        options = {"steps": args.sampling_steps or 50, "timed_images": 1000 if args.timed_images is None else args.timed_images,
                   "card": None if args.no_families else weights.read_card(card_path) if card_path.is_file() else {}}
    metrics = recipe.evaluate(model, x_test, y_test, x_train=data.scale(x_train), classifier=classifier, k=args.k, seed=args.seed,
                              **options)
    _print_table(recipe.name, metrics)
    if args.json:
        weights.write_json(args.json, metrics)
    if args.update_card:
        weights_path = args.weights or weights.WEIGHTS_DIR / f"{recipe.name}.keras"
        weights.record_metrics(weights_path.with_suffix(".json"), metrics, _command(argv), key=args.record_as)
    return metrics


def bench(args, argv):
    _check_bench(args)
    from companion import weights
    from companion.training import benchmark

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
            weights.write_json(args.json, result)
    return result


def run(argv):
    """Runs one command and returns what it made (the trained model, the metrics, the
    benchmark result), for use from Python; a bad option raises `UsageError`."""
    argv = list(argv)
    args = _parser().parse_args(argv)
    _set_backend(args.backend)
    return {"train": train, "evaluate": evaluate, "bench": bench}[args.command](args, argv)


def main(argv=None):
    """The program: exits 0 on success, 2 on a bad option (with its message), 1 on failure."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        run(argv)
    except UsageError as error:
        command = argv[0] if argv and argv[0] in ("train", "evaluate", "bench") else ""
        print(f"python -m companion {command}: error: {error}".replace("  ", " "), file=sys.stderr)
        return 2
    return 0
