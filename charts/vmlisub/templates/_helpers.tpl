{{/* Chart name. */}}
{{- define "vmlisub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-vmlisub, or the release name when it contains the chart name. */}}
{{- define "vmlisub.fullname" -}}
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

{{- define "vmlisub.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vmlisub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vmlisub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vmlisub.labels" -}}
helm.sh/chart: {{ include "vmlisub.chart" . }}
{{ include "vmlisub.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: vmlisub
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "vmlisub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vmlisub.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vmlisub.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The in-cluster URL of the Service, the default artifact base URL. */}}
{{- define "vmlisub.artifactBaseUrl" -}}
{{- if .Values.artifactBaseUrl -}}
{{- .Values.artifactBaseUrl | trimSuffix "/" -}}
{{- else -}}
{{- printf "http://%s.%s.svc:%v" (include "vmlisub.fullname" .) .Release.Namespace .Values.service.port -}}
{{- end -}}
{{- end -}}

{{- define "vmlisub.cacheClaimName" -}}
{{- default (printf "%s-cache" (include "vmlisub.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{/* The ConfigMap of the CA directory (trust.source=configMap). */}}
{{- define "vmlisub.trustConfigMapName" -}}
{{- default (printf "%s-grid-ca" (include "vmlisub.fullname" .)) .Values.trust.configMap.name -}}
{{- end -}}

{{/* A duration such as 6h, 1h30m or 1d (units s, m, h, d, w) in seconds. */}}
{{- define "vmlisub.durationSeconds" -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 "w" 604800 -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+[smhdw]" . -1 -}}
{{- $n := regexFind "^[0-9]+" . | int -}}
{{- $total = add $total (mul $n (get $units (regexFind "[smhdw]$" .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/*
Window of the CRL refresh failure alerts: metrics.prometheusRule
.crlRefreshFailureWindow, or 1.25 x crlRefresh.interval (at least 15m), so
that every refresh attempt (jittered by up to 10%) falls in one window.
*/}}
{{- define "vmlisub.crlRefreshFailureWindow" -}}
{{- if .Values.metrics.prometheusRule.crlRefreshFailureWindow -}}
{{- .Values.metrics.prometheusRule.crlRefreshFailureWindow -}}
{{- else -}}
{{- $seconds := include "vmlisub.durationSeconds" .Values.crlRefresh.interval | int -}}
{{- printf "%ds" (max 900 (div (mul $seconds 5) 4)) -}}
{{- end -}}
{{- end -}}

{{/*
The operator's API permissions (least privilege), shared by the ClusterRole
(all namespaces) and the Role (watchNamespace mode). config/rbac/role.yaml
carries the same rules; e2e/tests/packaging.rs checks that they stay equal.
*/}}
{{- define "vmlisub.managerRules" -}}
- apiGroups: ["vmli.hepix.org"]
  resources: ["endorsers"]
  verbs: ["get", "list", "watch", "patch", "create"]
- apiGroups: ["vmli.hepix.org"]
  resources: ["imagelistsubscriptions"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["vmli.hepix.org"]
  resources: ["imagesubscriptions"]
  verbs: ["get", "list", "watch", "patch", "create", "delete"]
- apiGroups: ["vmli.hepix.org"]
  resources: ["endorsers/status", "imagelistsubscriptions/status", "imagesubscriptions/status"]
  verbs: ["get", "patch"]
- apiGroups: ["vmli.hepix.org"]
  resources: ["imagelistsubscriptions/finalizers", "imagesubscriptions/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["cdi.kubevirt.io"]
  resources: ["datavolumes"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: ["cdi.kubevirt.io"]
  resources: ["datasources"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
{{- end -}}

{{- define "vmlisub.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}

{{/* Checks of value combinations the schema cannot express. */}}
{{- define "vmlisub.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true (only one replica may reconcile)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) .Values.persistence.enabled (not .Values.persistence.existingClaim) (not (has "ReadWriteMany" .Values.persistence.accessModes)) -}}
{{- fail "replicaCount > 1 needs a shared cache: persistence.accessModes must contain ReadWriteMany (or use persistence.existingClaim)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.persistence.enabled) -}}
{{- fail "replicaCount > 1 needs persistence.enabled=true with a ReadWriteMany volume (every replica serves the same cache)" -}}
{{- end -}}
{{- if and (eq .Values.trust.source "secret") (not .Values.trust.secret.name) -}}
{{- fail "trust.source=secret needs trust.secret.name" -}}
{{- end -}}
{{- if and (eq .Values.trust.source "projected") (not .Values.trust.projected.sources) -}}
{{- fail "trust.source=projected needs trust.projected.sources (a VolumeProjection list)" -}}
{{- end -}}
{{- if and (eq .Values.trust.source "volume") (not .Values.trust.volume) -}}
{{- fail "trust.source=volume needs trust.volume (a volume source)" -}}
{{- end -}}
{{- end -}}

{{/*
Tenant roles (aggregated into view / edit and admin). config/rbac/tenant_roles.yaml
holds the same rules; e2e/tests/packaging.rs checks that both stay equal.
*/}}
{{- define "vmlisub.tenantViewRules" -}}
- apiGroups: ["vmli.hepix.org"]
  resources: ["endorsers", "imagelistsubscriptions", "imagesubscriptions"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{- define "vmlisub.tenantEditRules" -}}
- apiGroups: ["vmli.hepix.org"]
  resources: ["endorsers", "imagelistsubscriptions", "imagesubscriptions"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
{{- end }}
