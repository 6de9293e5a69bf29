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

__all__ = ["WEIGHTS_DIR", "WeightsFileError", "WeightsIntegrityError", "available", "card", "load", "load_file", "read_card", "sha256_of"]

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
