//! A fast path for the YAML of manifests: granit-parser's events (the parser serde-saphyr runs)
//! built straight into `serde_json::Value`, for the plain shape manifests have, with serde-saphyr
//! kept as the reference for everything else.
//!
//! Why own code over a known format: serde-saphyr reading a manifest into `Value` spends about
//! five instructions in its serde layer (event look-ahead, comment bookkeeping, key fingerprints,
//! spans) for every one its parser spends; it was 36 % of a 5,000-object audit (issue 12,
//! docs/performance.md "The manifests' YAML"). The fast path reads the same events from the same
//! parser, built with the same options, and gives up (`None`) on anything whose meaning takes
//! more than the YAML 1.2 core schema's plain rules: tags, anchors and aliases, merge keys,
//! duplicate or non-scalar keys, numbers other than plain decimal integers, YAML 1.1 booleans
//! other than `true`/`false`, inputs near a budget limit, and every parse error. The caller then
//! parses the file with serde-saphyr, which gives what it always gave, errors included.
//!
//! What makes that safe: a scalar becomes a string here only when no rule serde-saphyr applies
//! could make it anything else (see [`plain`]), and a test compares the two on every manifest in
//! the repository, on generated sets and on hand-written edge cases; the `manifest_yaml` fuzz
//! target compares them on arbitrary input.

use super::yaml_plain::{plain, plain_key};
use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// The documents of `text`, each with the line its root starts on, as serde-saphyr would give
/// them with `budget`; `None` when the fast path cannot vouch for that (the caller falls back).
pub(crate) fn documents(text: &str, budget: &serde_saphyr::Budget) -> Option<Vec<(u64, Value)>> {
    // Half of each budget limit: whatever serde-saphyr counts (and however it counts it), an input
    // this far under every limit cannot breach one; anything nearer goes the reference's way.
    let limit = |n: usize| n / 2;
    if budget
        .max_reader_input_bytes
        .is_some_and(|cap| text.len() > limit(cap))
        || text.len() > limit(budget.max_total_scalar_bytes)
    {
        return None;
    }
    // The parser as serde-saphyr builds it (its `Budget::parser_options` and `Options`
    // defaults), so that the two accept and reject the same texts.
    let options = granit_parser::options! {
        simple_key_max_lookahead: budget.simple_key_max_lookahead,
        flow_nesting_limit: budget.flow_nesting_limit,
        block_nesting_limit: granit_parser::Options::default()
            .block_nesting_limit
            .max(budget.max_depth.saturating_add(1)),
        emit_comments: true,
        max_buffered_comment_events: budget.max_buffered_comment_events,
    };
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // The line of the current document's root node, once it has started.
    let mut root_line: Option<u64> = None;
    let (mut nodes, mut events, mut comment_bytes) = (0usize, 0usize, 0usize);
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.ok()?;
        events += 1;
        if events > limit(budget.max_events) {
            return None;
        }
        let is_node = matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        );
        if is_node {
            nodes += 1;
            if nodes > limit(budget.max_nodes) {
                return None;
            }
            if stack.is_empty() {
                root_line = Some(u64::try_from(span.start.line()).ok()?.max(1));
            }
        }
        let done = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => None,
            Event::DocumentStart(..) => {
                if docs.len() >= limit(budget.max_documents) {
                    return None;
                }
                None
            }
            Event::Comment(text, _) => {
                comment_bytes += text.len();
                if comment_bytes > limit(budget.max_total_comment_bytes) {
                    return None;
                }
                None
            }
            // Anchors, aliases and tags: the reference resolves them.
            Event::Scalar(_, _, anchor, ref tag) if anchor != 0 || tag.is_some() => return None,
            Event::SequenceStart(_, 0, None) => {
                stack.push(Frame::Seq(Vec::new()));
                None
            }
            Event::MappingStart(_, 0, None) => {
                stack.push(Frame::Map(Map::new(), None));
                None
            }
            Event::Scalar(value, style, ..) => {
                if let Some(Frame::Map(_, key @ None)) = stack.last_mut() {
                    // A key: its text, as serde_json's map keys are read (`deserialize_str`).
                    if !plain_key(&value, style) {
                        return None;
                    }
                    *key = Some(value.into_owned());
                    None
                } else if style == ScalarStyle::Plain {
                    Some(plain(&value)?)
                } else {
                    Some(Value::String(value.into_owned()))
                }
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items)) => Some(Value::Array(items)),
                _ => return None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(map, None)) => Some(Value::Object(map)),
                _ => return None,
            },
            // Anchors, aliases, tagged or anchored collections, and an event a later parser adds:
            // the reference knows what they mean.
            _ => return None,
        };
        if let Some(value) = done {
            match stack.last_mut() {
                None => docs.push((root_line.take()?, value)),
                Some(Frame::Seq(items)) => items.push(value),
                Some(Frame::Map(map, key)) => {
                    // A collection in a key's place is a complex key.
                    let key = key.take()?;
                    // A duplicate key is an error to the reference (or a choice of which wins).
                    if map.insert(key, value).is_some() {
                        return None;
                    }
                }
            }
        }
        if stack.len() > limit(budget.max_depth) {
            return None;
        }
    }
    stack.is_empty().then_some(docs)
}

/// A collection being built: a sequence, or a mapping and the key whose value comes next.
enum Frame {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde-saphyr gives for `text` with the manifests' options, non-null documents only
    /// (the loader skips null documents), or its error.
    fn reference(text: &str) -> Result<Vec<(u64, Value)>, String> {
        super::super::manifests::reference_documents(text)
            .map(|docs| docs.into_iter().filter(|(_, v)| !v.is_null()).collect())
    }

    fn fast(text: &str) -> Option<Vec<(u64, Value)>> {
        documents(text, &super::super::manifests::yaml_budget())
            .map(|docs| docs.into_iter().filter(|(_, v)| !v.is_null()).collect())
    }

    /// The fast path agrees with the reference wherever it answers; returns whether it answered.
    pub(crate) fn agrees(text: &str) -> bool {
        let Some(ours) = fast(text) else { return false };
        match reference(text) {
            Ok(theirs) => assert_eq!(ours, theirs, "on:\n{text}"),
            Err(e) => panic!("the fast path read a text the reference refuses ({e}):\n{text}"),
        }
        true
    }

    #[test]
    fn every_yaml_file_in_the_repository_reads_as_the_reference_reads_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["fixtures", "examples", "deploy", "checks", "testdata"] {
            collect(&root.join(dir), &mut files);
        }
        let (mut answered, mut total) = (0, 0);
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            total += 1;
            if agrees(&text) {
                answered += 1;
            }
        }
        assert!(total > 100, "found only {total} YAML files");
        // The fast path is for what manifests look like: most files take it.
        assert!(
            answered * 10 >= total * 8,
            "the fast path answered {answered} of {total} files"
        );
    }

    fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }

    #[test]
    fn plain_scalars_read_as_the_reference_reads_them_or_are_left_to_it() {
        let scalars = [
            "",
            "~",
            "null",
            "Null",
            "NULL",
            "nULL",
            "true",
            "false",
            "True",
            "FALSE",
            "yes",
            "no",
            "y",
            "n",
            "on",
            "off",
            "Y",
            "On",
            "0",
            "1",
            "-1",
            "-0",
            "+1",
            "007",
            "-007",
            "0x1F",
            "0X1F",
            "0o17",
            "0b101",
            "1_000",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1.5",
            "-1.5",
            ".5",
            "5.",
            "1e3",
            "1E3",
            "1e999",
            ".inf",
            "-.inf",
            ".nan",
            ".NaN",
            "inf",
            "-inf",
            "nan",
            "NaN",
            "infinity",
            "Infinity",
            "1:30",
            "190:20:30",
            "100m",
            "256Mi",
            "1Gi",
            "0.5",
            "1.0.0",
            "10.0.0.1",
            "1..2",
            "..",
            "...",
            "1.2.",
            ".1.2",
            "1.2.e3",
            "v1.2.3",
            "10.0.0.0/8",
            "2001-12-14",
            "2001-12-14t21:59:43.10-05:00",
            "a",
            "abc",
            "deadbeef",
            "Deployment",
            "app.kubernetes.io/name",
            "ghcr.io/x/y:1.2.0@sha256:abc",
            "/health",
            "*",
            "x y",
            "1 2",
            "12 ab",
            "e5",
            "0e5",
            "-e5",
            "+",
            "-",
            ".",
            "_",
            "1_",
            "0x",
            "0xg",
            "-0x1",
            "+.inf",
            "-Infinity",
            "-o",
            "--namespace",
            "-yes",
            "+true",
            "90d",
            "8f3c2a8e-55b1-4a5e",
            "1e-3",
            "1e+3",
            "1-2",
            "1e-",
            "e-1",
            "1_000-2",
            ":",
            "1:",
            "pi",
            "deg(90)",
            "90deg",
            "1.5rad",
            "é",
            "1é",
            "ⅷ",
            "٣",
        ];
        let mut answered = 0;
        for s in scalars {
            // In a value's place and in a sequence, as the loader meets them.
            let text = format!("apiVersion: v1\nkind: ConfigMap\nv: {s}\nl:\n- {s}\n");
            if agrees(&text) {
                answered += 1;
            }
        }
        assert!(
            answered > 30,
            "only {answered} plain scalars took the fast path"
        );
    }

    #[test]
    fn what_the_fast_path_leaves_to_the_reference() {
        for text in [
            // Tags, anchors, aliases, merge keys.
            "a: !!str 1\n",
            "a: &x 1\nb: *x\n",
            "a: &x {b: 1}\n",
            "base: &b {x: 1}\nc:\n  <<: *b\n",
            // Duplicate keys, null and complex keys; integer keys spelled two ways, which
            // serde-saphyr compares by value (a duplicate to it).
            "a: 1\na: 2\n",
            "1: a\n+1: b\n",
            "0: a\n-0: b\n",
            "16: a\n0x10: b\n",
            "10: a\n1_0: b\n",
            "1: a\n01: b\n",
            "x:\n  1.0: a\n  1.00: b\n",
            // serde_json's private marker keys.
            "$serde_json::private::RawValue: '1'\n",
            "~: 1\n",
            "? [a]\n: 1\n",
            // Parse errors: the reference's message is the one a user sees.
            "a: [1\n",
            "a: b: c\n",
        ] {
            assert!(fast(text).is_none(), "the fast path answered on:\n{text}");
        }
        // Why integer keys spelled two ways are left: to the reference they are one key twice.
        for text in ["1: a\n+1: b\n", "16: a\n0x10: b\n", "10: a\n1_0: b\n"] {
            assert!(reference(text).is_err(), "the reference read:\n{text}");
        }
    }

    #[test]
    fn documents_lines_and_shapes_read_as_the_reference_reads_them() {
        for text in [
            "",
            "# only a comment\n",
            "---\n",
            "---\n---\n",
            "a: 1\n---\n\n# c\nb: 2\n...\n---\nc: [1, {d: e}]\n",
            "- 1\n- [2, 3]\n- {a: b}\n",
            "just a string\n",
            "'quoted: yes'\n",
            "a: |\n  line 1\n  line 2\nb: >-\n  folded\n  text\n",
            "a: \"tab\\tnew\\nline \\u00e9\"\nb: 'it''s'\n",
            "%YAML 1.2\n---\na: 1\n",
            "a:\nb:\n  c:\n  d: ''\n",
            "'1': a\n\"true\": b\ntrue: c\n1: d\n",
            "0: a\n8080: b\n'+1': c\n\"0x10\": d\n-a: e\n.x: f\n",
            "{a: 1, b: [x, y], c: {}}\n",
            "key with spaces: value with: colon\n",
            "a: 1 # trailing comment\n# between\nb: 2\n",
            "\u{feff}a: 1\n",
            "\t- a\n",
            "a:\n\t- b\n",
        ] {
            let _ = agrees(text);
        }
    }

    #[test]
    fn deep_nesting_is_left_to_the_reference() {
        let nested = |depth: usize| {
            let mut text = String::new();
            for i in 0..depth {
                text.push_str(&"  ".repeat(i));
                text.push_str("a:\n");
            }
            text
        };
        assert!(fast(&nested(40)).is_none());
        // Under the limit, the fast path answers and agrees.
        assert!(agrees(&nested(10)));
    }
}
