#![no_main]
//! Fuzz target: see `mlsdm_audit::fuzzing::quantity`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| mlsdm_audit::fuzzing::quantity(data));
