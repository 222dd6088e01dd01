# Every target creates or reuses the environment in .venv/ from the hash-pinned lockfile.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

UI_PORT ?= 3000

.PHONY: demo test ui ui-check bench bench-peers lint lock clean-data

# uv (itself hash-pinned in requirements-bootstrap.lock) installs the lock in a third of pip's
# time (parallel downloads and bytecode compilation). It only installs; nothing is resolved here.
# Bytecode is compiled at install as pip does: where PYTHONDONTWRITEBYTECODE is set (as on these
# machines) nothing else would, and every process would compile dagster, pandas... from source.
UV := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --require-hashes --no-deps
$(STAMP): requirements.lock requirements-bootstrap.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-bootstrap.lock
	$(UV) -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The optional `mlflow` extra, hash-pinned in its own lock (constrained by the main one): the
# export test needs it, a runtime install does not.
MLFLOW_STAMP := $(VENV)/.installed-mlflow
$(MLFLOW_STAMP): $(STAMP) requirements-mlflow.lock
	$(UV) -r requirements.lock -r requirements-mlflow.lock
	@touch $(MLFLOW_STAMP)

demo: $(STAMP)
	$(BIN)/ml-assets demo

# The Spark driver's own environment (.venv-spark): the main lock, pyspark (hash-pinned in
# requirements-spark.lock, constrained by the main lock) and the project. pyspark stays out of
# .venv: pandera imports pyspark.pandas whenever pyspark is importable, half a second in every
# process. The Pipes asset and `ml-assets bench --sections spark` start their Spark driver with
# $ML_ASSETS_SPARK_PYTHON; `make test` points it here. No bytecode is compiled at install (30 s):
# the few driver processes compile only what they import.
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed
$(SPARK_STAMP): $(STAMP) requirements-spark.lock
	@test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(BIN)/uv pip install --quiet --python $(SPARK_VENV)/bin/python --require-hashes --no-deps -r requirements.lock -r requirements-spark.lock
	$(BIN)/uv pip install --quiet --python $(SPARK_VENV)/bin/python --no-deps --no-build-isolation -e .
	@touch $(SPARK_STAMP)

# pytest exits 5 when it collects nothing; make (and .ci/run) treat any non-zero as failure.
# Whole modules go to the workers in collection order, longest first (conftest.LONGEST_FIRST).
test: $(MLFLOW_STAMP) $(SPARK_STAMP)
	$(BIN)/ruff check ml_assets ml_assets_tests
	OMP_NUM_THREADS=1 ML_ASSETS_SPARK_PYTHON=$(CURDIR)/$(SPARK_VENV)/bin/python \
		$(BIN)/python -m pytest -q -n auto --dist loadscope --no-loadscope-reorder --durations=25
	$(BIN)/dagster definitions validate -w workspace.yaml

# The runner writes the instance config (Dagster's run monitoring on: scenarios/runner.py
# RUN_MONITORING), then becomes dagster dev with SIGINT/SIGTERM at their defaults (`exec` all
# the way): Ctrl-C or SIGTERM stops its webserver, daemon and code server within seconds, also
# when make was started where SIGINT is ignored (dagster dev would then ignore SIGTERM too).
ui: $(STAMP)
	DAGSTER_HOME=$${ML_ASSETS_DATA_DIR:-$(CURDIR)/data}/dagster_home \
	exec $(BIN)/python -m ml_assets.scenarios.runner $${ML_ASSETS_DATA_DIR:-$(CURDIR)/data} \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

# Screenshots of the asset graph, a monitoring asset's page and the model card after `make demo`,
# for a person to look at (ui-check/*.png), by Debian's headless Chromium (installed when
# missing and this user may); not in CI: the GraphQL test asserts what a test can.
ui-check: $(STAMP)
	@command -v chromium >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	$(BIN)/python -m ml_assets.scenarios.ui_check $${ML_ASSETS_DATA_DIR:-$(CURDIR)/data} ui-check

# Evidently and NannyML do not import on the project's pandas 3.1: `make bench-peers` puts them
# (hash-pinned) in their own environment, and `make bench` runs the peer side there when it exists.
PEERS := .venv-peers
$(PEERS)/.installed: requirements-peers.txt
	@test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-peers.txt
	@touch $(PEERS)/.installed

bench-peers: $(PEERS)/.installed

bench: $(STAMP)
	$(if $(wildcard $(SPARK_STAMP)),ML_ASSETS_SPARK_PYTHON=$(CURDIR)/$(SPARK_VENV)/bin/python) \
	$(BIN)/ml-assets bench $(if $(wildcard $(PEERS)/.installed),--peers-python $(PEERS)/bin/python)

lint: $(STAMP)
	$(BIN)/ruff check ml_assets ml_assets_tests

# Regenerate the lockfiles after changing dependencies in pyproject.toml (with the venv's uv).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra postgres --extra s3 --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock
	echo 'mlflow-skinny>=3.0' | $(BIN)/uv pip compile - -c requirements.lock --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-mlflow.lock
	echo 'uv==0.13.9' | $(BIN)/uv pip compile - --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements-bootstrap.lock
	echo 'pyspark>=4.0' | $(BIN)/uv pip compile - -c requirements.lock --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-spark.lock
