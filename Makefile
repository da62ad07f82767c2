# ecr-preflight — run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN_DIR        := $(CURDIR)/bin
K8S_ASSETS     := $(BIN_DIR)/k8s
GOLANGCI_LINT  := $(BIN_DIR)/golangci-lint
GOLANGCI_VER   := v2.15.0
HELM           := $(BIN_DIR)/helm
HELM_VER       := v3.22.0
HELM_DOCS      := $(BIN_DIR)/helm-docs
HELM_DOCS_VER  := v1.14.2
CHART          := charts/ecr-preflight
FUZZTIME       ?= 10s
BENCHTIME      ?= 1s
FUZZ_PKGS      := ./internal/iampolicy ./internal/imageref ./internal/lifecycle
# Stamped into bin/ecr-preflight and the image (`ecr-preflight --version`);
# a release sets it: make image VERSION=v0.1.0.
VERSION        ?= $(shell git describe --tags --always --match 'v[0-9]*' 2>/dev/null || echo dev)
COMMIT         ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
LDFLAGS         = -X github.com/ecr-preflight/ecr-preflight/internal/cli.version=$(VERSION) -X github.com/ecr-preflight/ecr-preflight/internal/cli.commit=$(COMMIT)
IMAGE          ?= ecr-preflight
IMAGE_TAG      ?= $(subst +,-,$(VERSION))
PLATFORMS      ?= linux/amd64,linux/arm64
IMAGE_BUILDER  ?= auto
IMAGE_OUT      ?= bin/image

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
test: envtest-assets tools ## Run unit, integration (moto) and envtest (kube-apiserver) tests with -race.
	@command -v moto_server >/dev/null || { echo "moto_server not found: integration tests need moto 5.2.1 (pip install 'moto[server]==5.2.1')" >&2; exit 1; }
	go test -race -count=1 ./...

##@ Development

.PHONY: build
build: ## Build bin/ecr-preflight.
	go build -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/ecr-preflight ./cmd/ecr-preflight

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

##@ Container image

# IMAGE_BUILDER=auto takes the first of docker, podman, buildah that can
# build here (`<engine> info` succeeds) and builds the Dockerfile for this
# machine's platform; with none it runs the Go builder (internal/imagebuild:
# no engine, no base image pulled), which writes IMAGE_OUT/oci (OCI layout,
# one index for PLATFORMS) and IMAGE_OUT/$(IMAGE)-<os>-<arch>.tar (docker load).
.PHONY: image
image: ## Build the container image: with docker/podman/buildah if one can build, else without an engine into bin/image/.
	@builder='$(IMAGE_BUILDER)'; reason="IMAGE_BUILDER=$$builder"; \
	if [[ $$builder == auto ]]; then \
		builder=go; reason=''; \
		for engine in docker podman buildah; do \
			if ! command -v $$engine >/dev/null; then reason+="$$engine not installed; "; \
			elif ! $$engine info >/dev/null 2>&1; then reason+="$$engine installed but '$$engine info' fails (no daemon?); "; \
			else builder=$$engine; reason="'$$engine info' succeeds"; break; fi; \
		done; \
		reason=$${reason%; }; \
	fi; \
	case $$builder in \
	docker|podman|buildah) \
		echo "make image: building the Dockerfile with $$builder ($$reason) as $(IMAGE):$(IMAGE_TAG), for this machine's platform"; \
		$$builder build --build-arg VERSION='$(VERSION)' --build-arg COMMIT='$(COMMIT)' \
			--build-arg SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' -t '$(IMAGE):$(IMAGE_TAG)' . ;; \
	go) \
		echo "make image: no container engine ($$reason): building with the Go builder (internal/imagebuild) into $(IMAGE_OUT)/"; \
		go run ./internal/tools/imagebuild -out '$(IMAGE_OUT)' -version '$(VERSION)' -commit '$(COMMIT)' \
			-source-date-epoch '$(SOURCE_DATE_EPOCH)' -platforms '$(PLATFORMS)' -repository '$(IMAGE)' -tag '$(IMAGE_TAG)' ;; \
	*) echo "make image: IMAGE_BUILDER=$$builder: want auto, go, docker, podman or buildah" >&2; exit 2 ;; \
	esac

##@ Helm chart

.PHONY: chart-docs
chart-docs: tools ## Regenerate charts/ecr-preflight/README.md from values.yaml and README.md.gotmpl (a test fails when it is stale).
	$(HELM_DOCS) --chart-search-root charts

.PHONY: chart-lint
chart-lint: tools ## helm lint --strict the chart with each values file in its ci/.
	@for f in $(CHART)/ci/*.yaml; do echo "helm lint --strict -f $$f"; $(HELM) lint --strict $(CHART) -f $$f; done

##@ Tools

.PHONY: tools
tools: ## Install the pinned helm and helm-docs into bin/ (go install; skipped when bin/ has that version).
	@$(call go-install-tool,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VER))
	@$(call go-install-tool,$(HELM_DOCS),github.com/norwoodj/helm-docs/cmd/helm-docs,$(HELM_DOCS_VER))

# go-install-tool BINARY,PACKAGE,VERSION: go install PACKAGE@VERSION into
# bin/ unless BINARY is already that version (its module version, as `go
# version -m` reads it from the binary).
define go-install-tool
[[ "$$(go version -m $(1) 2>/dev/null | awk '$$1 == "mod" { print $$3 }')" == "$(3)" ]] || \
	{ echo "go install $(2)@$(3)"; GOBIN=$(BIN_DIR) go install $(2)@$(3); }
endef

.PHONY: envtest-assets
envtest-assets: ## kube-apiserver and etcd into bin/k8s (once): setup-envtest's release, else built from the Go module proxy (ENVTEST_DOWNLOAD=auto|never|only).
	@e2e/tools/build-assets.sh $(K8S_ASSETS)

$(GOLANGCI_LINT):
	GOBIN=$(BIN_DIR) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VER)

.PHONY: clean
clean: ## Remove build output (keeps the cached API server binaries).
	rm -rf $(BIN_DIR)/ecr-preflight $(BIN_DIR)/image
