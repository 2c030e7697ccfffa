//! The kubeconfig user's exec credential plugin, run once with a deadline instead of by kube-rs
//! (which would run it synchronously, without a bound, twice).

use super::connect::ConnectError;
use super::error::{ClusterError, ClusterErrorKind};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What an exec credential plugin printed (client.authentication.k8s.io ExecCredential).
#[derive(serde::Deserialize)]
pub(super) struct ExecCredential {
    status: Option<ExecStatus>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExecStatus {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    expiration_timestamp: Option<String>,
}

/// The most an exec credential plugin may print.
pub(super) const EXEC_OUTPUT_CAP: u64 = 1 << 20;

/// Runs the kubeconfig user's exec credential plugin (when it is the credential kube-rs would
/// use), bounded by `timeout`: a plugin that does not answer in time is killed and ends the run.
/// Its token or client certificate replaces the `exec` stanza, so kube-rs never runs it. The
/// plugin's command, environment and output are never quoted: they may hold credentials.
pub(super) fn run_exec_plugin(
    config: &mut kube::Config,
    server: &str,
    timeout: Duration,
) -> Result<(), ConnectError> {
    use base64::Engine as _;
    use std::io::Read as _;
    let auth = &config.auth_info;
    // The gcp and azure auth-providers were removed from Kubernetes' clients in 1.26, and kubectl
    // refuses them. kube-rs still runs gcp's `cmd-path` itself, synchronously and without a
    // bound (a command that hung kept the audit past --request-timeout, and outlived it).
    if let Some(provider) = &auth.auth_provider
        && matches!(provider.name.as_str(), "gcp" | "azure")
    {
        return Err(ConnectError::Config(format!(
            "kubeconfig user for {server}: the {} auth-provider was removed from Kubernetes clients in 1.26 (kubectl refuses it too); use its exec credential plugin ({})",
            provider.name,
            if provider.name == "gcp" {
                "gke-gcloud-auth-plugin"
            } else {
                "kubelogin"
            }
        )));
    }
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
