# The two commands a new user needs: `make run` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
RUN_STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-charts bench-scaling bench-object-storage clean fuzz soak

# Two install levels: `make run` installs only the server's runtime dependencies; `make test` adds the
# test toolchain (linters, browsers' driver, the benchmark peer) on top of the same venv.
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	# The Zipkin protobuf exporter pins protobuf 3; its test loads it in a subprocess, so skip its deps.
	$(BIN)/pip install --quiet --no-deps opentelemetry-exporter-zipkin-proto-http
	touch $(STAMP)

run: $(RUN_STAMP)  ## run the whole backend on an embedded store in ./data
	$(BIN)/spanlake serve --data-dir data

test: $(STAMP)  ## lint, check import boundaries, type-check and run the whole default test suite
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy spanlake
	$(BIN)/pytest -q -m "not slow"

fuzz: $(STAMP)  ## the fuzz tests with 2,000 cases each (make test runs 60)
	$(BIN)/pytest -q -m fuzz tests/fuzz

soak: $(STAMP)  ## the soak test (SPANLAKE_SOAK_SECONDS, default 1800; needs root for its tmpfs)
	$(BIN)/pytest -q -s -m soak tests/soak

bench: $(STAMP)  ## spanlake vs ClickHouse (chDB) at 1M spans
	$(BIN)/python -m bench.run --spans $${BENCH_SPANS:-1000000}

bench-charts: $(STAMP)  ## plotly.min.js (from the installed plotly) beside the committed charts, to open them offline
	$(BIN)/python -c "from pathlib import Path; from bench.report import write_plotly_js; write_plotly_js(Path('bench/results'))"

bench-scaling: $(STAMP)  ## how cost grows: spanlake at 1M, 10M, 100M spans, the peer at 1M and 10M (hours)
	$(BIN)/python -m bench.run --scaling

bench-object-storage: $(STAMP)  ## two collectors into SeaweedFS, a query node that ingested nothing
	$(BIN)/python -m bench.object_storage --spans $${BENCH_SPANS:-1000000}

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
