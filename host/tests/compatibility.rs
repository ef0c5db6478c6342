//! What components built with the SDK export and import, inspected from the built `.wasm`:
//! a payload-only Redis handler and an argument-less timer handler must export exactly Spin's
//! raw worlds, so they run on Spin's own triggers.

mod common;

use common::guest;
use wasmtime::component::Component;

fn exports_and_imports(crate_name: &str) -> (Vec<String>, Vec<String>) {
    let engine = wasmtime::Engine::default();
    let component = Component::from_file(&engine, guest(crate_name))
        .unwrap_or_else(|error| panic!("loading {crate_name}: {error}"));
    let component_type = component.component_type();
    let exports = component_type
        .exports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let imports = component_type
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    (exports, imports)
}

/// Imports Spin provides to its triggers' components: WASI p2 and Spin's own interfaces.
fn is_spin_provided(import: &str) -> bool {
    import.starts_with("wasi:") || import.starts_with("fermyon:spin/")
}

#[test]
fn a_payload_only_redis_handler_exports_exactly_spins_inbound_redis() {
    let (exports, imports) = exports_and_imports("redis-echo");
    assert_eq!(exports, ["fermyon:spin/inbound-redis"]);
    assert!(
        imports.iter().all(|import| is_spin_provided(import)),
        "{imports:?}"
    );
    assert!(
        imports.contains(&"fermyon:spin/redis@2.0.0".to_owned()),
        "{imports:?}"
    );
}

#[test]
fn an_argumentless_timer_handler_exports_exactly_spins_timer_world() {
    let (exports, imports) = exports_and_imports("timer-hello-greeter");
    assert_eq!(exports, ["handle-timer-request"]);
    assert!(
        imports.iter().all(|import| is_spin_provided(import)),
        "{imports:?}"
    );
    assert!(
        !imports
            .iter()
            .any(|import| import.starts_with("fermyon:spin/redis")),
        "a component imports only what it uses: {imports:?}"
    );
}

#[test]
fn a_plain_wit_bindgen_component_and_the_sdk_agree_on_the_raw_timer_world() {
    let (sdk_exports, _) = exports_and_imports("timer-hello-greeter");
    let (plain_exports, plain_imports) = exports_and_imports("timer-hello-raw-bindgen");
    assert_eq!(sdk_exports, plain_exports);
    assert!(plain_imports.contains(&"fermyon:spin/variables@2.0.0".to_owned()));
}

#[test]
fn richer_handlers_export_our_versioned_worlds() {
    assert_eq!(
        exports_and_imports("probe-guest").0,
        ["spin-trigger:sdk/timer-handler@0.4.0"]
    );
    assert_eq!(
        exports_and_imports("timer-0-2-guest").0,
        ["spin-trigger:sdk/timer-handler@0.2.0"]
    );
    assert_eq!(
        exports_and_imports("timer-0-1-guest").0,
        ["spin-trigger:sdk/timer-handler@0.1.0"]
    );
    assert_eq!(
        exports_and_imports("redis-message-guest").0,
        ["spin-trigger:sdk/redis-handler@0.5.0"]
    );
    assert_eq!(
        exports_and_imports("stream-batch-guest").0,
        ["spin-trigger:sdk/redis-batch-handler@0.5.0"]
    );
    assert_eq!(
        exports_and_imports("redis-message-0-2-guest").0,
        ["spin-trigger:sdk/redis-handler@0.2.0"]
    );
    assert_eq!(
        exports_and_imports("stream-batch-0-3-guest").0,
        ["spin-trigger:sdk/redis-batch-handler@0.3.0"]
    );
}
