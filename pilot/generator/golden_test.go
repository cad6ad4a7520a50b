package generator_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pilot/generator"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenJSON renders resources as indented JSON with sorted keys.
// protojson's own output is deliberately unstable in whitespace, so it is
// re-encoded through encoding/json.
func goldenJSON(t *testing.T, res *generator.Resources) []byte {
	t.Helper()
	section := func(msgs []proto.Message) []json.RawMessage {
		out := []json.RawMessage{}
		for _, m := range msgs {
			b, err := protojson.Marshal(m)
			if err != nil {
				t.Fatalf("marshal %T: %v", m, err)
			}
			out = append(out, b)
		}
		return out
	}
	doc := map[string][]json.RawMessage{
		"listeners": section(toMessages(res.Listeners)),
		"clusters":  section(toMessages(res.Clusters)),
		"routes":    section(toMessages(res.Routes)),
		"endpoints": section(toMessages(res.Endpoints)),
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func toMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// checkGolden compares got with testdata/<name>.json, or rewrites it with
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from golden file (-want +got; run with -update if intended):\n%s", path, diff)
	}
}
