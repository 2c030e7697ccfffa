//! The start-up baseline of issue 12's target 4 ("within 2x of process start plus a YAML
//! parse"), measured by `scripts/bench.sh`: a process that reads one manifest file, parses every
//! document with the YAML crate and into the value type mlsdm-audit uses (serde-saphyr into
//! `serde_json::Value`, one `Spanned` per document as `src/sources/manifests.rs` does) and exits.
//! Usage: yaml-parse FILE. Exit 1 (with the error) when the file cannot be read or parsed, so the
//! bench never times a failure as the baseline.

// A command-line tool: its output and its errors are what it prints.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: yaml-parse FILE");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("yaml-parse: {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    };
    match serde_saphyr::from_multiple::<serde_saphyr::Spanned<serde_json::Value>>(&text) {
        // The document count, so the parse cannot be optimised away and a run shows it parsed.
        Ok(docs) => println!("{} documents", docs.len()),
        Err(e) => {
            eprintln!("yaml-parse: {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    }
}
