# The two commands of the README: `make run` (the main job) and `make test` (everything CI checks).
# Both create or reuse the virtualenv .venv/ and install coursekit with its dependencies into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test sync-check nbtest docs-check pytest readme bench gpu-wheels gpu-check lab clean site browser

# One OpenMP thread for tests and benchmarks: these models are too small to gain much from a second thread (about
# 10% when the machine is idle), and on a busy shared machine two spinning threads collapse (an epoch measured at
# 33-35 s instead of 5.7-6.1 s with one thread; see the README). Override with `make test OMP_NUM_THREADS=2`.
OMP_NUM_THREADS ?= 1
export OMP_NUM_THREADS

# pip shows its progress on a terminal; in a log (CI) it stays quiet
$(STAMP): settings.ini setup.py
	@echo "coursekit: setting up .venv/ with PyTorch, fastai, nbdev and JupyterLab."
	@echo "  The first time, pip installs about 6 GB (PyTorch with its CUDA libraries, which also run on a CPU):"
	@echo "  5 to 10 minutes. Later runs reuse .venv/ and start at once."
	@start=$$(date +%s); test -t 1 && q="" || q="--quiet --progress-bar off"; \
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) && \
	$(BIN)/python -m pip install $$q --upgrade pip && \
	$(BIN)/python -m pip install $$q -e ".[dev]" && \
	echo "coursekit: .venv/ is ready ($$(( $$(date +%s) - start )) s)"
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/coursekit data
	$(BIN)/coursekit train --data mnist_sample --out runs/latest

# nbdev_export and nbdev_clean must leave every tracked file as it is
sync-check: install
	@before=$$(git status --porcelain --untracked-files=no; git diff | sha1sum); \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbdev_export && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbdev_clean; \
	after=$$(git status --porcelain --untracked-files=no; git diff | sha1sum); \
	if [ "$$before" != "$$after" ]; then echo "nbdev_export/nbdev_clean changed tracked files:"; git status --short; exit 1; fi; \
	echo "sync-check: notebooks and library are in sync"

nbtest: install
	PATH="$(CURDIR)/$(BIN):$$PATH" MPLBACKEND=Agg $(BIN)/nbdev_test --n_workers 2 --timing

pytest: install
	MPLBACKEND=Agg $(BIN)/python -m pytest -q tests

# nbdev's docs processing (what nbdev_docs / nbdev_preview run before Quarto): every notebook must survive it, and the
# committed docs configuration (nbs/_quarto.yml, nbdev.yml, sidebar.yml) must be what nbdev would write
docs-check: install
	PATH="$(CURDIR)/$(BIN):$$PATH" MPLBACKEND=Agg $(BIN)/python tools/docs_check.py && rm -rf _proc
	@git diff --quiet -- nbs/_quarto.yml nbs/nbdev.yml nbs/sidebar.yml || \
	  { echo "docs-check: the docs configuration in nbs/ changed:"; git diff --stat -- nbs; exit 1; }

# Debian's Chromium and ChromeDriver, for the browser test of the static site (tests/test_site.py)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "coursekit: installing Debian's chromium and chromium-driver for the site's browser test (1-2 minutes)"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Every notebook with its committed outputs as static HTML in _site/ (open _site/index.html), built offline
site: install
	$(BIN)/python tools/make_site.py

test: sync-check nbtest docs-check browser pytest

# README.md is generated from nbs/index.ipynb
readme: install
	$(BIN)/python tools/make_readme.py

bench: install
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

# Wheels for a GPU machine that has PyTorch but no internet (see tools/gpu_check.py), and the check itself
gpu-wheels:
	PIP="$(PYTHON) -m pip" tools/gpu_wheels.sh

gpu-check: install
	$(BIN)/python tools/gpu_check.py $(if $(DRY),--cpu-dry-run,)

# JupyterLab on the notebooks, with nbdev's pre-save hook: every notebook it saves is cleaned as nbdev_clean would
# (execution counts and metadata; outputs stay). As root (containers, VMs) Jupyter needs --allow-root.
lab: install
	$(BIN)/jupyter lab nbs/ --no-browser --ContentsManager.pre_save_hook=nbdev.clean.clean_jupyter \
	  $(if $(filter 0,$(shell id -u)),--allow-root,)

clean:
	rm -rf $(VENV) build dist *.egg-info _docs _proc _site
