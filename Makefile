# The README's test command is `make test`: it runs the whole suite on two workers.
PYTEST ?= python -m pytest

.PHONY: test test-fast lint

test:
	$(PYTEST) -n 2 -q

test-fast:
	$(PYTEST) -n 2 -q -m "not slow"

lint:
	ruff check bot adapters strategies training tests bench
	mypy bot adapters strategies training
