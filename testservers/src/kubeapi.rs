//! A Kubernetes API server stand-in that serves objects loaded from manifest fixtures the way a
//! real kube-apiserver does: HTTPS with its own CA, bearer tokens (401 on a bad one, 403 for
//! anonymous and for resources a restricted token may not list), legacy and aggregated (v2)
//! discovery, namespaced and all-namespace lists whose items carry no kind/apiVersion,
//! `limit`/`continue` with opaque tokens and `remainingItemCount`, `labelSelector`, metadata-only
//! lists, real `Status` bodies, plain-text `404 page not found` for unknown groups, the service
//! and pod proxy, fault injection, and a log of every request's method for the read-only test.

use crate::tls::Pki;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A resource the server serves.
#[derive(Debug, Clone)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const fn r(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        namespaced,
    }
}

/// The core kinds every server has.
pub const CORE: &[Resource] = &[
    r("", "v1", "Namespace", "namespaces", false),
    r("", "v1", "Pod", "pods", true),
    r("", "v1", "Service", "services", true),
    r("", "v1", "ConfigMap", "configmaps", true),
    r("", "v1", "Secret", "secrets", true),
    r("", "v1", "ServiceAccount", "serviceaccounts", true),
    r("", "v1", "ResourceQuota", "resourcequotas", true),
    r("", "v1", "LimitRange", "limitranges", true),
    r(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    ),
    r("", "v1", "PersistentVolume", "persistentvolumes", false),
    r("apps", "v1", "Deployment", "deployments", true),
    r("apps", "v1", "ReplicaSet", "replicasets", true),
    r("apps", "v1", "StatefulSet", "statefulsets", true),
    r("apps", "v1", "DaemonSet", "daemonsets", true),
    r("batch", "v1", "Job", "jobs", true),
    r("batch", "v1", "CronJob", "cronjobs", true),
    r(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    r("networking.k8s.io", "v1", "Ingress", "ingresses", true),
    r("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
];

/// autoscaling/v2 and policy/v1, as current servers serve them.
pub const CURRENT: &[Resource] = &[
    r(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    r(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    r(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
];

/// What a 1.20 server serves instead: autoscaling/v2beta2 and policy/v1beta1 (no v2, no v1).
pub const LEGACY: &[Resource] = &[
    r(
        "autoscaling",
        "v2beta2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    r(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    r(
        "policy",
        "v1beta1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
];

/// CRDs a cluster with the Prometheus operator and trivy-operator has.
pub const CRDS: &[Resource] = &[
    r(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
        "servicemonitors",
        true,
    ),
    r(
        "monitoring.coreos.com",
        "v1",
        "PodMonitor",
        "podmonitors",
        true,
    ),
    r(
        "monitoring.coreos.com",
        "v1",
        "PrometheusRule",
        "prometheusrules",
        true,
    ),
    r(
        "monitoring.coreos.com",
        "v1alpha1",
        "AlertmanagerConfig",
        "alertmanagerconfigs",
        true,
    ),
    r(
        "aquasecurity.github.io",
        "v1alpha1",
        "VulnerabilityReport",
        "vulnerabilityreports",
        true,
    ),
];

/// Who a token is.
#[derive(Debug, Clone)]
pub enum Role {
    /// May read everything.
    Reader,
    /// May read everything but these resources (plural names): 403 on them.
    Restricted(Vec<String>),
}

#[derive(Debug, Clone)]
pub enum FaultKind {
    Status(u16),
    TooManyRequests {
        retry_after: u64,
    },
    Slow(Duration),
    /// Send half a page, then drop the connection.
    DropMidList,
    /// The fault applies only to list requests that carry a `continue` token (a later page).
    OnContinue(Box<FaultKind>),
    /// The list answers with its real page but always the same continue token (page 1 again).
    RepeatContinue,
    /// The list answers page 1 with a fresh continue token every time: it never ends.
    EndlessContinue,
    /// A 200 list without `items`.
    ItemsMissing,
    /// A 200 list with `items: null`.
    ItemsNull,
    /// A 200 list whose `items` is an object, not a list.
    ItemsNotList,
    /// A Status error with this code and message (an API server or webhook quoting what it saw).
    StatusMessage(u16, String),
    /// A 200 answer of this many bytes (a list padded with whitespace): a hostile or broken
    /// server the client must not read to the end.
    Huge(usize),
    /// The real answer, its body sent one byte every interval: each read succeeds, the answer
    /// never ends in time.
    Trickle(Duration),
    /// Accept the request and never answer.
    Hang,
    /// The first matching request is answered as usual; the fault applies from the next one
    /// (a document read twice that fails the second time).
    AfterFirst(Box<FaultKind>),
}

/// Fault injection: the next `times` requests whose path contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub path_contains: String,
    pub kind: FaultKind,
    pub times: usize,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Objects with kind and apiVersion, as in manifests.
    pub objects: Vec<Value>,
    pub tokens: BTreeMap<String, Role>,
    pub resources: Vec<Resource>,
    pub aggregated_discovery: bool,
    /// Groups whose APIService backend is down: aggregated discovery lists their versions with
    /// no resources and `freshness: Stale`, as the kube-aggregator does.
    pub stale_groups: Vec<String>,
    /// The server returns at most this many items a page (a real server honours `limit`; this
    /// forces continue tokens with small fixtures).
    pub page_cap: Option<usize>,
    pub faults: Vec<Fault>,
    /// "ns/services/name:port" or "ns/pods/name:port" -> upstream base URL for the proxy.
    pub proxies: BTreeMap<String, String>,
}

impl ApiConfig {
    pub fn new(objects: Vec<Value>) -> Self {
        let mut resources = CORE.to_vec();
        resources.extend_from_slice(CURRENT);
        resources.extend_from_slice(CRDS);
        Self {
            objects,
            tokens: BTreeMap::from([("reader-token".to_string(), Role::Reader)]),
            resources,
            aggregated_discovery: true,
            stale_groups: Vec::new(),
            page_cap: None,
            faults: Vec::new(),
            proxies: BTreeMap::new(),
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub uri: String,
    pub user: String,
    pub status: u16,
}

struct Inner {
    config: ApiConfig,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<Logged>>,
    http: reqwest_lite::Client,
    /// Makes EndlessContinue's tokens unique.
    continue_counter: std::sync::atomic::AtomicU64,
}

/// A running API server stand-in.
pub struct ApiServer {
    pub url: String,
    pub ca_pem: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiServer {
    pub fn log(&self) -> Vec<Logged> {
        self.inner.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A kubeconfig for this server with `token` (None: no credentials).
    pub fn kubeconfig(&self, token: Option<&str>, namespace: &str) -> String {
        kubeconfig(&self.url, &self.ca_pem, token, namespace)
    }
}

/// A kubeconfig naming `server`, trusting `ca_pem`, with a bearer `token` (None: no credentials).
pub fn kubeconfig(server: &str, ca_pem: &str, token: Option<&str>, namespace: &str) -> String {
    let ca = base64_encode(ca_pem.as_bytes());
    let user = token.map_or_else(|| "    {}".to_string(), |t| format!("    token: {t}"));
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: {namespace}\ncurrent-context: test\nusers:\n- name: test\n  user:\n{user}\n"
    )
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Starts the server on 127.0.0.1 with its own CA.
pub async fn start(config: ApiConfig) -> std::io::Result<ApiServer> {
    let pki = crate::tls::pki("kube-apiserver", &["127.0.0.1", "localhost"]);
    start_with_pki(config, &pki).await
}

pub async fn start_with_pki(config: ApiConfig, pki: &Pki) -> std::io::Result<ApiServer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("https://{}", listener.local_addr()?);
    let inner = Arc::new(Inner {
        faults: Mutex::new(config.faults.clone()),
        config,
        log: Mutex::new(Vec::new()),
        http: reqwest_lite::Client,
        continue_counter: std::sync::atomic::AtomicU64::new(0),
    });
    let app = Router::new().fallback(handle).with_state(inner.clone());
    let task = crate::tls::serve(listener, app, pki);
    Ok(ApiServer {
        url,
        ca_pem: pki.ca_pem.clone(),
        inner,
        task,
    })
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    if let Some(d) = details {
        body["details"] = d;
    }
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn page_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

fn json_response(v: &Value, content_type: &str) -> Response {
    (
        StatusCode::OK,
        [("content-type", content_type.to_string())],
        v.to_string(),
    )
        .into_response()
}

fn group_version(r: &Resource) -> String {
    if r.group.is_empty() {
        r.version.to_string()
    } else {
        format!("{}/{}", r.group, r.version)
    }
}

fn verbs() -> Value {
    json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ])
}

fn resource_list(inner: &Inner, group: &str, version: &str) -> Option<Value> {
    let res: Vec<&Resource> = inner
        .config
        .resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if res.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list: Vec<Value> = Vec::new();
    for r in res {
        list.push(json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind, "verbs": verbs()}));
        if r.kind == "Deployment"
            || r.kind == "HorizontalPodAutoscaler"
            || r.kind == "PodDisruptionBudget"
        {
            list.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        if r.kind == "Service" || r.kind == "Pod" {
            list.push(json!({"name": format!("{}/proxy", r.plural), "singularName": "", "namespaced": true, "kind": format!("{}ProxyOptions", r.kind), "verbs": ["create", "delete", "get", "patch", "update"]}));
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

fn groups(inner: &Inner) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for r in inner
        .config
        .resources
        .iter()
        .filter(|r| !r.group.is_empty())
    {
        match out.iter_mut().find(|(g, _)| g == r.group) {
            Some((_, vs)) => {
                if !vs.iter().any(|v| v == r.version) {
                    vs.push(r.version.to_string());
                }
            }
            None => out.push((r.group.to_string(), vec![r.version.to_string()])),
        }
    }
    out
}

fn aggregated(inner: &Inner, core: bool) -> Value {
    let mut items = Vec::new();
    let group_list: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        groups(inner)
    };
    for (g, versions) in group_list {
        let mut vs = Vec::new();
        for v in versions {
            if inner.config.stale_groups.contains(&g) {
                vs.push(json!({"version": v, "resources": [], "freshness": "Stale"}));
                continue;
            }
            let resources: Vec<Value> = inner
                .config
                .resources
                .iter()
                .filter(|r| r.group == g && r.version == v)
                .map(|r| {
                    json!({"resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": r.kind.to_lowercase(), "verbs": verbs()})
                })
                .collect();
            vs.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        items.push(json!({"metadata": {"name": g}, "versions": vs}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

const AGGREGATED_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(inner: &Inner, headers: &HeaderMap) -> bool {
    inner.config.aggregated_discovery
        && headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=APIGroupDiscoveryList") && a.contains("v=v2"))
}

fn label_matches(selector: &str, labels: &serde_json::Map<String, Value>) -> bool {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|t| {
            if let Some(k) = t.strip_prefix('!') {
                get(k.trim()).is_none()
            } else if let Some((k, v)) = t.split_once("!=") {
                get(k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                get(k.trim()) == Some(v.trim())
            } else if let Some((k, rest)) = t.split_once(" notin ") {
                let set: Vec<&str> = rest
                    .trim()
                    .trim_matches(['(', ')'])
                    .split(',')
                    .map(str::trim)
                    .collect();
                get(k.trim()).is_none_or(|v| !set.contains(&v))
            } else if let Some((k, rest)) = t.split_once(" in ") {
                let set: Vec<&str> = rest
                    .trim()
                    .trim_matches(['(', ')'])
                    .split(',')
                    .map(str::trim)
                    .collect();
                get(k.trim()).is_some_and(|v| set.contains(&v))
            } else {
                get(t).is_some()
            }
        })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(b'%');
                    i += 1;
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/api/v1/...` and `/apis/g/v/...` into (group, version, rest segments).
fn split_path(path: &str) -> Option<(String, String, Vec<String>)> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 2 => {
            Some((String::new(), segs[1].clone(), segs[2..].to_vec()))
        }
        Some("apis") if segs.len() >= 3 => {
            Some((segs[1].clone(), segs[2].clone(), segs[3..].to_vec()))
        }
        _ => None,
    }
}

fn object_api_version_matches(obj: &Value, r: &Resource) -> bool {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let group = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    kind == r.kind && group == r.group
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let user = match headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        None => Ok(("system:anonymous".to_string(), None)),
        Some(t) => match inner.config.tokens.get(t) {
            Some(role) => Ok((format!("token:{t}"), Some(role.clone()))),
            None => Err(()),
        },
    };
    let (user_name, role) = match &user {
        Ok((n, r)) => (n.clone(), r.clone()),
        Err(()) => ("invalid-token".to_string(), None),
    };
    let response = if user.is_err() {
        status(401, "Unauthorized", "Unauthorized", None)
    } else {
        respond(&inner, &method, &uri, &headers, role.as_ref(), &user_name).await
    };
    if let Ok(mut log) = inner.log.lock() {
        log.push(Logged {
            method: method.to_string(),
            uri: uri.to_string(),
            user: user_name,
            status: response.status().as_u16(),
        });
    }
    response
}

async fn respond(
    inner: &Inner,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    role: Option<&Role>,
    user: &str,
) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    if method != Method::GET {
        return status(
            405,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({method})"),
            None,
        );
    }
    let Some(role) = role else {
        return status(
            403,
            "Forbidden",
            &format!("forbidden: User \"{user}\" cannot get path \"{path}\""),
            Some(json!({})),
        );
    };
    // Injected faults, in order.
    let on_continue = query_param(query, "continue").is_some_and(|c| !c.is_empty());
    let fault = inner.faults.lock().ok().and_then(|mut f| {
        let i = f.iter().position(|x| {
            x.times > 0
                && path.contains(&x.path_contains)
                && (on_continue || !matches!(x.kind, FaultKind::OnContinue(_)))
        })?;
        if let FaultKind::AfterFirst(k) = &f[i].kind {
            f[i].kind = (**k).clone();
            return None;
        }
        f[i].times -= 1;
        Some(match f[i].kind.clone() {
            FaultKind::OnContinue(k) => *k,
            k => k,
        })
    });
    match fault {
        Some(FaultKind::Hang) => {
            tokio::time::sleep(Duration::from_hours(1)).await;
            status(504, "Timeout", "hung by fault injection", None)
        }
        Some(FaultKind::Trickle(every)) => {
            let answer = respond_to(inner, uri, headers, role, user, None).await;
            let (parts, body) = answer.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default()
                .to_vec();
            let stream = futures_util::stream::unfold(0usize, move |i| {
                let byte = bytes.get(i).copied();
                async move {
                    let byte = byte?;
                    tokio::time::sleep(every).await;
                    Some((Ok::<_, std::io::Error>(vec![byte]), i + 1))
                }
            });
            let mut parts = parts;
            parts.headers.remove("content-length");
            Response::from_parts(parts, Body::from_stream(stream))
        }
        fault => respond_to(inner, uri, headers, role, user, fault).await,
    }
}

/// The answer to one request, with a fault (other than Hang and Trickle) applied.
async fn respond_to(
    inner: &Inner,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    role: &Role,
    user: &str,
    fault: Option<FaultKind>,
) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    // Faults that change a list answer rather than replace it.
    let mut list_fault = None;
    match fault {
        Some(FaultKind::Status(code)) => {
            let reason = match code {
                404 => "NotFound",
                410 => "Expired",
                _ => "InternalError",
            };
            return status(code, reason, "injected fault", None);
        }
        Some(FaultKind::Huge(bytes)) => {
            let mut body = String::with_capacity(bytes);
            body.push_str("{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[]");
            body.push_str(&" ".repeat(bytes.saturating_sub(body.len() + 1)));
            body.push('}');
            return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
        }
        Some(FaultKind::StatusMessage(code, message)) => {
            return status(code, "InternalError", &message, None);
        }
        Some(FaultKind::TooManyRequests { retry_after }) => {
            let mut r = status(
                429,
                "TooManyRequests",
                "too many requests, please try again later",
                Some(json!({"retryAfterSeconds": retry_after})),
            );
            r.headers_mut().insert(
                "retry-after",
                retry_after.to_string().parse().expect("digits"),
            );
            return r;
        }
        Some(FaultKind::Slow(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::DropMidList) => {
            // Half a JSON page, then the stream fails: the client sees a dropped connection.
            let chunks: Vec<Result<&'static [u8], std::io::Error>> = vec![
                Ok(b"{\"kind\":\"List\",\"items\":[{\"metadata\":{\"name\":\"x\"".as_slice()),
                Err(std::io::Error::other(
                    "connection dropped by fault injection",
                )),
            ];
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
        }
        Some(
            k @ (FaultKind::RepeatContinue
            | FaultKind::EndlessContinue
            | FaultKind::ItemsMissing
            | FaultKind::ItemsNull
            | FaultKind::ItemsNotList),
        ) => list_fault = Some(k),
        Some(
            FaultKind::OnContinue(_)
            | FaultKind::Hang
            | FaultKind::Trickle(_)
            | FaultKind::AfterFirst(_),
        )
        | None => {}
    }
    match path {
        "/version" => {
            return json_response(
                &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-mlsdm-audit-test", "platform": "linux/amd64"}),
                "application/json",
            );
        }
        "/api" | "/api/" => {
            if wants_aggregated(inner, headers) {
                return json_response(&aggregated(inner, true), AGGREGATED_CT);
            }
            return json_response(
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
                "application/json",
            );
        }
        "/apis" | "/apis/" => {
            if wants_aggregated(inner, headers) {
                return json_response(&aggregated(inner, false), AGGREGATED_CT);
            }
            let groups: Vec<Value> = groups(inner)
                .into_iter()
                .map(|(g, vs)| {
                    let versions: Vec<Value> = vs
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                        .collect();
                    json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
                })
                .collect();
            return json_response(
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                "application/json",
            );
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/apis/") {
        let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        if segs.len() == 1 {
            let Some((g, vs)) = groups(inner).into_iter().find(|(g, _)| g == segs[0]) else {
                return page_not_found();
            };
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            return json_response(
                &json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": versions, "preferredVersion": versions[0]}),
                "application/json",
            );
        }
    }
    let Some((group, version, rest)) = split_path(path) else {
        return page_not_found();
    };
    if !inner
        .config
        .resources
        .iter()
        .any(|r| r.group == group && r.version == version)
    {
        return page_not_found();
    }
    // The kube-aggregator answers a group version whose APIService's backend is down with 503,
    // as aggregated discovery marks it Stale.
    if rest.is_empty() && inner.config.stale_groups.contains(&group) {
        return status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            None,
        );
    }
    if rest.is_empty() {
        return resource_list(inner, &group, &version)
            .map_or_else(page_not_found, |v| json_response(&v, "application/json"));
    }
    // [namespaces, ns, plural, name?, sub?...] or [plural, name?]
    let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" {
        (Some(rest[1].clone()), rest[2..].to_vec())
    } else {
        (None, rest)
    };
    let plural = rest[0].as_str();
    let Some(res) = inner
        .config
        .resources
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
    else {
        // /api/v1/namespaces/{name} is a GET of a Namespace.
        if group.is_empty() && namespace.is_some() && rest.is_empty() {
            return page_not_found();
        }
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        );
    };
    if let Role::Restricted(denied) = role
        && denied.iter().any(|d| d == res.plural)
    {
        let scope = namespace.as_ref().map_or_else(
            || "at the cluster scope".to_string(),
            |ns| format!("in the namespace \"{ns}\""),
        );
        let verb = if rest.len() > 1 { "get" } else { "list" };
        return status(
            403,
            "Forbidden",
            &format!(
                "{}{} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                res.plural,
                if rest.len() > 1 {
                    format!(" \"{}\"", rest[1])
                } else {
                    String::new()
                },
                res.plural,
                res.group
            ),
            Some(json!({"kind": res.plural})),
        );
    }
    let gv = group_version(res);
    let in_scope = |o: &&Value| {
        object_api_version_matches(o, res)
            && namespace.as_ref().is_none_or(|ns| {
                o.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns.as_str())
            })
    };
    // Proxy: /api/v1/namespaces/ns/services/name:port/proxy/...
    if rest.len() >= 3 && rest[2] == "proxy" && (res.plural == "services" || res.plural == "pods") {
        let key = format!(
            "{}/{}/{}",
            namespace.clone().unwrap_or_default(),
            res.plural,
            rest[1]
        );
        let Some(base) = inner.config.proxies.get(&key) else {
            return status(
                503,
                "ServiceUnavailable",
                &format!("no endpoints available for service \"{}\"", rest[1]),
                None,
            );
        };
        let target = format!(
            "{base}/{}{}",
            rest[3..].join("/"),
            if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            }
        );
        let forward: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| {
                !["authorization", "host", "connection", "accept-encoding"].contains(&k.as_str())
            })
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        return match inner.http.get(&target, &forward).await {
            Ok((code, upstream_headers, body)) => {
                let mut proxied_response = (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
                    body,
                )
                    .into_response();
                for (k, v) in upstream_headers {
                    if let (Ok(k), Ok(v)) = (
                        axum::http::HeaderName::from_bytes(k.as_bytes()),
                        axum::http::HeaderValue::from_str(&v),
                    ) {
                        proxied_response.headers_mut().insert(k, v);
                    }
                }
                proxied_response
            }
            Err(e) => status(
                503,
                "ServiceUnavailable",
                &format!("error trying to reach service: {e}"),
                None,
            ),
        };
    }
    if rest.len() >= 2 {
        let name = &rest[1];
        return match inner
            .config
            .objects
            .iter()
            .filter(in_scope)
            .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
        {
            Some(o) => {
                let mut o = o.clone();
                o["apiVersion"] = json!(gv);
                json_response(&o, "application/json")
            }
            None => status(
                404,
                "NotFound",
                &format!("{} \"{name}\" not found", res.plural),
                Some(json!({"name": name, "kind": res.plural})),
            ),
        };
    }
    // A list.
    let selector = query_param(query, "labelSelector").unwrap_or_default();
    let field = query_param(query, "fieldSelector").unwrap_or_default();
    let mut items: Vec<Value> = inner
        .config
        .objects
        .iter()
        .filter(in_scope)
        .filter(|o| {
            let empty = serde_json::Map::new();
            label_matches(
                &selector,
                o.pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty),
            )
        })
        .filter(|o| {
            field
                .strip_prefix("metadata.name=")
                .is_none_or(|n| o.pointer("/metadata/name").and_then(Value::as_str) == Some(n))
        })
        .cloned()
        .collect();
    items.sort_by(|a, b| {
        let k = |o: &Value| {
            (
                o.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                o.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        };
        k(a).cmp(&k(b))
    });
    let total = items.len();
    let start = match query_param(query, "continue").filter(|c| !c.is_empty()) {
        None => 0,
        Some(token) => match decode_continue(&token) {
            Some(n) if n <= total => n,
            _ => {
                return status(
                    400,
                    "BadRequest",
                    "the provided continue parameter is too old to display a consistent list result",
                    None,
                );
            }
        },
    };
    let limit = query_param(query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let take = match (limit, inner.config.page_cap) {
        (Some(l), Some(c)) => l.min(c),
        (Some(l), None) => l,
        (None, Some(c)) => c,
        (None, None) => usize::MAX,
    };
    let end = start.saturating_add(take).min(total);
    let metadata_only = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadataList"));
    let page: Vec<Value> = items[start..end]
        .iter()
        .map(|o| {
            if metadata_only {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
            } else {
                let mut o = o.clone();
                if let Some(m) = o.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                o
            }
        })
        .collect();
    let mut meta = json!({"resourceVersion": "4242"});
    if end < total {
        meta["continue"] = json!(encode_continue(end));
        meta["remainingItemCount"] = json!(total - end);
    }
    let mut list = if metadata_only {
        // As kube-apiserver encodes an empty metadata-only page: a nil Go slice.
        let page = if page.is_empty() {
            Value::Null
        } else {
            Value::Array(page)
        };
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": page})
    } else {
        json!({"kind": format!("{}List", res.kind), "apiVersion": gv, "metadata": meta, "items": page})
    };
    match list_fault {
        Some(FaultKind::RepeatContinue) => {
            list["metadata"]["continue"] = json!(encode_continue(0));
        }
        Some(FaultKind::EndlessContinue) => {
            let n = inner
                .continue_counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            list["metadata"]["continue"] = json!(base64_encode(
                format!("{{\"v\":\"meta.k8s.io/v1\",\"rv\":4242,\"start\":0,\"n\":{n}}}")
                    .as_bytes()
            ));
        }
        Some(FaultKind::ItemsMissing) => {
            if let Some(m) = list.as_object_mut() {
                m.remove("items");
            }
        }
        Some(FaultKind::ItemsNull) => list["items"] = Value::Null,
        Some(FaultKind::ItemsNotList) => list["items"] = json!({"0": page_first(&list)}),
        _ => {}
    }
    if metadata_only {
        json_response(
            &list,
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )
    } else {
        json_response(&list, "application/json")
    }
}

fn page_first(list: &Value) -> Value {
    list["items"].get(0).cloned().unwrap_or(Value::Null)
}

fn encode_continue(offset: usize) -> String {
    base64_encode(format!("{{\"v\":\"meta.k8s.io/v1\",\"rv\":4242,\"start\":{offset}}}").as_bytes())
}

fn decode_continue(token: &str) -> Option<usize> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    usize::try_from(v.get("start")?.as_u64()?).ok()
}

/// The proxy's upstream client: plain HTTP/1.0 to the MLSDM stand-in on 127.0.0.1, passing
/// request headers on and every response header back, as the API server's proxy does.
mod reqwest_lite {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Client;

    /// What the upstream answered: status, headers, body.
    pub type Upstream = (u16, Vec<(String, String)>, Vec<u8>);

    impl Client {
        pub async fn get(
            &self,
            url: &str,
            headers: &[(String, String)],
        ) -> Result<Upstream, String> {
            use std::fmt::Write as _;
            let rest = url.strip_prefix("http://").ok_or("only http upstreams")?;
            let (host, path) = rest
                .split_once('/')
                .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
            let mut s = tokio::net::TcpStream::connect(host)
                .await
                .map_err(|e| e.to_string())?;
            let mut head = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n");
            for (k, v) in headers {
                let _ = write!(head, "{k}: {v}\r\n");
            }
            head.push_str("\r\n");
            s.write_all(head.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut buf))
                .await
                .map_err(|_| "upstream timed out".to_string())?
                .map_err(|e| e.to_string())?;
            let split = buf
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .ok_or("no HTTP header")?;
            let head = String::from_utf8_lossy(&buf[..split]).to_string();
            let code = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or("bad status line")?;
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| {
                    l.split_once(':')
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                })
                .filter(|(k, _)| {
                    !["connection", "content-length", "transfer-encoding", "date"]
                        .contains(&k.as_str())
                })
                .collect();
            Ok((code, headers, buf[split + 4..].to_vec()))
        }
    }
}
