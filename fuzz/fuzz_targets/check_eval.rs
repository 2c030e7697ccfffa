#![no_main]
//! Fuzz target: see `mlsdm_audit::fuzzing::check_eval`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mlsdm_audit::fuzzing::check_eval(data));
