# ecr-preflight — run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN_DIR        := $(CURDIR)/bin
K8S_ASSETS     := $(BIN_DIR)/k8s
GOLANGCI_LINT  := $(BIN_DIR)/golangci-lint
GOLANGCI_VER   := v2.15.0
FUZZTIME       ?= 10s
BENCHTIME      ?= 1s
FUZZ_PKGS      := ./internal/iampolicy ./internal/imageref

export KUBEBUILDER_ASSETS := $(K8S_ASSETS)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Main jobs

.PHONY: demo
demo: build envtest-assets ## Play the seed scenario: local API server + moto + the webhook.
	@command -v moto_server >/dev/null || { echo "moto_server not found: the demo needs moto 5.2.1 (pip install 'moto[server]==5.2.1')" >&2; exit 1; }
	@go run ./e2e/demo -binary $(BIN_DIR)/ecr-preflight

.PHONY: test
test: envtest-assets ## Run unit, integration (moto) and envtest (kube-apiserver) tests with -race.
	@command -v moto_server >/dev/null || { echo "moto_server not found: integration tests need moto 5.2.1 (pip install 'moto[server]==5.2.1')" >&2; exit 1; }
	go test -race -count=1 ./...

##@ Development

.PHONY: build
build: ## Build bin/ecr-preflight.
	go build -o $(BIN_DIR)/ecr-preflight ./cmd/ecr-preflight

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: bench
bench: ## Run the benchmarks (speed and allocation targets live here).
	go test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target (policy parser/evaluator, image references) for FUZZTIME each (default 10s).
	@for pkg in $(FUZZ_PKGS); do \
		for target in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzzing $$pkg $$target for $(FUZZTIME)"; \
			go test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

##@ Tools

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver and etcd from the Go module proxy into bin/k8s (once).
	@e2e/tools/build-assets.sh $(K8S_ASSETS)

$(GOLANGCI_LINT):
	GOBIN=$(BIN_DIR) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VER)

.PHONY: clean
clean: ## Remove build output (keeps the cached API server binaries).
	rm -f $(BIN_DIR)/ecr-preflight
