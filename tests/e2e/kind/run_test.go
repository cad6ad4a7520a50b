package kind

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/weftmesh/weft/install"
	"sigs.k8s.io/yaml"
)

// fakeTool is a shell script that appends its name and argv (tab-separated)
// to $FAKE_LOG, saves its stdin to $FAKE_STDIN on `create`, and fails when
// its first two arguments equal $FAKE_FAIL (e.g. "load image-archive").
const fakeTool = `#!/bin/sh
{ printf '%s' "$(basename "$0")"; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >> "$FAKE_LOG"
if [ "$1" = create ]; then cat > "$FAKE_STDIN"; fi
if [ -n "$FAKE_FAIL" ] && [ "$1 $2" = "$FAKE_FAIL" ]; then echo "fake failure" >&2; exit 3; fi
exit 0
`

type fakeEnv struct {
	bin, images, log, stdin string
}

// newFakeEnv puts fake kind and go executables first on PATH and an images
// directory with two tarballs (dev and next tags) and a build key that must
// not be loaded.
func newFakeEnv(t *testing.T) fakeEnv {
	t.Helper()
	dir := t.TempDir()
	e := fakeEnv{bin: filepath.Join(dir, "bin"), images: filepath.Join(dir, "images"),
		log: filepath.Join(dir, "calls.log"), stdin: filepath.Join(dir, "stdin")}
	require.NoError(t, os.MkdirAll(e.bin, 0o755))
	require.NoError(t, os.MkdirAll(e.images, 0o755))
	for _, tool := range []string{"kind", "go"} {
		require.NoError(t, os.WriteFile(filepath.Join(e.bin, tool), []byte(fakeTool), 0o755))
	}
	for _, f := range []string{"pilot.tar", "pilot.tar.key", "pilot_next.tar", "curl.tar"} {
		require.NoError(t, os.WriteFile(filepath.Join(e.images, f), []byte("x"), 0o644))
	}
	t.Setenv("PATH", e.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_LOG", e.log)
	t.Setenv("FAKE_STDIN", e.stdin)
	t.Setenv("FAKE_FAIL", "")
	return e
}

func (e fakeEnv) options() Options {
	return Options{Name: "weft-e2e", Kind: "kind", Go: "go", ImagesDir: e.images,
		Kubeconfig: "/tmp/kind/kubeconfig", ValuesFile: "/tmp/kind/values.yaml"}
}

// calls reads the fake tools' log, with the install step's marker lines.
func (e fakeEnv) calls(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(e.log)
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// recordInstall stands in for the in-process install: it logs a marker
// line in the same log, so the order of all steps is visible.
func (e fakeEnv) recordInstall(t *testing.T, got *InstallSpec) func(context.Context, InstallSpec, io.Writer) error {
	return func(_ context.Context, spec InstallSpec, _ io.Writer) error {
		*got = spec
		f, err := os.OpenFile(e.log, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString("<install>\n")
		return err
	}
}

func TestRunDrivesKindAndLoadsEveryTarball(t *testing.T) {
	e := newFakeEnv(t)
	steps, err := Steps(e.options())
	require.NoError(t, err)
	var spec InstallSpec
	var out, errOut bytes.Buffer
	r := Runner{Out: &out, Err: &errOut, Install: e.recordInstall(t, &spec)}
	require.NoError(t, r.Run(context.Background(), steps), errOut.String())

	img := func(name string) string { return filepath.Join(e.images, name) }
	assert.Equal(t, []string{
		"kind\tcreate\tcluster\t--config\t-\t--name\tweft-e2e\t--kubeconfig\t/tmp/kind/kubeconfig",
		"kind\tload\timage-archive\t" + img("curl.tar") + "\t--name\tweft-e2e",
		"kind\tload\timage-archive\t" + img("pilot.tar") + "\t--name\tweft-e2e",
		"kind\tload\timage-archive\t" + img("pilot_next.tar") + "\t--name\tweft-e2e",
		"<install>",
		"go\ttest\t-count=1\t-tags\te2e\t-timeout\t30m\t-v\t./tests/e2e/\t-args\t-kubeconfig\t/tmp/kind/kubeconfig\t-install-values\t/tmp/kind/values.yaml",
		"go\ttest\t-count=1\t-tags\te2e\t-timeout\t10m\t-v\t-run\t^TestMeshctlUninstallReinstall$\t./tests/e2e/\t-args\t-kubeconfig\t/tmp/kind/kubeconfig\t-meshctl-lifecycle\t-meshctl-values\t/tmp/kind/values.yaml",
		"kind\tdelete\tcluster\t--name\tweft-e2e\t--kubeconfig\t/tmp/kind/kubeconfig",
	}, e.calls(t))

	stdin, err := os.ReadFile(e.stdin)
	require.NoError(t, err)
	assert.Equal(t, string(Config), string(stdin), "kind reads the embedded config from stdin")
	assert.Equal(t, Values("weft-e2e"), spec.Values)
	assert.Contains(t, out.String(), "==> install Weft (chart, kind values): done")
}

func TestRunDeletesTheClusterAfterAFailure(t *testing.T) {
	e := newFakeEnv(t)
	t.Setenv("FAKE_FAIL", "load image-archive")
	steps, err := Steps(e.options())
	require.NoError(t, err)
	var spec InstallSpec
	var errOut bytes.Buffer
	err = Runner{Out: io.Discard, Err: &errOut, Install: e.recordInstall(t, &spec)}.Run(context.Background(), steps)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "load "+filepath.Join(e.images, "curl.tar"))
	assert.Contains(t, errOut.String(), "fake failure", "the tool's stderr is passed through")
	calls := e.calls(t)
	require.Len(t, calls, 3, "create, the failed load, delete: %q", calls)
	assert.True(t, strings.HasPrefix(calls[0], "kind\tcreate"))
	assert.True(t, strings.HasPrefix(calls[2], "kind\tdelete\tcluster"))
	assert.Empty(t, spec.ValuesFile, "nothing installed after a failure")
}

func TestRunDeletesNoClusterItDidNotCreate(t *testing.T) {
	e := newFakeEnv(t)
	t.Setenv("FAKE_FAIL", "create cluster")
	steps, err := Steps(e.options())
	require.NoError(t, err)
	err = Runner{Out: io.Discard, Err: io.Discard}.Run(context.Background(), steps)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "create kind cluster weft-e2e")
	calls := e.calls(t)
	require.Len(t, calls, 1, "only the failed create (an existing cluster stays): %q", calls)
}

func TestRunKeepsTheClusterWithKeep(t *testing.T) {
	e := newFakeEnv(t)
	o := e.options()
	o.Keep = true
	steps, err := Steps(o)
	require.NoError(t, err)
	var spec InstallSpec
	require.NoError(t, Runner{Out: io.Discard, Err: io.Discard, Install: e.recordInstall(t, &spec)}.Run(context.Background(), steps))
	for _, c := range e.calls(t) {
		assert.NotContains(t, c, "delete")
	}
}

func TestStepsNeedImages(t *testing.T) {
	o := testOptions()
	o.ImagesDir = t.TempDir()
	_, err := Steps(o)
	assert.ErrorContains(t, err, "run `make images`")
}

func TestInstallWeftWritesTheValuesFirst(t *testing.T) {
	dir := t.TempDir()
	spec := InstallSpec{Kubeconfig: filepath.Join(dir, "missing-kubeconfig"), ValuesFile: filepath.Join(dir, "sub", "values.yaml"), Values: Values("w")}
	err := InstallWeft(context.Background(), spec, io.Discard)
	assert.ErrorContains(t, err, "missing-kubeconfig", "no cluster here: fails at the kubeconfig")
	data, err := os.ReadFile(spec.ValuesFile)
	require.NoError(t, err)
	got, err := install.ReadValues(data)
	require.NoError(t, err, "the suite reads the file with install.ReadValues (meshctl -f)")
	assert.Equal(t, spec.Values, got)
	var raw map[string]any
	require.NoError(t, yaml.Unmarshal(data, &raw))
	assert.Equal(t, "w-control-plane", raw["apiServerHost"])
}
