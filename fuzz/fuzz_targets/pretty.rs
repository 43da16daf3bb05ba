#![no_main]
//! See `stateify_tests::fuzz::pretty`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| stateify_tests::fuzz::pretty(data));
