//! The module layers of src/, kept by a test: every `crate::...` path in src/**/*.rs must name
//! the file's own top-level module or one in a lower layer. Modules of one layer do not import
//! each other, so a cycle between top-level modules cannot compile past this test. A new
//! top-level module fails it until it is placed in a layer (docs/architecture.md says why each
//! layer sits where it does).
//!
//! Relative paths (`super::`, `self::`) are not followed: in this crate they stay inside the
//! file's own top-level module (a `super::super::` in a test module of src/checks/k8s_lib.rs
//! names `checks`); a path to another module is written from `crate::`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first. `crate` is src/lib.rs (the root's own items, such as `run_check`).
const LAYERS: &[(&str, &[&str])] = &[
    ("bounds on untrusted text, no crate imports", &["nesting"]),
    (
        "foundation: no crate imports but the bounds",
        &["activity", "input", "redact", "seed", "promql", "parallel"],
    ),
    ("diagnostics for input errors", &["diag"]),
    ("the Kubernetes object model, pure", &["k8s"]),
    ("the facts store and relations, no I/O", &["facts"]),
    ("the check model and expression language", &["checks"]),
    ("the report model and renderers", &["report"]),
    ("I/O that fills the facts", &["sources"]),
    ("evaluation, pure", &["engine"]),
    ("waivers, attestations, baseline", &["review"]),
    ("command-line arguments", &["cli"]),
    ("team config (defaults for arguments)", &["config"]),
    (
        "documents and sign-off over the report",
        &["docs", "signoff"],
    ),
    (
        "the audit plan: arguments resolved once, the audit over them",
        &["plan"],
    ),
    (
        "the crate root (src/lib.rs): re-exports, run_check",
        &["crate"],
    ),
    (
        "commands built on the pipeline",
        &["watch", "testchecks", "fuzzing", "fleet"],
    ),
    ("the binary", &["main"]),
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: src/x.rs and src/x/** are `x`; src/lib.rs is `crate`.
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or_default();
    match first {
        "lib.rs" => "crate".into(),
        f => f.trim_end_matches(".rs").into(),
    }
}

/// The text with comments blanked (kept the same length, so byte offsets still give lines).
/// String literals are kept: a `crate::` path inside one (a serde `with = "crate::..."`) is a
/// dependency too.
fn without_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        if in_str {
            match b[i] {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else if b[i] == b'"' {
            // A char literal '"' is not a string.
            in_str = !(i > 0 && b[i - 1] == b'\'' && b.get(i + 1) == Some(&b'\''));
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    String::from_utf8(out).expect("blanking ASCII keeps UTF-8")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first segment after each `crate::`, with its byte offset: `crate::checks::Check` gives
/// `checks`, `crate::{checks, report::Status}` gives `checks` and `report`.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue; // `mlsdm_audit_crate::` or similar
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                    _ => item.push(c),
                }
            }
            items.push(item);
            for item in items {
                let first: String = item.trim().chars().take_while(|&c| is_ident(c)).collect();
                if !first.is_empty() {
                    out.push((at, first));
                }
            }
        } else {
            let first: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            out.push((at, first));
        }
    }
    out
}

#[test]
fn imports_only_reach_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: Vec<String> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(&src).expect("under src/")))
        .collect();
    let mut problems = Vec::new();
    for m in &modules {
        if rank(m).is_none() {
            problems.push(format!(
                "module `{m}` is in no layer: add it to LAYERS in tests/layers.rs"
            ));
        }
    }
    let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (file, from) in files.iter().zip(&modules) {
        let rel = file.strip_prefix(&src).expect("under src/");
        let text = std::fs::read_to_string(file).expect("a source file is UTF-8");
        let code = without_comments(&text);
        let line_of = |at: usize| code[..at].matches('\n').count() + 1;
        for (at, first) in crate_paths(&code) {
            // `crate::run_check` names an item of src/lib.rs, `crate::checks` a module.
            let to = if modules.contains(&first) {
                first
            } else {
                "crate".to_string()
            };
            if &to == from {
                continue;
            }
            *edges.entry((from.clone(), to.clone())).or_default() += 1;
            let (Some(rf), Some(rt)) = (rank(from), rank(&to)) else {
                continue;
            };
            if rt >= rf {
                let why = if rt == rf {
                    "a module of the same layer"
                } else {
                    "a higher layer"
                };
                problems.push(format!(
                    "src/{}:{}: `{from}` ({}) imports `{to}` ({}), {why}",
                    rel.display(),
                    line_of(at),
                    LAYERS[rf].0,
                    LAYERS[rt].0,
                ));
            }
        }
    }
    // The parser must see something: a crate whose modules import nothing would pass vacuously.
    assert!(
        edges.contains_key(&("engine".to_string(), "checks".to_string())),
        "the test found no import of checks from engine; is it reading src/ right?"
    );
    assert!(
        problems.is_empty(),
        "imports against the layer order (lowest first: {}):\n{}",
        LAYERS
            .iter()
            .map(|(_, ms)| ms.join("|"))
            .collect::<Vec<_>>()
            .join(" < "),
        problems.join("\n")
    );
}

#[test]
fn the_parser_reads_grouped_and_commented_paths() {
    let code = without_comments(
        "use crate::{checks::{self, Check}, report};\n// crate::watch\nlet x = \"//\"; crate::engine::run();\n",
    );
    let got: Vec<String> = crate_paths(&code).into_iter().map(|(_, m)| m).collect();
    assert_eq!(got, ["checks", "report", "engine"]);
}
