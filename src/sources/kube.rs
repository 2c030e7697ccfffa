//! Facts from a live cluster, read through the Kubernetes API like kubectl does: kubeconfig or
//! in-cluster config from kube-rs, then discovery (aggregated, falling back to the legacy
//! endpoints), then one paged list per kind and namespace scope, all kinds at once, politely
//! rate-limited and retried. Only GET is ever sent.
//!
//! Errors are classified by type, not by text (src/sources/kube/error.rs): 401, a bad CA, a
//! refused connection or a timeout end the run with one line; 403 on a kind turns the checks that need
//! it into `error` with the RBAC rule that is missing; a kind the server does not serve (a CRD
//! that is not installed) is reported as such, never as a pass.

use crate::k8s::{Object, WORKLOAD_KINDS};
use http::{Request, StatusCode, header};
use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How to reach the cluster (kubectl's flags).
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub qps: f64,
    pub burst: u32,
    pub timeout: Duration,
    pub progress: bool,
    /// The most pages one list may take (500 items each) before it is called incomplete.
    pub max_pages: u32,
}

/// The default bound on pages per list: 5 million objects of one kind, far beyond any namespace.
pub const DEFAULT_MAX_PAGES: u32 = 10_000;

mod error;
pub use error::{ClusterError, ClusterErrorKind};

/// What listing the cluster produced.
#[derive(Debug, Default)]
pub struct ClusterFacts {
    pub objects: Vec<Object>,
    /// kind -> why it could not be read (403 with the RBAC hint, or a server error).
    pub kind_errors: BTreeMap<String, String>,
    /// Kinds the server does not serve (CRDs not installed).
    pub missing_kinds: BTreeSet<String>,
    pub server: String,
    pub namespace: Option<String>,
    pub context: Option<String>,
    pub requests: u64,
}

/// client-go-style token bucket: `burst` requests at once, then `qps` per second (client-go's
/// `flowcontrol.NewTokenBucketRateLimiter`, whose defaults `--qps`/`--burst` follow).
///
/// Kept here rather than taken from `governor`: that crate (std only, no quanta) adds seven
/// crates and waits on futures-timer's own timer thread, for what these lines do on tokio's
/// clock; the semantics (float qps, whole-token burst) are client-go's, which operators know.
struct RateLimiter {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(qps: f64, burst: u32) -> Self {
        Self {
            qps: qps.max(0.1),
            burst: f64::from(burst.max(1)),
            state: Mutex::new((f64::from(burst.max(1)), Instant::now())),
        }
    }

    async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let elapsed = s.1.elapsed().as_secs_f64();
                s.0 = (s.0 + elapsed * self.qps).min(self.burst);
                s.1 = Instant::now();
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    return;
                }
                (1.0 - s.0) / self.qps
            };
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// The API client with its limiter, retries and the server name for messages.
#[derive(Clone)]
pub struct Api {
    client: Client,
    limiter: Arc<RateLimiter>,
    server: String,
    timeout: Duration,
    counter: Arc<std::sync::atomic::AtomicU64>,
}

/// An HTTP answer from the API server.
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

fn status_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(200)
                .collect()
        })
}

impl Api {
    /// One GET with retries on 429 and 5xx (honouring Retry-After) and on dropped connections.
    pub async fn get(&self, path_and_query: &str, accept: &str) -> Result<Answer, ClusterError> {
        let cap = usize::try_from(crate::input::cap()).unwrap_or(usize::MAX);
        self.get_with(path_and_query, accept, &[], cap).await
    }

    /// A GET with extra request headers (the service proxy passes them on to the pod).
    pub async fn get_with(
        &self,
        path_and_query: &str,
        accept: &str,
        extra: &[(String, String)],
        cap: usize,
    ) -> Result<Answer, ClusterError> {
        self.get_bounded(path_and_query, accept, extra, self.timeout, None, cap)
            .await
    }

    /// A probe through the API server's proxy: the whole of it, retries included, bounded by
    /// `timeout` (--http-timeout), like a probe sent straight to an --endpoint.
    pub async fn probe(
        &self,
        path_and_query: &str,
        extra: &[(String, String)],
        timeout: Duration,
        cap: usize,
    ) -> Result<Answer, ClusterError> {
        self.get_bounded(path_and_query, "*/*", extra, timeout, Some(timeout), cap)
            .await
    }

    /// One GET, each attempt bounded by `per_attempt` (headers and body) and all of them by
    /// `total`. A timed-out attempt is not retried: the run must not wait five times as long.
    async fn get_bounded(
        &self,
        path_and_query: &str,
        accept: &str,
        extra: &[(String, String)],
        per_attempt: Duration,
        total: Option<Duration>,
        cap: usize,
    ) -> Result<Answer, ClusterError> {
        let started = Instant::now();
        let flag = if total.is_some() {
            "--http-timeout"
        } else {
            "--request-timeout"
        };
        let timed_out = |limit: Duration| {
            ClusterError::new(
                ClusterErrorKind::Timeout,
                &self.server,
                &format!("no complete answer within {limit:?} ({flag}) ({path_and_query})"),
            )
        };
        let mut attempt = 0u32;
        loop {
            let remaining = total.map_or(per_attempt, |t| t.saturating_sub(started.elapsed()));
            if remaining.is_zero() {
                return Err(timed_out(total.unwrap_or(per_attempt)));
            }
            let limit = per_attempt.min(remaining);
            self.limiter.acquire().await;
            self.counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut builder = Request::get(path_and_query);
            for (k, v) in extra {
                builder = builder.header(k.as_str(), v.as_str());
            }
            let req = builder
                .header(header::ACCEPT, accept)
                .header(
                    header::USER_AGENT,
                    concat!("mlsdm-audit/", env!("CARGO_PKG_VERSION")),
                )
                .body(kube::client::Body::empty())
                .map_err(|e| {
                    ClusterError::new(
                        ClusterErrorKind::Other,
                        &self.server,
                        &format!("bad request path {path_and_query}: {e}"),
                    )
                })?;
            let sent = tokio::time::timeout(limit, async {
                let resp = self.client.send(req).await?;
                let (parts, body) = resp.into_parts();
                // Read at most `cap` bytes: a 3 GiB answer (a list, or a pod's reply through the
                // proxy) is an error naming the cap, not the end of the process.
                let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, cap)).await {
                    Ok(b) => b.to_bytes(),
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        return Ok(Err(format!(
                            "GET {path_and_query}: the answer is larger than {} (--max-input-size raises it)",
                            crate::input::human(cap as u64)
                        )));
                    }
                    Err(e) => {
                        return Err(e
                            .downcast::<kube::Error>()
                            .map_or_else(kube::Error::Service, |k| *k));
                    }
                };
                Ok::<_, kube::Error>(Ok(Answer {
                    status: parts.status,
                    headers: parts.headers,
                    body: body.to_vec(),
                }))
            })
            .await;
            let sent = match sent {
                Ok(Ok(Err(too_big))) => {
                    return Err(ClusterError::new(
                        ClusterErrorKind::Other,
                        &self.server,
                        &too_big,
                    ));
                }
                Ok(Ok(Ok(a))) => Ok(Ok(a)),
                Ok(Err(e)) => Ok(Err(e)),
                Err(elapsed) => Err(elapsed),
            };
            let retry_after = match &sent {
                // A probe through the proxy takes the service's answer as it is: retrying a 503
                // until it says 200 would turn a flapping /health into a pass.
                Ok(Ok(_)) if total.is_some() => {
                    return sent
                        .unwrap_or_else(|_| unreachable!())
                        .map_err(|e| self.fatal(&e));
                }
                Ok(Ok(a))
                    if a.status == StatusCode::TOO_MANY_REQUESTS || a.status.is_server_error() =>
                {
                    a.headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(10)))
                }
                Ok(Ok(_)) => {
                    return sent
                        .unwrap_or_else(|_| unreachable!())
                        .map_err(|e| self.fatal(&e));
                }
                Ok(Err(e)) if timed_out_in_chain(e) => {
                    return Err(timed_out(total.unwrap_or(per_attempt)));
                }
                Ok(Err(e)) if !retryable(e) => return Err(self.fatal(e)),
                Ok(Err(_)) => None,
                Err(_) => return Err(timed_out(total.unwrap_or(per_attempt))),
            };
            attempt += 1;
            if attempt >= 5 {
                return match sent {
                    Ok(Ok(a)) => Ok(a),
                    Ok(Err(e)) => Err(self.fatal(&e)),
                    Err(_) => Err(timed_out(limit)),
                };
            }
            let backoff =
                Duration::from_millis(200 * 2u64.pow(attempt - 1)).min(Duration::from_secs(5));
            let wait = retry_after.unwrap_or(backoff);
            if let Some(t) = total
                && started.elapsed() + wait >= t
            {
                // No time left for another attempt: the answer so far is the answer.
                return match sent {
                    Ok(Ok(a)) => Ok(a),
                    Ok(Err(e)) => Err(self.fatal(&e)),
                    Err(_) => Err(timed_out(t)),
                };
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn fatal(&self, e: &kube::Error) -> ClusterError {
        let kind = ClusterErrorKind::of(e);
        if kind == ClusterErrorKind::Other
            && let Some(why) = auth_in_chain(e)
        {
            return ClusterError::new(kind, &self.server, &why);
        }
        ClusterError::new(kind, &self.server, &error::root_cause(e))
    }
}

/// Whether the deadline layer ended this request.
fn timed_out_in_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<TimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}

fn retryable(e: &kube::Error) -> bool {
    error::retryable(e)
}

/// Why `connect` failed: the user's configuration (exit 2) or the cluster (exit 3).
#[derive(Debug)]
pub enum ConnectError {
    /// A missing, empty or malformed kubeconfig, or a credential setting that cannot work.
    Config(String),
    Cluster(ClusterError),
}

/// Not echoed: a credential file's content (a bearer token may be on a neighbouring line).
const NOT_SHOWN: &str = "its content is not shown: it may hold credentials";

/// A kubeconfig problem, described without quoting the file: YAML errors carry only where.
pub(crate) fn kubeconfig_error(e: &kube::config::KubeconfigError) -> String {
    use kube::config::{KubeconfigError as K, LoadDataError as D};
    let data = |what: &str, d: &D| match d {
        D::DecodeBase64(_) => format!("{what}-data is not valid base64"),
        D::ReadFile(io, path) => format!("cannot read the {what} file {}: {io}", path.display()),
        D::NoBase64DataOrFile => format!("no {what} data or file"),
    };
    match e {
        K::Parse(err) => {
            let at = err.location().map_or_else(String::new, |l| {
                format!(" at line {}, column {}", l.line(), l.column())
            });
            format!("not a valid kubeconfig: a YAML syntax or structure error{at} ({NOT_SHOWN})")
        }
        K::ReadConfig(io, _) => format!("cannot read: {io}"),
        K::CurrentContextNotSet => {
            "no current-context (set current-context in the file or pass --context)".to_string()
        }
        K::LoadCertificateAuthority(d) => data("certificate-authority", d),
        K::LoadClientCertificate(d) => data("client-certificate", d),
        K::LoadClientKey(d) => data("client-key", d),
        K::ParseCertificates(_) => format!("a certificate is not valid PEM ({NOT_SHOWN})"),
        K::ParseClusterUrl(_) => "the cluster's server is not a valid URL".to_string(),
        K::ParseProxyUrl(_) => "the cluster's proxy-url is not a valid URL".to_string(),
        // The rest carry no file content (context and cluster names at most).
        other => other.to_string(),
    }
}

/// A client authentication problem (token, exec plugin), described without credentials: exec
/// plugin output and auth-provider details are never quoted.
fn auth_error(e: &kube::client::AuthError) -> String {
    use kube::client::AuthError as A;
    match e {
        A::InvalidBasicAuth(_) => {
            "the kubeconfig's username/password is not a valid HTTP header value".to_string()
        }
        A::InvalidBearerToken(_) => {
            "the bearer token is not a valid HTTP header value".to_string()
        }
        A::MalformedTokenExpirationDate(_) => {
            "the exec credential plugin's expirationTimestamp is not a valid time".to_string()
        }
        A::AuthExecStart(io) => format!("cannot start the exec credential plugin: {io}"),
        // Not the command either: kube-rs renders it with the plugin's environment (`env:`).
        A::AuthExecRun { out, .. } => format!(
            "the exec credential plugin failed ({}; its command, environment and output are not shown: they may hold credentials)",
            out.status
        ),
        A::AuthExecParse(err) => {
            let at = err.location().map_or_else(String::new, |l| {
                format!(" (line {}, column {})", l.line(), l.column())
            });
            format!(
                "the exec credential plugin's output is not a valid ExecCredential{at}; its output is not shown: it may hold credentials"
            )
        }
        A::AuthExec(_) => {
            "the exec credential plugin or auth-provider failed (details are not shown: they may hold credentials)".to_string()
        }
        A::ReadTokenFile(io, path) => {
            format!("cannot read the token file {}: {io}", path.display())
        }
        A::ParseTokenKey(_) => format!("the auth-provider's token-key is not valid ({NOT_SHOWN})"),
        other => other.to_string(),
    }
}

/// An authentication error anywhere in an error's source chain, described safely.
fn auth_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(a) = err.downcast_ref::<kube::client::AuthError>() {
            return Some(auth_error(a));
        }
        cur = err.source();
    }
    None
}

/// Which kubeconfig kube-rs reads without --kubeconfig, for messages.
fn default_kubeconfig() -> String {
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(v) => format!("$KUBECONFIG ({})", v.to_string_lossy()),
        None => "~/.kube/config".to_string(),
    }
}

/// Loads kubeconfig (flags, $KUBECONFIG, ~/.kube/config) or in-cluster config, like kubectl.
pub async fn connect(opts: &ClusterOptions) -> Result<(Api, Option<String>, String), ConnectError> {
    let options = kube::config::KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let mut config = match &opts.kubeconfig {
        Some(path) => {
            let named = |why: String| ConnectError::Config(format!("--kubeconfig {}: {why}", path.display()));
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| named(kubeconfig_error(&e)))?;
            if kc.clusters.is_empty() && kc.contexts.is_empty() {
                return Err(named("no clusters and no contexts: the file is empty or not a kubeconfig".into()));
            }
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| named(kubeconfig_error(&e)))?
        }
        None if opts.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| {
                ConnectError::Config(format!("{}: {}", default_kubeconfig(), kubeconfig_error(&e)))
            })?,
        None => kube::Config::infer().await.map_err(|e| {
            let kubeconfig = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<kube::config::KubeconfigError>());
            ConnectError::Config(match kubeconfig {
                Some(kube::config::KubeconfigError::FindPath) | None => "no cluster configuration: no kubeconfig and not running in a pod (give --kubeconfig, set KUBECONFIG, or run in a pod)".to_string(),
                Some(kube::config::KubeconfigError::ReadConfig(io, _)) if io.kind() == std::io::ErrorKind::NotFound => format!(
                    "no cluster configuration: {} does not exist and this is not a pod (give --kubeconfig, set KUBECONFIG, or run in a pod)",
                    default_kubeconfig()
                ),
                Some(k) => format!("{}: {}", default_kubeconfig(), kubeconfig_error(k)),
            })
        })?,
    };
    config.connect_timeout = Some(opts.timeout);
    config.read_timeout = Some(opts.timeout);
    // Retries are ours: bounded, and honouring Retry-After.
    config.default_retry = false;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let namespace = config.default_namespace.clone();
    // kube-rs would run an exec credential plugin synchronously and without a bound (twice):
    // it is run here, once, with a deadline, and its answer takes the plugin's place.
    run_exec_plugin(&mut config, &server, opts.timeout)?;
    let client = kube::client::ClientBuilder::try_from(config)
        .map(|b| b.with_layer(&DeadlineLayer(opts.timeout)).build())
        .map_err(|e| match &e {
            // Credentials the kubeconfig names but that cannot work: the user's input.
            kube::Error::Auth(
                a @ (kube::client::AuthError::AuthExecStart(_)
                | kube::client::AuthError::MissingCommand
                | kube::client::AuthError::ReadTokenFile(..)
                | kube::client::AuthError::InvalidBearerToken(_)
                | kube::client::AuthError::InvalidBasicAuth(_)),
            ) => ConnectError::Config(format!("kubeconfig user for {server}: {}", auth_error(a))),
            _ => ConnectError::Cluster(ClusterError::new(
                ClusterErrorKind::of(&e),
                &server,
                &auth_in_chain(&e).unwrap_or_else(|| e.to_string()),
            )),
        })?;
    let api = Api {
        client,
        limiter: Arc::new(RateLimiter::new(opts.qps, opts.burst)),
        server: server.clone(),
        timeout: opts.timeout,
        counter: Arc::new(std::sync::atomic::AtomicU64::new(0)),
    };
    Ok((api, opts.context.clone(), namespace))
}

/// What an exec credential plugin printed (client.authentication.k8s.io ExecCredential).
#[derive(serde::Deserialize)]
struct ExecCredential {
    status: Option<ExecStatus>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    expiration_timestamp: Option<String>,
}

/// The most an exec credential plugin may print.
const EXEC_OUTPUT_CAP: u64 = 1 << 20;

/// Runs the kubeconfig user's exec credential plugin (when it is the credential kube-rs would
/// use), bounded by `timeout`: a plugin that does not answer in time is killed and ends the run.
/// Its token or client certificate replaces the `exec` stanza, so kube-rs never runs it. The
/// plugin's command, environment and output are never quoted: they may hold credentials.
fn run_exec_plugin(
    config: &mut kube::Config,
    server: &str,
    timeout: Duration,
) -> Result<(), ConnectError> {
    use base64::Engine as _;
    use std::io::Read as _;
    let auth = &config.auth_info;
    // kube-rs's precedence: auth-provider, username/password, token, token file, then exec.
    if auth.auth_provider.is_some()
        || (auth.username.is_some() && auth.password.is_some())
        || auth.token.is_some()
        || auth.token_file.is_some()
    {
        return Ok(());
    }
    let Some(exec) = auth.exec.clone() else {
        return Ok(());
    };
    let user_error =
        |why: String| ConnectError::Config(format!("kubeconfig user for {server}: {why}"));
    let cluster_error = |why: String| {
        ConnectError::Cluster(ClusterError::new(ClusterErrorKind::Other, server, &why))
    };
    let Some(command) = &exec.command else {
        return Err(user_error(
            "the exec credential plugin has no command".into(),
        ));
    };
    let mut cmd = std::process::Command::new(command);
    cmd.args(exec.args.iter().flatten());
    for env in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (env.get("name"), env.get("value")) {
            cmd.env(name, value);
        }
    }
    // As client-go: interactive only when asked to be, or when it may be and a person is at a
    // terminal. Otherwise the plugin gets no stdin and its stderr (which may print tokens) does
    // not reach a CI log unredacted.
    let interactive = match exec.interactive_mode {
        Some(kube::config::ExecInteractiveMode::Always) => true,
        Some(kube::config::ExecInteractiveMode::Never) => false,
        _ => std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    let mut spec = serde_json::json!({"interactive": interactive});
    if exec.provide_cluster_info {
        let Some(cluster) = &exec.cluster else {
            return Err(user_error(
                "the exec credential plugin asks for cluster information the kubeconfig does not have".into(),
            ));
        };
        spec["cluster"] = serde_json::to_value(cluster).unwrap_or(Value::Null);
    }
    let info = serde_json::json!({
        "apiVersion": exec.api_version,
        "kind": "ExecCredential",
        "spec": spec,
    });
    cmd.env("KUBERNETES_EXEC_INFO", info.to_string());
    for name in exec.drop_env.iter().flatten() {
        cmd.env_remove(name);
    }
    cmd.stdout(std::process::Stdio::piped());
    if interactive {
        cmd.stdin(std::process::Stdio::inherit());
        cmd.stderr(std::process::Stdio::inherit());
    } else {
        cmd.stdin(std::process::Stdio::null());
        cmd.stderr(std::process::Stdio::null());
        // Its own process group, so a timeout kills what it started too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    let _running = crate::activity::start(format!(
        "the exec credential plugin of the kubeconfig user for {server}"
    ));
    let mut child = cmd
        .spawn()
        .map_err(|e| user_error(format!("cannot start the exec credential plugin: {e}")))?;
    let _child = crate::activity::child(child.id());
    let stdout = child.stdout.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(out) = stdout {
            let _ = out.take(EXEC_OUTPUT_CAP).read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    let deadline = Instant::now() + timeout;
    let timed_out = |child: &mut std::process::Child| {
        crate::activity::kill_process(child.id());
        let _ = child.kill();
        let _ = child.wait();
        cluster_error(format!(
            "the exec credential plugin did not answer within {timeout:?} (--request-timeout); it was stopped"
        ))
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => return Err(timed_out(&mut child)),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(cluster_error(format!("the exec credential plugin: {e}"))),
        }
    };
    // Something the plugin started may still hold its output open: the same deadline applies.
    let remaining = deadline.saturating_duration_since(Instant::now());
    let Ok(out) = rx.recv_timeout(remaining.max(Duration::from_millis(100))) else {
        crate::activity::kill_process(child.id());
        return Err(cluster_error(format!(
            "the exec credential plugin's output did not end within {timeout:?} (--request-timeout)"
        )));
    };
    if !status.success() {
        return Err(cluster_error(format!(
            "the exec credential plugin failed ({status}; its command, environment and output are not shown: they may hold credentials)"
        )));
    }
    let cred: ExecCredential = serde_saphyr::from_slice(&out).map_err(|e| {
        let at = e.location().map_or_else(String::new, |l| {
            format!(" (line {}, column {})", l.line(), l.column())
        });
        cluster_error(format!(
            "the exec credential plugin's output is not a valid ExecCredential{at}; its output is not shown: it may hold credentials"
        ))
    })?;
    let Some(status) = cred.status else {
        return Err(cluster_error(
            "the exec credential plugin's output is not a valid ExecCredential: it has no status"
                .into(),
        ));
    };
    if let Some(ts) = &status.expiration_timestamp
        && chrono::DateTime::parse_from_rfc3339(ts).is_err()
    {
        return Err(cluster_error(
            "the exec credential plugin's expirationTimestamp is not a valid time".into(),
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let auth = &mut config.auth_info;
    auth.exec = None;
    if let (Some(cert), Some(key)) = (&status.client_certificate_data, &status.client_key_data) {
        crate::redact::register(key);
        auth.client_certificate_data = Some(b64.encode(cert));
        auth.client_key_data = Some(b64.encode(key).into());
        auth.client_certificate = None;
        auth.client_key = None;
    } else if let Some(token) = status.token {
        crate::redact::register(&token);
        auth.token = Some(token.into());
    }
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bounds each request to the API server, headers and body, by one deadline. kube-rs's read
/// timeout restarts with every byte, so an answer trickled a byte at a time would never end.
#[derive(Clone, Copy)]
struct DeadlineLayer(Duration);

#[derive(Clone)]
struct DeadlineService<S> {
    inner: S,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("no complete answer within {0:?} (--request-timeout)")]
struct TimedOut(Duration);

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            timeout: self.0,
        }
    }
}

impl<S, B> tower::Service<Request<kube::client::Body>> for DeadlineService<S>
where
    S: tower::Service<Request<kube::client::Body>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<DeadlineBody<B>>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let timeout = self.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let sent = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, sent).await {
                Err(_) => Err(Box::new(TimedOut(timeout)) as BoxError),
                Ok(Err(e)) => Err(e.into()),
                Ok(Ok(resp)) => Ok(resp.map(|body| DeadlineBody {
                    body: Box::pin(body),
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    timeout,
                })),
            }
        })
    }
}

/// A response body that fails once the request's deadline passes.
pub struct DeadlineBody<B> {
    body: std::pin::Pin<Box<B>>,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(Box::new(TimedOut(self.timeout)))));
        }
        self.body
            .as_mut()
            .poll_frame(cx)
            .map(|frame| frame.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Discovery, aggregated first; servers without it answer zero groups, so fall back to legacy.
async fn discover(api: &Api) -> Result<Discovery, ClusterError> {
    let _running = crate::activity::start(format!("API discovery at {}", api.server));
    // kube's discovery does not go through our limiter; it is a handful of requests.
    let classify = |e: kube::Error| api.fatal(&e);
    let aggregated = Discovery::new(api.client.clone()).run_aggregated().await;
    match aggregated {
        Ok(d) if d.groups().count() > 0 => Ok(d),
        Ok(_) => Discovery::new(api.client.clone())
            .run()
            .await
            .map_err(classify),
        Err(e) => {
            let err = classify(e);
            if matches!(
                err.kind,
                ClusterErrorKind::Unauthorized | ClusterErrorKind::Tls | ClusterErrorKind::Connect
            ) {
                return Err(err);
            }
            Discovery::new(api.client.clone())
                .run()
                .await
                .map_err(classify)
        }
    }
}

/// A kind found in discovery, or None when the server does not serve it.
type Resolved = Option<(ApiResource, ApiCapabilities)>;

fn resolve(
    d: &Discovery,
    kind: &str,
    candidates: &[(&str, &str)],
) -> Option<(ApiResource, ApiCapabilities)> {
    for (group, version) in candidates {
        if let Some(g) = d.get(group)
            && let Some(found) = g
                .versioned_resources(version)
                .into_iter()
                .find(|(r, _)| r.kind == kind)
        {
            return Some(found);
        }
    }
    None
}

/// How a kind that only custom checks name was found in discovery.
enum Named {
    Found(ApiResource, ApiCapabilities),
    /// No group serves the kind at any version (a CRD not installed, or a misspelt kind).
    NotServed,
    /// It cannot be read as the checks name it: why, for their `error`.
    Unreadable(String),
}

/// Every group/version that serves `kind`, group by group (the core group first; discovery's
/// map has no order), each group's preferred version first, then its others most stable first.
fn serving(d: &Discovery, kind: &str) -> Vec<(ApiResource, ApiCapabilities)> {
    let mut groups: Vec<_> = d.groups().collect();
    groups.sort_by_key(|g| g.name());
    let mut found = Vec::new();
    for g in groups {
        let preferred = g.preferred_version_or_latest();
        let versions = std::iter::once(preferred).chain(g.versions().filter(|v| *v != preferred));
        for version in versions {
            found.extend(
                g.versioned_resources(version)
                    .into_iter()
                    .filter(|(r, _)| r.kind == kind),
            );
        }
    }
    found
}

/// Finds a kind that only custom checks name, as kubectl resolves `kubectl get KIND`: at the one
/// version the checks name, else in the core group or the one group that serves it, at that
/// group's preferred version (else its most stable one). Before, only each group's preferred
/// version was searched, so a CronJob served in batch/v1beta1 (Kubernetes 1.20, where batch
/// prefers v1) was called "not served" and its checks no-data, though the cluster was never asked.
fn resolve_named(d: &Discovery, kind: &str, versions: &BTreeSet<&str>) -> Named {
    let served = serving(d, kind);
    let listable = |(r, caps): (ApiResource, ApiCapabilities)| {
        if caps.supports_operation(kube::discovery::verbs::LIST) {
            Named::Found(r, caps)
        } else {
            Named::Unreadable(format!(
                "the server does not allow listing {} ({}): no object of kind {kind} can be read",
                r.plural, r.api_version
            ))
        }
    };
    let where_served = || {
        served
            .iter()
            .map(|(r, _)| r.api_version.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match versions.iter().collect::<Vec<_>>().as_slice() {
        [] if served.is_empty() => Named::NotServed,
        [] => {
            let groups: BTreeSet<&str> = served.iter().map(|(r, _)| r.group.as_str()).collect();
            if groups.len() > 1 && !groups.contains("") {
                return Named::Unreadable(format!(
                    "the server serves kind {kind} in several API groups ({}): name one in match.kinds as group/version/{kind}",
                    where_served()
                ));
            }
            // The core group first (as kubectl's `Event` is core's), else the one group's best.
            served
                .iter()
                .find(|(r, _)| r.group.is_empty())
                .or_else(|| served.first())
                .cloned()
                .map_or(Named::NotServed, listable)
        }
        [version] => match served.iter().find(|(r, _)| r.api_version == **version) {
            Some(found) => listable(found.clone()),
            None if served.is_empty() => Named::NotServed,
            None => Named::Unreadable(format!(
                "the server has no resource of kind {kind} in {version} (it serves {kind} in {})",
                where_served()
            )),
        },
        several => Named::Unreadable(format!(
            "checks match kind {kind} at {}; a live audit lists a kind at one version: name the same one (or none) in every check's match.kinds",
            several
                .iter()
                .map(|v| **v)
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

fn list_path(r: &ApiResource, namespace: Option<&str>) -> String {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", r.plural),
        None => format!("{base}/{}", r.plural),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What went wrong listing one kind.
enum ListError {
    /// 403: the audit's RBAC lacks list on this resource.
    Forbidden(String),
    NotServed,
    Other(String),
    Fatal(ClusterError),
}

/// Lists every object of a kind, page by page (limit 500, opaque continue tokens). A list that
/// does not complete (an error on a later page, a token that repeats or never ends, a page
/// without an `items` array) is an error for the whole kind: a partial list is never evaluated.
async fn list_all(
    api: &Api,
    r: &ApiResource,
    caps: &ApiCapabilities,
    namespace: Option<&str>,
    metadata_only: bool,
    max_pages: u32,
) -> Result<Vec<Value>, ListError> {
    let scope_ns = if caps.scope == Scope::Namespaced {
        namespace
    } else {
        None
    };
    let path = list_path(r, scope_ns);
    let _running = crate::activity::start(format!("listing {} from {}", r.plural, api.server));
    let accept = if metadata_only {
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    } else {
        "application/json"
    };
    let mut items = Vec::new();
    let mut cont: Option<String> = None;
    let mut seen_tokens = BTreeSet::new();
    let mut pages: u32 = 0;
    // `page` counts from 1: the page where the list broke off.
    let incomplete = |page: u32, why: String| {
        ListError::Other(format!(
            "{}: listing {} did not complete: {why} (page {page}); a partial list is not evaluated",
            api.server, r.plural
        ))
    };
    loop {
        let mut q = format!("{path}?limit=500");
        if let Some(c) = &cont {
            q.push_str("&continue=");
            q.push_str(&encode(c));
        }
        let a = api.get(&q, accept).await.map_err(ListError::Fatal)?;
        match a.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => {
                return Err(ListError::Fatal(ClusterError::new(
                    ClusterErrorKind::Unauthorized,
                    &api.server,
                    "",
                )));
            }
            StatusCode::FORBIDDEN => {
                let scope = scope_ns.map_or("cluster-wide".to_string(), |ns| {
                    format!("in namespace {ns}")
                });
                return Err(ListError::Forbidden(format!(
                    "forbidden (403) listing {} {scope}: {}; grant the audit's ServiceAccount `list` on `{}` in API group \"{}\" (see deploy/rbac.yaml)",
                    r.plural,
                    status_message(&a.body),
                    r.plural,
                    r.group
                )));
            }
            // 404 on the first page: the kind is not served (a CRD removed since discovery).
            StatusCode::NOT_FOUND if pages == 0 => return Err(ListError::NotServed),
            // On a later page the kind was served: the earlier pages are not the whole list.
            s @ (StatusCode::NOT_FOUND | StatusCode::GONE) if pages > 0 => {
                return Err(incomplete(
                    pages + 1,
                    format!(
                        "the continue page answered {}: {}",
                        s.as_u16(),
                        status_message(&a.body)
                    ),
                ));
            }
            s => {
                return Err(ListError::Other(format!(
                    "{} answered {} listing {}: {}",
                    api.server,
                    s.as_u16(),
                    r.plural,
                    status_message(&a.body)
                )));
            }
        }
        let page: Value = serde_json::from_slice(&a.body).map_err(|e| {
            ListError::Other(format!(
                "{}: listing {} returned invalid JSON: {e}",
                api.server, r.plural
            ))
        })?;
        let page_items = match page.get("items") {
            Some(Value::Array(list)) => list.clone(),
            // kube-apiserver builds metadata-only pages by appending to a nil slice, so an empty
            // one is encoded `items: null`. Full lists always carry `[]` (kubernetes#39822).
            Some(Value::Null)
                if page.get("kind").and_then(Value::as_str)
                    == Some("PartialObjectMetadataList") =>
            {
                Vec::new()
            }
            None => return Err(incomplete(pages + 1, "a page has no `items`".into())),
            Some(Value::Null) => {
                return Err(incomplete(pages + 1, "a page has `items: null`".into()));
            }
            Some(other) => {
                return Err(incomplete(
                    pages + 1,
                    format!("a page's `items` is {}, not a list", json_type(other)),
                ));
            }
        };
        for mut item in page_items {
            // List items carry no kind/apiVersion; the resource says what they are.
            if let Some(m) = item.as_object_mut() {
                m.insert("kind".into(), Value::String(r.kind.clone()));
                m.insert("apiVersion".into(), Value::String(r.api_version.clone()));
                if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("managedFields");
                }
            }
            items.push(item);
        }
        pages += 1;
        cont = match page.pointer("/metadata/continue") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.is_empty() => None,
            Some(Value::String(c)) => Some(c.clone()),
            Some(other) => {
                return Err(incomplete(
                    pages,
                    format!("the continue token is {}, not a string", json_type(other)),
                ));
            }
        };
        let Some(token) = &cont else {
            return Ok(items);
        };
        if !seen_tokens.insert(token.clone()) {
            return Err(incomplete(
                pages,
                "the server sent a continue token it had already sent; the list would never end"
                    .into(),
            ));
        }
        if pages >= max_pages {
            return Err(incomplete(
                pages,
                format!(
                    "more than {max_pages} pages of 500 items, the cap (--max-list-pages {max_pages}); the server may be sending endless continue tokens"
                ),
            ));
        }
    }
}

/// A JSON value's type, for messages that must not quote the value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Lists what the checks need, every kind concurrently.
pub async fn gather(
    api: &Api,
    opts: &ClusterOptions,
    default_ns: &str,
    extra_kinds: &[(String, Option<String>)],
) -> Result<ClusterFacts, ClusterError> {
    let discovery = discover(api).await?;
    let namespace = if opts.all_namespaces {
        None
    } else {
        Some(
            opts.namespace
                .clone()
                .unwrap_or_else(|| default_ns.to_string()),
        )
    };
    let mut plan: Vec<(String, Resolved, bool)> = crate::k8s::kinds::LISTED
        .iter()
        .map(|w| {
            (
                w.kind.to_string(),
                resolve(&discovery, w.kind, w.candidates),
                w.metadata_only,
            )
        })
        .collect();
    // Kinds only custom checks name, found through discovery as kubectl finds them (a kind the
    // built-in table lists is read at the version the table resolved).
    let mut unreadable = BTreeMap::new();
    let mut named: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (kind, api_version) in extra_kinds {
        if plan.iter().any(|(k, _, _)| k == kind) {
            continue;
        }
        let versions = named.entry(kind.as_str()).or_default();
        versions.extend(api_version.as_deref());
    }
    for (kind, versions) in named {
        match resolve_named(&discovery, kind, &versions) {
            Named::Found(r, caps) => plan.push((kind.to_string(), Some((r, caps)), false)),
            Named::NotServed => plan.push((kind.to_string(), None, false)),
            Named::Unreadable(why) => {
                unreadable.insert(kind.to_string(), why);
            }
        }
    }
    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(plan.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("listing {pos}/{len} kinds {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut facts = ClusterFacts {
        server: api.server.clone(),
        namespace: namespace.clone(),
        context: opts.context.clone(),
        kind_errors: unreadable,
        ..Default::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (kind, resolved, metadata_only) in plan {
        let Some((r, caps)) = resolved else {
            facts.missing_kinds.insert(kind);
            continue;
        };
        let (api, ns) = (api.clone(), namespace.clone());
        let max_pages = opts.max_pages.max(1);
        tasks.spawn(async move {
            let res = list_all(&api, &r, &caps, ns.as_deref(), metadata_only, max_pages).await;
            (kind, r, res)
        });
    }
    let mut fatal = None;
    while let Some(joined) = tasks.join_next().await {
        // A list task that panicked leaves a kind unread: the audit cannot go on as if it were
        // empty.
        let (kind, r, res) = match joined {
            Ok(done) => done,
            Err(e) => {
                fatal = Some(ClusterError::other(format!("a list did not complete: {e}")));
                continue;
            }
        };
        if let Some(b) = &bar {
            b.inc(1);
            b.set_message(kind.clone());
        }
        match res {
            Ok(items) => {
                for item in items {
                    let name = item
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let ns = item
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    facts.objects.push(Object::new(
                        r.api_version.clone(),
                        kind.clone(),
                        ns,
                        name,
                        item,
                        None,
                    ));
                }
            }
            Err(ListError::Forbidden(m) | ListError::Other(m)) => {
                facts.kind_errors.insert(kind, m);
            }
            Err(ListError::NotServed) => {
                facts.missing_kinds.insert(kind);
            }
            Err(ListError::Fatal(e)) => fatal = Some(e),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    // A stable order, so two reports of the same cluster diff cleanly.
    facts
        .objects
        .sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    facts.requests = api.counter.load(std::sync::atomic::Ordering::Relaxed);
    Ok(facts)
}

/// Kinds the workload checks treat as workloads, re-exported for the CLI's help.
pub fn workload_kinds() -> &'static [&'static str] {
    WORKLOAD_KINDS
}
