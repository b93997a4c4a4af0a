# gdap-operator. The two commands that matter: `make demo` and `make test` (see README.md).
# Both install what they need first (scripts/deps) and build the test control plane once (cached
# under ~/.cache/gdap-operator, or $GDAP_CACHE_DIR).

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:/usr/local/go/bin:$(PATH)
CARGO ?= cargo
BIN := target/debug/gdap-operator
CP := tests/controlplane
DEMO_NS ?= gdap-demo

.PHONY: deps build crds controlplane down test soak lint release-check bench demo clean

deps:
	@scripts/deps

build: deps
	$(CARGO) build --locked

## Regenerate crds/ and the chart's copy from src/api (a test fails when they drift).
crds: build
	$(BIN) crds --out-dir crds
	$(BIN) crds --out-dir charts/gdap-operator/crds

## Start etcd + kube-apiserver on loopback (built from upstream Go modules, cached).
controlplane: deps
	@$(CP)/up

down:
	@scripts/demo-down
	@$(CP)/down

lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## The whole suite: lint; unit, integration and end-to-end tests against the real API server and
## the sandbox; then Microsoft's official Python clients (MSAL, the Graph SDK) against the sandbox.
test: deps lint release-check
	@$(CP)/build >/dev/null
	$(CARGO) test --locked --no-fail-fast -- --test-threads 4
	tests/conformance/run

## The resilience suite at full size (docs/guarantees.md): 100 relationships, 100 consents and 20 syncs
## with random SIGKILLs, larger fleets for the lost-status, Microsoft-fault and API-server-restart
## tests, and 20,000 cases per property test. `make test` runs the same tests small. One test at
## a time: each one loads the machine on its own.
soak: deps
	@$(CP)/build >/dev/null
	GDAP_SOAK=1 PROPTEST_CASES=20000 $(CARGO) test --locked --test resilience --test resilience_kube --test fuzz_parsers -- --test-threads 1
	PROPTEST_CASES=20000 $(CARGO) test --locked --lib -- any_ arbitrary_ a_fixture_with

## The production build (the container image's): no sandbox, and no test key in the binary.
release-check:
	$(CARGO) build --release --locked --no-default-features
	@! grep -q -a -e "-----BEGIN [A-Z ]*PRIVATE KEY-----" target/release/gdap-operator || { echo "the release binary contains a private key" >&2; exit 1; }
	@! target/release/gdap-operator sandbox --help >/dev/null 2>&1 || { echo "the release binary still serves the sandbox" >&2; exit 1; }
	@echo "release build: no sandbox, no embedded key"

## The main loop: control plane + sandbox + operator; an example relationship reaches Ready.
demo: build
	@scripts/demo

## Speed and memory against the targets (release builds, about an hour): reconcile, import,
## footprint, schedules, export/plan; writes bench/results.json and docs/benchmarks.md.
bench: deps
	@scripts/bench

clean: down
	$(CARGO) clean
