//! Spans for a handler's outbound calls (HTTP, Redis, key-value, SQLite), children of the
//! handler's span.
//!
//! A handler call runs inside [`Call::trace`](super::Call::trace)'s context: the handler span's
//! context, and the tracer, as `opentelemetry::Context::current()` while the call is polled.
//! Host functions run within that poll (on the guest's fiber, on the same thread), so each
//! outbound call finds its parent there without any plumbing through the instance's state. With
//! tracing off, there is no tracer in the context and an [`OutboundSpan`] is nothing.

use std::borrow::Cow;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use opentelemetry_sdk::trace::{SdkTracer, Span};

/// The tracer a handler call's context carries, for the spans of its outbound calls.
#[derive(Clone)]
pub(crate) struct HandlerTracer(pub(crate) SdkTracer);

/// One outbound call's span, ended by [`OutboundSpan::end`] (or when dropped, as a call
/// cancelled with its handler).
pub(crate) struct OutboundSpan(Option<Span>);

impl OutboundSpan {
    /// A client span named `name`, child of the current handler call's span, when tracing.
    pub(crate) fn start(name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) -> Self {
        let context = opentelemetry::Context::current();
        let Some(HandlerTracer(tracer)) = context.get::<HandlerTracer>() else {
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
