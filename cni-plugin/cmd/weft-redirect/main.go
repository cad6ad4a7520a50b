// Command weft-redirect is Weft's chained CNI plugin for meshed pods. It
// runs after weft-bridge in the conflist (CNI SPEC, section 3 "Adding an
// attachment": each plugin gets the previous one's result as prevResult)
// and, for pods the injector gave a sidecar (annotation
// sidecar.weft.dev/status), programs iptables REDIRECT rules in the pod's
// network namespace so its TCP traffic goes through Envoy: inbound to
// 15006, outbound to 15001, the sidecar's UID/GID 1337 exempt (package
// redirect). Other pods are left alone. It always passes prevResult through
// unchanged. Spec 1.0.0 and 1.1.0: ADD, DEL, CHECK, VERSION, STATUS, GC
// (https://github.com/containernetworking/cni/blob/main/SPEC.md).
//
// The runtime passes only the pod's name (CNI_ARGS K8S_POD_NAMESPACE and
// K8S_POD_NAME), so ADD reads the pod from the API server with the
// kubeconfig weft-cni-node writes next to the conflist. It fails closed: an
// unreachable API server, a missing pod or an unreadable status fail ADD
// (the runtime retries the sandbox) rather than start a meshed pod whose
// traffic would silently bypass its sidecar.
package main

import (
	"encoding/json"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/weftmesh/weft/cni-plugin/opstats"
)

func main() {
	// client-go logs through klog; a plugin prints nothing but its result.
	klog.SetLogger(logr.Discard())
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    opstats.Wrap("weft-redirect", "ADD", opsDir, cmdAdd),
		Del:    opstats.Wrap("weft-redirect", "DEL", opsDir, cmdDel),
		Check:  opstats.Wrap("weft-redirect", "CHECK", opsDir, cmdCheck),
		Status: cmdStatus,
		GC:     cmdGC,
	}, version.PluginSupports("1.0.0", "1.1.0"), "weft-redirect: Weft sidecar traffic capture (iptables REDIRECT)")
}

// opsDir is NetConf.DataDir, where command outcomes are spooled for
// weft-cni-node's metrics; unset, nothing is recorded.
func opsDir(stdin []byte) string {
	var c NetConf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return ""
	}
	return c.DataDir
}
