//! What the API server's validation refuses in the objects the relations and checks lean on, so
//! that a refused object is neither trusted (an HPA with `minReplicas: 5` that is never created
//! scales nothing) nor passed (a pod template whose probes the API server rejects runs no pod).
//!
//! Not a schema validator: only the rules whose breach a check would otherwise read as a pass,
//! taken from `pkg/apis/autoscaling/validation` and `pkg/apis/core/validation` (apimachinery
//! gives the API server's messages; these say the same in this tool's words). Each function
//! returns the first problem, or `None` when the API server admits what it looked at.

use super::At as _;
use serde_json::Value;

/// Whether a JSON value is an integer at least `min` (the API server's `int32` fields).
fn int_at_least(v: &Value, min: i64) -> bool {
    v.as_i64().is_some_and(|n| n >= min)
}

/// A HorizontalPodAutoscaler the API server refuses (`ValidateHorizontalPodAutoscaler`):
/// `minReplicas` below 1, `maxReplicas` below 1 or below `minReplicas`, a scale target without
/// kind or name, and (autoscaling/v2 and v2beta2) a metric target without its value, with both a
/// utilisation and a raw value, or not positive.
pub fn hpa_problem(hpa: &Value) -> Option<String> {
    let spec = hpa.get("spec")?;
    if let Some(min) = spec.get("minReplicas")
        && !int_at_least(min, 1)
    {
        return Some(format!("minReplicas {min} is below 1"));
    }
    let max = spec.get("maxReplicas");
    if !max.is_some_and(|m| int_at_least(m, 1)) {
        return Some("maxReplicas is missing or below 1".into());
    }
    if let (Some(min), Some(max)) = (
        spec.get("minReplicas").and_then(Value::as_i64),
        max.and_then(Value::as_i64),
    ) && max < min
    {
        return Some(format!("maxReplicas {max} is below minReplicas {min}"));
    }
    for field in ["kind", "name"] {
        if spec
            .at(&format!("/scaleTargetRef/{field}"))
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Some(format!("scaleTargetRef has no {field}"));
        }
    }
    if let Some(p) = spec.get("targetCPUUtilizationPercentage")
        && !int_at_least(p, 1)
    {
        return Some(format!("targetCPUUtilizationPercentage {p} is below 1"));
    }
    let api_version = hpa.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !matches!(api_version, "autoscaling/v2" | "autoscaling/v2beta2") {
        return None;
    }
    let metrics = spec.get("metrics").and_then(Value::as_array);
    metrics
        .into_iter()
        .flatten()
        .enumerate()
        .find_map(|(i, m)| metric_problem(m).map(|p| format!("metrics[{i}]: {p}")))
}

/// One autoscaling/v2 metric: its source's target (`validateMetricTarget`: a known type, values
/// positive, a utilisation of at least 1; and for `Resource` and `ContainerResource`
/// `validateResourceSource`'s "a raw value or a utilisation, not both").
fn metric_problem(m: &Value) -> Option<String> {
    let source = match m.get("type").and_then(Value::as_str) {
        Some("Resource") => "resource",
        Some("ContainerResource") => "containerResource",
        Some("Pods") => "pods",
        Some("Object") => "object",
        Some("External") => "external",
        Some(other) => return Some(format!("type {other:?} is not a metric source type")),
        None => return Some("no type".into()),
    };
    let Some(target) = m.at(&format!("/{source}/target")) else {
        return Some(format!("{source}.target is missing"));
    };
    let utilization = target.get("averageUtilization");
    let value = target.get("value");
    let average = target.get("averageValue");
    // The type must be one of the three; the field it names is not required (the API server
    // admits `{type: Utilization, averageValue: 1Gi}`, and the controller scales on the value).
    if !matches!(
        target.get("type").and_then(Value::as_str),
        Some("Utilization" | "Value" | "AverageValue")
    ) {
        return Some("target.type is not Utilization, Value or AverageValue".into());
    }
    if utilization.is_some_and(|u| !int_at_least(u, 1)) {
        return Some("target.averageUtilization is below 1".into());
    }
    for (name, q) in [("value", value), ("averageValue", average)] {
        if let Some(q) = q {
            let text = q.as_str().map_or_else(|| q.to_string(), str::to_string);
            match super::quantity::Quantity::parse(&text) {
                Ok(parsed) if parsed.sign() > 0 => {}
                Ok(_) => return Some(format!("target.{name} {text} is not positive")),
                Err(_) => return Some(format!("target.{name} {text:?} is not a quantity")),
            }
        }
    }
    if matches!(source, "resource" | "containerResource") {
        match (utilization.is_some(), average.is_some()) {
            (true, true) => {
                return Some(
                    "a resource target may not set both averageUtilization and averageValue".into(),
                );
            }
            (false, false) => {
                return Some("a resource target needs averageUtilization or averageValue".into());
            }
            _ => {}
        }
    }
    None
}

/// What the API server refuses in a pod spec that a check would otherwise pass
/// (`ValidatePodSpec`): a probe with no handler or more than one (`exec`, `httpGet`,
/// `tcpSocket`, `grpc`), an `httpGet` or `tcpSocket` without a port, a negative probe timing, a
/// liveness or startup probe whose `successThreshold` is not 1, and a `Localhost` seccomp profile
/// that names no profile.
pub fn pod_spec_problem(spec: &Value) -> Option<String> {
    if let Some(p) = seccomp_problem(spec.at("/securityContext/seccompProfile")) {
        return Some(format!("the pod's {p}"));
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(|list| spec.get(list).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        if let Some(p) = seccomp_problem(c.at("/securityContext/seccompProfile")) {
            return Some(format!("container {name}'s {p}"));
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(p) = c.get(probe).and_then(|p| probe_problem(probe, p)) {
                return Some(format!("container {name}'s {probe}: {p}"));
            }
        }
    }
    None
}

fn seccomp_problem(profile: Option<&Value>) -> Option<String> {
    let profile = profile?;
    let localhost = profile.get("type").and_then(Value::as_str) == Some("Localhost");
    let named = profile
        .get("localhostProfile")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty());
    (localhost && !named)
        .then(|| "seccompProfile of type Localhost names no localhostProfile".into())
}

fn probe_problem(which: &str, probe: &Value) -> Option<String> {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| probe.get(*h).is_some())
        .collect();
    match handlers.len() {
        0 => return Some("no handler (exec, httpGet, tcpSocket or grpc)".into()),
        1 => {}
        _ => {
            return Some(format!(
                "more than one handler ({}): the API server allows one",
                handlers.join(", ")
            ));
        }
    }
    for handler in ["httpGet", "tcpSocket"] {
        if let Some(h) = probe.get(handler) {
            let port = h.get("port");
            let valid = match port {
                Some(Value::Number(n)) => n.as_i64().is_some_and(|p| (1..=65535).contains(&p)),
                Some(Value::String(s)) => !s.is_empty(),
                _ => false,
            };
            if !valid {
                return Some(format!("{handler}.port is missing or not a port"));
            }
        }
    }
    if let Some(g) = probe.get("grpc")
        && !g.get("port").is_some_and(|p| int_at_least(p, 1))
    {
        return Some("grpc.port is missing or not a port".into());
    }
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
        "terminationGracePeriodSeconds",
    ] {
        if let Some(v) = probe.get(field)
            && !int_at_least(v, 0)
        {
            return Some(format!("{field} {v} is negative or not a number"));
        }
    }
    if which != "readinessProbe"
        && let Some(s) = probe.get("successThreshold")
        && s.as_i64() != Some(1)
        && s.as_i64() != Some(0)
    {
        return Some(format!("successThreshold {s} must be 1 for a {which}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hpas_the_api_server_refuses() {
        let hpa = |spec: Value| json!({"apiVersion": "autoscaling/v2", "spec": spec});
        let target = json!({"kind": "Deployment", "name": "a"});
        let ok = hpa(
            json!({"scaleTargetRef": target, "minReplicas": 3, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}),
        );
        assert_eq!(hpa_problem(&ok), None);
        for (spec, says) in [
            (
                json!({"scaleTargetRef": target, "minReplicas": 0, "maxReplicas": 3}),
                "minReplicas",
            ),
            (
                json!({"scaleTargetRef": target, "minReplicas": 5, "maxReplicas": 3}),
                "below minReplicas",
            ),
            (
                json!({"scaleTargetRef": {"kind": "Deployment"}, "maxReplicas": 3}),
                "no name",
            ),
            (
                json!({"scaleTargetRef": target, "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70, "averageValue": "500m"}}}]}),
                "may not set both",
            ),
            (
                json!({"scaleTargetRef": target, "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 0}}}]}),
                "below 1",
            ),
            (
                json!({"scaleTargetRef": target, "maxReplicas": 3, "metrics": [{"type": "Pods", "pods": {"metric": {"name": "x"},
                "target": {"type": "AverageValue", "averageValue": "-1"}}}]}),
                "not positive",
            ),
        ] {
            let p = hpa_problem(&hpa(spec.clone())).unwrap_or_default();
            assert!(p.contains(says), "{spec}: {p:?}");
        }
        // Admitted: the type need not name the field set (the controller scales on the value).
        let value_under_utilization = hpa(json!({"scaleTargetRef": target, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageValue": "1Gi"}}}]}));
        assert_eq!(hpa_problem(&value_under_utilization), None);
    }

    #[test]
    fn pod_specs_the_api_server_refuses() {
        let probe = |p: Value| json!({"containers": [{"name": "api", "livenessProbe": p}]});
        let ok = probe(
            json!({"httpGet": {"path": "/health/live", "port": 8000}, "successThreshold": 1}),
        );
        assert_eq!(pod_spec_problem(&ok), None);
        for (spec, says) in [
            (
                probe(
                    json!({"httpGet": {"path": "/", "port": 8000}, "exec": {"command": ["true"]}}),
                ),
                "more than one handler",
            ),
            (probe(json!({"httpGet": {"path": "/"}})), "httpGet.port"),
            (
                probe(json!({"tcpSocket": {"port": 8000}, "successThreshold": 2})),
                "must be 1",
            ),
            (
                probe(json!({"tcpSocket": {"port": "http"}, "initialDelaySeconds": -5})),
                "negative",
            ),
            (
                json!({"securityContext": {"seccompProfile": {"type": "Localhost"}}, "containers": []}),
                "localhostProfile",
            ),
        ] {
            let p = pod_spec_problem(&spec).unwrap_or_default();
            assert!(p.contains(says), "{spec}: {p:?}");
        }
    }
}
