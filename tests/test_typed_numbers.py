"""No measured figure is typed into the book's prose: each is glued from the computation
(`myst_nb.glue`) or read from a model card by a cell.

A test cannot know what a number means, so the book declares it. Every figure in the
markdown of a chapter or of a page under `book/` that could be a measurement (one with a
decimal point, a percent sign or a unit such as nats, dB, min or times, or of three digits or
more) must be listed in `tests/typed_numbers.yml` under its file, with the reason it may be
typed: a setting the author chose, a fact of the data set, a value derived by hand from the
math, a published figure with its citation beside it, or a reference to a section or version.
"Measured" is not a reason, so a measured figure typed into the prose fails here until it is
glued. Listed figures that no longer occur fail too, so the list stays the book's.

What is not prose is skipped: code, math (`$...$`), roles such as {glue:text}`name` and
{cite}`key`, link targets and directive options. Numbers below 100 without a decimal point,
percent sign or unit pass unlisted: they count chapters, seeds and epochs.
"""

import json
import re
from collections import Counter

import pytest
import yaml

from conftest import REPO_ROOT

REGISTRY = REPO_ROOT / "tests" / "typed_numbers.yml"
REASONS = ("setting", "data", "derived", "published", "reference")

_NOT_PROSE = [
    (r"\$\$.*?\$\$", re.S),
    (r"\$[^$]+\$", 0),
    (r"\{[a-z:-]+\}`[^`]*`", 0),  # roles: {glue:text}`x`, {cite}`x`, {ref}`x`, ...
    (r"`[^`]*`", 0),
    (r"\]\([^)]*\)", 0),  # link targets
    (r"https?://\S+", 0),
    (r"<!--.*?-->", re.S),
    (r"^:[a-z_-]+:.*$", re.M),  # directive options such as :label:
    (r"^\(.*\)=\s*$", re.M),  # targets such as (sec-03-source-loss)=
]
_NUMBER = re.compile(
    r"(?<![\w.,-])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?"
    r"(\s?%|\s(?:nats?|dB|min|minutes|seconds|s|hours?|bits|times|x)\b)?"
)


def _without_code_blocks(text):
    """`text` without its fenced code blocks; the content of directives ({exercise}, ...) stays."""
    kept, open_fences = [], []  # open_fences: (fence, holds code)
    for line in text.splitlines():
        fence = re.match(r"^\s*(`{3,}|~{3,})(.*)$", line)
        in_code = any(code for _, code in open_fences)
        if fence:
            marks, info = fence.group(1), fence.group(2).strip()
            top = open_fences[-1][0] if open_fences else ""
            if top and not info and marks[0] == top[0] and len(marks) >= len(top):
                open_fences.pop()
                continue
            if not in_code:
                open_fences.append((marks, not info.startswith("{")))
                continue
        if not in_code:
            kept.append(line)
    return "\n".join(kept)


def prose(text):
    text = _without_code_blocks(text)
    for pattern, flags in _NOT_PROSE:
        text = re.sub(pattern, " ", text, flags=flags)
    return text


def figures(text):
    """The figures of `text`'s prose that could be measurements, in order."""
    found = []
    for match in _NUMBER.finditer(prose(text)):
        whole, decimals, unit = match.group(1), match.group(2), match.group(3)
        if decimals or unit or len(whole.replace(",", "")) >= 3:
            found.append(match.group(0).strip())
    return found


def pages():
    for path in sorted((REPO_ROOT / "chapters").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        yield path, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for path in sorted((REPO_ROOT / "book").glob("*.md")):
        yield path, path.read_text()


PAGES = list(pages())


def test_figures_finds_what_could_be_a_measurement():
    text = (
        "FID 8.7 against 12 seeds; 1,000 images took 46 min, a gain of 6 dB and 99.5% accuracy, "
        "3 times faster. $D = 784$ and `x = 0.5` and {glue:text}`fid` are not prose; 8 epochs pass."
    )
    assert figures(text) == ["8.7", "1,000", "46 min", "6 dB", "99.5%", "3 times"]


def test_the_registry_gives_a_reason_for_every_figure():
    registry = yaml.safe_load(REGISTRY.read_text())
    for name, entries in registry.items():
        for figure, reason in entries.items():
            assert str(reason).split(":")[0] in REASONS, (
                f"{name}: {figure!r} is listed as {reason!r}; a reason starts with one of {REASONS} and a colon"
            )


@pytest.mark.parametrize("path, text", PAGES, ids=[p.relative_to(REPO_ROOT).as_posix() for p, _ in PAGES])
def test_no_measured_figure_is_typed(path, text):
    name = path.relative_to(REPO_ROOT).as_posix()
    listed = {str(k): v for k, v in (yaml.safe_load(REGISTRY.read_text()).get(name) or {}).items()}
    found = Counter(figures(text))
    unlisted = sorted(set(found) - set(listed))
    assert not unlisted, (
        f"{name} types these figures in its prose: {unlisted}. Glue a measured one from the cell that "
        f"computes it (or read it from a card); list any other in {REGISTRY.name} with its reason"
    )
    stale = sorted(set(listed) - set(found))
    assert not stale, f"{REGISTRY.name} lists figures that {name} no longer has: {stale}"
