# The two commands of the README: `make run` (the main job) and `make test` (everything CI checks).
# Both create or reuse the virtualenv .venv/ and install coursekit with its dependencies into it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test sync-check nbtest pytest readme bench clean

$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[dev]"
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
	PATH="$(CURDIR)/$(BIN):$$PATH" MPLBACKEND=Agg $(BIN)/nbdev_test --n_workers 1 --timing

pytest: install
	MPLBACKEND=Agg $(BIN)/python -m pytest -q tests

test: sync-check nbtest pytest

# README.md is generated from nbs/index.ipynb
readme: install
	$(BIN)/python tools/make_readme.py

bench: install
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info _docs _proc
