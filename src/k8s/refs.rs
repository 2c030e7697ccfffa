//! What an object refers to, read from its spec: the ConfigMaps and Secrets a pod spec uses,
//! the Services an Ingress routes to, the namespaces a ServiceMonitor or PodMonitor watches.

use super::At as _;
use super::Object;
use serde_json::Value;

/// Whether a ServiceMonitor or PodMonitor watches namespace `ns` (its namespaceSelector, else
/// its own namespace).
pub fn monitor_watches(m: &Object, ns: Option<&str>) -> bool {
    let ns_sel = m.json.at("/spec/namespaceSelector");
    if ns_sel.and_then(|s| s.get("any")).and_then(Value::as_bool) == Some(true) {
        true
    } else if let Some(names) = ns_sel
        .and_then(|s| s.get("matchNames"))
        .and_then(Value::as_array)
    {
        names.iter().any(|n| n.as_str() == ns)
    } else {
        m.namespace.as_deref() == ns
    }
}

/// Backend service names of an Ingress (default backend and every rule path), in either shape
/// a manifest may be written in: `networking.k8s.io/v1`'s `service.name` (and `defaultBackend`),
/// or the `v1beta1` APIs' `serviceName` (and `backend`), which the kinds table still matches. Read
/// in one shape only, a v1beta1 Ingress routed nowhere, and every Ingress check skipped it.
pub fn ingress_backends(ing: &Value) -> Vec<String> {
    let service = |backend: &Value| {
        backend
            .at("/service/name")
            .or_else(|| backend.get("serviceName"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let default = ing
        .at("/spec/defaultBackend")
        .or_else(|| ing.at("/spec/backend"));
    let paths = ing
        .at("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.at("/http/paths").and_then(Value::as_array))
        .flatten()
        .filter_map(|path| path.get("backend"));
    default
        .into_iter()
        .chain(paths)
        .filter_map(service)
        .collect()
}

/// The names of the image pull secrets a workload's pods use: its pod spec's, or, when that
/// names none, its ServiceAccount's (`service_account`: that object's JSON), which the
/// ServiceAccount admission controller copies into such pods, and only into those. Read from the
/// pod spec alone, a release whose only pull secret comes from its ServiceAccount, and is
/// missing, passed.
pub fn pull_secret_names<'a>(
    pod_spec: Option<&'a Value>,
    service_account: Option<&'a Value>,
) -> Vec<&'a str> {
    let names = |list: Option<&'a Value>| -> Vec<&'a str> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .collect()
    };
    let own = names(pod_spec.and_then(|p| p.get("imagePullSecrets")));
    if own.is_empty() {
        names(service_account.and_then(|sa| sa.get("imagePullSecrets")))
    } else {
        own
    }
}

/// The name of the ServiceAccount a workload's pods run as.
pub fn service_account_name(pod_spec: Option<&Value>) -> &str {
    pod_spec
        .and_then(|p| p.get("serviceAccountName"))
        .and_then(Value::as_str)
        .unwrap_or("default")
}

/// A reference from a pod spec to a ConfigMap or Secret.
#[derive(Debug, Clone)]
pub struct PodRef {
    pub kind: String,
    pub name: String,
    pub via: String,
    pub optional: bool,
}

/// Every ConfigMap and Secret a pod spec uses: volumes, projected sources, env, envFrom and
/// image pull secrets.
pub fn pod_references(spec: &Value) -> Vec<PodRef> {
    let mut out = Vec::new();
    let mut push = |kind: &str, v: Option<&Value>, via: String| {
        if let Some(v) = v {
            let name = v
                .get("name")
                .or_else(|| v.get("secretName"))
                .and_then(Value::as_str);
            if let Some(name) = name {
                out.push(PodRef {
                    kind: kind.into(),
                    name: name.into(),
                    via,
                    optional: v.get("optional").and_then(Value::as_bool).unwrap_or(false),
                });
            }
        }
    };
    for vol in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let vname = vol.get("name").and_then(Value::as_str).unwrap_or("?");
        push("ConfigMap", vol.get("configMap"), format!("volume {vname}"));
        push("Secret", vol.get("secret"), format!("volume {vname}"));
        for src in vol
            .at("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push("ConfigMap", src.get("configMap"), format!("volume {vname}"));
            push("Secret", src.get("secret"), format!("volume {vname}"));
        }
    }
    for list in ["initContainers", "containers"] {
        for c in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                let ename = e.get("name").and_then(Value::as_str).unwrap_or("?");
                push(
                    "ConfigMap",
                    e.at("/valueFrom/configMapKeyRef"),
                    format!("container {cname} env {ename}"),
                );
                push(
                    "Secret",
                    e.at("/valueFrom/secretKeyRef"),
                    format!("container {cname} env {ename}"),
                );
            }
            for e in c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push(
                    "ConfigMap",
                    e.get("configMapRef"),
                    format!("container {cname} envFrom"),
                );
                push(
                    "Secret",
                    e.get("secretRef"),
                    format!("container {cname} envFrom"),
                );
            }
        }
    }
    for s in spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push("Secret", Some(s), "imagePullSecrets".into());
    }
    out
}
