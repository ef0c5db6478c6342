//! Redis with a password (`requirepass`) and an ACL user: the pub/sub trigger, the stream
//! trigger and the outbound API authenticate with the credentials in their addresses; a wrong
//! password is a clear error; and no password ever appears in the host's output.

mod common;

use common::{AppDir, RedisServer, TestApp, guest};
use redis::Commands;

const PASSWORD: &str = "s3cret-default-pass";
const ALICE_PASSWORD: &str = "alice-acl-pass";

/// An app on `server` whose triggers authenticate with `trigger_auth` (`user:password`) and
/// whose component, replying on `replies`, with `outbound_auth`.
fn app(server: &RedisServer, trigger_auth: &str, outbound_auth: &str) -> AppDir {
    let port = server.port;
    let trigger_address = format!("redis://{trigger_auth}@127.0.0.1:{port}");
    TestApp::new("auth")
        .trigger(
            "redis",
            "watcher",
            &format!("address = \"{trigger_address}\"\nchannel = \"requests\""),
        )
        .trigger(
            "redis-stream",
            "watcher",
            &format!("address = \"{trigger_address}\"\nstream = \"jobs\""),
        )
        .replying_component_to(
            "watcher",
            &guest("redis-message-guest"),
            &format!("redis://{outbound_auth}@127.0.0.1:{port}"),
            &format!("redis://127.0.0.1:{port}"),
        )
        .write()
}

fn assert_no_password(run: &common::Run) {
    for secret in [PASSWORD, ALICE_PASSWORD, "wrong-pass"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "`{secret}` appears in the host's output:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn triggers_and_outbound_calls_authenticate_with_a_password_and_an_acl_user() {
    let server = RedisServer::start_with_auth(PASSWORD, ALICE_PASSWORD);
    let app = app(
        &server,
        &format!(":{PASSWORD}"),
        &format!("alice:{ALICE_PASSWORD}"),
    );
    let mut replies = server.subscribe("replies");
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "hello");
    assert_eq!(replies.next(), "requests|-|hello");
    let mut redis = server.client().get_connection().expect("connecting");
    let _: String = redis
        .xadd("jobs", "*", &[("payload", "entry")])
        .expect("XADD");
    assert_eq!(replies.next(), "jobs|-|entry");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_no_password(&run);
}

#[test]
fn a_wrong_password_is_a_clear_error_that_never_shows_the_password() {
    let server = RedisServer::start_with_auth(PASSWORD, ALICE_PASSWORD);
    let app = app(&server, "alice:wrong-pass", ":wrong-pass");
    let manifest = app.manifest();
    let run = common::run_host_for(
        &["up", "-f", &manifest],
        std::time::Duration::from_millis(1500),
    );
    assert!(run.success, "{}", run.stderr);
    let refusals: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("Password authentication failed"))
        .collect();
    assert!(
        refusals.iter().any(|line| line.contains("cannot subscribe"))
            && refusals
                .iter()
                .any(|line| line.contains("cannot read the stream") && line.contains("stream=jobs")),
        "both triggers say the server refused the credentials:\n{}",
        run.stderr
    );
    assert!(
        refusals.iter().all(|line| line.contains("alice:***@")),
        "the address is shown with its password redacted:\n{}",
        run.stderr
    );
    assert_no_password(&run);
}

/// The Redis-backed key-value store authenticates with the credentials in its `url`, as the
/// triggers do; a wrong password is an error that never shows the password.
#[test]
fn a_key_value_store_authenticates_with_the_credentials_in_its_url() {
    let server = RedisServer::start_with_auth(PASSWORD, ALICE_PASSWORD);
    let port = server.port;
    let store_app = |credentials: &str| {
        let (app, config) =
            common::redis_store_counter_app(&format!("redis://{credentials}@127.0.0.1:{port}"));
        let run = app.run(&["--once", "--runtime-config-file", &config]);
        assert_no_password(&run);
        run
    };
    let run = store_app(&format!("alice:{ALICE_PASSWORD}"));
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "[counter] ticks=1 store=default\n");
    let ticks: String = server
        .client()
        .get_connection()
        .unwrap()
        .get("ticks")
        .unwrap();
    assert_eq!(ticks, "1");

    let run = store_app("alice:wrong-pass");
    assert!(!run.success);
    run.assert_stderr_has(&format!(
        "connecting to the key-value store at redis://alice:***@127.0.0.1:{port}"
    ));
}
