// Package proxystatus is meshctl proxy-status: Collect reads every pilot
// replica's /debug/syncz (pilot/xds.ProxyStatus, via the API server's pod
// proxy) and the meshed pods; Build joins them into one row per proxy with
// its per-type xDS state, including meshed pods that are not connected.
package proxystatus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/meshctl/kube"
	"github.com/weftmesh/weft/meshctl/output"
	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/xds"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Where pilot serves /debug/syncz (install/helm/weft/templates/pilot.yaml).
const (
	Namespace   = "weft-system"
	PilotLabel  = "app.kubernetes.io/name=weft-pilot"
	MetricsPort = 15014
	SynczPath   = "/debug/syncz"
)

// Types are the xDS types shown, in column order. SRDS is "-" unless
// tracing is on (the traced outbound listener's scoped routes).
var Types = []string{"CDS", "LDS", "EDS", "RDS", "SRDS"}

// PilotStatus is one pilot replica's report.
type PilotStatus struct {
	Pilot   string
	Proxies []xds.ProxyStatus
}

// Snapshot is what Collect read.
type Snapshot struct {
	Pilots []PilotStatus
	// Pods are the meshed pods (with the sidecar status annotation).
	Pods []corev1.Pod
}

// Collect reads the sync status of every running pilot and lists the
// meshed pods of namespace ("" for all).
func Collect(ctx context.Context, c *kube.Client, namespace string) (Snapshot, error) {
	var s Snapshot
	pilots, err := c.Kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: PilotLabel})
	if err != nil {
		return s, fmt.Errorf("find pilot: %w", err)
	}
	for _, p := range pilots.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		body, err := c.PodHTTP.Get(ctx, Namespace, p.Name, MetricsPort, SynczPath)
		if err != nil {
			return s, fmt.Errorf("read pilot's sync status: %w", err)
		}
		var ps []xds.ProxyStatus
		if err := json.Unmarshal(body, &ps); err != nil {
			return s, fmt.Errorf("decode %s of %s: %w", SynczPath, p.Name, err)
		}
		s.Pilots = append(s.Pilots, PilotStatus{Pilot: p.Name, Proxies: ps})
	}
	if len(s.Pilots) == 0 {
		return s, kube.Userf("no running weft-pilot in %s: is the mesh installed? (meshctl check)", Namespace)
	}
	pods, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return s, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		if _, ok := p.Annotations[annotation.StatusAnnotation]; ok {
			s.Pods = append(s.Pods, p)
		}
	}
	return s, nil
}

// Cell is one xDS type of one proxy.
type Cell struct {
	Type  string `json:"type"`
	State string `json:"state"`
	// Age is how long a STALE type has waited for its ACK.
	Age     string `json:"age,omitempty"`
	Error   string `json:"error,omitempty"`
	Version string `json:"version,omitempty"`
	Acked   string `json:"acked,omitempty"`
}

// Display states (xds.NACKed prints as NACKED).
const (
	Synced       = "SYNCED"
	Stale        = "STALE"
	NACKed       = "NACKED"
	NotConnected = "NOT CONNECTED"
)

// Row is one proxy.
type Row struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Pilot     string `json:"pilot,omitempty"`
	Identity  string `json:"identity,omitempty"`
	// Sidecar is the injected image (the proxy's version).
	Sidecar   string `json:"sidecar,omitempty"`
	Connected bool   `json:"connected"`
	Types     []Cell `json:"types,omitempty"`
	// Problem is set for NACKED, long STALE and disconnected proxies.
	Problem string `json:"problem,omitempty"`
}

// Report is the output of proxy-status.
type Report struct {
	Proxies []Row `json:"proxies"`
}

// Options filter and judge the rows.
type Options struct {
	Now time.Time
	// StaleAfter makes a type STALE for longer a problem.
	StaleAfter time.Duration
	// Pod, when set, keeps only that proxy ("<pod>.<namespace>").
	Pod string
	// Namespace, when set, keeps only proxies of it.
	Namespace string
}

// Build joins pilot's view and the meshed pods.
func Build(s Snapshot, o Options) Report {
	rows := map[string]*Row{}
	for _, pilot := range s.Pilots {
		for _, ps := range pilot.Proxies {
			r := &Row{Name: ps.NodeID, Namespace: ps.Namespace, Pod: ps.Pod, Pilot: pilot.Pilot, Identity: ps.Identity, Connected: true}
			r.Types, r.Problem = cells(ps, o)
			rows[r.Name] = r
		}
	}
	for _, p := range s.Pods {
		id := generator.NodeID(p.Namespace, p.Name)
		st := sidecarImage(p)
		if r, ok := rows[id]; ok {
			r.Sidecar = st
			continue
		}
		if !sidecarStarted(p) {
			continue
		}
		rows[id] = &Row{Name: id, Namespace: p.Namespace, Pod: p.Name, Sidecar: st,
			Problem: "not connected to pilot: kubectl logs -n " + p.Namespace + " " + p.Name + " -c weft-sidecar"}
	}
	out := Report{Proxies: []Row{}}
	for _, r := range rows {
		if o.Namespace != "" && r.Namespace != o.Namespace || o.Pod != "" && r.Name != o.Pod {
			continue
		}
		out.Proxies = append(out.Proxies, *r)
	}
	sort.Slice(out.Proxies, func(i, j int) bool {
		a, b := out.Proxies[i], out.Proxies[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Pod < b.Pod
	})
	return out
}

// sidecarImage reads the injected image from the status annotation
// (leniently: an older or newer status version still names its image).
func sidecarImage(p corev1.Pod) string {
	var st struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal([]byte(p.Annotations[annotation.StatusAnnotation]), &st); err != nil {
		return ""
	}
	return st.Image
}

// sidecarStarted is true once the pod runs and its sidecar container has
// started (before that, not being connected is expected).
func sidecarStarted(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, cs := range p.Status.InitContainerStatuses {
		if cs.Name == "weft-sidecar" {
			return cs.Started != nil && *cs.Started
		}
	}
	return false
}

func cells(ps xds.ProxyStatus, o Options) ([]Cell, string) {
	var out []Cell
	var problems []string
	for _, t := range Types {
		i := slices.IndexFunc(ps.Types, func(ts xds.TypeStatus) bool { return ts.Type == t })
		if i < 0 {
			out = append(out, Cell{Type: t, State: "-"})
			continue
		}
		ts := ps.Types[i]
		c := Cell{Type: t, Version: ts.Version, Acked: ts.Acked}
		switch ts.State {
		case xds.NACKed:
			c.State, c.Error = NACKed, ts.Error
			problems = append(problems, fmt.Sprintf("%s NACKED: %s", t, ts.Error))
		case xds.Stale:
			since := ts.LastPush
			if since.IsZero() {
				since = ps.ConnectedAt
			}
			age := o.Now.Sub(since)
			c.State, c.Age = Stale, fmtAge(age)
			if o.StaleAfter > 0 && age > o.StaleAfter {
				problems = append(problems, fmt.Sprintf("%s STALE for %s", t, c.Age))
			}
		default:
			c.State = Synced
		}
		out = append(out, c)
	}
	return out, strings.Join(problems, "; ")
}

func fmtAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
}

// Problems counts rows with a problem (meshctl exits 1 when > 0).
func (r Report) Problems() int {
	n := 0
	for _, p := range r.Proxies {
		if p.Problem != "" {
			n++
		}
	}
	return n
}

// WriteTable prints one row per proxy, then each problem in full.
func (r Report) WriteTable(w io.Writer) error {
	t := output.Rows{Header: append(append([]string{"NAME"}, Types...), "PILOT", "VERSION")}
	for _, p := range r.Proxies {
		row := []string{p.Name}
		if !p.Connected {
			for range Types {
				row = append(row, "-")
			}
			row = append(row, NotConnected)
		} else {
			for _, c := range p.Types {
				s := c.State
				if c.Age != "" {
					s += " (" + c.Age + ")"
				}
				row = append(row, s)
			}
			row = append(row, p.Pilot)
		}
		row = append(row, output.Dash(tag(p.Sidecar)))
		t.Add(row...)
	}
	if err := t.Write(w); err != nil {
		return err
	}
	if len(r.Proxies) == 0 {
		_, err := fmt.Fprintln(w, "no meshed pods")
		return err
	}
	for _, p := range r.Proxies {
		if p.Problem != "" {
			fmt.Fprintf(w, "\n%s: %s", p.Name, p.Problem)
		}
	}
	if r.Problems() > 0 {
		fmt.Fprintln(w)
	}
	return nil
}

func tag(image string) string {
	if i := strings.LastIndexByte(image, ':'); i >= 0 && !strings.Contains(image[i:], "/") {
		return image[i+1:]
	}
	return image
}
