// Package kube connects meshctl to a cluster the way kubectl does (the same
// kubeconfig, context and namespace flags), and reaches what is not a plain
// API object through the API server: a pod's HTTP port through the pod
// proxy subresource and Envoy's loopback-only admin API through a
// port-forward. Client errors are turned into one-line sentences (errors.go).
package kube

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Flags are kubectl's connection flags: --kubeconfig, --context,
// --cluster, --user, -n/--namespace, -s/--server, --token, --as,
// --request-timeout and the TLS ones, with kubectl's names and meaning
// (k8s.io/client-go/tools/clientcmd).
type Flags struct {
	loading   *clientcmd.ClientConfigLoadingRules
	overrides clientcmd.ConfigOverrides
}

// NewFlags returns Flags that read $KUBECONFIG and ~/.kube/config like kubectl.
func NewFlags() *Flags {
	return &Flags{loading: clientcmd.NewDefaultClientConfigLoadingRules()}
}

// AddFlags registers the flags on fs (persistent flags of the root command).
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.loading.ExplicitPath, "kubeconfig", "", "path to the kubeconfig file to use for CLI requests")
	clientcmd.BindOverrideFlags(&f.overrides, fs, clientcmd.RecommendedConfigOverrideFlags(""))
}

func (f *Flags) clientConfig() clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(f.loading, &f.overrides)
}

// NamespaceFlag is the value of -n (empty when not given).
func (f *Flags) NamespaceFlag() string { return f.overrides.Context.Namespace }

// Client bundles what meshctl's commands talk to. Tests build one from fake
// clients; Connect builds the real one.
type Client struct {
	// Config reaches the API server (nil with fake clients).
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Namespace is -n, else the kubeconfig context's namespace, else "default".
	Namespace string
	// Envoy reads a sidecar's admin API; PodHTTP GETs a pod's port.
	Envoy   EnvoyAdmin
	PodHTTP PodHTTP
	// Forward tunnels a local port to a pod's port (the trace store).
	Forward PortForwarder
	// Host is the API server's URL, for messages.
	Host string
}

// Connect loads the kubeconfig, builds the clients and makes one request
// (the server version) so that an unreachable API server, an unknown
// context or bad credentials fail here, with a clear sentence, instead of
// in the middle of a command.
func (f *Flags) Connect(ctx context.Context) (*Client, error) {
	cc := f.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, f.configError(err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, f.configError(err)
	}
	cfg.UserAgent = "meshctl"
	cfg.QPS, cfg.Burst = 50, 100
	cfg.WarningHandler = rest.NoWarnings{}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	c := &Client{Config: cfg, Kube: kube, Dynamic: dyn, Namespace: ns, Host: cfg.Host}
	c.Forward = &spdyForwarder{config: cfg, kube: kube}
	c.Envoy = &portForwardAdmin{fw: c.Forward}
	c.PodHTTP = &proxyHTTP{kube: kube}
	if err := c.ping(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// missingEntry is client-go's error for a --context, --cluster or --user
// that the kubeconfig does not define (clientcmd.DirectClientConfig).
var missingEntry = regexp.MustCompile(`^(context|cluster|auth info) "(.*)" does not exist$`)

// configError says what is wrong with the kubeconfig: a --kubeconfig
// file that does not exist, or a context, cluster or user it does not
// define (with the ones it does), else the humanized client-go error.
func (f *Flags) configError(err error) error {
	if p := f.loading.ExplicitPath; p != "" {
		if _, serr := os.Stat(p); errors.Is(serr, fs.ErrNotExist) {
			return Userf("kubeconfig %s does not exist: check --kubeconfig (or unset it to use $KUBECONFIG or ~/.kube/config)", p)
		}
	}
	m := missingEntry.FindStringSubmatch(err.Error())
	if m == nil {
		return Humanize(err, "")
	}
	kind, flag := m[1], "--"+m[1]
	raw, rerr := f.clientConfig().RawConfig()
	var names []string
	switch kind {
	case "context":
		for n := range raw.Contexts {
			names = append(names, n)
		}
	case "cluster":
		for n := range raw.Clusters {
			names = append(names, n)
		}
	default:
		kind, flag = "user", "--user"
		for n := range raw.AuthInfos {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	have := "it defines none"
	if rerr == nil && len(names) > 0 {
		have = "it has " + strings.Join(names, ", ")
	}
	return Userf("%s %q is not in the kubeconfig %s (%s): check %s", kind, m[2], f.kubeconfigFiles(), have, flag)
}

// Contexts lists the kubeconfig's context names (shell completion).
func (f *Flags) Contexts() []string {
	raw, err := f.clientConfig().RawConfig()
	if err != nil {
		return nil
	}
	var out []string
	for n := range raw.Contexts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// kubeconfigFiles names the kubeconfig files read, for messages.
func (f *Flags) kubeconfigFiles() string {
	if p := f.loading.ExplicitPath; p != "" {
		return p
	}
	var files []string
	for _, p := range f.loading.GetLoadingPrecedence() {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		return "(none found)"
	}
	return strings.Join(files, string(os.PathListSeparator))
}

// ping asks for the server version with a short deadline of its own (the
// discovery client has no context), so a black-holed address fails fast.
func (c *Client) ping(ctx context.Context) error {
	timeout := 15 * time.Second
	if c.Config.Timeout > 0 {
		timeout = c.Config.Timeout
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Timeout = timeout
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := cs.Discovery().ServerVersion()
		done <- err
	}()
	select {
	case err := <-done:
		return Humanize(err, c.Host)
	case <-ctx.Done():
		return ctx.Err()
	}
}
