package kube

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func urlErr(err error) error {
	return &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/version?timeout=32s", Err: err}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestMessages(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"refused": {urlErr(refused),
			"cannot reach the Kubernetes API server at https://10.0.0.1:6443: connection refused (is the cluster running? check --kubeconfig and --context)"},
		"dns": {urlErr(&net.OpError{Op: "dial", Err: &net.DNSError{Name: "api.example", Err: "no such host"}}),
			`cannot reach the Kubernetes API server at https://10.0.0.1:6443: host "api.example" not found (check --kubeconfig and --context)`},
		"timeout": {urlErr(timeoutErr{}),
			"cannot reach the Kubernetes API server at https://10.0.0.1:6443: timed out (is the cluster running and reachable from here?)"},
		"deadline": {fmt.Errorf("list pods: %w", context.DeadlineExceeded),
			"cannot reach the Kubernetes API server: timed out (is the cluster running and reachable from here?)"},
		"x509": {urlErr(x509.UnknownAuthorityError{}),
			"cannot verify the certificate of the API server at https://10.0.0.1:6443: x509: certificate signed by unknown authority (wrong cluster in the kubeconfig, or --certificate-authority needed)"},
		"forbidden": {fmt.Errorf("list pods: %w", apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "bob" cannot list resource "pods"`))),
			`permission denied: pods is forbidden: User "bob" cannot list resource "pods" (ask a cluster admin for this RBAC permission)`},
		"unauthorized": {apierrors.NewUnauthorized("Unauthorized"),
			"the API server rejected the credentials (401 Unauthorized): log in again or check --kubeconfig, --context and --user"},
		"user error":       {fmt.Errorf("context: %w", Userf("pod x not found in namespace y")), "pod x not found in namespace y"},
		"multi-line":       {errors.New("first line\n  second line\r\nthird"), "first line; second line; third"},
		"not found passes": {apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "x"), `pods "x" not found`},
	} {
		assert.Equal(t, tc.want, Message(tc.err), name)
	}
	assert.NoError(t, Humanize(nil, ""))
	plain := errors.New("plain")
	assert.Same(t, plain, Humanize(plain, "h"), "errors without a sentence pass through")
}

func flags(t *testing.T, args ...string) *Flags {
	t.Helper()
	f := NewFlags()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.AddFlags(fs)
	require.NoError(t, fs.Parse(args))
	return f
}

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- {name: c1, cluster: {server: "https://127.0.0.1:1"}}
contexts:
- {name: dev, context: {cluster: c1, user: u1, namespace: shop}}
- {name: prod, context: {cluster: c1, user: u1}}
current-context: dev
users:
- {name: u1, user: {token: t}}
`

func TestConnectConfigErrors(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "config")
	require.NoError(t, os.WriteFile(kc, []byte(kubeconfig), 0o600))
	ctx := context.Background()

	_, err := flags(t, "--kubeconfig", filepath.Join(dir, "missing")).Connect(ctx)
	assert.EqualError(t, err, "kubeconfig "+filepath.Join(dir, "missing")+" does not exist: check --kubeconfig (or unset it to use $KUBECONFIG or ~/.kube/config)")

	_, err = flags(t, "--kubeconfig", kc, "--context", "staging").Connect(ctx)
	assert.EqualError(t, err, `context "staging" is not in the kubeconfig `+kc+` (it has dev, prod): check --context`)

	_, err = flags(t, "--kubeconfig", kc, "--cluster", "c9").Connect(ctx)
	assert.EqualError(t, err, `cluster "c9" is not in the kubeconfig `+kc+` (it has c1): check --cluster`)

	_, err = flags(t, "--kubeconfig", kc).Connect(ctx)
	assert.EqualError(t, err, "cannot reach the Kubernetes API server at https://127.0.0.1:1: connection refused (is the cluster running? check --kubeconfig and --context)")

	assert.Equal(t, []string{"dev", "prod"}, flags(t, "--kubeconfig", kc).Contexts())
	assert.Equal(t, "kube-system", flags(t, "--kubeconfig", kc, "-n", "kube-system").NamespaceFlag())
}
