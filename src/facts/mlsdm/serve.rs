//! How the MLSDM container starts its HTTP server, read from its command line: whether it
//! listens at all, and on which address and port. Measured on MLSDM 1.2.0 (its source and the
//! running service):
//!
//! - upstream's image runs `python -m mlsdm.service.neuro_engine_service`, a shim with no
//!   `__main__` block: it exits 0 at once with nothing listening, so a container that sets no
//!   command on that image never serves;
//! - `mlsdm serve` (also `python -m mlsdm.cli serve`) listens on 0.0.0.0:8000 by default; with
//!   `--mode` it sets `MLSDM_RUNTIME_MODE`, and the deprecated `python -m mlsdm.entrypoints.*`
//!   set it and other `MLSDM_*` variables, which MLSDM merges into its config as unknown keys
//!   and refuses to start on;
//! - `uvicorn mlsdm.api.app:app` listens on 127.0.0.1:8000 unless `--host`/`--port` (or
//!   `UVICORN_HOST`/`UVICORN_PORT`) say otherwise; gunicorn binds 127.0.0.1:8000 unless `-b`.
//!
//! A loopback address is unreachable for the kubelet's probes and the Service (they use the
//! pod's IP). Anything else (a team's own image with its own command, a script) is not decided
//! here. Our own reading: no crate reads these programs' command lines.

use serde_json::{Map, Value, json};

/// Upstream's image, whose command does not serve (see the module doc).
const UPSTREAM_IMAGE: &str = "neuron7x/mlsdm-neuro-engine";

/// What the container's command line does, as the `mlsdm.serving` fact: `decided`, and when
/// decided `listens`, `host`, `port` and `why` (what a failure says).
/// `env_complete` is false when an `envFrom` source is not among the audited objects: a variable
/// the server reads (`UVICORN_HOST`) may come from it.
pub(super) fn serving(container: &Value, env: &Map<String, Value>, env_complete: bool) -> Value {
    let words = |field: &str| -> Vec<String> {
        container
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let (command, args) = (words("command"), words("args"));
    let undecided = |why: &str| json!({"decided": false, "why": why});
    if command.is_empty() && args.is_empty() {
        let image = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let repository = image.split('@').next().unwrap_or(image);
        let repository = repository
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(repository, |(r, _)| r);
        if repository.ends_with(UPSTREAM_IMAGE) {
            return json!({
                "decided": true,
                "listens": false,
                "why": "the container sets no command, so it runs the image's: upstream's image runs python -m mlsdm.service.neuro_engine_service, which exits at once with nothing listening (MLSDM 1.2.0)",
            });
        }
        return undecided(
            "the container runs its image's own command, which the manifest does not show",
        );
    }
    let line: Vec<String> = command.into_iter().chain(args).collect();
    // A variable set on the command line or in a script (`env UVICORN_HOST=0.0.0.0 uvicorn`,
    // `export UVICORN_HOST=...`) wins over the container's.
    let assigned: Vec<(String, String)> = line
        .iter()
        .flat_map(|w| w.split_whitespace())
        .filter_map(|w| w.split_once('='))
        .filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(|(name, value)| (name.to_string(), value.replace(['"', '\''], "")))
        .collect();
    // What the server reads of the environment: a literal, or not known (a `fieldRef`, a
    // Secret, an `envFrom` source not audited) - `Err` then, and nothing is decided on it.
    let var = |name: &str| -> Result<Option<String>, ()> {
        if let Some((_, v)) = assigned.iter().rev().find(|(n, _)| n == name) {
            return Ok(Some(v.clone()));
        }
        match env.get(name) {
            Some(e) => e
                .get("value")
                .and_then(Value::as_str)
                .map(|v| Some(v.to_string()))
                .ok_or(()),
            None if env_complete => Ok(None),
            None => Err(()),
        }
    };
    let line = expand(&line, &|name| var(name).ok().flatten());
    let words = program_words(&line);
    let Some(words) = words else {
        return undecided("the command line is not one this check reads");
    };
    read_program(&words, &var)
}

/// `$(VAR)` references expanded from the container's variables, once and left to right as the
/// kubelet does (a value is not expanded again, so `X: /a$(X)` ends); a reference it cannot
/// expand stays as written (and is then not decided on).
fn expand(words: &[String], var: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    words
        .iter()
        .map(|w| {
            let mut out = String::with_capacity(w.len());
            let mut rest = w.as_str();
            while let Some(start) = rest.find("$(") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                if let Some((len, value)) = after
                    .find(')')
                    .and_then(|len| Some((len, var(&after[..len])?)))
                {
                    out.push_str(&value);
                    rest = &after[len + 1..];
                } else {
                    out.push_str("$(");
                    rest = after;
                }
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// Programs that only start the next one (`tini -- uvicorn ...`).
const WRAPPERS: &[&str] = &["tini", "dumb-init", "--", "exec", "env", "nice", "chpst"];

/// The words of the program that starts the server: the command line itself (after wrappers
/// such as `tini --`), or in a `sh -c` script the command it `exec`s, else the last one this
/// check reads (`mlsdm check && exec mlsdm serve`: the server is what runs last).
fn program_words(line: &[String]) -> Option<Vec<String>> {
    let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    let unwrap = |words: Vec<String>| -> Vec<String> {
        words
            .into_iter()
            .skip_while(|w| {
                WRAPPERS.contains(&base(w).as_str()) || (w.contains('=') && !w.starts_with('-'))
            })
            .collect()
    };
    let first = base(line.first()?);
    if matches!(first.as_str(), "sh" | "bash" | "dash" | "ash") {
        let script = line.iter().skip_while(|w| *w != "-c").nth(1)?;
        // A line ending in `\` goes on on the next one.
        let script = script.replace("\\\n", " ");
        // A server left in the background (`mlsdm serve &`) or chosen by a branch is not read.
        let background = script
            .match_indices('&')
            .any(|(at, _)| !script[at..].starts_with("&&") && !script[..at].ends_with('&'));
        if background {
            return None;
        }
        let segments: Vec<Vec<String>> = script
            .split(['\n', ';', '&', '|'])
            .map(|part| {
                part.split_whitespace()
                    .map(|w| w.replace(['"', '\''], ""))
                    .collect::<Vec<_>>()
            })
            .filter(|words| !words.is_empty())
            .collect();
        let execs: Vec<&Vec<String>> = segments
            .iter()
            .filter(|words| words.first().is_some_and(|w| w == "exec"))
            .collect();
        if execs.len() > 1 {
            return None;
        }
        let chosen = match execs.first() {
            Some(words) => unwrap((*words).clone()),
            None => segments
                .into_iter()
                .map(unwrap)
                .rev()
                .find(|words| words.first().is_some_and(|w| known(&base(w), words)))?,
        };
        return (!chosen.is_empty()).then_some(chosen);
    }
    let words = unwrap(line.to_vec());
    (!words.is_empty()).then_some(words)
}

/// Whether `program` (with its words) is one [`read_program`] decides on.
fn known(program: &str, words: &[String]) -> bool {
    matches!(program, "uvicorn" | "gunicorn" | "mlsdm")
        || (program.starts_with("python") && words.iter().any(|w| w == "-m"))
}

/// A flag's value: `--port 8000`, `--port=8000`. Given twice, the last one: argparse, click and
/// gunicorn's parser all keep it, and `args` come after `command` (`--port 8000` in the command
/// and `--port 9000` in args listens on 9000).
fn flag(words: &[String], names: &[&str]) -> Option<String> {
    flags(words, names).into_iter().last()
}

/// What argparse accepts as each value-taking option's value (MLSDM 1.2.0): `--port` is an
/// int, `--backend`, `--log-level` and `--mode` have choices; anything else stops it at start.
/// A value still holding a `$(VAR)` the audit could not expand is not judged here.
fn serve_value_refused(option: &str, value: &str) -> Option<String> {
    if value.contains('$') {
        return None;
    }
    let choices: &[&str] = match option {
        "--port" => {
            return value
                .trim()
                .parse::<i64>()
                .is_err()
                .then(|| format!("{value:?} is not an integer"));
        }
        "--backend" => &["local_stub", "openai"],
        "--log-level" => &["debug", "info", "warning", "error"],
        "--mode" => &["dev", "local-prod", "cloud-prod", "agent-api"],
        _ => return None,
    };
    (!choices.contains(&value)).then(|| {
        format!(
            "{value:?} is not one of its choices ({})",
            choices.join(", ")
        )
    })
}

/// `mlsdm serve`'s options (MLSDM 1.2.0 `cli/__init__.py`), each with whether it takes a value.
const SERVE_OPTIONS: &[(&str, bool)] = &[
    ("--host", true),
    ("--port", true),
    ("--config", true),
    ("--backend", true),
    ("--log-level", true),
    ("--reload", false),
    ("--disable-rate-limit", false),
    ("--mode", true),
    ("--help", false),
];

/// `mlsdm serve`'s arguments as argparse reads them: an abbreviation (`--po 9000`, argparse's
/// default `allow_abbrev`) spelled out, `--opt value` joined to `--opt=value`. `Err` says why
/// argparse exits before anything serves: an option it does not know or cannot tell apart
/// (`--h`: --host or --help?), a value missing, an argument `serve` does not take, or --help.
fn serve_arguments(rest: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let word = &rest[i];
        i += 1;
        let Some(long) = word.strip_prefix("--") else {
            return Err(if word.starts_with('-') && word.len() > 1 {
                format!("mlsdm serve exits at {word}: an option it does not know (or -h, its help)")
            } else {
                format!(
                    "mlsdm serve exits at {word}: it takes no such argument (argparse: unrecognized arguments)"
                )
            });
        };
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
            None => (word.clone(), None),
        };
        let found: Vec<&(&str, bool)> = match SERVE_OPTIONS.iter().find(|(o, _)| *o == name) {
            Some(exact) => vec![exact],
            None => SERVE_OPTIONS
                .iter()
                .filter(|(o, _)| o.starts_with(name.as_str()))
                .collect(),
        };
        let &[&(option, takes_value)] = found.as_slice() else {
            return Err(format!(
                "mlsdm serve exits at {word}: {} (argparse stops before serving)",
                if found.is_empty() {
                    "an option it does not know"
                } else {
                    "an abbreviation of more than one option"
                }
            ));
        };
        if option == "--help" {
            return Err("mlsdm serve --help prints its help and exits".into());
        }
        let value = match (takes_value, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => match rest.get(i).filter(|v| !v.starts_with('-')) {
                Some(v) => {
                    i += 1;
                    Some(v.clone())
                }
                None => {
                    return Err(format!(
                        "mlsdm serve exits at {word}: the option needs a value"
                    ));
                }
            },
            (false, None) => None,
            (false, Some(_)) => {
                return Err(format!(
                    "mlsdm serve exits at {word}: the option takes no value"
                ));
            }
        };
        match value {
            Some(v) => {
                if let Some(why) = serve_value_refused(option, &v) {
                    return Err(format!(
                        "mlsdm serve exits at {option} {v}: {why} (argparse stops before serving)"
                    ));
                }
                out.push(format!("{option}={v}"));
            }
            None => out.push(option.to_string()),
        }
    }
    Ok(out)
}

/// Every value of a flag, in order; a flag with no value gives `""` (the program refuses to
/// start, and an empty port is not read as one).
fn flags(words: &[String], names: &[&str]) -> Vec<String> {
    words
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            names.iter().find_map(|n| {
                if w == n {
                    Some(
                        words
                            .get(i + 1)
                            .filter(|v| !v.starts_with('-'))
                            .cloned()
                            .unwrap_or_default(),
                    )
                } else {
                    w.strip_prefix(n)
                        .and_then(|rest| rest.strip_prefix('='))
                        .map(str::to_string)
                }
            })
        })
        .collect()
}

fn read_program(words: &[String], var: &impl Fn(&str) -> Result<Option<String>, ()>) -> Value {
    let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    let program = base(&words[0]);
    // `python -m MODULE args...` is MODULE's program.
    let (program, rest): (String, &[String]) = if program.starts_with("python") {
        match words.iter().position(|w| w == "-m") {
            Some(i) if i + 1 < words.len() => (words[i + 1].clone(), &words[i + 2..]),
            _ => {
                return json!({"decided": false, "why": "the command line is not one this check reads"});
            }
        }
    } else {
        (program, &words[1..])
    };
    let fails = |why: String| json!({"decided": true, "listens": false, "why": why});
    let unread =
        || json!({"decided": false, "why": "the command line is not one this check reads"});
    // uvicorn and gunicorn serve whatever app they are given: MLSDM's names its module.
    let serves_mlsdm = rest.iter().any(|w| w.contains("mlsdm"));
    match program.as_str() {
        "mlsdm.api.app" => fails(
            "it runs python -m mlsdm.api.app, which defines the app but does not serve it: it exits at once (MLSDM 1.2.0 has no __main__ block there)".into(),
        ),
        "mlsdm.service.neuro_engine_service" => fails(
            "it runs python -m mlsdm.service.neuro_engine_service, which exits at once with nothing listening (MLSDM 1.2.0: the shim has no __main__ block)".into(),
        ),
        p if p.starts_with("mlsdm.entrypoints") => fails(format!(
            "it runs python -m {p}, which sets MLSDM_RUNTIME_MODE and other MLSDM_* variables that MLSDM 1.2.0 refuses at start (unknown config keys): use mlsdm serve"
        )),
        "mlsdm" | "mlsdm.cli" => {
            if rest.first().map(String::as_str) != Some("serve") {
                return fails(format!(
                    "it runs {program} {}, which does not start the server (mlsdm serve does)",
                    rest.first().map_or("", String::as_str)
                ));
            }
            let rest = match serve_arguments(&rest[1..]) {
                Ok(words) => words,
                Err(why) => return fails(why),
            };
            if flag(&rest, &["--mode"]).is_some() {
                return fails(
                    "mlsdm serve --mode sets MLSDM_RUNTIME_MODE, which MLSDM 1.2.0 merges into its config as an unknown key and refuses to start on".into(),
                );
            }
            // `serve` hands uvicorn the app object, and uvicorn refuses to reload one: "You must
            // pass the application as an import string to enable 'reload' or 'workers'".
            if rest.iter().any(|w| w == "--reload" || w.starts_with("--reload=")) {
                return fails(
                    "mlsdm serve --reload exits at once: uvicorn reloads only an app given as an import string, and serve passes it the app object (nothing listens)".into(),
                );
            }
            let mut verdict = listening(
                flag(&rest, &["--host"]).unwrap_or_else(|| "0.0.0.0".into()),
                flag(&rest, &["--port"]).unwrap_or_else(|| "8000".into()),
            );
            // What `cmd_serve` puts in the environment before the app reads it, over the
            // container's own: the config file and the LLM backend (`if args.config:`, so an
            // empty one sets nothing). Not --disable-rate-limit: it sets DISABLE_RATE_LIMIT
            // after `mlsdm.api.app` was imported, which read it at import (app.py:91).
            let settings: Map<String, Value> = [("--config", "CONFIG_PATH"), ("--backend", "LLM_BACKEND")]
                .into_iter()
                .filter_map(|(option, variable)| {
                    flag(&rest, &[option])
                        .filter(|v| !v.is_empty())
                        .map(|v| (variable.to_string(), json!(v)))
                })
                .collect();
            if !settings.is_empty() {
                verdict["settings"] = Value::Object(settings);
            }
            verdict
        }
        "uvicorn" | "gunicorn" if !serves_mlsdm => unread(),
        "uvicorn" => {
            if flag(rest, &["--uds", "--fd"]).is_some() {
                return fails(
                    "uvicorn listens on a Unix socket or an inherited descriptor, not on a port the probes and the Service reach".into(),
                );
            }
            let setting = |flag_names: &[&str], variable: &str, default: &str| {
                match flag(rest, flag_names) {
                    Some(v) => Ok(v),
                    None => var(variable).map(|v| v.unwrap_or_else(|| default.into())),
                }
            };
            match (
                setting(&["--host"], "UVICORN_HOST", "127.0.0.1"),
                setting(&["--port"], "UVICORN_PORT", "8000"),
            ) {
                (Ok(host), Ok(port)) => listening(host, port),
                _ => json!({"decided": false, "why": "uvicorn's address comes from a variable whose value is not in the audited objects"}),
            }
        }
        // Without `-b` on the command line, gunicorn's address may come from a config file
        // (`-c`, or ./gunicorn.conf.py), GUNICORN_CMD_ARGS or PORT: not decided.
        // Several binds: one the probes reach is enough.
        "gunicorn" => {
            let verdicts: Vec<Value> = flags(rest, &["-b", "--bind"])
                .iter()
                .map(|bind| {
                    let (host, port) = bind.rsplit_once(':').unwrap_or((bind.as_str(), "8000"));
                    listening(host.trim_matches(['[', ']']).into(), port.into())
                })
                .collect();
            verdicts
                .iter()
                .find(|v| v["listens"] == json!(true))
                .or_else(|| verdicts.first())
                .cloned()
                .unwrap_or_else(unread)
        }
        _ => unread(),
    }
}

/// The verdict on an address and port as written (after `$(VAR)` expansion).
fn listening(host: String, port: String) -> Value {
    let Ok(port) = port.parse::<u16>() else {
        return json!({"decided": false, "why": format!("the port {port:?} is not a number this check can read")});
    };
    if host.contains("$(") || host.contains('$') {
        return json!({"decided": false, "why": "the address the server binds is set at run time"});
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return json!({
            "decided": true,
            "listens": false,
            "host": host,
            "port": port,
            "why": format!("the server listens on {host} only (the default of uvicorn and gunicorn when no address is given): the kubelet's probes and the Service reach the pod's IP, where nothing answers; bind 0.0.0.0"),
        });
    }
    json!({"decided": true, "listens": true, "host": host, "port": port})
}

#[cfg(test)]
mod tests {
    use super::serving;
    use serde_json::{Map, Value, json};

    fn verdict(container: Value) -> Value {
        let mut env = Map::new();
        env.insert("PORT_VAR".into(), json!({"value": "9000"}));
        serving(&container, &env, true)
    }

    /// Review 29: the first of a repeated flag was read (Kubernetes appends `args` to
    /// `command`; argparse and click keep the last), and argparse's abbreviations were not:
    /// `args: [--host, 127.0.0.1]` after a command binding 0.0.0.0, and `--po 9000`, passed.
    #[test]
    fn the_last_flag_wins_and_argparse_abbreviations_count() {
        for (container, listens, port) in [
            (
                json!({"command": ["mlsdm", "serve", "--host", "0.0.0.0"], "args": ["--host", "127.0.0.1"]}),
                false,
                Some(8000),
            ),
            (
                json!({"command": ["mlsdm", "serve"], "args": ["--port", "8000", "--port", "9000"]}),
                true,
                Some(9000),
            ),
            (
                json!({"command": ["uvicorn", "mlsdm.api.app:app", "--host", "0.0.0.0", "--port", "8000"], "args": ["--host", "127.0.0.1"]}),
                false,
                Some(8000),
            ),
            (
                json!({"command": ["mlsdm", "serve", "--po", "9000"]}),
                true,
                Some(9000),
            ),
            (
                json!({"command": ["mlsdm", "serve", "--ho=127.0.0.1"]}),
                false,
                Some(8000),
            ),
            // `--mo` is --mode, which stops MLSDM 1.2.0 at start.
            (
                json!({"command": ["mlsdm", "serve", "--mo", "cloud-prod"]}),
                false,
                None,
            ),
            // Ambiguous (--host or --help), unknown, or an argument serve does not take:
            // argparse exits before anything serves.
            (
                json!({"command": ["mlsdm", "serve", "--h", "0.0.0.0"]}),
                false,
                None,
            ),
            (
                json!({"command": ["mlsdm", "serve", "--workers", "4"]}),
                false,
                None,
            ),
            (json!({"command": ["mlsdm", "serve", "app"]}), false, None),
            (
                json!({"command": ["mlsdm", "serve", "--port"]}),
                false,
                None,
            ),
            // Values argparse refuses (type int, choices): it exits before serving.
            (
                json!({"command": ["mlsdm", "serve", "--port="]}),
                false,
                None,
            ),
            (
                json!({"command": ["mlsdm", "serve", "--log-level", "INFO"]}),
                false,
                None,
            ),
            (
                json!({"command": ["mlsdm", "serve", "--backend", "anthropic"]}),
                false,
                None,
            ),
            (
                json!({"command": ["mlsdm", "serve", "--log-level", "warning", "--port", "8000"]}),
                true,
                Some(8000),
            ),
        ] {
            let v = verdict(container.clone());
            assert_eq!(v["listens"], json!(listens), "{container}: {v}");
            assert_eq!(v["decided"], json!(true), "{container}: {v}");
            if let Some(port) = port {
                assert_eq!(v["port"], json!(port), "{container}: {v}");
            }
        }
        // What `cmd_serve` sets for the app: the last --config and --backend.
        let v = verdict(
            json!({"command": ["mlsdm", "serve", "--conf", "/etc/a.yaml", "--backend=openai", "--config=/etc/b.yaml"]}),
        );
        assert_eq!(
            v["settings"],
            json!({"CONFIG_PATH": "/etc/b.yaml", "LLM_BACKEND": "openai"})
        );
        // `if args.config:` ignores an empty one.
        let v = verdict(json!({"command": ["mlsdm", "serve", "--config="]}));
        assert_eq!(v["settings"], Value::Null, "{v}");
    }

    #[test]
    fn command_lines_measured_on_mlsdm_1_2_0() {
        let image = "ghcr.io/neuron7x/mlsdm-neuro-engine:1.2.0@sha256:4f2a";
        for (container, listens, port) in [
            (json!({"image": image}), false, None),
            (
                json!({"image": "registry.local:5000/neuron7x/mlsdm-neuro-engine:1.2.0"}),
                false,
                None,
            ),
            (
                json!({"command": ["uvicorn", "mlsdm.api.app:app", "--host", "0.0.0.0", "--port", "8000"]}),
                true,
                Some(8000),
            ),
            (
                json!({"command": ["uvicorn", "mlsdm.api.app:app"]}),
                false,
                Some(8000),
            ),
            (
                json!({"command": ["uvicorn"], "args": ["mlsdm.api.app:app", "--host=::", "--port=$(PORT_VAR)"]}),
                true,
                Some(9000),
            ),
            (json!({"command": ["mlsdm", "serve"]}), true, Some(8000)),
            (
                json!({"command": ["python", "-m", "mlsdm.cli", "serve", "--port", "8080"]}),
                true,
                Some(8080),
            ),
            (
                json!({"command": ["mlsdm", "serve", "--mode", "cloud-prod"]}),
                false,
                None,
            ),
            (
                json!({"command": ["python", "-m", "mlsdm.entrypoints.cloud"]}),
                false,
                None,
            ),
            (
                json!({"command": ["python", "-m", "mlsdm.service.neuro_engine_service"]}),
                false,
                None,
            ),
            (
                json!({"command": ["sh", "-c", "cd /app && exec uvicorn mlsdm.api.app:app --host 127.0.0.1"]}),
                false,
                Some(8000),
            ),
            (
                json!({"command": ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-b", "0.0.0.0:8000", "mlsdm.api.app:app"]}),
                true,
                Some(8000),
            ),
        ] {
            let v = verdict(container.clone());
            assert_eq!(v["decided"], json!(true), "{container}: {v}");
            assert_eq!(v["listens"], json!(listens), "{container}: {v}");
            if let Some(port) = port {
                assert_eq!(v["port"], json!(port), "{container}: {v}");
            }
        }
        // Not decided: a team's own image with its own command, a script, a run-time address.
        for container in [
            json!({"image": "acme/mlsdm:1.2.0"}),
            json!({"command": ["/app/start.sh"]}),
            json!({"command": ["uvicorn", "mlsdm.api.app:app", "--host", "$(POD_IP)"]}),
        ] {
            assert_eq!(
                verdict(container.clone())["decided"],
                json!(false),
                "{container}"
            );
        }
    }

    /// Review 28c: a script continued over lines, a preflight before the server, a wrapper,
    /// the app module run as a program, a self-referencing variable; gunicorn without `-b` and
    /// another team's app are not decided.
    #[test]
    fn scripts_wrappers_and_other_apps() {
        let mut env = Map::new();
        env.insert("SELF".into(), json!({"value": "/a$(SELF)"}));
        let v = |c: Value| serving(&c, &env, true);
        let cases = [
            (
                json!({"command": ["/bin/sh", "-c"], "args": ["exec uvicorn mlsdm.api.app:app \\\n  --host 0.0.0.0 \\\n  --port 8000\n"]}),
                true,
            ),
            (
                json!({"command": ["sh", "-c", "mlsdm check && exec mlsdm serve --host 0.0.0.0 --port 8000"]}),
                true,
            ),
            (
                json!({"command": ["uvicorn", "mlsdm.api.app:app", "--host", "0.0.0.0", "--root-path", "$(SELF)"]}),
                true,
            ),
            (
                json!({"command": ["tini", "--", "uvicorn", "mlsdm.api.app:app"]}),
                false,
            ),
            (json!({"command": ["python", "-m", "mlsdm.api.app"]}), false),
        ];
        for (container, listens) in cases {
            let got = v(container.clone());
            assert_eq!(got["decided"], json!(true), "{container}: {got}");
            assert_eq!(got["listens"], json!(listens), "{container}: {got}");
        }
        // Review 28d: the address from a variable set on the command line or in the script,
        // several binds, quotes inside a word, a flag without its value.
        let cases = [
            (
                json!({"command": ["env", "UVICORN_HOST=0.0.0.0", "uvicorn", "mlsdm.api.app:app", "--port", "8000"]}),
                true,
            ),
            (
                json!({"command": ["sh", "-c", "export UVICORN_HOST=0.0.0.0\nexec uvicorn mlsdm.api.app:app --port 8000"]}),
                true,
            ),
            (
                json!({"command": ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-b", "127.0.0.1:9000", "-b", "0.0.0.0:8000", "mlsdm.api.app:app"]}),
                true,
            ),
            (
                json!({"command": ["sh", "-c", "exec uvicorn mlsdm.api.app:app --host=\"127.0.0.1\" --port 8000"]}),
                false,
            ),
        ];
        for (container, listens) in cases {
            let got = v(container.clone());
            assert_eq!(got["decided"], json!(true), "{container}: {got}");
            assert_eq!(got["listens"], json!(listens), "{container}: {got}");
        }
        // Not decided: a host from a variable not in the manifest, branches, the background.
        let mut from_pod = Map::new();
        from_pod.insert("UVICORN_HOST".into(), json!({"source": "fieldRef"}));
        let uvicorn = json!({"command": ["uvicorn", "mlsdm.api.app:app", "--port", "8000"]});
        assert_eq!(serving(&uvicorn, &from_pod, true)["decided"], json!(false));
        assert_eq!(
            serving(&uvicorn, &Map::new(), false)["decided"],
            json!(false)
        );
        assert_eq!(
            serving(&uvicorn, &Map::new(), true)["listens"],
            json!(false)
        );
        for container in [
            json!({"command": ["sh", "-c", "if [ -n \"$DEV\" ]; then\n exec uvicorn mlsdm.api.app:app --host 127.0.0.1\nelse\n exec uvicorn mlsdm.api.app:app --host 0.0.0.0\nfi"]}),
            json!({"command": ["sh", "-c", "mlsdm serve --host 0.0.0.0 --port 8000 &"]}),
            json!({"command": ["uvicorn", "mlsdm.api.app:app", "--host", "0.0.0.0", "--port"]}),
            json!({"command": ["gunicorn", "-c", "/etc/mlsdm/gunicorn.conf.py", "mlsdm.api.app:app"]}),
            json!({"command": ["gunicorn", "admin.wsgi"]}),
            json!({"command": ["uvicorn", "admin.main:app"]}),
        ] {
            assert_eq!(v(container.clone())["decided"], json!(false), "{container}");
        }
    }
}
