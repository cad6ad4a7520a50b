package gatewayapi_test

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/install/gatewayapi"
)

func TestCRDsArePinnedStandardChannel(t *testing.T) {
	crds, err := gatewayapi.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range crds {
		if !strings.HasPrefix(string(c), "# Copied verbatim from sigs.k8s.io/gateway-api@"+gatewayapi.Version) {
			t.Errorf("CRD without license/provenance header:\n%.200s", c)
		}
		var obj struct {
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(c, &obj); err != nil {
			t.Fatal(err)
		}
		a := obj.Metadata.Annotations
		if a["gateway.networking.k8s.io/bundle-version"] != gatewayapi.Version || a["gateway.networking.k8s.io/channel"] != gatewayapi.Channel {
			t.Errorf("%s: bundle %q channel %q", obj.Metadata.Name, a["gateway.networking.k8s.io/bundle-version"], a["gateway.networking.k8s.io/channel"])
		}
		names = append(names, obj.Metadata.Name)
	}
	want := "grpcroutes.gateway.networking.k8s.io httproutes.gateway.networking.k8s.io referencegrants.gateway.networking.k8s.io"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("CRDs = %s, want %s", got, want)
	}
}
