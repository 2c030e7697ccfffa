#![no_main]
//! Fuzz target: see `mlsdm_audit::fuzzing::signed_report`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mlsdm_audit::fuzzing::signed_report(data));
