//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/weftmesh/weft/pilot/agent"
	"github.com/weftmesh/weft/pilot/caserver"
	"github.com/weftmesh/weft/pilot/telemetry/tracestore"
	corev1 "k8s.io/api/core/v1"
)

// agentStartTrace finds pod's start trace in the store: the newest
// agent.start trace of weft-agent whose root names the pod (the injector
// sets k8s.pod.name from the downward API). It errors until one is there.
func agentStartTrace(ctx context.Context, store traceStore, pod corev1.Pod) ([]tracestore.Span, error) {
	var list tracestore.ListResponse
	params := map[string]string{"name": agent.SpanStart, "service": "weft-agent", "limit": "1000"}
	if _, err := store.get(ctx, "/api/traces", params, &list); err != nil {
		return nil, err
	}
	created := pod.CreationTimestamp.Add(-time.Second) // one-second resolution
	for _, tr := range list.Traces {
		if tr.Start.Before(created) {
			continue // started before the pod existed
		}
		spans, err := store.trace(ctx, tr.TraceID)
		if err != nil {
			return nil, err
		}
		for _, sp := range spans {
			if sp.Name == agent.SpanStart && sp.ParentSpanID == "" && sp.Resource["k8s.pod.name"] == pod.Name {
				return spans, nil
			}
		}
	}
	return nil, fmt.Errorf("no %s trace of pod %s/%s among %d", agent.SpanStart, pod.Namespace, pod.Name, len(list.Traces))
}

// agentStartComplete says what pod's start trace still lacks: a root of
// weft-agent with status OK naming the pod, the CSR, SDS and Envoy spans
// under it, and pilot's ca.sign, a descendant of the root through the gRPC
// call, that signed the pod's identity.
func agentStartComplete(spans []tracestore.Span, pod corev1.Pod) error {
	byID := map[string]tracestore.Span{}
	var root *tracestore.Span
	for i, sp := range spans {
		byID[sp.SpanID] = sp
		if sp.Name == agent.SpanStart && sp.ParentSpanID == "" {
			root = &spans[i]
		}
	}
	switch {
	case root == nil:
		return fmt.Errorf("no root %s yet (%d spans)", agent.SpanStart, len(spans))
	case root.Service != "weft-agent":
		return fmt.Errorf("root of service %q, want weft-agent", root.Service)
	case root.Status.Code != tracestore.StatusOK:
		return fmt.Errorf("root status %s %s", root.Status.Code, root.Status.Message)
	case root.Resource["k8s.namespace.name"] != pod.Namespace || root.Resource["k8s.node.name"] != pod.Spec.NodeName:
		return fmt.Errorf("root resource %v does not name namespace %s, node %s", root.Resource, pod.Namespace, pod.Spec.NodeName)
	}
	for _, want := range []string{agent.SpanSVIDFetch, agent.SpanSDSUpdate, agent.SpanEnvoyStart, agent.SpanEnvoyInit} {
		found := false
		for _, sp := range spans {
			found = found || (sp.Name == want && sp.ParentSpanID == root.SpanID && sp.Service == "weft-agent")
		}
		if !found {
			return fmt.Errorf("no %s span of weft-agent under the root", want)
		}
	}
	wantID := "/ns/" + pod.Namespace + "/sa/" + pod.Spec.ServiceAccountName
	for _, sp := range spans {
		if sp.Name != caserver.SpanSign || sp.Service != "weft-pilot" {
			continue
		}
		if !descends(byID, sp, root.SpanID) {
			return fmt.Errorf("pilot's %s %s is not under the root", sp.Name, sp.SpanID)
		}
		if sp.Attributes[string(caserver.AttrResult)] == caserver.ResultSigned &&
			strings.HasSuffix(sp.Attributes[string(caserver.AttrIdentity)], wantID) && sp.Status.Code == tracestore.StatusOK {
			return nil
		}
	}
	var names []string
	for _, sp := range spans {
		names = append(names, sp.Service+"/"+sp.Name)
	}
	return fmt.Errorf("no %s span of weft-pilot that signed …%s (have %v)", caserver.SpanSign, wantID, names)
}

// descends says whether sp has ancestor in the trace.
func descends(byID map[string]tracestore.Span, sp tracestore.Span, ancestor string) bool {
	for hops := 0; sp.ParentSpanID != "" && hops < len(byID); hops++ {
		if sp.ParentSpanID == ancestor {
			return true
		}
		parent, ok := byID[sp.ParentSpanID]
		if !ok {
			return false
		}
		sp = parent
	}
	return false
}
