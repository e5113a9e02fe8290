# vmlisub developer entry points. `make test` is the full suite that CI runs.
CARGO ?= cargo

.PHONY: test lint unit e2e build demo crds bench bench-scale quickstart quickstart-v2

## The full test suite: formatting, lints, unit and integration tests, then
## the end-to-end tests against a real Kubernetes control plane.
test: lint unit e2e

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@# The pure core stays free of the async runtime, Kubernetes and HTTP.
	! $(CARGO) tree -p vmlisub-core -e normal --prefix none --locked | grep -E '^(tokio|kube|kube-[a-z]+|hyper|reqwest) '
	bash e2e/tests/lint-dockerfile.sh
	bash e2e/tests/cargo-deny.sh

## The Glance export test (operator/tests/glance_export.rs) runs against a
## real Keystone and Glance from PyPI, installed once into a cached
## virtualenv by e2e/openstack/install.sh; here it must run, not skip.
unit:
	bash e2e/openstack/install.sh >/dev/null
	VMLISUB_OPENSTACK_REQUIRE=1 $(CARGO) test --workspace --locked --exclude vmlisub-e2e

build:
	$(CARGO) build --release --locked -p vmlisub

e2e:
	$(CARGO) build -p vmlisub --locked
	bash e2e/openstack/install.sh >/dev/null
	VMLISUB_OPENSTACK_REQUIRE=1 bash e2e/run.sh

QUICKSTART := /tmp/vmlisub-quickstart
SYNC_QUICKSTART = $(CARGO) run --release --quiet -p vmlisub -- sync --once --allow-file-urls \
	-f examples/quickstart/manifests --ca-dir examples/quickstart/ca \
	--cache-dir $(QUICKSTART)/cache --state $(QUICKSTART)/state.json

## The main job on the offline example: verify a signed list, cache two images.
quickstart:
	rm -rf $(QUICKSTART)/site && mkdir -p $(QUICKSTART) && cp -r examples/quickstart/site $(QUICKSTART)/
	$(SYNC_QUICKSTART)

## Publish version 2 of the example list (image 3 leaves it) and sync again.
## (It exits 1 by design: the subscription of the withdrawn image is no longer Ready.)
quickstart-v2:
	cp examples/quickstart/site-v2/image.list $(QUICKSTART)/site/image.list
	-$(SYNC_QUICKSTART)

## Bring a local control plane up and show it (stop it with `e2e/cluster down`).
demo:
	bash e2e/demo.sh

## Regenerate crds/ from the Rust types.
crds:
	$(CARGO) run --quiet -p vmlisub -- crds > crds/vmlisub.yaml
	cp crds/vmlisub.yaml charts/vmlisub/crds/vmlisub.yaml
	cp crds/vmlisub.yaml config/crd/bases/vmlisub.yaml

bench:
	$(CARGO) bench -p vmlisub-core --bench verify

## 500 lists x 20 images plus one list of 5,000 against a throw-away control
## plane: time to all Ready, the operator's peak RSS, API requests per
## reconcile, writes while idle (release build).
bench-scale:
	$(CARGO) build --release -p vmlisub --locked
	@# MALLOC_ARENA_MAX as the image sets it (Dockerfile).
	MALLOC_ARENA_MAX=2 VMLISUB_OPERATOR_BIN=$${CARGO_TARGET_DIR:-$(CURDIR)/target}/release/vmlisub bash e2e/run.sh --ignored --nocapture scale_

## The operator pod's memory on the e2e node (root) while it caches a 1 GiB
## image from the chart: peak RSS and the container cgroup's peak (needs
## ~1.2 GiB free on the disk of TMPDIR and 1 GiB in /dev/shm).
.PHONY: bench-node-memory
bench-node-memory:
	bash e2e/run.sh --ignored --nocapture node_operator_memory

## Download + verify of a 1 GiB image over loopback HTTP: vmlisub sync vs
## curl + sha512sum vs openssl dgst, and peak RSS at 4 GiB (needs ~10 GiB
## free in TMPDIR; see the script's header for its settings).
.PHONY: bench-download
bench-download:
	bash operator/benches/download.sh
