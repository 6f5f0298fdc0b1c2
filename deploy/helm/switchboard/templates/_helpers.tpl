{{/* Names, labels and small building blocks shared by every template. */}}

{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Resource name of one component: <fullname>-<component>. Call with (dict "root" $ "component" "chat"). */}}
{{- define "switchboard.componentName" -}}
{{- printf "%s-%s" (include "switchboard.fullname" .root | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "switchboard.chartLabel" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component. Call with (dict "root" $ "component" "chat"). */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every label of one component. */}}
{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chartLabel" .root }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Labels of the release without a component (Secret, ServiceAccount, NetworkPolicy). */}}
{{- define "switchboard.releaseLabels" -}}
helm.sh/chart: {{ include "switchboard.chartLabel" . }}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Pods of this release that belong to the Switchboard fleet (used by NetworkPolicies). */}}
{{- define "switchboard.fleetPodLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: switchboard
{{- end -}}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image of one Switchboard service. Call with (dict "root" $ "component" "chat"). */}}
{{- define "switchboard.image" -}}
{{- $image := .root.Values.image -}}
{{- $tag := default .root.Chart.AppVersion $image.tag -}}
{{- $repository := ternary (printf "%s/%s/%s" $image.registry $image.repository .component) (printf "%s/%s" $image.repository .component) (ne $image.registry "") -}}
{{- $digest := index ($image.digests | default dict) .component | default "" -}}
{{- if $digest -}}
{{- printf "%s:%s@%s" $repository $tag $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding credentials: the chart's own or an existing one. */}}
{{- define "switchboard.secretName" -}}
{{- default (include "switchboard.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* In-cluster base URL of one service. Call with (dict "root" $ "component" "chat" "port" 8001). */}}
{{- define "switchboard.serviceURL" -}}
{{- printf "http://%s:%v" (include "switchboard.componentName" .) .port -}}
{{- end -}}

{{- define "switchboard.chromaURL" -}}
{{- if .Values.chroma.enabled -}}
{{- printf "http://%s:8000" (include "switchboard.componentName" (dict "root" . "component" "chroma")) -}}
{{- else -}}
{{- required "chroma.url is required when chroma.enabled is false" .Values.chroma.url -}}
{{- end -}}
{{- end -}}

{{/* Services that own a database (all but the console). */}}
{{- define "switchboard.dbServices" -}}
gateway chat retrieval integrations analytics
{{- end -}}

{{/*
The credentials the chart renders into its Secret: secrets.values plus, for bundled backing services,
the URLs pointing at them. Returns YAML (a map of key to value).
*/}}
{{- define "switchboard.secretData" -}}
{{- $data := deepCopy .Values.secrets.values -}}
{{- if .Values.postgresql.bundled -}}
{{- $password := required "postgresql.password is required when postgresql.bundled is true" .Values.postgresql.password -}}
{{- $host := include "switchboard.componentName" (dict "root" . "component" "postgresql") -}}
{{- $_ := set $data "POSTGRES_PASSWORD" $password -}}
{{- range $service := splitList " " (include "switchboard.dbServices" .) -}}
{{- $_ := set $data (printf "%s_DATABASE_URL" (upper $service)) (printf "postgresql+asyncpg://%s:%s@%s:5432/%s" $.Values.postgresql.username (urlquery $password) $host $service) -}}
{{- end -}}
{{- end -}}
{{- if .Values.redis.bundled -}}
{{- $password := required "redis.password is required when redis.bundled is true" .Values.redis.password -}}
{{- $host := include "switchboard.componentName" (dict "root" . "component" "redis") -}}
{{- $_ := set $data "REDIS_PASSWORD" $password -}}
{{- $_ := set $data "SWITCHBOARD_REDIS_URL" (printf "redis://:%s@%s:6379/0" (urlquery $password) $host) -}}
{{- end -}}
{{- $required := list "SWITCHBOARD_INTERNAL_TOKEN" "SWITCHBOARD_REDIS_URL" "GATEWAY_ADMIN_TOKEN" "ANALYTICS_PSEUDONYM_SALT" -}}
{{- range $service := splitList " " (include "switchboard.dbServices" .) -}}
{{- $required = append $required (printf "%s_DATABASE_URL" (upper $service)) -}}
{{- end -}}
{{- range $key := $required -}}
{{- if not (get $data $key) -}}
{{- fail (printf "secrets.values.%s is required (or set secrets.existingSecret)" $key) -}}
{{- end -}}
{{- end -}}
{{- toYaml $data -}}
{{- end -}}

{{/* Pod-level security settings shared by the fleet. */}}
{{- define "switchboard.podSecurity" -}}
automountServiceAccountToken: false
serviceAccountName: {{ include "switchboard.serviceAccountName" . }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Environment every container of one service gets: its ConfigMap, the fleet secrets and its own keys.
Call with (dict "root" $ "component" "chat" "service" $svc).
*/}}
{{- define "switchboard.serviceEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "switchboard.componentName" . }}
{{- if or (ne .component "console") .service.secretKeys }}
env:
  {{- if ne .component "console" }}
  - name: SWITCHBOARD_INTERNAL_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ include "switchboard.secretName" .root }}
        key: SWITCHBOARD_INTERNAL_TOKEN
  - name: SWITCHBOARD_REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "switchboard.secretName" .root }}
        key: SWITCHBOARD_REDIS_URL
  - name: {{ upper .component }}_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "switchboard.secretName" .root }}
        key: {{ upper .component }}_DATABASE_URL
  {{- end }}
  {{- range $key := .service.secretKeys }}
  - name: {{ $key }}
    valueFrom:
      secretKeyRef:
        name: {{ include "switchboard.secretName" $.root }}
        key: {{ $key }}
        optional: true
  {{- end }}
{{- end }}
{{- end -}}
