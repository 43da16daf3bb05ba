//! Compile errors of `#[derive(Stateify)]`: each mistake is reported with a
//! span on the offending attribute or field, all of them at once, without a
//! cascade of follow-up errors. Also: `SharedPtr` cannot be implemented
//! outside the crate (`shared_ptr_sealed.rs`).

#[test]
fn derive_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
