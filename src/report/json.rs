//! `--format json`: the report model, serialized as it is (serde_json's pretty printer).
//!
//! The results, nearly all of a large report's bytes (42 MB at 5,000 objects), are rendered on
//! every core, a batch at a time, and written in order: serialized on the one thread that runs
//! after the evaluation, they were the longest serial step of a manifest audit (issue 12). The
//! bytes are exactly `serde_json::to_writer_pretty`'s; a test compares the two.

use super::{CheckResult, Report};

pub fn render(report: &Report) -> String {
    let mut out = Vec::new();
    // Serializing to memory cannot fail: the model has no map with non-string keys.
    let _ = write(report, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The report's top-level `results` key as the pretty printer writes it when the list is empty:
/// a key of the top-level object sits alone on its line, two spaces in, and no JSON string holds
/// a raw newline, so this text occurs once, there.
const EMPTY_RESULTS: &str = "\n  \"results\": []";

/// Results rendered per thread and batch: enough to keep the cores busy, little enough that a
/// batch's text (about 700 bytes a result) is not a second copy of the report.
const CHUNK: usize = 1024;

/// The same bytes as [`render`], streamed: a report of 5,000 objects is about 40 MB of JSON,
/// which need not be held in memory beside the report it renders.
pub fn write(report: &Report, mut out: impl std::io::Write) -> std::io::Result<()> {
    // Every field but the results, as the report has them (a field added to `Report` must be
    // named here: the struct literal does not compile without it).
    let shell = Report {
        schema_version: report.schema_version.clone(),
        tool: report.tool.clone(),
        generated_at: report.generated_at.clone(),
        target: report.target.clone(),
        summary: report.summary.clone(),
        results: Vec::new(),
        checks: report.checks.clone(),
        notes: report.notes.clone(),
        signoffs: report.signoffs.clone(),
    };
    let text = serde_json::to_string_pretty(&shell)?;
    let Some(at) = text.find(EMPTY_RESULTS) else {
        // Not the layout this module knows: the plain serializer, on one thread.
        serde_json::to_writer_pretty(&mut out, report)?;
        return out.write_all(b"\n");
    };
    let key_end = at + EMPTY_RESULTS.len() - "[]".len();
    out.write_all(&text.as_bytes()[..key_end])?;
    write_results(&report.results, &mut out)?;
    out.write_all(&text.as_bytes()[at + EMPTY_RESULTS.len()..])?;
    out.write_all(b"\n")
}

/// The `results` array as the pretty printer writes it as the value of a top-level key.
fn write_results(results: &[CheckResult], out: &mut impl std::io::Write) -> std::io::Result<()> {
    if results.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    let threads = crate::parallel::threads();
    for (b, batch) in results.chunks(CHUNK * threads).enumerate() {
        let chunks: Vec<(bool, &[CheckResult])> = batch
            .chunks(CHUNK)
            .enumerate()
            .map(|(c, chunk)| (b == 0 && c == 0, chunk))
            .collect();
        for text in
            crate::parallel::map_in_order(&chunks, 1, |&(first, chunk)| render_chunk(first, chunk))
        {
            out.write_all(&text?)?;
        }
    }
    out.write_all(b"\n  ]")
}

/// Elements of the `results` array, each after its separator (none before the first of the
/// array), indented two levels as the pretty printer indents them there.
fn render_chunk(first: bool, chunk: &[CheckResult]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(chunk.len() * 768);
    let mut one = Vec::with_capacity(1024);
    for (i, result) in chunk.iter().enumerate() {
        out.extend_from_slice(if first && i == 0 {
            b"\n    "
        } else {
            b",\n    "
        });
        one.clear();
        serde_json::to_writer_pretty(&mut one, result)?;
        // Every newline of the element is the printer's own (strings escape theirs): indent
        // each following line by the two levels the element sits at.
        let mut from = 0;
        for newline in memchr::memchr_iter(b'\n', &one) {
            out.extend_from_slice(&one[from..newline]);
            out.extend_from_slice(b"\n    ");
            from = newline + 1;
        }
        out.extend_from_slice(&one[from..]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rendered report is exactly serde_json's pretty serialization of it, for no result,
    /// one, and more than a batch of them.
    #[test]
    fn the_streamed_report_is_the_pretty_printers_bytes() {
        let results: Vec<CheckResult> = (0..3000)
            .map(|i| {
                CheckResult::new(
                    format!("check-{}", i % 7),
                    crate::facts::Source::Kubernetes,
                    if i % 3 == 0 {
                        super::super::Status::Fail
                    } else {
                        super::super::Status::Pass
                    },
                    format!("message {i} with \"quotes\", a\nnewline and \u{e9}"),
                )
            })
            .collect();
        for n in [0, 1, 2, 1024, 1025, 3000] {
            let mut report = Report::new(super::super::Target::default(), results[..n].to_vec());
            report.notes.push(super::super::Note {
                kind: super::super::NoteKind::SkippedFile,
                message: "a note\nover two lines".into(),
            });
            let expected = serde_json::to_string_pretty(&report).unwrap() + "\n";
            assert_eq!(render(&report), expected, "{n} results");
        }
    }
}
