//! `--format json`: the report model, serialized as it is (serde_json's pretty printer).
//!
//! The results, nearly all of a large report's bytes (42 MB at 5,000 objects), are rendered on
//! every core, a batch at a time, and written in order: serialized on the one thread that runs
//! after the evaluation, they were the longest serial step of a manifest audit (issue 12). The
//! bytes are exactly `serde_json::to_writer_pretty`'s; a test compares the two.

use super::{CheckResult, Report};
use serde::Serialize;
use serde_json::value::RawValue;

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

/// Results rendered per thread and batch: enough to keep the cores busy, little enough that the
/// batches in flight (one written, one rendered: about 700 bytes a result) are not a second
/// copy of the report. 1,024 with the batch waiting in a channel beside them added 3.5 MiB to
/// the peak of a 5,000-object audit, whose bound is 100 MB (issue 12).
const CHUNK: usize = 512;

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
///
/// Batches of results are rendered on every core while this thread writes the batch before:
/// writing is the kernel copying the text into the output (half of this thread's time after
/// the evaluation at 5,000 objects, under perf), which rendering and writing in turn left the
/// other cores idle for.
fn write_results(results: &[CheckResult], out: &mut impl std::io::Write) -> std::io::Result<()> {
    if results.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    let threads = crate::parallel::threads();
    let batches: Vec<&[CheckResult]> = results.chunks(CHUNK * threads).collect();
    let render = |b: usize| -> Vec<std::io::Result<Vec<u8>>> {
        let chunks: Vec<(bool, &[CheckResult])> = batches[b]
            .chunks(CHUNK)
            .enumerate()
            .map(|(c, chunk)| (b == 0 && c == 0, chunk))
            .collect();
        crate::parallel::map_in_order(&chunks, 1, |&(first, chunk)| render_chunk(first, chunk))
    };
    let write = |out: &mut dyn std::io::Write, texts: Vec<std::io::Result<Vec<u8>>>| {
        texts.into_iter().try_for_each(|text| out.write_all(&text?))
    };
    if batches.len() == 1 || threads == 1 {
        for b in 0..batches.len() {
            write(out, render(b))?;
        }
    } else {
        in_turn(batches.len(), render, |texts| write(out, texts))?;
    }
    out.write_all(b"\n  ]")
}

/// `write(render(b))` for each batch `b` in order, `render` running on another thread one batch
/// ahead of `write`. A rendered batch is handed over when the last one is written (a
/// rendezvous): two batches are held at a time, never the report's whole text. The first error
/// of `write` stops the rendering and is returned; a panic in `render` ends the writing and is
/// raised again here (neither side waits for the other forever).
fn in_turn<T: Send>(
    n: usize,
    render: impl Fn(usize) -> T + Sync,
    mut write: impl FnMut(T) -> std::io::Result<()>,
) -> std::io::Result<()> {
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel(0);
        let render = &render;
        let renderer = scope.spawn(move || {
            for b in 0..n {
                // An error from `send`: the writer stopped (its output failed).
                if send.send(render(b)).is_err() {
                    return;
                }
            }
        });
        let mut written = Ok(());
        for texts in &receive {
            written = write(texts);
            if written.is_err() {
                break;
            }
        }
        drop(receive);
        renderer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        written
    })
}

/// Elements of the `results` array, each after its separator (none before the first of the
/// array), laid out as the pretty printer lays them out there: two levels in.
fn render_chunk(first: bool, chunk: &[CheckResult]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(chunk.len() * 768);
    let _shared = Fragments::enter();
    for (i, result) in chunk.iter().enumerate() {
        out.extend_from_slice(if first && i == 0 {
            b"\n    "
        } else {
            b",\n    "
        });
        result.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            Indented::at(RESULT_DEPTH),
        ))?;
    }
    Ok(out)
}

/// How deep a result sits in the report: an element of the `results` array, a key of the
/// top-level object.
const RESULT_DEPTH: usize = 2;

/// serde_json's `PrettyFormatter` (two spaces a level) starting `depth` levels in, so that a
/// result serializes straight to its place in the report. (Serialized at the top and indented
/// afterwards, each result's text was copied twice: a tenth of the rendering.) The layout is
/// the pretty printer's, line for line: the tests compare the bytes.
struct Indented {
    depth: usize,
    has_value: bool,
}

impl Indented {
    fn at(depth: usize) -> Self {
        Self {
            depth,
            has_value: false,
        }
    }

    fn newline(
        &self,
        writer: &mut (impl std::io::Write + ?Sized),
        comma: bool,
    ) -> std::io::Result<()> {
        const SPACES: &[u8; 64] = &[b' '; 64];
        writer.write_all(if comma { b",\n" } else { b"\n" })?;
        let mut width = 2 * self.depth;
        while width > 0 {
            let n = width.min(SPACES.len());
            writer.write_all(&SPACES[..n])?;
            width -= n;
        }
        Ok(())
    }

    /// An array or object opens a level: its first entry goes on a new line one level in.
    fn open(
        &mut self,
        writer: &mut (impl std::io::Write + ?Sized),
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    /// An array or object closes its level: on a line of its own unless it is empty (`[]`, `{}`).
    fn close(
        &mut self,
        writer: &mut (impl std::io::Write + ?Sized),
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(writer, false)?;
        }
        writer.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for Indented {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(writer, !first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(writer, !first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

thread_local! {
    /// The text of each shared value this thread's batch has rendered, by the value's type and
    /// address (see [`Fragments`]); `None` outside a batch.
    static FRAGMENTS: std::cell::RefCell<Option<fnv::FnvHashMap<Shared, Box<RawValue>>>> =
        const { std::cell::RefCell::new(None) };
}

/// A shared value of a result, by what it is and where it lives. The type is part of the
/// identity: two values of different types can live at one address (std's empty `Arc<str>` and
/// empty `Arc<[String]>` are one static allocation), and the one's text in the other's place
/// would be a string where the schema has a list.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Shared {
    Text(*const u8),
    Lines(*const u8),
}

/// Values that many results share (a check's title, section and checklist lines, a pass's
/// message: one `Arc` per check) rendered once per batch and copied into each result: escaping
/// the same strings again for every result was most of the report's string work (issue 12).
///
/// Keyed by type and address, which is sound only while every value keyed stays alive and
/// unchanged: a batch renders from a borrowed report, and the map lives exactly as long as the
/// batch ([`Fragments::enter`]'s guard). Outside a batch (any other serializer, any other
/// report format) the values serialize as they are.
struct Fragments;

impl Fragments {
    fn enter() -> impl Drop {
        struct Leave;
        impl Drop for Leave {
            fn drop(&mut self) {
                FRAGMENTS.with(|f| f.replace(None));
            }
        }
        FRAGMENTS.with(|f| f.replace(Some(fnv::FnvHashMap::default())));
        Leave
    }
}

/// `value` (the target of the shared `Arc` `key` names, a field of a result) as [`Fragments`]
/// renders it: the batch's copy of its text when one is being rendered, else serialized as it
/// is. A value no other result holds (`shared` false: a failure's own message) is not kept.
pub(super) fn shared_field<T: Serialize + ?Sized, S: serde::Serializer>(
    key: Shared,
    shared: bool,
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if !shared {
        return value.serialize(serializer);
    }
    FRAGMENTS.with(|cell| {
        let Ok(mut fragments) = cell.try_borrow_mut() else {
            return value.serialize(serializer);
        };
        let Some(fragments) = fragments.as_mut() else {
            drop(fragments);
            return value.serialize(serializer);
        };
        let text = match fragments.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                // Laid out at a result's fields' depth, where every use of it sits.
                let mut text = Vec::new();
                value
                    .serialize(&mut serde_json::Serializer::with_formatter(
                        &mut text,
                        Indented::at(RESULT_DEPTH + 1),
                    ))
                    .map_err(serde::ser::Error::custom)?;
                let text = String::from_utf8(text).map_err(serde::ser::Error::custom)?;
                e.insert(RawValue::from_string(text).map_err(serde::ser::Error::custom)?)
            }
        };
        text.serialize(serializer)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rendered report is exactly serde_json's pretty serialization of it, for no result,
    /// one, and more than a batch of them; with the values results share (one title, section,
    /// checklist and pass message per check, one object and location per object) as the engine
    /// shares them, so that a batch renders each once and copies it.
    #[test]
    fn the_streamed_report_is_the_pretty_printers_bytes() {
        use std::sync::Arc;
        /// A check's title, section and checklist lines.
        type CheckStrings = (Arc<str>, Arc<str>, Arc<[String]>);
        let checks: Vec<CheckStrings> = (0..7)
            .map(|c| {
                (
                    Arc::from(format!("Check {c} \"quoted\" \u{e9}\t\u{1f}")),
                    Arc::from(format!("Part / Section {c}")),
                    Arc::from(
                        (0..c % 3)
                            .map(|l| format!("line {l} of {c}\\"))
                            .collect::<Vec<_>>(),
                    ),
                )
            })
            .collect();
        let objects: Vec<(Arc<super::super::ObjectRef>, Arc<crate::k8s::Location>)> = (0..11)
            .map(|o| {
                (
                    Arc::new(super::super::ObjectRef {
                        kind: "Deployment".into(),
                        namespace: (o % 2 == 0).then(|| format!("ns-{o}")),
                        name: format!("app-{o}"),
                    }),
                    Arc::new(crate::k8s::Location {
                        file: format!("dir/app \"{o}\".yaml"),
                        line: o,
                    }),
                )
            })
            .collect();
        // Past three batches whatever the cores, so that batches are handed from the renderer
        // to the writer, and around each size where a chunk or a batch ends.
        let batch = CHUNK * crate::parallel::threads();
        let total = 3 * batch + 5;
        let results: Vec<CheckResult> = (0..total)
            .map(|i| {
                if i % 17 == 0 {
                    // std's empty `Arc<str>` and `Arc<[String]>` are one static allocation:
                    // one address for values of two types.
                    return CheckResult {
                        title: Arc::default(),
                        section: Arc::default(),
                        checklist: Arc::default(),
                        ..CheckResult::new(
                            "check-empty",
                            crate::facts::Source::Kubernetes,
                            super::super::Status::Manual,
                            Arc::<str>::default(),
                        )
                    };
                }
                let (title, section, checklist) = &checks[i % 7];
                let (object, location) = &objects[i % 11];
                let fail = i % 3 == 0;
                let message: Arc<str> = if fail {
                    Arc::from(format!(
                        "message {i} with \"quotes\", a\nnewline and \u{e9}"
                    ))
                } else {
                    title.clone()
                };
                CheckResult {
                    title: title.clone(),
                    section: section.clone(),
                    checklist: checklist.clone(),
                    object: (i % 5 != 0).then(|| object.clone()),
                    location: (i % 4 != 0).then(|| location.clone()),
                    items: if fail && i % 2 == 0 {
                        vec![super::super::Item {
                            kind: crate::checks::item::ItemKind::Container,
                            name: format!("c-{i}"),
                            failed_validations: vec![1, 2],
                        }]
                    } else {
                        Vec::new()
                    },
                    failed_validations: if fail { vec![1] } else { Vec::new() },
                    skip_reason: (i % 13 == 0).then_some(super::super::SkipReason::NotApplicable),
                    ..CheckResult::new(
                        format!("check-{}", i % 7),
                        crate::facts::Source::Kubernetes,
                        if fail {
                            super::super::Status::Fail
                        } else {
                            super::super::Status::Pass
                        },
                        message,
                    )
                }
            })
            .collect();
        for n in [0, 1, 2, CHUNK, CHUNK + 1, batch, batch + 1, total] {
            let mut report = Report::new(super::super::Target::default(), results[..n].to_vec());
            report.notes.push(super::super::Note {
                kind: super::super::NoteKind::SkippedFile,
                message: "a note\nover two lines".into(),
            });
            let expected = serde_json::to_string_pretty(&report).unwrap() + "\n";
            assert_eq!(render(&report), expected, "{n} results");
        }
    }

    /// An output that fails mid-report stops the rendering and gives its error back (the
    /// batches are rendered on other threads while this one writes: none may wait forever).
    #[test]
    fn a_failing_output_ends_the_report_with_its_error() {
        struct Failing(usize);
        impl std::io::Write for Failing {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::other("disk full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let results: Vec<CheckResult> = (0..20_000)
            .map(|i| {
                CheckResult::new(
                    format!("check-{i}"),
                    crate::facts::Source::Kubernetes,
                    super::super::Status::Pass,
                    "passed",
                )
            })
            .collect();
        let report = Report::new(super::super::Target::default(), results);
        for budget in [0, 10_000, 3_000_000] {
            let error = write(&report, Failing(budget)).expect_err("the output failed");
            assert_eq!(error.to_string(), "disk full");
        }
    }

    /// A renderer that panics mid-report ends the writing and its panic reaches the caller: no
    /// report is taken for whole, and neither thread waits for the other.
    #[test]
    fn a_panic_while_rendering_reaches_the_writer() {
        let mut written = Vec::new();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::in_turn(
                10,
                |b| {
                    assert!(b != 3, "rendering batch {b} failed");
                    b
                },
                |b| {
                    written.push(b);
                    Ok(())
                },
            )
        }));
        let panic = outcome.expect_err("the renderer's panic is raised again");
        assert_eq!(
            panic.downcast_ref::<String>().map(String::as_str),
            Some("rendering batch 3 failed")
        );
        assert_eq!(written, [0, 1, 2], "the batches before the panic, in order");
    }

    /// Batches are written in order, each once, and a write error stops the rendering.
    #[test]
    fn batches_are_written_in_turn_until_a_write_fails() {
        let mut written = Vec::new();
        super::in_turn(
            50,
            |b| b * 2,
            |b| {
                written.push(b);
                Ok(())
            },
        )
        .expect("written");
        assert_eq!(written, (0..50).map(|b| b * 2).collect::<Vec<_>>());
        let rendered = std::sync::atomic::AtomicUsize::new(0);
        let error = super::in_turn(
            1_000,
            |b| {
                rendered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                b
            },
            |b| {
                if b == 5 {
                    Err(std::io::Error::other("disk full"))
                } else {
                    Ok(())
                }
            },
        )
        .expect_err("the write failed");
        assert_eq!(error.to_string(), "disk full");
        // The renderer stops at the next hand-over: at most one batch past the failed one.
        assert!(rendered.load(std::sync::atomic::Ordering::Relaxed) <= 7);
    }

    /// Outside a batch the shared values serialize as they are, also on a thread that has just
    /// rendered one: another serializer (compact JSON, a JSON value) never meets a rendered
    /// fragment (a checklist's is laid out on several lines, two levels in).
    #[test]
    fn shared_values_outside_a_batch_are_plain_values() {
        let title: std::sync::Arc<str> = std::sync::Arc::from("A \"title\"");
        let checklist: std::sync::Arc<[String]> =
            std::sync::Arc::from(vec!["one".to_string(), "two".to_string()]);
        let result = CheckResult {
            title: title.clone(),
            checklist: checklist.clone(),
            ..CheckResult::new(
                "c",
                crate::facts::Source::Kubernetes,
                super::super::Status::Pass,
                title,
            )
        };
        // Two results: each shared value is held more than once, as in a run's report. Few
        // enough to render on this thread.
        let report = Report::new(
            super::super::Target::default(),
            vec![result.clone(), result.clone()],
        );
        assert!(render(&report).contains("\"checklist\": [\n        \"one\""));
        let compact = serde_json::to_string(&result).unwrap();
        assert!(
            compact.contains(r#""title":"A \"title\"""#)
                && compact.contains(r#""checklist":["one","two"]"#),
            "{compact}"
        );
        let value = serde_json::to_value(&result).unwrap();
        assert_eq!(value["message"], "A \"title\"");
        assert_eq!(value["checklist"], serde_json::json!(["one", "two"]));
    }
}
