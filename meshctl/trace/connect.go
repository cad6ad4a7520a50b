package trace

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/weftmesh/weft/meshctl/kube"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Where the trace store runs: a container of the OpenTelemetry Collector's
// pod, installed by the chart when telemetry.collector.enabled
// (install/helm/weft/templates/otel-collector.yaml: pod label app, the
// trace-store container, its query port). These are the only place
// meshctl names them.
const (
	CollectorNamespace = "weft-system"
	CollectorSelector  = "app=weft-otel-collector"
	StoreContainer     = "trace-store"
	StorePort          = 16686
)

// InstallHint is the fix when no collector runs: the chart value that
// deploys it. Upgrade applies the values it is given (not the installed
// ones), hence the -f.
const InstallHint = "enable it with meshctl upgrade [-f <your values>] --set telemetry.collector.enabled=true"

// StorePod finds a running collector pod whose trace-store container is
// ready, or says in one sentence why there is none.
func StorePod(ctx context.Context, c *kube.Client) (string, error) {
	pods, err := c.Kube.CoreV1().Pods(CollectorNamespace).List(ctx, metav1.ListOptions{LabelSelector: CollectorSelector})
	if err != nil {
		return "", fmt.Errorf("list collector pods (%s in %s): %w", CollectorSelector, CollectorNamespace, kube.Humanize(err, c.Host))
	}
	if len(pods.Items) == 0 {
		return "", kube.Userf("telemetry collector not installed (no pod %s in namespace %s): %s", CollectorSelector, CollectorNamespace, InstallHint)
	}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	var why []string
	for _, p := range items {
		ok, reason := storeReady(p)
		if ok {
			return p.Name, nil
		}
		why = append(why, p.Name+" "+reason)
	}
	if len(why) == 1 {
		return "", kube.Userf("trace store not ready: pod %s/%s (kubectl -n %s describe pod %s)", CollectorNamespace, why[0], CollectorNamespace, items[0].Name)
	}
	return "", kube.Userf("trace store not ready in any collector pod of %s: %s", CollectorNamespace, joinShort(why))
}

// storeReady says whether p runs a ready trace-store container.
func storeReady(p corev1.Pod) (bool, string) {
	if p.DeletionTimestamp != nil {
		return false, "is terminating"
	}
	if p.Status.Phase != corev1.PodRunning {
		return false, "is " + string(p.Status.Phase)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != StoreContainer {
			continue
		}
		if cs.Ready {
			return true, ""
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return false, "has container " + StoreContainer + " waiting: " + w.Reason
		}
		return false, "has container " + StoreContainer + " not ready"
	}
	return false, "has no " + StoreContainer + " container (a collector without the trace store: upgrade Weft)"
}

func joinShort(parts []string) string {
	out := ""
	for i, p := range parts {
		if i == 3 {
			return out + fmt.Sprintf("; and %d more", len(parts)-3)
		}
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}

// Forwarded is the Store of the collector pod reached through a
// port-forward. It connects on first use and again after the tunnel
// breaks (the pod restarted), so a long-running dashboard survives a
// collector rollout. Close stops the tunnel.
type Forwarded struct {
	kube *kube.Client
	// Timeout bounds each request (default 20s).
	Timeout time.Duration

	mu     sync.Mutex
	client *Client
	pod    string
	stop   func()
}

// NewForwarded returns a Store that port-forwards with c.
func NewForwarded(c *kube.Client) *Forwarded {
	return &Forwarded{kube: c, Timeout: 20 * time.Second}
}

// List implements Store.
func (f *Forwarded) List(ctx context.Context, q Query) ([]TraceInfo, error) {
	var out []TraceInfo
	err := f.do(ctx, func(ctx context.Context, c *Client) error {
		var err error
		out, err = c.List(ctx, q)
		return err
	})
	return out, err
}

// Get implements Store.
func (f *Forwarded) Get(ctx context.Context, id string) (*Trace, error) {
	var out *Trace
	err := f.do(ctx, func(ctx context.Context, c *Client) error {
		var err error
		out, err = c.Get(ctx, id)
		return err
	})
	return out, err
}

// Close stops the port-forward.
func (f *Forwarded) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reset()
}

func (f *Forwarded) reset() {
	if f.stop != nil {
		f.stop()
	}
	f.client, f.stop, f.pod = nil, nil, ""
}

// do runs call against the store, connecting first when needed; a
// transport error on an existing tunnel reconnects once and retries.
func (f *Forwarded) do(ctx context.Context, call func(context.Context, *Client) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := f.client == nil
	if fresh {
		if err := f.connect(ctx); err != nil {
			return err
		}
	}
	err := f.call(ctx, call)
	var te *TransportError
	if errors.As(err, &te) && !fresh {
		f.reset()
		if err := f.connect(ctx); err != nil {
			return err
		}
		err = f.call(ctx, call)
	}
	if errors.As(err, &te) {
		pod := f.pod
		f.reset()
		return unreachable(pod, te)
	}
	return err
}

func (f *Forwarded) call(ctx context.Context, call func(context.Context, *Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	return call(ctx, f.client)
}

func (f *Forwarded) connect(ctx context.Context) error {
	if f.kube.Forward == nil {
		return errors.New("trace store: this client cannot port-forward")
	}
	pod, err := StorePod(ctx, f.kube)
	if err != nil {
		return err
	}
	local, stop, err := f.kube.Forward.Forward(ctx, CollectorNamespace, pod, StorePort)
	if err != nil {
		return kube.Userf("cannot reach the trace store in pod %s/%s port %d: %s", CollectorNamespace, pod, StorePort, kube.Message(err))
	}
	c := &Client{BaseURL: fmt.Sprintf("http://127.0.0.1:%d", local)}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Healthy(hctx); err != nil {
		stop()
		return unreachable(pod, err)
	}
	f.client, f.stop, f.pod = c, stop, pod
	return nil
}

func unreachable(pod string, err error) error {
	var te *TransportError
	msg := err.Error()
	if errors.As(err, &te) {
		msg = te.Err.Error()
	}
	return kube.Userf("cannot reach the trace store in pod %s/%s port %d: %s", CollectorNamespace, pod, StorePort, msg)
}
