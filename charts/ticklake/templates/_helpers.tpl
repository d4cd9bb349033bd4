{{/* Name of the chart. */}}
{{- define "ticklake.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object's name: the release name, plus "-ticklake" unless it has it. */}}
{{- define "ticklake.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The operator's objects. */}}
{{- define "ticklake.operator" -}}
{{- printf "%s-operator" (include "ticklake.fullname" .) }}
{{- end }}

{{- define "ticklake.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ticklake.operator" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "ticklake.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: ticklake
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector of the operator pods. Distinct from the worker pods' labels (name "ticklake"). */}}
{{- define "ticklake.operatorSelector" -}}
app.kubernetes.io/name: {{ include "ticklake.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ticklake.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* Kafka the operator gives resources that name none. */}}
{{- define "ticklake.kafkaBootstrap" -}}
{{- if .Values.kafka.bootstrapServers }}
{{- .Values.kafka.bootstrapServers }}
{{- else if .Values.kafka.inChart.enabled }}
{{- printf "%s-kafka.%s.svc:9092" (include "ticklake.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}
