package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type options struct {
	kubeconfig, kubeProxy, weftProxy, workDir string
	node                                      string
	sizes                                     []int
	changes                                   int
	timeout                                   time.Duration
}

// result is one proxy's numbers at one size.
type result struct {
	proxy, note                   string
	services, rules               int
	firstSync, firstSyncWall      time.Duration
	changeSync, changeProgramming time.Duration
}

func run(ctx context.Context, o options) error {
	log := logr.FromContextOrDiscard(ctx)
	if o.kubeconfig == "" {
		return errors.New("-kubeconfig is required")
	}
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "weft-proxy-bench-")
		if err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
		o.workDir = dir
	}
	if o.weftProxy == "" {
		o.weftProxy = filepath.Join(o.workDir, "weft-proxy")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", o.weftProxy, "./proxy/cmd/weft-proxy").CombinedOutput(); err != nil {
			return fmt.Errorf("build weft-proxy: %w: %s", err, out)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 300, 600
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	apiURL, err := url.Parse(cfg.Host)
	if err != nil {
		return fmt.Errorf("API server URL %q: %w", cfg.Host, err)
	}
	if o.node == "" {
		// A real Node, so neither proxy waits for one to appear; the
		// benchmark's endpoints name no node, so all stay remote.
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil || len(nodes.Items) == 0 {
			return fmt.Errorf("pick a node (or pass -node): %w", err)
		}
		o.node = nodes.Items[0].Name
	}
	innerKC, err := writeInnerKubeconfig(o.kubeconfig, o.workDir)
	if err != nil {
		return err
	}
	bins := map[string]string{"kube-proxy": o.kubeProxy, "weft-proxy": o.weftProxy}
	var results []result
	for _, n := range o.sizes {
		rs, err := runSize(ctx, client, o, n, bins, innerKC, apiURL.Host)
		results = append(results, rs...)
		if err != nil {
			return err
		}
		log.Info("size done", "services", n)
	}
	printTable(os.Stdout, results)
	log.Info("logs and kubeconfig", "dir", o.workDir)
	return nil
}

// writeInnerKubeconfig points a copy of the kubeconfig at the forwarder
// inside each namespace (127.0.0.1 is in the local cluster's certificate).
func writeInnerKubeconfig(path, dir string) (string, error) {
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", fmt.Errorf("read kubeconfig: %w", err)
	}
	for _, c := range raw.Clusters {
		c.Server = "https://" + apiListen
	}
	out := filepath.Join(dir, "kubeconfig-inner")
	if err := clientcmd.WriteToFile(*raw, out); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return out, nil
}

func runSize(ctx context.Context, client kubernetes.Interface, o options, n int, bins map[string]string, kc, api string) (_ []result, err error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("services", n)
	ns := namespaceFor(n)
	svcs, slices := benchObjects(ns, n)
	defer func() {
		if derr := deleteAll(context.WithoutCancel(ctx), client, ns, svcs); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	t0 := time.Now()
	if err := createAll(ctx, client, ns, svcs, slices); err != nil {
		return nil, err
	}
	log.Info("created objects", "took", time.Since(t0))

	var insts []*instance
	defer func() {
		for _, in := range insts {
			if serr := in.stop(context.WithoutCancel(ctx)); serr != nil {
				err = errors.Join(err, serr)
			}
		}
	}()
	results := map[string]*result{}
	// The proxies start one after the other so they do not compete for the
	// two CPUs during their first sync.
	for _, k := range kinds {
		in, err := start(ctx, k, bins[k.name], kc, o.node, api, o.workDir)
		if in != nil {
			insts = append(insts, in)
		}
		if err != nil {
			return nil, err
		}
		r := &result{proxy: k.name, services: n}
		results[k.name] = r
		if err := firstSync(ctx, in, o.timeout, r); err != nil {
			return nil, err
		}
		log.Info("first sync", "proxy", k.name, "took", r.firstSync, "wall", r.firstSyncWall)
	}
	for i := range o.changes {
		// Space changes beyond both proxies' 1s min sync period, so the
		// latency measures reaction, not rate limiting.
		time.Sleep(2 * time.Second)
		before, err := snapshotAll(ctx, insts)
		if err != nil {
			return nil, err
		}
		if err := changeOneEndpoint(ctx, client, slices[(i*7919)%len(slices)], i+1); err != nil {
			return nil, err
		}
		if err := waitChange(ctx, insts, before, results, o.changes); err != nil {
			return nil, err
		}
	}
	var out []result
	for _, in := range insts {
		r := results[in.kind.name]
		if r.rules, err = in.countRules(ctx); err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// firstSync waits for the proxy's first successful sync and records its
// duration (from the histogram) and the wall time since the process started.
func firstSync(ctx context.Context, in *instance, timeout time.Duration, r *result) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		text, err := in.scrape(ctx)
		if err == nil {
			if count, _ := sample(text, in.kind.syncCount); count >= 1 {
				sum, _ := sample(text, in.kind.syncSum)
				r.firstSync = time.Duration(sum / count * float64(time.Second))
				r.firstSyncWall = time.Since(in.started)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: no sync within %v (see its log)", in.kind.name, timeout)
}

// metricsSnap is one proxy's sync and programming histograms (count, sum).
type metricsSnap struct{ count, sum, prog, progSum float64 }

func readSnap(ctx context.Context, in *instance) (metricsSnap, error) {
	text, err := in.scrape(ctx)
	if err != nil {
		return metricsSnap{}, err
	}
	var s metricsSnap
	s.count, _ = sample(text, in.kind.syncCount)
	s.sum, _ = sample(text, in.kind.syncSum)
	s.prog, _ = sample(text, in.kind.progCount)
	s.progSum, _ = sample(text, in.kind.progSum)
	return s, nil
}

// snapshotAll reads every proxy's histograms. It must run before the
// change: a proxy may program it before waitChange's first scrape.
func snapshotAll(ctx context.Context, insts []*instance) (map[*instance]metricsSnap, error) {
	before := map[*instance]metricsSnap{}
	for _, in := range insts {
		s, err := readSnap(ctx, in)
		if err != nil {
			return nil, err
		}
		before[in] = s
	}
	return before, nil
}

// waitChange waits until every proxy programmed one more change since
// before and adds that sync's duration and programming latency, divided by
// rounds, to its result.
func waitChange(ctx context.Context, insts []*instance, before map[*instance]metricsSnap, results map[string]*result, rounds int) error {
	pending := slices.Clone(insts)
	deadline := time.Now().Add(2 * time.Minute)
	for len(pending) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		for i := 0; i < len(pending); i++ {
			in := pending[i]
			s, err := readSnap(ctx, in)
			if err != nil || s.prog <= before[in].prog || s.count <= before[in].count {
				continue
			}
			b, r := before[in], results[in.kind.name]
			r.changeSync += time.Duration((s.sum - b.sum) / (s.count - b.count) * float64(time.Second) / float64(rounds))
			r.changeProgramming += time.Duration((s.progSum - b.progSum) / (s.prog - b.prog) * float64(time.Second) / float64(rounds))
			pending = slices.Delete(pending, i, i+1)
			i--
		}
	}
	if len(pending) > 0 {
		last, err := readSnap(ctx, pending[0])
		return fmt.Errorf("%s did not program an endpoint change within 2m (before %+v, now %+v, read error %v)", pending[0].kind.name, before[pending[0]], last, err)
	}
	return nil
}

func printTable(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "services\tproxy\trules\tfirst full sync\tstart→first sync\tone-endpoint sync\tprogramming latency\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%v\t%v\t%v\t%v\t\n", r.services, r.proxy, r.rules,
			r.firstSync.Round(time.Millisecond), r.firstSyncWall.Round(time.Millisecond),
			r.changeSync.Round(100*time.Microsecond), r.changeProgramming.Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return
	}
}
