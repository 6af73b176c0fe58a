# Two commands set everything up: `make run` and `make test`.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
AC      := .venv/bin/autocomplete
DATA    ?= ../shared/data
LOG     ?= $(DATA)/aol1k-dev.tsv.gz
BIGLOG  ?= $(DATA)/aol1m-queries.txt.gz
MODEL   ?= models/demo
PORT    ?= 8000

.PHONY: run test install install-dev demo-model bench bench-personal bench-scale bench-serve bench-replay bench-reload bench-streaming lint redis chromium axe screenshot clean

# `make run` installs only what training the demo and serving need; `make test` adds the test
# tools (the dev extra) and pyarrow for Parquet logs (the logs extra). --no-compile: Python
# writes the bytecode of the modules it imports when it first imports them, not of all 30000
# files of SciPy and friends (116 MB).
.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --no-compile -e .
	touch $@

.venv/.dev-installed: .venv/.installed
	$(PIP) install --quiet -e '.[dev,logs]'
	touch $@

# PECOS for the benchmark: its XR-Linear needs none of the deep-learning packages it lists.
.venv/.bench-installed: .venv/.dev-installed
	$(PIP) install --quiet -e '.[dev,bench]'
	$(PIP) install --quiet --no-deps libpecos==1.2.8
	touch $@

install: .venv/.installed

install-dev: .venv/.dev-installed

demo-model: install
	$(AC) demo --config configs/demo.toml --out $(MODEL) --quiet

run: demo-model
	$(AC) serve --model $(MODEL) --config configs/serve.toml --port $(PORT)

# Redis for the session-store tests: use the one on 127.0.0.1:6379, start one if none answers.
# The Redis Cluster tests start their own three masters (redis-server and redis-cli, tests/cluster_support.py).
PING := $(PY) -c "import redis; redis.Redis(socket_connect_timeout=1).ping()" 2>/dev/null
redis: install
	@$(PING) || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 50); do $(PING) && exit 0; sleep 0.2; done; echo "Redis did not start on 127.0.0.1:6379"; exit 1

# Headless browser for the widget tests: Debian's chromium, no downloads of our own.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# axe-core for the widget's accessibility test, at the version tests/js/package-lock.json pins (npm registry).
AXE := tests/js/node_modules/axe-core/axe.min.js
$(AXE): tests/js/package.json tests/js/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null)
	npm ci --prefix tests/js --no-audit --no-fund --silent
	touch $@
axe: $(AXE)

# Two test processes: most server tests wait on subprocesses (a fresh clone, 2 cores: 834 s of
# pytest on one process, 691 s on two, most of the rest each process compiling numba kernels).
test: install-dev redis chromium axe
	$(PY) -m pytest -q -n 2

# The README's picture of the demo page (docs/img/demo.png), taken by the widget's browser test.
screenshot: install-dev chromium
	AUTOCOMPLETE_SCREENSHOT=$(CURDIR)/docs/img/demo.png $(PY) -m pytest -q tests/test_widget.py -k test_demo_screenshot

lint: install-dev
	.venv/bin/ruff check autocomplete indexer sessions tests
	.venv/bin/mypy autocomplete indexer sessions

bench: .venv/.bench-installed
	$(PY) -m bench.quality --log $(LOG) --config configs/aol.toml --out bench

# plain / + history / + word links, on every user and on the new users (six models trained).
bench-personal: .venv/.bench-installed
	$(PY) -m bench.personal --log $(LOG) --config configs/aol.toml --out bench

bench-scale: .venv/.bench-installed
	$(PY) -m bench.scale --log $(BIGLOG) --config configs/aol1m.toml --out bench

# The service over loopback: 1 client p50/p99, 64 sessions at human and full speed, memory and Redis, 1 and 2 workers.
SERVE_MODEL ?= $(MODEL)
SERVE_LOG   ?= $(LOG)
bench-serve: demo-model redis
	$(PY) -m bench.serve --model $(SERVE_MODEL) --log $(SERVE_LOG) --config configs/serve.toml \
		--redis-url redis://127.0.0.1:6379/0 --out bench

# The test split's sessions replayed through the server (Redis; 1 and 2 workers) at concurrency 1, 16, 64, 256.
# The model is trained from $(LOG) once, into models/ (local only: never shipped).
REPLAY_MODEL ?= models/aol1k-dev
$(REPLAY_MODEL)/params.json:
	$(AC) train --config configs/aol.toml --log $(LOG) --out $(REPLAY_MODEL) --quiet
bench-replay: install-dev redis $(REPLAY_MODEL)/params.json
	$(PY) -m bench.replay --model $(REPLAY_MODEL) --log $(LOG) --config configs/aol.toml \
		--serve-config configs/serve.toml --redis-url redis://127.0.0.1:6379/0 --out bench

# Hot reloads under the replay load (concurrency 16): a new model folder every 5 s, a damaged one at the third swap.
bench-reload: install-dev redis $(REPLAY_MODEL)/params.json
	$(PY) -m bench.replay --model $(REPLAY_MODEL) --log $(LOG) --config configs/aol.toml \
		--serve-config configs/serve.toml --redis-url redis://127.0.0.1:6379/0 --out bench --reload-every 5
# Frozen vs live (counts + labels): valid and test replayed in time order, in process (see configs/aol.toml [live]).
bench-streaming: install-dev $(REPLAY_MODEL)/params.json
	$(PY) -m bench.streaming --model $(REPLAY_MODEL) --log $(LOG) --keystrokes --out bench

clean:
	rm -rf models build *.egg-info .pytest_cache
