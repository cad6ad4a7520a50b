package rbacgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Grant is one permission of one role: a verb on a resource of an API
// group, on one object when Name is set. Comparing sets of grants ignores
// how rules happen to be grouped, which is controller-gen's business.
type Grant struct {
	Namespace string // "" for a ClusterRole
	Role      string
	Group     string
	Resource  string
	Name      string // resourceName; "" for every object
	Verb      string
}

func (g Grant) String() string {
	where := "ClusterRole " + g.Role
	if g.Namespace != "" {
		where = "Role " + g.Namespace + "/" + g.Role
	}
	res := g.Resource
	if g.Group != "" {
		res += "." + g.Group
	}
	if g.Name != "" {
		res += "/" + g.Name
	}
	return fmt.Sprintf("%s: %s %s", where, g.Verb, res)
}

// markerPrefix starts an RBAC marker (controller-tools' rbac.RuleDefinition).
const markerPrefix = "+kubebuilder:rbac:"

// Markers reads the RBAC markers of the component's packages and expands
// them into grants, each with the file:line of its marker. Markers without
// roleName belong to the component's own roles.
func Markers(ctx context.Context, root string, c Component) (map[Grant]string, error) {
	pkgs, err := Packages(ctx, root, c)
	if err != nil {
		return nil, err
	}
	out := map[Grant]string{}
	for _, p := range pkgs {
		for _, f := range p.GoFiles {
			if f == "" {
				continue
			}
			path := filepath.Join(p.Dir, f)
			if err := fileMarkers(path, c.Name, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// fileMarkers adds the grants of the markers in one Go file's line
// comments (where controller-gen finds package-level markers).
func fileMarkers(path, defaultRole string, into map[Grant]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "//")
		if !ok {
			continue
		}
		args, ok := strings.CutPrefix(strings.TrimSpace(text), markerPrefix)
		if !ok {
			continue
		}
		at := fmt.Sprintf("%s:%d", path, line)
		grants, err := ParseMarker(args, defaultRole)
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		for _, g := range grants {
			into[g] = at
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// ParseMarker expands the arguments of one marker (what follows
// "+kubebuilder:rbac:") into grants. It accepts the subset Weft uses —
// groups, resources, resourceNames, verbs, namespace, roleName, with
// ";"-separated lists and "core" or "" for the core group — and rejects
// anything else, non-resource URLs and wildcards included, rather than
// guess what controller-gen would make of it.
func ParseMarker(args, defaultRole string) ([]Grant, error) {
	fields := map[string][]string{}
	for _, kv := range strings.Split(args, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("rbac marker argument %q: want key=value", kv)
		}
		switch k {
		case "groups", "resources", "resourceNames", "verbs", "namespace", "roleName":
		default:
			return nil, fmt.Errorf("rbac marker argument %q: not supported here", k)
		}
		if _, dup := fields[k]; dup {
			return nil, fmt.Errorf("rbac marker: %s given twice", k)
		}
		var list []string
		for _, s := range strings.Split(v, ";") {
			s = strings.Trim(s, `"`)
			if strings.Contains(s, "*") {
				return nil, fmt.Errorf("rbac marker %s=%s: wildcards are not allowed", k, v)
			}
			list = append(list, s)
		}
		fields[k] = list
	}
	one := func(k, def string) (string, error) {
		v, ok := fields[k]
		if !ok {
			return def, nil
		}
		if len(v) != 1 || v[0] == "" {
			return "", fmt.Errorf("rbac marker: %s must be one name", k)
		}
		return v[0], nil
	}
	ns, err := one("namespace", "")
	if err != nil {
		return nil, err
	}
	role, err := one("roleName", defaultRole)
	if err != nil {
		return nil, err
	}
	groups, resources, verbs := fields["groups"], fields["resources"], fields["verbs"]
	if len(groups) == 0 || len(resources) == 0 || len(verbs) == 0 {
		return nil, fmt.Errorf("rbac marker needs groups, resources and verbs")
	}
	names := fields["resourceNames"]
	if len(names) == 0 {
		names = []string{""}
	}
	var out []Grant
	for _, g := range groups {
		if g == "core" {
			g = ""
		}
		for _, r := range resources {
			for _, n := range names {
				for _, v := range verbs {
					if r == "" || v == "" {
						return nil, fmt.Errorf("rbac marker: empty resource or verb")
					}
					out = append(out, Grant{Namespace: ns, Role: role, Group: g, Resource: r, Name: n, Verb: v})
				}
			}
		}
	}
	return out, nil
}

// FileGrants reads a generated RBAC file (ClusterRoles and Roles) into
// grants.
func FileGrants(path string) (map[Grant]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	out := map[Grant]bool{}
	for {
		var role struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		if err := dec.Decode(&role); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
		if role.Kind == "" {
			continue
		}
		if !slices.Contains([]string{"ClusterRole", "Role"}, role.Kind) || (role.Kind == "Role") != (role.Metadata.Namespace != "") {
			return nil, fmt.Errorf("%s: unexpected %s %q in namespace %q", path, role.Kind, role.Metadata.Name, role.Metadata.Namespace)
		}
		for _, r := range role.Rules {
			if len(r.NonResourceURLs) > 0 {
				return nil, fmt.Errorf("%s: %s has non-resource URLs", path, role.Metadata.Name)
			}
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{""}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, n := range names {
						for _, v := range r.Verbs {
							out[Grant{Namespace: role.Metadata.Namespace, Role: role.Metadata.Name, Group: g, Resource: res, Name: n, Verb: v}] = true
						}
					}
				}
			}
		}
	}
}
