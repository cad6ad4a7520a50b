package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/otelcol"
)

// chartConfig is the configuration the chart deploys the collector with.
var chartConfig = filepath.Join("..", "..", "install", "helm", "weft", "files", "otel-collector.yaml")

// TestChartConfigurationIsValid builds the chart's configuration with this
// collector's factories, as `otelcol validate` does: every component it
// names is built in, and every setting is known to it.
func TestChartConfigurationIsValid(t *testing.T) {
	if _, err := os.Stat(chartConfig); err != nil {
		t.Fatalf("chart configuration: %v", err)
	}
	col, err := otelcol.NewCollector(settings([]string{"file:" + chartConfig}))
	if err != nil {
		t.Fatal(err)
	}
	if err := col.DryRun(context.Background()); err != nil {
		t.Fatalf("%s: %v", chartConfig, err)
	}
}

// TestUnknownComponentIsRefused: the check above can fail.
func TestUnknownComponentIsRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	cfg := "receivers: {otlp: {protocols: {grpc: {}}}}\nexporters: {kafka: {}}\n" +
		"service: {pipelines: {traces: {receivers: [otlp], exporters: [kafka]}}}\n"
	if err := os.WriteFile(bad, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	col, err := otelcol.NewCollector(settings([]string{"file:" + bad}))
	if err != nil {
		t.Fatal(err)
	}
	if err := col.DryRun(context.Background()); err == nil {
		t.Fatal("a configuration naming an exporter this collector lacks validated")
	}
}
