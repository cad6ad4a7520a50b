package injector

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the current Mutate")

// testConfig is the configuration every golden file is rendered with.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.ImagePullPolicy = corev1.PullIfNotPresent
	return cfg
}

// testOTLPEndpoint is the collector of the otlp* cases.
const testOTLPEndpoint = "http://weft-otel-collector.weft-system.svc.cluster.local:4317"

// caseConfig is testConfig, with a collector for cases named otlp*.
func caseConfig(name string) Config {
	cfg := testConfig()
	if strings.HasPrefix(name, "otlp") {
		cfg.OTLPEndpoint = testOTLPEndpoint
	}
	return cfg
}

// readCase reads testdata/in/<name>.yaml: a Namespace and a Pod.
func readCase(t *testing.T, path string) (*corev1.Namespace, *corev1.Pod) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var ns *corev1.Namespace
	var pod *corev1.Pod
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var meta struct{ Kind string }
		require.NoError(t, yaml.Unmarshal([]byte(doc), &meta))
		switch meta.Kind {
		case "Namespace":
			ns = &corev1.Namespace{}
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), ns))
		case "Pod":
			pod = &corev1.Pod{}
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), pod))
		default:
			t.Fatalf("%s: unexpected kind %q", path, meta.Kind)
		}
	}
	require.NotNil(t, pod, "%s has no Pod", path)
	return ns, pod
}

// renderResult is the golden form: the decision (or the error) as a
// comment, then the pod the webhook admits.
func renderResult(t *testing.T, res Result, err error) []byte {
	t.Helper()
	if err != nil {
		return []byte("# error: " + err.Error() + "\n")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# inject=%t reason=%s: %s\n", res.Decision.Inject, res.Decision.Reason, res.Decision.Detail)
	out, err := yaml.Marshal(res.Pod)
	require.NoError(t, err)
	b.Write(out)
	return b.Bytes()
}

func TestMutateGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/in/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, ins)
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			ns, pod := readCase(t, in)
			orig := pod.DeepCopy()
			cfg := caseConfig(name)
			res, err := Mutate(pod, ns, cfg)
			got := renderResult(t, res, err)
			assert.Empty(t, cmp.Diff(orig, pod), "Mutate modified its input")

			golden := filepath.Join("testdata", "out", name+".yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./injector -run TestMutateGolden -update")
			assert.Empty(t, cmp.Diff(string(want), string(got)), "golden %s differs; rerun with -update if intended", golden)

			if res.Status != nil {
				assertInjectedOnce(t, ns, res, cfg)
			}
		})
	}
}

// assertInjectedOnce proves idempotency (reinvocationPolicy: IfNeeded calls
// the injector again with its own output) and that the annotation parses
// back to what Mutate reported.
func assertInjectedOnce(t *testing.T, ns *corev1.Namespace, res Result, cfg Config) {
	t.Helper()
	again, err := Mutate(res.Pod, ns, cfg)
	require.NoError(t, err)
	assert.Equal(t, ReasonAlreadyInjected, again.Decision.Reason)
	assert.Empty(t, cmp.Diff(res.Pod, again.Pod), "second Mutate changed the pod")

	st, err := annotation.ParseStatus(res.Pod.Annotations[annotation.StatusAnnotation])
	require.NoError(t, err)
	assert.Equal(t, *res.Status, st)

	first := res.Pod.Spec.InitContainers[0]
	assert.Equal(t, SidecarContainer, first.Name, "sidecar must run first")
	for _, e := range first.Env {
		if e.Name == annotation.AppProbersEnv {
			_, err := annotation.ParseAppProbers(e.Value)
			require.NoError(t, err)
		}
	}
}
