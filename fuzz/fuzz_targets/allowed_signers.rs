#![no_main]
//! Fuzz target: see `mlsdm_audit::fuzzing::allowed_signers`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mlsdm_audit::fuzzing::allowed_signers(data));
