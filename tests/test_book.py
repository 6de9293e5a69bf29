"""Builds the book with warnings as errors and checks the HTML a reader gets."""

import json
import re

import pytest

from test_notebooks import CHAPTERS, toc_files

pytestmark = pytest.mark.book


def test_every_toc_page_is_built(html):
    assert (html / "index.html").is_file()
    for entry in toc_files():
        assert (html / f"{entry}.html").is_file(), f"no page for {entry}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_page_shows_stored_figures_and_hidden_solutions(html, path):
    page = (html / "chapters" / f"{path.stem}.html").read_text()
    figures = re.findall(r'<img[^>]+src="\.\./_images/[0-9a-f]+\.png"', page)
    assert len(figures) >= 1, "the page shows the notebook's stored figures"
    assert page.count('class="exercise admonition"') == page.count('class="solution dropdown admonition"') > 0
    # Tracebacks only where a cell is meant to fail (the source's code, run as written).
    notebook = json.loads(path.read_text())
    meant = sum("raises-exception" in c["metadata"].get("tags", []) for c in notebook["cells"] if c["cell_type"] == "code")
    assert len(re.findall(r'class="[^"]*\boutput traceback\b', page)) == meant
    if not meant:
        assert "Traceback" not in page
    assert "absl::InitializeLog" not in page, "TensorFlow's start-up log leaked into the page"


def test_background_page_has_both_diagrams(html):
    page = (html / "chapters" / "01_background.html").read_text()
    for name in ("vae_diagram.svg", "gan_diagram.svg"):
        assert name in page
        assert (html / "_images" / name).is_file()


def test_citations_resolve_to_the_bibliography(html):
    intro = (html / "book" / "intro.html").read_text()
    assert re.search(r'href="references\.html#id\d+"', intro), "citations link to the references page"
    references = (html / "book" / "references.html").read_text().lower()
    for title in ("auto-encoding variational bayes", "generative adversarial nets"):
        assert title in references
