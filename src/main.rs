//! The binary: parse arguments, call the library, print, map the outcome to an exit code.
//! This is the only place that prints errors.

use clap::Parser;
use mlsdm_audit::cli::{Cli, Command, ListFormat, SchemaOf, ViewArgs};
use mlsdm_audit::{UsageError, checks, redact, report, signoff};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    // A panic's message can quote input: it passes the redaction layer like every other output.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "mlsdm-audit: internal error{at}: {} (please report it)",
                redact::text(&message)
            );
        }
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version go to stdout, which may fail like any other write.
            stdout_wrote(e.print());
            let failed = !e.use_stderr() && stdout_failure().is_some();
            return ExitCode::from(if e.use_stderr() || failed { 2 } else { 0 });
        }
    };
    // `check -o json`: input errors go to stderr as JSON diagnostics, for CI tools.
    let json_errors =
        matches!(&cli.command, Command::Check(a) if a.format == Some(report::Format::Json));
    match run(cli) {
        // A report cut short on stdout (a full disk) was not delivered: a gate that read half a
        // JUnit file must not also read exit 0. A failing code stays (1, 3, and watch's 4,
        // which a pipeline rolls back on): it says more than 2 would.
        Ok(code) if let Some(why) = stdout_failure() => {
            #[allow(clippy::print_stderr)] // main is the one place that prints errors
            {
                eprintln!("error: cannot write to standard output: {why}");
            }
            ExitCode::from(if code == 0 { 2 } else { code })
        }
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            #[allow(clippy::print_stderr)] // main is the one place that prints errors
            if json_errors && let Some(d) = e.diagnostics() {
                // Masked string by string before escaping: a secret quoted in a message
                // (`{:?}`) is escaped twice in the JSON and no longer matches (review finding).
                let mut json = serde_json::json!({ "diagnostics": d });
                mlsdm_audit::redact::value(&mut json);
                let json = json.to_string();
                eprintln!("{}", mlsdm_audit::redact::text(&json));
            } else {
                // Unreachable-source errors are one line; input errors may list several problems.
                // Redact before collapsing whitespace: a secret with a newline must still match.
                let text = mlsdm_audit::redact::text(&e.to_string()).into_owned();
                let text = if e.exit_code() == 3 {
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                } else {
                    text
                };
                eprintln!("error: {}", mlsdm_audit::redact::text(&text));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// `--timeout`: when `limit` passes before the run is done, one line naming what was still
/// running, and exit 3. It holds the lock while exiting, so no report can be printed after it.
fn watchdog(limit: std::time::Duration, flag: String) -> std::sync::Arc<std::sync::Mutex<bool>> {
    let done = std::sync::Arc::new(std::sync::Mutex::new(false));
    let watched = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let finished = watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *finished {
            return;
        }
        let line = format!(
            "the audit did not finish within --timeout {flag}; still running: {}; no report was written",
            mlsdm_audit::activity::summary(6)
        );
        #[allow(clippy::print_stderr)] // main is the one place that prints errors
        {
            eprintln!("error: {}", redact::text(&line));
        }
        mlsdm_audit::activity::kill_children();
        std::process::exit(3);
    });
    done
}

/// The first failure to write stdout, kept for `main`, which turns it into exit 2 whatever the
/// verdict: every writer of stdout goes through [`stdout_wrote`], so no caller can drop one.
static STDOUT_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Records a write to stdout that failed. A closed pipe (`| head`) is the reader's choice, not a
/// failure: it is let go, as grep and kubectl do.
fn stdout_wrote(result: std::io::Result<()>) {
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let mut first = STDOUT_FAILURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert_with(|| e.to_string());
    }
}

fn stdout_failure() -> Option<String> {
    STDOUT_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Every byte written to stdout passes the redaction layer. Flushed here: an error on the last
/// line would otherwise surface only when the lock is dropped, where it is lost.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    stdout_wrote(
        out.write_all(redact::text(text).as_bytes())
            .and_then(|()| out.flush()),
    );
}

/// Bytes that must reach stdout as they are (a payload to sign, a man page, completions).
fn print_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    stdout_wrote(out.write_all(bytes).and_then(|()| out.flush()));
}

/// Every report written to a file passes the redaction layer.
fn write_file(path: &std::path::Path, text: &str) -> Result<(), UsageError> {
    mlsdm_audit::fleet::write_whole(path, redact::text(text).as_bytes())
        .map_err(|e| UsageError::Invalid(format!("cannot write {}: {e}", path.display())))
}

/// A JSON report streamed through the redaction layer to `out`, not rendered into one string
/// first: the largest allocation of a big run (issue 12).
fn write_json(report: &report::Report, out: impl Write) -> std::io::Result<()> {
    let mut out = redact::Writer::new(out);
    report::json::write(report, &mut out)?;
    out.finish()?.flush()
}

/// `--show` lays out the table: with another format it would be silently ignored.
fn view_applies(view: &ViewArgs, format: report::Format) -> Result<(), UsageError> {
    match view.show {
        Some(_) if format != report::Format::Table => Err(UsageError::Invalid(format!(
            "--show applies to -o table only, not -o {}",
            format.name()
        ))),
        _ => Ok(()),
    }
}

/// `verify --manifests`: whether the release's manifests, read as `check` reads them, are the
/// bytes the report audited (a signed pass is about those bytes, not about whatever is deployed
/// next). Without --manifests it only says what the report is bound to.
fn manifests_match(
    target: &report::Target,
    paths: &[std::path::PathBuf],
) -> Result<bool, UsageError> {
    let Some(audited) = &target.manifests_digest else {
        if !paths.is_empty() {
            print(
                "the report records no manifests digest (a live or service audit, a merged report, or an older version's): it cannot be held to --manifests\n",
            );
        }
        return Ok(paths.is_empty());
    };
    let audited_line = format!(
        "{} file(s), sha256 {}",
        audited.files(),
        report::printable(&audited.sha256, true)
    );
    if paths.is_empty() {
        print(&format!(
            "the report audited manifests of {audited_line}: --manifests holds a release's files to them\n"
        ));
        return Ok(true);
    }
    let inputs: Vec<mlsdm_audit::sources::manifests::Input> = paths
        .iter()
        .cloned()
        .map(mlsdm_audit::sources::manifests::Input::Path)
        .collect();
    let read = mlsdm_audit::sources::manifests::load_inputs(&inputs)?.digest();
    // Kinds, paths relative to the inputs and bytes decide; names only help say which file
    // changed (the audit may have run from another directory). The report's own record must
    // give its digest too: the digest alone is what was compared.
    let holds = mlsdm_audit::sources::manifests::combined_digest(&audited.inputs) == audited.sha256;
    if holds && read.sha256 == audited.sha256 {
        print(&format!(
            "the manifests are the ones the report audited ({audited_line})\n"
        ));
        return Ok(true);
    }
    let shape = |d: &report::ManifestsDigest| -> Vec<String> {
        d.inputs
            .iter()
            .map(|i| {
                format!(
                    "{} {:?}",
                    serde_json::to_value(i.kind.as_read()).unwrap_or_default(),
                    i.path
                )
            })
            .collect()
    };
    let detail = if !holds {
        "the report's own record of its inputs does not give its sha256".to_string()
    } else if shape(&read) != shape(audited) {
        format!(
            "inputs given as {}, the report audited {}",
            report::printable(&shape(&read).join(", "), true),
            report::printable(&shape(audited).join(", "), true)
        )
    } else {
        let files = |d: &report::ManifestsDigest| -> Vec<(usize, String, String, Option<String>)> {
            d.inputs
                .iter()
                .enumerate()
                .flat_map(|(n, i)| {
                    i.files
                        .iter()
                        .map(move |f| (n, f.path.clone(), f.sha256.clone(), f.link.clone()))
                })
                .collect()
        };
        let (now, then) = (files(&read), files(audited));
        let names: std::collections::BTreeMap<(usize, &str), &str> = read
            .inputs
            .iter()
            .enumerate()
            .flat_map(|(n, i)| {
                i.files
                    .iter()
                    .map(move |f| ((n, f.path.as_str()), f.name.as_str()))
            })
            .collect();
        let changed: Vec<String> = now
            .iter()
            .filter(|f| !then.contains(f))
            .map(|(n, path, _, _)| names.get(&(*n, path.as_str())).copied().unwrap_or(path))
            .map(|name| report::printable(name, true).into_owned())
            .collect();
        let gone: Vec<String> = then
            .iter()
            .filter(|(n, path, _, _)| !now.iter().any(|(m, p, _, _)| m == n && p == path))
            .map(|(_, path, _, _)| report::printable(path, true).into_owned())
            .collect();
        let mut parts = Vec::new();
        if !changed.is_empty() {
            parts.push(format!("changed or new: {}", list_some(&changed)));
        }
        if !gone.is_empty() {
            parts.push(format!("not found: {}", list_some(&gone)));
        }
        if parts.is_empty() {
            "the same files in another order".to_string()
        } else {
            parts.join("; ")
        }
    };
    print(&format!(
        "the manifests are not the ones the report audited ({detail}): read sha256 {}; the report audited {audited_line}\n",
        read.sha256
    ));
    Ok(false)
}

/// The first five of `items`, and how many more.
fn list_some(items: &[String]) -> String {
    let text = items.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    match items.len().checked_sub(5) {
        Some(more) if more > 0 => format!("{text} and {more} more"),
        _ => text,
    }
}

/// Renders the report to `--output-file` or stdout (nothing on stdout with --quiet), and the
/// -v lines to stderr.
fn emit(
    report: &report::Report,
    format: report::Format,
    output: Option<&std::path::Path>,
    view: &ViewArgs,
) -> Result<(), UsageError> {
    let to_terminal = output.is_none() && std::io::stdout().is_terminal();
    let layout = report::table::View {
        show: view.show,
        color: view
            .color
            .enabled(to_terminal, std::env::var_os("NO_COLOR").is_some()),
        width: if to_terminal {
            report::table::stdout_width()
        } else {
            report::table::DEFAULT_WIDTH
        },
    };
    for line in report::table::verbose_lines(report, view.verbose) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{}", redact::text(&line));
        }
    }
    match output {
        Some(path) if format == report::Format::Json => {
            mlsdm_audit::fleet::write_whole_with(path, |f| write_json(report, f)).map_err(|e| {
                UsageError::Invalid(format!("cannot write {}: {e}", path.display()))
            })?;
        }
        Some(path) => write_file(path, &report::render_view(report, format, layout))?,
        None if view.quiet => {}
        None if format == report::Format::Json => {
            stdout_wrote(write_json(report, std::io::stdout().lock()));
        }
        None => print(&report::render_view(report, format, layout)),
    }
    Ok(())
}

/// Finds and applies the config file (`--config`, or `.mlsdm-audit.yaml` found upward), and
/// names it on stderr: always said (one line), since a file found upward changes the gate; a
/// watch had applied it silently (review finding).
fn apply_config(args: &mut mlsdm_audit::cli::CheckArgs) -> Result<(), UsageError> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let config = mlsdm_audit::config::find(args.config.as_deref(), args.no_config, &cwd)
        .map_err(UsageError::Invalid)?;
    if let Some(c) = &config {
        mlsdm_audit::config::apply(args, c);
        if !args.view.quiet
            && let Some(p) = &c.path
        {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("config: {}", p.display());
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<u8, UsageError> {
    match cli.command {
        Command::Check(mut args) => {
            apply_config(&mut args)?;
            let format = report::Format::resolve(args.format, args.output.as_deref())
                .map_err(UsageError::Invalid)?;
            view_applies(&args.view, format)?;
            let started = std::time::Instant::now();
            let limit = mlsdm_audit::total_timeout(&args)?;
            let done = watchdog(limit, args.timeout.clone());
            let report = mlsdm_audit::fleet::run(&args);
            // From here the watchdog stands down: the report is either complete or an error.
            *done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
            // Secrets are masked in the model first, then again in the rendered bytes.
            let report = report?.redacted();
            // Files the directory walk skipped, and definitions a later one replaced, are said on
            // stderr too, where a CI log shows them whatever the format; every note is in the
            // report.
            if !args.view.quiet {
                for n in &report.notes {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!(
                            "note: {}",
                            redact::text(&mlsdm_audit::report::printable(&n.message, true))
                        );
                    }
                }
            }
            emit(&report, format, args.output.as_deref(), &args.view)?;
            if args.view.verbose > 0 {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("audit took {:.1}s", started.elapsed().as_secs_f64());
                }
            }
            let code = u8::try_from(report.exit_code()).unwrap_or(2);
            // The process ends on return: freeing the report (62,000 results at 5,000 objects,
            // 17 M instructions) would be the last thing the user waits for, and the system
            // takes the memory back at exit anyway.
            std::mem::forget(report);
            Ok(code)
        }
        Command::Watch(mut args) => {
            // The team's .mlsdm-audit.yaml (failOn, namespace, selector, waivers, sources) binds
            // the watch exactly as it binds `check`, and is named as `check` names it.
            apply_config(&mut args.check)?;
            mlsdm_audit::fleet::refuse_in_watch(&args.check)?;
            let terminal = std::io::stdout().is_terminal();
            mlsdm_audit::watch::run(&args, &mut |text: &str| print(text), terminal)
        }
        Command::ListChecks {
            format,
            checks,
            override_builtin,
        } => {
            let checks = checks::load_with(&checks, override_builtin)?;
            match format {
                ListFormat::Json => {
                    let list: Vec<serde_json::Value> = checks
                        .iter()
                        .map(|c| serde_json::json!({"id": c.id, "title": c.title, "section": c.section, "severity": c.severity, "source": c.source(), "checklist": c.checklist, "requires": c.requires, "externalEvidence": c.external_evidence}))
                        .collect();
                    print(&(serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"));
                }
                ListFormat::Markdown => print(&mlsdm_audit::docs::catalog_markdown(&checks)),
                ListFormat::Table => {
                    let mut t = comfy_table::Table::new();
                    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
                    t.force_no_tty();
                    t.set_header(vec!["Id", "Severity", "Source", "Section", "Title"]);
                    for c in &checks {
                        t.add_row(vec![
                            c.id.clone(),
                            c.severity.to_string(),
                            c.source().to_string(),
                            c.section.clone(),
                            c.title.clone(),
                        ]);
                    }
                    print(&format!("{t}\n{} checks\n", checks.len()));
                }
            }
            Ok(0)
        }
        Command::Explain {
            id,
            checks,
            override_builtin,
        } => {
            let checks = checks::load_with(&checks, override_builtin)?;
            let check = checks.iter().find(|c| c.id == id).ok_or_else(|| {
                UsageError::Invalid(mlsdm_audit::docs::unknown_check(&id, &checks))
            })?;
            print(&mlsdm_audit::docs::explain(check));
            Ok(0)
        }
        Command::TestChecks { dirs } => {
            let (text, all_held) = mlsdm_audit::testchecks::run(&dirs)?;
            print(&text);
            Ok(u8::from(!all_held))
        }
        Command::ValidateChecks { paths } => {
            let n = checks::validate_paths(&paths)?;
            print(&format!("{n} check file(s) valid\n"));
            Ok(0)
        }
        Command::Report {
            report,
            merge,
            format,
            output,
            view,
        } => {
            let format =
                report::Format::resolve(format, output.as_deref()).map_err(UsageError::Invalid)?;
            view_applies(&view, format)?;
            if !merge.is_empty() {
                // A merged fleet report gates like `check`: the worst of its parts.
                let r = redact::model(mlsdm_audit::fleet::merge(&merge)?);
                emit(&r, format, output.as_deref(), &view)?;
                return Ok(u8::try_from(r.exit_code()).unwrap_or(2));
            }
            let Some(report) = report else {
                return Err(UsageError::Invalid(
                    "report: give REPORT.json or --merge".into(),
                ));
            };
            let mut r = mlsdm_audit::read_report(&report)?;
            // Shown as it stands today: a waiver that has lapsed since no longer waives.
            mlsdm_audit::review::waivers::lapse(&mut r.results, chrono::Utc::now().date_naive());
            r.recount();
            emit(&r, format, output.as_deref(), &view)?;
            // Rendering succeeded: the gate is `check`'s exit code, or `verify`'s on a signed
            // report (a pipeline renders SARIF, JUnit and Markdown from a failed audit's report
            // in one `bash -e` step, as examples/github-actions.yml does).
            Ok(0)
        }
        Command::Signoff {
            report,
            role,
            name,
            key,
            output,
            extra_roles,
        } => {
            let mut value = signoff::read(&report)?;
            let entry = signoff::sign(
                &mut value,
                &role,
                &name,
                &key,
                &extra_roles,
                &report::now_rfc3339(),
            )?;
            let target = output.unwrap_or(report);
            let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
            std::fs::write(&target, text).map_err(|e| {
                UsageError::Invalid(format!("cannot write {}: {e}", target.display()))
            })?;
            let n = value
                .get("signoffs")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len);
            print(&format!(
                "signed {} as {} ({}) at {}: signoff #{n}\n",
                target.display(),
                entry.role,
                entry.name,
                entry.time
            ));
            Ok(0)
        }
        Command::Verify {
            report: report_path,
            allowed_signers,
            principal,
            payload,
            fail_on_unsigned,
            role_signer,
            allow_narrowed,
            manifests,
            max_input_size,
        } => {
            if let Some(size) = &max_input_size {
                mlsdm_audit::input::set_cap_from_flag(size).map_err(UsageError::Invalid)?;
            }
            let mut roles = signoff::RoleSigners::new();
            for binding in &role_signer {
                let Some((role, identities)) = binding
                    .split_once('=')
                    .filter(|(r, i)| !r.trim().is_empty() && !i.trim().is_empty())
                else {
                    return Err(UsageError::Invalid(format!(
                        "--role-signer {binding:?}: give ROLE=IDENTITY[,IDENTITY...]"
                    )));
                };
                roles.entry(role.trim().to_string()).or_default().extend(
                    identities
                        .split(',')
                        .map(str::trim)
                        .filter(|i| !i.is_empty())
                        .map(str::to_string),
                );
            }
            let value = signoff::read(&report_path)?;
            let entries = value
                .get("signoffs")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(n) = payload {
                let e = entries.get(n.wrapping_sub(1)).ok_or_else(|| {
                    UsageError::Invalid(format!(
                        "--payload {n}: the report has {} signoff(s)",
                        entries.len()
                    ))
                })?;
                let field = |k: &str| {
                    e.get(k)
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let bytes =
                    signoff::payload(&value, &field("role"), &field("name"), &field("time"));
                print_bytes(&bytes);
                return Ok(0);
            }
            let allowed = allowed_signers
                .as_deref()
                .map(signoff::parse_allowed_signers)
                .transpose()?;
            let results =
                signoff::verify_roles(&value, allowed.as_deref(), principal.as_deref(), &roles);
            let mut ok = !results.is_empty();
            if results.is_empty() {
                print("the report has no signoffs\n");
            }
            for v in &results {
                print(&format!("{v}\n"));
                ok &= v.verdict == signoff::Verdict::Valid;
            }
            if allowed.is_none() && !results.is_empty() {
                print("no --allowed-signers: no key is trusted, so no role counts as signed\n");
            }
            for role in &fail_on_unsigned {
                if !results
                    .iter()
                    .any(|v| &v.role == role && v.verdict == signoff::Verdict::Valid)
                {
                    print(&format!(
                        "required role {role:?} has no valid signature by an allowed signer\n"
                    ));
                    ok = false;
                }
            }
            if let Some(why) = signoff::shared_signers(&results, &fail_on_unsigned) {
                print(&format!("{why}\n"));
                ok = false;
            }
            // The signatures vouch for the report; they do not make it pass. A signed report
            // whose own gate failed (or could not decide) verified with exit 0, so a deploy step
            // that ran only `verify` shipped it.
            // Read without its signoffs, which the lines above judged (a malformed one is
            // INVALID there, not a report that does not read).
            let mut content = value;
            if let Some(o) = content.as_object_mut() {
                o.insert("signoffs".into(), serde_json::Value::Array(Vec::new()));
            }
            let signed: report::Report = serde_json::from_value(content).map_err(|e| {
                UsageError::Invalid(format!(
                    "{}: not a report of this tool's schema: {e}",
                    report_path.display()
                ))
            })?;
            // What every narrowing line ends with: accepted, or why it is refused.
            let narrowed_suffix = if allow_narrowed {
                " (accepted: --allow-narrowed)"
            } else {
                ": not the release's pass (--allow-narrowed accepts it)"
            };
            for why in signed.inconsistencies() {
                print(&format!("the report does not hold together: {why}\n"));
                ok = false;
            }
            // The report's own account of what it ran (checks, leftOut) is held to the catalog
            // of the version that wrote it: a check taken out of both `results` and `checks`
            // (failures removed, summary fixed) left a report that held together.
            if signed.tool.version == env!("CARGO_PKG_VERSION") {
                let builtin = mlsdm_audit::checks::load_with(&[], false)?;
                let missing: Vec<&str> = builtin
                    .iter()
                    .map(|c| c.id.as_str())
                    .filter(|id| {
                        !signed.checks.iter().any(|c| c.id == *id)
                            && !signed.target.left_out.iter().any(|l| l == id)
                            && !signed.results.iter().any(|r| &*r.id == *id)
                    })
                    .collect();
                if !missing.is_empty() {
                    print(&format!(
                        "the report does not hold together: {} built-in check(s) are neither in it nor left out by --only/--skip: {}\n",
                        missing.len(),
                        missing.join(", ")
                    ));
                    ok = false;
                }
                // A built-in check replaced by a team's file (--override-builtin) is the team's
                // check, not the catalog's: a narrowed audit too.
                let replaced: Vec<&str> = signed
                    .checks
                    .iter()
                    .filter(|c| c.kind != "built-in" && builtin.iter().any(|b| b.id == c.id))
                    .map(|c| c.id.as_str())
                    .collect();
                if !replaced.is_empty() {
                    print(&format!(
                        "a narrowed audit: built-in check(s) replaced by the team's files (--override-builtin): {}{}\n",
                        replaced.join(", "),
                        narrowed_suffix
                    ));
                    ok &= allow_narrowed;
                }
            } else {
                // The version is signed content, written by whoever could also take checks out:
                // a report this version cannot hold to a catalog is not verified as a pass.
                print(&format!(
                    "written by mlsdm-audit {}, not {}: which checks it ran cannot be held to a catalog here{}\n",
                    report::printable(&signed.tool.version, true),
                    env!("CARGO_PKG_VERSION"),
                    if allow_narrowed {
                        " (accepted: --allow-narrowed)"
                    } else {
                        "; verify it with the version that wrote it (--allow-narrowed accepts it)"
                    }
                ));
                ok &= allow_narrowed;
            }
            let narrowed = signed.narrowed();
            if !narrowed.is_empty() {
                print(&format!(
                    "a narrowed audit: {}{}\n",
                    narrowed.join("; "),
                    narrowed_suffix
                ));
                ok &= allow_narrowed;
            }
            // A waiver is an exception until its date: one that has lapsed since the audit no
            // longer accepts the failure it waived (a year-old signed report with an expired
            // waiver verified as a pass).
            let today = chrono::Utc::now().date_naive();
            for r in &signed.results {
                if r.status == report::Status::Waived
                    && let Some(w) = &r.waiver
                    && chrono::NaiveDate::parse_from_str(&w.expires, "%Y-%m-%d")
                        .map_or(true, |d| d < today)
                {
                    print(&format!(
                        "the waiver of {}{} ({}) expired on {}: the failure it waived is not accepted now\n",
                        r.id,
                        r.object
                            .as_ref()
                            .map_or_else(String::new, |o| format!(" on {o}")),
                        report::printable(&w.origin, true),
                        report::printable(&w.expires, true)
                    ));
                    ok = false;
                }
            }
            ok &= manifests_match(&signed.target, &manifests)?;
            let gate = signed.exit_code();
            print(&format!(
                "the report {} its own gate: {}\n",
                if gate == 0 { "passes" } else { "does not pass" },
                report::verdict(&signed)
            ));
            Ok(if ok {
                u8::try_from(gate).unwrap_or(1)
            } else {
                1
            })
        }
        Command::Completions { shell } => {
            print_bytes(&mlsdm_audit::cli::completions(shell));
            Ok(0)
        }
        Command::Man => {
            print_bytes(&mlsdm_audit::cli::man_page());
            Ok(0)
        }
        Command::Schema { of } => {
            print(&match of {
                SchemaOf::Check => checks::schema_json(),
                SchemaOf::Config => mlsdm_audit::config::schema_json(),
                SchemaOf::Report => report::schema_json(),
            });
            Ok(0)
        }
    }
}
