//! One check file validated and compiled: YAML shape, ids, kinds, CEL programs compiled once
//! and PromQL parsed, every error with the file, line and column it points at.

use super::{
    Check, CheckError, CheckFile, CompiledCondition, CompiledValidation, Expr, KubernetesProbe,
    Located, MetricsProbe, Probe, Window, cel, parse_duration, sha256_hex,
};
use crate::facts::Source;
use crate::k8s::KindMatcher;
use std::path::Path;

/// Where, in the check file, line `line` and column `column` (1-based, characters) of the
/// expression in scalar `s` are. The scalar's own position when the expression's text cannot be
/// found verbatim (a folded or escaped scalar).
fn locate(text: &str, s: &Located, line: usize, column: usize) -> (u64, u64) {
    let fallback = (s.line, s.column);
    let file_lines: Vec<&str> = text.lines().collect();
    let mut at = usize::try_from(s.line.saturating_sub(1)).unwrap_or(0);
    let mut found = None;
    for wanted in s.value.lines().take(line) {
        let Some((i, col)) = file_lines
            .iter()
            .enumerate()
            .skip(at)
            .take(200)
            .find_map(|(i, l)| l.find(wanted).map(|b| (i, l[..b].chars().count())))
        else {
            return fallback;
        };
        found = Some((i, col));
        at = i + 1;
    }
    found.map_or(fallback, |(i, col)| (i as u64 + 1, (col + column) as u64))
}

/// Parses and validates one check file, compiling its expressions. `origin` names it in errors.
pub fn parse_check(origin: &str, text: &str, env: &cel::CelEnv) -> Result<Check, Vec<CheckError>> {
    parse(origin, text, Some(env), None)
}

/// A built-in check: as [`parse_check`], with its expressions compiled when first evaluated
/// (`Expr::program`). Only for text a test has compiled with [`parse_check`]: an expression's
/// errors are not looked for here. Read from the constant tree `build.rs` made of the file when
/// it could (the same `CheckFile`, without parsing anything at run time: `tests/catalog.rs`
/// holds the two readings equal), else from the YAML.
pub(super) fn parse_builtin(
    origin: &str,
    file: &super::BuiltinFile,
) -> Result<Check, Vec<CheckError>> {
    // A tree that does not read is a defect of build.rs that `tests/catalog.rs` rules out; were
    // it to happen, the YAML still gives the check.
    let from_tree = builtin_model_from_tree(file).and_then(|read| {
        debug_assert!(
            read.is_ok(),
            "{origin}: build.rs's tree does not read: {read:?}"
        );
        read.ok()
    });
    let model = match from_tree {
        Some(model) => model,
        None => read_yaml(origin, file.text)?,
    };
    compile(origin, file.text, model, None, Some(file.sha256))
}

/// A built-in check file read into the model from the tree `build.rs` wrote, or `None` when it
/// wrote none (a test compares this reading with the YAML's).
#[doc(hidden)]
pub fn builtin_model_from_tree(file: &super::BuiltinFile) -> Option<Result<CheckFile, String>> {
    use serde::Deserialize as _;
    file.tree.map(|tree| {
        super::model::read_placed(|| {
            CheckFile::deserialize(super::static_tree::De::<serde::de::value::Error>::new(tree))
        })
        .map_err(|e| e.to_string())
    })
}

/// A check file's YAML read into the model.
pub fn read_yaml(origin: &str, text: &str) -> Result<CheckFile, Vec<CheckError>> {
    serde_saphyr::from_str(text).map_err(|e| vec![CheckError::yaml(origin, &e)])
}

fn parse(
    origin: &str,
    text: &str,
    env: Option<&cel::CelEnv>,
    sha256: Option<&str>,
) -> Result<Check, Vec<CheckError>> {
    compile(origin, text, read_yaml(origin, text)?, env, sha256)
}

/// Validates `file` (read from `text`, which errors point into) and compiles it.
/// `env`: compile every expression now (and report what does not compile), or, without,
/// defer them (a built-in check).
/// `sha256`: the text's hash when it is already known (a built-in check's, from `build.rs`).
fn compile(
    origin: &str,
    text: &str,
    file: CheckFile,
    env: Option<&cel::CelEnv>,
    sha256: Option<&str>,
) -> Result<Check, Vec<CheckError>> {
    let err =
        |line: u64, column: u64, message: String| CheckError::new(origin, line, column, message);
    let mut errors = Vec::new();
    // Only an error asks where a key is: a valid file (every built-in one) never scans its text.
    let line_of = |key: &str| -> u64 {
        text.lines()
            .position(|l| {
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with(':'))
            })
            .map_or(1, |i| i as u64 + 1)
    };

    if !is_kebab(&file.id) {
        errors.push(err(
            line_of("id"),
            5,
            format!(
                "id {:?} must be kebab-case ([a-z0-9] words joined by '-')",
                file.id
            ),
        ));
    }
    let stem = Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != file.id && origin != "<stdin>" {
        errors.push(err(
            line_of("id"),
            5,
            format!("id {:?} must equal the file name ({stem}.yaml)", file.id),
        ));
    }
    for (field, value) in [("title", &file.title), ("section", &file.section)] {
        if value.trim().is_empty() {
            errors.push(err(line_of(field), 1, format!("{field} must not be empty")));
        }
    }

    let base: &[&str] = match file.source {
        Source::Kubernetes => &["object", "oldObject", "related", "mlsdm", "params"],
        Source::Http => &["response", "responses", "load", "mlsdm"],
        Source::Metrics => &["value", "series"],
        Source::Manual => &[],
    };
    let with_item: Vec<&str> = base.iter().copied().chain(["item"]).collect();
    let mut compile = |s: &Located, what: &str, vars: &[&str]| -> Option<Expr> {
        let Some(env) = env else {
            return Some(Expr::deferred(s.value.clone(), s.line));
        };
        match env.compile_resolved(&s.value, vars) {
            Ok((program, unresolved)) => {
                for u in &unresolved {
                    let (line, column) = locate(text, s, u.line, u.column);
                    errors.push(err(line, column, format!("{what}: {}", u.message)));
                }
                unresolved
                    .is_empty()
                    .then(|| Expr::compiled(s.value.clone(), program, s.line))
            }
            Err(e) => {
                // Where the parser says, in the file; else where the expression starts.
                let (line, column) = e.position.map_or_else(
                    || (s.line, s.column),
                    |(line, column)| locate(text, s, line, column),
                );
                errors.push(err(
                    line,
                    column,
                    format!("invalid CEL in {what}: {}", e.message),
                ));
                None
            }
        }
    };

    let for_each = file
        .for_each
        .as_ref()
        .and_then(|s| compile(s, "forEach", base));
    // `item` is bound only while a forEach runs the validations.
    let in_validations: &[&str] = if file.for_each.is_some() {
        &with_item
    } else {
        base
    };
    // Without forEach there are no elements to name: said below.
    let item = file
        .item
        .as_ref()
        .filter(|_| file.for_each.is_some())
        .and_then(|spec| {
            compile(&spec.name, "item.name", in_validations).map(|name| super::item::CompiledItem {
                kind: spec.kind,
                name,
            })
        });
    let when: Vec<CompiledCondition> = file
        .when
        .iter()
        .filter_map(|c| {
            compile(&c.expression, "when.expression", base).map(|expression| CompiledCondition {
                expression,
                reason: c.reason.clone(),
            })
        })
        .collect();
    let mut validations = Vec::new();
    for v in &file.validations {
        let expression = compile(&v.expression, "validations.expression", in_validations);
        let message_expression = v
            .message_expression
            .as_ref()
            .and_then(|m| compile(m, "validations.messageExpression", in_validations));
        if let Some(expression) = expression {
            validations.push(CompiledValidation {
                expression,
                message: v.message.clone(),
                message_expression,
            });
        }
    }

    let mut kinds = Vec::new();
    let mut namespaces = Vec::new();
    if let Some(m) = &file.match_ {
        for k in &m.kinds {
            if let Some(group) = crate::k8s::kinds::group(k) {
                kinds.extend(group.iter().filter_map(|g| KindMatcher::parse(g)));
                continue;
            }
            match KindMatcher::parse(k) {
                // Kinds are UpperCamelCase: `deployment` would match nothing, and the check would
                // report no-data on every release instead of checking it.
                Some(km) if !km.kind.starts_with(|c: char| c.is_ascii_uppercase()) => {
                    let groups: Vec<&str> =
                        crate::k8s::kinds::GROUPS.iter().map(|(g, _)| *g).collect();
                    errors.push(err(
                        line_of("match"),
                        1,
                        format!(
                            "match.kinds: {k:?} is neither a kind (UpperCamelCase, as Deployment) nor a group ({})",
                            groups.join(", ")
                        ),
                    ));
                }
                Some(km) => kinds.push(km),
                None => errors.push(err(
                    line_of("match"),
                    1,
                    format!("match.kinds: {k:?} is not Kind, version/Kind or group/version/Kind"),
                )),
            }
        }
        namespaces.clone_from(&m.namespaces);
    }

    let src_line = || line_of("source");
    // A metrics check's query, parsed here once: every later stage uses this tree.
    let mut query = None;
    match file.source {
        Source::Kubernetes => {
            if file.match_.as_ref().is_none_or(|m| m.kinds.is_empty()) {
                errors.push(err(
                    src_line(),
                    1,
                    "a kubernetes check needs match.kinds".into(),
                ));
            }
            if file.validations.is_empty() {
                errors.push(err(
                    src_line(),
                    1,
                    "a kubernetes check needs at least one validation".into(),
                ));
            }
        }
        Source::Http => {
            match &file.request {
                None => errors.push(err(src_line(), 1, "an http check needs a request".into())),
                Some(r) => {
                    let heavy = r.repeat.is_some_and(|n| n > 5) || r.load.is_some();
                    if heavy && !r.active {
                        errors.push(err(line_of("request"), 1, "a request that repeats more than 5 times or carries a load must set active: true".into()));
                    }
                    if let Some(problem) = r.out_of_bounds() {
                        errors.push(err(line_of("request"), 1, problem));
                    }
                    // A 404 or 405 makes the check an error before its validations run unless
                    // it declares the route may be absent: a check that expects one (a route
                    // that must stay off) could otherwise never pass, and said nothing of why.
                    let names_absent = file.validations.iter().any(|v| {
                        v.expression
                            .value
                            .split(|c: char| !c.is_ascii_digit())
                            .any(|n| n == "404" || n == "405")
                    });
                    if names_absent && !r.may_be_absent {
                        errors.push(err(
                            line_of("request"),
                            1,
                            "the validations judge a 404 or 405 answer, which never reaches them unless request.mayBeAbsent is true (without it such an answer means the endpoint does not serve the route, and the check is an error)".into(),
                        ));
                    }
                    if !["GET", "POST", "HEAD"].contains(&r.method.as_str()) {
                        errors.push(err(
                            line_of("request"),
                            1,
                            format!(
                                "method {:?}: http checks send GET, HEAD or POST only",
                                r.method
                            ),
                        ));
                    }
                    if let Some(retry) = &r.retry {
                        if !(2..=5).contains(&retry.attempts) {
                            errors.push(err(
                                line_of("request"),
                                1,
                                format!(
                                    "request.retry.attempts is {}: give 2 to 5 requests in all",
                                    retry.attempts
                                ),
                            ));
                        }
                        if r.repeat.is_some() || r.load.is_some() {
                            errors.push(err(
                                line_of("request"),
                                1,
                                "request.retry does not go with repeat or load".into(),
                            ));
                        }
                        if retry.while_json.is_empty()
                            || retry.while_json.keys().any(|k| !k.starts_with('/'))
                        {
                            errors.push(err(
                                line_of("request"),
                                1,
                                "request.retry.whileJson needs JSON pointers (starting with /) and the values that call for another attempt".into(),
                            ));
                        }
                    }
                    if !r.path.starts_with('/') {
                        errors.push(err(
                            line_of("request"),
                            1,
                            format!("request.path {:?} must start with /", r.path),
                        ));
                    }
                }
            }
            if file.validations.is_empty() {
                errors.push(err(
                    src_line(),
                    1,
                    "an http check needs at least one validation".into(),
                ));
            }
        }
        Source::Metrics => {
            match &file.query {
                None => errors.push(err(src_line(), 1, "a metrics check needs a query".into())),
                // A built-in check's query is parsed when first needed, as its expressions are.
                Some(q) if env.is_none() => query = Some(crate::promql::Query::deferred(&q.value)),
                Some(q) => match crate::promql::Query::parse(&q.value) {
                    Ok(parsed) => query = Some(parsed),
                    Err(e) => errors.push(err(
                        q.line,
                        q.column,
                        format!("invalid PromQL: {}", e.lines().next().unwrap_or_default()),
                    )),
                },
            }
            if file.validations.is_empty() {
                errors.push(err(
                    src_line(),
                    1,
                    "a metrics check needs at least one validation".into(),
                ));
            }
        }
        Source::Manual => {
            if !file.validations.is_empty() || file.match_.is_some() || file.for_each.is_some() {
                errors.push(err(
                    src_line(),
                    1,
                    "a manual check has no match, forEach or validations: reviewers attest to it"
                        .into(),
                ));
            }
            if file.checklist.is_empty() {
                errors.push(err(
                    src_line(),
                    1,
                    "a manual check must name the checklist lines it covers".into(),
                ));
            }
        }
    }
    // A field of another source was ignored before (a forEach on an http check ran nothing per
    // element, a `for` on a kubernetes check held nothing): refused, so what the file says is
    // what runs. A manual check's match/forEach and an item without forEach are said elsewhere.
    let manual = file.source == Source::Manual;
    for (key, present, owner) in [
        (
            "match",
            file.match_.is_some() && !manual,
            Source::Kubernetes,
        ),
        (
            "forEach",
            file.for_each.is_some() && !manual,
            Source::Kubernetes,
        ),
        ("request", file.request.is_some(), Source::Http),
        ("query", file.query.is_some(), Source::Metrics),
        ("for", file.for_window.is_some(), Source::Metrics),
        ("whenEmpty", file.when_empty.is_some(), Source::Metrics),
    ] {
        if present && file.source != owner {
            errors.push(err(
                line_of(key),
                1,
                format!(
                    "{key} is for {owner} checks; this is a {} check, which would ignore it",
                    file.source
                ),
            ));
        }
    }
    if let Some(spec) = file.item.as_ref().filter(|_| file.for_each.is_none()) {
        errors.push(err(
            spec.name.line,
            spec.name.column,
            "item names the elements of forEach: a check without forEach has none".into(),
        ));
    }
    let window = file.for_window.as_ref().and_then(|w| {
        parse_duration(w).map(|secs| Window {
            text: w.clone(),
            duration: std::time::Duration::from_secs(secs),
        })
    });
    if file.for_window.is_some() && window.is_none() {
        errors.push(err(
            line_of("for"),
            6,
            format!(
                "for: {:?} is not a duration like 30s, 1.5s, 5m or 1h30m",
                file.for_window.clone().unwrap_or_default()
            ),
        ));
    }
    if file
        .external_evidence
        .as_ref()
        .is_some_and(|e| e.in_cluster.is_empty() || e.elsewhere.trim().is_empty())
    {
        // Without inCluster every failure would become no-data, even with the object in the
        // cluster and wrong.
        errors.push(err(
            line_of("externalEvidence"),
            1,
            "externalEvidence needs elsewhere and at least one inCluster object (kind, optionally label or annotation)".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let probe = match file.source {
        Source::Kubernetes => Probe::Kubernetes(KubernetesProbe {
            kinds,
            namespaces,
            for_each,
            item,
            dependencies: std::sync::OnceLock::new(),
        }),
        // Checked above: an http check has a request, a metrics check a parsed query.
        Source::Http => match file.request {
            Some(r) => Probe::Http(r),
            None => {
                return Err(vec![err(
                    src_line(),
                    1,
                    "an http check needs a request".into(),
                )]);
            }
        },
        Source::Metrics => match query {
            Some(query) => Probe::Metrics(MetricsProbe {
                query,
                window,
                when_empty: file.when_empty.unwrap_or_default(),
            }),
            None => {
                return Err(vec![err(
                    src_line(),
                    1,
                    "a metrics check needs a query".into(),
                )]);
            }
        },
        Source::Manual => Probe::Manual,
    };

    let check = Check {
        id: file.id,
        title: file.title,
        section: file.section,
        checklist: file.checklist,
        severity: file.severity,
        probe,
        when,
        validations,
        remediation: file.remediation,
        doc: file.doc,
        requires: file.requires,
        external_evidence: file.external_evidence,
        origin: origin.to_string(),
        sha256: sha256.map_or_else(|| sha256_hex(text.as_bytes()), str::to_owned),
        builtin: false,
    };
    if env.is_some() {
        // Compiled now: what the expressions read is known now too.
        let _ = check.dependencies();
    }
    Ok(check)
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}
