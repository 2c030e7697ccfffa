//! Every renderer over one shared report, snapshotted.

mod support;

use mlsdm_audit::report::{self, Format, Report};
use support::shared_report;

#[test]
fn table() {
    insta::assert_snapshot!(report::render(&shared_report(), Format::Table, false));
}

/// `--show all` lays the checklist out as tables; every line fits the width it is given.
#[test]
fn table_show_all_fits_the_width() {
    use mlsdm_audit::report::table::{Show, View};
    for show in [Show::All, Show::Failed, Show::Open] {
        for width in [60u16, 100, 140] {
            let view = View {
                show: Some(show),
                color: false,
                width,
            };
            let text = report::render_view(&shared_report(), Format::Table, view);
            for line in text.lines().filter(|l| l.starts_with(['│', '┌', '└', '╞'])) {
                assert!(
                    line.chars().count() <= usize::from(width),
                    "{show:?} at {width}: {line}"
                );
            }
            if show == Show::All && width == 100 {
                insta::assert_snapshot!(text);
            }
        }
    }
    let failed = report::render_view(
        &shared_report(),
        Format::Table,
        View {
            show: Some(Show::Failed),
            ..View::default()
        },
    );
    assert!(failed.contains("FAIL") && !failed.contains("PASS") && !failed.contains("SKIP"));
    let open = report::render_view(
        &shared_report(),
        Format::Table,
        View {
            show: Some(Show::Open),
            ..View::default()
        },
    );
    assert!(open.contains("SKIP") && open.contains("NO-DATA") && !open.contains("PASS"));
}

#[test]
fn colour_choice_honours_no_color_and_the_terminal() {
    use mlsdm_audit::report::table::ColorChoice;
    // (choice, stdout is a terminal, NO_COLOR set) -> colour
    for (choice, tty, no_color, want) in [
        (ColorChoice::Auto, true, false, true),
        (ColorChoice::Auto, true, true, false),
        (ColorChoice::Auto, false, false, false),
        (ColorChoice::Always, false, true, true),
        (ColorChoice::Never, true, false, false),
    ] {
        assert_eq!(
            choice.enabled(tty, no_color),
            want,
            "{choice:?} {tty} {no_color}"
        );
    }
}

#[test]
fn table_in_colour_marks_statuses() {
    let text = report::render(&shared_report(), Format::Table, true);
    assert!(text.contains("\u{1b}["), "colour output has ANSI escapes");
    assert!(!report::render(&shared_report(), Format::Table, false).contains("\u{1b}["));
}

#[test]
fn json() {
    let text = report::render(&shared_report(), Format::Json, false);
    insta::assert_snapshot!(text);
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(
        back,
        shared_report(),
        "the JSON is the report model, round-trippable"
    );
}

#[test]
fn markdown() {
    insta::assert_snapshot!(report::render(&shared_report(), Format::Markdown, false));
}

#[test]
fn html() {
    let html = report::render(&shared_report(), Format::Html, false);
    assert!(
        !html.contains("http://") && !html.contains("src=\"") && !html.contains("<link"),
        "self-contained: no external assets"
    );
    insta::assert_snapshot!(html);
}

#[test]
fn junit() {
    insta::assert_snapshot!(report::render(&shared_report(), Format::Junit, false));
}

#[test]
fn sarif() {
    let text = report::render(&shared_report(), Format::Sarif, false);
    insta::assert_snapshot!(text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    let waived = results
        .iter()
        .find(|r| r["ruleId"] == "topology-spread-zones")
        .unwrap();
    assert_eq!(waived["suppressions"][0]["kind"], "external");
    let pinned = results
        .iter()
        .find(|r| r["ruleId"] == "image-pinned")
        .unwrap();
    assert_eq!(
        pinned["locations"][0]["physicalLocation"]["region"]["startLine"],
        94
    );
    assert_eq!(pinned["level"], "error");
}

/// A real JUnit parser (Python's junitparser, as CI systems' plugins use) reads our XML.
#[test]
fn junit_parses_with_junitparser() {
    let dir = std::env::temp_dir().join(format!("mlsdm-audit-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.xml");
    std::fs::write(
        &file,
        report::render(&shared_report(), Format::Junit, false),
    )
    .unwrap();
    let script = r"
import sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
counts = {'pass': 0, 'failure': 0, 'error': 0, 'skipped': 0}
for suite in xml:
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        if 'Failure' in kinds: counts['failure'] += 1
        elif 'Error' in kinds: counts['error'] += 1
        elif 'Skipped' in kinds: counts['skipped'] += 1
        else: counts['pass'] += 1
print(counts['pass'], counts['failure'], counts['error'], counts['skipped'])
";
    let python = std::env::var("MLSDM_AUDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .expect("python3 with junitparser is needed; scripts/test.sh installs it");
    assert!(
        out.status.success(),
        "junitparser failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = shared_report();
    let s = &r.summary;
    let expected = format!(
        "{} {} {} {}\n",
        s.pass,
        s.fail,
        s.error,
        s.no_data + s.skipped + s.waived + s.manual
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Regression (issue 10.12): the HTML report left object kind/namespace/name unescaped, so a
/// `<script>` in a manifest's name ran in a reviewer's browser. Hostile text in every string
/// field of every result, waiver, attestation and signoff stays text in every format.
#[test]
fn hostile_strings_stay_text_in_every_format() {
    const EVIL: &str =
        "<script>alert(1)</script><img src=x onerror=alert(2)>|`[x](javascript:alert(3))\n& ü時🙂";
    let mut r = shared_report();
    for x in &mut r.results {
        x.message = format!("{EVIL} message").into();
        x.title = format!("{EVIL} title").into();
        if let Some(o) = &mut x.object {
            let o = std::sync::Arc::make_mut(o);
            o.name = format!("{EVIL} name");
            o.kind = format!("{EVIL} kind");
            o.namespace = Some(format!("{EVIL} ns"));
        }
        if let Some(l) = &mut x.location {
            std::sync::Arc::make_mut(l).file = format!("{EVIL} file");
        }
        if let Some(w) = &mut x.waiver {
            w.reason = format!("{EVIL} reason");
            w.owner = format!("{EVIL} owner");
        }
        x.attestation = Some(Box::new(mlsdm_audit::report::Attestation {
            by: format!("{EVIL} by"),
            date: "2026-11-01".into(),
            evidence: format!("{EVIL} evidence"),
            origin: format!("{EVIL} origin"),
        }));
    }
    r.target.manifests = vec![format!("{EVIL} manifest")];
    r.signoffs.push(mlsdm_audit::report::Signoff {
        role: "Security Team".into(),
        name: format!("{EVIL} signer"),
        time: "2026-11-26T12:00:00Z".into(),
        public_key: format!("ssh-ed25519 {EVIL}"),
        signature: EVIL.into(),
    });
    let html = report::render(&r, Format::Html, false);
    assert!(!html.contains("<script>alert"), "raw script tag in HTML");
    assert!(!html.contains("<img"), "raw img tag in HTML");
    assert!(html.contains("&lt;script&gt;alert(1)"), "shown as text");
    let md = report::render(&r, Format::Markdown, false);
    for tag in ["<script>", "<img"] {
        assert!(
            md.match_indices(tag).all(|(i, _)| md[..i].ends_with('\\')),
            "raw HTML in Markdown: {tag}"
        );
    }
    let junit = report::render(&r, Format::Junit, false);
    assert!(!junit.contains("<script>"), "unescaped XML in JUnit");
    let json = report::render(&r, Format::Json, false);
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r, "JSON keeps every string exactly");
    let sarif: serde_json::Value =
        serde_json::from_str(&report::render(&r, Format::Sarif, false)).unwrap();
    assert!(sarif["runs"].is_array());
    let _ = report::render(&r, Format::Table, false);
}

/// Regression (issue 11): the Markdown paired seed lines with results by position and skipped
/// the four Sign-Off lines without advancing, so an attested "Week 1 review" was ticked on another
/// line. Attest each manual item in turn: exactly its own lines are ticked, in Markdown and HTML.
#[test]
fn attesting_one_manual_item_ticks_exactly_its_own_lines() {
    use mlsdm_audit::checks::{self, Severity, Source};
    use mlsdm_audit::report::{Attestation, Status, Target};
    use mlsdm_audit::{engine, seed, sources::Facts};
    use std::collections::BTreeSet;

    let manual: Vec<_> = checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| c.source() == Source::Manual)
        .collect();
    assert!(manual.len() > 50);
    let facts = Facts::new(Vec::new(), BTreeSet::new(), None, "nothing");
    let base = engine::evaluate(&manual, &facts);
    let seed_lines = seed::lines();
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    let plain = |s: &str| s.replace("**", "").replace('`', "");
    for k in 0..base.len() {
        let mut results = base.clone();
        let r = &mut results[k];
        r.status = Status::Pass;
        r.attestation = Some(Box::new(Attestation {
            by: "Reviewer".into(),
            date: "2026-11-01".into(),
            evidence: "seen".into(),
            origin: "attest.yaml:1".into(),
        }));
        let attested = r.clone();
        let report = Report::new(
            Target {
                mode: mlsdm_audit::report::Mode::Manifests,
                fail_on: Severity::High,
                ..Target::default()
            },
            results,
        );
        // The seed lines the attested check covers (a text the seed has twice: its own section's).
        let mut expected: Vec<String> = seed_lines
            .iter()
            .filter(|l| attested.checklist.contains(&l.text))
            .filter(|l| {
                seed_lines.iter().filter(|o| o.text == l.text).count() == 1
                    || *l.section == *attested.section
            })
            .map(|l| plain(&l.text))
            .collect();
        expected.sort();
        assert!(!expected.is_empty(), "{} covers no seed line", attested.id);

        let html = report::render(&report, Format::Html, false);
        let mut ticked: Vec<String> = html
            .split("<li data-state=\"done\"><span class=\"tick\">&#9745;</span>")
            .skip(1)
            .map(|rest| unescape(rest.split("<span class=\"detail\">").next().unwrap()))
            .collect();
        ticked.sort();
        assert_eq!(ticked, expected, "HTML, attesting {}", attested.id);

        if &*attested.section == "Sign-Off" {
            continue; // the Markdown lays the Sign-Off lines out as the signature table
        }
        let md = report::render(&report, Format::Markdown, false);
        let leaf_texts: BTreeSet<String> = seed_lines.iter().map(|l| plain(&l.text)).collect();
        let mut ticked: Vec<String> = md
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("- [x] "))
            .map(|t| plain(t.split(" — ").next().unwrap()))
            .filter(|t| leaf_texts.contains(t))
            .collect();
        ticked.sort();
        assert_eq!(ticked, expected, "Markdown, attesting {}", attested.id);
    }
}

/// Multi-byte text whose 10th and 40th bytes fall inside a character.
const WIDE: &str = "ü時🙂ü時🙂ü時🙂ü時🙂ü時🙂";

/// Replaces every string in `v` that the report model accepts as free text with `WIDE`
/// (enum values such as statuses stay valid).
fn widen(root: &mut serde_json::Value, path: &mut Vec<String>) {
    let here = root.pointer(&pointer(path)).cloned();
    match here {
        Some(serde_json::Value::String(_)) => {
            let old = root.pointer(&pointer(path)).cloned().unwrap();
            *root.pointer_mut(&pointer(path)).unwrap() = WIDE.into();
            if serde_json::from_value::<Report>(root.clone()).is_err() {
                *root.pointer_mut(&pointer(path)).unwrap() = old;
            }
        }
        Some(serde_json::Value::Array(a)) => {
            for i in 0..a.len() {
                path.push(i.to_string());
                widen(root, path);
                path.pop();
            }
        }
        Some(serde_json::Value::Object(m)) => {
            for k in m.keys() {
                path.push(k.replace('~', "~0").replace('/', "~1"));
                widen(root, path);
                path.pop();
            }
        }
        _ => {}
    }
}

fn pointer(path: &[String]) -> String {
    path.iter().flat_map(|p| ["/", p.as_str()]).collect()
}

#[test]
fn multi_byte_text_in_every_field_renders_in_every_format() {
    let mut v = serde_json::to_value(shared_report()).unwrap();
    // Fill the optional parts too: attestation, baseline change, endpoint, window, cluster.
    v["results"][0]["attestation"] =
        serde_json::json!({"by": "a", "date": "2026-11-20", "evidence": "e", "origin": "o"});
    v["results"][0]["change"] = "new".into();
    v["results"][0]["endpoint"] = "e".into();
    v["results"][0]["window"] =
        serde_json::json!({"asked": "5m", "evaluatedSeconds": 300.0, "source": "s"});
    v["target"]["selector"] = "app=x".into();
    v["target"]["attestations"] = "a.yaml".into();
    v["target"]["baseline"] = "b.json".into();
    v["target"]["endpoints"] = serde_json::json!(["https://x"]);
    v["target"]["prometheus"] = "https://p".into();
    v["target"]["cluster"] =
        serde_json::json!({"server": "https://k", "context": "c", "namespace": "n", "requests": 1});
    v["signoffs"] = serde_json::json!([
        {"role": "Security Team", "name": "n", "time": "2026-11-26T10:00:00Z", "publicKey": "ssh-ed25519 AAAA", "signature": "s"},
        {"role": "Other", "name": "n", "time": "t", "publicKey": "k", "signature": "s"},
    ]);
    serde_json::from_value::<Report>(v.clone()).expect("the filled-in report is a report");
    widen(&mut v, &mut Vec::new());
    // The seed roles stay, so both the checklist rows and the extra-role rows are exercised.
    v["signoffs"][0]["role"] = "Security Team".into();
    let report: Report = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(report.signoffs[0].time, WIDE);
    assert_eq!(report.signoffs[0].public_key, WIDE);
    assert_eq!(report.signoffs[1].role, WIDE);
    assert_eq!(&*report.results[0].message, WIDE);
    for &format in <Format as clap::ValueEnum>::value_variants() {
        for color in [false, true] {
            let text = std::panic::catch_unwind(|| report::render(&report, format, color))
                .unwrap_or_else(|_| panic!("{format:?} panicked on multi-byte text"));
            assert!(text.contains("ü時🙂"), "{format:?}");
        }
    }
}

/// Regression (issue 13): SARIF from live or endpoint runs had `"locations":[{}]`, which GitHub
/// code scanning rejects for the whole file. Every result has a physical location: its manifest
/// line, or the definition of the check that made it.
#[test]
fn every_sarif_result_has_a_physical_location() {
    let mut r = shared_report();
    for (i, x) in r.results.iter_mut().enumerate() {
        if i % 2 == 0 {
            x.location = None;
            x.endpoint = Some("https://mlsdm.example.com".into());
        }
    }
    let sarif: serde_json::Value =
        serde_json::from_str(&report::render(&r, Format::Sarif, false)).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for res in results {
        let loc = &res["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap_or_default();
        assert!(!uri.is_empty(), "{res}");
        assert!(loc["region"]["startLine"].as_i64().unwrap() >= 1, "{res}");
    }
    assert!(
        results.iter().any(
            |x| x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .starts_with("checks/")
        ),
        "findings without a manifest point at their check"
    );
}

/// GitLab's Code Quality report: every failure and error as an issue with the fields GitLab
/// requires (it drops the whole report on a missing one), a severity it knows, a path and a
/// line, and a fingerprint stable across runs and distinct per finding.
#[test]
fn codeclimate_is_what_gitlab_reads() {
    let report = shared_report();
    let issues: Vec<serde_json::Value> =
        serde_json::from_str(&report::render(&report, Format::Codeclimate, false)).unwrap();
    let open = report
        .results
        .iter()
        .filter(|r| matches!(r.status, report::Status::Fail | report::Status::Error))
        .count();
    assert!(open > 0);
    assert_eq!(issues.len(), open);
    let mut fingerprints = std::collections::BTreeSet::new();
    for i in &issues {
        for field in ["description", "check_name", "fingerprint", "severity"] {
            assert!(
                i[field].as_str().is_some_and(|s| !s.is_empty()),
                "{field}: {i}"
            );
        }
        assert!(
            ["info", "minor", "major", "critical", "blocker"]
                .contains(&i["severity"].as_str().unwrap()),
            "{i}"
        );
        assert!(
            i["location"]["path"]
                .as_str()
                .is_some_and(|p| !p.is_empty()),
            "{i}"
        );
        assert!(
            i["location"]["lines"]["begin"]
                .as_u64()
                .is_some_and(|l| l >= 1),
            "{i}"
        );
        fingerprints.insert(i["fingerprint"].as_str().unwrap().to_string());
    }
    assert_eq!(fingerprints.len(), issues.len(), "fingerprints collide");
    assert_eq!(
        report::render(&report, Format::Codeclimate, false),
        report::render(&report, Format::Codeclimate, false)
    );
}

/// The SARIF validates against the SARIF 2.1.0 JSON Schema (the copy serde-sarif ships, which
/// its types are generated from), with Python's jsonschema as the independent validator: on the
/// shared report (suppressions included) and with baseline states set.
#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let meta = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        meta.status.success(),
        "{}",
        String::from_utf8_lossy(&meta.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "serde-sarif")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("serde-sarif in the dependency tree");
    let schema = std::path::Path::new(manifest)
        .parent()
        .unwrap()
        .join("src/schema.json");
    assert!(schema.is_file(), "{}", schema.display());

    let dir = std::env::temp_dir().join(format!("mlsdm-audit-sarif-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut with_baseline = shared_report();
    for (i, r) in with_baseline.results.iter_mut().enumerate() {
        r.change = Some(match i % 3 {
            0 => report::Change::New,
            1 => report::Change::Unchanged,
            _ => report::Change::Fixed,
        });
    }
    let mut files = Vec::new();
    for (name, r) in [("shared", shared_report()), ("baseline", with_baseline)] {
        let file = dir.join(format!("{name}.sarif"));
        std::fs::write(&file, report::render(&r, Format::Sarif, false)).unwrap();
        files.push(file.to_str().unwrap().to_string());
    }
    let script = r"
import json, sys
from jsonschema import Draft7Validator
schema = json.load(open(sys.argv[1]))
Draft7Validator.check_schema(schema)
validator = Draft7Validator(schema)
bad = 0
for path in sys.argv[2:]:
    for e in validator.iter_errors(json.load(open(path))):
        bad += 1
        print(path, '/'.join(map(str, e.absolute_path)), e.message[:300])
sys.exit(1 if bad else 0)
";
    let python = std::env::var("MLSDM_AUDIT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args(["-c", script, schema.to_str().unwrap()])
        .args(&files)
        .output()
        .expect("python3 with jsonschema is needed; scripts/test.sh installs it");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "SARIF does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 11: whether a skipped line is "not applicable" was read from the message's first words.
/// The reason is data now: a skip for want of `--active` stays open whatever its message says,
/// and an undeclared optional item is n/a whatever its message says.
#[test]
fn the_skip_reason_not_the_message_decides_a_line_is_not_applicable() {
    use mlsdm_audit::checks::{self, Severity, Source};
    use mlsdm_audit::config::Requirement;
    use mlsdm_audit::report::checklist::{self, LineState};
    use mlsdm_audit::report::{SkipReason, Status, Target};
    use mlsdm_audit::{engine, sources::Facts};
    use std::collections::BTreeSet;

    let check: Vec<_> = checks::load(&[])
        .unwrap()
        .into_iter()
        .filter(|c| c.id == "manual-gdpr-compliance-reviewed")
        .collect();
    assert_eq!(check.len(), 1);
    let facts = Facts::new(Vec::new(), BTreeSet::new(), None, "nothing");
    let base = engine::evaluate(&check, &facts);
    let state_with = |reason: SkipReason, message: &str| {
        let mut results = base.clone();
        results[0].status = Status::Skipped;
        results[0].skip_reason = Some(reason);
        results[0].message = message.into();
        let report = Report::new(
            Target {
                mode: mlsdm_audit::report::Mode::Manifests,
                fail_on: Severity::High,
                ..Target::default()
            },
            results,
        );
        let states: Vec<LineState> = checklist::build(&report)
            .iter()
            .flat_map(|s| &s.lines)
            .filter(|l| l.results.iter().any(|r| r.id == check[0].id))
            .map(|l| l.state)
            .collect();
        assert!(!states.is_empty());
        states
    };
    assert!(
        state_with(
            SkipReason::NeedsActive,
            "not applicable here: run with --active"
        )
        .iter()
        .all(|s| *s == LineState::Open)
    );
    assert!(
        state_with(
            SkipReason::Optional {
                requirement: Requirement::Gdpr
            },
            "the team did not declare gdpr"
        )
        .iter()
        .all(|s| *s == LineState::NotApplicable)
    );
    assert!(
        state_with(
            SkipReason::NoSource {
                source: Source::Http
            },
            "not applicable"
        )
        .iter()
        .all(|s| *s == LineState::Open)
    );
}

/// Review findings: a failure that sets the exit code showed in SARIF as a `warning` or `note`
/// (code scanning blocks a merge on `error` only), and Code Quality printed `[]` for a run whose
/// gate was an error whatever its results.
#[test]
fn what_sets_the_exit_code_shows_as_blocking() {
    use mlsdm_audit::checks::Severity;
    let mut report = shared_report();
    report.target.fail_on = Severity::Medium;
    let failed = report
        .results
        .iter_mut()
        .find(|r| r.status == report::Status::Fail)
        .expect("the shared report has a failure");
    failed.severity = Severity::Medium;
    let id = failed.id.to_string();
    let level = |report: &Report| {
        let sarif: serde_json::Value =
            serde_json::from_str(&report::render(report, Format::Sarif, false)).unwrap();
        sarif["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["ruleId"] == id.as_str())
            .unwrap()["level"]
            .clone()
    };
    assert_eq!(level(&report), "error");
    // Under the default gate (high) the same medium failure is a warning, as before.
    report.target.fail_on = Severity::High;
    assert_eq!(level(&report), "warning");

    let mut undecided = shared_report();
    undecided.notes.push(report::Note {
        kind: report::NoteKind::Unrendered,
        message: "kustomization.yaml changes what it lists".into(),
    });
    let issues: Vec<serde_json::Value> =
        serde_json::from_str(&report::render(&undecided, Format::Codeclimate, false)).unwrap();
    assert_eq!(
        issues[0]["check_name"], "mlsdm-audit-gate",
        "{:?}",
        issues[0]
    );
    assert_eq!(issues[0]["severity"], "blocker");
    assert!(
        issues[0]["description"]
            .as_str()
            .unwrap()
            .contains("changes what it lists")
    );
}

/// Review finding: a Prometheus-only run passed, signed and verified as the release's pass with
/// every Kubernetes check skipped for want of objects: such a run is narrowed (the verdict says
/// it, `verify` refuses it unless `--allow-narrowed`).
#[test]
fn a_run_without_kubernetes_objects_is_narrowed() {
    let mut report = shared_report();
    let said = |r: &Report| {
        r.narrowed()
            .iter()
            .any(|w| w.contains("no Kubernetes objects"))
    };
    assert!(!said(&report));
    for r in report
        .results
        .iter_mut()
        .filter(|r| r.source == mlsdm_audit::facts::Source::Kubernetes)
    {
        r.status = report::Status::Skipped;
        r.skip_reason = Some(report::SkipReason::NoSource {
            source: mlsdm_audit::facts::Source::Kubernetes,
        });
    }
    assert!(said(&report));
}

/// Review 32c: results of one check on two endpoints (one passing, one failing) had the same
/// JUnit name and the same Code Climate fingerprint; each now names its endpoint.
#[test]
fn results_on_endpoints_are_told_apart_in_junit_and_codeclimate() {
    let mut r = shared_report();
    let failing = r
        .results
        .iter()
        .position(|x| x.status == report::Status::Fail)
        .unwrap();
    let mut twin = r.results[failing].clone();
    for (x, e) in [
        (&mut r.results[failing], "https://a.example"),
        (&mut twin, "https://b.example"),
    ] {
        x.object = None;
        x.location = None;
        x.endpoint = Some(e.into());
    }
    r.results.push(twin);
    r.summary = report::Summary::of(&r.results);
    let id = r.results[failing].id.to_string();
    let junit = report::render(&r, Format::Junit, false);
    for e in ["https://a.example", "https://b.example"] {
        assert!(
            junit.contains(&format!("name=\"{id} {e}\"")),
            "{e}: {junit}"
        );
    }
    let issues: Vec<serde_json::Value> =
        serde_json::from_str(&report::render(&r, Format::Codeclimate, false)).unwrap();
    let mine: Vec<&serde_json::Value> = issues.iter().filter(|i| i["check_name"] == id).collect();
    assert!(mine.len() >= 2, "{issues:?}");
    assert_ne!(mine[0]["fingerprint"], mine[1]["fingerprint"]);
    assert!(
        mine.iter().any(|i| i["description"]
            .as_str()
            .unwrap()
            .contains("(https://b.example)")),
        "{mine:?}"
    );
}
