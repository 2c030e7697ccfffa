//! `mlsdm-audit test-checks DIR`: a team's checks against their own fixtures, the way the
//! built-in catalog is tested (`tests/catalog.rs`), so a check is known to fail on what it must
//! catch and to pass on what it must accept before it gates a release.
//!
//! Layout, next to the check files (the check loader reads only `DIR/*.yaml`, so the fixtures
//! never load as checks):
//!
//! ```text
//! DIR/ID.yaml                 the check
//! DIR/tests/ID/pass/*.yaml    manifests on which every result of ID must be pass
//! DIR/tests/ID/fail/*.yaml    manifests on which ID must fail at least once
//! ```
//!
//! Each fixture runs through the same pipeline as `check -f FIXTURE --checks DIR --only ID`, so
//! what a test proves is what a real run does. An `error` is never what a fixture expects.

use crate::UsageError;
use crate::checks::{self, Source};
use crate::report::Status;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a fixture says the check must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Pass,
    Fail,
}

/// The outcome of one fixture, as a line of the summary.
struct Case {
    id: String,
    fixture: PathBuf,
    ok: bool,
    detail: String,
}

/// Runs every fixture of every check in `dirs`; the text to print and whether all held.
pub fn run(dirs: &[PathBuf]) -> Result<(String, bool), UsageError> {
    let mut out = String::new();
    let mut cases = Vec::new();
    let mut untested = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(UsageError::Invalid(format!(
                "{}: not a directory of check files",
                dir.display()
            )));
        }
        let loaded = checks::load_with(std::slice::from_ref(dir), false)?;
        for check in loaded.iter().filter(|c| !c.builtin) {
            let base = dir.join("tests").join(&check.id);
            let fixtures = [Expect::Pass, Expect::Fail]
                .into_iter()
                .flat_map(|e| fixtures(&base, e).into_iter().map(move |f| (e, f)))
                .collect::<Vec<_>>();
            if fixtures.is_empty() {
                untested.push(check.id.clone());
                continue;
            }
            if check.source() != Source::Kubernetes {
                return Err(UsageError::Invalid(format!(
                    "{}: fixtures are manifests, and {} is a {} check",
                    base.display(),
                    check.id,
                    check.source()
                )));
            }
            for (expect, fixture) in fixtures {
                cases.push(run_case(dir, &check.id, expect, fixture)?);
            }
        }
    }
    let failed = cases.iter().filter(|c| !c.ok).count();
    for c in &cases {
        let _ = writeln!(
            out,
            "{} {} {}{}",
            if c.ok { "ok  " } else { "FAIL" },
            c.id,
            c.fixture.display(),
            if c.ok {
                String::new()
            } else {
                format!(": {}", c.detail)
            }
        );
    }
    for id in &untested {
        let _ = writeln!(
            out,
            "untested {id}: no fixtures under tests/{id}/pass or tests/{id}/fail"
        );
    }
    let _ = writeln!(
        out,
        "{} fixture(s): {} ok, {failed} failed; {} check(s) untested",
        cases.len(),
        cases.len() - failed,
        untested.len()
    );
    if cases.is_empty() {
        return Err(UsageError::Invalid(format!(
            "no fixtures found: put manifests under DIR/tests/ID/pass and DIR/tests/ID/fail\n{out}"
        )));
    }
    Ok((out, failed == 0))
}

fn fixtures(base: &Path, expect: Expect) -> Vec<PathBuf> {
    let dir = base.join(match expect {
        Expect::Pass => "pass",
        Expect::Fail => "fail",
    });
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn run_case(dir: &Path, id: &str, expect: Expect, fixture: PathBuf) -> Result<Case, UsageError> {
    use clap::Parser as _;
    let cli = crate::cli::Cli::try_parse_from([
        "mlsdm-audit".as_ref(),
        "check".as_ref(),
        "--manifests".as_ref(),
        fixture.as_os_str(),
        "--checks".as_ref(),
        dir.as_os_str(),
        "--only".as_ref(),
        id.as_ref(),
        // A fixture holds what the check needs, not a whole MLSDM release.
        "--allow-empty".as_ref(),
    ])
    .map_err(|e| UsageError::Invalid(e.to_string()))?;
    let crate::cli::Command::Check(args) = cli.command else {
        unreachable!("parsed as check");
    };
    let report = crate::run_check(&args)?;
    let statuses: Vec<(Status, &str)> = report
        .results
        .iter()
        .filter(|r| r.id == id)
        .map(|r| (r.status, &*r.message))
        .collect();
    let count = |s: Status| statuses.iter().filter(|(st, _)| *st == s).count();
    let first = |s: Status| {
        statuses
            .iter()
            .find(|(st, _)| *st == s)
            .map_or("", |(_, m)| *m)
    };
    let (ok, detail) = if count(Status::Error) > 0 {
        (false, format!("error: {}", first(Status::Error)))
    } else {
        match expect {
            Expect::Pass if count(Status::Fail) > 0 => (
                false,
                format!("expected pass, failed: {}", first(Status::Fail)),
            ),
            Expect::Pass if count(Status::Pass) == 0 => {
                (false, format!("expected pass, got {}", summary(&statuses)))
            }
            Expect::Fail if count(Status::Fail) == 0 => {
                (false, format!("expected fail, got {}", summary(&statuses)))
            }
            _ => (true, String::new()),
        }
    };
    Ok(Case {
        id: id.to_string(),
        fixture,
        ok,
        detail,
    })
}

fn summary(statuses: &[(Status, &str)]) -> String {
    if statuses.is_empty() {
        return "no result (does match.kinds select an object in the fixture?)".to_string();
    }
    statuses
        .iter()
        .map(|(s, m)| format!("{s} ({m})"))
        .collect::<Vec<_>>()
        .join(", ")
}
