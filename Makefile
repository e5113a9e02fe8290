# vmlisub developer entry points. `make test` is the full suite that CI runs.
CARGO ?= cargo

.PHONY: test lint unit e2e build demo crds bench

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

## Bring a local control plane up and show it (stop it with `e2e/cluster down`).
demo:
	bash e2e/demo.sh

## Regenerate crds/ from the Rust types.
crds:
	$(CARGO) run --quiet -p vmlisub -- crds > crds/vmlisub.yaml

bench:
	$(CARGO) bench -p vmlisub --bench verify
