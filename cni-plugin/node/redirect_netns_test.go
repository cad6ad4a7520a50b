package node

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/api/annotation"
	"github.com/weftmesh/weft/cni-plugin/internal/nstest"
	"github.com/weftmesh/weft/cni-plugin/redirect"
)

// TestRedirectCheckerRun runs the checker as weft-cni-node does (informer,
// real netns inspection, events through the API, Prometheus metrics)
// against two meshed pods: one with rules, one whose sandbox came up
// before weft-redirect was in the conflist.
func TestRedirectCheckerRun(t *testing.T) {
	withRules, without := nstest.NewT(t, "pod"), nstest.NewT(t, "pod")
	st, err := annotation.ParseStatus(testStatus)
	require.NoError(t, err)
	plan, err := redirect.PlanFor(st)
	require.NoError(t, err)
	require.NoError(t, withRules.Do(func(ns.NetNS) error {
		ipt, err := iptables.New()
		if err != nil {
			return err
		}
		return redirect.Apply(ipt, plan)
	}))

	cfg := testConfig(t)
	good, racy := meshedPod("good", "n1"), meshedPod("racy", "n1")
	netns := map[string]string{"good": withRules.Path(), "racy": without.Path()}
	allocate(t, cfg.IPAMDataDir, func(p *corev1.Pod) string { return netns[p.Name] }, good, racy)
	client := fake.NewClientset(good, racy)
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	require.NoError(t, err)
	metrics, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)))
	require.NoError(t, err)
	c := NewRedirectChecker(cfg, RedirectConfig{Enabled: true, HostCNIConfDir: "/etc/cni/net.d",
		Repair: RepairRestart, CheckPeriod: time.Minute}, client, metrics)

	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), testr.New(t)))
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	require.Eventually(t, func() bool {
		_, err := client.CoreV1().Pods("default").Get(ctx, "racy", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 10*time.Second, 50*time.Millisecond, "the pod without rules is restarted")
	require.Eventually(t, func() bool {
		events, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(events.Items) == 1
	}, 10*time.Second, 50*time.Millisecond)
	events, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	e := events.Items[0]
	assert.Equal(t, "racy", e.InvolvedObject.Name)
	assert.Equal(t, corev1.EventTypeWarning, e.Type)
	assert.Equal(t, EventReasonRedirectMissing, e.Reason)
	assert.Contains(t, e.Message, "chain WEFT-IN-REDIRECT, chain WEFT-INBOUND, chain WEFT-OUTPUT, chain WEFT-REDIRECT, "+
		"jump PREROUTING -> WEFT-INBOUND, jump OUTPUT -> WEFT-OUTPUT")
	_, err = client.CoreV1().Pods("default").Get(ctx, "good", metav1.GetOptions{})
	require.NoError(t, err, "the pod with rules stays")

	handler := promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	metric := func(name string) string {
		code, body := get(t, handler, "/metrics")
		require.Equal(t, http.StatusOK, code)
		m := regexp.MustCompile(`(?m)^` + name + `\{[^}]*\} (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			return "absent"
		}
		return m[1]
	}
	assert.Equal(t, "1", metric("weft_cni_node_redirect_missing_total"))
	assert.Equal(t, "1", metric("weft_cni_node_redirect_restarts_total"))
	require.Eventually(t, func() bool { return metric("weft_cni_node_redirect_missing_pods") == "0" },
		10*time.Second, 50*time.Millisecond, "the restarted pod is gone, so nothing is missing now")
}
