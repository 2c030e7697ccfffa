//! The report model: one serde struct that every output format renders, and that `--format json`
//! is, serialized. Field names here are a contract other tools rely on.
//!
//! One file: the model is one contract (schema/report.schema.json is generated from it), read in
//! one place; the rest is what every renderer shares about it (sorting, `Format`, verdict, score,
//! trend). Each format is its own file beside it.

pub mod checklist;
pub mod codeclimate;
pub mod fleet;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod reason;
pub mod sarif;
pub mod table;

use crate::checks::{Severity, Source};
use crate::k8s::Location;
pub use crate::k8s::ObjectRef;
pub use reason::{Item, SkipReason};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

pub const SCHEMA_VERSION: &str = "1";

/// How the message of a result skipped as optional begins (its `skipReason` is `optional`).
pub const OPTIONAL_PREFIX: &str = "optional: declare it in .mlsdm-audit.yaml to check it";

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    Error,
    NoData,
    Skipped,
    Waived,
    Manual,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
            Self::NoData => "no-data",
            Self::Skipped => "skipped",
            Self::Waived => "waived",
            Self::Manual => "manual",
        })
    }
}

/// Who accepted a failure, why and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaiverInfo {
    pub reason: String,
    pub owner: String,
    pub expires: String,
    /// `file:line` of the waiver, or the annotation it came from.
    pub origin: String,
    pub expired: bool,
}

/// A reviewer's confirmation of a manual item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    pub by: String,
    pub date: String,
    pub evidence: String,
    /// `file:line` of the attestation.
    pub origin: String,
}

/// How a result compares with the baseline report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Failing now, not failing in the baseline.
    New,
    /// Failing in the baseline, not failing now.
    Fixed,
    Unchanged,
}

/// One reviewer's signature over the report's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Signoff {
    pub role: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The signer's public key, OpenSSH format.
    pub public_key: String,
    /// An armored SSH signature (SSHSIG, namespace `mlsdm-audit`).
    pub signature: String,
}

// A run holds about 13 results per object, so the strings every result of a check repeats
// (title, section, checklist lines) are shared with the check (`Arc`), the object and location
// every result of one object repeats are shared per object, and the fields few
// results carry are boxed, to keep the results small (issue 12). Serialized exactly as
// plain strings and structs. (Not a doc comment: it would become the schema's description.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    #[schemars(with = "String")]
    pub id: CheckId,
    #[serde(with = "shared_str")]
    #[schemars(with = "String")]
    pub title: Arc<str>,
    #[serde(with = "shared_str")]
    #[schemars(with = "String")]
    pub section: Arc<str>,
    pub severity: Severity,
    pub source: Source,
    pub status: Status,
    // Shared with the check's title when that is all a pass says (one copy per check).
    #[serde(with = "shared_str")]
    #[schemars(with = "String")]
    pub message: Arc<str>,
    /// Why the result is `skipped` (only on skipped results); `message` says it for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    #[serde(default, with = "shared_option")]
    #[schemars(with = "Option<ObjectRef>")]
    pub object: Option<Arc<ObjectRef>>,
    /// The elements of the object that failed (of a check whose `forEach` declares `item:`),
    /// one per failing element; `message` joins their messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default, with = "shared_option")]
    #[schemars(with = "Option<Location>")]
    pub location: Option<Arc<Location>>,
    #[serde(with = "shared_lines")]
    #[schemars(with = "Vec<String>")]
    pub checklist: Arc<[String]>,
    /// The validations that failed, by position in the check (1-based; only on failures): a
    /// baseline counts a failure whose set it has not seen as new, where the same check failing
    /// on the same object for another reason was read as known debt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_validations: Vec<u16>,
    /// The outcome before a waiver applied (only on waived results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Box<WaiverInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Box<Attestation>>,
    /// Against `--baseline`: new, fixed or unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The service endpoint an http or metrics result came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// For metrics results: the window the check asked for and the one evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Box<WindowInfo>>,
    /// In a fleet report: the cluster (kubeconfig context) this result is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl CheckResult {
    /// A result of check `id` with nothing but its outcome: no title, section or checklist lines,
    /// and every optional part (object, items, waiver, window, cluster, ...) empty. Callers set
    /// what they know with struct update syntax, so adding a field to results is one place.
    pub fn new(
        id: impl Into<CheckId>,
        source: Source,
        status: Status,
        message: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            id: id.into(),
            title: Arc::from(""),
            section: Arc::from(""),
            severity: Severity::default(),
            source,
            status,
            message: message.into(),
            skip_reason: None,
            object: None,
            items: Vec::new(),
            failed_validations: Vec::new(),
            location: None,
            checklist: Arc::from([]),
            outcome: None,
            waiver: None,
            attestation: None,
            change: None,
            endpoint: None,
            window: None,
            cluster: None,
        }
    }
}

/// `Arc<str>` as a plain string (serde's own impl needs its `rc` feature, which would rebuild
/// every crate that uses serde for two fields).
mod shared_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        super::json::shared_field(
            super::json::Shared::Text(v.as_ptr()),
            Arc::strong_count(v) > 1,
            &**v,
            s,
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

/// `Arc<[String]>` as a plain list of strings (see `shared_str`).
mod shared_lines {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(v: &Arc<[String]>, s: S) -> Result<S::Ok, S::Error> {
        super::json::shared_field(
            super::json::Shared::Lines(v.as_ptr().cast()),
            Arc::strong_count(v) > 1,
            &**v,
            s,
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[String]>, D::Error> {
        Vec::<String>::deserialize(d).map(Arc::from)
    }
}

/// `Option<Arc<T>>` as a plain `Option<T>`: the object and location every result of one
/// object repeats are one copy per object (see `shared_str`).
mod shared_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::sync::Arc;

    #[allow(clippy::ref_option)] // serde's `with` passes the field by reference
    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Arc<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Arc<T>>, D::Error> {
        Option::<T>::deserialize(d).map(|v| v.map(Arc::new))
    }
}

/// The window a metrics check asked for, and what the run could evaluate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowInfo {
    /// The check's `for`, e.g. `5m`.
    pub asked: Option<String>,
    /// Seconds of data the evaluation covered.
    pub evaluated_seconds: f64,
    /// Where the samples came from.
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub no_data: usize,
    pub skipped: usize,
    pub waived: usize,
    pub manual: usize,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Self {
        Self::of_each(results)
    }

    /// The counts of any selection of results (one cluster's of a fleet report).
    pub fn of_each<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Self {
        let mut s = Self::default();
        for r in results {
            *match r.status {
                Status::Pass => &mut s.pass,
                Status::Fail => &mut s.fail,
                Status::Error => &mut s.error,
                Status::NoData => &mut s.no_data,
                Status::Skipped => &mut s.skipped,
                Status::Waived => &mut s.waived,
                Status::Manual => &mut s.manual,
            } += 1;
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_excessive_bools)] // one per command-line switch the run was given
pub struct Target {
    /// What was audited: manifests, a live cluster, or only a service.
    pub mode: Mode,
    #[serde(default)]
    pub manifests: Vec<String>,
    #[serde(default)]
    pub selector: Option<String>,
    pub fail_on: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Gate only on failures that are new against the baseline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_on_new: bool,
    /// `--endpoint` URLs probed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    /// `--prometheus-selector`: the label matchers every query to `prometheus` carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_selector: Option<String>,
    /// TLS verification was turned off (`--insecure-skip-tls-verify`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_tls_verify: bool,
    /// Active probes ran (`--active`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active: bool,
    /// `--observe`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe_seconds: Option<u64>,
    /// `--window` override, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// The cluster audited, in cluster mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterTarget>,
    /// The checks `--only`/`--skip` left out: a subset audit (`Report::narrowed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// The checklist lines of the team's checks in `left_out` (a built-in check replaced by a
    /// team's file included), by id: a checklist re-rendered from the report opens them too (the
    /// team's files are not read at render time; before, their lines were ticked by the checks
    /// that ran). A built-in check's lines come from the catalog.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub left_out_checklist: std::collections::BTreeMap<String, Vec<String>>,
    /// `--allow-empty`: empty inputs and a run that decided nothing did not make the gate an
    /// error (their notes are still in the report).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
    /// A fleet run (`--context a,b`, `--all-contexts`, `report --merge`): every cluster and
    /// what became of it, in order; its results carry their cluster's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<fleet::Member>,
    /// The built-in catalog of the binary that wrote the report ([`catalog_digest`]). A binary
    /// holding the same catalog holds the report's list of checks to it (results taken out with
    /// their checks' entries are refused); a report of another catalog (an older binary's) is
    /// read as it lists its checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// What the manifests the run read hashed to, in a manifests audit: the signed pass is bound
    /// to these bytes, and `verify --manifests` holds a release's files to them (an old signed
    /// pass verified for any manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests_digest: Option<ManifestsDigest>,
}

/// What a manifests audit read ([`crate::sources::manifests::Loaded::digest`]): each input as
/// the command line gave it, and each file read under it, in the order the run read them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestsDigest {
    /// SHA-256, hex, of the compact JSON array of `inputs` with every `name` left out
    /// (`[[kind, path, [[path, sha256, link], ...]], ...]`, `link` null for a file that is not
    /// one): one value for the whole release, which does not depend on the directory the run
    /// started in. JSON, not lines: a file named with a tab and a newline cannot stand for two.
    pub sha256: String,
    pub inputs: Vec<InputDigest>,
}

impl ManifestsDigest {
    /// The number of files (and texts) read.
    pub fn files(&self) -> usize {
        self.inputs.iter().map(|i| i.files.len()).sum()
    }
}

/// How an input was given: `check` reads a directory and a file named on its own differently
/// (a walked file is held to its directory's kustomization; one named is the run's choice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    #[default]
    Directory,
    File,
    Stdin,
    /// A `--kustomize`/`--helm-chart` render.
    Render,
}

impl InputKind {
    /// What the digest holds: a render and stdin are both text read whole, so a render piped
    /// to `verify -f -` is the text the audit rendered.
    #[must_use]
    pub fn as_read(self) -> Self {
        match self {
            Self::Render => Self::Stdin,
            other => other,
        }
    }
}

/// One input of a manifests audit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InputDigest {
    pub kind: InputKind,
    /// As the run named it: a path, `<stdin>`, or the renderer's name.
    pub name: String,
    /// Relative to the deepest directory holding every path input (symlinks resolved),
    /// `/`-separated; `-` for stdin and a render. Where the inputs stand to each other decides
    /// what a kustomization's `../base` names.
    pub path: String,
    pub files: Vec<FileDigest>,
}

/// One file (or text) an input gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileDigest {
    /// As the run named it (for messages).
    pub name: String,
    /// Relative to its input (a directory, or the directory of a file named on its own),
    /// `/`-separated; `-` for stdin and a render.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// A symlink's target, resolved, relative to the directory `InputDigest::path` is relative
    /// to (`(outside the inputs)` when outside it): which files are one file decides what a
    /// kustomization lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A digest of the built-in catalog this binary holds: each check file's name and SHA-256, a
/// line each (`name sha256\n`, in name order), hashed. build.rs computes it
/// (`catalog_digest_is_the_hash_of_the_files_lines` holds it to the files the binary embeds).
pub fn catalog_digest() -> String {
    CATALOG_DIGEST.to_string()
}

const CATALOG_DIGEST: &str = include!(concat!(env!("OUT_DIR"), "/catalog_digest.rs"));

/// Which cluster a live audit read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTarget {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// None: all namespaces.
    pub namespace: Option<String>,
    /// GET requests sent to list the cluster.
    pub requests: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "mlsdm-audit report")]
pub struct Report {
    pub schema_version: String,
    pub tool: Tool,
    pub generated_at: String,
    pub target: Target,
    pub summary: Summary,
    pub results: Vec<CheckResult>,
    /// Every check that ran and where its definition came from, so a signed report shows
    /// exactly what was evaluated (a `--checks` file replacing a built-in one included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckOrigin>,
    /// What the run did with its input that a reader must know: files skipped as not
    /// Kubernetes objects, objects a later definition replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// Reviewer signatures; everything else in the report is what they sign.
    #[serde(default)]
    pub signoffs: Vec<Signoff>,
}

/// Something the run did with its input, said once (not a check result).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    pub kind: NoteKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NoteKind {
    /// A file found by walking a directory that holds no Kubernetes object (a kustomization,
    /// a Helm chart, other YAML): not audited.
    SkippedFile,
    /// An object defined twice in the input: the last definition wins, as with `kubectl apply`.
    Replaced,
    /// `watch` could not decide a rollback criterion by this checkpoint (it exited 3): the
    /// report's gate is an error whatever its results say, so no renderer shows it as a pass.
    WatchUndecided,
    /// `watch` could not watch these rollback criteria at all (the Kubernetes ones without a
    /// cluster): the checkpoint was decided without them.
    NotWatched,
    /// `check` decided nothing: every result it evaluated is no-data (a service-only run right
    /// after a deploy: one scrape gives no rate). Like `WatchUndecided`, the gate is an error
    /// whatever the results say: a run with no evidence is not a pass.
    NothingDecided,
    /// An input the run was given (a manifest path, a kustomize overlay, a Helm chart) gave no
    /// Kubernetes object while others did: the release was audited without it. Like
    /// `NothingDecided`, the gate is an error unless something failed (`--allow-empty`
    /// accepts it).
    EmptyInput,
    /// Workloads that run MLSDM but the workload selector (`--selector`, or the config file's
    /// `selector:`) leaves out: not audited. Said in every format, so a failing release a
    /// selector leaves out is not read as audited.
    OutOfScope,
    /// The `--baseline` report audited something else (another mode, cluster or namespace):
    /// its failures are taken as known debt here all the same, so it is said.
    BaselineMismatch,
    /// No source of the run gave anything to decide on, accepted with `--allow-empty` (without
    /// it the run is refused, exit 3): recorded so that the report does not read as an audit.
    NothingAudited,
    /// `--only`/`--skip` left checks out: the report is a subset audit (`target.leftOut`).
    Subset,
    /// A walked directory's kustomization changes the files it lists (patches, images,
    /// replicas...): they were audited as written, not as deployed. Like `EmptyInput`, the gate
    /// is an error unless something failed; `--kustomize DIR` audits what it renders.
    Unrendered,
    /// Checks of each pod were answered by an `--endpoint` URL, once: behind a Service or an
    /// ingress, by one pod of several.
    OnePodSampled,
    /// `report --merge`: one input report, its SHA-256 and whether it was signed.
    MergedInput,
}

/// Whether `results` decide nothing the gate asks: every result at or above `fail_on` is
/// no-data (one scrape of a service gives no rate; a window with no traffic gives no latency),
/// or, with none there, every result at all. Such a run's gate is an error (its
/// [`NoteKind::NothingDecided`] note): exit 0 would pass a release on nothing, and a check below
/// the gate that passed or errored decides nothing the gate asks.
///
/// A manual line a reviewer attested decides that line, not what the audit measures: it had
/// turned a run where no source gave anything into a pass. An attested check whose evidence may
/// live outside the cluster (not manual) does decide it.
pub fn decides_nothing(results: &[CheckResult], fail_on: Severity) -> bool {
    let decided = |r: &&CheckResult| {
        matches!(
            r.status,
            Status::Pass | Status::Fail | Status::Error | Status::Waived
        ) && !(r.attestation.is_some() && r.source == Source::Manual)
    };
    let no_data = |r: &&CheckResult| r.status == Status::NoData;
    let gated: Vec<&CheckResult> = results.iter().filter(|r| r.severity >= fail_on).collect();
    let undecided_at_gate = gated.iter().any(no_data) && !gated.iter().any(decided);
    let undecided_at_all = gated.is_empty()
        && results.iter().any(|r| no_data(&r))
        && !results.iter().any(|r| decided(&r));
    undecided_at_gate || undecided_at_all
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A check's id as its results carry it: one copy per check shared by all its results (at
/// 50,000 objects, 650,000 results each held their own copy), compared and printed as the
/// plain string it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckId(Arc<str>);

impl CheckId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for CheckId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for CheckId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CheckId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for CheckId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl From<String> for CheckId {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl From<&String> for CheckId {
    fn from(s: &String) -> Self {
        Self(s.as_str().into())
    }
}

impl From<CheckId> for String {
    fn from(id: CheckId) -> Self {
        id.0.to_string()
    }
}

impl PartialEq<str> for CheckId {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for CheckId {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for CheckId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<CheckId> for String {
    fn eq(&self, other: &CheckId) -> bool {
        **self == *other.0
    }
}

impl PartialEq<CheckId> for &str {
    fn eq(&self, other: &CheckId) -> bool {
        **self == *other.0
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// Where one check's definition came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckOrigin {
    pub id: String,
    /// `built-in` or `file`.
    pub kind: String,
    /// `checks/ID.yaml` inside the tool for built-ins, else the file given to `--checks`.
    pub path: String,
    /// SHA-256 of the definition's bytes.
    pub sha256: String,
    /// The check's fix hint (its `remediation`), shown beside its failures in every format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
}

impl CheckOrigin {
    pub fn of(check: &crate::checks::Check) -> Self {
        Self {
            id: check.id.clone(),
            kind: if check.builtin { "built-in" } else { "file" }.into(),
            path: check.origin.clone(),
            sha256: check.sha256.clone(),
            remediation: Some(check.remediation.clone()).filter(|r| !r.trim().is_empty()),
        }
    }
}

/// The JSON Schema of the report (`-o json`, and what `report` and `verify` read):
/// `mlsdm-audit schema report`, committed as schema/report.schema.json.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Report);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// Sort key: the seed checklist's section order; sections it does not have sort after.
pub fn section_rank(section: &str) -> usize {
    let order = SEED_SECTIONS;
    order
        .iter()
        .position(|s| *s == section)
        .or_else(|| {
            order
                .iter()
                .position(|s| s.starts_with(section) || section.starts_with(s))
        })
        .unwrap_or(order.len())
}

/// `seed::sections()`, computed by `build.rs` with the same parser (a test holds the two equal).
const SEED_SECTIONS: &[&str] = include!(concat!(env!("OUT_DIR"), "/seed_sections.rs"));

/// Ranks of `items` in their order, equal items sharing a rank: `ranks(items)[i]` is the place of
/// item `i`.
fn ranks<T: Ord>(items: &[T]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[a].cmp(&items[b]));
    let mut ranks = vec![0; items.len()];
    let mut rank = 0;
    for (k, pair) in order.windows(2).enumerate() {
        if items[pair[0]] != items[pair[1]] {
            rank = u32::try_from(k + 1).unwrap_or(u32::MAX);
        }
        ranks[pair[1]] = rank;
    }
    ranks
}

/// Orders results by the seed checklist's sections, then section, check and object, equal ones
/// keeping their order. A stable sort of the results themselves allocates a scratch copy of half
/// of them (tens of MB at 5,000 objects, the run's peak): the order is computed on indices and
/// applied in place.
///
/// Results of one check share its section and id, and those of one object its reference
/// (`Arc`s): the distinct checks (a few hundred) and objects (one per object) are ranked once
/// by their strings, and the results sorted by those two numbers. Comparing the strings of
/// every pair of results was most of the sort, on the one thread that renders the report.
fn sort_results(results: &mut [CheckResult]) {
    // Keyed by addresses, which no input chooses: FNV, not SipHash, whose resistance to chosen
    // keys is not needed here and which was a tenth of this thread's instructions.
    use fnv::FnvHashMap as HashMap;
    // (section rank, section, id) of each distinct check, by the addresses its results share.
    let mut check_of: HashMap<(usize, usize), usize> = HashMap::default();
    let mut checks: Vec<(usize, &str, &str)> = Vec::new();
    let mut object_of: HashMap<usize, usize> = HashMap::default();
    let mut objects: Vec<&ObjectRef> = Vec::new();
    // (check, object, position) of each result: the check's index and the object's (0 for none,
    // as `None` sorted before `Some`; 1 + index for one), replaced by their ranks below. The
    // position last makes every key distinct, so an unstable sort of the keys themselves gives
    // the stable order (ties in input order) in a fraction of a stable sort through an index.
    let mut keys: Vec<(usize, usize, usize)> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = (r.section.as_ptr() as usize, r.id.0.as_ptr() as usize);
            let check = *check_of.entry(at).or_insert_with(|| {
                checks.push((section_rank(&r.section), &r.section, &r.id.0));
                checks.len() - 1
            });
            let object = r.object.as_ref().map_or(0, |o| {
                1 + *object_of.entry(Arc::as_ptr(o) as usize).or_insert_with(|| {
                    objects.push(o);
                    objects.len() - 1
                })
            });
            (check, object, i)
        })
        .collect();
    let check_rank = ranks(&checks);
    let object_rank = ranks(&objects);
    for key in &mut keys {
        key.0 = check_rank[key.0] as usize;
        if key.1 > 0 {
            key.1 = 1 + object_rank[key.1 - 1] as usize;
        }
    }
    keys.sort_unstable();
    let mut order: Vec<usize> = keys.into_iter().map(|(_, _, i)| i).collect();
    // Position k takes the result at order[k]: follow each cycle of the permutation with swaps,
    // marking a position done by pointing it at itself.
    for start in 0..order.len() {
        let mut k = start;
        while order[k] != k {
            let next = order[k];
            order[k] = k;
            if next == start {
                break;
            }
            results.swap(k, next);
            k = next;
        }
    }
}

impl Report {
    pub fn new(target: Target, mut results: Vec<CheckResult>) -> Self {
        sort_results(&mut results);
        Self {
            schema_version: SCHEMA_VERSION.into(),
            tool: Tool {
                name: env!("CARGO_PKG_NAME").into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            generated_at: now_rfc3339(),
            target,
            summary: Summary::of(&results),
            results,
            checks: Vec::new(),
            notes: Vec::new(),
            signoffs: Vec::new(),
        }
    }

    /// Why the watch that wrote this checkpoint report could not decide its rollback criteria.
    pub fn watch_undecided(&self) -> Option<&Note> {
        self.notes
            .iter()
            .find(|n| n.kind == NoteKind::WatchUndecided)
    }

    /// The note that makes the report's gate an error whatever its results say: the watch could
    /// not decide a checkpoint, or the run decided nothing.
    ///
    /// `--allow-empty` accepts an empty input and a run that audited or decided nothing: their
    /// notes stay, and the verdict says the audit was narrowed (`narrowed`).
    pub fn undecided(&self) -> Option<&Note> {
        self.notes.iter().find(|n| match n.kind {
            NoteKind::WatchUndecided | NoteKind::Unrendered => true,
            NoteKind::NothingDecided | NoteKind::EmptyInput | NoteKind::NothingAudited => {
                !self.target.allow_empty
            }
            _ => false,
        })
    }

    /// Counts the summary again from the results, and each fleet cluster's from its own: after
    /// waivers lapse (`report`, `report --merge`), a cluster's line said "0 fail" above its
    /// failure, and the report written then did not read back.
    pub fn recount(&mut self) {
        self.summary = Summary::of(&self.results);
        for m in &mut self.target.fleet {
            m.summary = Summary::of_each(
                self.results
                    .iter()
                    .filter(|r| r.cluster.as_deref() == Some(m.name.as_str())),
            );
        }
    }

    /// What in a saved report does not hold together: another schema version, a `summary` the
    /// results do not give, a check the run lists without any result (every check of a run
    /// gives at least one). A report with results taken out after the run signed and verified
    /// as a pass.
    pub fn inconsistencies(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.schema_version != SCHEMA_VERSION {
            why.push(format!(
                "schemaVersion is {:?}; this mlsdm-audit reads {SCHEMA_VERSION:?}",
                self.schema_version
            ));
        }
        if self.summary != Summary::of(&self.results) {
            why.push("its summary is not what its results count".to_string());
        }
        // Written by a binary of this catalog, every built-in check is listed, or has a result
        // (an optional one not asked for is skipped without being run), or was left out by
        // --only/--skip: results taken out with their checks (or the list deleted) rendered and
        // merged as a pass.
        let same_catalog = self.target.catalog.as_deref() == Some(catalog_digest().as_str());
        let unlisted: Vec<&str> = crate::checks::builtin_files()
            .iter()
            .filter(|_| same_catalog)
            .filter_map(|f| f.name.strip_suffix(".yaml"))
            .filter(|id| {
                !self.target.left_out.iter().any(|l| l == id)
                    && !self.checks.iter().any(|c| c.id == *id)
                    && !self.results.iter().any(|r| r.id.as_str() == *id)
            })
            .collect();
        if !unlisted.is_empty() {
            why.push(format!(
                "{} built-in check(s) are neither in its list of checks nor left out by --only/--skip: {}",
                unlisted.len(),
                unlisted.join(", ")
            ));
        }
        // A run that decided nothing carries the note that makes its gate an error: taken out,
        // the report rendered as a pass. (A watch's reports say it their own way.)
        let said = |k: NoteKind| self.notes.iter().any(|n| n.kind == k);
        if decides_nothing(&self.results, self.target.fail_on)
            && ![
                NoteKind::NothingDecided,
                NoteKind::NothingAudited,
                NoteKind::WatchUndecided,
                NoteKind::NotWatched,
            ]
            .into_iter()
            .any(said)
        {
            why.push(
                "its results decide nothing at the gate, and its nothing-decided note is gone"
                    .to_string(),
            );
        }
        let missing: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !self.results.iter().any(|r| *r.id == *c.id))
            .map(|c| c.id.as_str())
            .collect();
        if !missing.is_empty() {
            why.push(format!(
                "{} check(s) it ran have no result: {}",
                missing.len(),
                missing.join(", ")
            ));
        }
        // A fleet report holds each cluster to the same account: its summary is its results'
        // counts, and an audited cluster has a result for every check of the run. A cluster's
        // failing result taken out (another cluster still had one for that check) verified.
        for m in &self.target.fleet {
            let own = || {
                self.results
                    .iter()
                    .filter(|r| r.cluster.as_deref() == Some(m.name.as_str()))
            };
            if m.summary != Summary::of_each(own()) {
                why.push(format!(
                    "cluster {}'s summary is not what its results count",
                    m.name
                ));
            }
            if m.status == fleet::MemberStatus::Audited {
                let missing: Vec<&str> = self
                    .checks
                    .iter()
                    .filter(|c| c.id != fleet::UNAUDITED_ID && !own().any(|r| *r.id == *c.id))
                    .map(|c| c.id.as_str())
                    .collect();
                if !missing.is_empty() {
                    why.push(format!(
                        "cluster {} has no result for {} check(s) the run lists: {}",
                        m.name,
                        missing.len(),
                        missing.join(", ")
                    ));
                }
            }
        }
        why
    }

    /// How this audit was narrowed from the whole checklist at its default gate, each said in a
    /// few words: checks left out, empty runs accepted, only new failures gating, a gate above
    /// `high`, no Kubernetes objects at all. The verdict says them, and `verify` refuses such a report unless told to accept
    /// it: a signed pass of part of the audit must not read as a pass of the release.
    pub fn narrowed(&self) -> Vec<String> {
        let t = &self.target;
        let mut why = Vec::new();
        if !t.left_out.is_empty() {
            why.push(format!(
                "--only/--skip left out {} check(s)",
                t.left_out.len()
            ));
        }
        if t.allow_empty {
            why.push("--allow-empty".to_string());
        }
        if t.fail_on_new {
            why.push("--fail-on-new: failures already in the baseline do not gate".to_string());
        }
        if self.notes.iter().any(|n| n.kind == NoteKind::OutOfScope) {
            why.push("the workload selector left MLSDM workloads out".to_string());
        }
        if t.fail_on > Severity::High {
            why.push(format!(
                "--fail-on {}: failures below it do not gate",
                t.fail_on
            ));
        }
        // A run with no Kubernetes objects (a service or Prometheus only) decides the service's
        // checks, not the deployment's: a Prometheus-only run signed and verified as a pass of
        // the release with every Kubernetes check skipped (review finding).
        let no_objects = self
            .results
            .iter()
            .filter(|r| {
                matches!(
                    &r.skip_reason,
                    Some(SkipReason::NoSource {
                        source: crate::facts::Source::Kubernetes
                    })
                )
            })
            .count();
        if no_objects > 0 {
            why.push(format!(
                "no Kubernetes objects (no manifests, no cluster): {no_objects} Kubernetes check(s) not evaluated"
            ));
        }
        why
    }

    /// Whether `r` counts for the gate: at or above `fail_on`, and, with `--fail-on-new`, a
    /// failure only when it is new against the baseline. An error always counts: nothing was
    /// decided, so it cannot be known debt (with the baseline narrowing errors too, a check that
    /// a forbidden list or a broken expression turned into an error exited 0).
    pub fn gates(&self, r: &CheckResult) -> bool {
        r.severity >= self.target.fail_on
            && (r.status != Status::Fail
                || !self.target.fail_on_new
                || r.change == Some(Change::New))
    }

    /// The CI gate: 1 if a failure at or above `fail_on` (new, with `--fail-on-new`), else 3 if
    /// an error at or above it (or the run decided nothing, or the watch that wrote it could not
    /// decide), else 0.
    pub fn exit_code(&self) -> i32 {
        let gated = |status: Status| {
            self.results
                .iter()
                .any(|r| r.status == status && self.gates(r))
        };
        if gated(Status::Fail) {
            1
        } else if gated(Status::Error) || self.undecided().is_some() {
            3
        } else {
            0
        }
    }
}

/// Now, or `SOURCE_DATE_EPOCH` when set (reproducible reports and tests).
pub fn now_rfc3339() -> String {
    let dt = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now);
    dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What a run audited (the report's `target.mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Manifest files, or what kustomize or Helm rendered: a release not deployed yet.
    #[default]
    Manifests,
    /// The live cluster (and its service and metrics through it).
    Cluster,
    /// Only the service (`--no-cluster --endpoint`, `--prometheus`).
    Service,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Manifests => "manifests",
            Self::Cluster => "cluster",
            Self::Service => "service",
        })
    }
}

/// Output formats of `check` and `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// The production checklist, filled in.
    Markdown,
    /// One self-contained page.
    Html,
    /// JUnit XML for CI systems.
    Junit,
    /// SARIF 2.1.0 for code-scanning UIs.
    Sarif,
    /// GitLab Code Quality (CodeClimate issues JSON).
    Codeclimate,
}

/// The first `n` characters of `s`, never splitting one (report strings come from input:
/// a signoff's time or key may hold any text).
pub fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

impl Format {
    /// The format a file's extension names, if any.
    pub fn from_extension(path: &std::path::Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let ext = name.rsplit('.').next()?;
        Some(match ext {
            _ if name.ends_with(".sarif.json") => Self::Sarif,
            "json" => Self::Json,
            "md" | "markdown" => Self::Markdown,
            "html" | "htm" => Self::Html,
            "xml" => Self::Junit,
            "sarif" => Self::Sarif,
            "txt" => Self::Table,
            _ => return None,
        })
    }

    /// `-o` and `--output-file` together: the asked format, else the file's extension's, else
    /// the table; a file whose extension names another format than `-o` is refused (a table in
    /// `report.json` breaks the next tool in the pipeline). A JSON format (SARIF, GitLab's Code
    /// Quality) in a `.json` file is JSON where JSON is expected: no conflict.
    pub fn resolve(asked: Option<Self>, file: Option<&std::path::Path>) -> Result<Self, String> {
        let implied = file.and_then(Self::from_extension);
        match (asked, implied) {
            (Some(Self::Sarif | Self::Codeclimate), Some(Self::Json)) => {
                Ok(asked.unwrap_or(Self::Json))
            }
            (Some(a), Some(i)) if a != i => Err(format!(
                "-o {} conflicts with --output-file {}, whose extension means {}",
                a.name(),
                file.map(|f| f.display().to_string()).unwrap_or_default(),
                i.name()
            )),
            (Some(a), _) => Ok(a),
            (None, Some(i)) => Ok(i),
            (None, None) => Ok(Self::Table),
        }
    }

    /// Every format's `-o` name: tests that must cover every output iterate this, so a new
    /// format is covered by them the day it is added.
    pub fn names() -> impl Iterator<Item = &'static str> {
        <Self as clap::ValueEnum>::value_variants()
            .iter()
            .map(|f| f.name())
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Json => "json",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Junit => "junit",
            Self::Sarif => "sarif",
            Self::Codeclimate => "codeclimate",
        }
    }
}

/// The score: passed results as a share of those the audit decided (pass, fail, error, waived),
/// rounded down so that a run with a failure never shows 100%.
pub fn score(report: &Report) -> Option<(usize, usize, usize)> {
    let s = &report.summary;
    let decided = s.pass + s.fail + s.error + s.waived;
    (decided > 0).then(|| (s.pass * 100 / decided, s.pass, decided))
}

/// One line: the gate's verdict at `--fail-on`, from the same rule as the exit code.
pub fn verdict(report: &Report) -> String {
    let at = report.target.fail_on;
    let gated = |st: Status| {
        report
            .results
            .iter()
            .filter(|r| r.status == st && report.gates(r))
            .count()
    };
    let scope = if report.target.fail_on_new {
        " (new against the baseline)"
    } else {
        ""
    };
    let line = match report.exit_code() {
        1 => format!(
            "FAIL: {} failure(s) at or above {at}{scope}",
            gated(Status::Fail)
        ),
        3 if gated(Status::Error) == 0
            && let Some(n) = report.undecided() =>
        {
            // A note can quote the input (a file name): printable, as every note is shown.
            let message = printable(&n.message, true);
            if n.kind == NoteKind::WatchUndecided {
                format!("ERROR: the watch could not decide: {message}")
            } else {
                format!("ERROR: {message}")
            }
        }
        3 => format!(
            "ERROR: {} check(s) at or above {at} could not be evaluated",
            gated(Status::Error)
        ),
        _ => {
            // With --fail-on-new, failures at or above the gate that were already in the baseline
            // are not "below" it: they are counted, and said, apart.
            let fails = report.results.iter().filter(|r| r.status == Status::Fail);
            let (above, below): (Vec<_>, Vec<_>) = fails.partition(|r| r.severity >= at);
            let mut counts = Vec::new();
            if !above.is_empty() {
                counts.push(format!("{} failure(s) in the baseline", above.len()));
            }
            if !below.is_empty() {
                counts.push(format!("{} failure(s) below", below.len()));
            }
            // A waived failure at the gate is a failure someone decided to ship: the verdict
            // says how many, and how many the audited objects waived themselves (annotations).
            let waived: Vec<&CheckResult> = report
                .results
                .iter()
                .filter(|r| r.status == Status::Waived && r.severity >= at)
                .collect();
            if !waived.is_empty() {
                let by_annotation = waived
                    .iter()
                    .filter(|r| {
                        r.waiver
                            .as_ref()
                            .is_some_and(|w| w.origin.contains("annotation "))
                    })
                    .count();
                counts.push(if by_annotation == 0 {
                    format!("{} failure(s) waived", waived.len())
                } else {
                    format!(
                        "{} failure(s) waived, {by_annotation} by annotations on the audited objects",
                        waived.len()
                    )
                });
            }
            let narrowed = report.narrowed();
            let narrowed = if narrowed.is_empty() {
                String::new()
            } else {
                format!(" [a narrowed audit: {}]", narrowed.join("; "))
            };
            if counts.is_empty() {
                format!("PASS: nothing failed at or above {at}{scope}{narrowed}")
            } else {
                format!(
                    "PASS: nothing failed at or above {at}{scope} ({}){narrowed}",
                    counts.join(", ")
                )
            }
        }
    };
    // No-data never gates, but a verdict must not read as if everything was decided.
    match gated(Status::NoData) {
        0 => line,
        n => format!("{line}; {n} result(s) at or above {at} undecided (no-data)"),
    }
}

/// Against `--baseline`: failures that are new, failures that were fixed, and failures that
/// were there before and still are. `None` when the run had no baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trend {
    pub new: usize,
    pub fixed: usize,
    pub still_failing: usize,
}

impl Trend {
    /// One line, the same in every format.
    pub fn line(self) -> String {
        format!(
            "against the baseline: {} new failure(s), {} fixed, {} still failing",
            self.new, self.fixed, self.still_failing
        )
    }
}

pub fn trend(report: &Report) -> Option<Trend> {
    if report.results.iter().all(|r| r.change.is_none()) {
        return None;
    }
    let count = |want: Change, failing: bool| {
        report
            .results
            .iter()
            .filter(|r| r.change == Some(want) && (r.status == Status::Fail) == failing)
            .count()
    };
    Some(Trend {
        new: count(Change::New, true),
        fixed: count(Change::Fixed, false),
        still_failing: count(Change::Unchanged, true),
    })
}

/// The mark a failing result carries against the baseline (` (new)`), empty otherwise.
pub fn change_mark(r: &CheckResult) -> &'static str {
    match (r.status, r.change) {
        (Status::Fail, Some(Change::New)) => " (new)",
        (Status::Fail, Some(Change::Unchanged)) => " (in the baseline)",
        _ => "",
    }
}

/// Renders a report; `color` only affects the table, which gets its default view (a summary
/// and the failures, 100 columns wide).
pub fn render(report: &Report, format: Format, color: bool) -> String {
    render_view(
        report,
        format,
        table::View {
            color,
            ..table::View::default()
        },
    )
}

/// Renders a report; `view` lays out the table (the other formats ignore it).
pub fn render_view(report: &Report, format: Format, view: table::View) -> String {
    match format {
        Format::Table => table::render(report, view),
        Format::Json => json::render(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
        Format::Junit => junit::render(report),
        Format::Sarif => sarif::render(report),
        Format::Codeclimate => codeclimate::render(report),
    }
}

/// Text that came from the audited input (names, messages, notes, reviewers' names), as a
/// terminal, a log or a Markdown viewer will show it: control characters (ESC, CR, BS, DEL),
/// C1 controls, bidi overrides, invisible format characters and the two non-characters XML
/// refuses are written as escapes (`\u{1b}`), so no input can move the cursor, clear the
/// screen over a failure, reorder a line, or end an XML document. Newlines stay unless
/// `one_line`, where they are written `\n`: a note or a name is one line, and a forged line
/// could start a CI workflow command (`::add-mask::`).
pub fn printable(s: &str, one_line: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| match c {
        '\n' => one_line,
        '\t' => false,
        c if c.is_control() => true,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{FFFE}'
        | '\u{FFFF}' => true,
        _ => false,
    };
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl Report {
    /// The report with every registered secret masked (`redact::model`), one result at a time:
    /// the whole report as one JSON tree would be several times its size (hundreds of MB at
    /// 5,000 objects) when any secret is registered. Here, not in `redact`, which sits below the
    /// report in the layers (tests/layers.rs).
    #[must_use]
    pub fn redacted(mut self) -> Self {
        // Nothing registered: each result would be handed back as it is, one lock each (70,118
        // at 5,000 objects, on the thread the report waits for).
        if crate::redact::nothing_registered() {
            return self;
        }
        let results = std::mem::take(&mut self.results);
        let mut report = crate::redact::model(self);
        // Collected in place: same element type, so the vector's allocation is reused.
        report.results = results.into_iter().map(crate::redact::model).collect();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_digest_is_the_hash_of_the_files_lines() {
        let mut lines = String::new();
        for f in crate::checks::builtin_files() {
            assert_eq!(
                f.sha256,
                crate::checks::sha256_hex(f.text.as_bytes()),
                "{}",
                f.name
            );
            lines.push_str(f.name);
            lines.push(' ');
            lines.push_str(f.sha256);
            lines.push('\n');
        }
        assert_eq!(
            catalog_digest(),
            crate::checks::sha256_hex(lines.as_bytes())
        );
    }

    #[test]
    fn the_section_order_from_build_rs_is_the_seeds() {
        assert_eq!(SEED_SECTIONS, crate::seed::sections());
    }

    /// The sort by ranked checks and objects gives the order of the plain comparison of the
    /// strings, ties in input order: results sharing their check's and object's `Arc`s, equal
    /// ones in distinct `Arc`s, results without an object, sections the seed does not have.
    #[test]
    fn results_sort_as_their_strings_compare() {
        let sections: Vec<Arc<str>> = ["Zeta", "Pre-Deployment", "Alpha", "Pre-Deployment"]
            .into_iter()
            .map(Arc::from)
            .collect();
        let ids: Vec<CheckId> = ["b", "a", "c", "a"]
            .into_iter()
            .map(CheckId::from)
            .collect();
        let objects: Vec<Option<Arc<ObjectRef>>> = [
            None,
            Some(("Service", Some("ns"), "x")),
            Some(("Deployment", Some("ns"), "x")),
            Some(("Deployment", None, "x")),
            Some(("Deployment", Some("ns"), "x")),
        ]
        .into_iter()
        .map(|o| {
            o.map(|(kind, namespace, name)| {
                Arc::new(ObjectRef {
                    kind: kind.into(),
                    namespace: namespace.map(Into::into),
                    name: name.into(),
                })
            })
        })
        .collect();
        let mut results = Vec::new();
        for i in 0..200_usize {
            let mut r = CheckResult::new(
                ids[(i * 7) % ids.len()].clone(),
                crate::facts::Source::Kubernetes,
                Status::Pass,
                i.to_string(),
            );
            r.section = sections[(i * 3) % sections.len()].clone();
            r.object = objects[(i * 11) % objects.len()].clone();
            results.push(r);
        }
        let mut expected = results.clone();
        expected.sort_by(|x, y| {
            (section_rank(&x.section), &x.section, &x.id, &x.object).cmp(&(
                section_rank(&y.section),
                &y.section,
                &y.id,
                &y.object,
            ))
        });
        sort_results(&mut results);
        let order = |r: &[CheckResult]| r.iter().map(|r| r.message.to_string()).collect::<Vec<_>>();
        assert_eq!(order(&results), order(&expected));
    }
}
