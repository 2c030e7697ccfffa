//! One diagnostic type for every input error the user must fix: which file, which line and
//! column (1-based, characters), and what was expected. Every loader (checks, config, waivers,
//! attestations, manifests, MLSDM config) reports through it, so `file:line:col: message` is
//! formatted in one place (as cargo-deny's `diag` does).

use std::fmt;

/// An error at a place in an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: u64,
    pub column: u64,
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
            message: message.into(),
        }
    }

    /// A YAML syntax or shape error in `file`, at the place the parser stopped.
    pub fn yaml(file: impl Into<String>, e: &serde_saphyr::Error) -> Self {
        let (line, column, message) = yaml_error_parts(e);
        Self::new(file, line, column, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

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
