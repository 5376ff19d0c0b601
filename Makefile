# One command sets up and runs the demo; one sets up and runs the tests (README).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_STAMP := $(VENV)/.demo-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: setup demo test engines bench models clean triton-env

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

# The Triton server the tests run (tests/triton_server.py): the tritonserver binary of the nvidia-pytriton wheel,
# in a venv of Debian's own Python, whose libpython the server's Python backend links (.ci/run installs it).
TRITON_PY ?= /usr/bin/python3
TRITON_VENV ?= .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed

$(TRITON_STAMP): tests/triton-server-requirements.txt
	@test -x $(TRITON_PY) || { echo "error: $(TRITON_PY) not found: the Triton tests need Debian's python3, python3-venv and libpython3.X (apt-get install them; .ci/run does)" >&2; exit 1; }
	rm -rf $(TRITON_VENV)
	$(TRITON_PY) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install --quiet --no-deps -r tests/triton-server-requirements.txt
	$(TRITON_VENV)/bin/python tests/triton_server.py --check
	touch $@

triton-env: $(TRITON_STAMP)  ## the venv of the Triton server the tests start (.venv-triton, about 330 MB)

# DEPTHSTREAM_REQUIRE_RTSP / _BROWSER: the RTSP and the browser view's tests fail (never skip) when their server
# or browser is missing.
test: $(TEST_STAMP) $(TRITON_STAMP)  ## the test suite (CPU only; GPU tests skip without a GPU; the Triton, RTSP and browser tests must run); models and photos through the model store
	$(BIN)/python -m export models --for test
	DEPTHSTREAM_TRITON_VENV=$(TRITON_VENV) DEPTHSTREAM_REQUIRE_RTSP=1 DEPTHSTREAM_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q

engines: $(DEMO_STAMP)  ## TensorRT engines for every model the config uses (needs TensorRT + a GPU: pip install -e '.[gpu]')
	$(BIN)/python -m engines build

$(VENV)/.bench-installed: $(TEST_STAMP)
	$(BIN)/pip install --quiet -e '.[bench,export]'
	touch $@

bench: $(VENV)/.bench-installed  ## the standard benchmarks on this machine (about 8 minutes on 2 cores) -> bench/results/ (JSON, Markdown, PNG)
	$(BIN)/python -m bench pipeline --source demo --layouts serial parallel --frames 300 --repeat 2 --out bench/results/
	$(BIN)/python -m bench depth-every --source demo --every 1 2 3 4 --repeat 2 --out bench/results/
	$(BIN)/python -m bench fixed-costs --source demo --rounds 5 --out bench/results/
	$(BIN)/python -m bench models --backend ort-cpu ort-cuda ort-trt trt --precision fp32 fp16 --out bench/results/

models: $(DEMO_STAMP)  ## the model store's files (models/MANIFEST.yaml): from the cache or the mirror, else downloaded, sha256 checked
	$(BIN)/python -m export models

clean:
	rm -rf out .pytest_cache
