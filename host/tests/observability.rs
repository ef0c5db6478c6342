//! What operators see of a running host: the Prometheus scrape on `--metrics-addr` (read with a
//! Prometheus text-format parser), the health probes as Redis goes away and comes back, and the
//! spans and metrics an OTLP/HTTP receiver started by the test collects.

mod common;

use std::time::{Duration, Instant};

use common::{HttpServer, RedisServer, Reply, TestApp, free_port, guest, http_get};
use redis::Commands;

/// Scrapes `/metrics` on `port` (waiting, up to a minute, for the host to start serving) and
/// parses it.
fn scrape(port: u16) -> prometheus_parse::Scrape {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, body) = loop {
        if let Some(answer) = http_get(port, "/metrics") {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics endpoint never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|line| Ok(line.to_owned())))
        .expect("a scrape in the Prometheus text format")
}

/// The value of the sample `name` whose labels include every pair of `labels`; 0 when there is
/// none.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(key, wanted)| sample.labels.get(key) == Some(*wanted))
        })
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(value)
            | prometheus_parse::Value::Gauge(value)
            | prometheus_parse::Value::Untyped(value) => value,
            prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => {
                panic!("{name} is a histogram or summary; ask for its _count or _sum")
            }
        })
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?}: {matching:?}");
    matching.first().copied().unwrap_or(0.0)
}

/// Polls `check` every 50 ms until it holds, up to a minute.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "not within a minute: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Redis app: component `echo` on channel `requests`, replying on `replies`, with a 500 ms
/// deadline and 32 MiB of memory.
fn echo_app(server: &RedisServer) -> common::AppDir {
    let url = server.url();
    TestApp::new("observed")
        .redis_address("redis", &url)
        .trigger(
            "redis",
            "echo",
            "channel = \"requests\"\nhandler_timeout = \"500ms\"\nmax_memory = \"32MiB\"",
        )
        .replying_component("echo", &guest("redis-message-guest"), &url)
        .write()
}

#[test]
fn a_scrape_counts_what_was_published_handled_and_failed_by_reason() {
    let server = RedisServer::start();
    let app = echo_app(&server);
    let port = free_port();
    let host = app.start_with(&["--metrics-addr", &format!("127.0.0.1:{port}")], &[]);
    server.wait_for_subscribers("requests", 1);
    let mut replies = server.subscribe("replies");
    let published = [
        "one", "two", "fail", "three", "trap", "spin", "four", "fail", "alloc:64", "five",
    ];
    for payload in published {
        server.publish("requests", payload);
    }
    for _ in 0..5 {
        assert!(replies.next().starts_with("requests|-|"));
    }
    let echo = [("trigger_type", "redis"), ("component", "echo")];
    let with = |extra: (&'static str, &'static str)| {
        let mut labels = echo.to_vec();
        labels.push(extra);
        labels
    };
    eventually("every message handled or failed", || {
        let scrape = scrape(port);
        value(
            &scrape,
            "spin_trigger_handler_duration_seconds_count",
            &echo,
        ) >= 10.0
    });
    let scrape = scrape(port);
    assert_eq!(
        value(&scrape, "spin_trigger_events_received_total", &echo),
        10.0
    );
    assert_eq!(
        value(&scrape, "spin_trigger_events_handled_total", &echo),
        5.0
    );
    let failed = "spin_trigger_events_failed_total";
    assert_eq!(value(&scrape, failed, &with(("reason", "error"))), 2.0);
    assert_eq!(value(&scrape, failed, &with(("reason", "trap"))), 1.0);
    assert_eq!(value(&scrape, failed, &with(("reason", "timeout"))), 1.0);
    assert_eq!(value(&scrape, failed, &with(("reason", "memory"))), 1.0);
    assert_eq!(
        value(
            &scrape,
            "spin_trigger_handler_duration_seconds_count",
            &echo
        ),
        10.0
    );
    // The handler that spun was stopped at its 500 ms deadline: the durations add up to more.
    assert!(value(&scrape, "spin_trigger_handler_duration_seconds_sum", &echo) >= 0.5);
    assert_eq!(
        value(&scrape, "spin_trigger_instances_in_flight", &echo),
        0.0
    );
    assert_eq!(
        value(
            &scrape,
            "spin_trigger_redis_connected",
            &[("trigger_type", "redis")]
        ),
        1.0
    );
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&scrape, "process_cpu_seconds_total", &[]) > 0.0);
    assert!(value(&scrape, "process_open_fds", &[]) > 0.0);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn readiness_follows_the_redis_connection_and_health_stays_up() {
    let mut server = RedisServer::start();
    let app = echo_app(&server);
    let port = free_port();
    let host = app.start_with(&["--metrics-addr", &format!("127.0.0.1:{port}")], &[]);
    let status = |path: &str| http_get(port, path).map(|(status, _)| status);
    eventually("ready once subscribed", || status("/readyz") == Some(200));
    assert_eq!(status("/healthz"), Some(200));

    server.kill();
    eventually("not ready while Redis is down", || {
        status("/readyz") == Some(503)
    });
    let (_, body) = http_get(port, "/readyz").expect("readyz answers");
    assert!(
        body.contains(&format!("127.0.0.1:{}", server.port)),
        "{body}"
    );
    assert_eq!(status("/healthz"), Some(200), "the process still serves");
    let down = scrape(port);
    assert_eq!(
        value(
            &down,
            "spin_trigger_redis_connected",
            &[("trigger_type", "redis")]
        ),
        0.0
    );

    server.restart();
    eventually("ready again once resubscribed", || {
        status("/readyz") == Some(200)
    });
    let up = scrape(port);
    assert_eq!(
        value(
            &up,
            "spin_trigger_redis_reconnects_total",
            &[("trigger_type", "redis")]
        ),
        1.0
    );
    assert_eq!(status("/nowhere"), Some(404));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

/// Every export the receiver got at `path`, decoded.
fn exports<M: prost::Message + Default>(receiver: &HttpServer, path: &str) -> Vec<M> {
    receiver
        .requests()
        .iter()
        .filter(|request| request.path == path)
        .map(|request| M::decode(request.body.as_slice()).expect("an OTLP/HTTP protobuf export"))
        .collect()
}

/// Every span the receiver collected.
fn collected_spans(receiver: &HttpServer) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    exports::<ExportTraceServiceRequest>(receiver, "/v1/traces")
        .into_iter()
        .flat_map(|export| export.resource_spans)
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans)
        .collect()
}

fn attribute(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let value = span
        .attributes
        .iter()
        .find(|attribute| attribute.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(text) => text.clone(),
        Value::IntValue(number) => number.to_string(),
        other => format!("{other:?}"),
    })
}

/// OTLP's `SPAN_KIND_CLIENT`.
const SPAN_KIND_CLIENT: i32 = 3;

/// The spans of handler calls (the ones naming their trigger type).
fn handler_spans(
    spans: &[opentelemetry_proto::tonic::trace::v1::Span],
) -> Vec<&opentelemetry_proto::tonic::trace::v1::Span> {
    spans
        .iter()
        .filter(|span| attribute(span, "spin.trigger.type").is_some())
        .collect()
}

/// The spans whose parent is `parent`, in its trace.
fn children<'a>(
    spans: &'a [opentelemetry_proto::tonic::trace::v1::Span],
    parent: &opentelemetry_proto::tonic::trace::v1::Span,
) -> Vec<&'a opentelemetry_proto::tonic::trace::v1::Span> {
    spans
        .iter()
        .filter(|span| span.trace_id == parent.trace_id && span.parent_span_id == parent.span_id)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn an_otlp_receiver_gets_a_span_per_entry_and_a_traceparent_is_continued() {
    let server = RedisServer::start();
    let receiver = HttpServer::start(|_| Reply::Send(200, "application/x-protobuf", Vec::new()));
    let url = server.url();
    let app = TestApp::new("traced")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "recorder",
            "stream = \"jobs\"\ngroup = \"workers\"\nmax_attempts = 1",
        )
        .component(
            "recorder",
            &guest("stream-record-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{url}\"]\nvariables = {{ redis_address = \"{url}\" }}"
            ),
        )
        .write();
    let endpoint = receiver.url("");
    let host = app.start_with(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("OTEL_SERVICE_NAME", "traced-app"),
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let mut redis = server.client().get_connection().expect("connecting");
    let plain: String = redis
        .xadd("jobs", "*", &[("payload", "plain")])
        .expect("XADD");
    let traced: String = redis
        .xadd(
            "jobs",
            "*",
            &[
                ("payload", "traced".to_owned()),
                ("traceparent", format!("00-{trace_id}-{parent_span}-01")),
            ],
        )
        .expect("XADD");
    let failing: String = redis
        .xadd("jobs", "*", &[("payload", "fail")])
        .expect("XADD");
    eventually("three handler spans and two SADD spans exported", || {
        let spans = collected_spans(&receiver);
        handler_spans(&spans).len() >= 3
            && spans.iter().filter(|span| span.name == "SADD").count() >= 2
    });
    eventually("metrics exported", || {
        receiver
            .requests()
            .iter()
            .any(|request| request.path == "/v1/metrics")
    });
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);

    let all_spans = collected_spans(&receiver);
    let spans = handler_spans(&all_spans);
    assert_eq!(spans.len(), 3, "one span per handler call: {all_spans:#?}");
    for span in &spans {
        assert_eq!(
            attribute(span, "spin.trigger.type").as_deref(),
            Some("redis-stream")
        );
        assert_eq!(
            attribute(span, "spin.component").as_deref(),
            Some("recorder")
        );
        assert_eq!(
            attribute(span, "messaging.destination.name").as_deref(),
            Some("jobs")
        );
        assert_eq!(attribute(span, "spin.attempt").as_deref(), Some("1"));
        assert!(span.end_time_unix_nano > span.start_time_unix_nano);
    }
    let span_of = |id: &str| {
        spans
            .iter()
            .find(|span| attribute(span, "messaging.message.id").as_deref() == Some(id))
            .unwrap_or_else(|| panic!("a span for entry {id}: {spans:#?}"))
    };
    let traced_span = span_of(&traced);
    assert_eq!(hex(&traced_span.trace_id), trace_id);
    assert_eq!(hex(&traced_span.parent_span_id), parent_span);
    let plain_span = span_of(&plain);
    assert!(plain_span.parent_span_id.is_empty(), "a root span");
    assert_ne!(hex(&plain_span.trace_id), trace_id);
    assert_eq!(attribute(plain_span, "spin.result").as_deref(), Some("ok"));
    let failed_span = span_of(&failing);
    assert_eq!(
        attribute(failed_span, "spin.result").as_deref(),
        Some("error")
    );
    let status = failed_span.status.as_ref().expect("a status");
    assert!(status.message.contains("asked to fail"), "{status:?}");

    // Each outbound Redis command is a client span inside its handler's span, in its trace,
    // naming the command and the server but not the command's arguments.
    for handler in [plain_span, traced_span] {
        let sadd = children(&all_spans, handler)
            .into_iter()
            .find(|span| span.name == "SADD")
            .unwrap_or_else(|| panic!("a SADD span inside {handler:#?}: {all_spans:#?}"));
        assert_eq!(sadd.kind, SPAN_KIND_CLIENT);
        assert_eq!(attribute(sadd, "db.system.name").as_deref(), Some("redis"));
        assert_eq!(
            attribute(sadd, "db.operation.name").as_deref(),
            Some("SADD")
        );
        assert_eq!(
            attribute(sadd, "server.address").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            attribute(sadd, "server.port"),
            Some(server.port.to_string())
        );
        assert!(sadd.start_time_unix_nano >= handler.start_time_unix_nano);
        assert!(sadd.end_time_unix_nano <= handler.end_time_unix_nano);
    }

    // The same counters as /metrics, named alike.
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    let names: std::collections::BTreeSet<String> =
        exports::<ExportMetricsServiceRequest>(&receiver, "/v1/metrics")
            .into_iter()
            .flat_map(|export| export.resource_metrics)
            .flat_map(|resource| resource.scope_metrics)
            .flat_map(|scope| scope.metrics)
            .map(|metric| metric.name)
            .collect();
    for name in [
        "spin_trigger_events_received",
        "spin_trigger_events_handled",
        "spin_trigger_events_failed",
        "spin_trigger_handler_duration",
    ] {
        assert!(names.contains(name), "{name} in {names:?}");
    }
}

#[test]
fn stream_and_timer_series_count_retries_dead_letters_backlog_and_skips() {
    let server = RedisServer::start();
    let url = server.url();
    let app = TestApp::new("series")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "recorder",
            "stream = \"jobs\"\ngroup = \"workers\"\nmax_attempts = 2\nmax_in_flight = 4",
        )
        .component(
            "recorder",
            &guest("stream-record-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{url}\"]\nvariables = {{ redis_address = \"{url}\" }}"
            ),
        )
        // Each run takes 250 ms at a 100 ms interval: most ticks are skipped.
        .trigger("timer", "probe", "interval = \"100ms\"")
        .component(
            "probe",
            &guest("probe-guest"),
            "variables = { sleep_ms = \"250\" }",
        )
        .write();
    let port = free_port();
    let host = app.start_with(&["--metrics-addr", &format!("127.0.0.1:{port}")], &[]);
    let mut redis = server.client().get_connection().expect("connecting");
    let entries: [&[(&str, &str)]; 3] = [
        &[("payload", "fine")],
        &[("payload", "flaky"), ("fail_times", "1")],
        &[("payload", "fail")],
    ];
    for fields in entries {
        let _: String = redis.xadd("jobs", "*", fields).expect("XADD");
    }
    let stream = [("trigger_type", "redis-stream"), ("component", "recorder")];
    let timer = [("trigger_type", "timer"), ("component", "probe")];
    let overlap = [
        ("trigger_type", "timer"),
        ("component", "probe"),
        ("reason", "overlap"),
    ];
    eventually("the entries settled and ticks were skipped", || {
        let scrape = scrape(port);
        value(&scrape, "spin_trigger_events_dead_lettered_total", &stream) == 1.0
            && value(&scrape, "spin_trigger_events_handled_total", &stream) == 2.0
            && value(&scrape, "spin_trigger_events_skipped_total", &overlap) >= 2.0
    });
    // Pending and lag are read every second: both come back to 0 once everything is settled.
    let backlog = [("stream", "jobs"), ("group", "workers")];
    eventually("nothing pending or lagging", || {
        let scrape = scrape(port);
        value(&scrape, "spin_trigger_stream_pending_entries", &backlog) == 0.0
            && value(&scrape, "spin_trigger_stream_lag_entries", &backlog) == 0.0
            && scrape
                .samples
                .iter()
                .any(|sample| sample.metric == "spin_trigger_stream_lag_entries")
    });
    let scrape = scrape(port);
    assert_eq!(
        value(&scrape, "spin_trigger_events_received_total", &stream),
        3.0
    );
    assert_eq!(
        value(&scrape, "spin_trigger_events_retried_total", &stream),
        2.0
    );
    let errors = [
        ("trigger_type", "redis-stream"),
        ("component", "recorder"),
        ("reason", "error"),
    ];
    assert_eq!(
        value(&scrape, "spin_trigger_events_failed_total", &errors),
        3.0
    );
    let ticks = value(&scrape, "spin_trigger_events_received_total", &timer);
    let ran = value(&scrape, "spin_trigger_events_handled_total", &timer)
        + value(&scrape, "spin_trigger_instances_in_flight", &timer);
    let skipped = value(&scrape, "spin_trigger_events_skipped_total", &overlap);
    // Every tick ran, runs or was skipped; one may be between being due and starting.
    assert!(
        ran + skipped <= ticks && ticks <= ran + skipped + 1.0,
        "{ticks} ticks, {ran} ran, {skipped} skipped"
    );
    // Lateness is observed as each tick is due, with the received count; the scrape reads
    // the two one after the other.
    let lateness = value(&scrape, "spin_trigger_timer_lateness_seconds_count", &timer);
    assert!((lateness - ticks).abs() <= 1.0, "{lateness} vs {ticks}");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn silent_and_flooding_clients_do_not_hold_the_metrics_endpoint() {
    let server = RedisServer::start();
    let app = echo_app(&server);
    let port = free_port();
    let host = app.start_with(&["--metrics-addr", &format!("127.0.0.1:{port}")], &[]);
    let status = |path: &str| http_get(port, path).map(|(status, _)| status);
    eventually("the endpoint serves", || status("/healthz") == Some(200));

    // A client that connects and never sends its request is hung up on.
    let mut silent =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connecting to the endpoint");
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a read timeout");
    let mut buffer = [0u8; 64];
    let read = std::io::Read::read(&mut silent, &mut buffer);
    assert!(
        read.is_ok(),
        "the silent connection was still open after a minute: {read:?}"
    );

    // Two hundred connections that say nothing: a scrape still gets its answer, once the
    // endpoint has hung up on enough of them.
    let flood: Vec<std::net::TcpStream> = (0..200)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    eventually("a scrape is answered during the flood", || {
        status("/healthz") == Some(200)
    });
    drop(flood);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

/// A handler's outbound HTTP call is a client span inside the handler's span: its method, its
/// origin (never the path or query, which may carry a secret), the response's status.
#[test]
fn outbound_http_calls_are_spans_inside_the_handlers_span() {
    let server = RedisServer::start();
    let receiver = HttpServer::start(|_| Reply::Send(200, "application/x-protobuf", Vec::new()));
    let webhook = HttpServer::start(|_| Reply::Send(202, "text/plain", Vec::new()));
    let app = TestApp::new("traced-http")
        .redis_address("redis", &server.url())
        .trigger("redis", "forward", "channel = \"events\"")
        .component(
            "forward",
            &guest("http-forward-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{}\"]\nvariables = {{ webhook_url = \"{}\" }}",
                webhook.url(""),
                webhook.url("/hook?token=s3cret")
            ),
        )
        .write();
    let endpoint = receiver.url("");
    let host = app.start_with(
        &[],
        &[
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &format!("{endpoint}/v1/traces"),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    server.wait_for_subscribers("events", 1);
    server.publish("events", "hello");
    eventually("a handler span and a POST span", || {
        let spans = collected_spans(&receiver);
        !handler_spans(&spans).is_empty() && spans.iter().any(|span| span.name == "POST")
    });
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(webhook.requests().len(), 1);

    let spans = collected_spans(&receiver);
    let handler = handler_spans(&spans)[0];
    let posts = children(&spans, handler);
    assert_eq!(posts.len(), 1, "one child span: {spans:#?}");
    let post = posts[0];
    assert_eq!(post.name, "POST");
    assert_eq!(post.kind, SPAN_KIND_CLIENT);
    assert_eq!(
        attribute(post, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(attribute(post, "url.scheme").as_deref(), Some("http"));
    assert_eq!(
        attribute(post, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(attribute(post, "url.full"), None, "no path or query");
    assert_eq!(
        attribute(post, "http.response.status_code").as_deref(),
        Some("202")
    );
    assert!(
        !format!("{spans:?}").contains("s3cret") && !format!("{spans:?}").contains("/hook"),
        "the path and the query's secret are in no span"
    );
}

/// A tick's key-value and SQLite calls are client spans inside the tick's span, naming the
/// operation and the backend, never a key, a value or a statement.
#[test]
fn key_value_and_sqlite_calls_are_spans_inside_the_handlers_span() {
    let receiver = HttpServer::start(|_| Reply::Send(200, "application/x-protobuf", Vec::new()));
    let app = TestApp::new("traced-state")
        .trigger("timer", "counter", "interval = \"1s\"")
        .component(
            "counter",
            &guest("state-timer-guest"),
            "key_value_stores = [\"default\"]\nsqlite_databases = [\"default\"]\n\
             variables = { database = \"default\" }",
        )
        .write();
    let endpoint = format!("{}/v1/traces", receiver.url(""));
    let run = app.run_with_env(
        &[
            "--once",
            "--sqlite",
            "CREATE TABLE ticks (n INTEGER NOT NULL)",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    assert!(run.success, "{}", run.stderr);
    run.assert_stdout_has("rows=1");
    eventually("the tick's spans exported", || {
        !handler_spans(&collected_spans(&receiver)).is_empty()
    });
    let spans = collected_spans(&receiver);
    let tick = handler_spans(&spans)[0];
    let inside: Vec<(&str, Option<String>, Option<String>)> = children(&spans, tick)
        .into_iter()
        .map(|span| {
            assert_eq!(span.kind, SPAN_KIND_CLIENT);
            (
                span.name.as_str(),
                attribute(span, "db.system.name"),
                attribute(span, "db.operation.name"),
            )
        })
        .collect();
    let expected = |name, system: &str, operation: &str| {
        (name, Some(system.to_owned()), Some(operation.to_owned()))
    };
    for span in [
        expected("key-value get", "sqlite", "get"),
        expected("key-value set", "sqlite", "set"),
        expected("sqlite execute", "sqlite", "execute"),
    ] {
        assert!(inside.contains(&span), "{span:?} in {inside:?}");
    }
    assert!(
        !format!("{spans:?}").contains("INSERT") && !format!("{spans:?}").contains("ticks"),
        "no statement or key in a span: {spans:#?}"
    );
}

/// With `--experimental-wasi-otel`, a component's own span (`wasi:otel`) joins the trace of the
/// handler call that made it: one stream entry's trace holds the handler span, the guest's
/// span inside it (its attributes read from their JSON, its scope the guest's), and the span of
/// the guest's outbound GET. Without the option, the component is refused at start, naming the
/// import, as Spin refuses it.
#[test]
fn a_guests_own_span_joins_the_trace_of_its_stream_entry() {
    let server = RedisServer::start();
    let receiver = HttpServer::start(|_| Reply::Send(200, "application/x-protobuf", Vec::new()));
    let api = HttpServer::start(|_| Reply::Send(200, "text/plain", b"ok".to_vec()));
    let url = server.url();
    let app = TestApp::new("guest-spans")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "worker",
            "stream = \"jobs\"\ngroup = \"workers\"\nmax_attempts = 1",
        )
        .component(
            "worker",
            &guest("otel-span-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{}\"]\nvariables = {{ url = \"{}\" }}",
                api.url(""),
                api.url("/work")
            ),
        )
        .write();

    let refused = app.run(&[]);
    assert!(!refused.success);
    refused.assert_stderr_has("component `worker` (");
    refused.assert_stderr_has("imports what this host does not provide: ");
    refused.assert_stderr_has("wasi:otel/tracing@0.2.0-rc.2");

    let endpoint = format!("{}/v1/traces", receiver.url(""));
    let host = app.start_with(
        &["--experimental-wasi-otel"],
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let mut redis = server.client().get_connection().expect("connecting");
    let _: String = redis
        .xadd("jobs", "*", &[("payload", "hello")])
        .expect("XADD");
    eventually("the handler's, the guest's and the GET's spans", || {
        let spans = collected_spans(&receiver);
        ["guest work", "GET"]
            .iter()
            .all(|name| spans.iter().any(|span| span.name == *name))
            && !handler_spans(&spans).is_empty()
    });
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(api.requests().len(), 1);

    let spans = collected_spans(&receiver);
    let handler = handler_spans(&spans)[0];
    let inside = children(&spans, handler);
    let guest_span = inside
        .iter()
        .find(|span| span.name == "guest work")
        .unwrap_or_else(|| panic!("the guest's span inside the handler's: {spans:#?}"));
    assert_eq!(
        attribute(guest_span, "guest.payload").as_deref(),
        Some("hello")
    );
    assert_eq!(
        attribute(guest_span, "guest.status").as_deref(),
        Some("200")
    );
    assert_eq!(guest_span.events.len(), 1);
    assert_eq!(guest_span.events[0].name, "got a response");
    assert!(guest_span.end_time_unix_nano >= guest_span.start_time_unix_nano);
    let get = inside
        .iter()
        .find(|span| span.name == "GET")
        .unwrap_or_else(|| panic!("the GET's span inside the handler's: {spans:#?}"));
    assert_eq!(
        attribute(get, "http.response.status_code").as_deref(),
        Some("200")
    );
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    let scopes: Vec<String> = exports::<ExportTraceServiceRequest>(&receiver, "/v1/traces")
        .into_iter()
        .flat_map(|export| export.resource_spans)
        .flat_map(|resource| resource.scope_spans)
        .filter(|scope| scope.spans.iter().any(|span| span.name == "guest work"))
        .filter_map(|scope| scope.scope.map(|scope| scope.name))
        .collect();
    assert_eq!(scopes, ["otel-span-guest"]);
}
