"""Checks of the chapter notebooks as files: structure, stored outputs of a full run,
and agreement with the table of contents. (nbval executes them; see the Makefile.)"""

import json
import re

import pytest
import yaml

from conftest import REPO_ROOT

CHAPTERS = sorted((REPO_ROOT / "chapters").glob("*.ipynb"))


def toc_files():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def cell_text(cell):
    return "".join(cell["source"])


def test_there_are_chapters():
    assert CHAPTERS, "chapters/ holds no notebook"


def test_toc_lists_every_chapter_and_only_existing_pages():
    files = toc_files()
    for entry in files:
        matches = [p for p in REPO_ROOT.glob(entry + ".*") if p.suffix in (".md", ".ipynb")]
        assert matches, f"_toc.yml lists {entry!r}, which does not exist"
    listed = {f for f in files if f.startswith("chapters/")}
    assert listed == {f"chapters/{p.stem}" for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_structure(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "chapters are named NN_topic.ipynb"
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    markdown = "\n".join(cell_text(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert cell_text(nb["cells"][0]).startswith("# "), "the first cell holds the chapter title"
    for heading in ("Learning objectives", "## Summary", "## Exercises"):
        assert heading in markdown, f"{path.name} lacks {heading!r}"
    exercises = re.findall(r"```\{exercise\}", markdown)
    solutions = re.findall(r"```\{solution\}[^\n]*\n:class: dropdown", markdown)
    assert exercises and len(solutions) == len(exercises), "every exercise has a hidden solution"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_outputs_come_from_a_full_run(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), "every code cell was executed"
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), "cells were executed once, top to bottom"
    outputs = [o for c in code for o in c["outputs"]]
    failed = [c for c in code if any(o["output_type"] == "error" for o in c["outputs"])]
    meant = [c for c in code if "raises-exception" in c["metadata"].get("tags", [])]
    assert failed == meant, "errors are stored only, and always, where a cell is tagged raises-exception"
    streams = "".join("".join(o["text"]) for o in outputs if o["output_type"] == "stream")
    assert "quick mode: True" not in streams, "stored outputs must come from a full run"
    checked = [c for c in code if "nbval-check-output" in c["metadata"].get("tags", [])]
    assert checked, "tag the deterministic cells nbval-check-output so that CI compares them"
    assert all(c["outputs"] for c in checked)


def _repository():
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["repository"]
    return config["url"], config["branch"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_installs_the_companion_only_where_it_is_missing(path):
    """On Colab or Binder the companion comes from the repository; a local checkout is left alone."""
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    text = cell_text(first)
    url, branch = _repository()
    assert "remove-cell" in first["metadata"].get("tags", []), "the install cell is hidden in the book"
    assert 'importlib.util.find_spec("companion") is None' in text, "it installs only when companion is not importable"
    assert f'%pip install --quiet "companion @ git+{url}@{branch}"' in text, "it installs from _config.yml's repository"
    assert not first["outputs"], "the full run found companion importable and installed nothing"


def _code_figures(nb):
    """{figure name: whether its cell has a stored image} for the notebook's figure cells."""
    figures = {}
    for cell in nb["cells"]:
        name = cell["metadata"].get("mystnb", {}).get("figure", {}).get("name") if cell["cell_type"] == "code" else None
        if name:
            figures[name] = any("image/png" in o.get("data", {}) for o in cell["outputs"])
    return figures


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_figures_the_prose_refers_to_are_there(path):
    nb = json.loads(path.read_text())
    markdown = "\n".join(cell_text(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    lost = [name for name, shown in _code_figures(nb).items() if not shown]
    assert not lost, f"figures that have lost their stored image: {lost}"
    # A reference may point into another chapter: any chapter's figure cell, or a figure
    # directive (`:name:`) in any chapter's prose, can be its target.
    figures, directives = {}, set()
    for other in CHAPTERS:
        other_nb = json.loads(other.read_text())
        figures.update(_code_figures(other_nb))
        for cell in other_nb["cells"]:
            if cell["cell_type"] == "markdown":
                directives.update(re.findall(r"^:name:\s*(\S+)", cell_text(cell), flags=re.M))
    for name in re.findall(r"\{numref\}`(?:[^`<]*<)?([^`>]+)>?`", markdown):
        assert name in figures or name in directives, f"the prose refers to figure {name!r}, which no chapter names"
        assert figures.get(name, True), f"figure {name!r} has lost its stored image"
