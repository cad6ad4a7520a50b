package install

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
)

// schemaViolation is one line of Helm's schema error:
// "- at '/pilot/workloadCertTTL': '0s' does not match pattern '^…$'".
var schemaViolation = regexp.MustCompile(`^(\s*- at '([^']*)': )(.*?)( does not match pattern '.*')?$`)

// explainSchemaError rewrites Helm's schema violations with the
// description the schema gives the value, so a user reads "'0s' is not a
// positive Go duration such as 24h" rather than a regular expression.
func explainSchemaError(ch *chart.Chart, err error) error {
	var schema map[string]any
	if ch.Schema == nil || json.Unmarshal(ch.Schema, &schema) != nil {
		return err
	}
	lines := strings.Split(err.Error(), "\n")
	for i, line := range lines {
		m := schemaViolation.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		desc := schemaDescription(schema, m[2])
		switch {
		case desc == "":
		case m[4] != "": // a pattern: say what it means instead
			lines[i] = m[1] + m[3] + " is not " + desc
		default:
			lines[i] = line + " (" + desc + ")"
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// schemaDescription finds the description of the value at a JSON pointer, looking
// through properties and local $refs.
func schemaDescription(schema map[string]any, pointer string) string {
	node := schema
	for _, seg := range strings.Split(strings.Trim(pointer, "/"), "/") {
		if seg == "" {
			continue
		}
		props, _ := resolve(schema, node)["properties"].(map[string]any)
		next, ok := props[seg].(map[string]any)
		if !ok {
			// An array element ("/telemetry/accessLog/namespaces/0").
			if next, ok = resolve(schema, node)["items"].(map[string]any); !ok {
				return ""
			}
		}
		node = next
	}
	if d, ok := node["description"].(string); ok {
		return d
	}
	d, _ := resolve(schema, node)["description"].(string)
	return d
}

// resolve follows a "#/definitions/x" $ref.
func resolve(schema, node map[string]any) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	defs, _ := schema["definitions"].(map[string]any)
	if target, ok := defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any); ok {
		return target
	}
	return node
}
