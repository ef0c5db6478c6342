//! Macro UI tests: every accepted handler shape compiles, and every misuse fails with the
//! message in its `.stderr` snapshot. Regenerate snapshots with `TRYBUILD=overwrite`.

#[test]
fn handler_shapes() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
