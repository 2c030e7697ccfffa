//! The audit plan without the binary and without clap: a `Plan` built from typed values is
//! audited by the library, and the verdict is the one `check -f` gives for the same input.

use mlsdm_audit::UsageError;
use mlsdm_audit::plan::{Objects, Plan, audit};
use mlsdm_audit::report::{self, Status};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

#[test]
fn a_plan_built_directly_audits_the_compliant_release_as_a_pass() {
    let plan = Plan::manifests(vec![fixture("compliant")], &[]).expect("the built-in checks load");
    assert!(matches!(plan.objects, Objects::Manifests { .. }));
    let report = audit(&plan).expect("the compliant fixture is audited");
    assert_eq!(report.target.mode, report::Mode::Manifests);
    assert_eq!(report.exit_code(), 0, "{}", report::verdict(&report));
    assert!(report::verdict(&report).starts_with("PASS"));
    // Earned: checks were evaluated and passed, not everything skipped.
    let passed = report
        .results
        .iter()
        .filter(|r| r.status == Status::Pass)
        .count();
    assert!(passed > 10, "only {passed} check(s) passed");
}

#[test]
fn a_plan_built_directly_fails_the_defective_release() {
    let plan = Plan::manifests(vec![fixture("defective")], &[]).expect("the built-in checks load");
    let report = audit(&plan).expect("the defective fixture is audited");
    assert_eq!(report.exit_code(), 1, "{}", report::verdict(&report));
    assert!(report::verdict(&report).starts_with("FAIL"));
}

#[test]
fn a_selector_that_matches_nothing_is_not_a_pass() {
    let mut plan =
        Plan::manifests(vec![fixture("compliant")], &[]).expect("the built-in checks load");
    let selector = "app=no-such-workload";
    plan.selector = Some((
        selector.to_string(),
        mlsdm_audit::k8s::selector::parse(selector).expect("a valid selector"),
    ));
    match audit(&plan) {
        Err(e @ UsageError::NothingAudited(_)) => {
            assert_eq!(e.exit_code(), 3);
            assert!(e.to_string().contains(selector), "{e}");
        }
        Err(e) => panic!("expected nothing audited, got {e}"),
        Ok(r) => panic!("expected nothing audited, got {}", report::verdict(&r)),
    }
}

#[test]
fn a_plan_with_no_source_decides_nothing() {
    let mut plan =
        Plan::manifests(vec![fixture("compliant")], &[]).expect("the built-in checks load");
    plan.objects = Objects::None;
    let err = audit(&plan).expect_err("no objects, no endpoint, no Prometheus");
    assert!(matches!(err, UsageError::NothingAudited(_)), "{err}");
}
