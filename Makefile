# Two commands do everything: `make run` and `make test`. Both create or reuse .venv and install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch that lies on disk here; installed first so that nothing pulls a CUDA build.
TORCH  ?= torch==2.13.0

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install run test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,dev,faiss]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## run: execute the notebook series into build/ (KIT_FAST=1 for a quick pass)
run: install
	$(BIN)/python -m kit run-notebooks --out build

## test: every test, notebooks included (executed under KIT_FAST=1)
test: install
	$(BIN)/python -m pytest -q

## bench: speed comparisons, side by side (ratios), see benchmarks/README.md
bench: install
	$(BIN)/python benchmarks/bench_encode_search.py
	$(BIN)/python benchmarks/bench_train_throughput.py

clean:
	rm -rf build .pytest_cache
