//! Baselines: compare a run with the last approved report, so a team can adopt the audit on a
//! cluster with known debt and gate only on regressions (`--baseline`, `--fail-on-new`).

use crate::report::{Change, CheckResult, Report, Status};
use std::collections::HashSet;

fn key(r: &CheckResult) -> (String, Option<String>) {
    (r.id.to_string(), r.object.as_ref().map(ToString::to_string))
}

/// Marks every result new, fixed or unchanged against `baseline`.
pub fn mark(results: &mut [CheckResult], baseline: &Report) {
    let failing_before: HashSet<_> = baseline
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(key)
        .collect();
    for r in results.iter_mut() {
        let failing_now = r.status == Status::Fail;
        let failed_before = failing_before.contains(&key(r));
        r.change = Some(match (failing_now, failed_before) {
            (true, false) => Change::New,
            (false, true) => Change::Fixed,
            _ => Change::Unchanged,
        });
    }
}
