# vmlisub developer entry points. `make test` is the full suite that CI runs.
CARGO ?= cargo

.PHONY: test lint unit e2e build demo bench

## The full test suite: formatting, lints, unit and integration tests, then
## the end-to-end tests against a real Kubernetes control plane.
test: lint unit e2e

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked --exclude vmlisub-e2e

build:
	$(CARGO) build --release --locked -p vmlisub

e2e:
	bash e2e/run.sh

bench:
	bash operator/benches/run.sh
