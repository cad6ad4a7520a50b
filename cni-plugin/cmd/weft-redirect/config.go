package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// defaultAPITimeout bounds the whole pod lookup: the runtime holds the
// sandbox (and a kubelet worker) while ADD runs.
const defaultAPITimeout = 5 * time.Second

// NetConf is weft-redirect's plugin configuration object (CNI SPEC, section
// 1 "Plugin configuration objects"), as weft-cni-node writes it into the
// conflist after weft-bridge's.
type NetConf struct {
	types.PluginConf
	// Kubeconfig is the host path of the kubeconfig weft-cni-node keeps
	// next to the conflist (its own ServiceAccount token).
	Kubeconfig string `json:"kubeconfig"`
	// APITimeout bounds the pod lookup, a Go duration; default "5s".
	APITimeout string `json:"apiTimeout,omitempty"`
	// DataDir, if set, is where the outcome of each command is spooled
	// for weft-cni-node's metrics (package opstats); use weft-bridge's
	// dataDir, which weft-cni-node drains.
	DataDir string `json:"dataDir,omitempty"`
}

// config is a validated NetConf.
type config struct {
	NetConf
	timeout time.Duration
}

func invalid(format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "invalid weft-redirect config: "+fmt.Sprintf(format, args...), "")
}

// parseConfig decodes and validates the configuration on stdin; prevResult
// stays raw until the command that needs it parses it.
func parseConfig(data []byte) (*config, error) {
	c := &config{timeout: defaultAPITimeout}
	if err := json.Unmarshal(data, &c.NetConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode weft-redirect config", err.Error())
	}
	if c.Kubeconfig == "" {
		return nil, invalid(`"kubeconfig" is required`)
	}
	if !filepath.IsAbs(c.Kubeconfig) {
		return nil, invalid("kubeconfig %q is not an absolute path", c.Kubeconfig)
	}
	if c.APITimeout != "" {
		d, err := time.ParseDuration(c.APITimeout)
		if err != nil || d <= 0 {
			return nil, invalid("apiTimeout %q is not a positive duration", c.APITimeout)
		}
		c.timeout = d
	}
	return c, nil
}

// k8sArgs are the CNI_ARGS keys Kubernetes runtimes set (containerd, CRI-O).
type k8sArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAME      types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_UID       types.UnmarshallableString //nolint:revive // CNI_ARGS key
}

// podRef names the pod of a sandbox.
type podRef struct{ Namespace, Name, UID string }

// String is namespace/name, as kubectl prints it.
func (p podRef) String() string { return p.Namespace + "/" + p.Name }

// parseArgs reads the pod's identity from CNI_ARGS, ignoring other keys;
// ok is false when the caller is not a Kubernetes runtime.
func parseArgs(args string) (ref podRef, ok bool, err error) {
	var k k8sArgs
	k.IgnoreUnknown = true
	if err := types.LoadArgs(args, &k); err != nil {
		return podRef{}, false, types.NewError(types.ErrInvalidEnvironmentVariables, "parse CNI_ARGS", err.Error())
	}
	ref = podRef{Namespace: string(k.K8S_POD_NAMESPACE), Name: string(k.K8S_POD_NAME), UID: string(k.K8S_POD_UID)}
	return ref, ref.Namespace != "" && ref.Name != "", nil
}
