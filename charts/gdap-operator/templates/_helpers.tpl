{{/* Names and labels shared by every template. */}}

{{- define "gdap-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "gdap-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gdap-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gdap-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gdap-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gdap-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gdap-operator
{{- end }}

{{- define "gdap-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gdap-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gdap-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The rules the operator needs on its custom resources, credentials Secrets and events, wherever it
watches (a ClusterRole, or a Role per watched namespace). docs/operations.md explains each rule.
*/}}
{{- define "gdap-operator.watchRules" -}}
# The custom resources: watched; finalizers and annotations patched.
- apiGroups: ["gdap.io"]
  resources: ["gdaprelationships", "appconsents", "tenantsyncs", "gdapfleets"]
  verbs: ["get", "list", "watch", "patch", "update"]
# A GdapFleet's objects for each customer: created by server-side apply, deleted when pruned.
- apiGroups: ["gdap.io"]
  resources: ["gdaprelationships", "appconsents", "tenantsyncs"]
  verbs: ["create", "delete"]
# Their status, written with server-side apply.
- apiGroups: ["gdap.io"]
  resources: ["gdaprelationships/status", "appconsents/status", "tenantsyncs/status", "gdapfleets/status"]
  verbs: ["get", "patch", "update"]
# Their finalizers (for clusters that enforce owner-reference/finalizer permissions; a fleet's
# objects carry an owner reference that blocks the fleet's deletion).
- apiGroups: ["gdap.io"]
  resources: ["gdaprelationships/finalizers", "appconsents/finalizers", "tenantsyncs/finalizers", "gdapfleets/finalizers"]
  verbs: ["update", "patch"]
{{- include "gdap-operator.secretRules" . }}
# The object's own Namespace, read while a GdapRelationship is deleted: when the whole namespace
# is being deleted, the relationship waits for every AppConsent relying on it to remove its
# consent first. (In a Role, this grants the watched namespace's own object only.)
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
# Events on the objects (events.k8s.io, and the core API for older recorders).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* The operator's ServiceAccount as the subject of a binding. */}}
{{- define "gdap-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "gdap-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/*
Secrets, never listed or watched at large (the operator reads each Secret by name, and watches
each credentials Secret in use alone, with a field selector on its name, which the API server
authorizes against resourceNames). rbac.secretAccess byName: the credentials Secrets
(credentialsSecret and rbac.credentialsSecrets; read and watched by name, rotated refresh tokens
written back, a finalizer held while in use) and the connection Secrets (rbac.connectionSecrets;
read only), each by name (resourceNames). A list that is empty renders no rule: an empty
resourceNames would grant every Secret. rbac.secretAccess any: every Secret.
*/}}
{{- define "gdap-operator.secretRules" -}}
{{- if eq .Values.rbac.secretAccess "any" }}
# Every Secret where it watches (rbac.secretAccess=any): read, refresh tokens written back, a
# finalizer held while in use. The operator still lists and watches only the credentials Secrets
# in use, each alone by name, but this role would allow listing every Secret.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "patch", "update"]
{{- else }}
{{- $credentials := .Values.rbac.credentialsSecrets | default list }}
{{- with .Values.credentialsSecret }}
{{- $credentials = append $credentials (last (splitList "/" .)) }}
{{- end }}
{{- if $credentials }}
# Credentials Secrets, by name only: read and watched (a watch of one Secret, by a field selector
# on its name, so reconciles need not read it each time), rotated refresh tokens written back, a
# finalizer held while in use.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ $credentials | uniq | sortAlpha | toJson }}
  verbs: ["get", "list", "watch", "patch", "update"]
{{- end }}
{{- with .Values.rbac.connectionSecrets }}
# PostgreSQL connection Secrets of TenantSyncs, by name only: read.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ . | uniq | sortAlpha | toJson }}
  verbs: ["get"]
{{- end }}
{{- end }}
{{- end }}
