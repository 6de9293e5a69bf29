"""Variants of the shipped `cluster_gan` recipe (a `ClusterGAN`; named `dcgan` until 2026-12-03), each trained for a stretch of
wall-clock time on the 2-core CPU, with its quality measured along the way: the curve of
classifier FID, recall and the rest against training minutes tells whether a variant is
ahead of the recipe at equal time, and whether it is still improving when the run ends.

Every `--every` minutes of training (the evaluation's own time is not counted), the live
generator and, where there is one, its moving average are evaluated on 10,000 samples
against the 10,000 test images with `companion.evaluation.evaluate_gan` (what `python -m
companion evaluate` measures). Each evaluation is appended to
`bench/results/gan_variants.jsonl` with the variant, seed, steps and minutes, so a curve
survives an interrupted run; a finished variant and seed is skipped when run again.

    .venv/bin/python bench/gan_variants.py --variants recipe clusters50 --minutes 15 --every 5
    .venv/bin/python bench/gan_variants.py --report
    .venv/bin/python bench/gan_variants.py --checkpoint runs/cluster_gan.ckpt.keras

`--checkpoint` measures, the same way, the live generator and its average in a checkpoint
that `python -m companion train` left (the shipped file keeps the average alone): whether
the average paid over the whole run.

The ablation (`gan_ablation.py`) asks which single technique pays in ten minutes from a
plain DCGAN; this asks which change to today's recipe pays, over longer runs.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "gan_variants.jsonl"
BATCH_SIZE = 128

# name: (what it changes, ClusterGAN options, compile options). "recipe" is `cluster_gan` in
# companion/recipes.py.
RECIPE = {"clusters": 20, "ema_decay": 0.999}
VARIANTS = {
    "recipe": ("the shipped recipe (20 clusters, EMA 0.999)", {}, {}),
    "clusters50": ("50 clusters", {"clusters": 50}, {}),
    "hinge": ("hinge loss", {"gan_loss": "hinge"}, {}),
    "class_weight_half": ("class weight 0.5", {"class_weight": 0.5}, {}),
    "clusters50_hinge": ("50 clusters, hinge loss", {"clusters": 50, "gan_loss": "hinge"}, {}),
}


class LiveGenerator:
    """What `evaluation.evaluate_gan` needs of a model (`conditional`, `generate`), drawn from
    the generator being trained rather than from its moving average."""

    conditional = False

    def __init__(self, model):
        self.model = model

    def generate(self, n, labels=None, seed=None, batch_size=1000):
        import numpy as np
        from keras import ops

        z = self.model.sample_latents(n, seed)
        return np.concatenate(
            [ops.convert_to_numpy(self.model.generator(ops.convert_to_tensor(z[i : i + batch_size]), training=False))
             for i in range(0, n, batch_size)]
        )


def done():
    if not RESULTS.is_file():
        return set()
    return {(r["variant"], r["seed"], r["minutes_planned"]) for r in map(json.loads, RESULTS.read_text().splitlines()) if r.get("last")}


def run(name, seed, minutes, every, x_train, x_test, y_test, classifier):
    import keras

    from companion import data
    from companion.models import ClusterGAN

    _, options, compile_options = VARIANTS[name]
    keras.utils.set_random_seed(seed)
    model = ClusterGAN(**{**RECIPE, **options}, seed=seed)
    model.compile(**compile_options)
    batches = data.MNISTBatches(x_train, batch_size=BATCH_SIZE, seed=seed, drop_remainder=True)
    trained, next_eval = 0.0, every * 60

    class Clock(keras.callbacks.Callback):
        """Stops `fit` at the next evaluation time (training seconds only)."""

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            nonlocal trained
            trained += time.perf_counter() - self.started
            if trained >= next_eval:
                self.model.stop_training = True

    while trained < minutes * 60:
        model.fit(batches, epochs=1000, verbose=0, callbacks=[Clock()])
        record = {"variant": name, "seed": seed, "minutes_planned": minutes, "train_minutes": round(trained / 60, 2),
                  "last": trained >= minutes * 60}
        measure(model, record, x_train, x_test, y_test, classifier)
        next_eval += every * 60
    return model


def measure(model, record, x_train, x_test, y_test, classifier):
    """Evaluates the live generator of `model` and its average (if any); appends one line
    each, `record` and the metrics, to the results."""
    import keras

    from companion import evaluation
    from companion.cli import _hardware

    steps, hardware = int(model.optimizer.iterations.numpy()), _hardware()
    for generator, which in ((LiveGenerator(model), "live"), (model, "average")):
        if which == "average" and model.ema_generator is None:
            continue
        results = evaluation.evaluate_gan(generator, x_test, x_train=x_train, classifier=classifier, seed=0)
        line = {
            **record, "generator": which, "steps": steps, "hardware": hardware, "backend": keras.backend.backend(),
            "batch_size": BATCH_SIZE, **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in results.items()},
        }
        with RESULTS.open("a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"{record['variant']} seed {record['seed']} {which:>7}: {record['train_minutes']:5.1f} min, {steps} steps: "
              f"FID {results['fid']:.1f}, precision {results['precision']:.2f}, recall {results['recall']:.2f}, "
              f"coverage {results['coverage']:.2f}, confident {results['confident_share']:.2f}", flush=True)


def measure_checkpoint(path, x_train, x_test, y_test, classifier):
    import keras

    from companion.training.checkpoints import read_progress

    model = keras.saving.load_model(path, safe_mode=True)
    progress = read_progress(path)
    record = {"variant": f"checkpoint {path.name}", "seed": None, "minutes_planned": None,
              "train_minutes": round(float(progress.get("train_seconds", 0.0)) / 60, 2), "last": True,
              "config": model.get_config()}
    measure(model, record, x_train, x_test, y_test, classifier)


def report():
    from companion.teaching.plotting import markdown_table

    runs = [json.loads(line) for line in RESULTS.read_text().splitlines()]
    rows = [
        [VARIANTS[r["variant"]][0] if r["variant"] in VARIANTS else r["variant"], r["seed"], r["generator"], f"{r['train_minutes']:.1f}", r["steps"], f"{r['fid']:.1f}",
         f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['coverage']:.3f}", f"{r['confident_share']:.3f}"]
        for r in runs
    ]
    cpus = "; ".join(sorted({f"{r['hardware']['cpu']}, {r['hardware'].get('cpu_family_model', '')}" for r in runs}))
    print(f"ClusterGAN variants, batch {BATCH_SIZE}, PyTorch backend, 2 cores ({cpus}); metrics on the full test set.\n")
    print(markdown_table(rows, ["variant", "seed", "generator", "minutes", "steps", "FID", "precision", "recall",
                                "coverage", "confident"]).data)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["recipe"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training minutes per variant")
    parser.add_argument("--every", type=float, default=5.0, help="training minutes between evaluations")
    parser.add_argument("--report", action="store_true", help="print the table of every evaluation recorded")
    parser.add_argument("--checkpoint", type=Path, help="measure the live generator and its average in this checkpoint")
    args = parser.parse_args(argv)
    if args.report:
        return report()
    for name, value in (("--minutes", args.minutes), ("--every", args.every)):
        if not value > 0:
            parser.error(f"{name} must be positive. Received: {value}")
    from companion import weights
    from gan_ablation import load_data  # the same images, scaled the same way

    x_train, x_test, y_test = load_data()
    classifier = weights.load("classifier")
    if args.checkpoint:
        return measure_checkpoint(args.checkpoint, x_train, x_test, y_test, classifier)
    finished = done()
    for seed in args.seeds:
        for name in args.variants:
            if (name, seed, args.minutes) in finished:
                print(f"{name} seed {seed}: done, skipped")
                continue
            run(name, seed, args.minutes, args.every, x_train, x_test, y_test, classifier)


if __name__ == "__main__":
    main()
