//! MLSDM 1.2.0's value rules, in one table.
//!
//! Upstream: `src/mlsdm/utils/config_schema.py` (pydantic v2 `SystemConfig`, lax mode: numeric
//! strings and bools coerce to numbers, `extra="forbid"` on the top level only, sub-sections
//! ignore unknown keys), `src/mlsdm/utils/config_loader.py` (`load_config`: YAML `or {}`, the
//! `MLSDM_*` merge and `_parse_env_value`), and the constructors `api/app.py:121-130` runs on the
//! validated dump: `core/memory_manager.py:128-160` -> `memory/multi_level_memory.py:281-296`
//! (decay rates must be > 0, which the schema's `ge=0` lets through), `cognition/moral_filter.py`,
//! `rhythm/cognitive_rhythm.py` (both implied by the schema's bounds).
//! Any rule broken here makes uvicorn exit with "Application startup failed".

use serde_json::Value;

/// The type and bounds of one field, as pydantic coerces and checks it.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// A nested model: must be a mapping (a YAML `section:` with nothing under it is null: refused).
    Section,
    /// `int` with `ge`/`le`.
    Int(i64, i64),
    /// `float` with `ge` (or `gt` when the bool is true) and an optional `le`.
    Float(f64, bool, Option<f64>),
    Bool,
    /// `str`, one of the values (`lowercase`: compared lowercased), optionally `| None`.
    Enum(&'static [&'static str], bool, bool),
    /// `str | None`.
    OptStr,
    /// `list[list[float]]`, non-empty, all rows the same length.
    Vectors,
    /// `list[str] | None`.
    OptStrList,
    /// `dict[str, bool]`.
    BoolMap,
}

/// (field path, kind, upstream source lines).
pub(super) const FIELD_RULES: &[(&str, Kind, &str)] = &[
    ("dimension", Kind::Int(2, 4096), "config_schema.py:426-431"),
    ("strict_mode", Kind::Bool, "config_schema.py:466-469"),
    (
        "drift_logging",
        Kind::Enum(&["silent", "verbose"], false, true),
        "config_schema.py:478-499",
    ),
    (
        "multi_level_memory",
        Kind::Section,
        "config_schema.py:432-435",
    ),
    (
        "multi_level_memory.lambda_l1",
        Kind::Float(0.0, true, Some(1.0)),
        "config_schema.py:24-29, multi_level_memory.py:283",
    ),
    (
        "multi_level_memory.lambda_l2",
        Kind::Float(0.0, true, Some(1.0)),
        "config_schema.py:30-35, multi_level_memory.py:285",
    ),
    (
        "multi_level_memory.lambda_l3",
        Kind::Float(0.0, true, Some(1.0)),
        "config_schema.py:36-41, multi_level_memory.py:287",
    ),
    (
        "multi_level_memory.theta_l1",
        // The schema takes 0 (`ge=0`); MultiLevelSynapticMemory does not ("theta_l1 must be
        // positive"), and MLSDM does not start.
        Kind::Float(0.0, true, None),
        "config_schema.py:42-44, multi_level_memory.py (if _theta_l1 <= 0)",
    ),
    (
        "multi_level_memory.theta_l2",
        Kind::Float(0.0, false, None),
        "config_schema.py:45-47",
    ),
    (
        "multi_level_memory.gating12",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:48-50",
    ),
    (
        "multi_level_memory.gating23",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:51-53",
    ),
    ("moral_filter", Kind::Section, "config_schema.py:436-439"),
    (
        "moral_filter.threshold",
        Kind::Float(0.1, false, Some(0.9)),
        "config_schema.py:85-90",
    ),
    (
        "moral_filter.adapt_rate",
        Kind::Float(0.0, false, Some(0.5)),
        "config_schema.py:91-96",
    ),
    (
        "moral_filter.min_threshold",
        Kind::Float(0.1, false, Some(0.9)),
        "config_schema.py:97-99",
    ),
    (
        "moral_filter.max_threshold",
        Kind::Float(0.1, false, Some(0.99)),
        "config_schema.py:100-102",
    ),
    (
        "ontology_matcher",
        Kind::Section,
        "config_schema.py:440-442",
    ),
    (
        "ontology_matcher.ontology_vectors",
        Kind::Vectors,
        "config_schema.py:126-145",
    ),
    (
        "ontology_matcher.ontology_labels",
        Kind::OptStrList,
        "config_schema.py:130-132",
    ),
    (
        "cognitive_rhythm",
        Kind::Section,
        "config_schema.py:443-446",
    ),
    (
        "cognitive_rhythm.wake_duration",
        Kind::Int(1, 100),
        "config_schema.py:189-191",
    ),
    (
        "cognitive_rhythm.sleep_duration",
        Kind::Int(1, 100),
        "config_schema.py:192-194",
    ),
    ("aphasia", Kind::Section, "config_schema.py:447-450"),
    ("aphasia.detect_enabled", Kind::Bool, "config_schema.py:224"),
    (
        "aphasia.repair_enabled",
        Kind::Bool,
        "config_schema.py:225-227",
    ),
    (
        "aphasia.severity_threshold",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:228-238",
    ),
    ("neurolang", Kind::Section, "config_schema.py:451-453"),
    (
        "neurolang.mode",
        Kind::Enum(&["disabled", "eager_train", "lazy_train"], false, false),
        "config_schema.py:248-266",
    ),
    (
        "neurolang.checkpoint_path",
        Kind::OptStr,
        "config_schema.py:252-254",
    ),
    ("neuro_hybrid", Kind::Section, "config_schema.py:454-457"),
    (
        "neuro_hybrid.enable_hybrid",
        Kind::Bool,
        "config_schema.py:165-168",
    ),
    (
        "neuro_hybrid.enable_learning",
        Kind::Bool,
        "config_schema.py:169-172",
    ),
    (
        "neuro_hybrid.enable_regime",
        Kind::Bool,
        "config_schema.py:173-176",
    ),
    (
        "neuro_hybrid.module_overrides",
        Kind::BoolMap,
        "config_schema.py:177-180",
    ),
    ("pelm", Kind::Section, "config_schema.py:458-461"),
    (
        "pelm.capacity",
        Kind::Int(100, 1_000_000),
        "config_schema.py:276-281",
    ),
    (
        "pelm.phase_tolerance",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:282-287",
    ),
    (
        "synergy_experience",
        Kind::Section,
        "config_schema.py:462-465",
    ),
    (
        "synergy_experience.epsilon",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:309-314",
    ),
    (
        "synergy_experience.neutral_tolerance",
        Kind::Float(0.0, false, Some(0.5)),
        "config_schema.py:315-320",
    ),
    (
        "synergy_experience.min_trials_for_confidence",
        Kind::Int(1, 100),
        "config_schema.py:321-323",
    ),
    (
        "synergy_experience.ema_alpha",
        Kind::Float(0.0, false, Some(1.0)),
        "config_schema.py:324-329",
    ),
    (
        "cognitive_controller",
        Kind::Section,
        "config_schema.py:470-473",
    ),
    (
        "cognitive_controller.auto_recovery_enabled",
        Kind::Bool,
        "config_schema.py:356-358",
    ),
    (
        "cognitive_controller.auto_recovery_cooldown_seconds",
        Kind::Float(0.0, false, Some(3600.0)),
        "config_schema.py:359-364",
    ),
    ("api", Kind::Section, "config_schema.py:474-477"),
    (
        "api.request_timeout_seconds",
        Kind::Float(0.1, false, Some(600.0)),
        "config_schema.py:403-408",
    ),
    (
        "api.max_concurrent_requests",
        Kind::Int(1, 10000),
        "config_schema.py:409-411",
    ),
    (
        "api.queue_timeout_seconds",
        Kind::Float(0.0, false, Some(60.0)),
        "config_schema.py:412-414",
    ),
    ("api.priority", Kind::Section, "config_schema.py:415-417"),
    ("api.priority.enabled", Kind::Bool, "config_schema.py:373"),
    (
        "api.priority.default_priority",
        Kind::Enum(&["high", "low", "normal"], true, false),
        "config_schema.py:374-394",
    ),
    (
        "api.priority.high_weight",
        Kind::Int(1, 10),
        "config_schema.py:377-379",
    ),
    (
        "api.priority.normal_weight",
        Kind::Int(1, 10),
        "config_schema.py:380-382",
    ),
    (
        "api.priority.low_weight",
        Kind::Int(1, 10),
        "config_schema.py:383",
    ),
];

/// Cross-field rules: (fields, with their defaults when absent; upstream lines; the rule, given
/// the fields' values in order: `Some(why)` when broken). Each runs only when its fields passed
/// their own rules, as pydantic's `mode="after"` validators do.
pub(super) type CrossRule = (
    &'static [(&'static str, f64)],
    &'static str,
    fn(&[f64]) -> Option<String>,
);
pub(super) const CROSS_RULES: &[CrossRule] = &[
    (
        &[
            ("multi_level_memory.lambda_l1", 0.5),
            ("multi_level_memory.lambda_l2", 0.1),
            ("multi_level_memory.lambda_l3", 0.01),
        ],
        "config_schema.py:55-64",
        |v| {
            (!(v[2] <= v[1] && v[1] <= v[0])).then(|| {
                format!(
                    "decay rates must follow lambda_l3 ({}) <= lambda_l2 ({}) <= lambda_l1 ({})",
                    v[2], v[1], v[0]
                )
            })
        },
    ),
    (
        &[
            ("multi_level_memory.theta_l1", 1.0),
            ("multi_level_memory.theta_l2", 2.0),
        ],
        "config_schema.py:66-75",
        |v| (v[1] <= v[0]).then(|| format!("theta_l2 ({}) must be > theta_l1 ({})", v[1], v[0])),
    ),
    (
        &[
            ("moral_filter.min_threshold", 0.3),
            ("moral_filter.max_threshold", 0.9),
        ],
        "config_schema.py:111-112",
        |v| {
            (v[0] >= v[1]).then(|| {
                format!(
                    "moral_filter.min_threshold ({}) must be < max_threshold ({})",
                    v[0], v[1]
                )
            })
        },
    ),
    (
        &[
            ("moral_filter.min_threshold", 0.3),
            ("moral_filter.max_threshold", 0.9),
            ("moral_filter.threshold", 0.5),
        ],
        "config_schema.py:114-118",
        |v| {
            if v[0] >= v[1] {
                None // reported by the rule above, which pydantic raises first
            } else if v[2] < v[0] {
                Some(format!(
                    "moral_filter.threshold ({}) must be >= min_threshold ({})",
                    v[2], v[0]
                ))
            } else if v[2] > v[1] {
                Some(format!(
                    "moral_filter.threshold ({}) must be <= max_threshold ({})",
                    v[2], v[1]
                ))
            } else {
                None
            }
        },
    ),
];
// Two more cross-field rules need lists, so they are in `validate_config`: the number of
// `ontology_labels` must equal the number of `ontology_vectors` (config_schema.py:147-159), and
// the ontology vectors' length must equal `dimension` (config_schema.py:501-517): the default
// ontology is two 384-long vectors (config_schema.py:126-129), so any other dimension needs its
// own `ontology_matcher.ontology_vectors`.
pub(super) const DEFAULT_DIMENSION: i64 = 384;
pub(super) const DEFAULT_ONTOLOGY_DIMENSION: usize = 384;

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}
