{{/*
The chart renders the manifests of deploy/ (files/ links to them, crds/ to the
generated CRDs), so that `kubectl apply -k deploy/` and the chart install the
same objects; templates only put in the values and the namespaces.
*/}}

{{/* The YAML documents of a file in files/, each parsed; empty ones left out. */}}
{{- define "adroit.docs" -}}
{{- $docs := list -}}
{{- range splitList "\n---\n" (.root.Files.Get .file) -}}
{{- $doc := fromYaml . -}}
{{- if $doc.kind -}}{{- $docs = append $docs $doc -}}{{- end -}}
{{- end -}}
{{- toYaml (dict "docs" $docs) -}}
{{- end -}}

{{/* The settings: deploy/operator.yaml's, merged with .Values.settings; the control
namespace is the release's and the webhook is reached through the chart's Service. */}}
{{- define "adroit.settings" -}}
{{- $base := dict -}}
{{- range (include "adroit.docs" (dict "root" . "file" "files/operator.yaml") | fromYaml).docs -}}
{{- if eq .kind "ConfigMap" -}}{{- $base = index .data "settings.yaml" | fromYaml -}}{{- end -}}
{{- end -}}
{{- $settings := mergeOverwrite $base (deepCopy .Values.settings) -}}
{{- /* The runtime catalog is the values' own when given, not added to the example's. */ -}}
{{- with .Values.settings.runtimes }}{{ $_ := set $settings "runtimes" (deepCopy .) }}{{ end -}}
{{- $wanted := ((.Values.settings.namespaces | default dict).control | default .Release.Namespace) -}}
{{- if ne $wanted .Release.Namespace -}}
{{- fail (printf "settings.namespaces.control is %q but the release namespace is %q: install into the control namespace (--namespace %s)" $wanted .Release.Namespace $wanted) -}}
{{- end -}}
{{- $_ := set $settings.namespaces "control" .Release.Namespace -}}
{{- $service := dict "name" "adroit-webhook" "namespace" .Release.Namespace "port" 443 -}}
{{- $_ := set $settings "admission" (mergeOverwrite (deepCopy $settings.admission) (dict "listen" "0.0.0.0" "port" 9443 "service" $service)) -}}
{{- toYaml $settings -}}
{{- end -}}

{{/* deploy/'s namespace names -> this release's. */}}
{{- define "adroit.namespaces" -}}
{{- $s := include "adroit.settings" . | fromYaml -}}
{{- toYaml (dict "adroit" $s.namespaces.control "adroit-staging" $s.namespaces.staging "adroit-production" $s.namespaces.production) -}}
{{- end -}}

{{/* Print one object, with the release's labels added. */}}
{{- define "adroit.print" -}}
{{- $labels := .obj.metadata.labels | default dict -}}
{{- $_ := set $labels "app.kubernetes.io/instance" .root.Release.Name -}}
{{- $_ := set $labels "helm.sh/chart" (printf "%s-%s" .root.Chart.Name .root.Chart.Version) -}}
{{- $_ := set .obj.metadata "labels" $labels }}
---
{{ toYaml .obj }}
{{- end -}}
