# The two commands of the README:
#   make book   set up .venv, build the HTML book into _build/html
#   make test   set up .venv, run every test (unit tests and nbval over every notebook in
#               quick mode, each on all three Keras backends, the book build
#               with warnings as errors, and the built site in headless Chromium)
# Only Python 3.11 and access to the package registry are needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# The real MNIST files beside the clone (as in CI); override to use another folder.
COMPANION_MNIST_DIR ?= $(abspath ../shared/data/mnist)
PYTEST_ENV := COMPANION_MNIST_DIR=$(COMPANION_MNIST_DIR)

# apt-get needs root: sudo where the user is not root (CI runs as root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book book-full bench browser test lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), \
	  f"Python 3.11 is needed, {sys.executable} is {sys.version.split()[0]}; run make PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet pip==26.3

$(VENV)/.book-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e ".[book]"
	@touch $@

$(VENV)/.test-installed: $(VENV)/.book-installed
	$(PIP) install --quiet -c constraints.txt -e ".[book,backends,test]"
	@touch $@

# The book from the outputs stored in the notebooks (no notebook is executed).
book: $(VENV)/.book-installed
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo
	@echo "The book is built. Open file://$(CURDIR)/_build/html/index.html"

# Re-executes every notebook in full mode (stored outputs are replaced; about an hour on
# two CPU cores), then builds the book.
book-full: $(VENV)/.test-installed
	cd chapters && for nb in *.ipynb; do ../$(BIN)/jupyter-execute --inplace --timeout=1800 $$nb || exit 1; done
	$(MAKE) book

# Headless Chromium and its driver for tests/test_browser.py, from Debian's packages.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

# nbval over the notebooks in quick mode: every cell runs; cells tagged nbval-check-output
# also compare their output with the stored one.
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=900 --nbval-sanitize-with tests/nbval_sanitize.cfg

# The jax and torch runs take the tests marked `backend` and every notebook; the last run
# (TensorFlow, the default backend) takes every unit test, every notebook and the book build.
test: $(VENV)/.test-installed browser
	$(PYTEST_ENV) KERAS_BACKEND=jax $(BIN)/pytest -m backend -q tests
	$(PYTEST_ENV) KERAS_BACKEND=jax COMPANION_QUICK=1 $(BIN)/pytest -q chapters $(NBVAL)
	$(PYTEST_ENV) KERAS_BACKEND=torch $(BIN)/pytest -m backend -q tests
	$(PYTEST_ENV) KERAS_BACKEND=torch COMPANION_QUICK=1 $(BIN)/pytest -q chapters $(NBVAL)
	$(PYTEST_ENV) KERAS_BACKEND=tensorflow COMPANION_QUICK=1 $(BIN)/pytest -q tests chapters $(NBVAL)

# The CPU benchmarks (about an hour on two cores; run nothing else meanwhile), then
# bench/RESULTS.md from everything in bench/results/ (GPU runs included).
bench: $(VENV)/.test-installed
	$(PYTEST_ENV) $(BIN)/python bench/throughput.py
	$(PYTEST_ENV) $(BIN)/python bench/notebooks.py
	$(BIN)/python bench/report.py

# Re-pin every transitive dependency after a change to pyproject.toml.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet pip==26.3
	.venv-lock/bin/python -m pip install --quiet ".[book,backends,test]"
	{ echo "# Every package the book, the tests and the three backends install, pinned."; \
	  echo "# Regenerate with \`make lock\` after changing pyproject.toml."; \
	  .venv-lock/bin/python -m pip freeze --exclude companion | sed 's/+cpu$$//'; } > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf _build .venv .pytest_cache
