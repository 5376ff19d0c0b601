# One command sets up and runs the demo; one sets up and runs the tests (README).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.demo-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: setup demo test engines bench models clean

$(DEMO_STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(DEMO_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(TEST_STAMP)  ## create .venv with the product and its test tools

demo: $(DEMO_STAMP)  ## the bundled clip -> out/demo.mp4 + out/demo.jsonl (objects closer than 30 m); installs only what the demo needs
	$(BIN)/python -m export models --for demo
	$(BIN)/python -m stream --source demo --closer-than 30 --output out/demo.mp4 --jsonl out/demo.jsonl

test: $(TEST_STAMP)  ## the test suite (CPU only; GPU tests skip without a GPU); models and photos through the model store
	$(BIN)/python -m export models --for test
	$(BIN)/python -m pytest -q

engines: $(DEMO_STAMP)  ## TensorRT engines for every model the config uses (needs TensorRT + a GPU: pip install -e '.[gpu]')
	$(BIN)/python -m engines build

$(VENV)/.bench-installed: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench,export]'
	touch $@

bench: $(VENV)/.bench-installed  ## the standard benchmarks on this machine (a few minutes) -> bench/results/ (JSON, Markdown, PNG)
	$(BIN)/python -m bench pipeline --source demo --layouts serial parallel --frames 300 --repeat 2 --out bench/results/
	$(BIN)/python -m bench models --backend ort-cpu ort-cuda ort-trt trt --precision fp32 fp16 --out bench/results/

models: $(DEMO_STAMP)  ## the model store's files (models/MANIFEST.yaml): from the cache or the mirror, else downloaded, sha256 checked
	$(BIN)/python -m export models

clean:
	rm -rf out .pytest_cache
