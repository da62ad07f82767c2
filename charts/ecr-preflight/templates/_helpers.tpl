{{/*
Names. fullname is the name of every object the chart creates (and of the
ValidatingWebhookConfiguration the process injects the CA into).
*/}}
{{- define "ecr-preflight.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecr-preflight.fullname" -}}
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

{{- define "ecr-preflight.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecr-preflight.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecr-preflight.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ecr-preflight.labels" -}}
helm.sh/chart: {{ include "ecr-preflight.chart" . }}
{{ include "ecr-preflight.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: admission-webhook
{{- end }}

{{- define "ecr-preflight.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecr-preflight.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Certificates. selfManaged: the chart owns the Secret (empty; the process
fills it) and the leader-election Lease, so that uninstalling removes both
and the process never needs to create them.
*/}}
{{- define "ecr-preflight.certSecretName" -}}
{{- $mode := .Values.certificates.mode }}
{{- if eq $mode "provided" }}
{{- required "certificates.provided.secretName is required with certificates.mode=provided" .Values.certificates.provided.secretName }}
{{- else if eq $mode "certManager" }}
{{- printf "%s-cert-manager-tls" (include "ecr-preflight.fullname" .) }}
{{- else }}
{{- printf "%s-tls" (include "ecr-preflight.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Lease `serve --cert-rotation` elects its writer with: <secret>-rotation. */}}
{{- define "ecr-preflight.rotationLeaseName" -}}
{{- printf "%s-rotation" (include "ecr-preflight.certSecretName" .) }}
{{- end }}

{{/*
The Lease `serve --audit-interval` elects the auditing replica with when
certificate rotation is off (--audit-lease-name). With --cert-rotation the
rotation Lease elects it, and this one is not used.
*/}}
{{- define "ecr-preflight.auditLeaseName" -}}
{{- printf "%s-audit" (include "ecr-preflight.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Lease that elects the leader: the rotation's, else the audit's. */}}
{{- define "ecr-preflight.electionLeaseName" -}}
{{- if eq .Values.certificates.mode "selfManaged" }}
{{- include "ecr-preflight.rotationLeaseName" . }}
{{- else }}
{{- include "ecr-preflight.auditLeaseName" . }}
{{- end }}
{{- end }}

{{/* Whether the chart creates the audit Lease: audit on, rotation off. */}}
{{- define "ecr-preflight.auditLease" -}}
{{- if and .Values.audit.enabled (ne .Values.certificates.mode "selfManaged") }}true{{ end }}
{{- end }}

{{/*
A Go duration as seconds (a float): 5m -> 300, 1h30m -> 5400, 1.5s ->
1.5, 0 -> 0. The schema has checked the syntax. For checks of minimums
and for PromQL, which has no Go durations.
*/}}
{{- define "ecr-preflight.durationSeconds" -}}
{{- $units := dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001 "us" 0.000001 "µs" 0.000001 "ns" 0.000000001 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" (toString .) -1 }}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $total = addf $total (mulf (float64 $n) (get $units (trimPrefix $n .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/* The host of webhook.url, without a port; empty without a URL. */}}
{{- define "ecr-preflight.urlHost" -}}
{{- with .Values.webhook.url }}
{{- $host := (urlParse .).host }}
{{- if hasPrefix "[" $host }}
{{- regexReplaceAll "^\\[(.*)\\].*$" $host "${1}" }}
{{- else }}
{{- (split ":" $host)._0 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Checks of values the schema cannot express, in a fixed order, so that the
first error is the same whichever template is rendered first. Included at
the top of the Deployment and of the webhook configuration.
*/}}
{{- define "ecr-preflight.validate" -}}
{{- $pools := .Values.nodePools }}
{{- if not (or .Values.nodeRoleArns $pools.static $pools.clusterName $pools.discoverNodes) }}
{{- fail "node pools: nothing says which IAM roles pull the images, so only the images' existence could be checked; set nodeRoleArns (--set 'nodeRoleArns[0]=arn:aws:iam::ACCOUNT:role/NODE_ROLE'), nodePools.static or nodePools.clusterName, or turn nodePools.discoverNodes back on" }}
{{- end }}
{{- $names := dict }}
{{- range $i, $p := $pools.static }}
{{- if hasKey $names $p.name }}
{{- fail (printf "nodePools.static[%d]: name %q is also the name of nodePools.static[%v]; pool names must be unique" $i $p.name (get $names $p.name)) }}
{{- end }}
{{- $_ := set $names $p.name $i }}
{{- end }}
{{- if eq .Values.certificates.mode "provided" }}
{{- $_ := include "ecr-preflight.certSecretName" . }}
{{- $_ := required "certificates.provided.caBundle (PEM) is required with certificates.mode=provided" .Values.certificates.provided.caBundle }}
{{- end }}
{{- $on := false }}
{{- range $k, $v := .Values.webhook.kinds }}{{ if $v }}{{ $on = true }}{{ end }}{{ end }}
{{- if not $on }}
{{- fail "webhook.kinds: every kind is off; turn at least one on" }}
{{- end }}
{{- $host := include "ecr-preflight.urlHost" . }}
{{- if and (ne .Values.certificates.mode "provided") (or (contains ":" $host) (regexMatch "^[0-9.]+$" $host)) }}
{{- fail (printf "webhook.url %q: the certificate the chart has issued names hosts, not IP addresses; use a host name (or certificates.mode=provided with your own certificate)" .Values.webhook.url) }}
{{- end }}
{{- $_ := include "ecr-preflight.terminationGracePeriodSeconds" . }}
{{- if and .Values.audit.enabled (lt (include "ecr-preflight.durationSeconds" .Values.audit.interval | float64) 10.0) }}
{{- fail (printf "audit.interval %q: at least 10s (lookups are cached for minutes anyway; serve refuses less)" (toString .Values.audit.interval)) }}
{{- end }}
{{- if not .Values.metrics.enabled }}
{{- if .Values.metrics.prometheusRule.enabled }}
{{- fail "metrics.prometheusRule.enabled: its alerts read the metrics, which metrics.enabled=false turns off; turn metrics.enabled back on" }}
{{- end }}
{{- if .Values.metrics.grafanaDashboard.enabled }}
{{- fail "metrics.grafanaDashboard.enabled: the dashboard reads the metrics, which metrics.enabled=false turns off; turn metrics.enabled back on" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Node pools. nodePools.static becomes the file of --node-pools-config
(internal/nodepools/discover LoadStaticPools: `pools: [...]`), in a
ConfigMap mounted read-only at nodePoolsDir.
*/}}
{{- define "ecr-preflight.nodePoolsConfigMapName" -}}
{{- printf "%s-node-pools" (include "ecr-preflight.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecr-preflight.nodePoolsDir" -}}
/etc/ecr-preflight/node-pools
{{- end }}

{{- define "ecr-preflight.nodePoolsFile" -}}
pools.yaml
{{- end }}

{{- define "ecr-preflight.nodePoolsConfig" -}}
{{- toYaml (dict "pools" .Values.nodePools.static) }}
{{- end }}

{{/* DNS names of the serving certificate, one per line. */}}
{{- define "ecr-preflight.dnsNames" -}}
{{- $svc := include "ecr-preflight.fullname" . }}
{{- $names := list }}
{{- with include "ecr-preflight.urlHost" . }}
{{- $names = append $names . }}
{{- end }}
{{- $names = append $names (printf "%s.%s.svc" $svc .Release.Namespace) }}
{{- $names = append $names (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) }}
{{- range .Values.certificates.extraDNSNames }}
{{- $names = append $names . }}
{{- end }}
{{- range uniq $names }}
{{ . }}
{{- end }}
{{- end }}

{{/*
Durations. The admission budget (--admission-timeout) stays below the API
server's timeoutSeconds; the grace period covers the shutdown delay, the
budget of the admissions in flight and a margin.
*/}}
{{- define "ecr-preflight.admissionTimeoutSeconds" -}}
{{- $hook := float64 .Values.webhook.timeoutSeconds }}
{{- $t := .Values.admission.timeoutSeconds }}
{{- if kindIs "invalid" $t }}
{{- if gt $hook 1.0 }}{{ subf $hook 1 }}{{ else }}0.5{{ end }}
{{- else }}
{{- if ge (float64 $t) $hook }}
{{- fail (printf "admission.timeoutSeconds (%v) must be below webhook.timeoutSeconds (%v): the webhook must answer before the API server gives up" $t .Values.webhook.timeoutSeconds) }}
{{- end }}
{{- float64 $t }}
{{- end }}
{{- end }}

{{- define "ecr-preflight.terminationGracePeriodSeconds" -}}
{{- $needed := addf (float64 .Values.shutdownDelaySeconds) (include "ecr-preflight.admissionTimeoutSeconds" . | float64) 1 }}
{{- with .Values.terminationGracePeriodSeconds }}
{{- if le (float64 .) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed shutdownDelaySeconds + the admission budget + 1 (%v): the pod would be killed while admissions are in flight" . $needed) }}
{{- end }}
{{- . }}
{{- else }}
{{- addf $needed 4 | ceil | int }}
{{- end }}
{{- end }}

{{/* Seconds as a Go duration: 4 -> 4s, 1.5 -> 1.5s. */}}
{{- define "ecr-preflight.seconds" -}}
{{- printf "%vs" (float64 .) }}
{{- end }}

{{- define "ecr-preflight.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The webhooks, one per kind: name, rules, path and where the pod spec is
(for matchConditions). Paths are controller-runtime's defaults
(/validate-GROUP-VERSION-KIND, dots in the group as dashes), as the binary
serves them (webhook.Paths).
*/}}
{{- define "ecr-preflight.kinds" -}}
kinds:
  - value: deployments
    name: deployments
    group: apps
    resources: [deployments]
    path: /validate-apps-v1-deployment
    podSpec: [spec, template, spec]
  - value: statefulSets
    name: statefulsets
    group: apps
    resources: [statefulsets]
    path: /validate-apps-v1-statefulset
    podSpec: [spec, template, spec]
  - value: daemonSets
    name: daemonsets
    group: apps
    resources: [daemonsets]
    path: /validate-apps-v1-daemonset
    podSpec: [spec, template, spec]
  - value: replicaSets
    name: replicasets
    group: apps
    resources: [replicasets]
    path: /validate-apps-v1-replicaset
    podSpec: [spec, template, spec]
  - value: jobs
    name: jobs
    group: batch
    resources: [jobs]
    path: /validate-batch-v1-job
    podSpec: [spec, template, spec]
  - value: cronJobs
    name: cronjobs
    group: batch
    resources: [cronjobs]
    path: /validate-batch-v1-cronjob
    podSpec: [spec, jobTemplate, spec, template, spec]
  - value: pods
    name: pods
    group: ""
    resources: [pods, pods/ephemeralcontainers]
    path: /validate--v1-pod
    podSpec: [spec]
    # Only a Pod has ephemeral containers (kubectl debug); templates may not.
    ephemeral: true
{{- end }}

{{/*
The CEL of matchConditions for a kind (from ecr-preflight.kinds: podSpec
is the path of its pod spec under object): true when any container, init
container or (Pods only) ephemeral container has an image whose reference names an ECR private
registry host (ACCOUNT.dkr.ecr[-fips].REGION... or the dual-stack
ACCOUNT.dkr-ecr[-fips].REGION...; internal/imageref), in any case. It
is a superset of what the webhook checks: a malformed ECR-looking host
is sent too, and reported by the webhook. Each step of the path is
guarded with has(), so an object without the field is not sent rather
than failing the evaluation.
*/}}
{{- define "ecr-preflight.hasECRImage" -}}
{{- $path := "object" }}
{{- $guards := list }}
{{- range .podSpec }}
{{- $path = printf "%s.%s" $path . }}
{{- $guards = append $guards (printf "has(%s)" $path) }}
{{- end }}
{{- $ecr := "has(c.image) && c.image.matches('(?i)dkr[.-]ecr')" }}
{{- $lists := list }}
{{- $fields := list "containers" "initContainers" }}
{{- if .ephemeral }}
{{- $fields = append $fields "ephemeralContainers" }}
{{- end }}
{{- range $fields }}
{{- $lists = append $lists (printf "(has(%s.%s) && %s.%s.exists(c, %s))" $path . $path . $ecr) }}
{{- end }}
{{- printf "%s && (%s)" (join " && " $guards) (join " || " $lists) }}
{{- end }}
