package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weftmesh/weft/proxy/internal/netns"
)

// Loopback addresses inside each proxy's namespace.
const (
	apiListen   = "127.0.0.1:6443"
	metricsAddr = "127.0.0.1:10249"
	healthzAddr = "127.0.0.1:10256"
)

// kind describes how to run and read one proxy implementation.
type kind struct {
	name string
	args func(bin, kubeconfig, node string) []string
	// Prometheus series (name{labels}) of the sync-duration and
	// network-programming histograms.
	syncCount, syncSum, progCount, progSum string
}

var kinds = []kind{
	{
		name: "kube-proxy",
		args: func(bin, kc, node string) []string {
			return []string{bin, "--proxy-mode=iptables", "--hostname-override=" + node, "--kubeconfig=" + kc,
				"--cluster-cidr=10.244.0.0/16", "--metrics-bind-address=" + metricsAddr, "--healthz-bind-address=" + healthzAddr,
				"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
				"--iptables-min-sync-period=1s", "--v=1"}
		},
		syncCount: `kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`,
		syncSum:   `kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="IPv4"}`,
		progCount: `kubeproxy_network_programming_duration_seconds_count{ip_family="IPv4"}`,
		progSum:   `kubeproxy_network_programming_duration_seconds_sum{ip_family="IPv4"}`,
	},
	{
		name: "weft-proxy",
		args: func(bin, kc, node string) []string {
			return []string{bin, "--hostname-override=" + node, "--kubeconfig=" + kc, "--cluster-cidr=10.244.0.0/16",
				"--metrics-bind-address=" + metricsAddr, "--healthz-bind-address=" + healthzAddr, "--min-sync-period=1s"}
		},
		syncCount: `weft_proxy_sync_proxy_rules_duration_seconds_count`,
		syncSum:   `weft_proxy_sync_proxy_rules_duration_seconds_sum`,
		progCount: `weft_proxy_network_programming_duration_seconds_count`,
		progSum:   `weft_proxy_network_programming_duration_seconds_sum`,
	},
}

// instance is one running proxy in its own namespace.
type instance struct {
	kind    kind
	ns      string
	cmd     *exec.Cmd
	started time.Time
	api     net.Listener
	client  *http.Client
}

// start creates the namespace and forwarder and launches the proxy.
func start(ctx context.Context, k kind, bin, kubeconfig, node, apiServer, logDir string) (*instance, error) {
	ns, err := netns.Create(ctx, "bench")
	if err != nil {
		return nil, err
	}
	in := &instance{kind: k, ns: ns}
	if in.api, err = forwardAPIServer(ctx, ns, apiListen, apiServer); err != nil {
		return in, err
	}
	in.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return dialIn(ns, metricsAddr) },
	}}
	logFile, err := os.Create(filepath.Join(logDir, k.name+"-"+ns+".log"))
	if err != nil {
		return in, fmt.Errorf("create log: %w", err)
	}
	argv := append(netns.Exec(ns), k.args(bin, kubeconfig, node)...)
	in.cmd = exec.Command(argv[0], argv[1:]...)
	in.cmd.Stdout, in.cmd.Stderr = logFile, logFile
	in.started = time.Now()
	if err := in.cmd.Start(); err != nil {
		return in, fmt.Errorf("start %s: %w", k.name, err)
	}
	go func() {
		if err := in.cmd.Wait(); err != nil {
			fmt.Fprintf(logFile, "bench: %s exited: %v\n", k.name, err)
		}
		closeQuietly(logFile)
	}()
	return in, nil
}

// stop ends the proxy (by its pid), the forwarder and the namespace.
func (in *instance) stop(ctx context.Context) error {
	if in.cmd != nil && in.cmd.Process != nil {
		if err := in.cmd.Process.Signal(syscall.SIGTERM); err == nil {
			deadline := time.Now().Add(10 * time.Second)
			for in.cmd.ProcessState == nil && time.Now().Before(deadline) && processAlive(in.cmd.Process.Pid) {
				time.Sleep(100 * time.Millisecond)
			}
			if processAlive(in.cmd.Process.Pid) {
				if err := in.cmd.Process.Kill(); err != nil {
					return fmt.Errorf("kill %s: %w", in.kind.name, err)
				}
			}
		}
	}
	if in.api != nil {
		closeQuietly(in.api)
	}
	return netns.Delete(ctx, in.ns)
}

func processAlive(pid int) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(raw))
	return len(fields) > 2 && fields[2] != "Z"
}

// scrape returns the proxy's metrics text.
func (in *instance) scrape(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return "", err
	}
	defer closeQuietly(resp.Body)
	raw, err := io.ReadAll(resp.Body)
	return string(raw), err
}

// sample sums the values of every series whose name and labels contain
// the given series' (labels in the query must appear in that order);
// found is false when none matched.
func sample(text, series string) (float64, bool) {
	name, labels, _ := strings.Cut(series, "{")
	labels = strings.TrimSuffix(labels, "}")
	total, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer metric name
		}
		if labels != "" && !strings.Contains(rest, labels) {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		total, found = total+v, true
	}
	return total, found
}

// countRules counts the rules in the proxy's namespace with iptables-save,
// the same way for both proxies.
func (in *instance) countRules(ctx context.Context) (int, error) {
	argv := append(netns.Exec(in.ns), "iptables-save")
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		return 0, fmt.Errorf("iptables-save in %s: %w", in.ns, err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") {
			n++
		}
	}
	return n, nil
}
