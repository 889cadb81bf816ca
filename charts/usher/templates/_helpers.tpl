{{/* The chart's name. */}}
{{- define "usher.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the prefix of every object's name. Kept to 53
characters so that "-login" and "-headless" still fit 63. */}}
{{- define "usher.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 53 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "usher.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "usher.labels" -}}
helm.sh/chart: {{ include "usher.chart" . }}
app.kubernetes.io/name: {{ include "usher.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: usher
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "authz"). */}}
{{- define "usher.selectorLabels" -}}
app.kubernetes.io/name: {{ include "usher.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "usher.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "usher.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "usher.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "usher.trial" -}}
{{- if eq .Values.mode "trial" -}}true{{- end -}}
{{- end -}}

{{/* The Service clients (Envoy, Istio) send Checks to. */}}
{{- define "usher.authzHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "usher.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Every problem with the values, all at once (as usher serve reports
its configuration), or nothing. Rendered by the Deployments, so that a
release with a problem is refused before anything is applied. */}}
{{- define "usher.validate" -}}
{{- $errs := list -}}
{{- if and (eq .Values.mode "production") (not .Values.mongodb.existingSecret) -}}
{{- $errs = append $errs "mode=production needs MongoDB: set mongodb.existingSecret to a Secret holding the connection string under mongodb.uriKey (default \"mongodb-uri\"), or use mode=trial for one replica on the embedded store" -}}
{{- end -}}
{{- if and (eq .Values.mode "trial") .Values.autoscaling.enabled -}}
{{- $errs = append $errs "autoscaling.enabled needs mode=production: in trial mode one pod owns the embedded store" -}}
{{- end -}}
{{- if and (eq .Values.mode "trial") .Values.mongodb.existingSecret -}}
{{- $errs = append $errs "mongodb.existingSecret is set but mode=trial runs the embedded store: set mode=production" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) -}}
{{- $errs = append $errs "tls.enabled needs tls.existingSecret (a kubernetes.io/tls Secret with tls.crt and tls.key)" -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) -}}
{{- $errs = append $errs "autoscaling.maxReplicas must be at least autoscaling.minReplicas" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (ne (toString .Values.podDisruptionBudget.minAvailable) "") (ne (toString .Values.podDisruptionBudget.maxUnavailable) "") -}}
{{- $errs = append $errs "podDisruptionBudget: set minAvailable or maxUnavailable, not both" -}}
{{- end -}}
{{- with .Values.login -}}
{{- if .enabled -}}
{{- if not $.Values.masterKey.existingSecret -}}
{{- $errs = append $errs "login.enabled needs masterKey.existingSecret: the login app seals secrets with the master key" -}}
{{- end -}}
{{- if not .sessionKey.existingSecret -}}
{{- $errs = append $errs "login.enabled needs login.sessionKey.existingSecret (USHER_SESSION_KEY: at least 32 random bytes, standard base64)" -}}
{{- end -}}
{{- if not .provider.existingSecret -}}
{{- $errs = append $errs "login.enabled needs login.provider.existingSecret (USHER_AUTH_CLIENT_SECRET)" -}}
{{- end -}}
{{- if not .provider.clientId -}}
{{- $errs = append $errs "login.enabled needs login.provider.clientId (USHER_AUTH_CLIENT_ID)" -}}
{{- end -}}
{{- if and (eq .provider.type "oidc") (not .provider.issuerURL) -}}
{{- $errs = append $errs "login.provider.type=oidc needs login.provider.issuerURL (USHER_AUTH_ISSUER_URL)" -}}
{{- end -}}
{{- if not .rootDomain -}}
{{- $errs = append $errs "login.enabled needs login.rootDomain (USHER_ROOT_DOMAIN)" -}}
{{- end -}}
{{- if not .allowedDomains -}}
{{- $errs = append $errs "login.enabled needs login.allowedDomains (USHER_ALLOWED_DOMAINS): at least one email domain" -}}
{{- end -}}
{{- if not .tenant -}}
{{- $errs = append $errs "login.enabled needs login.tenant (USHER_AUTH_TENANT)" -}}
{{- end -}}
{{- if and .ingress.enabled (not .ingress.host) -}}
{{- $errs = append $errs "login.ingress.enabled needs login.ingress.host" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $errs -}}
{{- fail (printf "\n\nusher chart: the values have %d problem(s):\n  - %s\n" (len $errs) (join "\n  - " $errs)) -}}
{{- end -}}
{{- end -}}

{{/* Pod labels and annotations: the checksum of the ConfigMap rolls the
pods when the rules or settings change. (dict "ctx" $ "component" "authz") */}}
{{- define "usher.podMetadata" -}}
metadata:
  labels:
    {{- include "usher.selectorLabels" . | nindent 4 }}
    {{- with .ctx.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print .ctx.Template.BasePath "/configmap.yaml") .ctx | sha256sum }}
    {{- with .ctx.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

