//! A synthetic release of any size, for benchmarks and the optimized-vs-straightforward test
//! (issue 12): one app is a Deployment, a Service, an HPA, a PDB and a ConfigMap, in one YAML
//! file; every tenth app runs MLSDM (its image, CONFIG_PATH and a mounted config.yaml, as in
//! fixtures/compliant). Apps are spread over namespaces of `APPS_PER_NAMESPACE`, so relations
//! have neighbours to tell apart without one namespace holding the whole cluster.

use std::fmt::Write as _;

/// Apps (five objects each) per namespace.
pub const APPS_PER_NAMESPACE: usize = 25;

/// The objects of one app.
pub const OBJECTS_PER_APP: usize = 5;

/// `(relative path, YAML text)` of every file of a release of about `objects` objects (rounded
/// up to whole apps): one file per app, under one directory per namespace.
pub fn manifest_files(objects: usize) -> Vec<(String, String)> {
    (0..apps(objects))
        .map(|i| {
            let ns = namespace(i);
            (format!("{ns}/app-{i:05}.yaml"), app_yaml(i, &ns))
        })
        .collect()
}

fn apps(objects: usize) -> usize {
    objects.div_ceil(OBJECTS_PER_APP).max(1)
}

fn namespace(app: usize) -> String {
    format!("team-{:04}", app / APPS_PER_NAMESPACE)
}

fn is_mlsdm(app: usize) -> bool {
    app.is_multiple_of(10)
}

/// One app's five documents.
pub fn app_yaml(i: usize, ns: &str) -> String {
    let name = format!("app-{i:05}");
    let mlsdm = is_mlsdm(i);
    let mut y = String::with_capacity(4096);
    let image = if mlsdm {
        "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0@sha256:4f2a9c1e8b7d6a5f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a09".to_string()
    } else {
        format!("registry.example/{name}:1.{}.0", i % 7)
    };
    let port = if mlsdm { 8000 } else { 8080 };
    let _ = write!(
        y,
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app: {name}
    app.kubernetes.io/name: {name}
    app.kubernetes.io/version: "1.{v}.0"
spec:
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      app: {name}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: {name}
        app.kubernetes.io/name: {name}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "{port}"
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        fsGroup: 1000
        seccompProfile:
          type: RuntimeDefault
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app: {name}
      containers:
        - name: {container}
          image: {image}
          imagePullPolicy: IfNotPresent
          ports:
            - name: http
              containerPort: {port}
              protocol: TCP
          env:
"#,
        v = i % 7,
        container = if mlsdm { "mlsdm-api" } else { "main" },
    );
    if mlsdm {
        y.push_str(
            r#"            - name: CONFIG_PATH
              value: /etc/mlsdm/config.yaml
            - name: LLM_BACKEND
              value: local_stub
            - name: JSON_LOGGING
              value: "true"
"#,
        );
    }
    let _ = write!(
        y,
        r#"            - name: LOG_LEVEL
              value: INFO
          resources:
            requests:
              memory: 512Mi
              cpu: 250m
            limits:
              memory: 2Gi
              cpu: "1"
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          livenessProbe:
            httpGet:
              path: /health/liveness
              port: http
            periodSeconds: 20
          readinessProbe:
            httpGet:
              path: /health/readiness
              port: http
            periodSeconds: 10
          volumeMounts:
            - name: config
              mountPath: /etc/mlsdm
              readOnly: true
      volumes:
        - name: config
          configMap:
            name: {name}-config
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app: {name}
spec:
  selector:
    app: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
  namespace: {ns}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: 3
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
  namespace: {ns}
spec:
  minAvailable: 2
  selector:
    matchLabels:
      app: {name}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
  namespace: {ns}
data:
"#
    );
    if mlsdm {
        y.push_str(
            r"  config.yaml: |
    dimension: 384
    strict_mode: true
    pelm:
      capacity: 20000
    moral_filter:
      threshold: 0.5
      adapt_rate: 0.05
      min_threshold: 0.3
      max_threshold: 0.9
    cognitive_rhythm:
      wake_duration: 8
      sleep_duration: 3
",
        );
    } else {
        y.push_str("  config.yaml: |\n    level: info\n    workers: 4\n");
    }
    y
}

/// Writes [`manifest_files`] under `dir`; returns how many files.
pub fn write_manifests(dir: &std::path::Path, objects: usize) -> std::io::Result<usize> {
    let files = manifest_files(objects);
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(files.len())
}
