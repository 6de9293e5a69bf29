"""The GAN ablation of chapter 6: from the plain DCGAN recipe the book had before it (then named
`dcgan` in `companion.recipes`; the ablation led to today's `cluster_gan`), one technique at a time, then combinations, each trained for the
same wall-clock time on the 2-core CPU (PyTorch backend), with several seeds.

Equal time, not equal steps: each technique costs something per step (R1 a second
backward pass through the discriminator, the augmentation two einsums per image), and a
reader with a fixed budget wants to know what pays for its cost. So that other work on
the machine cannot shift the comparison, each configuration's speed is measured first,
alone (`--calibrate`: 10 warm-up steps, then steps for 30 s), and its run then takes
`minutes * 60 * steps_per_second` steps; the run's own wall-clock time is recorded beside.

Every run is evaluated on the full test set with `companion.evaluation.evaluate_gan` (what
`python -m companion evaluate` measures: classifier FID, KID, precision and recall,
density and coverage, the share of samples read with confidence >= 0.9, the share read as
each digit), appended to `bench/results/gan_ablation.jsonl`, and leaves a grid of 64
samples (fixed latents) in `bench/results/gan_ablation/`. A run already in the file is
skipped, so an interrupted ablation resumes where it stopped (losing at most the run in
progress). `--report` writes `bench/gan_ablation.md` and, for chapter 6,
`bench/results/gan_ablation_table.json`.

    .venv/bin/python bench/gan_ablation.py --calibrate
    .venv/bin/python bench/gan_ablation.py --minutes 10 --seeds 0 1
    .venv/bin/python bench/gan_ablation.py --report
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = RESULTS / "gan_ablation.jsonl"
CALIBRATION = RESULTS / "gan_ablation_calibration.json"
GRIDS = RESULTS / "gan_ablation"
REPORT = HERE / "gan_ablation.md"
TABLE = RESULTS / "gan_ablation_table.json"
BATCH_SIZE = 128

# name: (what the row says, DCGAN options, compile options). "baseline" is the book's
# `dcgan` recipe as it was before the ablation (non-saturating loss, Adam(2e-4, 0.5) for both).
CONFIGS = {
    "baseline": ("plain DCGAN (the starting point)", {}, {}),
    "ema": ("+ EMA of G (0.999)", {"ema_decay": 0.999}, {}),
    "spectral_norm": ("+ spectral norm in D", {"spectral_norm": True}, {}),
    "r1": ("+ R1 penalty (gamma 1)", {"r1_weight": 1.0}, {}),
    "ttur": ("+ TTUR (D 4e-4, G 1e-4)", {}, {"d_learning_rate": 4e-4, "g_learning_rate": 1e-4}),
    "hinge": ("+ hinge loss", {"gan_loss": "hinge"}, {}),
    "diffaugment": ("+ DiffAugment (translation, cutout)", {"augment": ("translation", "cutout")}, {}),
    "infogan": ("InfoGAN code (10 values, no labels)", {"model": "InfoGAN"}, {}),
    "infogan_ema": ("InfoGAN code + EMA", {"model": "InfoGAN", "ema_decay": 0.999}, {}),
    "clusters": ("k-means clusters as classes (20, no labels)", {"model": "ClusterGAN", "clusters": 20}, {}),
    "clusters_ema": ("k-means clusters as classes + EMA", {"model": "ClusterGAN", "clusters": 20, "ema_decay": 0.999}, {}),
    "sn_hinge_ttur_ema": (
        "SN + hinge + TTUR + EMA",
        {"spectral_norm": True, "gan_loss": "hinge", "ema_decay": 0.999},
        {"d_learning_rate": 4e-4, "g_learning_rate": 1e-4},
    ),
}


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def build(name, seed):
    import keras

    from companion import models

    _, options, compile_options = CONFIGS[name]
    options = dict(options)
    keras.utils.set_random_seed(seed)
    model = getattr(models, options.pop("model", "DCGAN"))(seed=seed, **options)
    model.compile(**compile_options)
    return model


def load_data():
    from companion import data

    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    return data.scale(x_train), data.scale(x_test), y_test.astype("int32")


class StopAfter:
    """A callback that ends `fit` after a number of GAN steps."""

    def __new__(cls, steps):
        import keras

        class _Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if int(self.model.optimizer.iterations.numpy()) >= steps:
                    self.model.stop_training = True

        return _Stop()


def calibrate(names, x_train, seconds=30.0):
    from companion import data

    rates = json.loads(CALIBRATION.read_text()) if CALIBRATION.is_file() else {}
    for name in names:
        model = build(name, seed=0)
        batches = data.MNISTBatches(x_train, batch_size=BATCH_SIZE, seed=0, drop_remainder=True)
        model.fit(batches, epochs=1, steps_per_epoch=10, verbose=0)  # warm-up
        started, steps = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            model.fit(batches, epochs=1, steps_per_epoch=20, verbose=0)
            steps += 20
        rate = steps / (time.perf_counter() - started)
        rates[name] = {"steps_per_second": round(rate, 4), "cpu": cpu_model(), "cpu_count": os.cpu_count()}
        print(f"{name:<20} {rate:.3f} steps/s ({rate * BATCH_SIZE:.0f} images/s)", flush=True)
        CALIBRATION.write_text(json.dumps(rates, indent=2) + "\n")
    return rates


def done_runs():
    if not RUNS.is_file():
        return set()
    return {(r["config"], r["seed"], r["minutes"]) for r in map(json.loads, RUNS.read_text().splitlines())}


def run(name, seed, minutes, x_train, x_test, y_test, classifier):
    import keras
    import numpy as np

    from companion import data, evaluation
    from companion.teaching import plotting

    rate = json.loads(CALIBRATION.read_text())[name]["steps_per_second"]
    steps = int(round(minutes * 60 * rate))
    model = build(name, seed)
    batches = data.MNISTBatches(x_train, batch_size=BATCH_SIZE, seed=seed, drop_remainder=True)
    epochs = -(-steps // len(batches))
    started = time.perf_counter()
    history = model.fit(batches, epochs=epochs, verbose=0, callbacks=[StopAfter(steps)])
    seconds = time.perf_counter() - started
    results = evaluation.evaluate_gan(model, x_test, x_train=x_train, classifier=classifier, seed=0)
    GRIDS.mkdir(parents=True, exist_ok=True)
    figure = plotting.image_grid(model.generate(64, seed=123), ncols=16, title=f"{CONFIGS[name][0]}, seed {seed}")
    figure.savefig(GRIDS / f"{name}_seed{seed}.png", dpi=80, bbox_inches="tight")
    record = {
        "config": name, "seed": seed, "minutes": minutes, "steps": int(model.optimizer.iterations.numpy()),
        "train_seconds": round(seconds, 1), "calibrated_steps_per_second": rate, "cpu": cpu_model(),
        "backend": keras.backend.backend(), "batch_size": BATCH_SIZE,
        "final_d_loss": float(np.asarray(history.history["d_loss"][-1])),
        "final_d_acc_real": float(np.asarray(history.history["d_acc_real"][-1])),
        **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in results.items()},
    }
    with RUNS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"{name} seed {seed}: {record['steps']} steps in {seconds:.0f} s, FID {results['fid']:.1f}, "
          f"precision {results['precision']:.2f}, recall {results['recall']:.2f}, density {results['density']:.2f}, "
          f"coverage {results['coverage']:.2f}, confident {results['confident_share']:.2f}", flush=True)


def report():
    import numpy as np

    from companion.teaching.plotting import markdown_table

    runs = [json.loads(line) for line in RUNS.read_text().splitlines()]
    for r in runs:  # the first runs recorded the ten shares themselves
        if "digit_shares" in r:
            r["digits_read_3pct"] = sum(share >= 0.03 for share in r["digit_shares"])
            r["largest_digit_share"] = max(r["digit_shares"])
    keys = ["fid", "kid", "precision", "recall", "density", "coverage", "confident_share", "digits_read_3pct"]
    headers = ["FID", "KID", "precision", "recall", "density", "coverage", "confident >= 0.9", "digits in >= 3%"]
    rows, table = [], []
    for name, (label, _, _) in CONFIGS.items():
        mine = [r for r in runs if r["config"] == name]
        if not mine:
            continue
        seeds = ", ".join(str(r["seed"]) for r in mine)
        steps = float(np.mean([r["steps"] for r in mine]))
        mean = {key: float(np.mean([r[key] for r in mine])) for key in keys}
        std = {key: float(np.std([r[key] for r in mine])) for key in keys}
        rows.append([label, seeds, f"{steps:.0f}"] + [f"{mean[k]:.3g}" + (f" ± {std[k]:.2g}" if len(mine) > 1 else "") for k in keys])
        table.append({
            "config": name, "label": label, "seeds": seeds, "steps": steps, "mean": mean, "std": std,
            "grid": str((GRIDS / f"{name}_seed{mine[0]['seed']}.png").relative_to(HERE.parent)),
        })
    cpus = sorted({r["cpu"] for r in runs})
    minutes = sorted({r["minutes"] for r in runs})
    setting = (
        f"Each row: a DCGAN trained for {', '.join(map(str, minutes))} minutes of calibrated wall-clock time on "
        f"the 2-core CPU ({', '.join(cpus)}), PyTorch backend, batch {BATCH_SIZE}; mean ± standard deviation over "
        "the seeds listed. Metrics on the full test set, in the evaluation classifier's features (lower FID and KID "
        "are better; precision, recall, coverage and the confident share run from 0 to 1; density is about 1 for "
        "samples distributed as the data); the last column counts the digits the classifier reads in at least 3% of "
        "the samples."
    )
    text = [
        "# GAN ablation (written by `bench/gan_ablation.py --report`)",
        "",
        setting + " Sample grids (64 samples, fixed latents): `bench/results/gan_ablation/CONFIG_seedS.png`.",
        "",
        markdown_table(rows, ["configuration", "seeds", "steps", *headers]).data,
        "",
    ]
    REPORT.write_text("\n".join(text))
    # What chapter 6 reads: the same rows, as numbers.
    TABLE.write_text(json.dumps({"setting": setting, "keys": keys, "headers": headers, "rows": table}, indent=1) + "\n")
    print("\n".join(text))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--calibrate", action="store_true", help="measure each configuration's steps per second alone")
    parser.add_argument("--report", action="store_true", help="write bench/gan_ablation.md from the runs")
    args = parser.parse_args(argv)
    if args.report:
        return report()
    x_train, x_test, y_test = load_data()
    if args.calibrate:
        return calibrate(args.configs, x_train)
    missing = [name for name in args.configs if name not in (json.loads(CALIBRATION.read_text()) if CALIBRATION.is_file() else {})]
    if missing:
        sys.exit(f"No calibration for {', '.join(missing)}: run with --calibrate --configs {' '.join(missing)} first")
    from companion import weights

    classifier = weights.load("classifier")
    done = done_runs()
    for seed in args.seeds:
        for name in args.configs:
            if (name, seed, args.minutes) in done:
                print(f"{name} seed {seed}: done, skipped")
                continue
            run(name, seed, args.minutes, x_train, x_test, y_test, classifier)


if __name__ == "__main__":
    main()
