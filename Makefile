# One command sets up and runs the demo; one sets up and runs the tests (README).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test engines bench models clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with the product and its test tools

demo: $(STAMP)  ## the bundled clip -> out/demo.mp4 + out/demo.jsonl (objects closer than 30 m)
	$(BIN)/python -m stream --source demo --closer-than 30 --output out/demo.mp4 --jsonl out/demo.jsonl

test: $(STAMP)  ## the test suite (CPU only; GPU tests skip without a GPU)
	$(BIN)/python -m pytest -q

engines: $(STAMP)  ## TensorRT engines for every model the config uses (needs TensorRT + a GPU: pip install -e '.[tensorrt]')
	$(BIN)/python -m engines build

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench,export]'
	touch $@

bench: $(VENV)/.bench-installed  ## the standard benchmarks on this machine (a few minutes) -> bench/results/ (JSON, Markdown, PNG)
	$(BIN)/python -m bench pipeline --source demo --layouts serial parallel --frames 300 --repeat 2 --out bench/results/
	$(BIN)/python -m bench models --backend ort-cpu ort-cuda ort-trt trt --precision fp32 fp16 --out bench/results/

models: $(STAMP)  ## download the pinned public weights (export/weights.yaml: URL + sha256) and export them to models/
	$(BIN)/python -m export models

clean:
	rm -rf out .pytest_cache
