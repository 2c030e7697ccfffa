//! The check file exactly as written (the YAML model, with its JSON Schema). Closed: an unknown
//! key is an error. `compile.rs` turns it into a `Check`.

use super::{Severity, requirements};
use crate::facts::Source;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::fmt;

/// A string of a check file (an expression, a query) and where it starts, for errors that point
/// into the expression and for the line a result cites.
///
/// Read from YAML through serde-saphyr's `Spanned`, which knows the position. The built-in
/// catalog is also read from the constant tree `build.rs` writes for it (no YAML is parsed at run time:
/// issue 12, target 4); there the position travels with the value, as
/// `{"value": ..., "line": ..., "column": ...}`. `Spanned` hands such a map to the inner type
/// with an unknown location (its documented behaviour outside serde-saphyr), so each form is
/// taken only where it belongs: a map in a YAML check file is refused as before (a string is
/// expected), and a plain string without a position is refused in the built-in tree.
#[derive(Clone, PartialEq, Eq)]
pub struct Located {
    pub value: String,
    /// 1-based, as serde-saphyr counts.
    pub line: u64,
    /// 1-based, in characters.
    pub column: u64,
}

impl fmt::Debug for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}:{}", self.value, self.line, self.column)
    }
}

/// As the string alone, as `Spanned` serializes: the JSON Schema's defaults are serialized
/// values (`"default": null` for an absent `forEach`).
impl Serialize for Located {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

std::thread_local! {
    /// Whether this thread is reading the built-in catalog's tree ([`read_placed`]).
    static PLACED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `read` (a reading of the built-in catalog's tree) with [`Located`] read straight from its
/// `{"value", "line", "column"}` map: through `Spanned`, which hands the map over with an unknown
/// location, each was a third of reading the catalog (a fifth of a one-file audit). A plain
/// string is refused there as before.
pub fn read_placed<T>(read: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            PLACED.set(false);
        }
    }
    PLACED.set(true);
    let _reset = Reset;
    read()
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if PLACED.get() {
            /// The catalog JSON's form of a [`Located`].
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Placed {
                value: String,
                line: u64,
                column: u64,
            }
            let Placed {
                value,
                line,
                column,
            } = Placed::deserialize(deserializer)?;
            return Ok(Self {
                value,
                line,
                column,
            });
        }
        let spanned = Spanned::<LocatedRepr>::deserialize(deserializer)?;
        // Where the value is used, else where it is written (serde-saphyr gives both in YAML).
        let at = if spanned.referenced.line() != 0 {
            spanned.referenced
        } else {
            spanned.defined
        };
        let known = at.line() != 0;
        match spanned.value {
            LocatedRepr::Plain(value) if known => Ok(Self {
                value,
                line: at.line(),
                column: at.column(),
            }),
            LocatedRepr::Placed(located) if !known => Ok(located),
            _ => Err(serde::de::Error::custom(
                "expected a string (or, in the built-in catalog's tree, a string with its position)",
            )),
        }
    }
}

/// What [`Located`] reads inside `Spanned`: a string (YAML), or a string with its position (the
/// built-in catalog's tree).
enum LocatedRepr {
    Plain(String),
    Placed(Located),
}

impl<'de> Deserialize<'de> for LocatedRepr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = LocatedRepr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                // As `String` says: a YAML check file sees this message.
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LocatedRepr, E> {
                Ok(LocatedRepr::Plain(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<LocatedRepr, E> {
                Ok(LocatedRepr::Plain(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<LocatedRepr, A::Error> {
                let (mut value, mut line, mut column) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "value" => value = Some(map.next_value()?),
                        "line" => line = Some(map.next_value()?),
                        "column" => column = Some(map.next_value()?),
                        other => {
                            return Err(serde::de::Error::unknown_field(
                                other,
                                &["value", "line", "column"],
                            ));
                        }
                    }
                }
                let missing = serde::de::Error::missing_field;
                Ok(LocatedRepr::Placed(Located {
                    value: value.ok_or_else(|| missing("value"))?,
                    line: line.ok_or_else(|| missing("line"))?,
                    column: column.ok_or_else(|| missing("column"))?,
                }))
            }
        }
        // `deserialize_string`, as `String` asks: a YAML scalar is read as text whatever it
        // spells (`true`, `1`). Serde's map deserializer, which `Spanned` hands the JSON form
        // to, answers any request with the map.
        deserializer.deserialize_string(Visitor)
    }
}

/// One check file, exactly as written. Fields are closed: an unknown key is an error.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "mlsdm-audit check definition")]
pub struct CheckFile {
    /// Stable kebab-case id; must equal the file name without `.yaml`.
    pub id: String,
    /// One line saying what passing means.
    pub title: String,
    /// Where the check sits in the production checklist, `Part / Section / Sub-section`.
    pub section: String,
    /// The checklist lines this check covers, verbatim.
    #[serde(default)]
    pub checklist: Vec<String>,
    pub severity: Severity,
    pub source: Source,
    /// Which objects a `kubernetes` check applies to.
    #[serde(rename = "match", default)]
    pub match_: Option<MatchSpec>,
    /// CEL expression yielding a list; validations run once per element, bound to `item`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub for_each: Option<Located>,
    /// What each element of `forEach` is (a container, a data key) and its name: failing
    /// elements are reported by it, and a waiver's `container:` matches on it.
    #[serde(default)]
    pub item: Option<super::item::ItemSpec>,
    /// Conditions under which the check applies; when one is false the result is `skipped`
    /// with its reason (for checklist lines such as "if required").
    #[serde(default)]
    pub when: Vec<Condition>,
    /// CEL expressions that must all be true for the check to pass.
    #[serde(default)]
    pub validations: Vec<Validation>,
    /// The request an `http` check sends to the MLSDM service.
    #[serde(default)]
    pub request: Option<HttpRequest>,
    /// The PromQL query of a `metrics` check.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub query: Option<Located>,
    /// How long a `metrics` condition must hold, e.g. `5m`.
    #[serde(default, rename = "for")]
    pub for_window: Option<String>,
    /// What a `metrics` query that returns no series means: `no-data` (the default: nothing was
    /// measured, so nothing is decided) or `evaluate` (the validations decide on the empty
    /// result, for checks whose evidence is an absence: `size(series) == 0` for "no alert is
    /// firing").
    #[serde(default)]
    pub when_empty: Option<WhenEmpty>,
    /// The optional or conditional checklist item this check covers: the check is `skipped`
    /// unless the team declares it (`requirements:` in .mlsdm-audit.yaml, or `--require`).
    #[serde(default)]
    pub requires: Option<requirements::Requirement>,
    /// Where the evidence may live outside the cluster's objects (a central Alertmanager, Grafana,
    /// a vault) and which objects show it lives in the cluster: a failure is `no-data` saying so
    /// and how to attest it only when none of those objects is in the audited scope.
    #[serde(default)]
    pub external_evidence: Option<requirements::ExternalEvidence>,
    /// What to change to make the check pass. Optional for a team's own checks (a three-line
    /// check is still a check); the built-in catalog's test requires it.
    #[serde(default)]
    pub remediation: String,
    /// Why it matters (optional, like `remediation`).
    #[serde(default)]
    pub doc: String,
}

#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchSpec {
    /// `Kind`, `version/Kind` (core group) or `group/version/Kind`; CRDs included.
    pub kinds: Vec<String>,
    /// Restrict to these namespaces (default: all audited namespaces).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Validation {
    /// A CEL expression that must evaluate to `true`.
    #[schemars(with = "String")]
    pub expression: Located,
    /// Message when the expression is false.
    #[serde(default)]
    pub message: Option<String>,
    /// CEL expression building the message when the expression is false.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub message_expression: Option<Located>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    /// A CEL expression; when false the check is `skipped` for this object.
    #[schemars(with = "String")]
    pub expression: Located,
    /// Why the check does not apply when the condition is false.
    pub reason: String,
}

// The flags are a check file's independent YAML switches (`authenticated: true`), not states
// of one machine: an enum per flag would only rename `true`.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Deserialize, Serialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRequest {
    pub path: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Send the API key from `--api-key-env` as a bearer token.
    #[serde(default)]
    pub authenticated: bool,
    /// Runs only with `--active`: the probe sends more than a handful of requests or does real work.
    #[serde(default)]
    pub active: bool,
    /// Send the request this many times in a burst; validations see `responses` (a list).
    #[schemars(range(min = 1, max = 1_000))]
    #[serde(default)]
    pub repeat: Option<u32>,
    /// A bounded load probe; validations see `load` (`requests`, `rps`, `p50Ms`, `p95Ms`, `errors`).
    #[serde(default)]
    pub load: Option<LoadSpec>,
    /// Probe every pod (through the API server's pod proxy) instead of the Service.
    #[serde(default)]
    pub per_pod: bool,
    /// Send the request again while its answer says it was refused for a passing reason (such as
    /// MLSDM's adaptive moral filter); validations see the last answer as `response` and every
    /// attempt in `responses`.
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// The route may be turned off (FastAPI's `/openapi.json`): a 404 or 405 is an answer the
    /// validations judge. Otherwise such an answer means the endpoint does not serve the route
    /// at all (an `--endpoint` with a wrong path prefix, another service), nothing was measured,
    /// and the check is an error whatever its validations would say of it.
    #[serde(default)]
    pub may_be_absent: bool,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetrySpec {
    /// Requests in all, the first included (2 to 5).
    pub attempts: u32,
    /// Send another attempt while the answer is a 200 whose JSON has every one of these values
    /// (JSON pointer, e.g. `/accepted`, to the value it must equal).
    pub while_json: std::collections::BTreeMap<String, serde_json::Value>,
    /// The body of the later attempts (default: the first attempt's).
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadSpec {
    /// Total requests to send (bounded by `maxSeconds`).
    #[schemars(range(min = 1, max = 100_000))]
    pub requests: u32,
    /// Requests in flight at once.
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: u32,
    /// Hard stop for the probe.
    #[schemars(range(min = 1, max = 600))]
    pub max_seconds: u32,
}

/// The most a check may ask of the service: a burst, and a load probe's size, rate and length.
/// A check file is input: without these a typo (`concurrency: 4000000000`) would spawn tasks
/// until memory ran out, or keep the probe (and the service) busy for days.
pub const MAX_REPEAT: u32 = 1_000;
pub const MAX_LOAD_REQUESTS: u32 = 100_000;
pub const MAX_LOAD_CONCURRENCY: u32 = 256;
pub const MAX_LOAD_SECONDS: u32 = 600;

impl HttpRequest {
    /// Why the burst or the load this request asks for is out of bounds, if it is.
    pub(super) fn out_of_bounds(&self) -> Option<String> {
        if let Some(n) = self.repeat
            && !(1..=MAX_REPEAT).contains(&n)
        {
            return Some(format!("request.repeat is {n}: give 1 to {MAX_REPEAT}"));
        }
        let load = self.load.as_ref()?;
        [
            ("requests", load.requests, MAX_LOAD_REQUESTS),
            ("concurrency", load.concurrency, MAX_LOAD_CONCURRENCY),
            ("maxSeconds", load.max_seconds, MAX_LOAD_SECONDS),
        ]
        .into_iter()
        .find(|(_, value, max)| !(1..=*max).contains(value))
        .map(|(field, value, max)| format!("request.load.{field} is {value}: give 1 to {max}"))
    }

    /// A plain GET of `path`, for the requests the tool makes itself (scrapes, queries).
    pub fn get(path: &str) -> Self {
        Self {
            path: path.into(),
            method: default_method(),
            headers: std::collections::BTreeMap::new(),
            body: None,
            authenticated: false,
            active: false,
            repeat: None,
            load: None,
            per_pod: false,
            retry: None,
            may_be_absent: false,
        }
    }
}

fn default_method() -> String {
    "GET".to_string()
}

/// What an empty query result means for a `metrics` check (`whenEmpty`).
///
/// No-data by default: `series.all(..)` is true of no series, so a check evaluated on an empty
/// result would pass on nothing measured. Deciding on an absence is declared, never guessed
/// from what the expressions mention.
#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WhenEmpty {
    #[default]
    NoData,
    Evaluate,
}
