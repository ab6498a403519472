# meetmood: `make run` starts the server, `make test` runs the whole suite.
# Both set everything up first (a .venv in this folder), so they work on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch goes in first and alone: on Linux without an NVIDIA GPU the CPU build (no CUDA
# downloads); on macOS the standard wheel (MPS). TORCH_SPEC / TORCH_INDEX override it.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test setup test-setup system-test-deps lint format bench clean

# Stamp files: setup reruns only when the dependency lists change.
$(VENV)/.setup-done: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	scripts/install_torch.sh $(BIN)/python "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.test-setup-done: $(VENV)/.setup-done
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.setup-done

test-setup: $(VENV)/.test-setup-done system-test-deps

# Debian's Chromium (real browser tests), espeak-ng and sox (speech test audio),
# poppler-utils (the PDF report rendered and read back) and
# iproute2 (tests run in a private network namespace). Installed when root with apt.
system-test-deps:
	@scripts/install_system_test_deps.sh

run: setup
	$(BIN)/meetmood serve $(ARGS)

# The suite runs inside a private network namespace holding only loopback: WebRTC
# never leaves the machine and any download attempt fails at once.
test: test-setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	scripts/in_netns.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: test-setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: test-setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
