// Package envoy reads the parts of a sidecar's Envoy admin /config_dump
// (https://www.envoyproxy.io/docs/envoy/v1.37.0/api-v3/admin/v3/config_dump.proto)
// that meshctl summarises and reasons about. It decodes the JSON into small
// structs of the fields it needs instead of the full protobuf types, so a
// dump that holds extensions meshctl does not know (or a newer Envoy) still
// reads. Field names are Envoy's: the admin API prints proto field names.
package envoy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Short names of the config dump sections (the @type suffix).
const (
	SectionBootstrap = "BootstrapConfigDump"
	SectionListeners = "ListenersConfigDump"
	SectionClusters  = "ClustersConfigDump"
	SectionRoutes    = "RoutesConfigDump"
	SectionEndpoints = "EndpointsConfigDump"
	SectionSecrets   = "SecretsConfigDump"
)

// ConfigDump is a parsed /config_dump (with ?include_eds for endpoints).
type ConfigDump struct {
	Listeners []Listener
	Clusters  []Cluster
	Routes    []RouteConfig
	Endpoints []LoadAssignment
	Secrets   []Secret
	// Sections keeps each section's raw JSON, for -o json.
	Sections map[string]json.RawMessage
}

// Parse decodes a config dump.
func Parse(data []byte) (*ConfigDump, error) {
	var top struct {
		Configs []json.RawMessage `json:"configs"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("decode envoy config dump: %w", err)
	}
	d := &ConfigDump{Sections: map[string]json.RawMessage{}}
	for _, raw := range top.Configs {
		var t struct {
			Type string `json:"@type"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("decode envoy config dump section: %w", err)
		}
		name := t.Type[strings.LastIndexByte(t.Type, '.')+1:]
		d.Sections[name] = raw
		if err := d.decode(name, raw); err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
	}
	return d, nil
}

func (d *ConfigDump) decode(name string, raw json.RawMessage) error {
	switch name {
	case SectionListeners:
		return d.decodeListeners(raw)
	case SectionClusters:
		return d.decodeClusters(raw)
	case SectionRoutes:
		return d.decodeRoutes(raw)
	case SectionEndpoints:
		return d.decodeEndpoints(raw)
	case SectionSecrets:
		return d.decodeSecrets(raw)
	}
	return nil
}

func (d *ConfigDump) decodeListeners(raw json.RawMessage) error {
	var s struct {
		Static []struct {
			Listener Listener `json:"listener"`
		} `json:"static_listeners"`
		Dynamic []struct {
			Name   string `json:"name"`
			Active *struct {
				Listener Listener `json:"listener"`
			} `json:"active_state"`
			Warming *struct {
				Listener Listener `json:"listener"`
			} `json:"warming_state"`
			ErrorState *struct {
				Details string `json:"details"`
			} `json:"error_state"`
		} `json:"dynamic_listeners"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	for _, l := range s.Static {
		l.Listener.State = StateStatic
		d.Listeners = append(d.Listeners, l.Listener)
	}
	for _, l := range s.Dynamic {
		switch {
		case l.Active != nil:
			l.Active.Listener.State = StateActive
			d.Listeners = append(d.Listeners, l.Active.Listener)
		case l.Warming != nil:
			l.Warming.Listener.State = StateWarming
			d.Listeners = append(d.Listeners, l.Warming.Listener)
		case l.ErrorState != nil:
			d.Listeners = append(d.Listeners, Listener{Name: l.Name, State: StateError, Error: l.ErrorState.Details})
		}
	}
	return nil
}

func (d *ConfigDump) decodeClusters(raw json.RawMessage) error {
	type entry struct {
		Cluster Cluster `json:"cluster"`
	}
	var s struct {
		Static  []entry `json:"static_clusters"`
		Active  []entry `json:"dynamic_active_clusters"`
		Warming []entry `json:"dynamic_warming_clusters"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	for _, group := range []struct {
		entries []entry
		state   string
	}{{s.Static, StateStatic}, {s.Active, StateActive}, {s.Warming, StateWarming}} {
		for _, e := range group.entries {
			e.Cluster.State = group.state
			d.Clusters = append(d.Clusters, e.Cluster)
		}
	}
	return nil
}

func (d *ConfigDump) decodeRoutes(raw json.RawMessage) error {
	type entry struct {
		RouteConfig RouteConfig `json:"route_config"`
	}
	var s struct {
		Static  []entry `json:"static_route_configs"`
		Dynamic []entry `json:"dynamic_route_configs"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	for _, e := range append(s.Static, s.Dynamic...) {
		d.Routes = append(d.Routes, e.RouteConfig)
	}
	return nil
}

func (d *ConfigDump) decodeEndpoints(raw json.RawMessage) error {
	type entry struct {
		Config LoadAssignment `json:"endpoint_config"`
	}
	var s struct {
		Static  []entry `json:"static_endpoint_configs"`
		Dynamic []entry `json:"dynamic_endpoint_configs"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	for _, e := range append(s.Static, s.Dynamic...) {
		d.Endpoints = append(d.Endpoints, e.Config)
	}
	return nil
}

func (d *ConfigDump) decodeSecrets(raw json.RawMessage) error {
	var s struct {
		Static []struct {
			Name   string     `json:"name"`
			Secret SecretBody `json:"secret"`
		} `json:"static_secrets"`
		Active  []Secret `json:"dynamic_active_secrets"`
		Warming []Secret `json:"dynamic_warming_secrets"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	for _, sec := range s.Static {
		d.Secrets = append(d.Secrets, Secret{Name: sec.Name, Secret: sec.Secret, State: StateStatic})
	}
	for _, sec := range s.Active {
		sec.State = StateActive
		d.Secrets = append(d.Secrets, sec)
	}
	for _, sec := range s.Warming {
		sec.State = StateWarming
		d.Secrets = append(d.Secrets, sec)
	}
	return nil
}

// States of a resource in Envoy.
const (
	StateStatic  = "STATIC"  // from the bootstrap
	StateActive  = "ACTIVE"  // from xDS, in use
	StateWarming = "WARMING" // from xDS, waiting for its dependencies
	StateError   = "ERROR"   // rejected by Envoy
)

// Listener finds a listener by name.
func (d *ConfigDump) Listener(name string) (Listener, bool) {
	i := slices.IndexFunc(d.Listeners, func(l Listener) bool { return l.Name == name })
	if i < 0 {
		return Listener{}, false
	}
	return d.Listeners[i], true
}

// Cluster finds a cluster by name.
func (d *ConfigDump) Cluster(name string) (Cluster, bool) {
	i := slices.IndexFunc(d.Clusters, func(c Cluster) bool { return c.Name == name })
	if i < 0 {
		return Cluster{}, false
	}
	return d.Clusters[i], true
}

// RouteConfig finds a route configuration by name.
func (d *ConfigDump) RouteConfig(name string) (RouteConfig, bool) {
	i := slices.IndexFunc(d.Routes, func(r RouteConfig) bool { return r.Name == name })
	if i < 0 {
		return RouteConfig{}, false
	}
	return d.Routes[i], true
}

// LoadAssignment finds the endpoints of an EDS service name.
func (d *ConfigDump) LoadAssignment(name string) (LoadAssignment, bool) {
	i := slices.IndexFunc(d.Endpoints, func(la LoadAssignment) bool { return la.ClusterName == name })
	if i < 0 {
		return LoadAssignment{}, false
	}
	return d.Endpoints[i], true
}
