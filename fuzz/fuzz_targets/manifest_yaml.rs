#![no_main]
//! Fuzz target: see `mlsdm_audit::fuzzing::manifest_yaml`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mlsdm_audit::fuzzing::manifest_yaml(data));
