"""Does bfloat16 training cost quality? The DCGAN-style cluster GAN and the convolutional VAE,
each trained the same number of epochs under float32 and under mixed_bfloat16, two seeds each.

Each run is `python -m companion train MODEL --epochs E --seed S --precision P` in a fresh
process (PyTorch by default: the backend where bfloat16 paid on the CPUs measured,
`bench/bf16.py`). Every trained model is then measured the same way, in float32: its weights
(float32 under both policies) are set into the same network built under float32, so the
figures compare what training learned, not the precision of the measurement. The GAN: the
classifier FID of 10,000 samples against the 10,000 test images; the VAE: the negative ELBO
(nats per image) on the test images, dynamically binarized as in training.

The question is whether the bfloat16 runs land within the float32 runs' seed-to-seed spread:
the report gives both seeds' figures under each policy, the spread |seed 0 - seed 1| of
float32, and the difference of the two policies' means.

    .venv/bin/python bench/bf16_quality.py [--epochs 6] [--backend torch]

Results: `bench/results/bf16_quality.jsonl` (a run already there is skipped; `--fresh` starts
over). About an hour on two CPU cores at 6 epochs: run it alone.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "bf16_quality.jsonl"
MODELS = {"cluster_gan": "fid", "conv_vae": "negative_elbo"}
POLICIES = ("float32", "bfloat16")
SEEDS = (0, 1)


def measure(name, weights_path, seed):
    """The run's figure, measured in float32 (see the module's docstring)."""
    from companion import data, recipes, weights
    from companion.training import precision

    recipe = recipes.get(name)
    trained = weights.load_file(weights_path)
    config = trained.get_config()
    config.pop("dtype", None)  # the trained model's policy; the copy takes float32
    with precision.policy_scope("float32"):
        model = trained.__class__.from_config(config)
        if not model.built:
            model.build_from_config(trained.get_build_config())
    assert {layer.dtype_policy.name for layer in model._flatten_layers()} == {"float32"}
    for target, source in zip(model.weights, trained.weights, strict=True):
        target.assign(source)
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    classifier = weights.load("classifier") if recipe.kind.needs_classifier(recipe) else None
    metrics = recipe.evaluate(model, data.scale(x_test), y_test, x_train=data.scale(x_train), classifier=classifier, k=1,
                              seed=0, progress=False)
    return float(metrics[MODELS[name]])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # The cluster GAN ships its generator's moving average (decay 0.999): after one epoch (468
    # steps) it is still 63% the initial weights, and both policies scored FID 1,358-1,360.
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--backend", default="torch", choices=("tensorflow", "jax", "torch"))
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--measure", nargs=3, metavar=("MODEL", "WEIGHTS", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        name, path, seed = args.measure
        print(json.dumps({"value": measure(name, path, int(seed))}))
        return
    from companion import config

    rows = [] if args.fresh or not RESULTS.exists() else [json.loads(x) for x in RESULTS.read_text().splitlines() if x.strip()]
    if args.fresh and RESULTS.exists():
        RESULTS.unlink()
    done = {(r["model"], r["precision"], r["seed"], r["epochs"], r["backend"]) for r in rows}
    env = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    folder = Path(tempfile.mkdtemp(prefix="bf16_quality_"))
    for name in MODELS:
        for seed in SEEDS:
            for policy in POLICIES:
                if (name, policy, seed, args.epochs, args.backend) in done:
                    continue
                out = folder / f"{name}_{policy}_{seed}.keras"
                command = [sys.executable, "-m", "companion", "train", name, "--epochs", str(args.epochs), "--seed", str(seed),
                           "--precision", policy, "--backend", args.backend, "--verbose", "0", "--out", str(out),
                           "--checkpoint", str(folder / f"{name}_{policy}_{seed}.ckpt.keras"), "--restart"]
                start = time.monotonic()
                subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
                seconds = time.monotonic() - start
                measured = subprocess.run([sys.executable, __file__, "--measure", name, str(out), str(seed)], check=True, env=env,
                                          capture_output=True, text=True)
                value = json.loads(measured.stdout.strip().splitlines()[-1])["value"]
                card = json.loads(out.with_suffix(".json").read_text())
                row = {"model": name, "precision": policy, "seed": seed, "epochs": args.epochs, "backend": args.backend,
                       "metric": MODELS[name], "value": value, "train_seconds": card["train_seconds"], "process_seconds": seconds,
                       "policy": card["precision"]["policy"], "cpu": config.hardware_text()}
                rows.append(row)
                RESULTS.parent.mkdir(exist_ok=True)
                with RESULTS.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{name} {policy} seed {seed}: {MODELS[name]} {value:.2f} ({card['train_seconds']:.0f} s of training)", flush=True)
    print(f"\n{config.hardware_text()}, {args.backend}, {args.epochs} epochs, measured in float32:")
    for name, metric in MODELS.items():
        values = {p: [r["value"] for r in rows if (r["model"], r["precision"], r["epochs"], r["backend"]) == (name, p, args.epochs,
                                                                                                        args.backend)]
                  for p in POLICIES}
        seconds = {p: [r["train_seconds"] for r in rows if (r["model"], r["precision"], r["epochs"], r["backend"]) ==
                       (name, p, args.epochs, args.backend)] for p in POLICIES}
        if not all(len(v) == len(SEEDS) for v in values.values()):
            continue
        spread = abs(values["float32"][0] - values["float32"][1])
        gap = statistics.mean(values["bfloat16"]) - statistics.mean(values["float32"])
        print(f"  {name} {metric}: float32 {values['float32'][0]:.2f} / {values['float32'][1]:.2f} (spread {spread:.2f}); "
              f"bfloat16 {values['bfloat16'][0]:.2f} / {values['bfloat16'][1]:.2f}; difference of means {gap:+.2f} "
              f"({'within' if abs(gap) <= spread else 'outside'} the float32 spread); training time bfloat16 / float32 "
              f"{sum(seconds['bfloat16']) / sum(seconds['float32']):.2f}")


if __name__ == "__main__":
    main()
