//! A test guest making a span of its own through `wasi:otel` (the host links it with
//! `--experimental-wasi-otel`): for each stream entry, a span `guest work` under the handler's
//! span, around one outbound GET of the URL in its `url` variable. The span carries the entry's
//! payload as `guest.payload`, and a JSON number and an event, as a guest's OpenTelemetry
//! exporter writes them.

use spin_trigger_sdk::redis::Message;
use spin_trigger_sdk::{http, redis_component, variables};

wit_bindgen::generate!({
    world: "spin-trigger:otel-host/tracing-imports",
    path: "../../../host/wit-otel",
    generate_all,
});

use wasi::clocks::wall_clock::Datetime;
use wasi::otel::tracing::{self, SpanContext, SpanData, SpanKind, Status};
use wasi::otel::types::{InstrumentationScope, KeyValue};

#[redis_component]
fn on_entry(message: Message) -> anyhow::Result<()> {
    let outer = tracing::outer_span_context();
    let entry_id = message
        .entry
        .as_ref()
        .map_or("none", |entry| entry.id.as_str());
    let context = SpanContext {
        trace_id: outer.trace_id.clone(),
        span_id: span_id(entry_id),
        trace_flags: outer.trace_flags,
        is_remote: false,
        trace_state: Vec::new(),
    };
    tracing::on_start(&context);
    let start_time = now();
    let url = variables::get("url")?;
    let response = http::Request::get(&url).send()?;
    let end_time = now();
    let attribute = |key: &str, value: String| KeyValue {
        key: key.to_owned(),
        value,
    };
    tracing::on_end(&SpanData {
        span_context: context,
        parent_span_id: outer.span_id,
        span_kind: SpanKind::Internal,
        name: "guest work".to_owned(),
        start_time,
        end_time,
        attributes: vec![
            attribute(
                "guest.payload",
                format!("\"{}\"", String::from_utf8_lossy(&message.payload)),
            ),
            attribute("guest.status", response.status().to_string()),
        ],
        events: vec![tracing::Event {
            name: "got a response".to_owned(),
            time: end_time,
            attributes: Vec::new(),
        }],
        links: Vec::new(),
        status: Status::Ok,
        instrumentation_scope: InstrumentationScope {
            name: "otel-span-guest".to_owned(),
            version: Some("0.1.0".to_owned()),
            schema_url: None,
            attributes: Vec::new(),
        },
        dropped_attributes: 0,
        dropped_events: 0,
        dropped_links: 0,
    });
    Ok(())
}

fn now() -> Datetime {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Datetime {
        seconds: since_epoch.as_secs(),
        nanoseconds: since_epoch.subsec_nanos(),
    }
}

/// A span id (16 hex digits) that differs per entry.
fn span_id(entry_id: &str) -> String {
    let hash = entry_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{:016x}", hash | 1)
}
