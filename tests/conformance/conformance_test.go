//go:build conformance

package conformance

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/gateway-api/conformance"
	meshtests "sigs.k8s.io/gateway-api/conformance/tests/mesh"
	"sigs.k8s.io/gateway-api/conformance/utils/flags"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/yaml"
)

// echoImage is the image the suite's mesh manifests run; with no registry
// it must already be on the nodes (our build, see tests/samples/echo).
const echoImage = "registry.k8s.io/gateway-api/echo-advanced:v1.5.1"

// defaultReport is where the report goes without -report-output (the test
// runs in this directory; .cache is git-ignored).
const defaultReport = "../../.cache/conformance/report.yaml"

// TestMain makes -kubeconfig required: the suite creates and deletes
// namespaces, so it must never fall back to whatever cluster is the
// default. The flag is controller-runtime's (registered again here in
// case that package stops doing it in init).
func TestMain(m *testing.M) {
	ctrlconfig.RegisterFlags(flag.CommandLine)
	flag.Parse()
	if flag.Lookup(ctrlconfig.KubeconfigFlagName).Value.String() == "" {
		fmt.Fprintln(os.Stderr, "conformance: -kubeconfig is required (go test -tags conformance ./tests/conformance/ -args -kubeconfig /abs/path)")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// TestGatewayAPIMeshConformance runs the pinned suite's mesh tests with the
// features Weft claims (options.go) and writes the ConformanceReport.
// The suite's own flags (-run-test, -skip-tests, -report-output,
// -debug, -version, -cleanup-base-resources, …) override the defaults.
func TestGatewayAPIMeshConformance(t *testing.T) {
	log.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))
	ctx := context.Background()
	cfg, err := ctrlconfig.GetConfig()
	require.NoError(t, err, "load the kubeconfig")
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme,
		gatewayv1.Install, gatewayv1beta1.Install, gatewayv1alpha2.Install,
	} {
		require.NoError(t, add(scheme))
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	preflight(ctx, t, cs)

	report, err := filepath.Abs(defaultReport)
	require.NoError(t, err)
	opts := suite.ConformanceOptions{
		ConfigurableOptions: Options("dev", report),
		Client:              cl,
		ClientOptions:       client.Options{Scheme: scheme},
		Clientset:           cs,
		RestConfig:          cfg,
		ManifestFS:          []fs.FS{&conformance.Manifests},
	}
	flags.ApplyAll(&opts.ConfigurableOptions)
	require.NoError(t, opts.Implementation.Validate())
	results := &outcomes{byTest: map[string]string{}}
	opts.Hook = results.record

	s, err := suite.NewConformanceTestSuite(opts)
	require.NoError(t, err, "set up the conformance suite")
	// Registered before Setup, so it runs last: after the parallel tests
	// finished and the suite's own cleanups deleted its namespaces.
	t.Cleanup(func() {
		results.log(t)
		writeReport(t, s, opts.ReportOutputPath)
		if opts.CleanupBaseResources {
			namespacesGone(ctx, t, cs, suite.MeshNamespace, suite.MeshConsumerNamespace)
		}
	})
	s.Setup(t, meshtests.MeshConformanceTests)
	require.NoError(t, s.Run(t, meshtests.MeshConformanceTests))
}

// preflight fails early, with the fix, when Weft is not installed, and
// warns when no node lists the echo image (a cluster with a registry may
// still pull it; ours cannot).
func preflight(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	_, err := cs.AppsV1().Deployments("weft-system").Get(ctx, "weft-pilot", metav1.GetOptions{})
	require.NoError(t, err, "Weft does not look installed (deployment weft-system/weft-pilot): install it first (meshctl install)")
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	require.NoError(t, err, "list nodes")
	with := 0
	for _, n := range nodes.Items {
		if slices.ContainsFunc(n.Status.Images, func(i corev1.ContainerImage) bool { return slices.Contains(i.Names, echoImage) }) {
			with++
		}
	}
	if with < len(nodes.Items) {
		t.Logf("WARNING: %s is listed on %d of %d nodes; build and load ours (go run ./install/images -only echo …; cluster load-images) or the echo pods will not start",
			echoImage, with, len(nodes.Items))
	}
}

// outcomes collects each conformance test's result from the suite's hook
// (parallel tests call it concurrently).
type outcomes struct {
	mu     sync.Mutex
	byTest map[string]string
}

func (o *outcomes) record(t *testing.T, test suite.ConformanceTest, _ *suite.ConformanceTestSuite) {
	res := "PASS"
	switch {
	case t.Failed():
		res = "FAIL"
	case t.Skipped():
		res = "SKIP"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byTest[test.ShortName] = res
}

func (o *outcomes) log(t *testing.T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	counts := map[string]int{}
	for _, name := range slices.Sorted(maps.Keys(o.byTest)) {
		fmt.Fprintf(&b, "  %-4s %s\n", o.byTest[name], name)
		counts[o.byTest[name]]++
	}
	t.Logf("mesh conformance results (%d passed, %d failed, %d skipped):\n%s", counts["PASS"], counts["FAIL"], counts["SKIP"], b.String())
}

func writeReport(t *testing.T, s *suite.ConformanceTestSuite, path string) {
	report, err := s.Report()
	if err != nil {
		t.Errorf("conformance report: %v", err)
		return
	}
	raw, err := yaml.Marshal(report)
	if err != nil {
		t.Errorf("marshal conformance report: %v", err)
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Errorf("create report directory: %v", err)
		return
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Errorf("write conformance report: %v", err)
		return
	}
	t.Logf("conformance report written to %s:\n%s", path, raw)
}

// namespacesGone waits (bounded) until the suite's namespaces are deleted,
// so a run leaves the cluster as it found it.
func namespacesGone(ctx context.Context, t *testing.T, cs kubernetes.Interface, names ...string) {
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			_, err := cs.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
			if err == nil {
				return false, nil
			}
			if !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("the suite's namespaces %v are not gone after the run: %v", names, err)
	}
}
