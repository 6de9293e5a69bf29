"""Checkpoint files: atomic, resumable `.keras` files, and the form weights are shipped in.

A checkpoint is one `.keras` file: the model, its optimizer state (so Adam's moments
survive a restart), its random-number state, plus a small `progress.json` entry saying
which epoch comes next (and, from the command line, the settings of the run). It is
written to a temporary file beside the target and then renamed over it, so the file at
`path` is always a complete checkpoint: a run killed mid-write leaves the previous one in
place, and its temporary files are removed at the next start (`remove_leftovers`).

Example:

>>> save_checkpoint(model, "runs/vae.keras", {"epoch": 3})
>>> model, initial_epoch = resume_training("runs/vae.keras")
"""

import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

__all__ = ["PROGRESS_ENTRY", "deflate", "read_progress", "remove_leftovers", "resume_training", "save_checkpoint", "save_for_inference"]

PROGRESS_ENTRY = "progress.json"


def save_checkpoint(model, path, progress):
    """Saves `model` and `progress` (a JSON-able dict) to `path` atomically."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Expected a checkpoint `path` ending in .keras. Received: path={str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras.tmp", dir=path.parent)
    os.close(handle)
    tmp_keras = tmp[: -len(".tmp")]  # model.save insists on the .keras suffix
    try:
        model.save(tmp_keras)
        with zipfile.ZipFile(tmp_keras, "a") as archive:
            archive.writestr(PROGRESS_ENTRY, json.dumps(progress))
        with open(tmp_keras, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp_keras, path)
    finally:
        for leftover in (tmp, tmp_keras):
            if os.path.exists(leftover):
                os.remove(leftover)


def save_for_inference(model, path, progress=None):
    """Saves `model` without its optimizer state, atomically: the form weights are shipped in.
    Returns the copy that was saved.

    Keras writes a compiled model's optimizer state into a `.keras` file (Adam's two
    moments triple its size), so the weights are copied into a fresh, uncompiled copy
    built from the model's config, and that copy is saved, its entries deflated (`deflate`).
    A model may say which config and variables its copy takes (`inference_state`: a GAN
    with a moving average ships the average as its generator).
    """
    if hasattr(model, "inference_state"):
        config, weights = model.inference_state()
    else:
        config, weights = model.get_config(), list(model.weights)
    fresh = model.__class__.from_config(config)
    if not fresh.built:
        fresh.build_from_config(model.get_build_config())
    # Variables pair up in creation order (auto-generated layer names differ between copies).
    if [tuple(v.shape) for v in fresh.weights] != [tuple(v.shape) for v in weights]:
        raise ValueError(f"Cannot copy the weights of {model.name}: a copy built from its config has other variables")
    for target, source in zip(fresh.weights, weights):
        target.assign(source)
    save_checkpoint(fresh, path, progress or {})
    deflate(path)
    return fresh


def deflate(path):
    """Rewrites the zip archive at `path` (a `.keras` file) with every entry deflated,
    atomically. Keras stores the entries uncompressed; float32 weights deflate by a few
    per cent (their exponents repeat), which is what keeps the shipped files within
    their budget. Keras reads either form."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".zip.tmp", dir=path.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
            for entry in source.infolist():
                target.writestr(entry.filename, source.read(entry.filename))
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_progress(path):
    """The progress dict stored in a checkpoint (`{"epoch": next_epoch, ...}`).

    A truncated or corrupted file raises a ValueError that names it and says what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            if PROGRESS_ENTRY not in archive.namelist():
                raise ValueError(f"{path}: not a checkpoint written by ResumableCheckpoint (no {PROGRESS_ENTRY})")
            progress = json.loads(archive.read(PROGRESS_ENTRY))
    except (zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a complete checkpoint ({type(error).__name__}: {error}); it is truncated or corrupted") from None
    if not isinstance(progress, dict) or not isinstance(progress.get("epoch"), int):
        raise ValueError(f"{path}: not a checkpoint written by ResumableCheckpoint (its {PROGRESS_ENTRY} has no epoch)")
    return progress


def remove_leftovers(path):
    """Removes the temporary files that a write of the checkpoint `path` left when it was
    killed (`save_checkpoint` writes `.NAME.*.keras[.tmp]` beside it, then renames).
    Returns the paths removed."""
    path = Path(path)
    # tempfile.mkstemp's names: the prefix, eight random characters, the suffix
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.[a-z0-9_]{{8}}\.(keras|keras\.tmp|zip\.tmp)$")
    removed = []
    if path.parent.is_dir():
        for leftover in path.parent.iterdir():
            if pattern.match(leftover.name) and leftover.is_file():
                leftover.unlink()
                removed.append(leftover)
    return removed


def resume_training(path):
    """Loads a checkpoint; returns `(model, initial_epoch)` to continue `fit` from.

    The model comes back compiled, with its optimizer state, its random-number state
    and its weights exactly as they were when the checkpoint was written.
    """
    from companion.weights import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    progress = read_progress(path)
    try:
        model = load_file(path)
    except ValueError as error:
        raise ValueError(f"{path}: not a complete checkpoint: {error}") from None
    return model, int(progress["epoch"])
