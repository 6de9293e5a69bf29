"""Which floating-point policy a model trains under: float32, or bfloat16 where it pays.

Keras's `mixed_bfloat16` policy computes the layers in bfloat16 and keeps the weights, the
optimizer's state and (in the book's models) the losses in float32. It pays only on hardware
with bfloat16 units: on a CPU, the AVX512-BF16 dot-product instructions (`avx512_bf16` in
`/proc/cpuinfo`: Intel Cooper Lake and Sapphire Rapids and later, AMD Zen 4 and later) and
Intel's AMX tiles (`amx_bf16`, Sapphire Rapids and later), Arm's BF16 instructions (`bf16`);
on an NVIDIA GPU, compute capability 8.0 (Ampere) and later. Elsewhere bfloat16 is emulated and slower than float32.
And even with the units, a small model's step may be bound by work that bfloat16 does not
speed up (the optimizer, casts, element-wise layers), so `choose("auto", ...)` measures.

Example:

>>> from companion.training import precision
>>> precision.hardware()["cpu"]["bf16_units"]  # on a 2-core AMD EPYC (family 26)
['avx512_bf16']
>>> choice = precision.choose("auto", probe=lambda: 1.4, units=["AVX512-BF16 dot products"])  # a measured ratio
>>> choice["policy"]
'mixed_bfloat16'
>>> choice["reason"]
"AVX512-BF16 dot products; a bfloat16 step measured 1.40x the float32 step's speed, at least the 1.1x that pays for the switch"
"""

import contextlib
import time

from companion import config

__all__ = ["BF16_CPU_FLAGS", "CHOICES", "MIN_RATIO", "POLICIES", "choose", "cpu_bf16_units", "gpu_bf16", "hardware",
           "policy_scope", "policy_trainees", "probe_ratio", "trainee"]

# /proc/cpuinfo flags of bfloat16 arithmetic units, and what they are
BF16_CPU_FLAGS = {"avx512_bf16": "AVX512-BF16 dot products", "amx_bf16": "AMX tiles in bfloat16",
                  "bf16": "Arm BF16 instructions"}
CHOICES = ("auto", "float32", "bfloat16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # the command line's word -> Keras's policy
# `auto` takes bfloat16 when a training step under it is at least this much faster. A short
# probe's interleaved ratio is only so exact (bench/bf16.py repeats it), and a bfloat16 run's
# results differ from float32's, so a gain of a few percent does not buy the switch.
MIN_RATIO = 1.1


def cpu_bf16_units(cpuinfo=None):
    """The bfloat16 units among the CPU's flags (`BF16_CPU_FLAGS` keys), from `/proc/cpuinfo`'s
    text (`cpuinfo`; default: read it); an empty list where there are none or no such file."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return []
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
            break
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def gpu_bf16():
    """The active Keras backend's first GPU and whether it has bfloat16 units (compute
    capability 8.0 or later): `{"name": ..., "bf16": bool}`, or None without a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return {"name": torch.cuda.get_device_name(0), "bf16": torch.cuda.get_device_capability(0) >= (8, 0)}
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return None
        capability = tuple(int(p) for p in str(getattr(gpus[0], "compute_capability", "0.0")).split("."))
        return {"name": gpus[0].device_kind, "bf16": capability >= (8, 0)}
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        details = tf.config.experimental.get_device_details(gpus[0])
        return {"name": details.get("device_name", gpus[0].name), "bf16": tuple(details.get("compute_capability", (0, 0))) >= (8, 0)}
    return None


def hardware():
    """The machine's CPU (`config.hardware()`'s name and family, and `bf16_units`) and the
    active backend's GPU (`gpu_bf16()`)."""
    info = config.hardware()
    cpu = {"model_name": info["cpu"], "family_model": info.get("cpu_family_model"), "bf16_units": cpu_bf16_units()}
    return {"cpu": cpu, "gpu": gpu_bf16()}


@contextlib.contextmanager
def policy_scope(policy):
    """Sets Keras's global dtype policy to `policy` ("float32" or "mixed_bfloat16") inside the
    block and restores the previous one after it. Layers take the policy when they are built:
    build (or load) the model inside the block. For bfloat16 on PyTorch it first installs
    `backends.torch.install_half_conv_fix` (a CPU whose oneDNN cannot take 16-bit convolutions
    would otherwise stop on their gradients)."""
    import keras

    if policy not in POLICIES.values():
        raise ValueError(f"policy: expected one of {sorted(POLICIES.values())}, received {policy!r}")
    if policy == "mixed_bfloat16" and keras.backend.backend() == "torch":
        from companion.training.backends import torch as torch_steps

        torch_steps.install_half_conv_fix()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def probe_ratio(recipe, x, y, batch_size, seed=0, repeats=3, min_seconds=1.0):
    """A short measurement of bf16 / float32 training speed for `recipe` on this machine: the
    model built under each policy, the two trained in the same rounds
    (`benchmark.interleaved_fits`, runs of `min_seconds`), the median of the rounds' ratios of
    images per second."""
    import statistics

    from companion.training import benchmark

    n = min(len(x), batch_size * 64)
    trainees = policy_trainees(recipe, x[:n], y[:n], batch_size, seed=seed)
    (runs32, _, _), (runs16, _, _) = benchmark.interleaved_fits(trainees, repeats, batch_size, min_seconds=min_seconds)
    return statistics.median(b / a for a, b in zip(runs32, runs16))


def trainee(recipe, x, y, batch_size, policy="float32", seed=0, **options):
    """`(model, batches)`: `recipe`'s model built, batched and compiled inside `policy`'s scope
    after seeding Keras with `seed`, compiled as the command line compiles it
    (`recipe.compile_options()`) with `options` put over those (e.g. `jit_compile=False`)."""
    import keras

    with policy_scope(policy):
        keras.utils.set_random_seed(seed)
        model = recipe.build(seed)
        batches = recipe.batches(x, y, batch_size=batch_size, seed=seed)
        recipe.compile(model, steps_per_epoch=len(batches), epochs=1, **{**recipe.compile_options(), **options})
    return model, batches


def policy_trainees(recipe, x, y, batch_size, seed=0):
    """`[trainee(...)]` of `recipe` under float32, then under mixed_bfloat16."""
    return [trainee(recipe, x, y, batch_size, policy, seed=seed) for policy in POLICIES.values()]


def choose(requested, probe=None, units=None):
    """The policy to train under, and why.

    Args:
        requested: "auto", "float32" or "bfloat16".
        probe: with "auto", a function of no arguments that measures the bf16 / float32
            training-speed ratio (e.g. `probe_ratio` with its arguments bound); called only where
            the hardware has bfloat16 units.
        units: the hardware's bfloat16 units, a list of words (default: the GPU's if the
            backend has one, else the CPU's `cpu_bf16_units()`).

    Returns:
        dict with `requested`, `policy` ("float32" or "mixed_bfloat16"), `reason` (a sentence)
        and, where it was measured, `measured_ratio` and `probe_seconds` (the measurement's
        time, which a card's `train_seconds` does not include).
    """
    if requested not in CHOICES:
        raise ValueError(f"precision: expected one of {', '.join(CHOICES)}, received {requested!r}")
    if units is None:
        gpu = gpu_bf16()
        units = ([f"{gpu['name']} bf16"] if gpu["bf16"] else []) if gpu else [BF16_CPU_FLAGS[u] for u in cpu_bf16_units()]
    if requested != "auto":
        reason = f"asked for {requested}"
        if requested == "bfloat16" and not units:
            reason += " (this machine has no bfloat16 units: bfloat16 is emulated, and slower than float32)"
        return {"requested": requested, "policy": POLICIES[requested], "reason": reason}
    if not units:
        return {"requested": "auto", "policy": "float32", "reason": "no bfloat16 units on this machine"}
    if probe is None:
        raise ValueError("precision: 'auto' on a machine with bfloat16 units needs a `probe` to measure the ratio")
    start = time.perf_counter()
    ratio = float(probe())
    seconds = time.perf_counter() - start
    pays = ratio >= MIN_RATIO
    reason = (f"{', '.join(units)}; a bfloat16 step measured {ratio:.2f}x the float32 step's speed, "
              f"{'at least' if pays else 'below'} the {MIN_RATIO}x that pays for the switch")
    return {"requested": "auto", "policy": "mixed_bfloat16" if pays else "float32", "reason": reason, "measured_ratio": ratio,
            "probe_seconds": round(seconds, 1)}

