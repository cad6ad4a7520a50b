//go:build e2e

// Package e2e is Weft's cluster-agnostic end-to-end suite: it takes any
// kubeconfig (the local cluster or kind) and checks what users see.
//
//	go test -tags e2e ./tests/e2e/ -args -kubeconfig .cache/cluster/kubeconfig
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/tests/e2e/framework"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
)

var kubeconfig = flag.String("kubeconfig", "", "kubeconfig of the cluster under test (required)")

// cluster is the cluster under test, loaded once in TestMain.
var cluster *framework.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	c, err := framework.Load(*kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	cluster = c
	os.Exit(m.Run())
}

// clients is the typed client of the cluster under test.
func clients(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	return cluster.Client
}

// newNamespace creates a uniquely named namespace that is deleted (and
// waited for) when the test ends.
func newNamespace(t *testing.T, prefix string, labels map[string]string) string {
	t.Helper()
	name := strings.ToLower(prefix) + "-" + rand.String(5)
	ctx := context.Background()
	if err := cluster.CreateNamespace(ctx, name, labels); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cluster.DeleteNamespace(context.Background(), name, 2*time.Minute); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}
