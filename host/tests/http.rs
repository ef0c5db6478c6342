//! Outbound HTTP end to end: guests built with the SDK's `http` client call a real HTTP server
//! this test starts on loopback (and an HTTPS one, `openssl s_server`, with a CA made in the
//! test), through `spin-trigger-host up`, held to `allowed_outbound_hosts`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{HttpServer, RedisServer, Reply, TestApp, guest, make_certificates};

/// A server answering `GET /count` with `{"count": 7}` and `POST /seen` with `ok`.
fn api_server() -> HttpServer {
    HttpServer::start(
        |request| match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/count") => Reply::json(r#"{"count": 7}"#),
            ("POST", "/seen") => Reply::Send(200, "text/plain", b"ok".to_vec()),
            _ => Reply::Send(404, "text/plain", b"no such path".to_vec()),
        },
    )
}

/// An app running the HTTP timer guest every `interval` with `variables` (TOML pairs) and
/// `allowed_outbound_hosts`.
fn timer_app(interval: &str, variables: &str, allowed: &str, extra: &str) -> common::AppDir {
    TestApp::new("http-timer")
        .trigger(
            "timer",
            "api",
            &format!("interval = \"{interval}\"\n{extra}"),
        )
        .component(
            "api",
            &guest("http-timer-guest"),
            &format!("allowed_outbound_hosts = [{allowed}]\nvariables = {{ {variables} }}"),
        )
        .write()
}

#[test]
fn a_timer_component_gets_and_posts_json() {
    let server = api_server();
    let app = timer_app(
        "1s",
        &format!(
            "get_url = \"{}\", post_url = \"{}\"",
            server.url("/count"),
            server.url("/seen")
        ),
        &format!("\"{}\"", server.url("")),
        "",
    );
    let run = app.run(&["--once"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "[api] get 200 count=7\n[api] post 200 ok\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].header("x-guest"), Some("http-timer"));
    assert_eq!(requests[1].method, "POST");
    assert_eq!(requests[1].header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&requests[1].body).unwrap(),
        serde_json::json!({ "seen": 7 })
    );
}

#[test]
fn a_host_or_port_not_allowed_is_refused_and_logged_and_a_variable_can_allow_one() {
    let server = api_server();
    let variables = format!("get_url = \"{}\"", server.url("/count"));
    for (allowed, what) in [
        ("\"http://example.com\"".to_owned(), "another host"),
        ("\"http://127.0.0.1:1\"".to_owned(), "another port"),
        ("\"https://127.0.0.1:*\"".to_owned(), "another scheme"),
    ] {
        let run = timer_app("1s", &variables, &allowed, "").run(&["--once"]);
        assert!(!run.success, "{what}: {}", run.stdout);
        assert!(
            run.stdout.contains("[api] error GET http://127.0.0.1:")
                && run.stdout.contains(
                    "the host refused it: add its origin (scheme, host and port) to the component's `allowed_outbound_hosts`"
                ),
            "{what}: {}",
            run.stdout
        );
        assert!(
            run.stderr.contains(&format!(
                "outbound HTTP request refused: not in the component's allowed_outbound_hosts component=api url={}",
                server.url("/count")
            )),
            "{what}: {}",
            run.stderr
        );
    }
    assert!(
        server.requests().is_empty(),
        "a refused request never leaves the host"
    );

    // Allowed through a variable the app declares.
    let app = TestApp::new("http-variable")
        .variable(
            "api_host",
            &format!("{{ default = \"{}\" }}", server.url("")),
        )
        .trigger("timer", "api", "interval_secs = 1")
        .component(
            "api",
            &guest("http-timer-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{{{{ api_host }}}}\"]\nvariables = {{ {variables} }}"
            ),
        )
        .write();
    let run = app.run(&["--once"]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "[api] get 200 count=7\n");
}

#[test]
fn a_timer_calling_one_api_reuses_one_connection() {
    let server = api_server();
    let app = timer_app(
        "100ms",
        &format!("get_url = \"{}\"", server.url("/count")),
        &format!("\"{}\"", server.url("")),
        "",
    );
    let run = app.run_for(Duration::from_millis(1500));
    assert!(run.success, "{}", run.stderr);
    let requests = server.requests().len();
    assert!(requests >= 5, "{requests} requests: {}", run.stderr);
    assert_eq!(server.connections(), 1, "{requests} requests");
}

#[test]
fn a_server_that_never_answers_times_the_call_out_and_the_next_tick_runs() {
    let server = HttpServer::start(|_| Reply::Never);
    let app = timer_app(
        "400ms",
        &format!("get_url = \"{}\"", server.url("/slow")),
        &format!("\"{}\"", server.url("")),
        "handler_timeout = \"250ms\"",
    );
    let run = app.run_for(Duration::from_millis(1500));
    assert!(run.success, "{}", run.stderr);
    let timed_out = run
        .stderr
        .matches("the handler ran past its 250ms deadline (handler_timeout)")
        .count();
    assert!(
        timed_out >= 2,
        "each tick times out, and the next runs: {}",
        run.stderr
    );
    assert!(server.requests().len() >= 2);
}

#[test]
fn a_response_larger_than_the_memory_cap_fails_only_that_call() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let server = HttpServer::start(move |_| {
        // The first answer is 50 MiB, the others 5 bytes.
        let size = match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => 50 << 20,
            _ => 5,
        };
        Reply::Send(200, "application/octet-stream", vec![b'x'; size])
    });
    let app = timer_app(
        "300ms",
        &format!("get_url = \"{}\", read_bytes = \"1\"", server.url("/big")),
        &format!("\"{}\"", server.url("")),
        "max_memory = \"64MiB\"",
    );
    // Wait for a later call rather than a fixed window: under load the first, 50 MiB answer
    // can take well over a second to refuse.
    let host = app.start();
    let later_call_ran = host.wait_for_stdout_lines("[api] read 5", 1, Duration::from_secs(60));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        later_call_ran,
        "later calls run: {}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        !run.stdout.contains(&format!("read {}", 50 << 20)),
        "50 MiB does not fit a 64 MiB instance beside the guest's own copy: {}",
        run.stdout
    );
    run.assert_stderr_has("timer handler failed");
}

#[test]
fn a_redis_component_forwards_every_message_to_a_webhook_in_order() {
    let webhook = HttpServer::start(|_| Reply::Send(204, "text/plain", Vec::new()));
    let redis = RedisServer::start();
    let app = TestApp::new("webhook")
        .redis_address("redis", &redis.url())
        .trigger(
            "redis",
            "forward",
            "channel = \"events\"\nmax_in_flight = 1",
        )
        .component(
            "forward",
            &guest("http-forward-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{}\"]\nvariables = {{ webhook_url = \"{}\" }}",
                webhook.url(""),
                webhook.url("/hook")
            ),
        )
        .write();
    let host = app.start();
    redis.wait_for_subscribers("events", 1);
    let mut connection = redis.client().get_connection().unwrap();
    let mut pipe = redis::pipe();
    for index in 0..1000 {
        pipe.cmd("PUBLISH")
            .arg("events")
            .arg(format!("event-{index}"));
    }
    let _: Vec<i64> = pipe.query(&mut connection).unwrap();
    let arrived = webhook.wait_for_requests(1000, Duration::from_secs(60));
    let run = host.stop();
    assert!(
        arrived,
        "{} arrived: {}",
        webhook.requests().len(),
        run.stderr
    );
    assert!(run.success, "{}", run.stderr);
    let bodies: Vec<String> = webhook
        .requests()
        .iter()
        .map(|request| String::from_utf8_lossy(&request.body).into_owned())
        .collect();
    let expected: Vec<String> = (0..1000).map(|index| format!("event-{index}")).collect();
    assert_eq!(bodies, expected);
    assert!(
        webhook.connections() <= 2,
        "{} connections",
        webhook.connections()
    );
}

/// `openssl s_server -WWW`, serving files from its directory over TLS on a free port.
struct HttpsServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_https_server() -> HttpsServer {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    std::fs::write(dir.path().join("count.json"), r#"{"count": 9}"#).unwrap();
    let port = common::free_port();
    let mut child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-cert",
            "server.crt",
            "-key",
            "server.key",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting openssl s_server");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return HttpsServer { child, port, dir };
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("openssl s_server did not start");
}

#[test]
fn https_is_checked_against_the_public_roots_plus_the_tls_ca_file() {
    let server = start_https_server();
    let url = format!("https://127.0.0.1:{}", server.port);
    let app = timer_app(
        "1s",
        &format!("get_url = \"{url}/count.json\""),
        &format!("\"{url}\""),
        "",
    );
    let ca = server.dir.path().join("ca.crt").display().to_string();
    let run = app.run(&["--once", "--tls-ca-file", &ca]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout, "[api] get 200 count=9\n");

    // Without the CA, the server's certificate is refused.
    let run = app.run(&["--once"]);
    assert!(!run.success);
    run.assert_stdout_has("[api] error GET https://127.0.0.1:");
}

/// A spin-sdk Redis component calling `spin_sdk::http::get` for each message (a URL), replying
/// with what it got.
fn spin_sdk_http_app(guest_crate: &str, redis: &RedisServer, allowed: &str) -> common::AppDir {
    TestApp::new("spin-sdk-http")
        .redis_address("redis", &redis.url())
        .trigger("redis", "getter", "channel = \"urls\"")
        .component(
            "getter",
            &common::spin_sdk_guest(guest_crate),
            &format!(
                "allowed_outbound_hosts = [\"{}\", {allowed}]\n\
                 variables = {{ redis_address = \"{}\", reply_channel = \"replies\" }}",
                redis.url(),
                redis.url()
            ),
        )
        .write()
}

/// spin-sdk 7 imports WASI 0.3.0's `wasi:http/client`.
#[test]
fn a_spin_sdk_7_component_calls_an_api_through_wasi_http_0_3() {
    gets_through_wasi_http_0_3("sdk7-http-get");
}

/// spin-sdk 6 imports WASI 0.3's release candidate of 2026-03-15, whose interfaces are those of
/// 0.3.0 under another version: the same client serves it, under the same rules.
#[test]
fn a_spin_sdk_6_component_calls_an_api_through_wasi_http_0_3_release_candidate() {
    gets_through_wasi_http_0_3("sdk6-http-get");
}

/// `guest_crate` GETs an allowed loopback URL and replies with what it got; a URL not allowed
/// is refused in the guest with Spin's error, and never leaves the host.
fn gets_through_wasi_http_0_3(guest_crate: &str) {
    let server = api_server();
    let redis = RedisServer::start();
    let mut replies = redis.subscribe("replies");
    let app = spin_sdk_http_app(guest_crate, &redis, &format!("\"{}\"", server.url("")));
    let host = app.start();
    redis.wait_for_subscribers("urls", 1);
    redis.publish("urls", server.url("/count"));
    assert_eq!(replies.next(), r#"200 {"count": 7}"#);
    // Not allowed: refused in the guest, and the request never leaves the host.
    redis.publish("urls", "http://127.0.0.1:1/count");
    assert_eq!(replies.next(), "error ErrorCode::HttpRequestDenied");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(server.requests().len(), 1);
    run.assert_stderr_has("outbound HTTP request refused");
}
