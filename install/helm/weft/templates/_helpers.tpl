{{/*
weft.image is the reference of one of Weft's images: (list $ "pilot").
*/}}
{{- define "weft.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/%s:%s" $root.Values.registry (index . 1) $root.Values.tag -}}
{{- end -}}

{{/*
weft.labels are the labels of every object of a component: (list "weft-pilot").
*/}}
{{- define "weft.labels" -}}
{app.kubernetes.io/part-of: weft, app.kubernetes.io/name: {{ . }}}
{{- end -}}

{{/*
weft.apiServerEnv are the env entries that point node agents and the
control plane straight at the API server (apiServerHost/apiServerPort):
they start before any Service VIP works, as Cilium's agents do. Empty when
apiServerHost is unset.
*/}}
{{- define "weft.apiServerEnv" -}}
{{- if .Values.apiServerHost -}}
- {name: KUBERNETES_SERVICE_HOST, value: {{ .Values.apiServerHost | quote }}}
- {name: KUBERNETES_SERVICE_PORT, value: {{ .Values.apiServerPort | quote }}}
{{- end -}}
{{- end -}}

{{/*
weft.collectorAddress is host:port of the chart's OpenTelemetry Collector
(OTLP/gRPC), weft-otel-collector in weft-system.
*/}}
{{- define "weft.collectorAddress" -}}
{{- printf "weft-otel-collector.weft-system.svc.%s:4317" .Values.clusterDomain -}}
{{- end -}}

{{/*
weft.otlpEndpoint is where components push telemetry: telemetry.otlpEndpoint,
else the chart's collector when telemetry.collector.enabled, else nothing.
*/}}
{{- define "weft.otlpEndpoint" -}}
{{- if .Values.telemetry.otlpEndpoint -}}
{{- .Values.telemetry.otlpEndpoint -}}
{{- else if .Values.telemetry.collector.enabled -}}
{{- printf "http://%s" (include "weft.collectorAddress" .) -}}
{{- end -}}
{{- end -}}

{{/*
weft.telemetryEnv is weft.otlpEndpoint as the standard OpenTelemetry
variable, which pilot/telemetry reads. Empty when there is none.
*/}}
{{- define "weft.telemetryEnv" -}}
{{- with include "weft.otlpEndpoint" . -}}
- {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ . | quote }}}
{{- end -}}
{{- end -}}

{{/*
weft.hostNetworkDNS is the dnsPolicy of the host-network node agents: with
the chart's collector as their OTLP endpoint they must resolve its Service
name, which the node's resolver does not know, so they use cluster DNS
(ClusterFirstWithHostNet); otherwise the node's DNS (the default). Their
API server address never needs DNS.
*/}}
{{- define "weft.hostNetworkDNS" -}}
{{- if and .Values.telemetry.collector.enabled (not .Values.telemetry.otlpEndpoint) -}}
dnsPolicy: ClusterFirstWithHostNet
{{- end -}}
{{- end -}}

{{/*
weft.resources renders a container's requests and limits from a
{requests: {cpu, memory}, limits: {cpu, memory}} value, leaving out empty
quantities (an empty string means "not set").
*/}}
{{- define "weft.resources" -}}
{{- $out := dict -}}
{{- range $kind := list "requests" "limits" -}}
{{- $set := dict -}}
{{- range $name, $q := index $ $kind -}}
{{- if $q -}}{{- $_ := set $set $name $q -}}{{- end -}}
{{- end -}}
{{- if $set -}}{{- $_ := set $out $kind $set -}}{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
weft.antiAffinity spreads a component's replicas over nodes when it can
(preferred, so a one-node cluster still schedules them): (list "weft-pilot").
*/}}
{{- define "weft.antiAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 100
    podAffinityTerm:
      topologyKey: kubernetes.io/hostname
      labelSelector: {matchLabels: {app.kubernetes.io/name: {{ . }}}}
{{- end -}}
