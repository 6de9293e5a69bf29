"""Pretrained weights shipped with the package, each with a model card.

`companion/weights/<name>.keras` holds a model; `companion/weights/<name>.json` its card:
the exact command that trained it, seed, backend, package versions, hardware, training
time, the precision policy and why it was chosen (`precision`; cards without it were trained
in float32, before the command line chose), the SHA-256 of the weights file, and the metrics measured on it (with the command
that measured them). `load(name)` verifies the SHA-256 before loading; `load_file(path)`
loads any `.keras` file and names one that is truncated or corrupted. The cards are written
here too: `write_card` when `python -m companion train` has saved the weights,
`record_metrics` when `evaluate --update-card` has measured them.

Example:

>>> from companion import weights
>>> classifier = weights.load("classifier")
>>> weights.card("classifier")["metrics"]["test_accuracy"]
"""

import hashlib
import importlib.metadata
import json
import os
import platform
from pathlib import Path

__all__ = ["WEIGHTS_DIR", "WeightsFileError", "WeightsIntegrityError", "available", "card", "load", "load_file", "read_card", "record_metrics", "sha256_of",
           "write_card", "write_json"]

WEIGHTS_DIR = Path(__file__).resolve().parent


class WeightsIntegrityError(ValueError):
    """A weights file does not match the SHA-256 recorded in its model card."""


class WeightsFileError(ValueError):
    """A weights file or a model card cannot be read: truncated, corrupted or of another kind."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def available(directory=WEIGHTS_DIR):
    """Names of the models that have both a weights file and a card."""
    directory = Path(directory)
    return sorted(p.stem for p in directory.glob("*.json") if (directory / f"{p.stem}.keras").is_file())


def card(name, directory=WEIGHTS_DIR):
    """The model card of `name`, as a dict."""
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        names = ", ".join(available(directory)) or "none"
        raise FileNotFoundError(f"No model card {path}. Expected `name` among: {names}. Received: name={name!r}")
    return read_card(path)


def read_card(path):
    """The model card at `path`, as a dict; an unreadable card is named with what is wrong."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsFileError(f"{path}: not a valid model card ({error}); restore it from the repository") from None
    if not isinstance(value, dict) or not isinstance(value.get("metrics", {}), dict):
        raise WeightsFileError(f"{path}: not a valid model card (expected a JSON object with a `metrics` object)")
    return value


def load_file(path):
    """Loads the model in the `.keras` file at `path`; a truncated or corrupted file is named."""
    import keras

    import companion.models  # noqa: F401  (registers the book's classes for deserialization)

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Expected a weights file ending in .keras. Received: path={str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # zipfile, h5py and Keras each raise their own kinds
        raise WeightsFileError(
            f"{path}: cannot be read as a Keras model ({type(error).__name__}: {error}); the file is truncated, "
            "corrupted or of another kind"
        ) from error


def load(name, directory=WEIGHTS_DIR):
    """Loads the shipped model `name` after checking its SHA-256 against its card."""
    model_card = card(name, directory)
    path = Path(directory) / f"{name}.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the weights file named by the card of {name!r} is missing")
    actual = sha256_of(path)
    if actual != model_card["sha256"]:
        raise WeightsIntegrityError(
            f"{path}: SHA-256 {actual} does not match {model_card['sha256']} recorded in "
            f"{name}.json; the file is corrupted or was changed after training. Retrain it with: "
            f"{model_card.get('command', 'the command in the card')}"
        )
    return load_file(path)


# ----------------------------------------------------------------------------- writing cards


def write_json(path, value):
    """Writes `value` as JSON to `path` atomically (a temporary file renamed over it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def _versions():
    import keras

    backend = keras.backend.backend()
    names = ["keras", "numpy", {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]]
    versions = {"python": platform.python_version(), "companion": importlib.metadata.version("companion")}
    versions.update({name: importlib.metadata.version(name) for name in names})
    return versions


def write_card(weights_path, *, name, command, seed, epochs, batch_size, distribute, compile_options, train_images,
               parameters, train_seconds, precision=None):
    """Writes the model card of a freshly trained weights file beside it (`MODEL.json`) and
    returns its path: how the model was trained, on what, for how long, and the SHA-256 that
    `load` checks. Its `metrics` start empty; `record_metrics` fills them. `precision`: the
    policy the run trained under and why (`companion.training.precision.choose`'s dict)."""
    import keras

    from companion import config

    weights_path = Path(weights_path)
    card = {
        "name": name,
        "command": command,
        "seed": seed,
        "backend": keras.backend.backend(),
        "epochs": epochs,
        "batch_size": batch_size,
        "distribute": distribute,
        "compile_options": compile_options,
        "train_images": train_images,
        "parameters": parameters,
        "versions": _versions(),
        "hardware": config.hardware(),
        "train_seconds": round(train_seconds, 1),
        **({"precision": precision} if precision else {}),
        "sha256": sha256_of(weights_path),
        "metrics": {},
    }
    card_path = weights_path.with_suffix(".json")
    write_json(card_path, card)
    return card_path


def record_metrics(card_path, metrics, command, key=None):
    """Writes `metrics` and the command that measured them into the model card at `card_path`:
    at the top of its `metrics`, or under `metrics[key]` (a subset's figures, another k)."""
    card = read_card(card_path)
    entry = {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}
    entry["command"] = command
    if key:
        card["metrics"][key] = entry
    else:
        card["metrics"].update(entry)
    write_json(card_path, card)
