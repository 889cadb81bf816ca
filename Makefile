# usher — `make help` lists the targets.

GO        ?= go
BIN       := bin/usher
RULES     ?= envoy/examples/rules.yaml
DATA_DIR  ?= ./usher-data
COUNT     ?= 1
FUZZTIME  ?= 30s
SOAK      ?= 2m
GOLANGCI_VERSION := v2.15.0
GOLANGCI  := bin/golangci-lint
# Modules of their own, so that Helm, the Kubernetes libraries and
# go-containerregistry stay out of the usher binary's dependencies.
MODULES   := charts/usher/test tools/image
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
GOARCH    ?= $(shell $(GO) env GOARCH)
IMAGE     ?= dist/usher-image.tar

.DEFAULT_GOAL := help
.PHONY: help run run-login idp build test test-modules chart image tracked-check fmt-check vet lint tidy-check bench bench-ci bench-e2e soak fuzz clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build ## build and run `usher serve` on the embedded store in ./usher-data with the sample rules
	$(BIN) serve --data-dir $(DATA_DIR) --rules $(RULES)

# The browser login of the README's tour: the local OpenID provider (make
# idp) on 127.0.0.1:9999, the login app on 127.0.0.1:8081.
IDP_PORT  ?= 9999
LOGIN_URL ?= http://127.0.0.1:8081

run-login: build ## `make run` with the login app on 127.0.0.1:8081 against `make idp` (tenant acme, users alice/bob/mallory/carol, password secret)
	USHER_AUTH_ENABLED=true USHER_LOGIN_URL=$(LOGIN_URL) USHER_LOGIN_ADDR=$(patsubst http://%,%,$(LOGIN_URL)) \
	USHER_ROOT_DOMAIN=127.0.0.1 USHER_ALLOWED_DOMAINS=acme.test USHER_AUTH_TENANT=acme \
	USHER_SESSION_KEY=$${USHER_SESSION_KEY:-$$(head -c 32 /dev/urandom | base64)} \
	USHER_AUTH_PROVIDER_TYPE=oidc USHER_AUTH_ISSUER_URL=http://127.0.0.1:$(IDP_PORT) \
	USHER_AUTH_CLIENT_ID=usher-login USHER_AUTH_CLIENT_SECRET=usher-login-secret \
	$(BIN) serve --data-dir $(DATA_DIR) --rules $(RULES)

idp: testdata/idp/node_modules ## run the tests' real OpenID provider on 127.0.0.1:9999 for `make run-login` (users alice, bob, mallory, carol; password secret)
	cd testdata/idp && PORT=$(IDP_PORT) \
	REDIRECT_URIS=$(LOGIN_URL)/auth/oidc/callback POST_LOGOUT_REDIRECT_URIS=$(LOGIN_URL)/signed-out \
	node server.mjs

build: ## build bin/usher
	$(GO) build -o $(BIN) ./cmd/usher

test: tracked-check fmt-check vet lint tidy-check testdata/idp/node_modules ## gofmt, go vet, golangci-lint, go mod tidy, then every test with -race and every benchmark once
	$(GO) test -race -timeout 25m ./...
	$(MAKE) test-modules
	$(MAKE) bench-ci

test-modules: ## the tests of the chart module (charts/usher/test) and the image tool (tools/image)
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -count=1 -timeout 10m ./...); done

chart: ## helm lint (Helm's Go SDK) and the chart's tests: every value set rendered, decoded strictly, schema, probes, secrets
	cd charts/usher/test && $(GO) test -count=1 -timeout 10m ./...

image: ## build the container image into dist/usher-image.tar (OCI layout and docker save in one; no Docker daemon)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o dist/usher-linux-$(GOARCH) ./cmd/usher
	cd tools/image && $(GO) run . -binary $(CURDIR)/dist/usher-linux-$(GOARCH) -out $(abspath $(IMAGE)) \
	  -version $(VERSION) -revision "$(REVISION)" -arch $(GOARCH)

# The real OpenID provider the IdP tests run (oidc-provider, pinned by the
# lockfile).
testdata/idp/node_modules: testdata/idp/package.json testdata/idp/package-lock.json
	cd testdata/idp && npm ci --no-audit --no-fund
	@touch $@

tracked-check: ## fail if git tracks a compiled binary or a file over 1 MiB (allow list: .ci/large-files.allow)
	@.ci/check-tracked

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

lint: $(GOLANGCI) ## golangci-lint with .golangci.yml
	$(GOLANGCI) run ./...
	@set -e; for m in $(MODULES); do (cd $$m && $(CURDIR)/$(GOLANGCI) run ./...); done

$(GOLANGCI):
	GOBIN=$(CURDIR)/bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

tidy-check: ## fail if go.mod or go.sum (of every module) are not tidy
	$(GO) mod tidy -diff
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff); done

bench: ## run every benchmark COUNT times (COUNT=10 for benchstat)
	$(GO) test -run '^$$' -bench . -benchmem -count $(COUNT) ./...

bench-ci: ## run every benchmark once, to prove they run
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

bench-e2e: build ## usher serve out of process against a no-op ext_authz server, alternating, same load (about 70s): throughput ratio, p50/p99
	BIN=$(BIN) .ci/bench-e2e

soak: ## steady mixed load on the authorizer for SOAK (2m): goroutines, heap, RSS and open files must not grow (make test runs 3s of it)
	$(GO) test ./authz -run '^TestSoak$$' -count 1 -v -timeout 0 -soak $(SOAK)

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME); \
	  done; \
	done

clean: ## remove build output (not the data in ./usher-data)
	rm -rf bin dist
