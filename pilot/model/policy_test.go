package model_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pilot/model"
	mt "github.com/weftmesh/weft/pilot/model/modeltest"
)

func TestResolveMTLS(t *testing.T) {
	older := func(p *model.TLSPolicy) *model.TLSPolicy { p.Created = mt.Epoch.Add(-time.Hour); return p }
	app := map[string]string{"app": "reviews"}
	for _, tc := range []struct {
		name     string
		policies []*model.TLSPolicy
		ns       string
		want     model.EffectiveMTLS
	}{
		{name: "no policy is permissive", ns: "shop", want: model.EffectiveMTLS{Mode: model.MTLSPermissive}},
		{
			name:     "mesh",
			policies: []*model.TLSPolicy{mt.Policy("weft-system", "m", nil, model.MTLSStrict, nil)},
			ns:       "shop", want: model.EffectiveMTLS{Mode: model.MTLSStrict},
		},
		{
			name: "namespace beats mesh",
			policies: []*model.TLSPolicy{
				mt.Policy("weft-system", "m", nil, model.MTLSStrict, nil),
				mt.Policy("shop", "n", nil, model.MTLSDisable, nil),
			},
			ns: "shop", want: model.EffectiveMTLS{Mode: model.MTLSDisable},
		},
		{
			name: "workload beats namespace",
			policies: []*model.TLSPolicy{
				mt.Policy("shop", "n", nil, model.MTLSDisable, nil),
				mt.Policy("shop", "w", app, model.MTLSStrict, nil),
			},
			ns: "shop", want: model.EffectiveMTLS{Mode: model.MTLSStrict},
		},
		{
			name: "unset workload mode inherits, ports override",
			policies: []*model.TLSPolicy{
				mt.Policy("weft-system", "m", nil, model.MTLSStrict, nil),
				mt.Policy("shop", "w", app, model.MTLSUnset, map[int32]model.MTLSMode{8080: model.MTLSPermissive, 9090: model.MTLSUnset}),
			},
			ns:   "shop",
			want: model.EffectiveMTLS{Mode: model.MTLSStrict, PortModes: map[int32]model.MTLSMode{8080: model.MTLSPermissive}},
		},
		{
			name: "oldest of a scope wins",
			policies: []*model.TLSPolicy{
				mt.Policy("shop", "new", nil, model.MTLSDisable, nil),
				older(mt.Policy("shop", "old", nil, model.MTLSStrict, nil)),
			},
			ns: "shop", want: model.EffectiveMTLS{Mode: model.MTLSStrict},
		},
		{
			name: "same age: name breaks the tie",
			policies: []*model.TLSPolicy{
				mt.Policy("shop", "b", nil, model.MTLSDisable, nil),
				mt.Policy("shop", "a", nil, model.MTLSStrict, nil),
			},
			ns: "shop", want: model.EffectiveMTLS{Mode: model.MTLSStrict},
		},
		{
			name: "other namespaces and non-matching selectors do not apply",
			policies: []*model.TLSPolicy{
				mt.Policy("other", "n", nil, model.MTLSStrict, nil),
				mt.Policy("shop", "w", map[string]string{"app": "db"}, model.MTLSDisable, nil),
				mt.Policy("weft-system", "w", app, model.MTLSDisable, nil),
			},
			ns: "shop", want: model.EffectiveMTLS{Mode: model.MTLSPermissive},
		},
		{
			name:     "root namespace pods: selector-less policy is mesh scope",
			policies: []*model.TLSPolicy{mt.Policy("weft-system", "m", nil, model.MTLSStrict, nil)},
			ns:       "weft-system", want: model.EffectiveMTLS{Mode: model.MTLSStrict},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := model.ResolveMTLS(tc.policies, "weft-system", tc.ns, app)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestEffectiveForPort(t *testing.T) {
	e := model.EffectiveMTLS{Mode: model.MTLSStrict, PortModes: map[int32]model.MTLSMode{80: model.MTLSDisable}}
	if e.ForPort(80) != model.MTLSDisable || e.ForPort(81) != model.MTLSStrict {
		t.Fatal(e)
	}
}
