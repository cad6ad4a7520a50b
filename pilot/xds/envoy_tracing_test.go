package xds

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pilot/generator"
	"github.com/weftmesh/weft/pilot/generator/envoytest"
	"github.com/weftmesh/weft/pilot/model"
)

// TestEnvoyTracingSwitch: a namespace's Telemetry turning tracing off and
// on again at runtime leaves a real Envoy (delta ADS, as the agent
// connects) with the traced outbound listener it had, untouched, and its
// scopes, by which it routes the sampled requests. When that listener
// went away with tracing and came back, its new SRDS watch could miss the
// scopes (in the cluster benchmark it did: every sampled request got a
// 404): whether the SRDS response overtakes the listener is a race this
// test cannot force, so it checks that the listener is never replaced.
func TestEnvoyTracingSwitch(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	h, admin, _ := startEnvoyWithPilot(t, bin, true, func(c *Config) {
		c.Generator.Telemetry.Tracing = &generator.Tracing{CollectorHost: "127.0.0.1", CollectorPort: 4317}
	})
	// Envoy's config dump lists the scopes a scoped-routes config holds
	// (its stats are gauges that a replaced watch leaves standing).
	wantScopes := func(when string) {
		t.Helper()
		waitFor(t, "the traced listener's scopes "+when, func() (bool, string) {
			dump := get(t, admin+"/config_dump?resource=dynamic_scoped_route_configs")
			return strings.Contains(dump, `"name": "`+generator.ListenerTracedOutbound+`"`) &&
				strings.Contains(dump, "outbound|9080||reviews.shop.svc.cluster.local"), dump
		})
	}
	wantScopes("at start")
	tracedListener := func() string {
		t.Helper()
		var dump struct {
			Configs []struct {
				DynamicListeners []struct {
					Name        string          `json:"name"`
					ActiveState json.RawMessage `json:"active_state"`
				} `json:"dynamic_listeners"`
			} `json:"configs"`
		}
		if err := json.Unmarshal([]byte(get(t, admin+"/config_dump")), &dump); err != nil {
			t.Fatal(err)
		}
		for _, c := range dump.Configs {
			for _, l := range c.DynamicListeners {
				if l.Name == generator.ListenerTracedOutbound {
					return string(l.ActiveState) // version and last update
				}
			}
		}
		t.Fatalf("no active %s listener", generator.ListenerTracedOutbound)
		return ""
	}
	first := tracedListener()
	for gen, disabled := range []bool{true, false, true, false} {
		h.store.UpsertTelemetry(&model.TelemetryPolicy{Namespace: ns, Name: "default", Generation: int64(gen + 1),
			Settings: model.TelemetrySettings{TracingDisabled: model.Some(disabled)}})
		h.srv.Trigger()
		// In force when the route tables have (or lost) their detours.
		waitFor(t, "tracing "+map[bool]string{true: "off", false: "on"}[disabled], func() (bool, string) {
			dump := get(t, admin+"/config_dump?resource=dynamic_route_configs")
			return strings.Contains(dump, "weft.trace-random") != disabled, dump
		})
	}
	wantScopes("after tracing went off and on twice")
	if now := tracedListener(); now != first {
		t.Errorf("the traced outbound listener was replaced while tracing switched:\nbefore %s\nafter  %s", first, now)
	}
}

// TestEnvoyTracedListenerAcrossPilots: the traced outbound listener
// changes when pilot does, not while it runs: an upgrade to a pilot that
// generates it differently replaces it, and a pilot without a collector
// removes it until one with a collector brings it back. A real Envoy on
// delta ADS, reconnecting to each new pilot as a sidecar does, must hold
// the listener's scopes after each step; without them every sampled
// request gets 404.
func TestEnvoyTracedListenerAcrossPilots(t *testing.T) {
	bin, ok := envoytest.Binary()
	if !ok {
		t.Skip("no envoy binary (make envoy)")
	}
	collector := func(c *Config) {
		c.Generator.Telemetry.Tracing = &generator.Tracing{CollectorHost: "127.0.0.1", CollectorPort: 4317}
	}
	h, admin, _ := startEnvoyWithPilot(t, bin, true, collector)
	// Envoy keys an SRDS subscription by its config source alone, so
	// every traced listener shares the one the first created, named after
	// that listener's scoped routes: that one must hold the scopes.
	const reviews = "outbound|9080||reviews.shop.svc.cluster.local"
	wantScopes := func(when string) {
		t.Helper()
		waitFor(t, "the traced listener's scopes "+when, func() (bool, string) {
			got := scopedRoutes(t, admin)
			return len(got) == 1 && slices.Contains(got[generator.ListenerTracedOutbound], reviews), fmt.Sprint(got)
		})
	}
	wantScopes("at start")

	steps := []struct {
		name   string
		config func(*Config)
		before func(*Server)
		traced bool // whether the new pilot has a traced listener
	}{
		{"a new pilot changes the traced listener's connection manager", collector,
			editTracedHCM(t, func(m *hcmv3.HttpConnectionManager) { m.StatPrefix += "_v2" }), true},
		{"a new pilot also renames its scoped routes", collector,
			editTracedHCM(t, func(m *hcmv3.HttpConnectionManager) { m.GetScopedRoutes().Name += "-v2" }), true},
		{"a pilot without a collector", nil, nil, false},
		{"a pilot with a collector again", collector, nil, true},
	}
	for _, st := range steps {
		before := activeListener(t, admin, generator.ListenerTracedOutbound)
		h.restart(func(c *Config) {
			c.Generator.Telemetry.Tracing = nil
			if st.config != nil {
				st.config(c)
			}
		}, st.before)
		waitFor(t, st.name+": Envoy takes the new listener", func() (bool, string) {
			now := activeListener(t, admin, generator.ListenerTracedOutbound)
			return now != before && (now != "") == st.traced, now
		})
		if st.traced {
			wantScopes("after " + st.name)
		}
	}
}

// scopedRoutes lists the scoped-routes configs in Envoy's config dump
// with the route tables their scopes name.
func scopedRoutes(t *testing.T, admin string) map[string][]string {
	t.Helper()
	// With ?resource=, each config is one DynamicScopedRouteConfigs.
	var dump struct {
		Configs []struct {
			Name   string `json:"name"`
			Scopes []struct {
				RouteConfigurationName string `json:"route_configuration_name"`
			} `json:"scoped_route_configs"`
		} `json:"configs"`
	}
	raw := get(t, admin+"/config_dump?resource=dynamic_scoped_route_configs")
	if err := json.Unmarshal([]byte(raw), &dump); err != nil {
		t.Fatalf("config dump: %v\n%s", err, raw)
	}
	out := map[string][]string{}
	for _, c := range dump.Configs {
		for _, s := range c.Scopes {
			out[c.Name] = append(out[c.Name], s.RouteConfigurationName)
		}
	}
	return out
}

// activeListener is the named listener as Envoy runs it ("" if none).
func activeListener(t *testing.T, admin, name string) string {
	t.Helper()
	raw := get(t, admin+"/config_dump?resource=dynamic_listeners")
	var dump struct {
		Configs []struct {
			Name        string `json:"name"`
			ActiveState struct {
				Listener json.RawMessage `json:"listener"`
			} `json:"active_state"`
		} `json:"configs"`
	}
	if err := json.Unmarshal([]byte(raw), &dump); err != nil {
		t.Fatalf("config dump: %v\n%s", err, raw)
	}
	for _, c := range dump.Configs {
		if c.Name == name {
			return string(c.ActiveState.Listener)
		}
	}
	return ""
}

// editTracedHCM returns a hook for a new Server that edits the traced
// outbound listener's connection manager as pilot builds it.
func editTracedHCM(t *testing.T, change func(*hcmv3.HttpConnectionManager)) func(*Server) {
	hook := func(r *generator.Resources) {
		for _, l := range r.Listeners {
			if l.GetName() != generator.ListenerTracedOutbound {
				continue
			}
			f := l.GetFilterChains()[0].GetFilters()[0]
			var m hcmv3.HttpConnectionManager
			if err := f.GetTypedConfig().UnmarshalTo(&m); err != nil {
				t.Errorf("traced listener's HCM: %v", err)
				return
			}
			change(&m)
			a, err := anypb.New(&m)
			if err != nil {
				t.Errorf("traced listener's HCM: %v", err)
				return
			}
			f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		}
	}
	return func(s *Server) { s.testHookOutbound.Store(&hook) }
}
