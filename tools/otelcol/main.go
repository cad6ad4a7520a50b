// Command otelcol is the OpenTelemetry Collector of Weft's local cluster and
// demo, built from the collector's core Go modules (v0.165.0, the pinned
// core distribution's components) with only what Weft's pipeline uses: the
// OTLP receiver, the memory_limiter and batch processors, and the debug and
// OTLP exporters. It is started like otelcol-core: `otelcol --config
// file:<path>` (install/helm/weft/files/otel-collector.yaml in the chart).
package main

import (
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// Version is the collector release the modules in go.mod come from.
const Version = "0.165.0"

func main() {
	if err := otelcol.NewCommand(settings(nil)).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "otelcol:", err)
		os.Exit(1)
	}
}

// settings are the collector's: our factories, and configuration from files
// and ${env:...} references. uris, when set, replace the --config flag
// (tests validate the chart's configuration with them).
func settings(uris []string) otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol",
			Description: "OpenTelemetry Collector for Weft (core components)",
			Version:     Version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs:              uris,
				DefaultScheme:     "file",
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
			},
		},
	}
}
