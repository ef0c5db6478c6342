//! The trace context a handler call runs in, and the spans inside the call's span: one for each
//! outbound call it makes (HTTP, Redis, key-value, SQLite), and the guest's own (`wasi:otel`,
//! see `host_api::otel`).
//!
//! A handler call runs inside `telemetry::Call::trace`'s context: the handler span's context,
//! the tracer and the span processor, as `opentelemetry::Context::current()` while the call is
//! polled (`telemetry::in_trace`). Host functions run within that poll (on the guest's fiber,
//! on the same thread), so each outbound call finds its parent there without any plumbing
//! through the instance's state. With tracing off, there is no tracer in the context: an
//! [`OutboundSpan`] is nothing (its name and attributes are never even made), and a guest's
//! span is dropped.

use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, Span, SpanData, SpanProcessor as _};

/// What a handler call's context carries: the tracer for the spans of its outbound calls, and
/// the span processor its guest's own spans go to.
#[derive(Clone)]
pub(crate) struct HandlerTracer {
    pub(crate) tracer: SdkTracer,
    pub(crate) guest_spans: GuestSpans,
}

/// Exports a span the guest made (ended, with its own ids) when the current handler call's span
/// is sampled and the guest's span is sampled and in the handler's trace; otherwise drops it
/// (a guest cannot write into another trace, or around the sampler). Whether it was exported.
pub(crate) fn export_guest_span(span: SpanData) -> bool {
    let context = opentelemetry::Context::current();
    let Some(handler) = context.get::<HandlerTracer>() else {
        return false;
    };
    let outer = context.span().span_context().clone();
    let exported = outer.is_sampled()
        && span.span_context.is_sampled()
        && span.span_context.trace_id() == outer.trace_id();
    if exported {
        handler.guest_spans.0.on_end(span);
    }
    exported
}

/// One outbound call's span, ended by [`OutboundSpan::end`] (or when dropped, as a call
/// cancelled with its handler).
pub(crate) struct OutboundSpan(Option<Span>);

impl OutboundSpan {
    /// A client span, child of the current handler call's span, when tracing: `describe` gives
    /// its name and attributes, and is called only then.
    pub(crate) fn start<N: Into<Cow<'static, str>>>(
        describe: impl FnOnce() -> (N, Vec<KeyValue>),
    ) -> Self {
        let context = opentelemetry::Context::current();
        let Some(HandlerTracer { tracer, .. }) = context.get::<HandlerTracer>() else {
            return OutboundSpan(None);
        };
        let (name, attributes) = describe();
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, &context);
        OutboundSpan(Some(span))
    }

    /// Adds an attribute learned during the call (a response's status).
    pub(crate) fn set_attribute(&mut self, attribute: KeyValue) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(attribute);
        }
    }

    /// Ends the span, failed when `error` is given. Its status names the error's kind only
    /// (`HttpRequestDenied`, `Other`, `Io`), never its message, which may hold a statement, a
    /// key or a command's arguments.
    pub(crate) fn end(mut self, error: Option<&dyn std::fmt::Debug>) {
        if let Some(mut span) = self.0.take() {
            match error {
                Some(error) => span.set_status(Status::error(error_kind(error))),
                None => span.set_status(Status::Ok),
            }
            span.end();
        }
    }

    /// Ends the span with `result`'s outcome, and hands `result` back.
    pub(crate) fn finish<T, E: std::fmt::Debug>(self, result: Result<T, E>) -> Result<T, E> {
        self.end(
            result
                .as_ref()
                .err()
                .map(|error| error as &dyn std::fmt::Debug),
        );
        result
    }
}

/// The variant an error's `Debug` form starts with: `Other("...")` is `Other`.
fn error_kind(error: &dyn std::fmt::Debug) -> String {
    let text = format!("{error:?}");
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    text[..end].to_owned()
}

/// `server.address` and `server.port` of a `host[:port]` target, never its credentials.
pub(crate) fn server_attributes(host: &str, port: Option<u16>) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new("server.address", host.to_owned())];
    if let Some(port) = port {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    attributes
}

/// Where guests' own spans (`wasi:otel`) go: a batch processor and queue of their own, beside
/// the host's, so a guest that floods it loses its own spans, never the host's handler and
/// outbound spans. Its resource is the host's, set before it is shared.
#[derive(Debug, Clone)]
pub(crate) struct GuestSpans(pub(crate) Arc<BatchSpanProcessor>);

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::time::SystemTime;

    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
        TraceState, TracerProvider as _,
    };
    use opentelemetry::{Context, InstrumentationScope};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{
        BatchSpanProcessor, SdkTracerProvider, SpanData, SpanEvents, SpanExporter, SpanLinks,
    };

    use super::{GuestSpans, HandlerTracer, error_kind, export_guest_span};

    #[derive(Debug)]
    struct Discard;

    impl SpanExporter for Discard {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            Ok(())
        }
    }

    fn context(trace: &str, flags: TraceFlags) -> SpanContext {
        SpanContext::new(
            TraceId::from_hex(trace).unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags,
            false,
            TraceState::default(),
        )
    }

    fn guest_span(context: SpanContext) -> SpanData {
        SpanData {
            span_context: context,
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed("guest"),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("guest").build(),
        }
    }

    /// A guest's span goes out only from a traced call, sampled, and in the call's own trace.
    #[test]
    fn a_guest_span_is_exported_only_sampled_and_in_its_handlers_trace() {
        const MINE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
        const OTHER: &str = "0af7651916cd43dd8448eb211c80319c";
        let handler = |flags| {
            Context::new()
                .with_remote_span_context(context(MINE, flags))
                .with_value(HandlerTracer {
                    tracer: SdkTracerProvider::builder().build().tracer("test"),
                    guest_spans: GuestSpans(Arc::new(BatchSpanProcessor::builder(Discard).build())),
                })
        };
        let sampled = handler(TraceFlags::SAMPLED).attach();
        assert!(export_guest_span(guest_span(context(
            MINE,
            TraceFlags::SAMPLED
        ))));
        assert!(!export_guest_span(guest_span(context(
            MINE,
            TraceFlags::default()
        ))));
        assert!(!export_guest_span(guest_span(context(
            OTHER,
            TraceFlags::SAMPLED
        ))));
        drop(sampled);
        let _unsampled = handler(TraceFlags::default()).attach();
        assert!(!export_guest_span(guest_span(context(
            MINE,
            TraceFlags::SAMPLED
        ))));
        drop(_unsampled);
        assert!(!export_guest_span(guest_span(context(
            MINE,
            TraceFlags::SAMPLED
        ))));
    }

    #[derive(Debug)]
    #[allow(dead_code)] // Read through `Debug`.
    enum Failure {
        Other(String),
        Refused,
        Io { message: String },
    }

    #[test]
    fn a_status_names_the_error_kind_never_its_message() {
        assert_eq!(
            error_kind(&Failure::Other("GET secret-key".into())),
            "Other"
        );
        assert_eq!(error_kind(&Failure::Refused), "Refused");
        assert_eq!(
            error_kind(&Failure::Io {
                message: "near \"SELECT 'hunter2'\"".into()
            }),
            "Io"
        );
    }
}
