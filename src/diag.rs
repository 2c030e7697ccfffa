//! One diagnostic type for every input error the user must fix: which file, which line and
//! column (1-based, characters), and what was expected. Every loader (checks, config, waivers,
//! attestations, manifests, MLSDM config) reports through it, so `file:line:col: message` is
//! formatted in one place (as cargo-deny's `diag` does).

use serde::Serialize;
use std::fmt;

/// An error at a place in an input file. Rendered `file:line:column: message`; a `line` of 0
/// means the problem is the file as a whole (it cannot be read, it is not a report) and renders
/// `file: message`; a `column` of 0 means only the line is known (`file:line: message`).
/// `file` names the input as the user knows it: a path, `<stdin>`, `--helm-chart X`, or an
/// object in the cluster when the input has no file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u64,
    pub column: u64,
    /// A stable name for the kind of problem, for tools that act on it (`yaml`, `json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<String>,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            column,
            code: None,
            message: message.into(),
        }
    }

    /// A problem with the file as a whole (no position).
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }

    /// A YAML syntax or shape error in `file`, at the place the parser stopped.
    pub fn yaml(file: impl Into<String>, e: &serde_saphyr::Error) -> Self {
        let (line, column, message) = yaml_error_parts(e);
        Self::new(file, line, column, message).with_code("yaml")
    }

    /// A JSON syntax or shape error in `file`; `what` says what the file should have been.
    pub fn json(file: impl Into<String>, what: &str, e: &serde_json::Error) -> Self {
        Self::new(
            file,
            e.line() as u64,
            e.column() as u64,
            format!("{what}: {e}"),
        )
        .with_code("json")
    }

    #[must_use]
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The same place with another message (a loader's many problems at one entry).
    #[must_use]
    pub fn with_message(&self, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..self.clone()
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (line, 0) => write!(f, "{}:{line}: {}", self.file, self.message),
            (line, column) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem a loader found (all reported, not only the first), one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

/// The message of a serde-saphyr error without its location prefix and source snippet.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    if first.starts_with("line ")
        && let Some((_, rest)) = first.split_once(": ")
    {
        return rest.to_string();
    }
    first.to_string()
}

/// Turns a YAML error into (line, column, message).
pub fn yaml_error_parts(e: &serde_saphyr::Error) -> (u64, u64, String) {
    let (line, column) = e
        .location()
        .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
    (line, column, yaml_message(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rendering_for_every_precision() {
        assert_eq!(
            Diagnostic::new("a.yaml", 3, 7, "bad").to_string(),
            "a.yaml:3:7: bad"
        );
        assert_eq!(
            Diagnostic::new("a.yaml", 3, 0, "bad").to_string(),
            "a.yaml:3: bad"
        );
        assert_eq!(
            Diagnostic::file("a.yaml", "unreadable").to_string(),
            "a.yaml: unreadable"
        );
        let two = Diagnostics(vec![
            Diagnostic::new("a", 1, 1, "x"),
            Diagnostic::file("b", "y"),
        ]);
        assert_eq!(two.to_string(), "a:1:1: x\nb: y");
    }

    #[test]
    fn yaml_and_json_errors_keep_their_position() {
        let e = serde_saphyr::from_str::<Vec<u32>>("- 1\n- [").unwrap_err();
        let d = Diagnostic::yaml("f.yaml", &e);
        assert_eq!((d.file.as_str(), d.code), ("f.yaml", Some("yaml")));
        assert!(d.line >= 2, "{d}");
        let e = serde_json::from_str::<serde_json::Value>("{\n  \"a\": ,}").unwrap_err();
        let d = Diagnostic::json("r.json", "invalid JSON", &e);
        assert_eq!((d.line, d.code), (2, Some("json")));
        assert!(d.to_string().starts_with("r.json:2:"), "{d}");
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["file"], "r.json");
        assert_eq!(v["code"], "json");
    }
}
