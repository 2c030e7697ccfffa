//! What an object refers to, read from its spec: the ConfigMaps and Secrets a pod spec uses,
//! the Services an Ingress routes to, the namespaces a ServiceMonitor or PodMonitor watches.

use super::At as _;
use super::Object;
use serde_json::Value;

/// The namespaces a ServiceMonitor or PodMonitor watches, as the Prometheus Operator reads its
/// `namespaceSelector`: `any: true` is every namespace; `matchNames` those named, where an empty
/// list is the monitor's own namespace (as with no selector), not none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorNamespaces<'a> {
    Any,
    Own,
    Named(Vec<&'a str>),
}

pub fn monitor_namespaces(m: &Object) -> MonitorNamespaces<'_> {
    let ns_sel = m.json.at("/spec/namespaceSelector");
    if ns_sel.and_then(|s| s.get("any")).and_then(Value::as_bool) == Some(true) {
        return MonitorNamespaces::Any;
    }
    let names: Vec<&str> = ns_sel
        .and_then(|s| s.get("matchNames"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        MonitorNamespaces::Own
    } else {
        MonitorNamespaces::Named(names)
    }
}

/// Whether a ServiceMonitor or PodMonitor watches namespace `ns` ([`monitor_namespaces`]).
pub fn monitor_watches(m: &Object, ns: Option<&str>) -> bool {
    match monitor_namespaces(m) {
        MonitorNamespaces::Any => true,
        MonitorNamespaces::Own => m.namespace.as_deref() == ns,
        MonitorNamespaces::Named(names) => ns.is_some_and(|ns| names.contains(&ns)),
    }
}

/// The API group of an apiVersion: `apps/v1` is `apps`, `v1` (or nothing) the core group, "".
pub fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// What a HorizontalPodAutoscaler scales: the group, kind and name of its `scaleTargetRef`. The
/// controller looks the target up by group and kind, so an apiVersion of `v1`, or none, names
/// the core group, which holds no Deployment: such an HPA scales nothing (FailedGetScale).
pub fn scale_target(hpa: &Value) -> Option<(&str, &str, &str)> {
    let r = hpa.at("/spec/scaleTargetRef")?;
    let group = api_group(r.get("apiVersion").and_then(Value::as_str).unwrap_or(""));
    Some((
        group,
        r.get("kind").and_then(Value::as_str)?,
        r.get("name").and_then(Value::as_str)?,
    ))
}

/// Backend service names of an Ingress (default backend and every rule path), in either shape
/// a manifest may be written in: `networking.k8s.io/v1`'s `service.name` (and `defaultBackend`),
/// or the `v1beta1` APIs' `serviceName` (and `backend`), which the kinds table still matches. Read
/// in one shape only, a v1beta1 Ingress routed nowhere, and every Ingress check skipped it.
pub fn ingress_backends(ing: &Value) -> Vec<String> {
    ingress_backend_refs(ing)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// [`ingress_backends`], each with the Service port it names: v1's `service.port` (`{number}`
/// or `{name}`), v1beta1's `servicePort` (a number or a name); `Null` when none is given.
pub fn ingress_backend_refs(ing: &Value) -> Vec<(String, Value)> {
    let service = |backend: &Value| {
        let name = backend
            .at("/service/name")
            .or_else(|| backend.get("serviceName"))
            .and_then(Value::as_str)?
            .to_string();
        let port = backend
            .at("/service/port/number")
            .or_else(|| backend.at("/service/port/name"))
            .or_else(|| backend.get("servicePort"))
            .cloned()
            .unwrap_or(Value::Null);
        Some((name, port))
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

/// The `ingressBackends` fact of an Ingress: each backend's Service name and port, whether the
/// Service exists (`find`: the Service of that name in the Ingress's namespace) and has the port.
pub fn ingress_backend_facts<'a>(
    ing: &Value,
    find: impl Fn(&str) -> Option<&'a Object>,
) -> Vec<Value> {
    ingress_backend_refs(ing)
        .into_iter()
        .map(|(name, port)| {
            let svc = find(&name);
            serde_json::json!({
                "name": name,
                "exists": svc.is_some(),
                "portExists": svc.is_some_and(|s| service_has_port(&s.json, &port)),
                "port": port,
            })
        })
        .collect()
}

/// Whether Service `svc` has the port an Ingress backend names (`port`: a number is the
/// Service's `port`, a string its port's `name`; `Null`, no port named, is any).
pub fn service_has_port(svc: &Value, port: &Value) -> bool {
    let ports = svc.at("/spec/ports").and_then(Value::as_array);
    match port {
        Value::Null => true,
        Value::String(name) => ports
            .into_iter()
            .flatten()
            .any(|p| p.get("name").and_then(Value::as_str) == Some(name)),
        number => ports
            .into_iter()
            .flatten()
            .any(|p| p.get("port").and_then(Value::as_i64) == number.as_i64()),
    }
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
    /// The keys it reads (`configMapKeyRef.key`, a volume's `items[].key`): a key the object
    /// does not hold fails the pod as a missing object does (CreateContainerConfigError).
    pub keys: Vec<String>,
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
                let keys = v
                    .get("key")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .into_iter()
                    .chain(
                        v.get("items")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|i| i.get("key").and_then(Value::as_str))
                            .map(str::to_string),
                    )
                    .collect();
                out.push(PodRef {
                    kind: kind.into(),
                    name: name.into(),
                    via,
                    optional: v.get("optional").and_then(Value::as_bool).unwrap_or(false),
                    keys,
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

/// The pod spec of any object that carries one: a Pod's own, a CronJob's job template's, else
/// `spec.template.spec` (the workloads, Jobs, ReplicaSets). None for other kinds.
pub fn any_pod_spec(o: &Object) -> Option<&Value> {
    match o.kind.as_str() {
        "Pod" => o.json.at("/spec"),
        "CronJob" => o.json.at("/spec/jobTemplate/spec/template/spec"),
        _ => o.json.at("/spec/template/spec"),
    }
}

/// The pod spec's `persistentVolumeClaim` volumes, as (volume name, claimName), in order.
pub fn claim_volumes(spec: &Value) -> Vec<(&str, &str)> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let claim = v.at("/persistentVolumeClaim/claimName")?.as_str()?;
            Some((v.get("name").and_then(Value::as_str).unwrap_or(""), claim))
        })
        .collect()
}

/// A StatefulSet's `volumeClaimTemplates`, as (template name, the template's own
/// `spec.volumeName` when it names one): the controller gives pod `<set>-<n>` the claim
/// `<template>-<set>-<n>`, which the pod spec's `volumes` do not list.
pub fn claim_templates(set: &Object) -> Vec<(&str, Option<&str>)> {
    if set.kind != "StatefulSet" {
        return Vec::new();
    }
    set.json
        .at("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let name = t.at("/metadata/name")?.as_str()?;
            let volume = t
                .at("/spec/volumeName")
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty());
            Some((name, volume))
        })
        .collect()
}

/// `claim` without the `-<ordinal>` a StatefulSet's claims end with (`data-web-0` -> `data-web`),
/// or None for a name that does not end so. Every ordinal counts, not only those of the set's
/// current replicas: a claim kept from a larger scale is mounted again when the set grows.
pub fn set_claim_base(claim: &str) -> Option<&str> {
    let (base, ordinal) = claim.rsplit_once('-')?;
    (!base.is_empty() && !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
        .then_some(base)
}

/// The ordinal a StatefulSet's claim ends with, for ordering them (0 for none; a number too
/// large for `u64` last).
pub fn set_claim_ordinal(claim: &str) -> u64 {
    claim
        .rsplit_once('-')
        .map_or(0, |(_, n)| n.parse().unwrap_or(u64::MAX))
}

/// Whether PersistentVolume `pv` is pre-bound to claim `claim` of namespace `ns` by its
/// `spec.claimRef` (the binder binds such a volume to that claim and no other).
pub fn claim_ref_names(pv: &Object, ns: Option<&str>, claim: &str) -> bool {
    pv.json.at("/spec/claimRef").is_some_and(|r| {
        r.get("name").and_then(Value::as_str) == Some(claim)
            && r.get("namespace").and_then(Value::as_str) == ns
    })
}

/// What of a node a PersistentVolume mounts: `hostPath` or `local` (a node's directory, disk or
/// partition), with its path (`""` when it names none). None for other storage.
pub fn node_path(pv: &Object) -> Option<(&'static str, &str)> {
    ["hostPath", "local"].into_iter().find_map(|t| {
        let src = pv.json.at("/spec")?.get(t)?;
        src.is_object()
            .then(|| (t, src.get("path").and_then(Value::as_str).unwrap_or("")))
    })
}

#[cfg(test)]
mod tests {
    /// A StatefulSet's claims end with `-<ordinal>`; anything else is no set's claim.
    #[test]
    fn a_set_claim_is_its_base_and_an_ordinal() {
        for (claim, base, ordinal) in [
            ("data-web-0", Some("data-web"), 0),
            ("data-web-12", Some("data-web"), 12),
            ("a-b-c-3", Some("a-b-c"), 3),
            ("data-web-x", None, u64::MAX),
            ("data-web-", None, u64::MAX),
            ("-0", None, 0),
            ("data", None, 0),
            ("data-web-1a", None, u64::MAX),
        ] {
            assert_eq!(super::set_claim_base(claim), base, "{claim}");
            if base.is_some() {
                assert_eq!(super::set_claim_ordinal(claim), ordinal, "{claim}");
            }
        }
    }
}
