//! `wasi:otel/tracing@0.2.0-rc.2`, as Spin 4.0.2 links it with `--experimental-wasi-otel`: a
//! component's own spans join the trace of the handler call that made them, and go out through
//! the host's OTLP exporter.
//!
//! The guest asks for the handler span's context (`outer-span-context`), starts its spans under
//! it, and hands each one over when it ends (`on-end`); the host exports it as it is, with the
//! host's resource. With tracing off the outer context is invalid (all zeros) and ended spans
//! are dropped, as in Spin. Spans the host does not start need nothing at `on-start`: nothing
//! of the host's is re-parented under them (its own outbound spans stay children of the
//! handler span).
//!
//! A guest's spans are held to what a well-behaved exporter sends, so a hostile guest can
//! neither exhaust the host nor write into other traces: at most [`MAX_SPANS_PER_CALL`] per
//! handler call and [`MAX_SPAN_BYTES`] each; only sampled spans of the handler call's own
//! (sampled) trace; in a queue of their own (`call_trace::GuestSpans`). A span past these, or
//! one that cannot be read (an id that is not hex, a time out of range), is dropped and logged
//! at debug level rather than trapping the guest. `wasi:otel/logs` and `metrics` are not linked: a
//! component importing them is refused at start, naming them.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::InstanceState;

/// How many spans one handler call's guest may end (each call has an instance of its own).
pub(crate) const MAX_SPANS_PER_CALL: usize = 1_000;

/// How large one guest span may be: its strings, and 32 bytes for each list item.
pub(crate) const MAX_SPAN_BYTES: usize = 64 * 1024;

/// The `wasi:otel` interfaces linked, by their import names: `tracing`, and `types`, which
/// only holds the types it uses.
pub(crate) const LINKED_INTERFACES: [&str; 2] =
    ["wasi:otel/tracing@0.2.0-rc.2", "wasi:otel/types@0.2.0-rc.2"];

/// Host bindings for the one interface linked.
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "spin-trigger:otel-host/tracing-imports",
        path: "wit-otel",
    });
}

use bindings::wasi::clocks::wall_clock::Datetime;
use bindings::wasi::otel::tracing as wit;
use bindings::wasi::otel::types as wit_types;

/// Links `wasi:otel/tracing` into `linker` (only that interface: its types' `wasi:clocks`
/// come from WASI's own linking).
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<InstanceState>,
) -> anyhow::Result<()> {
    wit::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |state| state)
        .map_err(anyhow::Error::from)
}

impl wit::Host for InstanceState {
    fn on_start(&mut self, _context: wit::SpanContext) {}

    fn on_end(&mut self, span: wit::SpanData) {
        let drop = |why: &str| {
            tracing::debug!(component = %self.component_id, "a guest span was dropped: {why}");
        };
        if self.guest_spans_ended >= MAX_SPANS_PER_CALL {
            return drop(&format!("past {MAX_SPANS_PER_CALL} in one handler call"));
        }
        self.guest_spans_ended += 1;
        let bytes = span_bytes(&span);
        if bytes > MAX_SPAN_BYTES {
            return drop(&format!("{bytes} bytes, past {MAX_SPAN_BYTES}"));
        }
        match sdk_span(span) {
            Ok(span) => {
                if !crate::call_trace::export_guest_span(span) {
                    drop("not sampled, or not in its handler call's trace");
                }
            }
            Err(why) => drop(&why),
        }
    }

    fn outer_span_context(&mut self) -> wit::SpanContext {
        let context = opentelemetry::Context::current();
        let outer = context.span().span_context().clone();
        wit::SpanContext {
            trace_id: outer.trace_id().to_string(),
            span_id: outer.span_id().to_string(),
            trace_flags: if outer.is_sampled() {
                wit::TraceFlags::SAMPLED
            } else {
                wit::TraceFlags::empty()
            },
            is_remote: outer.is_remote(),
            trace_state: outer
                .trace_state()
                .header()
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        }
    }
}

impl wit_types::Host for InstanceState {}

/// About how much memory a guest span takes on the host: its strings, and 32 bytes per item.
fn span_bytes(span: &wit::SpanData) -> usize {
    const ITEM: usize = 32;
    let pairs = |list: &[wit_types::KeyValue]| -> usize {
        list.iter()
            .map(|pair| ITEM + pair.key.len() + pair.value.len())
            .sum()
    };
    let context = |context: &wit::SpanContext| -> usize {
        context.trace_id.len()
            + context.span_id.len()
            + context
                .trace_state
                .iter()
                .map(|(key, value)| ITEM + key.len() + value.len())
                .sum::<usize>()
    };
    let scope = &span.instrumentation_scope;
    let status = match &span.status {
        wit::Status::Error(message) => message.len(),
        _ => 0,
    };
    span.name.len()
        + span.parent_span_id.len()
        + context(&span.span_context)
        + pairs(&span.attributes)
        + span
            .events
            .iter()
            .map(|event| ITEM + event.name.len() + pairs(&event.attributes))
            .sum::<usize>()
        + span
            .links
            .iter()
            .map(|link| ITEM + context(&link.span_context) + pairs(&link.attributes))
            .sum::<usize>()
        + scope.name.len()
        + scope.version.as_ref().map_or(0, String::len)
        + scope.schema_url.as_ref().map_or(0, String::len)
        + pairs(&scope.attributes)
        + status
}

/// The guest's span as the OpenTelemetry SDK exports spans.
fn sdk_span(span: wit::SpanData) -> Result<SpanData, String> {
    let parent_span_id = if span.parent_span_id.is_empty() {
        SpanId::INVALID
    } else {
        span_id(&span.parent_span_id)?
    };
    let events = span
        .events
        .into_iter()
        .map(|event| {
            Ok(Event::new(
                event.name,
                system_time(event.time)?,
                attributes(event.attributes),
                0,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let links = span
        .links
        .into_iter()
        .map(|link| {
            Ok(Link::new(
                span_context(link.span_context)?,
                attributes(link.attributes),
                0,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    // Both are `#[non_exhaustive]`: filled in, not built.
    let mut span_events = SpanEvents::default();
    span_events.events = events;
    span_events.dropped_count = span.dropped_events;
    let mut span_links = SpanLinks::default();
    span_links.links = links;
    span_links.dropped_count = span.dropped_links;
    let scope = span.instrumentation_scope;
    let mut instrumentation_scope =
        InstrumentationScope::builder(scope.name).with_attributes(attributes(scope.attributes));
    if let Some(version) = scope.version {
        instrumentation_scope = instrumentation_scope.with_version(version);
    }
    if let Some(schema_url) = scope.schema_url {
        instrumentation_scope = instrumentation_scope.with_schema_url(schema_url);
    }
    Ok(SpanData {
        span_context: span_context(span.span_context)?,
        parent_span_id,
        parent_span_is_remote: false,
        span_kind: match span.span_kind {
            wit::SpanKind::Client => SpanKind::Client,
            wit::SpanKind::Server => SpanKind::Server,
            wit::SpanKind::Producer => SpanKind::Producer,
            wit::SpanKind::Consumer => SpanKind::Consumer,
            wit::SpanKind::Internal => SpanKind::Internal,
        },
        name: span.name.into(),
        start_time: system_time(span.start_time)?,
        end_time: system_time(span.end_time)?,
        attributes: attributes(span.attributes),
        dropped_attributes_count: span.dropped_attributes,
        events: span_events,
        links: span_links,
        status: match span.status {
            wit::Status::Unset => Status::Unset,
            wit::Status::Ok => Status::Ok,
            wit::Status::Error(message) => Status::error(message),
        },
        instrumentation_scope: instrumentation_scope.build(),
    })
}

fn span_context(context: wit::SpanContext) -> Result<SpanContext, String> {
    let trace_id = TraceId::from_hex(&context.trace_id)
        .map_err(|_| format!("trace id `{}` is not 32 hex digits", context.trace_id))?;
    let trace_state = TraceState::from_key_value(context.trace_state)
        .map_err(|error| format!("trace state: {error}"))?;
    Ok(SpanContext::new(
        trace_id,
        span_id(&context.span_id)?,
        if context.trace_flags.contains(wit::TraceFlags::SAMPLED) {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        context.is_remote,
        trace_state,
    ))
}

fn span_id(text: &str) -> Result<SpanId, String> {
    SpanId::from_hex(text).map_err(|_| format!("span id `{text}` is not 16 hex digits"))
}

/// A guest's time, refused when it is not one (nanoseconds past a second, or past what the
/// host's clock can hold) rather than let an overflow panic in the host.
fn system_time(time: Datetime) -> Result<SystemTime, String> {
    (time.nanoseconds < 1_000_000_000)
        .then(|| Duration::new(time.seconds, time.nanoseconds))
        .and_then(|since_epoch| SystemTime::UNIX_EPOCH.checked_add(since_epoch))
        .ok_or_else(|| {
            format!(
                "time {}.{:09} s is out of range",
                time.seconds, time.nanoseconds
            )
        })
}

/// Attributes, whose values `wasi:otel` writes as JSON (WIT has no recursive types): a string,
/// number, boolean or array of one of them becomes that value; anything else its JSON text.
fn attributes(pairs: Vec<wit_types::KeyValue>) -> Vec<KeyValue> {
    pairs
        .into_iter()
        .map(|pair| KeyValue::new(pair.key, value(&pair.value)))
        .collect()
}

fn value(json: &str) -> Value {
    use opentelemetry::{Array, StringValue};
    use serde_json::Value as Json;
    let Ok(parsed) = serde_json::from_str::<Json>(json) else {
        return Value::String(json.to_owned().into());
    };
    let all = |items: &[Json], keep: fn(&Json) -> bool| !items.is_empty() && items.iter().all(keep);
    match parsed {
        Json::String(text) => Value::String(text.into()),
        Json::Bool(flag) => Value::Bool(flag),
        Json::Number(number) => match number.as_i64() {
            Some(integer) => Value::I64(integer),
            None => Value::F64(number.as_f64().unwrap_or(f64::NAN)),
        },
        Json::Array(items) if all(&items, Json::is_string) => Value::Array(Array::String(
            items
                .into_iter()
                .filter_map(|item| item.as_str().map(|text| StringValue::from(text.to_owned())))
                .collect(),
        )),
        Json::Array(items) if all(&items, Json::is_boolean) => Value::Array(Array::Bool(
            items.iter().filter_map(Json::as_bool).collect(),
        )),
        Json::Array(items) if all(&items, Json::is_i64) => {
            Value::Array(Array::I64(items.iter().filter_map(Json::as_i64).collect()))
        }
        Json::Array(items) if all(&items, Json::is_number) => {
            Value::Array(Array::F64(items.iter().filter_map(Json::as_f64).collect()))
        }
        _ => Value::String(json.to_owned().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{Datetime, MAX_SPAN_BYTES, span_bytes, system_time, value, wit, wit_types};
    use opentelemetry::{Array, Value};

    fn span(attributes: usize) -> wit::SpanData {
        let at = Datetime {
            seconds: 1,
            nanoseconds: 0,
        };
        let context = wit::SpanContext {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            trace_flags: wit::TraceFlags::SAMPLED,
            is_remote: false,
            trace_state: Vec::new(),
        };
        wit::SpanData {
            span_context: context,
            parent_span_id: String::new(),
            span_kind: wit::SpanKind::Internal,
            name: "work".into(),
            start_time: at,
            end_time: at,
            attributes: (0..attributes)
                .map(|index| wit_types::KeyValue {
                    key: format!("key{index}"),
                    value: "\"v\"".into(),
                })
                .collect(),
            events: Vec::new(),
            links: Vec::new(),
            status: wit::Status::Ok,
            instrumentation_scope: wit_types::InstrumentationScope {
                name: "guest".into(),
                version: None,
                schema_url: None,
                attributes: Vec::new(),
            },
            dropped_attributes: 0,
            dropped_events: 0,
            dropped_links: 0,
        }
    }

    /// A span of a thousand empty-ish attributes counts for its items, not only its bytes.
    #[test]
    fn a_guest_span_is_measured_by_its_strings_and_its_items() {
        assert!(span_bytes(&span(10)) < MAX_SPAN_BYTES);
        assert!(span_bytes(&span(2_000)) > MAX_SPAN_BYTES);
    }

    #[test]
    fn a_guests_time_out_of_range_is_refused_not_a_panic() {
        let at = |seconds, nanoseconds| {
            system_time(Datetime {
                seconds,
                nanoseconds,
            })
        };
        assert!(at(1_700_000_000, 5).is_ok());
        assert!(at(u64::MAX, 999_999_999).is_err());
        assert!(at(u64::MAX, u32::MAX).is_err());
        assert!(at(0, 1_000_000_000).is_err());
    }

    #[test]
    fn attribute_values_are_read_from_their_json() {
        assert_eq!(value("\"text\""), Value::String("text".into()));
        assert_eq!(value("42"), Value::I64(42));
        assert_eq!(value("1.5"), Value::F64(1.5));
        assert_eq!(value("true"), Value::Bool(true));
        assert_eq!(
            value("[\"a\",\"b\"]"),
            Value::Array(Array::String(vec!["a".into(), "b".into()]))
        );
        assert_eq!(value("[1,2]"), Value::Array(Array::I64(vec![1, 2])));
        // Not JSON, or JSON with no attribute form: kept as the text.
        assert_eq!(value("plain"), Value::String("plain".into()));
        assert_eq!(value("{\"a\":1}"), Value::String("{\"a\":1}".into()));
        assert_eq!(value("[1,\"a\"]"), Value::String("[1,\"a\"]".into()));
    }
}
