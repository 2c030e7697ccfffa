#![no_main]
//! Fuzz target: see `mlsdm_audit::fuzzing::promql`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mlsdm_audit::fuzzing::promql(data));
