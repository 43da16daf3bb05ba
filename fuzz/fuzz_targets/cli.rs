#![no_main]
//! See `stateify_cli::fuzz_input`: the CLI's detection and reading of a file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| stateify_cli::fuzz_input(
    data,
    stateify_tests::corpus::KEY
));
