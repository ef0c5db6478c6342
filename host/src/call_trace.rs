//! The trace context a handler call runs in, and the spans inside the call's span: one for each
//! outbound call it makes (HTTP, Redis, key-value, SQLite), and the guest's own (`wasi:otel`,
//! see `host_api::otel`).
//!
//! A handler call runs inside `telemetry::Call::trace`'s context: the handler span's context,
//! the tracer and the span processor, as `opentelemetry::Context::current()` while the call is
//! polled (`telemetry::in_trace`). Host functions run within that poll (on the guest's fiber, on the same thread), so each
//! outbound call finds its parent there without any plumbing through the instance's state. With
//! tracing off, there is no tracer in the context: an [`OutboundSpan`] is nothing, and a guest's
//! span is dropped.

use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, Span, SpanData, SpanProcessor};

/// What a handler call's context carries: the tracer for the spans of its outbound calls, and
/// the span processor its guest's own spans go to.
#[derive(Clone)]
pub(crate) struct HandlerTracer {
    pub(crate) tracer: SdkTracer,
    pub(crate) guest_spans: SharedSpanProcessor,
}

/// Exports a span the guest made (ended, with its own ids) beside the host's, when the current
/// handler call is traced; otherwise drops it.
pub(crate) fn export_guest_span(span: SpanData) {
    if let Some(handler) = opentelemetry::Context::current().get::<HandlerTracer>() {
        handler.guest_spans.on_end(span);
    }
}

/// One outbound call's span, ended by [`OutboundSpan::end`] (or when dropped, as a call
/// cancelled with its handler).
pub(crate) struct OutboundSpan(Option<Span>);

impl OutboundSpan {
    /// A client span named `name`, child of the current handler call's span, when tracing.
    pub(crate) fn start(name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) -> Self {
        let context = opentelemetry::Context::current();
        let Some(HandlerTracer { tracer, .. }) = context.get::<HandlerTracer>() else {
            return OutboundSpan(None);
        };
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

    /// Ends the span, with `error` as its status when the call failed (the error the guest
    /// gets, as its `Debug` form names it: `HttpRequestDenied`, `Other("...")`).
    pub(crate) fn end(mut self, error: Option<&dyn std::fmt::Debug>) {
        if let Some(mut span) = self.0.take() {
            match error {
                Some(error) => span.set_status(Status::error(format!("{error:?}"))),
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

/// `server.address` and `server.port` of a `host[:port]` target, never its credentials.
pub(crate) fn server_attributes(host: &str, port: Option<u16>) -> Vec<KeyValue> {
    let mut attributes = vec![KeyValue::new("server.address", host.to_owned())];
    if let Some(port) = port {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    attributes
}

/// The host's batch span processor, shared between its tracer provider and the guests' spans
/// (`wasi:otel`), which arrive already ended. Its resource is set before it is shared.
#[derive(Debug, Clone)]
pub(crate) struct SharedSpanProcessor(pub(crate) Arc<BatchSpanProcessor>);

impl SpanProcessor for SharedSpanProcessor {
    fn on_start(&self, span: &mut Span, context: &opentelemetry::Context) {
        self.0.on_start(span, context);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}
