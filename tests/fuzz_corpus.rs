//! Replays every fuzz target's corpus and every crash a fuzzer found (`fuzz/corpus/TARGET/`,
//! `fuzz/regressions/TARGET/`) through the same entry points the fuzzers call, so a fixed crash
//! stays fixed without the fuzzing toolchain.

use mlsdm_audit::fuzzing::TARGETS;
use std::path::Path;

#[test]
fn every_corpus_input_and_past_crash_returns() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut ran = 0;
    for (name, target) in TARGETS {
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries.flatten() {
                let data = std::fs::read(entry.path()).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(
                    outcome.is_ok(),
                    "{name} panicked on {}",
                    entry.path().display()
                );
                ran += 1;
            }
        }
    }
    assert!(ran >= TARGETS.len(), "the corpus is missing: {ran} inputs");
}
