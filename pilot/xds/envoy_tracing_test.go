package xds

import (
	"encoding/json"
	"strings"
	"testing"

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
