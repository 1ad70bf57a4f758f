# podsphere — see README.md. `make demo` and `make test` are the whole set-up.
GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: all build test test-short bench demo clean fmt vet image

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/podsphere ./cmd/psc
	# The HA fence runs inside every protected VM's container: static, any image.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(BIN)/ ./cmd/podsphere-fence

# The busybox OCI image the tests and the demo import into the content library.
image:
	@mkdir -p $(BIN)
	$(GO) run ./cmd/mkimage -o $(BIN)/busybox.tar -name docker.io/library/busybox:latest

vet:
	$(GO) vet $(PKGS)

# The whole suite. As root it includes the end-to-end tests that need
# containers and network namespaces; without root those skip and say why.
test: build vet
	@if [ "$$(id -u)" != "0" ]; then \
	  echo "note: not root: the end-to-end tests that need containerd and network namespaces will be SKIPPED (run 'sudo make test' to include them)"; \
	fi
	$(GO) test -count=1 -timeout 40m $(PKGS)

# Fast unit tests only.
test-short:
	$(GO) test -short -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchtime=2s $(PKGS)

# A three-host lab on this machine with real containers (root; installs the
# Debian packages it needs); without root, the simulated demo. The lab stays
# up afterwards: `bin/podsphere lab down` removes it.
demo:
	./scripts/demo.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
