package output

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sample is a result with a table rendering and JSON tags, like every
// meshctl report.
type sample struct {
	Name    string   `json:"name"`
	Ready   bool     `json:"ready"`
	Tags    []string `json:"tags,omitempty"`
	Skipped string   `json:"-"`
}

func (s sample) WriteTable(w io.Writer) error {
	var t Rows
	t.Header = []string{"NAME", "READY", "TAGS"}
	t.Add(s.Name, fmt.Sprint(s.Ready), Dash(""))
	t.Add("a-much-longer-name", "false", "x")
	return t.Write(w)
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": Table, "table": Table, "json": JSON, "JSON": JSON, "yaml": YAML, "Yaml": YAML} {
		got, err := ParseFormat(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"xml", "wide", "yml", " json"} {
		_, err := ParseFormat(bad)
		require.Error(t, err, bad)
		assert.Equal(t, fmt.Sprintf("unknown output format %q (want table, json, yaml)", bad), err.Error())
	}
	assert.Equal(t, []string{"table", "json", "yaml"}, Formats())
}

func TestPrint(t *testing.T) {
	v := sample{Name: "web", Ready: true, Tags: []string{"a", "b"}, Skipped: "never shown"}
	cases := map[Format]string{
		Table: "NAME                 READY   TAGS\n" +
			"web                  true    -\n" +
			"a-much-longer-name   false   x\n",
		JSON: "{\n  \"name\": \"web\",\n  \"ready\": true,\n  \"tags\": [\n    \"a\",\n    \"b\"\n  ]\n}\n",
		YAML: "name: web\nready: true\ntags:\n- a\n- b\n",
	}
	for f, want := range cases {
		var b bytes.Buffer
		require.NoError(t, Print(&b, f, v))
		assert.Equal(t, want, b.String(), "format %s", f)
	}
}

func TestEmptyTablePrintsHeader(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, Rows{Header: []string{"POD", "STATE"}}.Write(&b))
	assert.Equal(t, "POD   STATE\n", b.String())
	assert.Equal(t, "x", Dash("x"))
	assert.Equal(t, "-", Dash(""))
}

// unencodable cannot be marshalled: Print must say so, not panic.
type unencodable struct{ C chan int }

func (unencodable) WriteTable(io.Writer) error { return nil }

func TestPrintEncodeError(t *testing.T) {
	for _, f := range []Format{JSON, YAML} {
		err := Print(io.Discard, f, unencodable{C: make(chan int)})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "encode "+string(f))
	}
}
