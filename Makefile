# Slipway. `make demo` runs it, `make test` tests it; see README.md.
GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILT       ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.built=$(BUILT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Debian packages the end-to-end tests drive as real peers.
E2E_DEBS    := iproute2 isc-dhcp-client udhcpc tftp-hpa atftp curl mosquitto mosquitto-clients file qemu-system-x86 ipxe-qemu busybox-static kea-admin dnsmasq-base nmap ndisc6 ovmf cloud-init python3-paho-mqtt chromium gnupg xorriso isc-dhcp-relay qemu-system-arm qemu-efi-aarch64 grub-common python3-scapy
# Peers for the side-by-side benchmarks.
BENCH_DEBS  := kea-admin kea-dhcp4-server dnsmasq-base isc-dhcp-server wrk nginx-light tftpd-hpa mosquitto python3-sushy tcpdump
BENCH_SECONDS ?= 15
FUZZTIME    ?= 20s
SOAK        ?= 30m
SOAK_CSV    ?= $(CURDIR)/soak.csv

TFTP_ROOT   ?= /var/lib/slipway/tftp
# The appliance image (docs/image.md): host tools, and where it goes. Its
# date is the last commit's, so that one commit always gives one image.
IMAGE_DEBS  := xorriso mtools dosfstools cpio kmod zstd grub-common
IMAGE_DIR   ?= $(CURDIR)/dist/image
IMAGE_ARCHS ?= amd64 arm64
IMAGE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1)

# image is phony above all: the image/ folder shares its name.
.PHONY: all build demo test race e2e e2e-deps debs lint bench bench-dhcp bench-files bench-bus bench-bmc bench-footprint bench-ovmf bench-storm bench-bridge bench-racks fuzz soak size bootfiles image image-deps clean

all: lint test build

## build: static binaries for linux/amd64 and linux/arm64 in dist/
build:
	@mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/slipway-linux-amd64 .
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/slipway-linux-arm64 .

## demo: run the appliance on 127.0.0.1 with a simulated fleet (Ctrl-C stops it)
demo:
	@mkdir -p dist
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o dist/slipway-demo .
	@# Not go run: it answers Ctrl-C with exit status 1 whatever the demo did.
	@trap 'exit 0' INT; ./dist/slipway-demo demo $(DEMO_FLAGS); status=$$?; [ $$status -eq 130 ] && exit 0; exit $$status

## test: unit and integration tests; no root, no network beyond loopback
test:
	$(GO) test -count=1 ./...
	@# The patched MQTT broker copy, with upstream's own tests.
	cd third_party/mochi-mqtt-server && $(GO) test -count=1 ./...
	cd third_party/pin-tftp && $(GO) test -count=1 ./...

## race: the tests again under the race detector (CI runs it)
race:
	$(GO) test -race -count=1 ./...

## e2e: end-to-end tests with real Debian clients in network namespaces (root)
e2e: e2e-deps
	@if [ "$$(id -u)" != 0 ]; then echo "make e2e needs root: it creates network namespaces and veth pairs"; exit 1; fi
	$(GO) test -count=1 -timeout 25m -tags e2e -v ./testbed/e2e/

## e2e-deps: install the Debian packages the e2e tests use, if missing
e2e-deps:
	@$(MAKE) --no-print-directory debs DEBS="$(E2E_DEBS) $(IMAGE_DEBS)"

debs:
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; fi; \
		echo "installing:$$missing"; \
		policy=/usr/sbin/policy-rc.d; own=""; if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod +x $$policy; own=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; rc=$$?; \
		[ -n "$$own" ] && rm -f $$policy; exit $$rc; \
	fi

## image: the bootable USB/ISO appliance images (amd64, arm64) in dist/image; see docs/image.md
image: image-deps
	@$(MAKE) --no-print-directory build BUILT=$$(date -u -d @$(IMAGE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
	@for arch in $(IMAGE_ARCHS); do \
		SOURCE_DATE_EPOCH=$(IMAGE_EPOCH) VERSION=$(VERSION) bash image/build.sh $$arch dist/slipway-linux-$$arch $(IMAGE_DIR) || exit 1; \
	done

## image-deps: install the Debian tools the image is built with, if missing
image-deps:
	@$(MAKE) --no-print-directory debs DEBS="$(IMAGE_DEBS)"

## bootfiles: fetch iPXE, shim and signed GRUB from Debian's packages into TFTP_ROOT
bootfiles:
	bash netboot/bootfiles.sh $(TFTP_ROOT)

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./testbed/e2e/
	$(GO) run $(STATICCHECK) ./...
	bash third_party/check-patched.sh github.com/mochi-mqtt/server/v2 third_party/mochi-mqtt-server
	bash third_party/check-patched.sh github.com/pin/tftp/v3 third_party/pin-tftp

## bench: Go benchmarks, then (as root) DHCP against Kea and dnsmasq; see BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory bench-dhcp bench-files bench-bus bench-bmc; else echo "bench-dhcp, bench-files, bench-bus and bench-bmc skipped: they need root (network namespaces, Debian peers)"; fi

## bench-dhcp: perfdhcp against Slipway, Kea, dnsmasq and ISC dhcpd on one namespace LAN (root)
bench-dhcp: e2e-deps
	@$(MAKE) --no-print-directory debs DEBS="$(BENCH_DEBS)"
	SLIPWAY_BENCH=1 SLIPWAY_BENCH_SECONDS=$(BENCH_SECONDS) $(GO) test -count=1 -tags e2e -run TestBenchDHCPAgainstPeers -v -timeout 30m ./testbed/e2e/

## bench-files: HTTP against nginx (wrk) and TFTP against tftpd-hpa (curl) on one namespace LAN (root)
bench-files: e2e-deps
	@$(MAKE) --no-print-directory debs DEBS="$(BENCH_DEBS)"
	SLIPWAY_BENCH=1 SLIPWAY_BENCH_SECONDS=$(BENCH_SECONDS) $(GO) test -count=1 -tags e2e -run TestBenchFilesAgainstPeers -v -timeout 30m ./testbed/e2e/

## bench-bus: heartbeats/s, and MQTT fan-out to 1,000 subscribers against mosquitto, on loopback (root)
bench-bus: e2e-deps
	@$(MAKE) --no-print-directory debs DEBS="$(BENCH_DEBS)"
	SLIPWAY_BENCH=1 SLIPWAY_BENCH_SECONDS=$(BENCH_SECONDS) $(GO) test -count=1 -tags e2e -run TestBenchBusAgainstMosquitto -v -timeout 30m ./testbed/e2e/

## bench-bridge: a backlog drained to an upstream mosquitto after an outage, Slipway's bridge against mosquitto's (root not needed)
bench-bridge: e2e-deps
	@$(MAKE) --no-print-directory debs DEBS="$(BENCH_DEBS)"
	SLIPWAY_BENCH=1 $(GO) test -count=1 -tags e2e -run TestBenchBridgeDrainAgainstMosquitto -v -timeout 30m ./testbed/e2e/

## bench-bmc: Redfish sweep of 2,000 emulated BMCs (50 ms each), Slipway's poller against sushy
bench-bmc:
	@$(MAKE) --no-print-directory debs DEBS="$(BENCH_DEBS)"
	SLIPWAY_BENCH=1 $(GO) test -count=1 -tags e2e -run TestBenchBMCSweepAgainstSushy -v -timeout 30m ./testbed/e2e/

## bench-footprint: start → ready and idle memory, with an empty store and with 10,000 machines (root)
bench-footprint: e2e-deps
	SLIPWAY_BENCH=1 $(GO) test -count=1 -tags e2e -run TestBenchFootprint -v -timeout 30m ./testbed/e2e/

## bench-ovmf: UEFI firmware (OVMF in QEMU) fetching ipxe.efi over TFTP from Slipway and from tftpd-hpa (root)
bench-ovmf: e2e-deps
	@$(MAKE) --no-print-directory debs DEBS="$(BENCH_DEBS)"
	SLIPWAY_BENCH=1 $(GO) test -count=1 -tags e2e -run TestBenchOVMFFetchesItsLoader -v -timeout 30m ./testbed/e2e/

## bench-storm: 10,000 machines powered on at once through every door (root; report in artifacts/storm)
##   STORM_MACHINES, STORM_LOADER/STORM_KERNEL/STORM_INITRD (bytes), STORM_ARGS (storm flags: -ramp, -loss, -slow, ...),
##   STORM_OUTAGE_AT/STORM_OUTAGE_FOR (seconds: bridge to an upstream mosquitto that stops mid-storm, then returns),
##   STORM_MEMORY_LIMIT (the server's memory_limit, e.g. 512MiB: a small box)
STORM_MACHINES ?= 10000
STORM_LOADER   ?= 1048576
STORM_KERNEL   ?= 8388608
STORM_INITRD   ?= 4194304
bench-storm: e2e-deps
	SLIPWAY_BENCH=1 SLIPWAY_STORM_MACHINES=$(STORM_MACHINES) SLIPWAY_STORM_LOADER=$(STORM_LOADER) SLIPWAY_STORM_KERNEL=$(STORM_KERNEL) \
		SLIPWAY_STORM_INITRD=$(STORM_INITRD) SLIPWAY_STORM_ARGS="$(STORM_ARGS)" \
		SLIPWAY_STORM_OUTAGE_AT=$(STORM_OUTAGE_AT) SLIPWAY_STORM_OUTAGE_FOR=$(STORM_OUTAGE_FOR) SLIPWAY_STORM_MEMORY_LIMIT=$(STORM_MEMORY_LIMIT) \
		$(GO) test -count=1 -tags e2e -run TestBenchStorm -v -timeout 30m ./testbed/e2e/

## bench-racks: the console's racks view in Chromium with 10,000 machines in 250 racks (root not needed; report in the test log)
bench-racks: e2e-deps
	SLIPWAY_BENCH=1 $(GO) test -count=1 -tags e2e -run TestBenchRacks -v -timeout 20m ./testbed/e2e/

## size: the product binary's size, and what each module costs in it (see BENCHMARKS.md)
size:
	@mkdir -p dist
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/slipway-size .
	@CGO_ENABLED=0 $(GO) build -trimpath -o dist/slipway-symbols .
	@echo "product binary (-s -w, as make build): $$(stat -c %s dist/slipway-size) bytes"
	@bash testbed/binsize.sh dist/slipway-symbols

## soak: SOAK (30m) of churn on the demo, sampling memory, files and goroutines (SOAK_CSV)
soak:
	@$(MAKE) --no-print-directory debs DEBS="mosquitto-clients"
	SLIPWAY_SOAK=$(SOAK) SLIPWAY_SOAK_CSV=$(SOAK_CSV) $(GO) test -count=1 -tags e2e -run '^TestSoak$$' -v -timeout 0 ./testbed/e2e/

## fuzz: run every fuzz target of Slipway's packages (found by name, so none is left out) for FUZZTIME each
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./third_party/' | xargs -n1 dirname | sort -u | while read -r pkg; do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | sed 's/^func //'); do \
			echo "== fuzz $$pkg $$target ($(FUZZTIME))"; \
			fuzz="$(GO) test -run ^$$ -fuzz ^$$target$$ -fuzztime $(FUZZTIME) $$pkg"; \
			out=$$($$fuzz 2>&1); status=$$?; echo "$$out"; \
			[ $$status -eq 0 ] && continue; \
			echo "$$out" | grep -q 'Failing input written' && exit 1; \
			echo "$$out" | grep -q 'context deadline exceeded' || exit 1; \
			echo "== Go's fuzz coordinator failed at its own deadline with nothing found (go.dev/issue/75804, fixed in Go 1.27): once more"; \
			$$fuzz || exit 1; \
		done; \
	done

clean:
	rm -rf dist
