package check

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Status is a check's outcome.
type Status string

// Outcomes. Only StatusFail makes meshctl check exit non-zero.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warning"
	StatusFail Status = "failed"
	StatusSkip Status = "skipped"
)

// Result is one check.
type Result struct {
	Category string `json:"category"`
	Check    string `json:"check"`
	Status   Status `json:"status"`
	Detail   string `json:"detail,omitempty"`
	// Fix is a one-line hint, set when the status is not ok.
	Fix string `json:"fix,omitempty"`
}

// MinMinor is the oldest Kubernetes 1.x Weft supports: native sidecars
// (init containers with restartPolicy Always) are on by default since 1.29.
const MinMinor = 29

// Evaluate runs every check of the mode (pre- or post-install) on f.
func Evaluate(f Facts) []Result {
	var out []Result
	out = append(out, kubernetesChecks(f)...)
	if f.Pre {
		return append(out, preChecks(f)...)
	}
	out = append(out, controlPlaneChecks(f)...)
	out = append(out, webhookChecks(f)...)
	out = append(out, certificateChecks(f)...)
	out = append(out, dataPlaneChecks(f)...)
	return out
}

func res(cat, check string, st Status, detail, fix string) Result {
	if st == StatusOK {
		fix = ""
	}
	return Result{Category: cat, Check: check, Status: st, Detail: detail, Fix: fix}
}

func kubernetesChecks(f Facts) []Result {
	const cat = "Kubernetes"
	var out []Result
	switch s := f.Server; {
	case s.Err != "":
		out = append(out, res(cat, "API server version", StatusFail, s.Err, "check --kubeconfig and --context"))
	case s.Major > 1 || s.Major == 1 && s.Minor >= MinMinor:
		out = append(out, res(cat, fmt.Sprintf("Kubernetes %s (≥ 1.%d for native sidecars)", s.GitVersion, MinMinor), StatusOK, "", ""))
	default:
		out = append(out, res(cat, fmt.Sprintf("Kubernetes %s (≥ 1.%d for native sidecars)", s.GitVersion, MinMinor), StatusFail,
			"native sidecar containers are not enabled by default before 1.29", fmt.Sprintf("upgrade the cluster to Kubernetes 1.%d or later", MinMinor)))
	}
	n := f.Nodes
	if n.Err != "" {
		return append(out, res(cat, "nodes Ready", StatusFail, n.Err, "give meshctl permission to list nodes"))
	}
	var notReady, noCIDR []string
	for _, node := range n.Items {
		if !node.Ready {
			notReady = append(notReady, node.Name)
		}
		if node.PodCIDR == "" {
			noCIDR = append(noCIDR, node.Name)
		}
	}
	ready := len(n.Items) - len(notReady)
	switch {
	case len(n.Items) == 0:
		out = append(out, res(cat, "nodes Ready", StatusFail, "the cluster has no nodes", "join nodes to the cluster"))
	case len(notReady) > 0 && !(f.Pre && f.Components.CNI):
		out = append(out, res(cat, fmt.Sprintf("%d/%d nodes Ready", ready, len(n.Items)), StatusWarn,
			"not ready: "+strings.Join(notReady, ", "), "kubectl describe node <name> shows why"))
	default:
		out = append(out, res(cat, fmt.Sprintf("%d/%d nodes Ready", ready, len(n.Items)), StatusOK, "", ""))
	}
	if f.Pre && f.Components.CNI {
		st, detail := StatusOK, ""
		if len(noCIDR) > 0 {
			st, detail = StatusFail, "no spec.podCIDR: "+strings.Join(noCIDR, ", ")
		}
		out = append(out, res(cat, "every node has a pod CIDR (weft-bridge allocates from it)", st, detail,
			"run kube-controller-manager with --allocate-node-cidrs --cluster-cidr=<pod CIDR>"))
	}
	return out
}

func preChecks(f Facts) []Result {
	const cat = "Pre-install"
	var out []Result
	for _, comp := range []struct {
		on         bool
		name, what string
	}{{f.Components.CNI, "cni", "no other CNI plugin runs (weft-cni-node installs the pod network)"},
		{f.Components.Proxy, "proxy", "no kube-proxy runs (weft-proxy replaces it)"},
		{f.Components.Mesh, "mesh", "no other service mesh injects sidecars"}} {
		if !comp.on {
			continue
		}
		var found []string
		for _, c := range f.Conflicts {
			if c.Component == comp.name {
				found = append(found, c.What)
			}
		}
		if len(found) == 0 {
			out = append(out, res(cat, comp.what, StatusOK, "", ""))
			continue
		}
		fix := map[string]string{
			"cni":   "remove the other CNI first, or install with --components proxy,mesh (or mesh) to keep it",
			"proxy": "remove kube-proxy and its iptables rules (kube-proxy --cleanup) first, or install without the proxy component",
			"mesh":  "remove the other mesh's injector, or exclude namespaces it injects",
		}[comp.name]
		st := StatusFail
		if comp.name == "mesh" {
			st = StatusWarn
		}
		out = append(out, res(cat, comp.what, st, "found "+strings.Join(found, ", "), fix))
	}
	var denied, errs []string
	for _, a := range f.Access {
		what := a.Verb + " " + a.Resource
		if a.Group != "" {
			what += "." + a.Group
		}
		if a.Namespace != "" {
			what += " in " + a.Namespace
		}
		switch {
		case a.Err != "":
			errs = append(errs, what+": "+a.Err)
		case !a.Allowed:
			denied = append(denied, what)
		}
	}
	switch {
	case len(errs) > 0:
		out = append(out, res(cat, "permissions to install", StatusFail, strings.Join(errs, "; "), "check the API server's authorization webhook"))
	case len(denied) > 0:
		out = append(out, res(cat, "permissions to install", StatusFail, "cannot "+strings.Join(denied, ", "), "install as a cluster admin (cluster-admin ClusterRole)"))
	default:
		out = append(out, res(cat, fmt.Sprintf("permissions to install (%d checked)", len(f.Access)), StatusOK, "", ""))
	}
	if f.Installed {
		out = append(out, res(cat, "Weft is not installed yet", StatusWarn, "the control plane already runs in weft-system",
			"use meshctl upgrade to change it, or meshctl check for its health"))
	} else {
		out = append(out, res(cat, "Weft is not installed yet", StatusOK, "", ""))
	}
	return out
}

var componentOrder = map[string]int{"mesh": 0, "cni": 1, "proxy": 2, "dns": 3}

func controlPlaneChecks(f Facts) []Result {
	const cat = "Components"
	var out []Result
	ws := slices.Clone(f.Workloads)
	sort.SliceStable(ws, func(i, j int) bool { return componentOrder[ws[i].Component] < componentOrder[ws[j].Component] })
	for _, w := range ws {
		name := fmt.Sprintf("%s %s", w.Kind, w.Name)
		switch {
		case w.Err != "":
			out = append(out, res(cat, name, StatusFail, w.Err, "check your permissions on weft-system"))
		case !w.Found && w.Component == "mesh":
			out = append(out, res(cat, name, StatusFail, "not installed", "meshctl install"))
		case !w.Found:
			out = append(out, res(cat, name, StatusSkip, "not installed (the cluster brings its own)", ""))
		case !w.Ready:
			detail := w.Status
			if len(w.Problems) > 0 {
				detail += ": " + strings.Join(w.Problems, "; ")
			}
			out = append(out, res(cat, name, StatusFail, detail,
				fmt.Sprintf("kubectl -n weft-system describe pods -l app.kubernetes.io/name=%s; kubectl -n weft-system logs %s/%s", w.Name, strings.ToLower(w.Kind), w.Name)))
		default:
			out = append(out, res(cat, name, StatusOK, w.Status, ""))
		}
	}
	c := f.CRDs
	switch {
	case c.Err != "":
		out = append(out, res(cat, "mesh CRDs established", StatusFail, c.Err, "meshctl install"))
	case len(c.Items) == 0:
		out = append(out, res(cat, "mesh CRDs established", StatusFail, "no mesh.weft.dev CRDs", "meshctl install"))
	default:
		var bad, names []string
		for _, crd := range c.Items {
			names = append(names, strings.TrimSuffix(crd.Name, ".mesh.weft.dev"))
			if !crd.Established {
				bad = append(bad, crd.Name)
			}
		}
		if len(bad) > 0 {
			out = append(out, res(cat, "mesh CRDs established", StatusFail, "not established: "+strings.Join(bad, ", "), "kubectl describe crd "+bad[0]))
		} else {
			out = append(out, res(cat, "mesh CRDs established", StatusOK, strings.Join(names, ", "), ""))
		}
	}
	return out
}

func webhookChecks(f Facts) []Result {
	const cat = "Injection webhook"
	w := f.Webhook
	var out []Result
	switch {
	case w.Err != "":
		out = append(out, res(cat, "webhook configured", StatusFail, w.Err, "meshctl install"))
	case !w.Found:
		out = append(out, res(cat, "webhook configured", StatusFail, "MutatingWebhookConfiguration weft-sidecar-injector not found", "meshctl install"))
	case len(w.MissingCABundle) > 0:
		out = append(out, res(cat, "webhook configured", StatusFail, "no caBundle on "+strings.Join(w.MissingCABundle, ", "),
			"the injector patches it at start: kubectl -n weft-system logs deploy/weft-injector"))
	case w.Endpoints == 0:
		out = append(out, res(cat, "webhook configured", StatusFail, "Service weft-injector has no ready endpoint", "kubectl -n weft-system get pods -l app.kubernetes.io/name=weft-injector"))
	default:
		out = append(out, res(cat, "webhook configured", StatusOK, fmt.Sprintf("caBundle set, %d ready endpoint(s)", w.Endpoints), ""))
	}
	d := w.DryRun
	const name = "webhook reachable from the API server (dry-run pod gets the sidecar)"
	switch {
	case d.Skipped != "":
		out = append(out, res(cat, name, StatusWarn, d.Skipped, "run meshctl check with permission to create namespaces and pods"))
	case d.Err != "":
		out = append(out, res(cat, name, StatusFail, d.Err,
			"the API server must reach the injector's pod on port 15017: check the pod network and firewalls between control plane and nodes"))
	case !d.Injected:
		out = append(out, res(cat, name, StatusFail, "the pod came back without weft-sidecar",
			"kubectl get mutatingwebhookconfiguration weft-sidecar-injector -o yaml; check its namespaceSelector"))
	default:
		out = append(out, res(cat, name, StatusOK, "", ""))
	}
	return out
}

func certificateChecks(f Facts) []Result {
	const cat = "Certificates"
	ca := f.CA
	if ca.Err != "" {
		return []Result{res(cat, "mesh CA", StatusFail, ca.Err, "pilot creates weft-system/weft-ca at start: kubectl -n weft-system logs deploy/weft-pilot")}
	}
	var out []Result
	days := func(d time.Duration) string { return fmt.Sprintf("%dd", int(d.Hours()/24)) }
	window := days(f.FailWithin)
	expiry := func(what string, c Cert, fix string) Result {
		left := c.NotAfter.Sub(f.Now)
		detail := fmt.Sprintf("%s, serial %s, expires %s (%s left)", c.Subject, c.Serial, c.NotAfter.UTC().Format(time.DateOnly), days(left))
		name := fmt.Sprintf("%s valid for more than %s", what, window)
		switch {
		case left <= 0:
			return res(cat, name, StatusFail, "EXPIRED: "+detail, fix)
		case left <= f.FailWithin:
			return res(cat, name, StatusFail, "expires within "+window+": "+detail, fix)
		}
		return res(cat, name, StatusOK, detail, "")
	}
	rotate := "rotate the CA: replace weft-system/cacerts with a renewed one, or let pilot rotate its self-signed root (it starts a year before expiry)"
	if ca.Signer != nil && !slices.ContainsFunc(ca.Roots, func(r Cert) bool { return r.Serial == ca.Signer.Serial }) {
		out = append(out, expiry("CA signing certificate ("+ca.Source+")", *ca.Signer, rotate))
	}
	if len(ca.Roots) == 0 {
		out = append(out, res(cat, "CA roots", StatusFail, "no root certificate in "+ca.Source, rotate))
	}
	for _, r := range ca.Roots {
		out = append(out, expiry("root ("+ca.Source+")", r, rotate))
	}
	st, detail := StatusOK, fmt.Sprintf("%d namespace(s) hold the current roots", ca.Published)
	if len(ca.Stale) > 0 {
		st, detail = StatusFail, "outdated or missing trust bundle in: "+strings.Join(ca.Stale, ", ")
	}
	out = append(out, res(cat, "trust bundle weft-root-cert published", st, detail,
		"pilot republishes it within a minute: kubectl -n weft-system logs deploy/weft-pilot | grep rootpublisher"))
	return out
}

func dataPlaneChecks(f Facts) []Result {
	const cat = "Data plane"
	var out []Result
	out = append(out, sidecarVersionCheck(f.Sidecars))
	out = append(out, proxyCheck(f.Proxies))
	out = append(out, redirectCheck(f.Redirect))
	return out
}

func sidecarVersionCheck(s Sidecars) Result {
	const cat, name = "Data plane", "sidecar versions match the control plane"
	if s.Err != "" {
		return res(cat, name, StatusFail, s.Err, "check your permission to list pods")
	}
	if len(s.Pods) == 0 {
		return res(cat, name, StatusOK, "no meshed pods yet", "")
	}
	old := map[string][]string{}
	for _, p := range s.Pods {
		if p.Image != s.Expected {
			old[p.Image] = append(old[p.Image], p.Namespace+"/"+p.Name)
		}
	}
	if len(old) == 0 {
		return res(cat, name, StatusOK, fmt.Sprintf("%d pod(s) run %s (control plane %s)", len(s.Pods), s.Expected, tagOf(s.PilotImage)), "")
	}
	var parts []string
	nss := map[string]bool{}
	for _, img := range slices.Sorted(maps.Keys(old)) {
		pods := old[img]
		sort.Strings(pods)
		for _, p := range pods {
			nss[p[:strings.IndexByte(p, '/')]] = true
		}
		parts = append(parts, fmt.Sprintf("%d pod(s) run %s (%s)", len(pods), img, strings.Join(truncate(pods, 3), ", ")))
	}
	return res(cat, name, StatusWarn, strings.Join(parts, "; ")+"; the injector injects "+s.Expected,
		"restart them to get the current sidecar: kubectl rollout restart deployment -n "+strings.Join(slices.Sorted(maps.Keys(nss)), ","))
}

func proxyCheck(p Proxies) Result {
	const cat, name = "Data plane", "meshed pods connected to pilot and in sync"
	if p.Err != "" {
		return res(cat, name, StatusFail, p.Err, "kubectl -n weft-system logs deploy/weft-pilot")
	}
	var missing, nacked, stale []string
	for _, id := range p.Running {
		if _, ok := p.Connected[id]; !ok {
			missing = append(missing, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.Connected)) {
		st := p.Connected[id]
		switch {
		case st.State == "NACK":
			nacked = append(nacked, fmt.Sprintf("%s (%s)", id, st.Error))
		case st.State == "STALE" && st.StaleFor > 30*time.Second:
			stale = append(stale, fmt.Sprintf("%s (%v)", id, st.StaleFor.Round(time.Second)))
		}
	}
	sort.Strings(missing)
	switch {
	case len(nacked) > 0:
		return res(cat, name, StatusFail, "Envoy rejected its config: "+strings.Join(truncate(nacked, 3), "; "), "meshctl proxy-status shows the full error; the generated config is a bug to report")
	case len(missing) > 0:
		return res(cat, name, StatusFail, "not connected: "+strings.Join(truncate(missing, 5), ", "),
			"kubectl logs <pod> -c weft-sidecar shows why the agent cannot reach weft-pilot:15010")
	case len(stale) > 0:
		return res(cat, name, StatusWarn, "config not acknowledged for more than 30s: "+strings.Join(truncate(stale, 5), ", "), "meshctl proxy-status <pod>")
	}
	return res(cat, name, StatusOK, fmt.Sprintf("%d connected, all SYNCED", len(p.Connected)), "")
}

func redirectCheck(r Redirect) Result {
	const cat, name = "Data plane", "meshed pods have their traffic redirect rules"
	if len(r.Checkers) == 0 {
		return res(cat, name, StatusSkip, "weft-cni-node is not installed, nothing checks the rules", "")
	}
	var errs, bad []string
	total := 0
	for _, c := range r.Checkers {
		switch {
		case c.Err != "":
			errs = append(errs, c.Node+": "+c.Err)
		case c.Missing > 0:
			total += c.Missing
			var pods []string
			for _, e := range r.Events {
				if e.Node == c.Node {
					pods = append(pods, e.Namespace+"/"+e.Pod)
				}
			}
			bad = append(bad, fmt.Sprintf("%s: %d pod(s) %s", c.Node, c.Missing, strings.Join(truncate(pods, 3), ", ")))
		}
	}
	switch {
	case total > 0:
		return res(cat, name, StatusFail, "traffic bypasses the sidecar on "+strings.Join(bad, "; "),
			"delete those pods so they restart with the rules (or run weft-cni-node with --repair=restart)")
	case len(errs) > 0:
		return res(cat, name, StatusWarn, "could not read the checker's metrics: "+strings.Join(errs, "; "), "kubectl -n weft-system logs ds/weft-cni-node")
	}
	return res(cat, name, StatusOK, fmt.Sprintf("checked on %d node(s)", len(r.Checkers)), "")
}

func tagOf(image string) string {
	if i := strings.LastIndexByte(image, ':'); i >= 0 && !strings.Contains(image[i:], "/") {
		return image[i+1:]
	}
	return image
}

func truncate(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
}
