//! Builds what the other suites run, once, before them: the test guests (this workspace's, for
//! wasm32-wasip2), the guests written with Spin's own SDK, and the SDK as `cargo package` makes
//! it. scripts/test.sh runs this first and then tells the suites the guests are built, so that
//! their test processes (one per test under cargo-nextest) do not each run cargo again. Run on
//! its own, it checks that every guest builds.

mod common;

#[test]
fn every_guest_builds() {
    for guest in common::GUESTS {
        let wasm = common::guest(guest);
        assert!(
            std::path::Path::new(&wasm).is_file(),
            "{wasm} was not built"
        );
    }
    let spin_sdk = common::spin_sdk_guest("sdk6-timer-variable");
    assert!(
        std::path::Path::new(&spin_sdk).is_file(),
        "{spin_sdk} was not built"
    );
    let sdk = common::packaged_sdk();
    assert!(sdk.is_dir(), "{} was not unpacked", sdk.display());
}
