{{/* Names, labels and the pieces every rcm workload shares. */}}

{{- define "rcm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rcm.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: rcm
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rcm.labels" -}}
{{ include "rcm.baseLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one service's resources: (dict "root" $ "name" "coding") */}}
{{- define "rcm.serviceLabels" -}}
{{ include "rcm.baseLabels" .root }}
{{ include "rcm.selectorLabels" . }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Selector labels of one service: (dict "root" $ "name" "coding") */}}
{{- define "rcm.selectorLabels" -}}
app.kubernetes.io/name: rcm-{{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "rcm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rcm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rcm.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "rcm.databaseSecretName" -}}
{{- if .Values.database.cluster.create -}}
{{- printf "%s-db-app" (include "rcm.fullname" .) -}}
{{- else -}}
{{- required "database.existingSecret is required when database.cluster.create is false" .Values.database.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The CA that signed the database server's certificate (CloudNativePG: <cluster>-ca). */}}
{{- define "rcm.databaseCaSecretName" -}}
{{- if .Values.database.tls.caSecret -}}
{{- .Values.database.tls.caSecret -}}
{{- else if .Values.database.cluster.create -}}
{{- printf "%s-db-ca" (include "rcm.fullname" .) -}}
{{- else -}}
{{- fail "database.tls.caSecret is required with database.tls.verify and an external database" -}}
{{- end -}}
{{- end -}}

{{- define "rcm.authSecretName" -}}
{{- default (printf "%s-auth" (include "rcm.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* Partitions of one topic: its override, else the default. (dict "root" $ "topic" NAME) */}}
{{- define "rcm.topicPartitions" -}}
{{- $t := .root.Values.kafka.topics -}}
{{- default $t.partitions (index $t.partitionOverrides .topic) -}}
{{- end -}}

{{/* Kubernetes name of a topic resource: names allow no "_" (the Kafka name stays in topicName). */}}
{{- define "rcm.topicResourceName" -}}
{{- . | replace "_" "-" | lower -}}
{{- end -}}

{{- define "rcm.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "rcm.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Environment every rcm process needs whether or not the chart's ConfigMap exists yet:
(dict "root" $ "name" SERVICE), name "" for the shared database role (the migration Job). */}}
{{- define "rcm.coreEnv" -}}
{{- $v := .root.Values.database -}}
{{- $own := and .name $v.serviceRoles.secretPrefix -}}
{{- $secret := ternary (printf "%s%s" $v.serviceRoles.secretPrefix .name) (include "rcm.databaseSecretName" .root) (not (empty $own)) -}}
{{- $key := ternary $v.serviceRoles.uriKey $v.secretKey (not (empty $own)) -}}
{{- $tls := printf "sslmode=verify-full&sslrootcert=/etc/rcm/tls/postgres/%s" $v.tls.caKey -}}
{{- if $v.tls.verify }}
- name: RCM_DATABASE_URI
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
- name: DATABASE_URL
  value: "$(RCM_DATABASE_URI)?{{ $tls }}"
{{- else }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- if $own }}
{{- /* The schema owner's role: migrations run as it and grant DATABASE_URL's role its tables. */}}
{{- if $v.tls.verify }}
- name: RCM_DB_OWNER_URI
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.serviceRoles.ownerUriKey }}
- name: RCM_DB_OWNER_URL
  value: "$(RCM_DB_OWNER_URI)?{{ $tls }}"
{{- else }}
- name: RCM_DB_OWNER_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.serviceRoles.ownerUriKey }}
{{- end }}
{{- end }}
{{- with .root.Values.kafka.sasl }}
{{- if .enabled }}
- name: RCM_KAFKA_SASL_USERNAME
  value: {{ .username | quote }}
- name: RCM_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.passwordSecret is required with kafka.sasl.enabled" .passwordSecret }}
      key: {{ .passwordKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes of the read-only root: a writable home (run dir, traces) and /tmp; TLS material. */}}
{{- define "rcm.baseVolumes" -}}
- name: home
  emptyDir:
    sizeLimit: {{ .Values.homeSizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if .Values.tls.http.secretName }}
- name: tls-http
  secret:
    secretName: {{ .Values.tls.http.secretName }}
    defaultMode: 0440
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
- name: tls-kafka
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    defaultMode: 0440
{{- end }}
{{- if .Values.database.tls.verify }}
- name: tls-postgres
  secret:
    secretName: {{ include "rcm.databaseCaSecretName" . }}
    defaultMode: 0440
{{- end }}
{{- with .Values.referenceData.existingClaim }}
- name: codesets
  persistentVolumeClaim:
    claimName: {{ . }}
    readOnly: true
{{- end }}
{{- with .Values.referenceData.configMap }}
- name: reference
  configMap:
    name: {{ . }}
{{- end }}
{{- if .Values.auth.revocationSecret }}
- name: token-revocations
  secret:
    secretName: {{ .Values.auth.revocationSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "rcm.baseVolumeMounts" -}}
- name: home
  mountPath: /var/lib/rcm
- name: tmp
  mountPath: /tmp
{{- if .Values.tls.http.secretName }}
- name: tls-http
  mountPath: /etc/rcm/tls/http
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
- name: tls-kafka
  mountPath: /etc/rcm/tls/kafka
  readOnly: true
{{- end }}
{{- if .Values.database.tls.verify }}
- name: tls-postgres
  mountPath: /etc/rcm/tls/postgres
  readOnly: true
{{- end }}
{{- if .Values.referenceData.existingClaim }}
- name: codesets
  mountPath: /var/lib/rcm/codesets
  readOnly: true
{{- end }}
{{- if .Values.referenceData.configMap }}
- name: reference
  mountPath: /etc/rcm/reference
  readOnly: true
{{- end }}
{{- if .Values.auth.revocationSecret }}
- name: token-revocations
  mountPath: /etc/rcm/revocations
  readOnly: true
{{- end }}
{{- end -}}
