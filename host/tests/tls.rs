//! Redis over TLS for real: a CA and a server certificate made with `openssl` in the test, a
//! redis-server serving TLS (`--tls-port`) beside its plain port (which the test itself uses),
//! and the host's triggers and the guest's outbound connection on `rediss://`, trusting that CA
//! through `--tls-ca-file`. Without it, the server's certificate is refused, and says why.

mod common;

use common::{AppDir, RedisServer, TestApp, free_port, guest, make_certificates};
use redis::Commands;

struct TlsServer {
    server: RedisServer,
    tls_port: u16,
    certificates: tempfile::TempDir,
}

fn start_tls_server() -> TlsServer {
    let certificates = tempfile::tempdir().expect("a temp dir");
    make_certificates(certificates.path());
    let file = |name: &str| certificates.path().join(name).display().to_string();
    let tls_port = free_port();
    let server = RedisServer::start_with_args(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &file("server.crt"),
        "--tls-key-file",
        &file("server.key"),
        "--tls-ca-cert-file",
        &file("ca.crt"),
        "--tls-auth-clients",
        "no",
    ]);
    TlsServer {
        server,
        tls_port,
        certificates,
    }
}

/// Both trigger types on `rediss://`, and the guest replying through `rediss://` too.
fn tls_app(tls_port: u16) -> AppDir {
    let address = format!("rediss://127.0.0.1:{tls_port}");
    TestApp::new("tls")
        .trigger(
            "redis",
            "watcher",
            &format!("address = \"{address}\"\nchannel = \"requests\""),
        )
        .trigger(
            "redis-stream",
            "watcher",
            &format!("address = \"{address}\"\nstream = \"jobs\""),
        )
        .replying_component("watcher", &guest("redis-message-guest"), &address)
        .write()
}

#[test]
fn triggers_and_outbound_calls_run_over_tls_trusting_the_given_ca() {
    let TlsServer {
        server,
        tls_port,
        certificates,
    } = start_tls_server();
    let app = tls_app(tls_port);
    let mut replies = server.subscribe("replies");
    let ca = certificates.path().join("ca.crt").display().to_string();
    let host = app.start_with(&["--tls-ca-file", &ca], &[]);
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "over tls");
    assert_eq!(replies.next(), "requests|-|over tls");
    let mut redis = server.client().get_connection().expect("connecting");
    let _: String = redis
        .xadd("jobs", "*", &[("payload", "entry over tls")])
        .expect("XADD");
    assert_eq!(replies.next(), "jobs|-|entry over tls");
    // The app names only the TLS port: both replies came over TLS connections.
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_lacks("handler failed");
}

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused_with_the_reason() {
    let TlsServer {
        server: _server,
        tls_port,
        certificates: _certificates,
    } = start_tls_server();
    let app = tls_app(tls_port);
    let manifest = app.manifest();
    let run = common::run_host_for(
        &["up", "-f", &manifest],
        std::time::Duration::from_millis(1000),
    );
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|line| line.contains("cannot subscribe") && line.contains("UnknownIssuer")),
        "the certificate is refused, saying why: {}",
        run.stderr
    );
}

/// The Redis-backed key-value store follows the same TLS rules as the triggers: `rediss://`
/// trusts `--tls-ca-file`, and without it the server's certificate is refused, saying why.
#[test]
fn a_key_value_store_on_rediss_trusts_the_given_ca() {
    let TlsServer {
        server,
        tls_port,
        certificates,
    } = start_tls_server();
    let (app, config) = common::redis_store_counter_app(&format!("rediss://127.0.0.1:{tls_port}"));
    let ca = certificates.path().join("ca.crt").display().to_string();
    let run = app.run(&[
        "--once",
        "--runtime-config-file",
        &config,
        "--tls-ca-file",
        &ca,
    ]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "[counter] ticks=1 store=default\n");
    let mut redis = server.client().get_connection().expect("connecting");
    let ticks: String = redis.get("ticks").expect("GET");
    assert_eq!(ticks, "1");

    let run = app.run(&["--once", "--runtime-config-file", &config]);
    assert!(!run.success);
    assert!(
        run.stderr.contains(&format!(
            "connecting to the key-value store at rediss://127.0.0.1:{tls_port}"
        )) && run.stderr.contains("UnknownIssuer"),
        "{}",
        run.stderr
    );
}
