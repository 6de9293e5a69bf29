"""Training throughput of every model on one GPU: JAX and PyTorch, batch 256 and 1024, float32 and bf16.

For the device machine of the developers' guide (it has JAX and PyTorch but neither TensorFlow
nor Keras: carry the `keras` wheel and its small needs, see bench/README.md). Each backend runs
in its own process, since a process holds one Keras backend, and measures every model at each
batch size and precision with `companion.training.benchmark.throughput` (one warm-up run, then the median
of `--repeats` timed runs). Every configuration also checks that the trained model's samples (or
outputs) are finite. One JSON line per configuration goes to `--out` as soon as it is measured,
so a run cut short keeps what it measured; a failing configuration is recorded with its error
and the run goes on.

    python bench/gpu.py --out bench/results/gpu.jsonl
    python bench/gpu.py --table bench/results/gpu.jsonl      # the Markdown table of a finished run
"""

import argparse
import json
import os
import subprocess
import sys
import time
import traceback

MODELS = ["mlp_vae", "conv_vae", "ar_vae", "conditional_vae", "mlp_gan", "cluster_gan", "cluster_wgan_gp", "acgan",
          "denoiser", "classifier"]


def _device_name():
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import jax

    return str(jax.devices()[0].device_kind)


def worker(args):
    """Measures every configuration on the backend of this process (KERAS_BACKEND)."""
    from companion.training import benchmark

    device = _device_name()
    with open(args.out, "a") as out:
        for name in args.models:
            for batch_size in args.batch_sizes:
                for mixed in (False, True):
                    start = time.perf_counter()
                    try:
                        result = benchmark.throughput(name, batch_size=batch_size, steps=args.steps, repeats=args.repeats,
                                                      mixed_precision=mixed)
                        result.pop("runs")
                    except Exception as error:  # recorded, and the next configuration runs
                        result = {"model": name, "backend": os.environ["KERAS_BACKEND"], "batch_size": batch_size,
                                  "mixed_precision": mixed, "error": f"{type(error).__name__}: {error}"[:500]}
                        traceback.print_exc()
                    result.update(device=device, seconds=round(time.perf_counter() - start, 1))
                    out.write(json.dumps(result) + "\n")
                    out.flush()
                    print(json.dumps(result), flush=True)


def table(path):
    """The Markdown table of a results file: images per second, float32 and bf16, per backend and batch size."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    cells = {}  # (model, backend, batch) -> {"fp32"|"bf16": result row}
    for r in rows:
        cells.setdefault((r["model"], r["backend"], r["batch_size"]), {})["bf16" if r["mixed_precision"] else "fp32"] = r

    def shown(r):
        if r is None:
            return "-"
        if "error" in r:
            return "failed"
        return f"{r['images_per_second']:,.0f}" + ("" if r["outputs_finite"] and r["final_loss_finite"] else " (NaN)")

    def measured(r):
        return r is not None and "error" not in r

    devices = sorted({r["device"] for r in rows})
    lines = [f"Training images per second on {', '.join(devices)} (median of timed runs after a warm-up run).", "",
             "| model | backend | batch | float32 | bf16 mixed | bf16 / float32 |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for (model, backend, batch), v in cells.items():
        fp32, bf16 = v.get("fp32"), v.get("bf16")
        ratio = f"{bf16['images_per_second'] / fp32['images_per_second']:.2f}" if measured(fp32) and measured(bf16) else "-"
        lines.append(f"| {model} | {backend} | {batch} | {shown(fp32)} | {shown(bf16)} | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench/results/gpu.jsonl", help="JSON lines, one per configuration")
    parser.add_argument("--backends", nargs="+", default=["jax", "torch"])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after the warm-up run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per backend")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--table", metavar="RESULTS", help="print the Markdown table of a results file and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.table))
        return
    if args.worker:
        worker(args)
        return
    for backend in args.backends:
        command = [sys.executable, __file__, "--worker", "--out", args.out, "--models", *args.models, "--batch-sizes",
                   *map(str, args.batch_sizes), "--steps", str(args.steps), "--repeats", str(args.repeats)]
        try:
            subprocess.run(command, env={**os.environ, "KERAS_BACKEND": backend}, timeout=args.timeout, check=False)
        except subprocess.TimeoutExpired:
            print(f"{backend}: stopped after {args.timeout:.0f} s; the configurations measured so far are in {args.out}")
    print(table(args.out))


if __name__ == "__main__":
    main()
