//! Baselines: compare a run with the last approved report, so a team can adopt the audit on a
//! cluster with known debt and gate only on regressions (`--baseline`, `--fail-on-new`).

use crate::report::{Change, CheckResult, Report, Status};
use std::collections::{HashMap, HashSet};

/// What a result is about: its check, object, endpoint and cluster. Without the endpoint, a
/// service check failing on one `--endpoint` in the baseline hid the same check newly failing on
/// another (service results have no object).
fn key(r: &CheckResult) -> (String, Option<String>, Option<String>, Option<String>) {
    (
        r.id.to_string(),
        r.object.as_ref().map(ToString::to_string),
        r.endpoint.clone(),
        r.cluster.clone(),
    )
}

/// The elements a result failed on (containers, keys), as `kind/name`.
fn items(r: &CheckResult) -> HashSet<String> {
    r.items
        .iter()
        .map(|i| format!("{:?}/{}", i.kind, i.name))
        .collect()
}

/// What a baseline's failures of one check on one object covered. `None`: the baseline's
/// failure did not name them (a check that does not iterate, a report written before results
/// named their elements or their failed validations): it covers them all.
struct Covered {
    /// The elements (`kind/name`).
    items: Option<HashSet<String>>,
    /// The validations, over the whole result.
    validations: Option<HashSet<u16>>,
    /// Per element, the validations it failed (`None`: not recorded, any).
    per_item: HashMap<String, Option<HashSet<u16>>>,
}

impl Covered {
    /// Whether `r`, failing now, failed so in the baseline: on no element and no validation
    /// the baseline did not fail, and on no (element, validation) pair it did not fail either.
    fn covers(&self, r: &CheckResult) -> bool {
        let items_covered = self.items.as_ref().is_none_or(|b| items(r).is_subset(b));
        let validations_covered = self
            .validations
            .as_ref()
            .is_none_or(|b| r.failed_validations.iter().all(|v| b.contains(v)));
        let pairs_covered = r.items.iter().all(|i| {
            let key = format!("{:?}/{}", i.kind, i.name);
            match self.per_item.get(&key) {
                // An element the baseline did not name is judged by `items_covered`; one it
                // named without its validations (an older report) covers any.
                None | Some(None) => true,
                Some(Some(before)) => i.failed_validations.iter().all(|v| before.contains(v)),
            }
        });
        items_covered && validations_covered && pairs_covered
    }
}

/// Marks every result new, fixed or unchanged against `baseline`. A failure is new when the
/// baseline did not fail the same check on the same object, or failed it on fewer of its
/// elements or fewer of its validations, or did not fail one of its elements on one of its
/// validations: a sidecar added with no resource limits next to a container that already had
/// none fails the same check on the same Deployment, and was read as known debt; so was a
/// container made privileged where it was only allowed to escalate (and where another container
/// of the pod was privileged already).
///
/// A failure is new too when its check's definition is not the baseline's (`definitions`: this
/// run's check ids and SHA-256s, against the baseline's `checks`): validations are matched by
/// position, and an edited check file or a catalog upgrade makes "validation 1" another rule.
/// A brand-new failure was read as known debt, and `--fail-on-new` exited 0 (review finding).
/// A baseline written without `checks` matches no definition. Returns the ids whose failures
/// were judged new for that reason, for a note.
pub fn mark(
    results: &mut [CheckResult],
    baseline: &Report,
    definitions: &std::collections::BTreeMap<&str, &str>,
) -> Vec<String> {
    let before: HashMap<&str, &str> = baseline
        .checks
        .iter()
        .map(|c| (c.id.as_str(), c.sha256.as_str()))
        .collect();
    let redefined = |id: &str| definitions.get(id) != before.get(id);
    let mut failing_before: HashMap<_, Covered> = HashMap::new();
    for r in baseline.results.iter().filter(|r| r.status == Status::Fail) {
        let covered = failing_before.entry(key(r)).or_insert_with(|| Covered {
            items: Some(HashSet::new()),
            validations: Some(HashSet::new()),
            per_item: HashMap::new(),
        });
        if r.items.is_empty() {
            covered.items = None;
        } else if let Some(set) = covered.items.as_mut() {
            set.extend(items(r));
        }
        if r.failed_validations.is_empty() {
            covered.validations = None;
        } else if let Some(set) = covered.validations.as_mut() {
            set.extend(r.failed_validations.iter().copied());
        }
        for i in &r.items {
            let entry = covered
                .per_item
                .entry(format!("{:?}/{}", i.kind, i.name))
                .or_insert_with(|| Some(HashSet::new()));
            if i.failed_validations.is_empty() {
                *entry = None;
            } else if let Some(set) = entry.as_mut() {
                set.extend(i.failed_validations.iter().copied());
            }
        }
    }
    let mut judged_new: Vec<String> = Vec::new();
    for r in results.iter_mut() {
        let covered = failing_before
            .get(&key(r))
            .is_some_and(|before| before.covers(r));
        let failed_before = covered && !redefined(&r.id);
        if r.status == Status::Fail
            && covered
            && !failed_before
            && !judged_new.iter().any(|i| *i == *r.id)
        {
            judged_new.push(r.id.to_string());
        }
        r.change = Some(match (r.status, failed_before) {
            (Status::Fail, false) => Change::New,
            // Fixed is a pass: an error or no-data where the baseline failed decided nothing.
            (Status::Pass, true) => Change::Fixed,
            _ => Change::Unchanged,
        });
    }
    judged_new
}

#[cfg(test)]
mod tests {
    use super::mark;
    use crate::report::{Change, CheckResult, Report, Status, Target};
    use std::collections::BTreeMap;

    fn at(endpoint: &str, status: Status) -> CheckResult {
        CheckResult {
            endpoint: Some(endpoint.into()),
            ..CheckResult::new("health-live", crate::checks::Source::Http, status, "")
        }
    }

    /// A service check failing on one endpoint in the baseline is not the same result as that
    /// check failing on another endpoint now (service results have no object); fixed is a pass.
    #[test]
    fn results_are_matched_by_endpoint_too() {
        let baseline = Report::new(
            Target::default(),
            vec![
                at("https://eu", Status::Fail),
                at("https://asia", Status::Fail),
            ],
        );
        let mut now = vec![
            at("https://eu", Status::Fail),
            at("https://us", Status::Fail),
            at("https://asia", Status::Error),
        ];
        mark(&mut now, &baseline, &BTreeMap::new());
        let changes: Vec<_> = now.iter().map(|r| r.change).collect();
        assert_eq!(
            changes,
            [
                Some(Change::Unchanged),
                Some(Change::New),
                Some(Change::Unchanged)
            ]
        );
    }

    /// The same check failing on the same object for another validation is new: a container
    /// made privileged where the baseline had it only allowed to escalate. A failure on a
    /// subset of the baseline's validations is not; a baseline that names none covers all.
    #[test]
    fn another_failed_validation_is_new() {
        let failing = |validations: &[u16]| CheckResult {
            failed_validations: validations.to_vec(),
            ..CheckResult::new(
                "security-context-hardened",
                crate::checks::Source::Kubernetes,
                Status::Fail,
                "",
            )
        };
        let baseline = Report::new(Target::default(), vec![failing(&[1])]);
        let mut now = vec![failing(&[1, 2]), failing(&[1])];
        mark(&mut now, &baseline, &BTreeMap::new());
        assert_eq!(now[0].change, Some(Change::New));
        assert_eq!(now[1].change, Some(Change::Unchanged));
        let unnamed = Report::new(Target::default(), vec![failing(&[])]);
        let mut now = vec![failing(&[1, 2])];
        mark(&mut now, &unnamed, &BTreeMap::new());
        assert_eq!(now[0].change, Some(Change::Unchanged));
    }

    /// Review finding: per element and validation, not each apart: the baseline's container A
    /// allowed escalation (1) and init container B was privileged (2); A privileged now is new,
    /// though both A and 2 were in the baseline.
    #[test]
    fn a_container_failing_another_containers_validation_is_new() {
        use crate::checks::item::ItemKind;
        use crate::report::Item;
        let failing = |items: &[(&str, &[u16])]| {
            let items: Vec<Item> = items
                .iter()
                .map(|(name, v)| Item {
                    kind: ItemKind::Container,
                    name: (*name).into(),
                    failed_validations: v.to_vec(),
                })
                .collect();
            let mut all: Vec<u16> = items
                .iter()
                .flat_map(|i| i.failed_validations.clone())
                .collect();
            all.sort_unstable();
            all.dedup();
            CheckResult {
                items,
                failed_validations: all,
                ..CheckResult::new(
                    "security-context-hardened",
                    crate::checks::Source::Kubernetes,
                    Status::Fail,
                    "",
                )
            }
        };
        let baseline = Report::new(
            Target::default(),
            vec![failing(&[("a", &[1]), ("b", &[2])])],
        );
        let mut now = vec![
            failing(&[("a", &[1, 2]), ("b", &[2])]),
            failing(&[("a", &[1]), ("b", &[2])]),
            failing(&[("a", &[1])]),
        ];
        mark(&mut now, &baseline, &BTreeMap::new());
        let changes: Vec<_> = now.iter().map(|r| r.change).collect();
        assert_eq!(
            changes,
            [
                Some(Change::New),
                Some(Change::Unchanged),
                Some(Change::Unchanged)
            ]
        );
    }

    /// Review finding: a team edited its check (validation 1 became another rule) and a new
    /// failure of validation 1 was read as the baseline's debt; `--fail-on-new` exited 0. A
    /// check whose definition differs from the baseline's, or that the baseline does not list,
    /// fails anew.
    #[test]
    fn a_failure_of_a_redefined_check_is_new() {
        let failing = || CheckResult {
            failed_validations: vec![1],
            ..CheckResult::new(
                "team-guard",
                crate::checks::Source::Kubernetes,
                Status::Fail,
                "",
            )
        };
        let mut baseline = Report::new(Target::default(), vec![failing()]);
        baseline.checks = vec![crate::report::CheckOrigin {
            id: "team-guard".into(),
            kind: "file".into(),
            path: "tc/team-guard.yaml".into(),
            sha256: "119afc".into(),
            remediation: None,
        }];
        let same = BTreeMap::from([("team-guard", "119afc")]);
        let mut now = vec![failing()];
        assert!(mark(&mut now, &baseline, &same).is_empty());
        assert_eq!(now[0].change, Some(Change::Unchanged));
        let edited = BTreeMap::from([("team-guard", "682554")]);
        let mut now = vec![failing()];
        assert_eq!(mark(&mut now, &baseline, &edited), ["team-guard"]);
        assert_eq!(now[0].change, Some(Change::New));
        baseline.checks.clear();
        let mut now = vec![failing()];
        assert_eq!(mark(&mut now, &baseline, &same), ["team-guard"]);
        assert_eq!(now[0].change, Some(Change::New));
    }
}
