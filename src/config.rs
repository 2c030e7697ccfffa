//! The team's config file, `.mlsdm-audit.yaml`: defaults for the `check` flags a team repeats,
//! and the requirements profile, which declares which optional and conditional checklist items
//! apply to this deployment.
//!
//! It is found by walking up from the working directory to the top of the git repository (the
//! directory holding `.git`), so that a file above the repository never changes what a CI job
//! checks. Outside a repository (a source tarball, a docker build context, /tmp) only the
//! working directory's own file is read: a walk to `/` would pick up a file anyone could plant
//! in a world-writable directory. A file owned by another user (not root), or that group or
//! others may write, is refused for the same reason. `--config PATH` names one,
//! `--no-config` ignores it. Fields are closed like check files': an unknown key is an error
//! with its file:line (exit 2). Command-line flags win over the file.

pub use crate::checks::requirements::{EvidenceObject, ExternalEvidence, Requirement};
use crate::checks::{Check, Severity};
use crate::k8s::Object;
pub use crate::report::OPTIONAL_PREFIX;
use crate::report::{CheckResult, SkipReason, Status};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The config file's name, looked for upward from the working directory.
pub const FILE_NAME: &str = ".mlsdm-audit.yaml";

/// `.mlsdm-audit.yaml`, exactly as written. Relative paths are relative to the file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "mlsdm-audit team config (.mlsdm-audit.yaml)")]
pub struct ConfigFile {
    /// Default for `-n, --namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Default for `-l, --selector`.
    #[serde(default)]
    pub selector: Option<String>,
    /// Default for `--fail-on`.
    #[serde(default)]
    pub fail_on: Option<Severity>,
    /// Default for `--checks` (extra check directories).
    #[serde(default)]
    pub checks: Vec<PathBuf>,
    /// Default for `--waivers`.
    #[serde(default)]
    pub waivers: Option<PathBuf>,
    /// Default for `--attestations`.
    #[serde(default)]
    pub attestations: Option<PathBuf>,
    /// Default for `--prometheus` in live audits (not with --manifests, --kustomize, --helm-chart),
    /// taken with `endpoints` only when neither `--prometheus` nor `--endpoint` is given.
    #[serde(default)]
    pub prometheus: Option<String>,
    /// Default for `--prometheus-selector`, taken with `prometheus` (the label matchers that
    /// pick this release's series out of what that Prometheus holds).
    #[serde(default)]
    pub prometheus_selector: Option<String>,
    /// Default for `--endpoint` in live audits (not with --manifests, --kustomize, --helm-chart),
    /// taken with `prometheus` only when neither `--prometheus` nor `--endpoint` is given.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// The optional and conditional checklist items that apply to this deployment; checks for
    /// the others are `skipped`. `--require` adds to this list.
    #[serde(default)]
    #[schemars(with = "Vec<Requirement>")]
    pub requirements: Vec<Spanned<Requirement>>,
}

/// A loaded config file and where it came from.
#[derive(Debug, Default)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub file: ConfigFile,
}

/// Where the config file is: the first `.mlsdm-audit.yaml` upward from `start` up to the
/// repository's top (the directory holding `.git`); without a repository above `start`, only
/// `start`'s own. The first entry of that name is the config, whatever it is: a symlink whose
/// target is gone, or a directory, was passed over as "no config file" (the team's gate and
/// checks dropped without a word, or a parent's config taken); `load` refuses it.
pub fn discover(start: &Path) -> Option<PathBuf> {
    let exists = |c: &PathBuf| std::fs::symlink_metadata(c).is_ok();
    let Some(top) = start.ancestors().find(|d| d.join(".git").exists()) else {
        return Some(start.join(FILE_NAME)).filter(exists);
    };
    start
        .ancestors()
        .take_while(|d| d.starts_with(top))
        .map(|d| d.join(FILE_NAME))
        .find(exists)
}

/// Refuses a config file another user could have written: it must be owned by the current
/// user or root and not writable by group or others (it sets the gate and the waivers).
fn trusted(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    crate::input::untrusted(meta).map_or(Ok(()), |why| {
        Err(crate::diag::Diagnostic::file(
            path.display().to_string(),
            format!("refusing the config file: {why} (it sets the gate, waivers and checks; fix its owner or mode, or pass --no-config)"),
        )
        .to_string())
    })
}

/// Reads and validates a config file; errors name file:line:column.
pub fn load(path: &Path) -> Result<Config, String> {
    let name = path.display().to_string();
    let whole = |e: String| crate::diag::Diagnostic::file(name.clone(), e).to_string();
    let meta = std::fs::metadata(path).map_err(|e| whole(e.to_string()))?;
    if !meta.is_file() {
        return Err(whole(
            "not a file: the config file must be a YAML file (or pass --no-config)".into(),
        ));
    }
    trusted(path, &meta)?;
    let text = crate::input::read_file(path).map_err(whole)?;
    let mut file: ConfigFile = if text.trim().is_empty() {
        ConfigFile::default()
    } else {
        serde_saphyr::from_str(&text)
            .map_err(|e| crate::diag::Diagnostic::yaml(name.clone(), &e).to_string())?
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let rel = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    file.checks = file.checks.iter().map(rel).collect();
    file.waivers = file.waivers.as_ref().map(rel);
    file.attestations = file.attestations.as_ref().map(rel);
    let mut seen = Vec::new();
    for r in &file.requirements {
        if seen.contains(&r.value) {
            return Err(crate::diag::Diagnostic::new(
                name,
                r.referenced.line(),
                r.referenced.column(),
                format!("requirement {} is declared twice", r.value),
            )
            .to_string());
        }
        seen.push(r.value);
    }
    Ok(Config {
        path: Some(path.to_path_buf()),
        file,
    })
}

/// Finds (or takes `--config`) and loads the config, unless `--no-config`.
pub fn find(explicit: Option<&Path>, disabled: bool, cwd: &Path) -> Result<Option<Config>, String> {
    if disabled {
        return Ok(None);
    }
    match explicit {
        Some(p) => load(p).map(Some),
        None => discover(cwd).map(|p| load(&p)).transpose(),
    }
}

/// Fills the flags the command line left unset from the config file (the command line wins).
pub fn apply(args: &mut crate::cli::CheckArgs, config: &Config) {
    let f = &config.file;
    if args.namespace.is_none() && !args.all_namespaces {
        args.namespace.clone_from(&f.namespace);
    }
    if args.selector.is_none() {
        args.selector.clone_from(&f.selector);
    }
    if args.fail_on.is_none() {
        args.fail_on = f.fail_on.map(Into::into);
    }
    if args.checks.is_empty() {
        args.checks.clone_from(&f.checks);
    }
    if args.waivers.is_none() {
        args.waivers.clone_from(&f.waivers);
    }
    if args.attestations.is_none() {
        args.attestations.clone_from(&f.attestations);
    }
    // The file's Prometheus and endpoints describe what is deployed: they apply to live audits
    // only. Manifests (-f, -k, --helm-chart) are a release not deployed yet, and evidence from
    // the running one would pass checks it has not earned.
    let manifest_run =
        !args.manifests.is_empty() || !args.kustomize.is_empty() || args.helm_chart.is_some();
    // Prometheus and the endpoints name one deployment: with either on the command line (say
    // --endpoint https://staging), the file's other half (production's Prometheus) would decide
    // the metrics checks of another deployment. So they come from the file together or not at all.
    let named_on_command_line = args.prometheus.is_some() || !args.endpoints.is_empty();
    if !manifest_run && !named_on_command_line {
        args.prometheus.clone_from(&f.prometheus);
        args.endpoints.clone_from(&f.endpoints);
        // The selector picks series out of the file's Prometheus: it comes with it or not at all.
        if args.prometheus_selector.is_none() && f.prometheus.is_some() {
            args.prometheus_selector.clone_from(&f.prometheus_selector);
        }
    }
    for r in &f.requirements {
        if !args.requirements.contains(&r.value) {
            args.requirements.push(r.value);
        }
    }
}

/// Splits the selected checks into those to evaluate and the optional ones whose requirement
/// is not declared.
pub fn partition(checks: Vec<Check>, declared: &[Requirement]) -> (Vec<Check>, Vec<Check>) {
    checks
        .into_iter()
        .partition(|c| c.requires.is_none_or(|r| declared.contains(&r)))
}

/// One `skipped` result per optional check not evaluated, saying how to turn it on.
pub fn skipped_results(optional: &[Check]) -> Vec<CheckResult> {
    optional
        .iter()
        .map(|c| {
            let r = c.requires.map_or("?", Requirement::name);
            // `partition` only sets aside checks that have a requirement.
            let skip_reason = c
                .requires
                .map(|requirement| SkipReason::Optional { requirement });
            CheckResult {
                title: c.title.as_str().into(),
                section: c.section.as_str().into(),
                severity: c.severity,
                skip_reason,
                checklist: c.checklist.as_slice().into(),
                ..CheckResult::new(
                    c.id.clone(),
                    c.source(),
                    Status::Skipped,
                    format!("{OPTIONAL_PREFIX} (requirements: [{r}], or --require {r})"),
                )
            }
        })
        .collect()
}

/// Checks whose evidence may live outside the cluster's objects (`externalEvidence`): a failure
/// there, when none of the objects that would carry the evidence in the cluster is audited,
/// means the audit did not find the evidence, not that it is missing, so it is `no-data` with
/// where else it may be and how to attest it. When the cluster holds such an object the
/// evidence is there and wrong: the failure stays `fail`, saying which object it found.
pub fn external_evidence<'r>(
    results: impl Iterator<Item = &'r mut CheckResult>,
    checks: &[Check],
    objects: &[Object],
) {
    // Per check, once: whether the audit holds an object that would carry the evidence (the
    // first one, named in messages). Searched per failing result, this was results x objects:
    // a check failing on every workload made a 20,000-object audit quadratic.
    let mut evidence: HashMap<&str, (&ExternalEvidence, Option<&Object>)> = HashMap::new();
    for c in checks {
        if let Some(e) = c.external_evidence.as_ref() {
            let found = objects
                .iter()
                .find(|o| e.in_cluster.iter().any(|w| w.matches(o)));
            evidence.insert(c.id.as_str(), (e, found));
        }
    }
    for r in results.filter(|r| r.status == Status::Fail) {
        let Some(&(e, found)) = evidence.get(r.id.as_str()) else {
            continue;
        };
        if let Some(o) = found {
            let ns = o
                .namespace
                .as_deref()
                .map_or(String::new(), |n| format!("{n}/"));
            r.message = format!(
                "{} (the evidence is in the cluster, not elsewhere: {} {ns}{} is audited)",
                r.message.trim_end_matches('.'),
                o.kind,
                o.name
            )
            .into();
            continue;
        }
        r.status = Status::NoData;
        r.message = format!(
            "{}; the evidence may live outside the cluster's objects ({}; the audit holds no {}): if it does, attest it (--attestations, check: {}, with by, date and evidence)",
            r.message.trim_end_matches('.'),
            e.elsewhere.trim().trim_end_matches('.'),
            e.in_cluster
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            r.id
        ).into();
    }
}

/// The JSON Schema of `.mlsdm-audit.yaml`, for editors.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(ConfigFile);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_and_requirement_name_their_line() {
        let dir = std::env::temp_dir().join(format!("mlsdm-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(FILE_NAME);
        std::fs::write(&p, "namespace: x\nfailOn: low\nnamespce: y\n").unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.contains(":3:1: unknown field `namespce`"), "{e}");
        std::fs::write(&p, "requirements:\n  - tracing\n  - tracng\n").unwrap();
        let e = load(&p).unwrap_err();
        assert!(e.contains(":3:") && e.contains("tracng"), "{e}");
        std::fs::write(&p, "requirements: [tracing, tracing]\n").unwrap();
        assert!(load(&p).unwrap_err().contains("declared twice"));
        std::fs::write(&p, "checks: [team-checks]\nrequirements: [gdpr]\n").unwrap();
        let c = load(&p).unwrap();
        assert_eq!(c.file.checks, vec![dir.join("team-checks")]);
        assert_eq!(c.file.requirements[0].value, Requirement::Gdpr);
        // Found from a directory below, not above the repository's top.
        let below = dir.join("a/b");
        std::fs::create_dir_all(&below).unwrap();
        assert_eq!(
            discover(&below),
            None,
            "no repository: only the working directory's"
        );
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        assert_eq!(discover(&below), Some(p.clone()));
        std::fs::create_dir_all(below.join(".git")).unwrap();
        assert_eq!(discover(&below), None);
        // Review finding: a symlink whose target is gone, or a directory, of that name was
        // passed over (the team's gate dropped without a word): it is the config, and refused.
        std::fs::remove_dir_all(below.join(".git")).unwrap();
        let dangling = dir.join("a").join(FILE_NAME);
        std::os::unix::fs::symlink(dir.join("gone.yaml"), &dangling).unwrap();
        assert_eq!(discover(&below), Some(dangling.clone()));
        assert!(load(&dangling).is_err());
        std::fs::remove_file(&dangling).unwrap();
        std::fs::create_dir_all(&dangling).unwrap();
        assert_eq!(discover(&below), Some(dangling.clone()));
        assert!(load(&dangling).unwrap_err().contains("not a file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_config_file_another_user_could_write_is_refused() {
        assert_eq!(crate::input::untrusted_reason(1000, 0o100_644, 1000), None);
        assert_eq!(crate::input::untrusted_reason(0, 0o100_600, 1000), None);
        assert!(
            crate::input::untrusted_reason(1001, 0o100_644, 1000)
                .unwrap()
                .contains("uid 1001")
        );
        assert!(
            crate::input::untrusted_reason(1000, 0o100_664, 1000)
                .unwrap()
                .contains("664")
        );
        assert!(
            crate::input::untrusted_reason(0, 0o100_666, 0)
                .unwrap()
                .contains("666")
        );
    }
}
