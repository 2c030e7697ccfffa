//! Renders kustomize directories and Helm charts with their own tools (`kustomize build` or
//! `kubectl kustomize`, `helm template`), so the audit reads what would be applied. The child is
//! bounded: a timeout, its output within the input cap, and its stderr shown when it fails.

use super::manifests::Input;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to render.
#[derive(Debug, Clone)]
pub enum Renderer {
    Kustomize(PathBuf),
    Helm {
        chart: PathBuf,
        values: Vec<PathBuf>,
    },
}

impl Renderer {
    /// The name the rendered objects' locations carry: `kustomize:DIR` or `helm:DIR`.
    pub fn source_name(&self) -> String {
        match self {
            Self::Kustomize(dir) => format!("kustomize:{}", dir.display()),
            Self::Helm { chart, .. } => format!("helm:{}", chart.display()),
        }
    }

    /// The program and arguments to run, found on PATH.
    fn command(&self) -> Result<(PathBuf, Vec<String>), String> {
        match self {
            Self::Kustomize(dir) => {
                let dir = dir.display().to_string();
                if let Some(k) = which("kustomize") {
                    Ok((k, vec!["build".into(), dir]))
                } else if let Some(k) = which("kubectl") {
                    Ok((k, vec!["kustomize".into(), dir]))
                } else {
                    Err(format!(
                        "--kustomize {dir}: neither kustomize nor kubectl is installed (not found on PATH); install one, or render it yourself and pass the output with --manifests"
                    ))
                }
            }
            Self::Helm { chart, values } => {
                let chart = chart.display().to_string();
                let helm = which("helm").ok_or_else(|| {
                    format!(
                        "--helm-chart {chart}: helm is not installed (not found on PATH); install it, or run `helm template` yourself and pass the output with --manifests"
                    )
                })?;
                let mut args = vec!["template".to_string(), chart];
                for v in values {
                    args.push("-f".into());
                    args.push(v.display().to_string());
                }
                Ok((helm, args))
            }
        }
    }
}

/// An executable named `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The most stderr kept to show on failure.
const STDERR_KEEP: u64 = 64 << 10;

/// Runs the renderer and returns its output as an input named after the rendered source.
pub fn render(r: &Renderer, timeout: Duration) -> Result<Input, String> {
    let what = match r {
        Renderer::Kustomize(dir) => format!("--kustomize {}", dir.display()),
        Renderer::Helm { chart, .. } => format!("--helm-chart {}", chart.display()),
    };
    match r {
        Renderer::Kustomize(dir) | Renderer::Helm { chart: dir, .. } if !dir.is_dir() => {
            return Err(format!("{what}: not a directory"));
        }
        _ => {}
    }
    let (program, args) = r.command()?;
    let shown = format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot run {shown}: {e}"))?;
    let (out_tx, out_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    // Past the cap the reader stops and drops the pipe, so the child ends on a broken pipe.
    std::thread::spawn(move || {
        let _ = out_tx.send(stdout.map_or_else(|| Ok(String::new()), crate::input::read_capped));
    });
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut e) = stderr {
            let _ = (&mut e).take(STDERR_KEEP).read_to_end(&mut buf);
            let _ = std::io::copy(&mut e, &mut std::io::sink());
        }
        let _ = err_tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what}: {shown} did not finish within {}s (--render-timeout raises it)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{what}: waiting for {shown}: {e}")),
        }
    };
    // A grandchild may hold the pipes open: the readers get what is left of the deadline.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    let stderr_text = err_rx.recv_timeout(left).unwrap_or_default();
    let stdout_text = out_rx
        .recv_timeout(left)
        .map_err(|_| format!("{what}: {shown} exited but its output did not end"))?;
    // Past the cap the child dies of the closed pipe: the cap is the reason to report.
    let stdout_text = stdout_text.map_err(|e| format!("{what}: the output of {shown} is {e}"))?;
    if !status.success() {
        let tail: Vec<&str> = shown_error_lines(&stderr_text);
        let tail = tail[tail.len().saturating_sub(20)..]
            .iter()
            .map(|line| shown_error_line(line))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(format!(
            "{what}: {shown} failed ({status}){}",
            if tail.is_empty() {
                String::new()
            } else {
                format!(":\n{tail}")
            }
        ));
    }
    Ok(Input::Rendered {
        name: r.source_name(),
        text: stdout_text,
    })
}

/// The lines of a failed render's error output that can be shown at all. kustomize's errors
/// about a node (`wrong node kind: ... node contents:`) go on to dump the node, which is a piece
/// of the manifests: a Secret's value when the replacement targets one, on a line of its own
/// that no pattern can tell from a word. The dump is left out, from its marker to the end. So
/// is a transformer's configuration that kustomize quotes (`trouble configuring builtin
/// PatchTransformer with config: `...``, then `[patch: "..."]` once more on the closing line):
/// an inline patch of a Secret printed its values twice.
fn shown_error_lines(stderr: &str) -> Vec<&str> {
    const DUMP: &str = "node contents:";
    const CONFIG: &str = "with config: `";
    const PATCH: &str = "[patch: ";
    const NOT_SHOWN: &str =
        "  (not shown: it is a piece of the manifests, and can hold a Secret's value)";
    let mut lines = Vec::new();
    let mut in_config = false;
    for line in stderr.trim_end().lines() {
        if in_config {
            // Up to the backtick that closes the quoted configuration.
            let Some(at) = line.find('`') else {
                continue;
            };
            in_config = false;
            let rest = &line[at + 1..];
            lines.push(
                rest.find(PATCH)
                    .map_or(rest, |p| &rest[..p + PATCH.len() - 1]),
            );
            continue;
        }
        if let Some(at) = line.find(DUMP) {
            lines.push(&line[..at + DUMP.len()]);
            lines.push(NOT_SHOWN);
            break;
        }
        if let Some(at) = line.find(CONFIG) {
            lines.push(&line[..at + CONFIG.len() - 2]);
            lines.push(NOT_SHOWN);
            in_config = !line[at + CONFIG.len()..].contains('`');
            continue;
        }
        lines.push(
            line.find(PATCH)
                .map_or(line, |p| &line[..p + PATCH.len() - 1]),
        );
    }
    lines
}

/// A line of a failed render's error output, as it can be shown. kustomize and Helm quote what
/// they failed on, and that can be a Secret generator's literal (`invalid literal source
/// API_KEY: sk-...`) or a chart value; renders run before any manifest is read, so no secret of
/// the run is registered with the redaction layer yet. The words of the error stay (a user needs
/// them to fix the input); masked are the literal sources kustomize quotes, and anything that
/// looks like a credential, alone or as a `password: ...` pair.
fn shown_error_line(line: &str) -> String {
    use crate::k8s::secrets::{embedded_credentials, looks_like_credential};
    // Errors nest (`Error: loading x: password = ...`): each part after a `: ` is read as a
    // line of its own too.
    let mut secrets: Vec<String> = std::iter::once(line)
        .chain(line.match_indices(": ").map(|(at, _)| &line[at + 2..]))
        .flat_map(embedded_credentials)
        .map(str::to_string)
        .collect();
    // kustomize: `literal sources [A B]: invalid literal source A, expected key=value`.
    for marker in ["literal source ", "literal sources "] {
        let mut rest = line;
        while let Some(at) = rest.find(marker) {
            let after = &rest[at + marker.len()..];
            let quoted = match after.strip_prefix('[') {
                Some(list) => list.split(']').next().unwrap_or(list),
                None => after.split(", expected").next().unwrap_or(after),
            };
            if !quoted.trim().is_empty() {
                secrets.push(quoted.trim().to_string());
            }
            rest = after;
        }
    }
    secrets.extend(
        line.split(|c: char| c.is_whitespace() || "[](),;\"'`=".contains(c))
            .filter(|w| looks_like_credential(w))
            .map(str::to_string),
    );
    // Longest first: a secret inside a longer quoted one is masked with it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut shown = line.to_string();
    for s in secrets {
        shown = shown.replace(&s, crate::redact::MASK);
    }
    without_byte_lists(&shown)
}

/// `line` with every bracketed list of byte values (`[68 66 95 80 ...]`) masked: kustomize
/// quotes a line of an env file that is not UTF-8 as its bytes, and the bytes of
/// `DB_PASSWORD=...` are the password, read back with no effort.
fn without_byte_lists(line: &str) -> String {
    let mut shown = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        shown.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        let inside = &rest[..close];
        let numbers = inside.split_ascii_whitespace();
        if numbers.clone().count() >= 4 && numbers.clone().all(|n| n.parse::<u8>().is_ok()) {
            shown.push_str(crate::redact::MASK);
            rest = &rest[close..];
        }
    }
    shown.push_str(rest);
    shown
}

#[cfg(test)]
mod tests {
    use super::{shown_error_line, shown_error_lines};

    #[test]
    fn a_render_error_does_not_show_what_it_quotes_of_secrets() {
        for (line, secret) in [
            (
                r#"E1130 run.go:72] "command failed" err="loading KV pairs: literal sources [sk-live-KustLiteral0123456789abcdef]: invalid literal source sk-live-KustLiteral0123456789abcdef, expected key=value""#,
                "KustLiteral",
            ),
            (
                "invalid literal source API_KEY: plainpass-hunter2, expected key=value",
                "hunter2",
            ),
            (
                "Error: execution error at (c/templates/s.yaml:3:4): bad url postgres://app:Pg5ecret77@db/app",
                "Pg5ecret77",
            ),
            ("Error: password = Zq9plain-pw", "Zq9plain"),
        ] {
            let shown = shown_error_line(line);
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        // An error that quotes no value is shown as it is.
        let plain = "Error: accumulating resources: missing.yaml: no such file or directory";
        assert_eq!(shown_error_line(plain), plain);
    }

    /// What kustomize prints of the manifests themselves: a node's dump (a Secret's value on a
    /// line of its own, as a replacement targeting it prints it) and an env file's line that is
    /// not UTF-8, as its bytes (`DB_PASSWORD=Contrase\xf1a-Mlsdm-2024`).
    #[test]
    fn a_render_error_shows_no_dump_of_the_manifests() {
        let stderr = "Error: unable to find field \"stringData.api-key.url\" in replacement target: wrong node kind: expected MappingNode but got ScalarNode: node contents:\n\tMlsdm-Key-7f3Qx9\n\n";
        let shown = shown_error_lines(stderr).join("\n");
        assert!(!shown.contains("Mlsdm-Key"), "{shown}");
        assert!(shown.contains("wrong node kind"), "{shown}");
        let bytes: Vec<String> = "DB_PASSWORD=Contrase\u{f1}a-Mlsdm-2024"
            .bytes()
            .map(|b| b.to_string())
            .collect();
        let line = format!(
            "Error: line [{}] has invalid utf8 bytes : DB_PASSWORD=<redacted>",
            bytes.join(" ")
        );
        let shown = shown_error_line(&line);
        assert!(!shown.contains(&bytes[12..16].join(" ")), "{shown}");
        assert!(
            shown.starts_with("Error: line [<redacted>] has invalid utf8"),
            "{shown}"
        );
        // A transformer's quoted configuration (an inline patch of a Secret), and the patch
        // kustomize repeats on the closing line.
        let stderr = "E1201 run.go:72] \"command failed\" err=<\n\ttrouble configuring builtin PatchTransformer with config: `\n\tpatch: |-\n\t  kind: Secret\n\t  stringData:\n\t    settings.ini: \"db=prod pw=correct-horse-battery\"\n\t`: unable to parse SM or JSON patch from [patch: \"kind: Secret\\nstringData:\\n  settings.ini: \\\"db=prod pw=correct-horse-battery\\\"\"]\n >\n";
        let shown = shown_error_lines(stderr).join("\n");
        assert!(!shown.contains("correct-horse"), "{shown}");
        assert!(
            shown.contains("trouble configuring builtin PatchTransformer with config")
                && shown.contains("unable to parse SM or JSON patch from [patch:"),
            "{shown}"
        );
        // Brackets around anything else stay.
        for plain in [
            "resources [a.yaml b.yaml]",
            "ports [80 443]",
            "unclosed [1 2 3 4",
        ] {
            assert_eq!(shown_error_line(plain), plain);
        }
    }
}
