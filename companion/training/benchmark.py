"""Training throughput of the book's models, measured the same way on every backend.

`throughput(name)` trains the model of a recipe (`companion.recipes`) on real MNIST
batches: one warm-up run (tracing and compilation), then `repeats` timed runs of `steps`
steps each; it reports the median images per second. `compare_backends` runs it in a fresh
Python process per backend (a process can load only one Keras backend) through the command
line, `python -m companion bench NAME --backend B --json -`.

Example:

>>> from companion import benchmark
>>> benchmark.throughput("mlp_vae", batch_size=128)["images_per_second"]
>>> benchmark.compare_backends("mlp_vae", ["tensorflow", "jax", "torch"])
"""

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import time

__all__ = ["compare_backends", "interleaved_fits", "sgemm_rate", "throughput", "timed_fits", "train_step_flops"]


def throughput(name, batch_size=128, steps=None, repeats=5, images=None, mixed_precision=False, seed=0, compile_options=None,
               min_seconds=2.0, alongside=None):
    """Median training images per second of recipe `name` on the active backend.

    Args:
        name: a recipe name (`companion.recipes.RECIPES`).
        batch_size: images per step.
        steps: steps per timed run; `repeats` timed runs follow one warm-up run. Default: as
            many as make a run last `min_seconds` (`timed_fits`).
        images: MNIST training images to draw batches from (default: `batch_size * steps`, or
            all 60,000 when `steps` is left to the calibration).
        mixed_precision: train under Keras's `mixed_bfloat16` policy.
        compile_options: arguments of `Model.compile` (default: `recipe.compile_options()`, what
            the command line trains with; `{}` for Keras's defaults).
        alongside: optional `(model, batches)` of another, compiled model to time in the same
            rounds (`interleaved_fits`), such as a reference implementation to compare with.

    Returns:
        dict with `model`, `backend`, `batch_size`, `images_per_second` (median),
        `step_seconds` (median), `steps` (per timed run), `runs` (images per second of each timed run),
        `mixed_precision`, `final_loss_finite` and `outputs_finite` (16 samples of a generative
        model, or the outputs for 16 training images of the classifier and the denoiser, hold no
        NaN or infinity); with `alongside`, also `alongside_runs` (its images per second, run by
        run, each timed right after the companion's run of the same round) and `alongside_steps`.
    """
    import keras
    import numpy as np

    from companion import data, recipes, validation
    from companion.training.precision import policy_scope

    batch_size, repeats = validation.positive_int("batch_size", batch_size), validation.positive_int("repeats", repeats)
    if steps is not None:
        steps = validation.positive_int("steps", steps)
    min_seconds = validation.number("min_seconds", min_seconds, low=0, low_open=True)
    recipe = recipes.get(name)
    with policy_scope("mixed_bfloat16") if mixed_precision else contextlib.nullcontext():
        keras.utils.set_random_seed(seed)
        model = recipe.build(seed)
        (x_train, y_train), _ = data.load_mnist()
        n = images or (batch_size * steps if steps else len(x_train))
        batches = recipe.batches(data.scale(x_train[:n]), y_train[:n], batch_size=batch_size, seed=seed)
        options = recipe.compile_options() if compile_options is None else compile_options
        recipe.compile(model, steps_per_epoch=len(batches), epochs=1, **options)
        trainees = [(model, batches)] + ([tuple(alongside)] if alongside else [])
        timed = interleaved_fits(trainees, repeats, batch_size, steps=steps, min_seconds=min_seconds)
        runs, logs, steps = timed[0]
        outputs_finite = _outputs_finite(model, recipe, data.scale(x_train[:16]), y_train[:16])
    final = [float(values[-1]) for values in logs.values()]
    median = statistics.median(runs)
    return {
        "model": name,
        "backend": keras.backend.backend(),
        "batch_size": batch_size,
        "mixed_precision": bool(mixed_precision),
        "compile_options": options,
        "images_per_second": median,
        "step_seconds": batch_size / median,
        "steps": steps,
        "runs": runs,
        "final_loss_finite": bool(np.all(np.isfinite(final))),
        "outputs_finite": outputs_finite,
        **({"alongside_runs": timed[1][0], "alongside_steps": timed[1][2]} if alongside else {}),
    }


def timed_fits(model, batches, repeats, batch_size, steps=None, min_seconds=2.0):
    """One warm-up `fit` (tracing, compilation), then `repeats` timed ones of `steps` steps.

    With `steps=None` the steps per run are calibrated: timed `fit`s of 2, then of more
    steps (scaled by how far the last one fell short of `min_seconds`), until one lasts
    `min_seconds` or uses all `batches`; the timed runs take that many. Each `fit` call has a
    fixed cost (iterator, callbacks, history) that a run of a few milliseconds would be
    mostly made of; runs of seconds time the steps themselves, for fast and slow models alike.

    Returns the images per second of each timed run, the last run's history and the steps
    per run.
    """
    return interleaved_fits([(model, batches)], repeats, batch_size, steps=steps, min_seconds=min_seconds)[0]


def interleaved_fits(trainees, repeats, batch_size, steps=None, min_seconds=2.0):
    """`timed_fits` for several `(model, batches)` pairs at once, their timed runs interleaved.

    Each model is warmed up and calibrated in turn; then come `repeats` rounds, each timing
    one run of every model, one after the other. A shared machine has slow spells lasting
    seconds to minutes (on the book's 2-core machine, runs of one model came at two speeds,
    one 1.5x the other, for several runs at a time); runs of the same round fall in the same
    spell, so the ratio of two models' runs in a round cancels it, where the ratio of two
    separately timed medians does not.

    Returns a list with `(runs, last history, steps per run)` for each pair, in order.
    """
    plans = []
    for model, batches in trainees:
        available = len(batches)
        n = min(steps or 2, available)
        model.fit(batches, epochs=1, steps_per_epoch=n, verbose=0)  # warm-up
        while steps is None:  # calibration
            start = time.perf_counter()
            model.fit(batches, epochs=1, steps_per_epoch=n, verbose=0)
            seconds = time.perf_counter() - start
            if seconds >= min_seconds or n >= available:
                break
            n = min(available, max(n + 1, math.ceil(n * min_seconds / seconds)))
        plans.append((model, batches, n))
    runs, logs = [[] for _ in plans], [None] * len(plans)
    for _ in range(repeats):
        for i, (model, batches, n) in enumerate(plans):
            start = time.perf_counter()
            logs[i] = model.fit(batches, epochs=1, steps_per_epoch=n, verbose=0).history
            runs[i].append(n * batch_size / (time.perf_counter() - start))
    return [(runs[i], logs[i], n) for i, (_, _, n) in enumerate(plans)]


def _outputs_finite(model, recipe, x, y):
    """Whether the trained model's outputs are finite: samples of a generative model, else predictions."""
    import keras
    import numpy as np

    if hasattr(model, "generate"):
        outputs = model.generate(len(x), labels=y if recipe.conditional else None, seed=0)
    else:
        outputs = model.predict(x, verbose=0)
    return bool(np.all(np.isfinite(keras.ops.convert_to_numpy(outputs))))


def compare_backends(name, backends=("tensorflow", "jax", "torch"), batch_size=128, steps=None, repeats=5, timeout=900):
    """`throughput(name, ...)` on each backend, each in its own process: a list of dicts."""
    results = []
    for backend in backends:
        command = [sys.executable, "-m", "companion", "bench", name, "--backend", backend, "--batch-size", str(batch_size),
                   *(["--steps", str(steps)] if steps else []), "--repeats", str(repeats), "--json", "-"]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed with exit status {done.returncode}:\n{done.stderr[-2000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def sgemm_rate(n=2048, repeats=5):
    """The active backend's float32 matrix-product rate, in FLOP/s (median of `repeats`).

    Multiplies two `(n, n)` float32 matrices (2 n^3 floating-point operations) with
    `keras.ops.matmul`, after one warm-up product: the machine's practical peak, against
    which a model's training rate is read as a fraction.
    """
    import keras
    import numpy as np

    from companion import validation

    n, repeats = validation.positive_int("n", n), validation.positive_int("repeats", repeats)
    rng = np.random.default_rng(0)
    a, b = (keras.ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32")) for _ in range(2))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b))  # converting waits for the result
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times)


def train_step_flops(name, batch_size=128, seed=0):
    """Floating-point operations of one training step of recipe `name`, as XLA counts them.

    The step Keras's JAX trainer compiles (the same losses and networks as on every
    backend) is lowered and compiled once, and XLA's cost analysis sums its operations: a
    multiply-add counts 2, element-wise work (activations, the optimizer's update) counts
    too. Needs the JAX backend; the figure holds for the other backends' steps, which do
    the same arithmetic.
    """
    import jax
    import keras

    from companion import data, recipes, validation

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"train_step_flops needs KERAS_BACKEND=jax (XLA counts the operations); "
                           f"the active backend is {keras.backend.backend()!r}")
    batch_size = validation.positive_int("batch_size", batch_size)
    recipe = recipes.get(name)
    keras.utils.set_random_seed(seed)
    model = recipe.build(seed)
    (x_train, y_train), _ = data.load_mnist()
    batches = recipe.batches(data.scale(x_train[:batch_size]), y_train[:batch_size], batch_size=batch_size, seed=seed)
    recipe.compile(model, steps_per_epoch=1, epochs=1)
    model.fit(batches, epochs=1, steps_per_epoch=1, verbose=0)  # creates the optimizer's and the metrics' variables
    state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                 optimizer_variables=True, metrics_variables=True)
    cost = jax.jit(model.train_step).lower(state, batches[0]).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # older JAX: one dict per device
        cost = cost[0]
    return float(cost["flops"])
