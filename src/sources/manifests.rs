//! Reads Kubernetes objects from manifest files, directories and stdin, keeping the file and line
//! of every object so findings point at the YAML a user edits. Multi-document YAML, JSON and
//! `kind: List` are accepted, which covers `helm template` and `kustomize build` output.

use super::{Location, Object};
use crate::checks::yaml_error_parts;
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// A manifest the audit cannot read, pointing at the file, line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ManifestError {}

/// Loads every object from the given paths (`-` is stdin), in a stable order.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Object>, ManifestError> {
    let mut objects = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let text = crate::input::read_capped(std::io::stdin().lock()).map_err(|message| {
                ManifestError {
                    file: "<stdin>".into(),
                    line: 0,
                    column: 0,
                    message,
                }
            })?;
            parse_text("<stdin>", &text, &mut objects)?;
            continue;
        }
        let mut files = Vec::new();
        collect(path, &mut files, true)?;
        for file in files {
            let name = file.display().to_string();
            let text = crate::input::read_file(&file).map_err(|message| ManifestError {
                file: name.clone(),
                line: 0,
                column: 0,
                message,
            })?;
            parse_text(&name, &text, &mut objects)?;
        }
    }
    Ok(objects)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, explicit: bool) -> Result<(), ManifestError> {
    let meta = std::fs::metadata(path).map_err(|e| ManifestError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
    })?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ManifestError {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read directory: {e}"),
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            let hidden = e
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden {
                collect(&e, out, false)?;
            }
        }
    } else if explicit {
        // Named on the command line: a FIFO (`-f <(helm template ...)`) is read as asked.
        out.push(path.to_path_buf());
    } else if path
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
    {
        // Found by walking a directory: a FIFO or device would block or never end.
        if !meta.is_file() {
            return Err(ManifestError {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                message: "not a regular file (a FIFO, socket or device); name it on the command line to read it".into(),
            });
        }
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Parses one file's text (YAML, possibly multi-document, or JSON).
pub fn parse_text(file: &str, text: &str, out: &mut Vec<Object>) -> Result<(), ManifestError> {
    let is_json = Path::new(file).extension().is_some_and(|e| e == "json")
        || text.trim_start().starts_with('{');
    if is_json {
        let value: Value = serde_json::from_str(text).map_err(|e| ManifestError {
            file: file.to_string(),
            line: e.line() as u64,
            column: e.column() as u64,
            message: format!("invalid JSON: {e}"),
        })?;
        return add_document(file, 1, value, out);
    }
    let docs = serde_saphyr::from_multiple_with_options::<serde_saphyr::Spanned<Value>>(
        text,
        yaml_options(),
    )
    .map_err(|e| {
        let (line, column, message) = yaml_error_parts(&e);
        ManifestError {
            file: file.to_string(),
            line,
            column,
            message: format!("invalid YAML: {message}"),
        }
    })?;
    for doc in docs {
        let line = doc.referenced.line().max(1);
        add_document(file, line, doc.value, out)?;
    }
    Ok(())
}

/// The YAML parser's budgets, raised from its defaults (1,024 documents, 250,000 nodes) to what
/// real cluster dumps hold. The input cap bounds the work; the alias limits, which are what keep
/// a "billion laughs" out, stay as they are.
fn yaml_options() -> serde_saphyr::Options {
    let cap = usize::try_from(crate::input::cap()).unwrap_or(usize::MAX);
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(cap);
    budget.max_documents = 1_000_000;
    budget.max_nodes = 100_000_000;
    budget.max_events = 200_000_000;
    budget.max_total_scalar_bytes = cap;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

fn add_document(
    file: &str,
    line: u64,
    value: Value,
    out: &mut Vec<Object>,
) -> Result<(), ManifestError> {
    let err = |message: String| ManifestError {
        file: file.to_string(),
        line,
        column: 1,
        message,
    };
    if value.is_null() {
        return Ok(());
    }
    let Value::Object(map) = &value else {
        return Err(err(
            "expected a Kubernetes object (a mapping with apiVersion and kind)".into(),
        ));
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() || api_version.is_empty() {
        return Err(err(
            "not a Kubernetes object: apiVersion and kind are required".into(),
        ));
    }
    if kind.ends_with("List") && map.get("items").is_some_and(Value::is_array) {
        for item in map["items"].as_array().into_iter().flatten() {
            add_document(file, line, item.clone(), out)?;
        }
        return Ok(());
    }
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{kind} has no metadata.name")))?
        .to_string();
    let namespace = value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    out.push(Object::new(
        api_version.to_string(),
        kind.to_string(),
        namespace,
        name,
        value,
        Some(Location {
            file: file.to_string(),
            line,
        }),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_lines_and_lists() {
        let text = "# header\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: b\n";
        let mut out = Vec::new();
        parse_text("x.yaml", text, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].location.as_ref().unwrap().line, 3);
        assert_eq!(out[1].kind, "ConfigMap");
        assert_eq!(out[1].location.as_ref().unwrap().line, 8);
    }

    #[test]
    fn errors_name_file_and_line() {
        let mut out = Vec::new();
        let e = parse_text(
            "bad.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: [a\n",
            &mut out,
        )
        .unwrap_err();
        assert_eq!(e.file, "bad.yaml");
        assert_eq!(e.line, 4);
        let e = parse_text(
            "bad.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\nfoo: bar\n",
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (
                6,
                "not a Kubernetes object: apiVersion and kind are required"
            )
        );
        let e = parse_text("bad.json", "{\"kind\": \n", &mut out).unwrap_err();
        assert!(e.message.starts_with("invalid JSON"));
    }
}
