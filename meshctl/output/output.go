// Package output renders meshctl's results in the three formats every
// command accepts with -o: a human table (the default), JSON and YAML. The
// data formats are the same value marshalled, so scripts see exactly what
// the table summarises.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Format is the value of the -o flag.
type Format string

// The formats of -o.
const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// Formats lists the -o values, for flag help and shell completion.
func Formats() []string { return []string{string(Table), string(JSON), string(YAML)} }

// ParseFormat validates an -o value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case Table, JSON, YAML:
		return f, nil
	case "":
		return Table, nil
	}
	return "", fmt.Errorf("unknown output format %q (want %s)", s, strings.Join(Formats(), ", "))
}

// Tabular is a result with a human rendering; its JSON encoding is the
// machine one.
type Tabular interface {
	WriteTable(w io.Writer) error
}

// Print renders v in format f.
func Print(w io.Writer, f Format, v Tabular) error {
	switch f {
	case JSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case YAML:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(y)
		return err
	default:
		return v.WriteTable(w)
	}
}

// Rows is a table: a header and rows of cells, aligned in columns like
// kubectl's output.
type Rows struct {
	Header []string
	Rows   [][]string
}

// Add appends a row.
func (t *Rows) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// Write prints the table; an empty table prints only its header.
func (t Rows) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	write := func(cells []string) {
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	write(t.Header)
	for _, r := range t.Rows {
		write(r)
	}
	return tw.Flush()
}

// Dash stands for an empty cell.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
