//! Macro UI tests: every accepted handler shape compiles, and every misuse fails with the
//! message in its `.stderr` snapshot. Regenerate snapshots with `TRYBUILD=overwrite`.

#[test]
fn handler_shapes() {
    // The snapshots are rustc's own messages: the cases build without a lint wrapper (.ci/run
    // builds the workspace under clippy-driver), whose lints would add to them.
    // SAFETY: the only test in this binary, so no other thread reads the environment.
    unsafe { std::env::remove_var("RUSTC_WORKSPACE_WRAPPER") };
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
