package model_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/weftmesh/weft/api/v1alpha1"
	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

func telemetry(ns, name string, age time.Duration, s model.TelemetrySettings) *model.TelemetryPolicy {
	return &model.TelemetryPolicy{Namespace: ns, Name: name, Created: mt.Epoch.Add(-age), Settings: s}
}

func TestResolveTelemetry(t *testing.T) {
	const root = "weft-system"
	off, on := model.Some(true), model.Some(false)
	for _, tc := range []struct {
		name     string
		policies []*model.TelemetryPolicy
		ns       string
		want     model.TelemetrySettings
	}{
		{name: "none: everything inherits the flags", ns: "shop"},
		{
			name:     "root applies mesh-wide",
			policies: []*model.TelemetryPolicy{telemetry(root, "mesh", 0, model.TelemetrySettings{TracingDisabled: off, SamplingPercent: model.Some(5.0)})},
			ns:       "shop",
			want:     model.TelemetrySettings{TracingDisabled: off, SamplingPercent: model.Some(5.0)},
		},
		{
			name: "namespace beats root field by field, unset fields inherit",
			policies: []*model.TelemetryPolicy{
				telemetry(root, "mesh", 0, model.TelemetrySettings{TracingDisabled: off, SamplingPercent: model.Some(5.0), AccessLogDisabled: off}),
				telemetry("shop", "ns", 0, model.TelemetrySettings{TracingDisabled: on, AccessLogDisabled: on}),
			},
			ns:   "shop",
			want: model.TelemetrySettings{TracingDisabled: on, SamplingPercent: model.Some(5.0), AccessLogDisabled: on},
		},
		{
			name: "another namespace's Telemetry does not apply",
			policies: []*model.TelemetryPolicy{
				telemetry(root, "mesh", 0, model.TelemetrySettings{SamplingPercent: model.Some(5.0)}),
				telemetry("billing", "ns", 0, model.TelemetrySettings{TracingDisabled: off}),
			},
			ns:   "shop",
			want: model.TelemetrySettings{SamplingPercent: model.Some(5.0)},
		},
		{
			name: "zero sampling is a setting, not unset",
			policies: []*model.TelemetryPolicy{
				telemetry(root, "mesh", 0, model.TelemetrySettings{SamplingPercent: model.Some(5.0)}),
				telemetry("shop", "ns", 0, model.TelemetrySettings{SamplingPercent: model.Some(0.0)}),
			},
			ns:   "shop",
			want: model.TelemetrySettings{SamplingPercent: model.Some(0.0)},
		},
		{
			name: "the oldest Telemetry of a namespace wins, whole",
			policies: []*model.TelemetryPolicy{
				telemetry("shop", "new", time.Minute, model.TelemetrySettings{TracingDisabled: off, AccessLogDisabled: on}),
				telemetry("shop", "old", time.Hour, model.TelemetrySettings{SamplingPercent: model.Some(50.0)}),
			},
			ns:   "shop",
			want: model.TelemetrySettings{SamplingPercent: model.Some(50.0)},
		},
		{
			name: "same age: the smaller name wins",
			policies: []*model.TelemetryPolicy{
				telemetry("shop", "b", 0, model.TelemetrySettings{TracingDisabled: off}),
				telemetry("shop", "a", 0, model.TelemetrySettings{TracingDisabled: on}),
			},
			ns:   "shop",
			want: model.TelemetrySettings{TracingDisabled: on},
		},
		{
			name: "metrics: the namespace turns off what the root leaves on",
			policies: []*model.TelemetryPolicy{
				telemetry(root, "mesh", 0, model.TelemetrySettings{MetricsDisabled: on, TracingDisabled: off}),
				telemetry("shop", "ns", 0, model.TelemetrySettings{MetricsDisabled: off}),
			},
			ns:   "shop",
			want: model.TelemetrySettings{MetricsDisabled: off, TracingDisabled: off},
		},
		{
			name: "metrics: the root's setting holds where the namespace leaves it out",
			policies: []*model.TelemetryPolicy{
				telemetry(root, "mesh", 0, model.TelemetrySettings{MetricsDisabled: off}),
				telemetry("shop", "ns", 0, model.TelemetrySettings{AccessLogDisabled: on}),
				telemetry("billing", "ns", 0, model.TelemetrySettings{MetricsDisabled: on}),
			},
			ns:   "shop",
			want: model.TelemetrySettings{MetricsDisabled: off, AccessLogDisabled: on},
		},
		{
			name: "the root namespace itself gets the root Telemetry",
			policies: []*model.TelemetryPolicy{
				telemetry(root, "mesh", 0, model.TelemetrySettings{AccessLogDisabled: on}),
			},
			ns:   root,
			want: model.TelemetrySettings{AccessLogDisabled: on},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, model.ResolveTelemetry(tc.policies, root, tc.ns)); diff != "" {
				t.Errorf("ResolveTelemetry (-want +got):\n%s", diff)
			}
			v := model.NewViewWith(model.StoreConfig{RootNamespace: root}, nil, nil, nil, nil, model.Objects{Telemetry: tc.policies})
			if diff := cmp.Diff(tc.want, v.Telemetry(tc.ns)); diff != "" {
				t.Errorf("View.Telemetry (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTelemetrySettings(t *testing.T) {
	if got := (model.Optional[float64]{}).Or(7); got != 7 {
		t.Errorf("unset Or = %v, want the default", got)
	}
	if got := model.Some(0.0).Or(7); got != 0 {
		t.Errorf("set zero Or = %v, want 0", got)
	}
	for _, tc := range []struct {
		s    model.TelemetrySettings
		want bool
	}{
		{model.TelemetrySettings{}, false},
		{model.TelemetrySettings{AccessLogDisabled: model.Some(false)}, false},
		{model.TelemetrySettings{TracingDisabled: model.Some(true)}, false},
		{model.TelemetrySettings{TracingDisabled: model.Some(true), SamplingPercent: model.Some(5.0)}, false},
		{model.TelemetrySettings{TracingDisabled: model.Some(false)}, true},
		{model.TelemetrySettings{SamplingPercent: model.Some(0.0)}, true},
	} {
		if got := tc.s.SetsTracing(); got != tc.want {
			t.Errorf("%+v.SetsTracing() = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestTelemetryFromK8s(t *testing.T) {
	created := metav1.NewTime(mt.Epoch)
	tel := &v1alpha1.Telemetry{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default", Generation: 3, CreationTimestamp: created},
		Spec: v1alpha1.TelemetrySpec{
			Tracing:       &v1alpha1.TracingSpec{Disabled: ptr.To(false), RandomSamplingPercentage: ptr.To(0.5)},
			AccessLogging: &v1alpha1.AccessLoggingSpec{Disabled: ptr.To(true)},
			Metrics:       &v1alpha1.MetricsSpec{Disabled: ptr.To(true)},
		},
	}
	got, err := model.TelemetryFromK8s(tel)
	if err != nil {
		t.Fatal(err)
	}
	want := &model.TelemetryPolicy{Namespace: "shop", Name: "default", Generation: 3, Created: mt.Epoch, Settings: model.TelemetrySettings{
		TracingDisabled: model.Some(false), SamplingPercent: model.Some(0.5), AccessLogDisabled: model.Some(true),
		MetricsDisabled: model.Some(true),
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TelemetryFromK8s (-want +got):\n%s", diff)
	}
	empty, err := model.TelemetryFromK8s(&v1alpha1.Telemetry{})
	if err != nil || empty.Settings != (model.TelemetrySettings{}) {
		t.Errorf("empty spec = %+v, %v; want nothing set", empty, err)
	}
	metricsOn, err := model.TelemetryFromK8s(&v1alpha1.Telemetry{Spec: v1alpha1.TelemetrySpec{Metrics: &v1alpha1.MetricsSpec{Disabled: ptr.To(false)}}})
	if err != nil || metricsOn.Settings != (model.TelemetrySettings{MetricsDisabled: model.Some(false)}) {
		t.Errorf("metrics {disabled: false} = %+v, %v; want MetricsDisabled set to false", metricsOn, err)
	}
	tel.Spec.Tracing.RandomSamplingPercentage = ptr.To(101.0)
	if _, err := model.TelemetryFromK8s(tel); err == nil {
		t.Error("sampling above 100 converted")
	}
}

func TestStoreTelemetryEvents(t *testing.T) {
	st := model.NewStore(model.StoreConfig{RootNamespace: "weft-system"})
	var got []model.Event
	st.Subscribe(func(e model.Event) { got = append(got, e) })
	p := telemetry("shop", "default", 0, model.TelemetrySettings{TracingDisabled: model.Some(true)})
	gen := st.Generation()
	st.UpsertTelemetry(p)
	if st.Generation() == gen || st.View().TelemetryWinner("shop") != p {
		t.Fatal("upsert did not reach the view")
	}
	st.DeleteTelemetry(p.Key())
	if st.View().TelemetryWinner("shop") != nil || st.View().Telemetry("shop") != (model.TelemetrySettings{}) {
		t.Fatal("delete did not reach the view")
	}
	want := []model.Event{{Kind: model.KindTelemetry, Key: p.Key()}, {Kind: model.KindTelemetry, Key: p.Key()}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
