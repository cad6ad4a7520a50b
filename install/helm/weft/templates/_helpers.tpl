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
weft.telemetryEnv is the OTLP collector of telemetry.otlpEndpoint as the
standard OpenTelemetry variable, which pilot/telemetry reads. Empty when
unset.
*/}}
{{- define "weft.telemetryEnv" -}}
{{- with .Values.telemetry.otlpEndpoint -}}
- {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ . | quote }}}
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
