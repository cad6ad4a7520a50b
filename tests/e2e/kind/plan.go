package kind

import (
	"github.com/weftmesh/weft/install"
	"github.com/weftmesh/weft/tests/cluster/local"
)

// Options say how to run Weft's e2e suite on a kind cluster
// (tests/e2e/kind/cmd/kind-e2e's flags). Paths should be absolute: the
// suite runs with its package directory as working directory.
type Options struct {
	Name       string // cluster name (kind --name); nodes are <Name>-control-plane, <Name>-worker, …
	Kind       string // the kind binary (looked up on PATH when not a path)
	Go         string // the go binary that runs the suite
	ImagesDir  string // image tarballs written by `make images`
	Kubeconfig string // where kind writes the cluster's kubeconfig
	ValuesFile string // where the install values are written, for the suite's -install-values
	Keep       bool   // leave the cluster running afterwards
}

// Step is one step of a run: a command (Argv, with Stdin), or the
// in-process install of Weft (Install). Cleanup steps run even after an
// earlier step failed, but only when the step named Undoes succeeded (no
// deleting a cluster this run did not create: kind create refuses an
// existing one, and removes what it made when it fails).
type Step struct {
	Name    string
	Argv    []string
	Stdin   []byte
	Install *InstallSpec
	Cleanup bool
	Undoes  string
}

// InstallSpec is what the install step installs, and where.
type InstallSpec struct {
	Kubeconfig string
	ValuesFile string // the values are written here first
	Values     install.Values
}

// Suite flags and timeouts: the same two runs as `make e2e`.
const (
	suitePkg       = "./tests/e2e/"
	suiteTimeout   = "30m"
	lifecycleRun   = "^TestMeshctlUninstallReinstall$"
	lifecycleLimit = "10m"
)

// Values are the install values for a kind cluster named name: kind's
// standard CNI paths on each node, the API server reached at the
// control-plane node's container name (Docker's DNS resolves it on the kind
// network, and node agents start before any Service VIP works), images
// loaded by `kind load` (IfNotPresent), and every component but DNS: kind
// brings CoreDNS. The telemetry collector is on, as in the local cluster:
// the suite reads traces from it.
func Values(name string) install.Values {
	v := install.Defaults()
	v.Components = install.Components{CNI: true, Proxy: true, Mesh: true}
	v.Telemetry.Collector.Enabled = true
	v.CNI.BinDir, v.CNI.ConfDir, v.CNI.PerNodeDirs = "/opt/cni/bin", "/etc/cni/net.d", false
	v.APIServerHost, v.APIServerPort = name+"-control-plane", "6443"
	v.PullPolicy = "IfNotPresent"
	return v
}

// Plan is the run as data: create the cluster from the embedded config,
// load every image archive into every node, install Weft with the chart,
// run the e2e suite and then the uninstall/reinstall test (as `make e2e`
// does), and delete the cluster unless o.Keep.
func Plan(o Options, archives []string) []Step {
	create := "create kind cluster " + o.Name
	steps := []Step{{
		Name:  create,
		Argv:  []string{o.Kind, "create", "cluster", "--config", "-", "--name", o.Name, "--kubeconfig", o.Kubeconfig},
		Stdin: Config,
	}}
	for _, a := range archives {
		steps = append(steps, Step{
			Name: "load " + a,
			Argv: []string{o.Kind, "load", "image-archive", a, "--name", o.Name},
		})
	}
	steps = append(steps,
		Step{Name: "install Weft (chart, kind values)", Install: &InstallSpec{
			Kubeconfig: o.Kubeconfig, ValuesFile: o.ValuesFile, Values: Values(o.Name)}},
		Step{Name: "e2e suite", Argv: []string{o.Go, "test", "-count=1", "-tags", "e2e", "-timeout", suiteTimeout, "-v", suitePkg,
			"-args", "-kubeconfig", o.Kubeconfig, "-install-values", o.ValuesFile}},
		Step{Name: "meshctl uninstall/reinstall", Argv: []string{o.Go, "test", "-count=1", "-tags", "e2e", "-timeout", lifecycleLimit, "-v",
			"-run", lifecycleRun, suitePkg,
			"-args", "-kubeconfig", o.Kubeconfig, "-meshctl-lifecycle", "-meshctl-values", o.ValuesFile}},
	)
	if !o.Keep {
		steps = append(steps, Step{
			Name:    "delete kind cluster " + o.Name,
			Argv:    []string{o.Kind, "delete", "cluster", "--name", o.Name, "--kubeconfig", o.Kubeconfig},
			Cleanup: true,
			Undoes:  create,
		})
	}
	return steps
}

// Steps plans a run over the image archives in o.ImagesDir, listed by
// local.ImageArchives: the very list the local cluster imports.
func Steps(o Options) ([]Step, error) {
	archives, err := local.ImageArchives(o.ImagesDir)
	if err != nil {
		return nil, err
	}
	return Plan(o, archives), nil
}
