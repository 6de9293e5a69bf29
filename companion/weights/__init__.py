"""Pretrained weights shipped with the package, each with a model card.

`companion/weights/<name>.keras` holds a model; `companion/weights/<name>.json` its card:
the exact command that trained it, seed, backend, package versions, hardware, training
time, the SHA-256 of the weights file, and the metrics measured on it (with the command
that measured them). `load(name)` verifies the SHA-256 before loading.

Example:

>>> from companion import weights
>>> classifier = weights.load("classifier")
>>> weights.card("classifier")["metrics"]["test_accuracy"]
"""

import hashlib
import json
from pathlib import Path

__all__ = ["WEIGHTS_DIR", "WeightsIntegrityError", "available", "card", "load", "sha256_of"]

WEIGHTS_DIR = Path(__file__).resolve().parent


class WeightsIntegrityError(ValueError):
    """A weights file does not match the SHA-256 recorded in its model card."""


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
    return json.loads(path.read_text())


def load(name, directory=WEIGHTS_DIR):
    """Loads the shipped model `name` after checking its SHA-256 against its card."""
    import keras

    import companion.models  # noqa: F401  (registers the book's classes for deserialization)

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
    return keras.saving.load_model(path, safe_mode=True)
