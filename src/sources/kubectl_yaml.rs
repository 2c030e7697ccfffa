//! Where kubectl reads a manifest's YAML otherwise than this reader (serde-saphyr, YAML 1.2 with
//! YAML 1.1's booleans and octals), so that what is audited is what kubectl applies: each such
//! text is refused with its line, never audited as something the cluster would not get.
//!
//! kubectl does not read a YAML stream. apimachinery's `YAMLReader` cuts the file at each line
//! that starts with `---` and decodes the first document of each part only, with go-yaml v2
//! (through sigs.k8s.io/yaml, YAML 1.1's rules). Why our own code: no crate reads YAML as go-yaml
//! v2 does; these are the few rules where the two readers part, each from go-yaml v2's
//! `resolve.go` and apimachinery's `yaml.go`, and each found by a review that reproduced a pass
//! the cluster would not have given.

use granit_parser::{Event, ScalarStyle};
use serde_json::Value;

/// The lines (1-based) of the document separators as kubectl finds them, or the line of one it
/// refuses: a line starting with `---` followed by anything but a comment (`--- !!map`:
/// "invalid Yaml document separator").
pub fn separators(text: &str) -> Result<Vec<u64>, (u64, String)> {
    let mut separators = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let at = i as u64 + 1;
        // A directive (`%YAML 1.1`, `%TAG`) stands before its `---`, so kubectl's cut leaves
        // it alone in a part of its own, which go-yaml refuses: kubectl applies nothing of the
        // file, and this reader read it whole (review finding).
        if line.starts_with('%') {
            return Err((
                at,
                "a YAML directive (%YAML, %TAG): kubectl cuts the file at its `---` lines and refuses the part the directive is left alone in; remove the directive".to_string(),
            ));
        }
        let Some(rest) = line.strip_prefix("---") else {
            continue;
        };
        let rest = rest.trim();
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err((
                at,
                // The content is not shown: it may be a Secret's value (`--- {kind: Secret,
                // stringData: {...}}`; review finding).
                "a document separator followed by content on the same line: kubectl refuses the file (\"invalid Yaml document separator\"); put the content on the next line".to_string(),
            ));
        }
        separators.push(at);
    }
    Ok(separators)
}

/// A Unicode line break YAML 1.1 has and YAML 1.2 does not, with its line
/// ([`crate::facts::mlsdm::yaml::yaml11_line_break`]): kubectl's go-yaml v2 breaks the line there,
/// this reader does not, so a comment ending in one hid the YAML after it (`# pinned<LS>---`
/// made kubectl drop the rest of a Deployment this reader audited whole; review finding).
pub fn unicode_line_break(text: &str) -> Option<(u64, String)> {
    let (line, which) = crate::facts::mlsdm::yaml::yaml11_line_break(text)?;
    Some((
        line,
        format!(
            "a {which}: kubectl (go-yaml v2, YAML 1.1) reads it as a line break, this reader (YAML 1.2) as a character, so the two read different objects; replace it with a newline or a space"
        ),
    ))
}

/// A document kubectl would not apply, with its line and why: a second document in one part
/// between `---` lines (after a `...` end marker), or, in a file whose lines end in a bare CR
/// (kubectl cuts at `\n` only, so the file is one part), any document after the first. Both
/// were audited as if deployed.
pub fn unapplied_document(
    text: &str,
    separators: &[u64],
    docs: &[(u64, Value)],
) -> Option<(u64, String)> {
    let mut documents = docs.iter().filter(|(_, v)| !v.is_null());
    let bare_cr = text.contains('\r')
        && (text
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\r' && w[1] != b'\n')
            || text.ends_with('\r'));
    if bare_cr {
        return documents.nth(1).map(|(line, _)| {
            (
                *line,
                "the file's lines end in a bare CR (classic Mac line ends): kubectl cuts documents at \\n only and applies the first document; convert the line ends to \\n".to_string(),
            )
        });
    }
    let mut part_seen = None;
    for (line, _) in documents {
        let part = separators.partition_point(|s| s < line);
        if part_seen == Some(part) {
            return Some((
                *line,
                "a second document without a `---` line before it (after a `...` end marker): kubectl applies only the first document of each part between `---` lines; start it with `---`".to_string(),
            ));
        }
        part_seen = Some(part);
    }
    None
}

/// The first place, with its line, where kubectl reads `text` otherwise than this reader:
///
/// - a merge key (`<<`) after explicit keys of its mapping: kubectl (go-yaml v2) lets the merged
///   values override the keys before it, kustomize (go-yaml v3) and this reader do not
///   (`privileged: false` then `<<: {privileged: true}` passed the hardening check while
///   kubectl sends a privileged container); first in its mapping, a merge means one thing;
/// - a plain scalar YAML 1.1 resolves otherwise: a key `y`, `on` or `no` is `"true"` or
///   `"false"` to kubectl (a PDB selecting `{y: mlsdm}` selects nothing on the cluster), a value
///   `tRUE` a string, `0X10` or `1_000` a number.
///
/// For the texts the fast path leaves to serde-saphyr only: it takes none of these.
pub fn read_otherwise(text: &str) -> Option<(u64, String)> {
    /// An open collection: a mapping's next node is a key or a value; whether it has had an
    /// explicit (not merge) key, and a merge key.
    #[allow(clippy::struct_excessive_bools)] // four facts of one parser state
    struct Open {
        mapping: bool,
        key_next: bool,
        explicit_seen: bool,
        merge_seen: bool,
    }
    let mut stack: Vec<Open> = Vec::new();
    for event in granit_parser::Parser::new_from_str(text) {
        // A text that does not parse is the YAML reader's to report.
        let Ok((event, span)) = event else {
            return None;
        };
        let mut is_key = false;
        if crate::facts::mlsdm::yaml::is_node(&event)
            && let Some(top) = stack.last_mut().filter(|t| t.mapping)
        {
            is_key = top.key_next;
            top.key_next = !top.key_next;
            let merge = is_key && is_merge_key(&event);
            top.explicit_seen |= is_key && !merge;
            if merge {
                let line = span.start.line() as u64;
                // `explicit_seen` was updated before: it says whether a key came before.
                if top.explicit_seen {
                    return Some((
                        line,
                        "a merge key (<<) after explicit keys: kubectl lets the merged values override the keys before it, kustomize does not, so what is deployed depends on the tool; put <<: first in its mapping".into(),
                    ));
                }
                if top.merge_seen {
                    return Some((
                        line,
                        "a second merge key (<<) in one mapping: kubectl (go-yaml v2) lets the later one's values win, this reader keeps the first's; merge once, with a list (<<: [*a, *b])".into(),
                    ));
                }
                top.merge_seen = true;
            }
        }
        let line = span.start.line() as u64;
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => stack.push(Open {
                mapping: matches!(event, Event::MappingStart(..)),
                key_next: true,
                explicit_seen: false,
                merge_seen: false,
            }),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            // A tag go-yaml v2 does not resolve (`!foo`, `!int`) makes the text a string to it;
            // this reader ignores the tag (`replicas: !int 3` was 3 here, "3" to kubectl).
            Event::Scalar(ref v, ScalarStyle::Plain, _, Some(ref tag))
                if !is_key
                    && !tag.core_suffix().is_some_and(|t| {
                        ["str", "int", "bool", "float", "null", "timestamp", "binary"].contains(&t)
                    })
                    && ours(v).is_some_and(|o| o != Value::String(v.to_string())) =>
            {
                return Some((
                    line,
                    format!(
                        "a value with the tag {}{}: kubectl (go-yaml v2) reads it as a string, this reader as {}; remove the tag, or quote the value{NOT_SHOWN}",
                        tag.original_handle(),
                        tag.suffix(),
                        ours(v).as_ref().map_or("a string", super::json_type)
                    ),
                ));
            }
            Event::Scalar(ref v, ScalarStyle::Plain, _, None) => {
                let v = v.as_ref();
                if is_key && v == "<<" {
                    // A merge key: judged above.
                } else if let Some(why) = resolved_otherwise(v, is_key) {
                    return Some((line, why));
                }
            }
            _ => {}
        }
    }
    None
}

/// A merge key: a plain `<<`, untagged or tagged `!!merge` (the tagged one passed unjudged).
fn is_merge_key(event: &Event<'_>) -> bool {
    matches!(event, Event::Scalar(v, ScalarStyle::Plain, _, tag)
    if v.as_ref() == "<<"
        && tag.as_ref().is_none_or(|t| {
            // `core_suffix` knows seven core names, not `merge`.
            t.suffix_in_namespace("tag:yaml.org,2002:").as_deref() == Some("merge")
        }))
}

/// Why go-yaml v2 reads the plain scalar `s` otherwise than this reader, in a key's place or a
/// value's; `None` when both read the same.
fn resolved_otherwise(s: &str, is_key: bool) -> Option<String> {
    let theirs = go_yaml_v2(s)?;
    if is_key {
        // sigs.k8s.io/yaml turns a key into JSON's string: a boolean `true`/`false`, an integer
        // its decimal digits. This reader keeps the key's text.
        let key = match &theirs {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        return (key != s).then(|| {
            format!(
                "the plain key `{s}` is `{key}` to kubectl (YAML 1.1), `{s}` here: quote it (\"{s}\") or write `{key}`"
            )
        });
    }
    let ours = ours(s)?;
    let same = match (&theirs, &ours) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => theirs == ours,
    };
    (!same).then(|| {
        let (theirs, ours) = match (super::json_type(&theirs), super::json_type(&ours)) {
            (a, b) if a == b => ("one number", "another"),
            pair => pair,
        };
        format!(
            "a plain value is {theirs} to kubectl (YAML 1.1), {ours} here: quote it, or write it as kubectl and this reader both read it{NOT_SHOWN}"
        )
    })
}

/// Said where a value is not quoted: the text is refused before any Secret is read, so a
/// Secret's value (`api-key: 0X5EC4E7C0DE`, a hex number to kubectl) would be printed in full,
/// and its number too (review finding). The line is given.
const NOT_SHOWN: &str = " (the value is not shown: it may be a Secret's)";

/// This reader's value for a plain scalar in a value's place, as `manifests::reference_yaml`
/// reads it (YAML 1.1's octals on), or `None` if it does not read alone.
fn ours(s: &str) -> Option<Value> {
    if let Some(v) = super::yaml_plain::plain(s) {
        return Some(v);
    }
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    serde_saphyr::from_str_with_options::<Value>(s, options).ok()
}

/// go-yaml v2's value for a plain scalar (`resolve.go`), as JSON: the YAML 1.1 booleans in their
/// three spellings only, the nulls, integers by Go's `ParseInt(s, 0, 64)` once underscores are
/// removed, floats of its `yamlStyleFloat` spelling; else the text. `None` for what JSON cannot
/// hold (`.inf`, `.nan`: kubectl refuses them), which is not judged here.
fn go_yaml_v2(s: &str) -> Option<Value> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || b"+-.".contains(&first)) {
        return Some(Value::String(s.to_owned()));
    }
    if s.trim_start_matches(['+', '-'])
        .to_ascii_lowercase()
        .trim_start_matches('.')
        .starts_with("inf")
        || s.to_ascii_lowercase().ends_with("nan")
    {
        return None;
    }
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Some(Value::from(i));
    }
    if is_yaml_style_float(&plain) {
        return plain
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number);
    }
    Some(Value::String(s.to_owned()))
}

/// Go's `strconv.ParseInt(s, 0, 64)`: a sign, then `0x`/`0o`/`0b` (either case) or a leading
/// `0` (octal), else decimal; `None` for anything it refuses.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(body, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// go-yaml v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => digits(fraction),
        Some((whole, fraction)) => digits(whole) && fraction.bytes().all(|b| b.is_ascii_digit()),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_yaml_v2_reads_plain_scalars_as_kubectl_does() {
        let cases: &[(&str, Value)] = &[
            ("y", Value::Bool(true)),
            ("OFF", Value::Bool(false)),
            ("tRUE", Value::from("tRUE")),
            ("0X10", Value::from(16)),
            ("0o17", Value::from(15)),
            ("017", Value::from(15)),
            ("1__2", Value::from(12)),
            ("-0b11", Value::from(-3)),
            ("08", serde_json::json!(8.0)),
            ("1e3", serde_json::json!(1000.0)),
            ("1.2.0", Value::from("1.2.0")),
            ("1:30", Value::from("1:30")),
            ("100m", Value::from("100m")),
            ("~", Value::Null),
        ];
        for (s, want) in cases {
            assert_eq!(go_yaml_v2(s).as_ref(), Some(want), "{s}");
        }
        assert_eq!(go_yaml_v2(".inf"), None);
    }

    /// The texts of the table below whose finding is about a key (shown: keys are not secret).
    fn is_key_case(text: &str) -> bool {
        text.contains("y: mlsdm") || text.contains("on: 1")
    }

    /// Review findings: a PDB selecting `{y: mlsdm}` passed while kubectl sends `{"true":
    /// "mlsdm"}`; `tRUE` was read as a boolean kubectl sends as a string; `0X0` replicas as a
    /// string kubectl sends as 0. Each is refused at its line; what both read alike is not.
    #[test]
    fn scalars_kubectl_reads_otherwise_are_refused() {
        for (text, line) in [
            ("a: &x 1\nselector:\n  y: mlsdm\n", 3),
            ("a: &x 1\nrunAsNonRoot: tRUE\n", 2),
            ("a: &x 1\nreplicas: 0X0\n", 2),
            ("a: &x 1\nb:\n  on: 1\n", 3),
            ("a: &x 1\nb: 1__2\n", 2),
            ("a: &x 1\nreplicas: !int 3\n", 2),
        ] {
            let (at, why) = read_otherwise(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(at, line, "{text}: {why}");
            assert!(why.contains("kubectl"), "{why}");
            // A value's text is never said: it may be a Secret's.
            for shown in ["tRUE", "0X0", "1__2", "122"] {
                assert!(is_key_case(text) || !why.contains(shown), "{why}");
            }
        }
        for text in [
            "a: &x 1\nb: yes\nc: 017\nd: '0X0'\ne: \"y\"\nf: 8080\ng: 1.2.0\nh: 100m\ni: ~\nj: true\nk: !!int 3\nl: !x text\n",
            "a: &x {k: v}\nb:\n  <<: *x\n  c: 1\n",
            "a:\n  '<<': 1\n  b: 2\n",
        ] {
            assert_eq!(read_otherwise(text), None, "{text}");
        }
        let (line, why) = read_otherwise("a:\n  b: 1\n  <<: {b: 2}\n").unwrap();
        assert_eq!(line, 3);
        assert!(why.contains("put <<: first"), "{why}");
        // Review findings: the same merge tagged `!!merge`, and a second merge key, which
        // go-yaml v2 lets win over the first, passed.
        let (line, why) = read_otherwise("a:\n  b: 1\n  !!merge <<: {b: 2}\n").unwrap();
        assert_eq!(line, 3);
        assert!(why.contains("put <<: first"), "{why}");
        let (line, why) = read_otherwise("a:\n  <<: {b: 1}\n  <<: {b: 2}\n").unwrap();
        assert_eq!(line, 3);
        assert!(why.contains("a second merge key"), "{why}");
    }
}
