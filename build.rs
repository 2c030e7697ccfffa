//! Embeds every `checks/*.yaml` into the binary, so it works with no files beside it, with its
//! SHA-256 and, where it can, the same file as a constant tree (see [`check_value`]).
use sha2::Digest as _;
use std::fmt::Write as _;

// The scalar rules the manifests' fast YAML path uses (serde-saphyr's reading, where certain).
#[allow(dead_code)]
#[path = "src/sources/yaml_plain.rs"]
mod yaml_plain;

// The seed checklist's parser, for its section order (every report sorts by it). (Its public
// API, private here, is what the lints below would have changed.)
#[allow(dead_code, clippy::struct_field_names)]
#[path = "src/seed.rs"]
mod seed;

// The built-in expressions' syntax trees, parsed here so a run decodes them (issue 12, target 4).
#[allow(dead_code)]
#[path = "src/checks/cel/tree_code.rs"]
mod tree_code;

// The cost meter's rewrite and the reads of an expression, done here once for the built-in ones.
#[allow(dead_code)]
#[path = "src/checks/cel/rewrite.rs"]
mod rewrite;

/// The strings of a check file that carry their position (`checks::model::Located`), by path
/// from the root (`[]` is any element of a sequence). A path missing here gives a check whose
/// JSON does not read (`tests/catalog.rs` reads every built-in check both ways).
const LOCATED: &[&[&str]] = &[
    &["forEach"],
    &["query"],
    &["item", "name"],
    &["when", "[]", "expression"],
    &["validations", "[]", "expression"],
    &["validations", "[]", "messageExpression"],
];

/// A check file's YAML as the value that reads into the same `CheckFile` that serde-saphyr reads
/// from the YAML: parsing 164 KB of YAML was half of a one-file audit's instructions (issue 12,
/// target 4). It is written as a constant tree ([`static_tree`]), which a run reads without
/// scanning any text.
///
/// The events come from granit-parser, the parser serde-saphyr runs; scalars follow the fast
/// manifest path's rules (`src/sources/yaml_plain.rs`). `None` (the file is read from its YAML
/// at run time, as before) for anything else: several documents, anchors, aliases, tags,
/// duplicate or unusual keys, plain scalars those rules are not sure of. The strings listed in
/// [`LOCATED`] become `{"value", "line", "column"}`, the position serde-saphyr gives them.
///
/// The CEL expressions it meets (every located string but the PromQL `query`) are added to
/// `cel` when the file reads.
fn check_value(
    text: &str,
    cel: &mut std::collections::BTreeSet<String>,
) -> Option<serde_json::Value> {
    use granit_parser::{Event, Parser, ScalarStyle};
    use serde_json::{Map, Value};
    enum Frame {
        Seq(Vec<Value>),
        Map(Map<String, Value>, Option<String>),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let mut expressions = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        let value = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Comment(..) => {
                continue;
            }
            Event::DocumentStart(..) if root.is_none() => continue,
            Event::Scalar(_, _, anchor, ref tag) if anchor != 0 || tag.is_some() => return None,
            Event::SequenceStart(_, 0, None) => {
                stack.push(Frame::Seq(Vec::new()));
                continue;
            }
            Event::MappingStart(_, 0, None) => {
                stack.push(Frame::Map(Map::new(), None));
                continue;
            }
            Event::Scalar(value, style, ..) => {
                if let Some(Frame::Map(_, key @ None)) = stack.last_mut() {
                    if !yaml_plain::plain_key(&value, style) {
                        return None;
                    }
                    *key = Some(value.into_owned());
                    continue;
                }
                let path: Vec<&str> = stack
                    .iter()
                    .map(|frame| match frame {
                        Frame::Seq(_) => "[]",
                        Frame::Map(_, key) => key.as_deref().unwrap_or(""),
                    })
                    .collect();
                if LOCATED.contains(&path.as_slice()) {
                    if style == ScalarStyle::Plain && yaml_plain::is_null(&value) {
                        return None;
                    }
                    if path != ["query"] {
                        expressions.push(value.to_string());
                    }
                    serde_json::json!({
                        "value": value,
                        "line": span.start.line(),
                        "column": span.start.col() + 1,
                    })
                } else if style == ScalarStyle::Plain {
                    yaml_plain::plain(&value)?
                } else {
                    Value::String(value.into_owned())
                }
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items)) => Value::Array(items),
                _ => return None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(map, None)) => Value::Object(map),
                _ => return None,
            },
            // A second document, aliases, anchored or tagged collections.
            _ => return None,
        };
        match stack.last_mut() {
            None if root.is_none() => root = Some(value),
            None => return None,
            Some(Frame::Seq(items)) => items.push(value),
            Some(Frame::Map(map, key)) => {
                if map.insert(key.take()?, value).is_some() {
                    return None;
                }
            }
        }
    }
    // A check is a mapping; anything else is the YAML reader's to refuse, with its message.
    let value = root.filter(Value::is_object)?;
    cel.extend(expressions);
    Some(value)
}

/// `value` as the Rust expression of a `checks::static_tree::Static` constant.
fn static_tree(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("Static::Null"),
        Value::Bool(b) => write!(out, "Static::Bool({b})").unwrap(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write!(out, "Static::UInt({u})").unwrap();
            } else if let Some(i) = n.as_i64() {
                write!(out, "Static::Int({i})").unwrap();
            } else {
                let f = n.as_f64().expect("a JSON number is an f64 at worst");
                write!(out, "Static::Float({:#x})", f.to_bits()).unwrap();
            }
        }
        // Debug writes a Rust string literal, every escape included.
        Value::String(s) => write!(out, "Static::Str({s:?})").unwrap(),
        Value::Array(items) => {
            out.push_str("Static::Seq(&[");
            for item in items {
                static_tree(item, out);
                out.push(',');
            }
            out.push_str("])");
        }
        Value::Object(map) => {
            out.push_str("Static::Map(&[");
            for (key, item) in map {
                write!(out, "({key:?}, ").unwrap();
                static_tree(item, out);
                out.push_str("),");
            }
            out.push_str("])");
        }
    }
}

/// The built-in expressions' syntax trees, by cel's Pratt parser (the one
/// `CelEnv::compile_builtin` runs) and metered (`rewrite::prepare`), as `cel_trees.bin` and its
/// index `cel_trees.rs`: (source, start, end, reads) sorted by source. An expression that does
/// not parse is left out: the run parses it and reports its error as before.
fn cel_trees(out_dir: &std::path::Path, sources: &std::collections::BTreeSet<String>) {
    let mut blob = Vec::new();
    let mut index = String::from("&[\n");
    for source in sources {
        let Ok(tree) = cel::parser::PrattParser::new().parse(source) else {
            continue;
        };
        let (metered, reads) = rewrite::prepare(tree);
        let reads: Vec<String> = reads.into_iter().collect();
        let start = blob.len();
        tree_code::encode(&metered, &mut blob);
        writeln!(
            index,
            "    ({source:?}, {start}, {}, &{reads:?}),",
            blob.len()
        )
        .unwrap();
    }
    index.push(']');
    std::fs::write(out_dir.join("cel_trees.bin"), blob).expect("cel_trees.bin in OUT_DIR");
    std::fs::write(out_dir.join("cel_trees.rs"), index).expect("cel_trees.rs in OUT_DIR");
}

/// The commit `--version` names: `git rev-parse` in a checkout, else `MLSDM_AUDIT_GIT_COMMIT`
/// (a container build without `.git` passes it as a build argument), else "unknown".
fn git_commit() -> String {
    println!("cargo:rerun-if-env-changed=MLSDM_AUDIT_GIT_COMMIT");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // A commit or checkout moves HEAD's reflog: rebuild the version string then.
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
    }
    git(&["rev-parse", "--short=12", "HEAD"])
        .or_else(|| {
            std::env::var("MLSDM_AUDIT_GIT_COMMIT")
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Links the binaries as position-dependent executables on Linux (issue 12, target 4). A PIE
/// binary of this size starts by writing 61,000 relative relocations into 1.5 MB of its data
/// (chrono-tz's tables, vtables, panic locations): 390 copy-on-write page faults, which were
/// half of `--version`'s time and more than the whole budget a one-file `check` has beyond a
/// process start. The code is still position-independent (only the link changes), and heap,
/// stack, mmap and libraries keep their address randomisation; what is given up is the
/// randomisation of the executable's own image, a mitigation for memory corruption that safe
/// Rust mostly rules out. A packager whose policy requires PIE builds with `MLSDM_AUDIT_PIE=1`.
fn no_pie() {
    println!("cargo:rerun-if-env-changed=MLSDM_AUDIT_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux
        && std::env::var("MLSDM_AUDIT_PIE")
            .ok()
            .is_none_or(|v| v != "1")
    {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

fn main() {
    println!("cargo:rerun-if-changed=checks");
    println!("cargo:rerun-if-changed=src/sources/yaml_plain.rs");
    println!("cargo:rerun-if-changed=src/seed.rs");
    println!("cargo:rerun-if-changed=src/checks/cel/tree_code.rs");
    println!("cargo:rerun-if-changed=src/checks/cel/rewrite.rs");
    println!("cargo:rerun-if-changed=fixtures/seed/PRODUCTION_CHECKLIST.md");
    // The seed's sections in order, for `report::section_rank`: parsing the checklist's Markdown
    // was a fifteenth of a one-file audit.
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(
        std::path::Path::new(&out_dir).join("seed_sections.rs"),
        format!("&{:?}", seed::sections()),
    )
    .expect("seed_sections.rs in OUT_DIR");
    println!("cargo:rustc-env=MLSDM_AUDIT_GIT_COMMIT={}", git_commit());
    no_pie();
    // Read at run time: a build script compiled for another checkout must not embed its checks.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = std::path::Path::new(&manifest_dir).join("checks");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("checks/ directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "yaml")
        })
        .collect();
    names.sort();
    let mut expressions = std::collections::BTreeSet::new();
    let mut out = String::from("&[\n");
    // The catalog's digest (`report::catalog_digest`): each file's name and SHA-256, a line
    // each, hashed. A constant: hashing it at run time was a twenty-fifth of a one-file audit.
    let mut digest_lines = String::new();
    for n in names {
        // The file's SHA-256, which every report lists per check: hashing the catalog's 164 KB
        // at run time was a seventh of a one-file audit (issue 12, target 4). The binary embeds
        // a copy of the bytes hashed, so that a file saved during the build cannot give it a
        // text and a hash that differ.
        let text = std::fs::read(dir.join(&n)).expect("a check file");
        let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join(&n);
        std::fs::write(&path, &text).expect("a copy of the check file in OUT_DIR");
        let sha256 =
            sha2::Sha256::digest(&text)
                .iter()
                .fold(String::with_capacity(64), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                });
        let _ = writeln!(digest_lines, "{n} {sha256}");
        let tree = std::str::from_utf8(&text)
            .ok()
            .and_then(|text| check_value(text, &mut expressions))
            .map_or_else(
                || "None".into(),
                |value| {
                    let mut tree = String::from("Some(&");
                    static_tree(&value, &mut tree);
                    tree.push(')');
                    tree
                },
            );
        writeln!(
            out,
            "    BuiltinFile {{ name: {n:?}, text: include_str!({:?}), sha256: {sha256:?}, tree: {tree} }},",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push(']');
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_checks.rs");
    std::fs::write(dest, out).unwrap();
    let digest = sha2::Sha256::digest(digest_lines.as_bytes()).iter().fold(
        String::with_capacity(64),
        |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        },
    );
    std::fs::write(
        std::path::Path::new(&out_dir).join("catalog_digest.rs"),
        format!("{digest:?}"),
    )
    .expect("catalog_digest.rs in OUT_DIR");
    cel_trees(std::path::Path::new(&out_dir), &expressions);
}
