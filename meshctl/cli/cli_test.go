package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/meshctl/internal/fakekube"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// result is one run of meshctl.
type result struct {
	code        int
	out, errOut string
}

// run executes meshctl in-process with args against c (nil: connect with
// the kubeconfig flags, as the binary does).
func run(t *testing.T, c *fakekube.Cluster, stdin string, args ...string) result {
	t.Helper()
	return runEnv(t, Env{Applier: nil}, c, stdin, args...)
}

func runEnv(t *testing.T, env Env, c *fakekube.Cluster, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env.In, env.Out, env.Err = strings.NewReader(stdin), &out, &errOut
	env.Now = func() time.Time { return now }
	if c != nil {
		env.Client = c.Client()
	}
	if env.Poll == 0 {
		env.Poll = 10 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := Run(ctx, args, env)
	return result{code: code, out: out.String(), errOut: errOut.String()}
}

// oneLineError asserts that r failed with code and a single "error: …"
// line on stderr that contains want, and no stack trace.
func oneLineError(t *testing.T, r result, code int, want string) {
	t.Helper()
	t.Logf("exit %d, stderr: %s", r.code, strings.TrimSpace(r.errOut))
	assert.Equal(t, code, r.code, "exit code; stderr %q", r.errOut)
	lines := strings.Split(strings.TrimSuffix(r.errOut, "\n"), "\n")
	assert.Len(t, lines, 1, "stderr must be one line: %q", r.errOut)
	assert.True(t, strings.HasPrefix(r.errOut, "error: "), "stderr %q", r.errOut)
	assert.Contains(t, r.errOut, want)
	for _, trace := range []string{"goroutine ", "panic", ".go:", "internal error"} {
		assert.NotContains(t, r.errOut, trace)
	}
}

const kubeconfigTmpl = `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "SERVER"}
contexts:
- name: test
  context: {cluster: test, user: test, namespace: shop}
- name: other
  context: {cluster: test, user: test}
current-context: test
users:
- name: test
  user: {token: not-a-real-token}
`

// closedKubeconfig points at 127.0.0.1:1, where nothing listens.
func closedKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(kubeconfigTmpl, "SERVER", "https://127.0.0.1:1", 1)), 0o600))
	return p
}

func TestNoClusterReachable(t *testing.T) {
	kc := closedKubeconfig(t)
	for _, args := range [][]string{
		{"check"}, {"check", "--pre"}, {"proxy-status", "-A"}, {"proxy-config", "secrets", "web-1"},
		{"explain", "curl-1", "httpbin:8000"}, {"analyze", "-A"}, {"uninstall"}, {"upgrade"}, {"install"},
		{"trace"}, {"trace", "4bf92f3577b34da6a3ce929d0e0e4736"}, {"dashboard"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, nil, "", append(args, "--kubeconfig", kc)...)
			oneLineError(t, r, 1, "error: cannot reach the Kubernetes API server at https://127.0.0.1:1: connection refused (is the cluster running? check --kubeconfig and --context)")
			assert.Empty(t, r.out)
		})
	}
	// version still says what it knows.
	r := run(t, nil, "", "version", "--kubeconfig", kc)
	oneLineError(t, r, 1, "connection refused")
	assert.True(t, strings.HasPrefix(r.out, "client:        meshctl dev ("), r.out)
}

func TestWrongContext(t *testing.T) {
	kc := closedKubeconfig(t)
	r := run(t, nil, "", "check", "--kubeconfig", kc, "--context", "prod")
	oneLineError(t, r, 1, `error: context "prod" is not in the kubeconfig `+kc+` (it has other, test): check --context`)
	r = run(t, nil, "", "analyze", "--kubeconfig", kc, "--user", "admin")
	oneLineError(t, r, 1, `error: user "admin" is not in the kubeconfig `+kc+` (it has test): check --user`)
}

func TestKubeconfigDoesNotExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope", "kubeconfig")
	r := run(t, nil, "", "proxy-status", "--kubeconfig", missing)
	oneLineError(t, r, 1, "error: kubeconfig "+missing+" does not exist: check --kubeconfig")
}

func TestNoKubeconfigAtAll(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	r := run(t, nil, "", "check")
	oneLineError(t, r, 1, "error: no kubeconfig found: set KUBECONFIG or pass --kubeconfig")
}

func TestMissingPermissions(t *testing.T) {
	for _, args := range [][]string{
		{"proxy-status"}, {"proxy-config", "secrets", "web-1"}, {"analyze"}, {"version"},
		{"explain", "curl-1", "web:80"}, {"upgrade"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
			c.Forbid("*", "*")
			r := run(t, c, "", args...)
			oneLineError(t, r, 1, "error: permission denied: ")
			assert.Contains(t, r.errOut, `User "alice" cannot `)
			assert.Contains(t, r.errOut, "(ask a cluster admin for this RBAC permission)")
		})
	}
	// check reports every check it could not make, and fails.
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	c.Forbid("*", "*")
	r := run(t, c, "", "check")
	assert.Equal(t, 1, r.code)
	assert.Empty(t, r.errOut)
	assert.Contains(t, r.out, "✗ nodes Ready: permission denied: ")
	assert.Contains(t, r.out, "post-install check: FAILED")
}

func TestPodWithoutSidecar(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	_, err := c.Kube.CoreV1().Pods("shop").Create(context.Background(), fakekube.PlainPod("shop", "plain-1", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	for _, kind := range []string{"secrets", "listeners", "clusters", "routes", "endpoints"} {
		r := run(t, c, "", "proxy-config", kind, "plain-1", "-n", "shop")
		oneLineError(t, r, 1, "error: pod shop/plain-1 has no Weft sidecar, so it has no Envoy config (namespace shop is labelled weft-injection=enabled: the pod was created before, or opted out; restart it)")
		assert.Empty(t, r.out)
	}
	r := run(t, c, "", "proxy-config", "secrets", "plain-1.default")
	oneLineError(t, r, 1, "error: pod plain-1 not found in namespace default")
	r = run(t, c, "", "proxy-status", "plain-1.shop")
	oneLineError(t, r, 1, "error: pod shop/plain-1 has no Weft sidecar (")
	assert.Empty(t, c.Envoy.Gets, "nothing tried to port-forward")
}

func TestUnknownOutputFormat(t *testing.T) {
	kc := closedKubeconfig(t)
	for _, args := range [][]string{
		{"check"}, {"proxy-status"}, {"proxy-config", "secrets", "web-1"}, {"explain", "a", "b"},
		{"analyze"}, {"version"}, {"inject", "-f", "x.yaml"},
	} {
		t.Run(args[0], func(t *testing.T) {
			// The format is checked before connecting: the closed port is
			// never dialled.
			r := run(t, nil, "", append(args, "-o", "xml", "--kubeconfig", kc)...)
			oneLineError(t, r, 2, `error: unknown output format "xml" (want table, json, yaml)`)
		})
	}
}

func TestBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"chek"}, `error: unknown command "chek" for "meshctl" (did you mean check?); see meshctl --help`},
		{[]string{"proxy-config", "secret", "web-1"}, `error: unknown kind "secret" for meshctl proxy-config (did you mean secrets?): want listeners, clusters, routes, endpoints, secrets`},
		{[]string{"explain", "curl-1"}, "error: accepts 2 arg(s), received 1 (see meshctl explain --help)"},
		{[]string{"check", "--fail-within", "soon"}, `invalid argument "soon" for "--fail-within" flag: "soon": want a number of days like 30d, or a duration like 720h`},
		{[]string{"check", "--bogus"}, "error: unknown flag: --bogus"},
		{[]string{"install", "--components", "mesh,gateway"}, `error: --components: unknown component "gateway"`},
		{[]string{"install", "--set", "tga=1", "--dry-run"}, `error: --set tga: unknown value "tga" (see install/helm/weft/values.yaml)`},
		{[]string{"inject"}, "error: no manifest: give -f <file> (or -f - for stdin)"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			oneLineError(t, run(t, nil, "", tc.args...), 2, tc.want)
		})
	}
}

func TestHelpAndCompletionScripts(t *testing.T) {
	r := run(t, nil, "", "proxy-config")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.out, "Available Commands:")
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := run(t, nil, "", "completion", shell)
		assert.Equal(t, 0, r.code, r.errOut)
		assert.Contains(t, r.out, "meshctl", shell)
	}
	r = run(t, nil, "", "completion", "bash")
	assert.True(t, strings.HasPrefix(r.out, "# bash completion V2 for meshctl"), r.out[:80])
}

func TestCompletion(t *testing.T) {
	c := fakekube.Mesh(fakekube.MeshOptions{Now: now})
	_, err := c.Kube.CoreV1().Pods("shop").Create(context.Background(), fakekube.PlainPod("shop", "plain-1", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	complete := func(args ...string) []string {
		r := run(t, c, "", append([]string{"__complete"}, args...)...)
		require.Equal(t, 0, r.code, r.errOut)
		return strings.Split(strings.TrimSpace(r.out), "\n")
	}
	assert.Equal(t, []string{"cart-1", "curl-1", "web-1", ":4"}, complete("proxy-config", "secrets", "-n", "shop", ""), "meshed pods only")
	assert.Equal(t, []string{"web-1", ":4"}, complete("proxy-config", "secrets", "-n", "shop", "w"))
	assert.Equal(t, []string{"cart-1", "curl-1", "web-1", ":4"}, complete("explain", "-n", "shop", ""))
	assert.Equal(t, []string{":4"}, complete("explain", "-n", "shop", "curl-1", ""), "no Service in the fake namespace")
	assert.Equal(t, []string{"shop", ":4"}, complete("check", "-n", "sh"))
	assert.Equal(t, []string{"table", "json", "yaml", ":4"}, complete("analyze", "-o", "t"), "the shell filters fixed choices")
}
