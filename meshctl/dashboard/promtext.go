package dashboard

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Sample is one sample line of the Prometheus text exposition format
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseText reads the samples of the metrics keep selects from a text
// exposition (what Envoy serves on /stats/prometheus). Other lines are
// skipped without being parsed, so a full Envoy scrape (thousands of
// lines) costs little; a selected line that does not parse is an error
// naming its line number.
func ParseText(text []byte, keep func(name string) bool) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ \t")
		if end <= 0 {
			return nil, fmt.Errorf("stats line %d: no value: %q", n, cut(line))
		}
		if !keep(line[:end]) {
			continue
		}
		s, err := parseSample(line, end)
		if err != nil {
			return nil, fmt.Errorf("stats line %d: %w: %q", n, err, cut(line))
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read stats: %w", err)
	}
	return out, nil
}

func cut(line string) string {
	if len(line) > 120 {
		return line[:120] + "…"
	}
	return line
}

func parseSample(line string, end int) (Sample, error) {
	s := Sample{Name: line[:end], Labels: map[string]string{}}
	rest := line[end:]
	if rest[0] == '{' {
		var err error
		rest, err = parseLabels(rest[1:], s.Labels)
		if err != nil {
			return s, err
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || len(fields) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := parseValue(fields[0])
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// parseLabels reads name="value" pairs up to the closing brace and
// returns what follows it.
func parseLabels(s string, into map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return "", fmt.Errorf("unterminated labels")
		}
		if s[0] == '}' {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", fmt.Errorf("bad label")
		}
		name := strings.TrimSpace(s[:eq])
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] != '\\' {
				val.WriteByte(s[i])
				continue
			}
			if i++; i == len(s) {
				break
			}
			switch s[i] {
			case 'n':
				val.WriteByte('\n')
			default: // \\ and \"
				val.WriteByte(s[i])
			}
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated label value of %s", name)
		}
		into[name] = val.String()
		s = s[i+1:]
	}
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf", "Inf":
		return inf, nil
	case "-Inf":
		return -inf, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}
