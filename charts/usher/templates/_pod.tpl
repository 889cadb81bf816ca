{{/*
The pod template of an usher Deployment:
  (dict "ctx" $ "component" "authz"|"login" "authz" bool "login" bool "resources" map)
"authz" and "login" are the roles the pod's `usher serve --roles` runs.
Secrets reach the container only as secretKeyRef or as files mounted from
Secrets the operator made; no secret value is ever a literal here.
*/}}
{{- define "usher.podTemplate" -}}
{{- $v := .ctx.Values -}}
{{- $trial := eq $v.mode "trial" -}}
{{- $roles := list -}}
{{- if .authz }}{{ $roles = append $roles "authz" }}{{ end -}}
{{- if .login }}{{ $roles = append $roles "login" }}{{ end -}}
{{- $sel := dict "ctx" .ctx "component" .component -}}
{{ include "usher.podMetadata" $sel }}
spec:
  serviceAccountName: {{ include "usher.serviceAccountName" .ctx }}
  automountServiceAccountToken: {{ $v.serviceAccount.automount }}
  enableServiceLinks: false
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    - {{- toYaml . | nindent 6 }}
      labelSelector:
        matchLabels:
          {{- include "usher.selectorLabels" $sel | nindent 10 }}
    {{- end }}
  {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: usher
      image: {{ include "usher.image" .ctx }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args:
        - serve
        - --config=/etc/usher/config/config.yaml
        - --roles={{ join "," $roles }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      ports:
        {{- if .authz }}
        - name: grpc
          containerPort: {{ $v.service.grpcPort }}
          protocol: TCP
        {{- if $v.httpCheck.enabled }}
        - name: http-check
          containerPort: {{ $v.httpCheck.port }}
          protocol: TCP
        {{- end }}
        {{- end }}
        {{- if .login }}
        - name: http-login
          containerPort: {{ $v.login.port }}
          protocol: TCP
        {{- end }}
        - name: http-admin
          containerPort: {{ $v.service.httpPort }}
          protocol: TCP
      env:
        - name: USHER_GRPC_ADDR
          value: ":{{ $v.service.grpcPort }}"
        - name: USHER_HTTP_ADDR
          value: ":{{ $v.service.httpPort }}"
        - name: USHER_RULES
          value: /etc/usher/config/rules.yaml
        {{- if $trial }}
        - name: USHER_DATA_DIR
          value: /data
        {{- else }}
        - name: USHER_MONGO_URI
          valueFrom:
            secretKeyRef:
              name: {{ $v.mongodb.existingSecret }}
              key: {{ $v.mongodb.uriKey }}
        {{- end }}
        {{- if $v.masterKey.existingSecret }}
        - name: USHER_MASTER_KEY_FILE
          value: /etc/usher/master-key/master-key
        {{- end }}
        {{- if $v.tls.enabled }}
        - name: USHER_TLS_CERT_FILE
          value: /etc/usher/tls/tls.crt
        - name: USHER_TLS_KEY_FILE
          value: /etc/usher/tls/tls.key
        {{- if $v.tls.clientCA.existingSecret }}
        - name: USHER_TLS_CLIENT_CA_FILE
          value: /etc/usher/client-ca/ca.crt
        {{- end }}
        {{- end }}
        {{- if and .authz $v.httpCheck.enabled }}
        - name: USHER_HTTP_CHECK_ADDR
          value: ":{{ $v.httpCheck.port }}"
        {{- with $v.httpCheck.trustedProxies }}
        - name: USHER_TRUSTED_PROXIES
          value: {{ join "," . | quote }}
        {{- end }}
        {{- end }}
        {{- with $v.login }}
        {{- if .enabled }}
        - name: USHER_AUTH_ENABLED
          value: "true"
        {{- with .url }}
        - name: USHER_LOGIN_URL
          value: {{ . | quote }}
        {{- end }}
        - name: USHER_ROOT_DOMAIN
          value: {{ .rootDomain | quote }}
        - name: USHER_ALLOWED_DOMAINS
          value: {{ join "," .allowedDomains | quote }}
        - name: USHER_ALLOW_ALL_USERS
          value: {{ .allowAllUsers | quote }}
        - name: USHER_AUTH_TENANT
          value: {{ .tenant | quote }}
        - name: USHER_AUTH_PROVIDER_TYPE
          value: {{ .provider.type | quote }}
        - name: USHER_AUTH_CLIENT_ID
          value: {{ .provider.clientId | quote }}
        {{- with .provider.issuerURL }}
        - name: USHER_AUTH_ISSUER_URL
          value: {{ . | quote }}
        {{- end }}
        {{- with .provider.redirectURL }}
        - name: USHER_AUTH_REDIRECT_URL
          value: {{ . | quote }}
        {{- end }}
        {{- with .provider.groupsClaim }}
        - name: USHER_AUTH_GROUPS_CLAIM
          value: {{ . | quote }}
        {{- end }}
        {{- end }}
        {{- end }}
        {{- if .login }}
        - name: USHER_LOGIN_ADDR
          value: ":{{ $v.login.port }}"
        - name: USHER_SESSION_KEY
          valueFrom:
            secretKeyRef:
              name: {{ $v.login.sessionKey.existingSecret }}
              key: {{ $v.login.sessionKey.key }}
        - name: USHER_AUTH_CLIENT_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ $v.login.provider.existingSecret }}
              key: {{ $v.login.provider.clientSecretKey }}
        {{- end }}
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http-admin
        periodSeconds: 2
        failureThreshold: 30
      # Liveness is the process answering /healthz, not the store: a pod
      # waiting for MongoDB is alive, and restarting it would turn a store
      # outage into a crash loop.
      livenessProbe:
        httpGet:
          path: /healthz
          port: http-admin
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 3
      readinessProbe:
        {{- if and .authz (not $v.tls.enabled) }}
        # The gRPC health service on the port Envoy calls: SERVING once
        # the store answered.
        grpc:
          port: {{ $v.service.grpcPort }}
          service: envoy.service.auth.v3.Authorization
        {{- else }}
        httpGet:
          path: /readyz
          port: http-admin
        {{- end }}
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 2
      resources:
        {{- toYaml .resources | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/usher/config
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if $trial }}
        - name: data
          mountPath: /data
        {{- end }}
        {{- if $v.masterKey.existingSecret }}
        - name: master-key
          mountPath: /etc/usher/master-key
          readOnly: true
        {{- end }}
        {{- if $v.tls.enabled }}
        - name: tls
          mountPath: /etc/usher/tls
          readOnly: true
        {{- if $v.tls.clientCA.existingSecret }}
        - name: client-ca
          mountPath: /etc/usher/client-ca
          readOnly: true
        {{- end }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "usher.fullname" .ctx }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $trial }}
    - name: data
      {{- if $v.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ $v.persistence.existingClaim | default (printf "%s-data" (include "usher.fullname" .ctx)) }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    {{- end }}
    {{- if $v.masterKey.existingSecret }}
    - name: master-key
      secret:
        secretName: {{ $v.masterKey.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $v.masterKey.key }}
            path: master-key
    {{- end }}
    {{- if $v.tls.enabled }}
    - name: tls
      secret:
        secretName: {{ $v.tls.existingSecret }}
        defaultMode: 0440
        items:
          - key: tls.crt
            path: tls.crt
          - key: tls.key
            path: tls.key
    {{- if $v.tls.clientCA.existingSecret }}
    - name: client-ca
      secret:
        secretName: {{ $v.tls.clientCA.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $v.tls.clientCA.key }}
            path: ca.crt
    {{- end }}
    {{- end }}
{{- end -}}
