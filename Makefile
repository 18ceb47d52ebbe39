# Set-up and the two everyday jobs. Needs only Python 3.11, pip and make.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_N ?= 24

.PHONY: setup demo train lint test clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[dev,eval]'
	touch $(STAMP)

## The main job on bundled demo data: generate figures, mine the corpus, write the HTML report.
demo: $(STAMP)
	$(BIN)/panel2patch demo-data demo --n $(DEMO_N) --seed 0
	$(BIN)/panel2patch mine quickstart
	$(BIN)/panel2patch report out/quickstart/corpus out/quickstart/report.html
	@echo "open out/quickstart/report.html in a browser"

## Zoom-in pretraining of a tiny CLIP on a 200-figure demo corpus, then its evaluation against random init (CPU, ~10 min).
train: $(STAMP)
	$(BIN)/panel2patch demo-data demo-train --n 200 --seed 0
	$(BIN)/panel2patch mine quickstart mine.source.args.root=demo-train mine.writer.args.out=out/train-demo/corpus
	$(BIN)/panel2patch train train_tiny train.data.corpus=out/train-demo/corpus
	test -d out/tasks/modality || $(BIN)/panel2patch eval-task out/tasks/modality
	$(BIN)/panel2patch eval train_tiny train.data.corpus=out/train-demo/corpus

## Lint and architecture contracts (import-linter reads an installed copy: the folders map to packages).
lint: $(STAMP)
	$(BIN)/ruff check .
	rm -rf $(VENV)/lint-site
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --target $(VENV)/lint-site .
	PYTHONPATH=$(VENV)/lint-site $(BIN)/lint-imports pyproject.toml

## The test suite (lint and contracts first).
test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf demo demo-train out build dist *.egg-info
