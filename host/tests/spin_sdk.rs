//! Components built with Spin's own SDK run on the host: spin-sdk 6 and 7 Redis components
//! export `spin:redis/inbound-redis@3.0.0` (an `async func`) and import Spin's v3 outbound Redis
//! and variables; a timer component reads a variable through spin-sdk's v3 `variables`. A
//! component importing what the host lacks is refused at start, by name. (Their key-value and
//! SQLite use is in `state.rs`.)

mod common;

use std::time::Duration;

use common::{AppDir, RedisServer, TestApp, spin_sdk_guest};

/// An app with one spin-sdk Redis component on `requests`, replying on `replies`; `allowed`
/// is its `allowed_outbound_hosts` list as TOML.
fn redis_app(server: &RedisServer, guest: &str, allowed: &str, max_in_flight: usize) -> AppDir {
    let url = server.url();
    TestApp::new("spin-sdk-redis")
        .redis_address("redis", &url)
        .trigger(
            "redis",
            "replier",
            &format!("channel = \"requests\"\nmax_in_flight = {max_in_flight}"),
        )
        .component(
            "replier",
            &spin_sdk_guest(guest),
            &format!(
                "allowed_outbound_hosts = [{allowed}]\n\
                 variables = {{ redis_address = \"{url}\", reply_channel = \"replies\" }}"
            ),
        )
        .write()
}

/// The v3 world end to end: the handler runs, reads its variables, opens an outbound
/// connection and publishes; a handler error is logged with its message and the next message
/// is handled.
fn replies_through_spin_sdk(guest: &str) {
    let server = RedisServer::start();
    let mut replies = server.subscribe("replies");
    let app = redis_app(&server, guest, &format!("\"{}\"", server.url()), 1);
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "hello");
    assert_eq!(replies.next(), "HELLO");
    server.publish("requests", "fail");
    server.publish("requests", "next");
    assert_eq!(replies.next(), "NEXT");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.contains("asked to fail"),
        "the handler's error is logged with its message: {}",
        run.stderr
    );
    run.assert_stderr_has("component=replier");
}

#[test]
fn a_spin_sdk_6_redis_component_replies_through_spin_sdk_outbound_redis() {
    replies_through_spin_sdk("sdk6-redis-reply");
}

#[test]
fn a_spin_sdk_7_redis_component_replies_through_spin_sdk_outbound_redis() {
    replies_through_spin_sdk("sdk7-redis-reply");
}

/// `max_in_flight > 1` runs several async handlers at once; every message is still handled.
#[test]
fn async_handlers_run_several_at_once_and_every_message_is_handled() {
    let server = RedisServer::start();
    let mut replies = server.subscribe("replies");
    let app = redis_app(
        &server,
        "sdk6-redis-reply",
        &format!("\"{}\"", server.url()),
        4,
    );
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    let mut connection = server.client().get_connection().unwrap();
    let mut pipeline = redis::pipe();
    for n in 0..200 {
        pipeline
            .cmd("PUBLISH")
            .arg("requests")
            .arg(format!("m{n}"))
            .ignore();
    }
    pipeline.query::<()>(&mut connection).unwrap();
    let mut received: Vec<String> = (0..200).map(|_| replies.next()).collect();
    received.sort();
    let mut expected: Vec<String> = (0..200).map(|n| format!("M{n}")).collect();
    expected.sort();
    assert_eq!(received, expected);
    assert!(host.stop().success);
}

/// The v3 outbound API follows the same `allowed_outbound_hosts` rules as 2.0.0.
#[test]
fn v3_outbound_redis_to_a_host_not_allowed_is_refused_and_logged() {
    let server = RedisServer::start();
    let mut replies = server.subscribe("replies");
    let app = redis_app(&server, "sdk6-redis-reply", "", 1);
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "hello");
    assert!(
        replies.nothing_within(Duration::from_millis(700)),
        "no reply may get out"
    );
    let run = host.stop();
    run.assert_stderr_has("outbound Redis connection refused");
    assert!(
        run.stderr.contains("Redis handler failed")
            || run.stderr.contains("handler returned an error"),
        "{}",
        run.stderr
    );
}

/// A timer component (Spin's timer world, plain wit-bindgen) reading a variable through
/// spin-sdk 6, which imports `spin:variables/variables@3.0.0`.
#[test]
fn a_timer_component_reads_a_variable_through_spin_sdk_v3_variables() {
    let app = TestApp::new("spin-sdk-timer")
        .variable("greeting", "{ default = \"hello from v3\" }")
        .trigger("timer", "greeter", "interval_secs = 1")
        .component(
            "greeter",
            &spin_sdk_guest("sdk6-timer-variable"),
            "variables = { greeting = \"{{ greeting }}\" }",
        )
        .write();
    let run = app.run(&["--once"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "[greeter] greeting=hello from v3\n");
}

/// A component importing an interface the host lacks fails at start, naming the component,
/// the missing imports (as the component spells them), and what the host provides.
#[test]
fn a_component_importing_what_the_host_lacks_is_refused_naming_the_import() {
    let wasm = wat::parse_str(
        r#"(component
            (import "spin:mqtt/mqtt@3.0.0" (instance (export "publish" (func))))
            (import "wasi:config/store@0.3.0-rc-2026-03-15" (instance (export "get" (func))))
            (import "wasi:random/random@0.3.0-rc-2026-03-15" (instance
                (export "get-random-u64" (func (result u64)))))
            (core module $m (func (export "run")))
            (core instance $i (instantiate $m))
            (func (export "handle-timer-request") (canon lift (core func $i "run"))))"#,
    )
    .expect("a valid component text");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("mq.wasm");
    std::fs::write(&source, wasm).unwrap();
    let app = TestApp::new("lacking")
        .trigger("timer", "mq", "interval_secs = 1")
        .component("mq", &source.display().to_string(), "")
        .write();
    let run = app.run(&["--once"]);
    assert!(!run.success);
    let error = run
        .stderr
        .lines()
        .find(|line| line.starts_with("Error: "))
        .unwrap_or_else(|| panic!("an error line: {}", run.stderr));
    assert!(
        error.contains("component `mq` (")
            && error.contains(
                "mq.wasm) imports what this host does not provide: spin:mqtt/mqtt@3.0.0, \
                 wasi:config/store@0.3.0-rc-2026-03-15. "
            )
            && error.contains(
                "This host provides: fermyon:spin/variables@2.0.0, fermyon:spin/redis@2.0.0, \
                 fermyon:spin/key-value@2.0.0, fermyon:spin/sqlite@2.0.0, \
                 spin:variables/variables@3.0.0, spin:redis/redis@3.0.0, \
                 spin:key-value/key-value@3.0.0, spin:sqlite/sqlite@3.1.0, \
                 wasi:keyvalue/store@0.2.0-draft2, wasi:keyvalue/atomics@0.2.0-draft2, \
                 wasi:keyvalue/batch@0.2.0-draft2, WASI 0.2 (wasi:cli, wasi:clocks, \
                 wasi:filesystem, wasi:http, wasi:io, wasi:random, wasi:sockets), and to \
                 components using component-model async WASI 0.3.0 (wasi:cli, wasi:clocks, \
                 wasi:filesystem, wasi:http, wasi:random, wasi:sockets; also as its release \
                 candidate 0.3.0-rc-2026-03-15, which spin-sdk 6 imports); with \
                 `--experimental-wasi-otel`, wasi:otel/tracing@0.2.0-rc.2"
            ),
        "{error}"
    );
}

/// A component using a WebAssembly feature the engine leaves off (here threads, for a shared
/// memory) is refused at start, saying which feature, instead of a bare parse error.
#[test]
fn a_component_using_a_feature_the_engine_leaves_off_is_refused_naming_it() {
    let wasm = wat::parse_str("(component (core module (memory 1 1 shared)))")
        .expect("a valid component text");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("threads.wasm");
    std::fs::write(&source, wasm).unwrap();
    let app = TestApp::new("threads")
        .trigger("timer", "threads", "interval_secs = 1")
        .component("threads", &source.display().to_string(), "")
        .write();
    let run = app.run(&["--once", "--no-cache"]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("loading component `threads`")
            && run
                .stderr
                .contains("it uses a WebAssembly feature this host's engine does not enable (")
            && run.stderr.contains("threads"),
        "{}",
        run.stderr
    );
}

/// Only components that use component-model async run on the engine that has it: every call
/// into that engine costs more (see docs/performance.md), so the others keep the plain one.
#[test]
fn only_components_using_component_model_async_get_the_concurrent_engine() {
    use spin_trigger_host::EngineOptions;
    use spin_trigger_host::app::Component;
    use spin_trigger_host::internals::AllowedHosts;
    use spin_trigger_host::internals::Engine;

    let mut options = EngineOptions::default();
    options.cache_dir = None;
    let engine = Engine::new(options).unwrap();
    let concurrent = |source: String| {
        let mut component = Component::default();
        component.id = "probe".into();
        component.source = std::path::PathBuf::from(source).into();
        engine
            .prepare(&component, Default::default(), AllowedHosts::default())
            .unwrap()
            .is_concurrent()
    };
    assert!(concurrent(spin_sdk_guest("sdk6-redis-reply")));
    assert!(concurrent(spin_sdk_guest("sdk6-timer-variable")));
    assert!(!concurrent(common::guest("redis-echo")));
    assert!(!concurrent(common::guest("timer-hello-raw-bindgen")));
    assert!(!concurrent(common::guest("redis-message-guest")));
}

/// The host runs spin-sdk 6's WASI 0.3 release-candidate imports on its WASI 0.3.0 by renaming
/// them (`engine/release_candidate_imports.rs`). That is sound because the two are the same
/// interfaces under another version: this holds the release candidate's WIT, as spin-sdk 6
/// builds against it (the `wasip3` crate its guests resolve), to the 0.3.0 WIT wasmtime-wasi-http
/// implements, file by file, but for the version, comments, and `@since`/`@unstable` gates.
/// A wasmtime upgrade that changes WASI 0.3 fails here, not in a guest.
#[test]
fn wasi_0_3_release_candidate_interfaces_are_the_release_s_but_for_the_version() {
    let workspace = common::workspace_root();
    fetch_spin_sdk_guest_packages(&workspace);
    let candidate = package_dir(
        &workspace.join("tests/spin-sdk-guests/Cargo.toml"),
        "wasip3",
        "0.6.0+wasi-0.3.0-rc-2026-03-15",
    )
    .join("wit/deps");
    let release = package_dir(
        &workspace.join("Cargo.toml"),
        "wasmtime-wasi-http",
        "48.0.8",
    )
    .join("src/p3/wit/deps");
    let interface_text = |text: &str| -> String {
        text.replace("0.3.0-rc-2026-03-15", "0.3.0")
            .lines()
            .map(str::trim)
            .filter(|line| {
                !line.is_empty()
                    && !line.starts_with("//")
                    && !line.starts_with("@since(")
                    && !line.starts_with("@unstable(")
                    && !line.starts_with("@deprecated(")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for package in ["cli", "clocks", "filesystem", "http", "random", "sockets"] {
        let read = |dir: &std::path::Path| {
            let file = dir.join(format!("{package}.wit"));
            std::fs::read_to_string(&file)
                .unwrap_or_else(|error| panic!("{}: {error}", file.display()))
        };
        let (candidate_text, release_text) = (read(&candidate), read(&release));
        assert!(
            candidate_text.contains("@0.3.0-rc-2026-03-15;"),
            "{package}: not the release candidate"
        );
        assert_eq!(
            interface_text(&candidate_text),
            interface_text(&release_text),
            "wasi:{package}: the release candidate differs from 0.3.0"
        );
    }
}

/// Downloads the spin-sdk guests' packages, when the guest build has not already.
fn fetch_spin_sdk_guest_packages(workspace: &std::path::Path) {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["fetch", "--locked", "--manifest-path"])
        .arg(workspace.join("tests/spin-sdk-guests/Cargo.toml"))
        .status()
        .expect("running cargo fetch");
    assert!(
        status.success(),
        "cargo fetch for the spin-sdk guests failed"
    );
}

/// The source directory of `name` at `version` in the packages `manifest` resolves.
fn package_dir(manifest: &std::path::Path, name: &str, version: &str) -> std::path::PathBuf {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == name && package["version"] == version)
        .unwrap_or_else(|| panic!("{name} {version} among {}'s packages", manifest.display()));
    std::path::Path::new(package["manifest_path"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}
