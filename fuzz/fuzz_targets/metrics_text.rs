#![no_main]
//! Fuzz target: see `mlsdm_audit::fuzzing::metrics_text`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mlsdm_audit::fuzzing::metrics_text(data));
