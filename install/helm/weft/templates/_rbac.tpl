{{/*
weft.rbac renders a component's generated roles and binds each to the
component's ServiceAccount (weft-system/<name>). The roles come from
files/rbac/<name>.yaml, which `make rbac` writes with controller-gen from
the +kubebuilder:rbac markers next to the code that needs each permission;
this chart adds only labels, bindings and, for hooks, annotations.

  (dict "root" $ "name" "weft-pilot")
  (dict "root" $ "name" "weft-uninstall" "roles" (list "weft-uninstall" "weft-uninstall-dns") "annotations" (dict ...))

roles names the roles of the file to render (default: the one named like
the component, as a ClusterRole and/or a Role per namespace); a file's
other roles (e.g. weft-cni-node-repair) are rendered only when named.
*/}}
{{- define "weft.rbac" -}}
{{- $name := .name -}}
{{- $roles := get . "roles" | default (list $name) -}}
{{- $file := printf "files/rbac/%s.yaml" $name -}}
{{- $text := .root.Files.Get $file -}}
{{- if not $text -}}
{{- fail (printf "%s is missing: run make rbac" $file) -}}
{{- end -}}
{{- $labels := dict "app.kubernetes.io/part-of" "weft" "app.kubernetes.io/name" $name -}}
{{- $annotations := get . "annotations" -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" $text -1 }}
{{- $role := fromYaml $doc -}}
{{- if and (get $role "kind") (has (get $role.metadata "name") $roles) }}
{{- $meta := $role.metadata -}}
{{- $_ := set $meta "labels" $labels -}}
{{- with $annotations }}{{ $_ := set $meta "annotations" . }}{{ end }}
---
{{ toYaml $role }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ $role.kind }}Binding
metadata:
  name: {{ $meta.name }}
  {{- with get $meta "namespace" }}
  namespace: {{ . }}
  {{- end }}
  labels: {{ toJson $labels }}
  {{- with $annotations }}
  annotations: {{ toJson . }}
  {{- end }}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: {{ $role.kind }}, name: {{ $meta.name }}}
subjects:
- {kind: ServiceAccount, name: {{ $name }}, namespace: weft-system}
{{- end }}
{{- end }}
{{- end -}}
