"""The built book as a reader sees it: headless Chromium over the site served on localhost.

For every page of `_toc.yml`: no errors in the browser's console, math typeset by the MathJax
the site serves itself (no network here or for an offline reader), every image loaded, every
internal link and anchor resolving, and, on chapter pages, launch and download links that
point at the page's own notebook. Screenshots of the home page and of one chapter go to
`_build/screenshots/`. Needs Debian's `chromium` and `chromium-driver` (`make test` installs
them where they are missing) and `selenium`.
"""

import functools
import http.server
import json
import re
import shutil
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from test_notebooks import CHAPTERS, toc_files

pytestmark = pytest.mark.book

SCREENSHOTS = REPO_ROOT / "_build" / "screenshots"
MATH_TIMEOUT = 30  # seconds for MathJax to typeset a page (it typesets the longest chapter in about 2 s)
ANCHOR = re.compile(r'\bid="([^"]+)"')
# What no output on the site may show: a path of the machine that executed the notebook, and
# a warning (Python's `...Warning:` lines, TensorFlow's and absl's log lines).
LOCAL_PATH = re.compile(r"(/work/|/root/|/home/|/tmp/|/usr/|site-packages)")
WARNING = re.compile(r"(\b\w*Warning: |\bWARNING\b|^[IWE]\d{4} \d\d:\d\d:\d\d)", re.M)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(html):
    """The base address of `html` served over HTTP on a free localhost port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a test dependency: pip install -e '.[test]'")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver "
            f"(found chromium={chromium}, chromedriver={driver_path}); `make test` installs them"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(MATH_TIMEOUT)
    yield driver
    driver.quit()


def _open(browser, url):
    """Loads `url`, waits until MathJax has typeset the page, and returns the console's errors."""
    browser.get_log("browser")  # drops what earlier pages logged
    browser.get(url)
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const wait = () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                MathJax.startup.promise.then(() => done(true));
            } else if (document.readyState === 'complete' && !document.querySelector('script[src*="mathjax"]')) {
                done(false);
            } else {
                setTimeout(wait, 50);
            }
        };
        wait();
    """)
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _page_url(site, entry):
    return urllib.parse.urljoin(site, entry + ".html")


def _site_file(html, site, url):
    """The file under `html` that an address of the site serves, and the address's fragment."""
    parts = urllib.parse.urlsplit(url)
    path = html / urllib.parse.unquote(parts.path).lstrip("/")
    return (path / "index.html" if path.is_dir() else path), urllib.parse.unquote(parts.fragment)


@functools.cache
def _anchors(path):
    return set(ANCHOR.findall(Path(path).read_text(errors="replace")))


def _toc_pages():
    return ["index"] + toc_files()


@pytest.mark.parametrize("entry", _toc_pages())
def test_page_reads_as_published(browser, site, html, entry):
    errors = _open(browser, _page_url(site, entry))
    assert not errors, f"{entry}: the browser's console shows errors: {errors}"

    # Math: typeset by MathJax (its output elements are there) and no raw delimiters left.
    has_math = browser.execute_script("return document.querySelectorAll('.math, div.math, span.math').length") > 0
    if has_math:
        assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 0, (
            f"{entry}: the page has math but MathJax typeset none of it (is the offline MathJax served?)"
        )
    text = browser.execute_script(
        "const main = (document.querySelector('main') || document.body).cloneNode(true);"
        "main.querySelectorAll('pre, code, .highlight, mjx-container, script, style').forEach(e => e.remove());"
        "return main.textContent;"
    )
    for raw in ("$$", "\\(", "\\["):
        assert raw not in text, f"{entry}: raw math delimiter {raw!r} left in the page's text"

    # Images: each one loaded.
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken, f"{entry}: images that did not load: {broken}"

    # Links and anchors inside the site (the browser makes every href absolute).
    hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    for href in sorted(set(hrefs)):
        if not href.startswith(site):
            continue
        target, fragment = _site_file(html, site, href)
        assert target.is_file(), f"{entry}: a link points at {href}, which the site lacks"
        if fragment and target.suffix == ".html":
            assert fragment in _anchors(target), f"{entry}: a link points at #{fragment}, which {target.name} lacks"


def _table_outputs(path):
    """How many tables the notebook's outputs hold as Markdown (`plotting.markdown_table`), in
    cells whose outputs the page shows."""
    count = 0
    for cell in json.loads(path.read_text())["cells"]:
        if {"remove-output", "remove-cell"} & set(cell["metadata"].get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            markdown = "".join(output.get("data", {}).get("text/markdown", ""))
            count += len(re.findall(r"^\|( --- \|)+$", markdown, re.M))
    return count


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_outputs_read_as_published(browser, site, path):
    _open(browser, _page_url(site, f"chapters/{path.stem}"))
    # Each table a cell computed is an HTML table on the page, not a paragraph of pipes.
    expected = _table_outputs(path)
    tables = browser.execute_script("return document.querySelectorAll('.cell_output table').length")
    assert tables == expected, f"{path.stem}: {expected} tables in the notebook's outputs, {tables} rendered as tables"
    outputs = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output')).map(e => e.textContent)"
    )
    for text in outputs:
        assert "| --- |" not in text, f"{path.stem}: an output shows a table's raw pipes: {text[:300]!r}"
        path_shown = LOCAL_PATH.search(text)
        assert not path_shown, f"{path.stem}: an output shows a local path: ...{text[max(0, path_shown.start() - 80):path_shown.end() + 80]!r}"
        warning = WARNING.search(text)
        assert not warning, f"{path.stem}: an output shows a warning: ...{text[max(0, warning.start() - 80):warning.end() + 160]!r}"


def test_site_serves_a_favicon_at_its_root(site):
    # Browsers ask for /favicon.ico whatever the page links; a 404 there is a console error
    # on whichever page loads first (it failed CI once on the home page).
    with urllib.request.urlopen(urllib.parse.urljoin(site, "favicon.ico"), timeout=10) as response:
        assert response.status == 200
        icon = response.read()
    assert icon[:4] == b"\x00\x00\x01\x00", "favicon.ico is not an ICO file"


@pytest.mark.parametrize("entry", [e for e in toc_files() if e.startswith("chapters/")])
def test_launch_and_download_links_point_at_the_chapters_notebook(browser, site, entry):
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    repository = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    notebook = f"{entry}.ipynb"
    _open(browser, _page_url(site, entry))
    hrefs = set(browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"))
    expected = {
        "Colab": f"https://colab.research.google.com/github/{repository}/blob/{branch}/{notebook}",
        "Binder": f"https://mybinder.org/v2/gh/{repository}/{branch}?urlpath=tree/{notebook}",
        "download": urllib.parse.urljoin(site, f"_sources/{notebook}"),
    }
    for what, url in expected.items():
        assert url in hrefs, f"{entry}: no {what} link to {url}"
    download = urllib.request.urlopen(expected["download"], timeout=10).read()
    assert b'"cells"' in download, f"{entry}: the download link does not serve the notebook"


def test_screenshots_of_the_home_page_and_a_chapter(browser, site):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chapter = next(e for e in toc_files() if e.startswith("chapters/03"))
    for name, entry in (("home", "index"), ("chapter", chapter)):
        _open(browser, _page_url(site, entry))
        path = SCREENSHOTS / f"{name}.png"
        path.unlink(missing_ok=True)
        assert browser.save_screenshot(str(path)), f"no screenshot of {entry}"
        assert path.stat().st_size > 10_000, f"the screenshot of {entry} is nearly empty"
