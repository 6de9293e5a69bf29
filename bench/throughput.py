"""Training throughput of every model on every backend, beside a keras.io-style reference.

For each backend (JAX, TensorFlow, PyTorch) and each model, in a fresh process of its own (a
process loads one Keras backend, and a fresh process's peak RSS is the model's own):

* the companion's training images per second at batch 64, 128 and 256: one warm-up run,
  then the median of `--repeats` timed runs, each of as many steps as fill `--min-seconds`
  (`companion.training.benchmark.throughput`, `benchmark.timed_fits`);
* on TensorFlow, in the same process and the same rounds (a run of the companion's model,
  then one of the reference: `benchmark.interleaved_fits`), the keras.io-style reference of
  the same architecture (`bench/reference.py`), and the median of the rounds' ratios;
* the FLOPs of one training step, counted by XLA on JAX (`benchmark.train_step_flops`), and the
  fraction of the backend's float32 matrix-product rate (`benchmark.sgemm_rate`, measured in
  the same process) that the step achieves;
* the process's peak resident memory after training (on TensorFlow with the reference's).

    .venv/bin/python bench/throughput.py [--backends jax tensorflow torch] [--models NAME ...]

Results are appended to `bench/results/throughput_cpu.jsonl` (a configuration already there is
skipped, so an interrupted run resumes; `--fresh` starts over); `bench/report.py` turns them
into `bench/RESULTS.md`. About 70 minutes on two CPU cores: run it alone.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

RESULTS = Path(__file__).resolve().parent / "results" / "throughput_cpu.jsonl"
MODELS = ("classifier", "mlp_vae", "conv_vae", "ar_vae", "conditional_vae",
          "mlp_gan", "cluster_gan", "acgan", "cluster_wgan_gp", "denoiser")
BACKENDS = ("jax", "tensorflow", "torch")  # JAX first: it counts the FLOPs the others use


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def worker(backend, model, batch_sizes, steps, repeats, min_seconds):
    """Runs in its own process with KERAS_BACKEND=backend; one JSON line per batch size."""
    import keras

    from companion.training import benchmark

    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    if backend == "tensorflow":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from reference import reference_trainee
    sgemm = benchmark.sgemm_rate()
    rows = []
    for batch_size in batch_sizes:
        # On TensorFlow the keras.io-style reference trains in the same rounds: each round times
        # one run of the companion's model, then one of the reference (benchmark.interleaved_fits).
        alongside = reference_trainee(model, batch_size, steps) if backend == "tensorflow" else None
        result = benchmark.throughput(model, batch_size=batch_size, steps=steps, repeats=repeats, min_seconds=min_seconds,
                                      alongside=alongside)
        result.update(sgemm_flops_per_second=sgemm, repeats=repeats, min_seconds=min_seconds)
        if alongside:
            reference_runs, result["reference_steps"] = result.pop("alongside_runs"), result.pop("alongside_steps")
            result["reference_runs"] = reference_runs
            result["reference_images_per_second"] = statistics.median(reference_runs)
            result["paired_ratio"] = statistics.median(a / b for a, b in zip(result["runs"], reference_runs))
        if backend == "jax":
            result["flops_per_step"] = benchmark.train_step_flops(model, batch_size)
        rows.append(result)
    peak = peak_rss_mb()
    for row in rows:
        row["peak_rss_mb"] = peak
        row["peak_rss_includes_reference"] = backend == "tensorflow"
    for row in rows:
        print(json.dumps(row), flush=True)


def done_already(path):
    if not path.exists():
        return set()
    return {(r["backend"], r["model"]) for r in map(json.loads, path.read_text().splitlines()) if r}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--steps", type=int, help="steps per timed run (default: as many as fill --min-seconds)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="length of a timed run when --steps is not given")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (the median is reported)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--fresh", action="store_true", help="discard earlier results in --output")
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f"--repeats must be at least 5 (a median of at least five runs). Received: {args.repeats}")
    if args.worker:
        return worker(*args.worker, args.batch_sizes, args.steps, args.repeats, args.min_seconds)

    if args.fresh and args.output.exists():
        args.output.unlink()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    done = done_already(args.output)
    todo = [(b, m) for b in args.backends for m in args.models if (b, m) not in done]
    for backend, model in tqdm(todo, desc="configurations", unit="run"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--worker", backend, model, *(["--steps", str(args.steps)] if args.steps else []),
                   "--min-seconds", str(args.min_seconds), "--repeats", str(args.repeats),
                   "--batch-sizes", *map(str, args.batch_sizes)]
        start = time.perf_counter()
        done_run = subprocess.run(command, capture_output=True, text=True, env=env)
        if done_run.returncode != 0:
            tqdm.write(f"{backend} {model} failed (exit {done_run.returncode}):\n{done_run.stderr[-3000:]}")
            continue
        lines = [line for line in done_run.stdout.splitlines() if line.startswith("{")]
        with args.output.open("a") as f:  # one configuration at a time: an interrupted run resumes
            f.writelines(line + "\n" for line in lines)
        tqdm.write(f"{backend:10} {model:16} {time.perf_counter() - start:5.0f} s  " + "  ".join(
            f"b{r['batch_size']}: {r['images_per_second']:.0f} img/s" for r in map(json.loads, lines)))
    print(f"results in {args.output}; tables: .venv/bin/python bench/report.py")


if __name__ == "__main__":
    main()
