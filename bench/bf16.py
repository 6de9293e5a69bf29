"""bfloat16 on the CPU: the hardware's units, the kernels' rates and every model's training step.

For each backend (TensorFlow, JAX, PyTorch), in a fresh process of its own:

* the rates, in GFLOP/s, of a 2048 x 2048 matrix product and of the DCGAN generator's two
  heaviest convolutions (a 3x3 convolution 64 -> 128 channels at 14x14 and the transposed
  convolution 128 -> 64 from 7x7 to 14x14, batch 128, channels last as Keras lays them out), in
  float32 and in bfloat16, through `keras.ops`; float32 and bfloat16 alternate, run by run;
* every model's training images per second under the `float32` and the `mixed_bfloat16`
  policy: both models are built and compiled in the same process and timed in the same rounds
  (`benchmark.interleaved_fits`), and the ratio is the median of the rounds' ratios, so the
  machine's slow spells cancel. On TensorFlow, where the command line compiles the VAEs' and
  GANs' float32 step with XLA and their bfloat16 step without it, float32 without XLA is timed
  in the same rounds too.

Before them it reads the CPU's model and its bf16 units from `/proc/cpuinfo`
(`companion.training.precision.hardware`). Each result is one JSON line in
`bench/results/bf16_cpu.jsonl`, with the CPU's model; a configuration already measured on this
CPU is skipped (an interrupted run resumes; `--fresh` measures the backends and models asked for again). `bench/report.py` writes
one section of `RESULTS.md` per CPU model.

    .venv/bin/python bench/bf16.py [--backends tensorflow jax torch] [--models NAME ...]

About 50 minutes on two CPU cores: run it alone.
"""

import argparse
import json
from importlib import metadata
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

RESULTS = Path(__file__).resolve().parent / "results" / "bf16_cpu.jsonl"
MODELS = ("classifier", "mlp_vae", "conv_vae", "ar_vae", "conditional_vae",
          "mlp_gan", "cluster_gan", "acgan", "cluster_wgan_gp", "denoiser", "diffusion")
BACKENDS = ("tensorflow", "jax", "torch")
KERNELS = ("matmul_2048", "conv_3x3_64to128_14x14", "conv_transpose_3x3_128to64_7to14")


def kernel_rates(repeats=7, batch_size=128):
    """GFLOP/s of each kernel of `KERNELS` in float32 and bfloat16 (median of `repeats` runs).

    The two dtypes alternate run by run. A run is as many calls as last about half a second;
    converting the last result to NumPy waits for it.
    """
    import keras
    import numpy as np

    rng = np.random.default_rng(0)

    def tensors(dtype, *shapes):
        return [keras.ops.convert_to_tensor(rng.standard_normal(s).astype("float32"), dtype=dtype) for s in shapes]

    b = batch_size
    cases = {  # name: (FLOPs of one call, operand shapes, call)
        "matmul_2048": (2 * 2048**3, [(2048, 2048), (2048, 2048)], lambda a, w: keras.ops.matmul(a, w)),
        # 14 x 14 outputs x 128 channels x (3 x 3 x 64) multiply-adds per image
        "conv_3x3_64to128_14x14": (2 * b * 14 * 14 * 128 * 9 * 64, [(b, 14, 14, 64), (3, 3, 64, 128)],
                                   lambda x, w: keras.ops.conv(x, w, padding="same")),
        # the transpose of a stride-2 convolution 64 -> 128 from 14x14 to 7x7: the same multiply-adds
        "conv_transpose_3x3_128to64_7to14": (2 * b * 7 * 7 * 128 * 9 * 64, [(b, 7, 7, 128), (3, 3, 64, 128)],
                                             lambda x, w: keras.ops.conv_transpose(x, w, strides=2, padding="same")),
    }
    out = {}
    for name, (flops, shapes, call) in cases.items():
        operands = {dtype: tensors(dtype, *shapes) for dtype in ("float32", "bfloat16")}
        calls = {}
        for dtype, args in operands.items():  # warm-up, then calls per run
            keras.ops.convert_to_numpy(call(*args))
            start, n = time.perf_counter(), 0
            while time.perf_counter() - start < 0.5:
                result = call(*args)
                n += 1
            keras.ops.convert_to_numpy(result)
            calls[dtype] = n
        times = {dtype: [] for dtype in operands}
        for _ in range(repeats):
            for dtype, args in operands.items():
                start = time.perf_counter()
                for _ in range(calls[dtype]):
                    result = call(*args)
                keras.ops.convert_to_numpy(result)
                times[dtype].append((time.perf_counter() - start) / calls[dtype])
        rates = {dtype: flops / statistics.median(t) / 1e9 for dtype, t in times.items()}
        out[name] = {"float32_gflops": rates["float32"], "bfloat16_gflops": rates["bfloat16"],
                     "ratio": rates["bfloat16"] / rates["float32"]}
    return out


def model_ratio(name, batch_size, repeats, min_seconds):
    """Training images per second of recipe `name` under float32 and mixed_bfloat16, interleaved.

    Where the command line compiles the float32 step with XLA (TensorFlow's VAEs and GANs) and
    the bfloat16 step without it, a third copy, float32 without XLA, runs in the same rounds:
    the bfloat16 / float32 ratio then mixes two changes, and the third copy separates them.
    """
    import keras
    import numpy as np

    from companion import data, recipes
    from companion.training import benchmark, precision

    recipe = recipes.get(name)
    (x_train, y_train), _ = data.load_mnist()
    x, y = data.scale(x_train), y_train.astype("int32")
    trainees = precision.policy_trainees(recipe, x, y, batch_size, seed=0)
    policies = ["float32", "mixed_bfloat16"]
    if keras.backend.backend() == "tensorflow" and recipe.compile_options().get("jit_compile"):
        trainees.append(precision.trainee(recipe, x, y, batch_size, "float32", seed=0, jit_compile=False))
        policies.append("float32 without XLA")
    timed = benchmark.interleaved_fits(trainees, repeats, batch_size, min_seconds=min_seconds)
    runs = [r for r, _, _ in timed]
    finite = {policy: bool(np.all(np.isfinite([float(v[-1]) for v in logs.values()]))) for policy, (_, logs, _) in zip(policies, timed)}
    ratios = [b / a for a, b in zip(runs[0], runs[1])]
    out = {"float32_images_per_second": statistics.median(runs[0]), "bfloat16_images_per_second": statistics.median(runs[1]),
           "ratio": statistics.median(ratios), "ratios": ratios, "losses_finite": finite}
    if len(runs) == 3:
        # bfloat16 against float32 compiled alike (both without XLA), and what XLA does to float32
        plain = [b / c for b, c in zip(runs[1], runs[2])]
        xla = [a / c for a, c in zip(runs[0], runs[2])]
        out.update({"float32_without_xla_images_per_second": statistics.median(runs[2]),
                    "ratio_without_xla": statistics.median(plain), "ratios_without_xla": plain,
                    "xla_ratio_float32": statistics.median(xla), "xla_ratios_float32": xla})
    return out


def worker(backend, models, batch_size, repeats, min_seconds, done):
    import keras

    from companion.training import precision

    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    cpu = precision.hardware()["cpu"]
    base = {"backend": backend, "cpu": cpu["model_name"], "cpu_family_model": cpu["family_model"], "bf16_units": cpu["bf16_units"],
            "versions": {p: metadata.version(p) for p in ("keras", {"jax": "jaxlib"}.get(backend, backend))}}
    if ("kernels", backend, None) not in done:
        print(json.dumps({**base, "kind": "kernels", "batch_size": batch_size, "kernels": kernel_rates(batch_size=batch_size)}), flush=True)
    for name in models:
        if ("model", backend, name) in done:
            continue
        print(json.dumps({**base, "kind": "model", "model": name, "batch_size": batch_size,
                          **model_ratio(name, batch_size, repeats, min_seconds)}), flush=True)


def measured(cpu_name):
    """Keys of what `RESULTS` already holds for this CPU model."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()] if RESULTS.exists() else []
    return {(r["kind"], r["backend"], r.get("model")) for r in rows if r["cpu"] == cpu_name}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--fresh", action="store_true", help="measure again what this CPU already has results for")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from companion.training import precision

    cpu = precision.hardware()["cpu"]
    done = set() if args.fresh else measured(cpu["model_name"])
    if args.worker:
        return worker(args.worker, args.models, args.batch_size, args.repeats, args.min_seconds, done)
    print(f"CPU: {cpu['model_name']} ({cpu['family_model']}); bf16 units: {', '.join(cpu['bf16_units']) or 'none'}")
    if args.fresh and RESULTS.exists():  # drops this CPU's rows of the backends and models asked for

        def asked(row):
            return (row["cpu"] == cpu["model_name"] and row["backend"] in args.backends
                    and (row["kind"] == "kernels" or row["model"] in args.models))

        RESULTS.write_text("".join(line + "\n" for line in RESULTS.read_text().splitlines() if line.strip() and not asked(json.loads(line))))
    RESULTS.parent.mkdir(exist_ok=True)
    for backend in tqdm(args.backends, desc="backends"):
        command = [sys.executable, __file__, "--worker", backend, "--models", *args.models, "--batch-size", str(args.batch_size),
                   "--repeats", str(args.repeats), "--min-seconds", str(args.min_seconds)] + (["--fresh"] if args.fresh else [])
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
            for line in process.stdout:
                if not line.startswith("{"):  # a library's message, not a result
                    tqdm.write(line.rstrip())
                    continue
                row = json.loads(line)
                with RESULTS.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                if row["kind"] == "kernels":
                    for name, k in row["kernels"].items():
                        tqdm.write(f"{backend:10s} {name:34s} float32 {k['float32_gflops']:7.1f}  bfloat16 {k['bfloat16_gflops']:7.1f} GFLOP/s  "
                                   f"({k['ratio']:.2f}x)")
                else:
                    tqdm.write(f"{backend:10s} {row['model']:16s} float32 {row['float32_images_per_second']:8.0f}  mixed_bfloat16 "
                               f"{row['bfloat16_images_per_second']:8.0f} images/s  ({row['ratio']:.2f}x)")
                    if "ratio_without_xla" in row:
                        tqdm.write(f"{'':27s} float32 without XLA {row['float32_without_xla_images_per_second']:8.0f} images/s  "
                                   f"(bfloat16 {row['ratio_without_xla']:.2f}x that; XLA {row['xla_ratio_float32']:.2f}x on float32)")
        if process.returncode:
            raise SystemExit(f"the {backend} worker failed with exit status {process.returncode}")


if __name__ == "__main__":
    main()
