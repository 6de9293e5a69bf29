"""Run-wide settings read from the environment, chiefly the quick-mode switch.

Every notebook runs in one of two modes:

* full mode (the default): the runs whose outputs the published book shows;
* quick mode (`COMPANION_QUICK=1`): fewer steps and smaller samples, so that CI can
  execute every notebook in minutes. Numbers printed in quick mode are not the
  book's results.

Example:

>>> from companion import config
>>> num_samples = config.choose(full=10_000, quick=500)
"""

import os
import platform

__all__ = ["QUICK_ENV", "choose", "hardware", "hardware_text", "quick_mode"]

QUICK_ENV = "COMPANION_QUICK"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def quick_mode():
    """Returns True when the environment variable `COMPANION_QUICK` asks for quick mode."""
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"Expected the environment variable {QUICK_ENV} to be one of "
        f"{sorted(_TRUE | _FALSE - {''})} or unset. Received: {QUICK_ENV}={os.environ[QUICK_ENV]!r}"
    )


def choose(full, quick):
    """Returns `quick` in quick mode, `full` otherwise."""
    return quick if quick_mode() else full


def hardware():
    """The machine a model was trained or measured on. CPUs sold under one name differ in
    speed from one generation to the next ("AMD EPYC" covers several), so the family and
    model numbers of /proc/cpuinfo are recorded beside the name."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    hardware = {"machine": platform.machine(), "cpu": fields.get("model name") or platform.processor(), "cpu_count": os.cpu_count()}
    if "cpu family" in fields and "model" in fields:
        hardware["cpu_family_model"] = f"family {fields['cpu family']}, model {fields['model']}"
    return {**hardware, "accelerator": None}


def hardware_text():
    """`hardware()` in words, for a sentence: "2-core AMD EPYC (family 26, model 2)"."""
    info = hardware()
    family = f" ({info['cpu_family_model']})" if "cpu_family_model" in info else ""
    return f"{info['cpu_count']}-core {info['cpu']}{family}"
