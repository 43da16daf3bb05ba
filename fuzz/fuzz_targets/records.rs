#![no_main]
//! See `stateify_tests::fuzz::records`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| stateify_tests::fuzz::records(data));
