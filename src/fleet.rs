//! Fleets: `check --context a,b,c` and `--all-contexts` audit several clusters (kubeconfig
//! contexts) at once into one report grouped by cluster, and `report --merge` joins the JSON
//! reports of several clusters into one.
//!
//! Each cluster is an ordinary single-cluster `check` run; a cluster that cannot be reached,
//! refuses the credentials or gives nothing to audit does not stop the others, and is in the
//! report as an `error` (the gate's exit 3), never left out: a fleet in which one cluster was not
//! audited is not a pass.

use crate::UsageError;
use crate::cli::CheckArgs;
use crate::report::fleet::{Member, MemberStatus, UNAUDITED_ID, unaudited};
use crate::report::{self, Report, Summary, Target};
use std::path::Path;
use std::sync::Mutex;

/// How many clusters are audited at once: each run holds its own connection pool and runtime,
/// and the machine running a fleet audit (a CI runner, a CronJob pod) is usually small.
pub const CONCURRENCY: usize = 4;

/// `check`: a fleet run when the flags ask for several clusters, else the single-cluster audit
/// (the process's one: `run_check_once`).
pub fn run(args: &CheckArgs) -> Result<Report, UsageError> {
    match contexts(args)? {
        Some(names) => audit_fleet(args, &names),
        None => crate::run_check_once(args),
    }
}

/// The contexts of a fleet run, or `None` for an ordinary run (no `--all-contexts`, at most one
/// `--context`). Names are checked against the kubeconfig before any cluster is contacted.
pub fn contexts(args: &CheckArgs) -> Result<Option<Vec<String>>, UsageError> {
    let asked: Vec<String> = match (&args.context, args.all_contexts) {
        (_, true) => Vec::new(),
        (Some(c), false) if c.contains(',') => {
            let mut names: Vec<String> = Vec::new();
            for n in c.split(',').map(str::trim) {
                if n.is_empty() {
                    return Err(UsageError::Invalid(format!(
                        "--context {c:?}: an empty context name in the list"
                    )));
                }
                if names.iter().any(|x| x == n) {
                    return Err(UsageError::Invalid(format!(
                        "--context {c:?}: context {n} is named twice"
                    )));
                }
                names.push(n.to_string());
            }
            names
        }
        _ => return Ok(None),
    };
    // Flags that name one service or one earlier report cannot apply to several clusters.
    let one_of: [(&str, bool); 4] = [
        ("--endpoint", !args.endpoints.is_empty()),
        ("--prometheus", args.prometheus.is_some()),
        ("--baseline", args.baseline.is_some()),
        ("--no-cluster", args.no_cluster),
    ];
    let fleet_flag = if args.all_contexts {
        "--all-contexts".to_string()
    } else {
        format!("--context {}", args.context.as_deref().unwrap_or_default())
    };
    for (flag, given) in one_of {
        if given {
            return Err(UsageError::Invalid(format!(
                "{flag} cannot be used with {fleet_flag}: it names one service or one report, and a fleet run audits several clusters"
            )));
        }
    }
    let known = kubeconfig_contexts(args.kubeconfig.as_deref())?;
    if args.all_contexts {
        if known.is_empty() {
            return Err(UsageError::Invalid(
                "--all-contexts: the kubeconfig has no contexts".into(),
            ));
        }
        return Ok(Some(known));
    }
    let unknown: Vec<&str> = asked
        .iter()
        .filter(|n| !known.contains(n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(UsageError::Invalid(format!(
            "--context: no context named {} in the kubeconfig (it has: {})",
            unknown.join(", "),
            known.join(", ")
        )));
    }
    Ok(Some(asked))
}

/// The context names of the kubeconfig kubectl would read (`--kubeconfig`, else `$KUBECONFIG`'s
/// files merged, else ~/.kube/config), in the file's order.
fn kubeconfig_contexts(path: Option<&Path>) -> Result<Vec<String>, UsageError> {
    let kc = match path {
        Some(p) => kube::config::Kubeconfig::read_from(p).map_err(|e| {
            UsageError::Invalid(format!(
                "--kubeconfig {}: {}",
                p.display(),
                crate::sources::kube::kubeconfig_error(&e)
            ))
        })?,
        None => kube::config::Kubeconfig::read().map_err(|e| {
            UsageError::Invalid(format!(
                "cannot read the kubeconfig to find its contexts: {}",
                crate::sources::kube::kubeconfig_error(&e)
            ))
        })?,
    };
    Ok(kc.contexts.into_iter().map(|c| c.name).collect())
}

/// Audits every context, at most [`CONCURRENCY`] at once, into one report.
pub fn audit_fleet(args: &CheckArgs, names: &[String]) -> Result<Report, UsageError> {
    let outcomes = bounded(names, CONCURRENCY, |name| {
        let mut one = args.clone();
        one.context = Some(name.clone());
        one.all_contexts = false;
        let _running = crate::activity::start(format!("auditing cluster {name}"));
        crate::run_check(&one)
    });
    let outcomes: Vec<(String, Result<Report, UsageError>)> = names
        .iter()
        .cloned()
        .zip(outcomes.into_iter().map(|o| {
            o.unwrap_or_else(|| {
                Err(UsageError::Unreachable(
                    crate::sources::kube::ClusterError::other(
                        "the audit of this cluster did not run".into(),
                    ),
                ))
            })
        }))
        .collect();
    // The same input error from every cluster (an invalid check file, a bad flag value) is the
    // user's to fix, exit 2, not a fleet of unreachable clusters.
    if let Some(Err(first)) = outcomes.first().map(|(_, o)| o)
        && first.exit_code() == 2
        && outcomes
            .iter()
            .all(|(_, o)| matches!(o, Err(e) if e.exit_code() == 2 && e.to_string() == first.to_string()))
    {
        return Err(UsageError::Invalid(first.to_string()));
    }
    let parts: Vec<(String, Result<Report, String>)> = outcomes
        .into_iter()
        .map(|(n, o)| (n, o.map_err(|e| e.to_string())))
        .collect();
    Ok(combine(args_target(args), parts))
}

/// The target of a fleet run before any cluster answered (used when none did).
fn args_target(args: &CheckArgs) -> Target {
    Target {
        mode: report::Mode::Cluster,
        selector: args.selector.clone(),
        fail_on: args
            .fail_on
            .map_or(crate::checks::Severity::High, Into::into),
        attestations: args.attestations.as_ref().map(|p| p.display().to_string()),
        catalog: Some(report::catalog_digest()),
        ..Target::default()
    }
}

/// One report from each cluster's report (or the reason it has none), in the given order.
/// The target is the first audited cluster's (the flags are the same for every cluster) without
/// its single cluster; `fallback` when no cluster was audited.
pub fn combine(fallback: Target, parts: Vec<(String, Result<Report, String>)>) -> Report {
    let mut target = parts
        .iter()
        .find_map(|(_, p)| p.as_ref().ok().map(|r| r.target.clone()))
        .unwrap_or(fallback);
    target.cluster = None;
    target.fleet = Vec::new();
    // The first member's manifests are not the fleet's: a merged report binds to none.
    target.manifests_digest = None;
    let mut results = Vec::new();
    let mut checks: Vec<report::CheckOrigin> = Vec::new();
    let mut notes = Vec::new();
    for (name, part) in parts {
        match part {
            Ok(r) => {
                target.fleet.push(Member {
                    name: name.clone(),
                    status: MemberStatus::Audited,
                    reason: None,
                    cluster: r.target.cluster.clone(),
                    summary: r.summary.clone(),
                });
                results.extend(r.results.into_iter().map(|mut x| {
                    x.cluster = Some(name.clone());
                    x
                }));
                for c in r.checks {
                    if !checks.iter().any(|k| k.id == c.id) {
                        checks.push(c);
                    }
                }
                notes.extend(r.notes.into_iter().map(|mut n| {
                    n.message = format!("cluster {name}: {}", n.message);
                    n
                }));
            }
            Err(reason) => {
                let r = unaudited(&name, &reason);
                target.fleet.push(Member {
                    name: name.clone(),
                    status: MemberStatus::Error,
                    reason: Some(reason),
                    cluster: None,
                    summary: Summary::of(std::slice::from_ref(&r)),
                });
                results.push(r);
                if !checks.iter().any(|k| k.id == UNAUDITED_ID) {
                    checks.push(unaudited_origin());
                }
            }
        }
    }
    let order: Vec<String> = target.fleet.iter().map(|m| m.name.clone()).collect();
    let mut report = Report::new(target, results);
    // Grouped by cluster, in the order given; the checklist order within each.
    report.results.sort_by_key(|r| {
        r.cluster
            .as_ref()
            .and_then(|c| order.iter().position(|o| o == c))
    });
    report.checks = checks;
    report.notes = notes;
    report
}

/// Where the `cluster-audited` result comes from: no check file, the fleet run itself; its fix
/// hint is what an operator does about an unreachable cluster.
fn unaudited_origin() -> report::CheckOrigin {
    const FIX: &str = "Make the cluster reachable from where the audit runs and its credentials valid (try `kubectl --context NAME get --raw /version`), or leave the context out of the fleet run.";
    report::CheckOrigin {
        id: UNAUDITED_ID.into(),
        kind: "fleet".into(),
        path: "kubeconfig".into(),
        sha256: crate::checks::sha256_hex(FIX.as_bytes()),
        remediation: Some(FIX.into()),
    }
}

/// `report --merge`: the JSON reports of several clusters (or fleets) as one fleet report. Each
/// single-cluster report is named by its file's stem; reports of another tool version or another
/// catalog, of different gates, or naming a cluster twice are refused (exit 2, naming the files).
pub fn merge(paths: &[std::path::PathBuf]) -> Result<Report, UsageError> {
    let mut parts: Vec<(String, Report)> = Vec::new();
    let mut inputs: Vec<report::Note> = Vec::new();
    for p in paths {
        // A merged report keeps no signature of its inputs and is signed anew: an input that
        // is not what its signers signed, or does not hold together (a failing result taken
        // out), would be laundered into a fleet report that verifies. Refused, not warned.
        let value = crate::signoff::read(p)?;
        let verified = crate::signoff::verify(&value, None, None);
        for v in &verified {
            if let crate::signoff::Verdict::Invalid(why) = &v.verdict {
                return Err(UsageError::Invalid(format!(
                    "cannot merge {}: its signoff #{} ({}) does not verify: {why}",
                    p.display(),
                    v.index,
                    v.role
                )));
            }
        }
        // What went in, for whoever signs the merged report: an unsigned input is its writer's
        // word (taking an input's signatures off let an edited report in unremarked).
        let digest = crate::input::read_file(p)
            .map(|text| crate::checks::sha256_hex(text.as_bytes()))
            .unwrap_or_default();
        // Checked here with no allowed signers, so every signature is Untrusted: a throwaway
        // key's match says nothing of who signed. The note calling it "signed as Security
        // Team" read as the role's sign-off; it names the key and says it was not checked.
        let signed: Vec<String> = verified
            .iter()
            .map(|v| {
                format!(
                    "\"{}\" claimed by key {}",
                    report::printable(&v.role, true),
                    v.key.as_deref().unwrap_or("(unknown)")
                )
            })
            .collect();
        inputs.push(report::Note {
            kind: report::NoteKind::MergedInput,
            message: format!(
                "merged from {} (sha256 {}): {}",
                p.display(),
                report::first_chars(&digest, 16),
                if signed.is_empty() {
                    "not signed, so its content is its writer's word: sign the cluster reports and verify them before merging".to_string()
                } else {
                    format!(
                        "its signoffs ({}) match the keys it names, but those keys were NOT checked against allowed signers, so no role counts as signed: check them with `mlsdm-audit verify --allowed-signers` before merging",
                        signed.join(", ")
                    )
                }
            ),
        });
        let r = crate::plan::read_report_as_written(p)?;
        if let Some(why) = r.inconsistencies().first() {
            return Err(UsageError::Invalid(format!(
                "cannot merge {}: the report does not hold together: {why}",
                p.display()
            )));
        }
        if r.target.mode != report::Mode::Cluster {
            return Err(UsageError::Invalid(format!(
                "{}: a report of {} (target.mode), not of a cluster: only cluster audits are merged into a fleet report",
                p.display(),
                r.target.mode
            )));
        }
        parts.push((p.display().to_string(), r));
    }
    let Some((first_file, first)) = parts.first() else {
        return Err(UsageError::Invalid("--merge: no report given".into()));
    };
    for (file, r) in &parts[1..] {
        let differs = |what: &str, a: &str, b: &str| {
            UsageError::Invalid(format!(
                "cannot merge {first_file} and {file}: {what} differs ({a} and {b}); audit every cluster with the same tool, checks and gate"
            ))
        };
        if r.tool != first.tool || r.schema_version != first.schema_version {
            return Err(differs(
                "the tool version",
                &format!(
                    "{} {} schema {}",
                    first.tool.name, first.tool.version, first.schema_version
                ),
                &format!(
                    "{} {} schema {}",
                    r.tool.name, r.tool.version, r.schema_version
                ),
            ));
        }
        // The catalog: a check both reports ran must be the same definition.
        for c in &r.checks {
            if let Some(k) = first.checks.iter().find(|k| k.id == c.id)
                && k.sha256 != c.sha256
            {
                return Err(differs(
                    &format!("the definition of check {}", c.id),
                    &format!("sha256 {}", report::first_chars(&k.sha256, 12)),
                    &format!("sha256 {}", report::first_chars(&c.sha256, 12)),
                ));
            }
        }
        let ids = |x: &Report| {
            // The stand-in for an unaudited cluster is not a check of the catalog.
            let mut v: Vec<String> = x
                .checks
                .iter()
                .filter(|c| c.id != UNAUDITED_ID)
                .map(|c| c.id.clone())
                .collect();
            v.sort();
            v
        };
        if ids(r) != ids(first) {
            return Err(differs("the set of checks that ran", "one set", "another"));
        }
        // What each member audited must be the same slice of its cluster: a member whose
        // selector, checks left out or --allow-empty differ is a different audit, and the merged
        // report (which keeps the first's target) would say otherwise.
        if r.target.selector != first.target.selector {
            return Err(differs(
                "the workload selector",
                first.target.selector.as_deref().unwrap_or("(none)"),
                r.target.selector.as_deref().unwrap_or("(none)"),
            ));
        }
        if r.target.left_out != first.target.left_out
            || r.target.left_out_checklist != first.target.left_out_checklist
            || r.target.allow_empty != first.target.allow_empty
        {
            return Err(differs(
                "the scope (--only/--skip, --allow-empty)",
                "one",
                "another",
            ));
        }
        if r.target.fail_on != first.target.fail_on
            || r.target.fail_on_new != first.target.fail_on_new
        {
            return Err(differs(
                "the gate (--fail-on)",
                &first.target.fail_on.to_string(),
                &r.target.fail_on.to_string(),
            ));
        }
    }
    // One audit given twice (a copy renamed for a cluster that was never audited) counted as
    // two clusters. The same time, server and results are the same audit, whatever the files'
    // names: refused. Only where the server names one cluster: every in-cluster run (a
    // CronJob's) reaches its own API server by the same name or service IP, so two clusters'
    // identical releases audited in the same second would look alike there.
    let fingerprint = |r: &Report| {
        let server = r.target.cluster.as_ref().map(|c| c.server.as_str())?;
        let host = url::Url::parse(server).ok()?.host_str()?.to_string();
        let shared = host.starts_with("kubernetes.default")
            || host == "kubernetes"
            || host.parse::<std::net::IpAddr>().is_ok()
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok();
        (!shared).then(|| {
            (
                r.generated_at.clone(),
                serde_json::to_string(&r.target.cluster).unwrap_or_default(),
                serde_json::to_string(&r.results).unwrap_or_default(),
            )
        })
    };
    for (i, (file, r)) in parts.iter().enumerate() {
        let Some(mine) = fingerprint(r) else { continue };
        if let Some((other, _)) = parts[..i]
            .iter()
            .find(|(_, o)| fingerprint(o).as_ref() == Some(&mine))
        {
            return Err(UsageError::Invalid(format!(
                "cannot merge: {other} and {file} are the same audit (same time, cluster and results); each cluster's own report is merged once"
            )));
        }
    }
    let mut target = first.target.clone();
    target.cluster = None;
    target.fleet = Vec::new();
    target.baseline = None;
    // One catalog only when every input was written with it.
    if parts
        .iter()
        .any(|(_, r)| r.target.catalog != first.target.catalog)
    {
        target.catalog = None;
    }
    let mut origin_of: Vec<(String, String)> = Vec::new();
    let mut results = Vec::new();
    let mut checks: Vec<report::CheckOrigin> = Vec::new();
    let mut notes = Vec::new();
    for (file, r) in parts {
        let members: Vec<Member> = if r.target.fleet.is_empty() {
            let name = std::path::Path::new(&file)
                .file_stem()
                .map_or_else(|| file.clone(), |s| s.to_string_lossy().into_owned());
            vec![Member {
                name,
                status: MemberStatus::Audited,
                reason: None,
                cluster: r.target.cluster.clone(),
                summary: r.summary.clone(),
            }]
        } else {
            r.target.fleet.clone()
        };
        for m in &members {
            if let Some((_, other)) = origin_of.iter().find(|(n, _)| *n == m.name) {
                return Err(UsageError::Invalid(format!(
                    "cannot merge: cluster {} is in both {other} and {file}; rename one file (a single-cluster report is named by its file)",
                    m.name
                )));
            }
            origin_of.push((m.name.clone(), file.clone()));
        }
        let single = (r.target.fleet.is_empty()).then(|| members[0].name.clone());
        results.extend(r.results.into_iter().map(|mut x| {
            if let Some(n) = &single {
                x.cluster = Some(n.clone());
            }
            x
        }));
        for c in r.checks {
            if !checks.iter().any(|k| k.id == c.id) {
                checks.push(c);
            }
        }
        notes.extend(r.notes.into_iter().map(|mut n| {
            if let Some(name) = &single {
                n.message = format!("cluster {name}: {}", n.message);
            }
            n
        }));
        target.fleet.extend(members);
    }
    let order: Vec<String> = target.fleet.iter().map(|m| m.name.clone()).collect();
    crate::review::waivers::lapse(&mut results, chrono::Utc::now().date_naive());
    let mut merged = Report::new(target, results);
    merged.results.sort_by_key(|r| {
        r.cluster
            .as_ref()
            .and_then(|c| order.iter().position(|o| o == c))
    });
    merged.checks = checks;
    notes.extend(inputs);
    merged.notes = notes;
    // The waivers that lapsed since the audits change each cluster's counts too.
    merged.recount();
    Ok(merged)
}

/// Writes a report so that a reader never sees half of it: into a file beside `path`, then
/// renamed over it (the in-cluster `publish` container waits for the file to appear and takes it
/// as it is). A path that is not a regular file (`/dev/stdout`, a pipe) is written directly.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_whole_with(path, |f| std::io::Write::write_all(f, bytes))
}

/// As [`write_whole`], with what `write` streams into the file: `-o json` streams a report of
/// tens of MB, and had written it in place (a failure midway left half a report where the last
/// complete one was, and a reader could take a half-written file; review finding).
pub fn write_whole_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    let tmp = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !special => {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{}.tmp", std::process::id()));
            Some(dir.join(tmp_name))
        }
        _ => None,
    };
    let target = tmp.as_deref().unwrap_or(path);
    let written = std::fs::File::create(target).and_then(|mut f| write(&mut f));
    let Some(tmp) = tmp else {
        return written;
    };
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// `watch` follows one release on one cluster: several contexts would be silently cut to one.
pub fn refuse_in_watch(args: &CheckArgs) -> Result<(), UsageError> {
    if args.all_contexts || args.context.as_deref().is_some_and(|c| c.contains(',')) {
        return Err(UsageError::Invalid(
            "watch follows one release on one cluster: --all-contexts and several --context names apply to check only".into(),
        ));
    }
    Ok(())
}

/// `f` over every item on at most `limit` threads at once; the outcomes in the items' order
/// (a panic in `f` propagates, as `std::thread::scope` does).
pub fn bounded<I: Sync, T: Send>(
    items: &[I],
    limit: usize,
    f: impl Fn(&I) -> T + Sync,
) -> Vec<Option<T>> {
    let next = Mutex::new(0usize);
    let outcomes: Mutex<Vec<Option<T>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..limit.max(1).min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(item) = items.get(i) else { break };
                    let outcome = f(item);
                    outcomes
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = Some(outcome);
                }
            });
        }
    });
    outcomes
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::bounded;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn bounded_never_runs_more_than_its_limit_and_keeps_the_order() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<usize> = (0..40).collect();
        let out = bounded(&items, 4, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::yield_now();
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert!(most.load(Ordering::SeqCst) <= 4);
        assert_eq!(out, items.iter().map(|i| Some(i * 2)).collect::<Vec<_>>());
        assert!(bounded(&Vec::<usize>::new(), 4, |i| *i).is_empty());
    }
}
