# The two commands that matter:  make run   |   make test
# Everything else is a step they use, or a narrower target for one service.

SHELL := /bin/bash
.DEFAULT_GOAL := help
SERVICES := intake scheduling monitoring notifications records console
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PYTEST_ARGS ?=
# kustomize and kubeconform (tests/deploy), pinned; `go install`ed into $(go env GOPATH)/bin.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOBIN ?= $(shell $(GO) env GOPATH 2>/dev/null || echo $(HOME)/go)/bin
KUSTOMIZE := sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
KUBECONFORM := github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-22s %s\n", $$1, $$2}'

.PHONY: uv
uv: ## Install uv (from PyPI) when it is missing
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --break-system-packages uv

# Bytecode compiled once, as the images do (UV_COMPILE_BYTECODE): where PYTHONDONTWRITEBYTECODE
# is set, every service start would otherwise compile its dependencies again (imports 8 s -> 3.4 s).
.PHONY: deps
deps: uv ## Install the locked Python dependencies of every workspace member
	$(UV) sync --all-packages --frozen --compile-bytecode

.PHONY: kafka-jars
kafka-jars: deps ## Fetch the Apache Kafka broker jars from Maven Central (once)
	$(UV) run python -m kap_local.kafka fetch

.PHONY: k8s-tools
k8s-tools: ## Install kustomize and kubeconform with `go install` (pinned; skipped when present)
	@test -x $(GOBIN)/kustomize || GOBIN=$(GOBIN) $(GO) install $(KUSTOMIZE)
	@test -x $(GOBIN)/kubeconform || GOBIN=$(GOBIN) $(GO) install $(KUBECONFORM)

.PHONY: run
run: deps kafka-jars ## Run Kafka, the four services and a demo clinic network (Ctrl-C stops)
	$(UV) run python -m kap_local.run

.PHONY: kafka
kafka: deps kafka-jars ## Only Kafka, on 127.0.0.1:9092 (foreground)
	$(UV) run python -m kap_local.kafka start --port 9092 --work-dir var/kafka

.PHONY: lint
lint: deps ## ruff (lint and format check), strict mypy and the import layering (import-linter)
	$(UV) run lint-imports
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy shared/src deploy/local/src $(foreach s,$(SERVICES),services/$(s)/src)
	$(UV) run mypy shared/tests deploy/local/tests tests $(foreach s,$(SERVICES),services/$(s)/tests)
	$(UV) run mypy bench

.PHONY: test
test: lint kafka-jars k8s-tools ## The whole suite: lint, unit tests, real-Kafka integration and end-to-end tests
	$(UV) run pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: deps ## Unit tests only (no broker)
	$(UV) run pytest shared/tests $(foreach s,$(SERVICES),services/$(s)/tests) $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: deps kafka-jars ## End-to-end tests (real Kafka, services as processes)
	$(UV) run pytest tests $(PYTEST_ARGS)

.PHONY: test-deploy
test-deploy: deps k8s-tools ## Offline deployment and contract checks (Dockerfiles, compose, k8s, contracts, AsyncAPI)
	$(UV) run pytest tests/deploy tests/contract shared/tests/test_contracts.py $(PYTEST_ARGS)

.PHONY: contracts-check
contracts-check: deps ## Compare each topic's schema with its released one (fails on breaking changes)
	$(UV) run python -m kap_shared.contracts check

.PHONY: contracts-release
contracts-release: deps ## Release compatible schema changes to contracts/ and refresh contracts/examples/
	$(UV) run python -m kap_shared.contracts release
	$(UV) run python -m kap_shared.contracts examples

.PHONY: asyncapi
asyncapi: deps ## Regenerate docs/asyncapi/<service>.json and docs/contract.md from the code
	$(UV) run python -m kap_shared.contracts asyncapi
	$(UV) run python -m kap_shared.contracts doc

.PHONY: manifests
manifests: k8s-tools ## Render Kubernetes manifests with kustomize (OVERLAY=deploy/k8s/overlays/production)
	@$(GOBIN)/kustomize build $(or $(OVERLAY),deploy/k8s/overlays/production)

test-%: deps ## One service's own tests, in its own dependency set (e.g. make test-intake)
	$(UV) run --package kap-$* --group dev pytest services/$*/tests $(PYTEST_ARGS)

.PHONY: clean
clean: ## Remove local state (databases, Kafka data, logs)
	rm -rf var
