{{/* Object names: the release name, or <release>-airlock when the release name does not say airlock. */}}
{{- define "airlock.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "airlock.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "airlock.labels" -}}
{{ include "airlock.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "airlock.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "airlock.fullname" .) -}}
{{- end -}}

{{/* The operator's username at the API server: exempt from its own admission checks. */}}
{{- define "airlock.operatorUsername" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "airlock.serviceAccountName" .) -}}
{{- end -}}

{{- define "airlock.webhookService" -}}
{{- printf "%s-webhook" (include "airlock.fullname" .) -}}
{{- end -}}

{{- define "airlock.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "airlock.fullname" .) -}}
{{- end -}}

{{/* The admin groups as a CEL list literal: ['a', 'b']. */}}
{{- define "airlock.adminGroupsCEL" -}}
{{- $quoted := list -}}
{{- range .Values.adminGroups -}}
{{- $quoted = append $quoted (printf "'%s'" .) -}}
{{- end -}}
[{{ join ", " $quoted }}]
{{- end -}}

{{/*
The webhook TLS material when cert-manager is not used: generated once, then reused
from the existing Secret on upgrade (lookup returns nothing under `helm template`
or Argo CD, which therefore generate a new pair on every render).
*/}}
{{- define "airlock.webhookTLS" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "airlock.webhookSecret" .) -}}
{{- if and $secret $secret.data (index $secret.data "ca.crt") -}}
ca.crt: {{ index $secret.data "ca.crt" }}
tls.crt: {{ index $secret.data "tls.crt" }}
tls.key: {{ index $secret.data "tls.key" }}
{{- else -}}
{{- $service := include "airlock.webhookService" . -}}
{{- $ca := genCA (printf "%s-ca" $service) 3650 -}}
{{- $dns := list (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $service .Release.Namespace) nil $dns 3650 $ca -}}
ca.crt: {{ $ca.Cert | b64enc }}
tls.crt: {{ $cert.Cert | b64enc }}
tls.key: {{ $cert.Key | b64enc }}
{{- end -}}
{{- end -}}

{{/* The arguments of `airlock guard` for one entry of .Values.guards (standalone or sidecar). */}}
{{- define "airlock.guardArgs" -}}
- --upstream={{ .g.upstream }}
- --system={{ .g.namespace }}/{{ .g.system }}
- --listen=0.0.0.0:{{ .port }}
- --metrics-port={{ .metricsPort }}
{{- with .g.fallbackUpstream }}
- --fallback-upstream={{ . }}
{{- end }}
{{- if .g.config }}
- --config=/etc/airlock-guard/guard.yaml
{{- end }}
{{- range .g.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}
