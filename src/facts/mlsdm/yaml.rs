//! MLSDM's config text as MLSDM reads it: PyYAML's YAML 1.1 plain scalars, where they diverge
//! from this crate's YAML 1.2 parser, and the image's default config.

use serde_json::{Value, json};

/// The image's `config/default_config.yaml` (MLSDM 1.2.0), loaded when `CONFIG_PATH` is unset.
pub(super) const DEFAULT_CONFIG_TEXT: &str = include_str!("default_config.yaml");

/// `yaml.safe_load(f) or {}` (config_loader.py:318-325): an empty or falsy document is `{}`; any
/// other non-mapping makes `SystemConfig(**config)` fail.
/// What PyYAML's `SafeLoader` (YAML 1.1 resolvers, `yaml/resolver.py`) makes of a plain scalar;
/// `None` for what JSON cannot hold (timestamps, infinities, NaN).
pub(super) fn pyyaml_plain(s: &str) -> Option<Value> {
    let digits =
        |t: &str, ok: fn(u8) -> bool| !t.is_empty() && t.bytes().all(|c| c == b'_' || ok(c));
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let plain: String = body.chars().filter(|c| *c != '_').collect();
    let int = |v: Option<i64>| v.map(|v| json!(if neg { -v } else { v }));
    if let Some(b) = body.strip_prefix("0b") {
        return if digits(b, |c| matches!(c, b'0' | b'1')) {
            int(i64::from_str_radix(&plain[2..], 2).ok())
        } else {
            Some(json!(s))
        };
    }
    if let Some(h) = body.strip_prefix("0x") {
        return if digits(h, |c| c.is_ascii_hexdigit()) {
            int(i64::from_str_radix(&plain[2..], 16).ok())
        } else {
            Some(json!(s))
        };
    }
    if body.len() > 1 && body.starts_with('0') && digits(&body[1..], |c| (b'0'..=b'7').contains(&c))
    {
        return int(i64::from_str_radix(&plain[1..], 8).ok());
    }
    if body == "0"
        || (body.starts_with(|c: char| c.is_ascii_digit() && c != '0')
            && digits(body, |c| c.is_ascii_digit()))
    {
        return int(plain.parse().ok());
    }
    // Sexagesimal (`1:30`), timestamps, `.inf` and `.nan`: not modelled.
    if body.contains(':') && body.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if s.len() >= 8 && s.as_bytes()[4] == b'-' && s[..4].bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
        return None;
    }
    // `[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?` or `\.[0-9][0-9_]*([eE][-+][0-9]+)?`
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let float = mantissa.split_once('.').is_some_and(|(a, b)| {
        let a_ok = if a.is_empty() {
            b.starts_with(|c: char| c.is_ascii_digit())
        } else {
            a.starts_with(|c: char| c.is_ascii_digit()) && digits(a, |c| c.is_ascii_digit())
        };
        a_ok && (b.is_empty() || digits(b, |c| c.is_ascii_digit()))
    }) && exponent.is_none_or(|e| {
        e.starts_with(['-', '+']) && e.len() > 1 && e[1..].bytes().all(|c| c.is_ascii_digit())
    });
    if float {
        let v: f64 = plain.parse().ok()?;
        return serde_json::Number::from_f64(if neg { -v } else { v }).map(Value::Number);
    }
    Some(json!(s))
}

/// Whether `event` is a node (a scalar, an alias, or a collection's start): what a mapping
/// takes in turn as a key and as a value. Both YAML walks over events use it (this one and
/// `sources::kubectl_yaml`).
pub(crate) fn is_node(event: &granit_parser::Event) -> bool {
    use granit_parser::Event;
    matches!(
        event,
        Event::Scalar(..) | Event::Alias(_) | Event::MappingStart(..) | Event::SequenceStart(..)
    )
}

/// The first line break of YAML 1.1 that YAML 1.2 does not have (NEL, LINE SEPARATOR,
/// PARAGRAPH SEPARATOR), with its line and name: go-yaml v2 (kubectl) and PyYAML (MLSDM) break
/// the line there, the YAML 1.2 parsers here read a character. Not inside a quoted scalar,
/// where all three keep the character (review finding: a ConfigMap value `"Runbook:<LS>restart"`
/// pasted from a document was refused); a text that does not parse is judged whole.
pub(crate) fn yaml11_line_break(text: &str) -> Option<(u64, &'static str)> {
    let is_break = |c: char| matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}');
    if !text.contains(is_break) {
        return None;
    }
    // Quoted scalars' spans, in characters (what the parser's markers count).
    let mut quoted: Vec<(usize, usize)> = Vec::new();
    for event in granit_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        if let granit_parser::Event::Scalar(
            _,
            granit_parser::ScalarStyle::SingleQuoted | granit_parser::ScalarStyle::DoubleQuoted,
            ..,
        ) = event
        {
            quoted.push((span.start.index(), span.end.index()));
        }
    }
    let (at, c) = text
        .char_indices()
        .enumerate()
        .find(|(n, (_, c))| is_break(*c) && !quoted.iter().any(|(s, e)| (*s..*e).contains(n)))
        .map(|(_, found)| found)?;
    let line = text[..at].bytes().filter(|b| *b == b'\n').count() as u64 + 1;
    let which = match c {
        '\u{85}' => "U+0085 (NEXT LINE)",
        '\u{2028}' => "U+2028 (LINE SEPARATOR)",
        _ => "U+2029 (PARAGRAPH SEPARATOR)",
    };
    Some((line, which))
}

/// Plain scalars that PyYAML (YAML 1.1, what MLSDM loads its config with) and this crate's
/// YAML 1.2 parser read as different values (`y`, `1e3`, `012`, `1:30`, a date...): the config
/// MLSDM validates is then not the one audited, so these make the result undecided (first list).
/// The second list: keys of `neuro_hybrid.module_overrides` that PyYAML reads as something other
/// than a string, which its `dict[str, bool]` refuses (config_schema.py:177-180); the JSON model
/// here turns every key into a string, so they are found on the text. Tags go to the first list
/// when PyYAML builds a value of its own for them and to the second when it has no constructor
/// for them (the YAML parser here ignores tags it does not know: such a file passed).
pub(super) fn yaml11_divergences(text: &str) -> (Vec<String>, Vec<String>) {
    use granit_parser::Event;
    // (is a mapping, the next node is a key, the current key)
    let mut stack: Vec<(bool, bool, Option<String>)> = Vec::new();
    let (mut divergent, mut bad_keys) = (Vec::new(), Vec::new());
    // Merge keys: the keys of each anchored mapping, each open collection's anchor and keys,
    // and the aliases of a `<<: [*a, *b]` sequence being read (its depth, the aliases).
    let mut anchored: std::collections::HashMap<usize, Vec<String>> =
        std::collections::HashMap::new();
    let mut frames: Vec<(usize, Vec<String>)> = Vec::new();
    let mut merging: Option<(usize, Vec<usize>)> = None;
    // PyYAML breaks lines at NEL, LS and PS (YAML 1.1), the parser here does not: a comment
    // ending in one hid a key PyYAML reads (`strict_mode: true # x<LS>capacity: 100000`).
    if let Some((line, which)) = yaml11_line_break(text) {
        divergent.push(format!(
            "line {line}: a {which}: PyYAML (YAML 1.1, which MLSDM uses) reads it as a line break, the parser here (YAML 1.2) as a character; replace it with a newline or a space"
        ));
    }
    for event in granit_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let mut is_key = false;
        if is_node(&event)
            && let Some((true, key_next, key)) = stack.last_mut()
        {
            is_key = *key_next;
            *key_next = !*key_next;
            if is_key {
                *key = None;
            }
        }
        let path = || -> Vec<&str> { stack.iter().filter_map(|(_, _, k)| k.as_deref()).collect() };
        // `neuro_hybrid.module_overrides` through an alias or a merge key: the types PyYAML
        // gives the keys it brings (`on`, `1`) are not read here, and its dict[str, bool]
        // refuses any that is not a string.
        let under_overrides = |p: &[&str]| p.starts_with(&["neuro_hybrid", "module_overrides"]);
        if matches!(event, Event::Alias(_)) && under_overrides(&path()) {
            divergent.push(format!(
                "line {}: neuro_hybrid.module_overrides takes keys through an alias, whose types to PyYAML are not read here; write its keys out",
                span.start.line()
            ));
        }
        match &event {
            Event::Alias(id) => {
                if let Some((depth, ids)) = merging.as_mut()
                    && *depth == stack.len()
                {
                    ids.push(*id);
                }
            }
            Event::SequenceStart(..)
                if stack
                    .last()
                    .is_some_and(|(_, _, k)| k.as_deref() == Some("<<"))
                    && !is_key =>
            {
                merging = Some((stack.len() + 1, Vec::new()));
            }
            _ => {}
        }
        let tag = match &event {
            Event::Scalar(_, _, _, tag)
            | Event::MappingStart(_, _, tag)
            | Event::SequenceStart(_, _, tag) => tag.as_deref(),
            _ => None,
        };
        if let Some(tag) = tag {
            let line = span.start.line();
            match safe_loader_tag(tag) {
                SafeTag::Same => {}
                SafeTag::Constructed(name) => divergent.push(format!(
                    "line {line}: the value tagged !!{name} is built by PyYAML's constructor for that tag, which this audit does not model; write it untagged"
                )),
                SafeTag::Refused(written) => bad_keys.push(format!(
                    "line {line}: PyYAML's safe_load has no constructor for the tag {written}: MLSDM does not start with this config file (a custom or Python tag, even under a key MLSDM ignores)"
                )),
            }
        }
        match event {
            Event::MappingStart(_, anchor, _) => {
                stack.push((true, true, None));
                frames.push((anchor, Vec::new()));
            }
            Event::SequenceStart(..) => {
                stack.push((false, false, None));
                frames.push((0, Vec::new()));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((depth, ids)) = &merging
                    && *depth == stack.len()
                {
                    // PyYAML's flatten_mapping keeps the first mapping's value of a key that
                    // several merged mappings share in one version and the last in another
                    // (6.0.2 against 6.0.4): which one MLSDM validates is not known.
                    let mut seen: Vec<&String> = Vec::new();
                    let mut shared: Vec<&str> = Vec::new();
                    for keys in ids.iter().filter_map(|id| anchored.get(id)) {
                        for k in keys {
                            if seen.contains(&k) {
                                if !shared.contains(&k.as_str()) {
                                    shared.push(k);
                                }
                            } else {
                                seen.push(k);
                            }
                        }
                    }
                    if !shared.is_empty() {
                        divergent.push(format!(
                            "line {}: a merge key's mappings share {}: which one's value PyYAML keeps depends on its version; write the key out",
                            span.start.line(),
                            shared.join(", ")
                        ));
                    }
                    merging = None;
                }
                stack.pop();
                if let Some((anchor, keys)) = frames.pop()
                    && anchor != 0
                {
                    anchored.insert(anchor, keys);
                }
            }
            Event::Scalar(v, style, _, tag) => {
                let plain = style == granit_parser::ScalarStyle::Plain && tag.is_none();
                let theirs = if plain {
                    pyyaml_plain(&v)
                } else {
                    Some(json!(v.as_ref()))
                };
                if plain {
                    let ours =
                        serde_saphyr::from_str::<Value>(&v).unwrap_or_else(|_| json!(v.as_ref()));
                    let same = match (&theirs, &ours) {
                        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
                        (Some(theirs), ours) => theirs == ours,
                        (None, _) => false,
                    };
                    if !same {
                        divergent.push(format!(
                            "line {}: the plain value `{v}` reads differently in YAML 1.1 (PyYAML, which MLSDM uses) and YAML 1.2; quote it or write it unambiguously",
                            span.start.line()
                        ));
                    }
                }
                if is_key {
                    if let Some((_, keys)) = frames.last_mut() {
                        // PyYAML merges every `<<` of a mapping, a later one's values over an
                        // earlier one's; the parser here keeps the first (review finding).
                        if v == "<<" && keys.iter().any(|k| k == "<<") {
                            divergent.push(format!(
                                "line {}: a second merge key (<<) in one mapping: PyYAML lets the later one's values win, this audit reads the first's; merge once, with a list (<<: [*a, *b])",
                                span.start.line()
                            ));
                        }
                        keys.push(v.to_string());
                    }
                    if v == "<<"
                        && style == granit_parser::ScalarStyle::Plain
                        && under_overrides(&path())
                    {
                        divergent.push(format!(
                            "line {}: neuro_hybrid.module_overrides takes keys through a merge key, whose types to PyYAML are not read here; write its keys out",
                            span.start.line()
                        ));
                    }
                    let path: Vec<&str> = stack[..stack.len() - 1]
                        .iter()
                        .filter_map(|(_, _, k)| k.as_deref())
                        .collect();
                    if path == ["neuro_hybrid", "module_overrides"]
                        && !theirs.as_ref().is_some_and(Value::is_string)
                    {
                        bad_keys.push(format!(
                            "neuro_hybrid.module_overrides key `{v}` (line {}) is not a string to PyYAML: must be a mapping of names to booleans (config_schema.py:177-180)",
                            span.start.line()
                        ));
                    }
                    if let Some((_, _, key)) = stack.last_mut() {
                        *key = Some(v.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (divergent, bad_keys)
}

/// What PyYAML's `SafeLoader` does with a tagged node.
enum SafeTag {
    /// A string, a mapping, a sequence: what the untagged node is here too.
    Same,
    /// One of its other constructors (`!!int 0600`, `!!float .inf`, `!!set`...): a value this
    /// audit does not model, so the config is undecided.
    Constructed(String),
    /// No constructor: `safe_load` raises ("could not determine a constructor for the tag"), and
    /// MLSDM does not start. Any tag outside yaml.org's, `!!python/...` included.
    Refused(String),
}

fn safe_loader_tag(tag: &granit_parser::Tag) -> SafeTag {
    const SAME: &[&str] = &["str", "map", "seq"];
    const CONSTRUCTED: &[&str] = &[
        "null",
        "bool",
        "int",
        "float",
        "binary",
        "timestamp",
        "omap",
        "pairs",
        "set",
        "merge",
        "value",
    ];
    // The non-specific tag `!` alone: PyYAML resolves the node as if untagged.
    if matches!((tag.original_handle(), tag.suffix()), ("!", "") | ("", "!")) {
        return SafeTag::Same;
    }
    match tag.suffix_in_namespace("tag:yaml.org,2002:") {
        Some(name) if SAME.contains(&name.as_ref()) => SafeTag::Same,
        Some(name) if CONSTRUCTED.contains(&name.as_ref()) => {
            SafeTag::Constructed(name.into_owned())
        }
        _ => SafeTag::Refused(format!("{}{}", tag.original_handle(), tag.suffix())),
    }
}

/// PyYAML keeps the last of duplicate keys, so the later value is the one MLSDM validates.
/// An error has the place in the text and no file: the caller names the ConfigMap key.
pub(super) fn parse_config_text(text: &str) -> Result<Value, crate::diag::Diagnostic> {
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    match serde_saphyr::from_str_with_options::<Value>(text, options) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(Value::Null | Value::Bool(false)) => Ok(json!({})),
        Ok(Value::String(s)) if s.is_empty() => Ok(json!({})),
        Ok(Value::Array(a)) if a.is_empty() => Ok(json!({})),
        Ok(Value::Number(n)) if n.as_f64() == Some(0.0) => Ok(json!({})),
        Ok(_) => Err(crate::diag::Diagnostic::file("", "not a YAML mapping")),
        Err(e) => Err(crate::diag::Diagnostic::yaml("", &e)),
    }
}

/// What reading one config text gives: its YAML 1.1 divergences and bad override keys
/// ([`yaml11_divergences`]) and the parsed config ([`parse_config_text`]).
pub(super) struct ReadText {
    pub divergent: Vec<String>,
    pub bad_keys: Vec<String>,
    pub parsed: Result<Value, crate::diag::Diagnostic>,
}

/// Config texts read once per run: workloads mount the same config (a chart's ConfigMap per
/// release, the image's own file), and parsing one took about 0.8 M instructions, 10 % of a
/// manifest audit's (issue 12). Keyed by the text itself, so a changed text is read again.
#[derive(Default)]
pub struct ReadTexts(std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<ReadText>>>);

impl ReadTexts {
    pub(super) fn read(&self, text: &str) -> std::sync::Arc<ReadText> {
        let known = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(text)
            .cloned();
        known.unwrap_or_else(|| {
            // Read outside the lock: another thread reading the same text meanwhile only
            // repeats the work.
            let (divergent, bad_keys) = yaml11_divergences(text);
            let read = std::sync::Arc::new(ReadText {
                divergent,
                bad_keys,
                parsed: parse_config_text(text),
            });
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(text.to_string(), read.clone());
            read
        })
    }
}
