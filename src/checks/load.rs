//! Finding and reading check files: the built-in checks, `--checks` directories and files, with
//! every error collected (a duplicate id, an unreadable file) before any check runs.

use super::compile::parse_builtin;
use super::static_tree::Static;
use super::{Check, CheckError, CheckErrors, cel, parse_check};
use std::path::{Path, PathBuf};

/// A built-in check file as embedded in the binary.
#[derive(Debug)]
pub struct BuiltinFile {
    /// The file's name in `checks/`.
    pub name: &'static str,
    pub text: &'static str,
    /// SHA-256 of `text` in lowercase hex, computed by `build.rs` (`tests/catalog.rs` holds it
    /// to the hash a `--checks` file of the same text gets).
    pub sha256: &'static str,
    /// The file as a constant tree (`build.rs`), which reads into the same check model without
    /// parsing anything at run time; `None` for a file whose YAML build.rs does not take
    /// (anchors, tags, numbers other than plain integers: see `build.rs`), which is read from
    /// `text`.
    pub tree: Option<&'static Static>,
}

/// The built-in checks, compiled into the binary (see `build.rs`).
const BUILTIN: &[BuiltinFile] = include!(concat!(env!("OUT_DIR"), "/builtin_checks.rs"));

/// The built-in check files as embedded.
pub fn builtin_files() -> &'static [BuiltinFile] {
    BUILTIN
}

/// Loads the built-in checks, then each `--checks` directory. An id that is already loaded is an
/// error: a team's file silently replacing a built-in check would change what the gate means.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Check>, CheckErrors> {
    load_with(dirs, false)
}

/// As [`load`]; with `override_builtin` (`--override-builtin`), a `--checks` file may replace a
/// built-in check of the same id (the report records the file and its SHA-256).
pub fn load_with(dirs: &[PathBuf], override_builtin: bool) -> Result<Vec<Check>, CheckErrors> {
    let mut errors = Vec::new();
    let mut checks: Vec<Check> = Vec::new();
    // The catalog's expressions are compiled when first evaluated (`parse_builtin`): a run
    // compiles only what it evaluates. Its files are read on this thread: since they are
    // constant trees (`static_tree`), reading all of them is about a millisecond, less than a
    // second thread cost to start and feed (measured on a one-file audit, issue 12).
    for parsed in BUILTIN
        .iter()
        .map(|file| parse_builtin(&format!("checks/{}", file.name), file))
    {
        match parsed {
            Ok(mut c) => {
                c.builtin = true;
                checks.push(c);
            }
            Err(e) => errors.extend(e),
        }
    }
    let mut replaced = std::collections::HashSet::new();
    for dir in dirs {
        for (origin, text) in read_check_files(dir, &mut errors) {
            match parse_check(&origin, &text, cel::CelEnv::shared()) {
                Ok(c) => match checks.iter_mut().find(|e| e.id == c.id) {
                    // An override may tighten a built-in check, never make a mandatory one
                    // optional: `requires:` would skip it unless a team declares the requirement.
                    Some(existing)
                        if existing.builtin
                            && override_builtin
                            && existing.requires.is_none()
                            && c.requires.is_some() =>
                    {
                        let line = text
                            .lines()
                            .position(|l| l.starts_with("requires:"))
                            .map_or(1, |i| i as u64 + 1);
                        errors.push(CheckError {
                            code: None,
                            file: origin,
                            line,
                            column: 1,
                            message: format!(
                                "requires: on an override of the built-in check {:?}, which is mandatory: it would be skipped unless the requirement is declared (remove requires:, or give the check another id)",
                                c.id
                            ),
                        });
                    }
                    Some(existing)
                        if existing.builtin
                            && override_builtin
                            && replaced.insert(c.id.clone()) =>
                    {
                        *existing = c;
                    }
                    Some(existing) => {
                        let hint = if existing.builtin {
                            "give it another id, or pass --override-builtin to replace the built-in check"
                        } else {
                            "each id may be defined once"
                        };
                        errors.push(CheckError {
                            code: None,
                            file: origin,
                            line: 1,
                            column: 1,
                            message: format!(
                                "check id {:?} is already defined by {} ({hint})",
                                c.id, existing.origin
                            ),
                        });
                    }
                    None => checks.push(c),
                },
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        checks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(checks)
    } else {
        Err(crate::diag::Diagnostics(errors))
    }
}

/// Validates check files for `validate-checks`; returns how many loaded.
pub fn validate_paths(paths: &[PathBuf]) -> Result<usize, CheckErrors> {
    let env = cel::CelEnv::shared();
    let mut errors = Vec::new();
    let mut count = 0;
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for path in paths {
        for (origin, text) in read_check_files(path, &mut errors) {
            match parse_check(&origin, &text, env) {
                Ok(c) => {
                    if let Some(first) = seen.insert(c.id.clone(), origin.clone()) {
                        errors.push(CheckError {
                            code: None,
                            file: origin,
                            line: 1,
                            column: 1,
                            message: format!("duplicate check id {:?} (also in {first})", c.id),
                        });
                    }
                    count += 1;
                }
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        Ok(count)
    } else {
        Err(crate::diag::Diagnostics(errors))
    }
}

fn read_check_files(path: &Path, errors: &mut Vec<CheckError>) -> Vec<(String, String)> {
    let io_err = |p: &Path, e: &String| CheckError {
        code: None,
        file: p.display().to_string(),
        line: 0,
        column: 0,
        message: e.clone(),
    };
    let mut out = Vec::new();
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            // An unreadable entry is an error, not a check file skipped.
            Ok(rd) => match rd.map(|e| e.map(|e| e.path())).collect() {
                Ok(paths) => paths,
                Err(e) => {
                    errors.push(io_err(path, &format!("cannot read directory: {e}")));
                    return out;
                }
            },
            Err(e) => {
                errors.push(io_err(path, &format!("cannot read directory: {e}")));
                return out;
            }
        };
        entries.sort();
        let mut found = false;
        for p in entries {
            if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found = true;
                match crate::input::read_file(&p) {
                    Ok(t) => out.push((p.display().to_string(), t)),
                    Err(e) => errors.push(io_err(&p, &e)),
                }
            }
        }
        // A team's checks directory that gives no check (empty, or its files in a subfolder:
        // the read is not recursive) loaded nothing and the gate passed without them.
        if !found {
            errors.push(io_err(
                path,
                &"no check file (*.yaml, *.yml) in this directory (its subdirectories are not read): give the directory that holds them".to_string(),
            ));
        }
    } else {
        match crate::input::read_file(path) {
            Ok(t) => out.push((path.display().to_string(), t)),
            Err(e) => errors.push(io_err(path, &e)),
        }
    }
    out
}
