//! Reaching the cluster as kubectl does (kubeconfig, context, in-cluster config), and describing
//! what went wrong without quoting a credential.

use super::ClusterOptions;
use super::api::{Api, RateLimiter};
use super::deadline::DeadlineLayer;
use super::error::{ClusterError, ClusterErrorKind};
use super::exec::run_exec_plugin;
use std::sync::Arc;

/// Why `connect` failed: the user's configuration (exit 2) or the cluster (exit 3).
#[derive(Debug)]
pub enum ConnectError {
    /// A missing, empty or malformed kubeconfig, or a credential setting that cannot work.
    Config(String),
    Cluster(ClusterError),
}

/// Not echoed: a credential file's content (a bearer token may be on a neighbouring line).
pub(super) const NOT_SHOWN: &str = "its content is not shown: it may hold credentials";

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
pub(super) fn auth_error(e: &kube::client::AuthError) -> String {
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
pub(super) fn auth_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(a) = err.downcast_ref::<kube::client::AuthError>() {
            return Some(auth_error(a));
        }
        cur = err.source();
    }
    None
}

/// The proxy to reach the API server through, decided as kubectl decides it: the kubeconfig
/// cluster's `proxy-url` when it has one (`NO_PROXY` does not apply to it); otherwise
/// `HTTPS_PROXY` for an https:// server (`HTTP_PROXY` for http://) unless `NO_PROXY` names the
/// server (`ALL_PROXY` is not read, as by kubectl). kube-rs decides otherwise: it holds
/// `NO_PROXY` to the proxy's own address (so a proxy-url on 127.0.0.1 was dropped, and a
/// server `NO_PROXY` names went through `HTTPS_PROXY`). hyper-util's matcher reads `NO_PROXY`
/// as curl does.
fn proxy_for(cluster: &http::Uri, kubeconfig_proxy: Option<&str>) -> Option<http::Uri> {
    if let Some(p) = kubeconfig_proxy.filter(|p| !p.is_empty()) {
        return p.parse().ok();
    }
    let var = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()))
            .unwrap_or_default()
    };
    hyper_util::client::proxy::matcher::Matcher::builder()
        .http(var(["HTTP_PROXY", "http_proxy"]))
        .https(var(["HTTPS_PROXY", "https_proxy"]))
        .no(var(["NO_PROXY", "no_proxy"]))
        .build()
        .intercept(cluster)
        .map(|i| i.uri().clone())
}

/// The `proxy-url` of the kubeconfig cluster the audit talks to (the `--context`, else the
/// current context), read from the file kubectl would read; `None` without one, or in a pod.
fn kubeconfig_proxy_url(
    kc: Option<&kube::config::Kubeconfig>,
    context: Option<&str>,
) -> Option<String> {
    let read;
    let kc = if let Some(kc) = kc {
        kc
    } else {
        read = kube::config::Kubeconfig::read().ok()?;
        &read
    };
    let context = context.or(kc.current_context.as_deref())?;
    let cluster = kc
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .as_str();
    kc.clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .clone()
}

/// The kubeconfig user's own secrets (a static token, a token file's content, a basic-auth
/// password and the `user:password` whose base64 is the header, an auth provider's tokens and
/// secrets; an exec plugin's answer is registered where it is read): a gateway or a webhook
/// that quotes the request in its error put the bearer token in the report.
fn register_credentials(auth: &kube::config::AuthInfo) {
    use secrecy::ExposeSecret;
    for secret in [&auth.token, &auth.password].into_iter().flatten() {
        crate::redact::register(secret.expose_secret().trim());
    }
    // The Authorization header carries base64(user:password), which lines up with the
    // password's own base64 only for some user name lengths.
    if let (Some(user), Some(password)) = (&auth.username, &auth.password) {
        crate::redact::register(&format!("{user}:{}", password.expose_secret()));
    }
    if let Some(provider) = &auth.auth_provider {
        for (key, value) in &provider.config {
            if key.contains("token") || key.contains("secret") {
                crate::redact::register(value.trim());
            }
        }
    }
    if let Some(file) = &auth.token_file
        && let Ok(token) = crate::input::read_file(std::path::Path::new(file))
    {
        crate::redact::register(token.trim());
    }
}

/// Which kubeconfig kube-rs reads without --kubeconfig, for messages.
pub(super) fn default_kubeconfig() -> String {
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
    // Read from the kubeconfig before kube-rs loads it (kube-rs drops it under some NO_PROXY).
    let mut kubeconfig_proxy = None;
    let mut config = match &opts.kubeconfig {
        Some(path) => {
            let named = |why: String| ConnectError::Config(format!("--kubeconfig {}: {why}", path.display()));
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| named(kubeconfig_error(&e)))?;
            if kc.clusters.is_empty() && kc.contexts.is_empty() {
                return Err(named("no clusters and no contexts: the file is empty or not a kubeconfig".into()));
            }
            kubeconfig_proxy = kubeconfig_proxy_url(Some(&kc), opts.context.as_deref());
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
    if opts.kubeconfig.is_none() {
        kubeconfig_proxy = kubeconfig_proxy_url(None, opts.context.as_deref());
    }
    config.proxy_url = proxy_for(&config.cluster_url, kubeconfig_proxy.as_deref());
    config.connect_timeout = Some(opts.timeout);
    config.read_timeout = Some(opts.timeout);
    // Retries are ours: bounded, and honouring Retry-After.
    config.default_retry = false;
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    // A kubeconfig's `server:` may carry user information (`https://admin:PASSWORD@host`, which
    // clients send as basic auth) or a token in its query: masked everywhere the server is
    // named (the report's target, every cluster error), as for --endpoint and --prometheus.
    crate::sources::register_url_credentials(&server);
    // kube-client panics on a server without scheme or host (`example.com`, `127.0.0.1:6443`
    // read as a path or a scheme): the kubeconfig is the user's input, refused as such (exit 2).
    let scheme = config.cluster_url.scheme_str();
    if !matches!(scheme, Some("http" | "https")) || config.cluster_url.host().is_none() {
        return Err(ConnectError::Config(format!(
            "{}: the cluster's server {:?} is not an http(s) URL with a host (write it as https://HOST:PORT)",
            opts.kubeconfig
                .as_ref()
                .map_or_else(default_kubeconfig, |p| p.display().to_string()),
            crate::redact::text(&server)
        )));
    }
    let namespace = config.default_namespace.clone();
    register_credentials(&config.auth_info);
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

#[cfg(test)]
mod tests {
    /// Review 29: a server quoting the request printed an OIDC auth provider's id-token, and a
    /// basic-auth header whose base64 did not line up with the password's own.
    #[test]
    fn the_kubeconfig_users_credentials_are_redacted_as_sent() {
        use base64::Engine as _;
        let auth = kube::config::AuthInfo {
            username: Some("ops".into()),
            password: Some("Basic-pass-0192".to_string().into()),
            auth_provider: Some(kube::config::AuthProviderConfig {
                name: "oidc".into(),
                config: [
                    ("id-token".to_string(), "eyJ.OidcSecretSig.x".to_string()),
                    ("client-id".to_string(), "kubernetes".to_string()),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        super::register_credentials(&auth);
        let header = base64::engine::general_purpose::STANDARD.encode("ops:Basic-pass-0192");
        let quoted = format!("refused Authorization: Basic {header}, Bearer eyJ.OidcSecretSig.x");
        let shown = crate::redact::text(&quoted);
        assert!(!shown.contains(&header), "{shown}");
        assert!(!shown.contains("OidcSecretSig"), "{shown}");
    }
}
