//! What the host tells the people running it: per-event metrics (Prometheus text on
//! `--metrics-addr`, and over OTLP), whether its Redis connections are up (`/healthz`,
//! `/readyz`), and a span per handler call over OTLP.
//!
//! Each trigger gets an [`EventReporter`] per component when it is built, and reports through
//! it as events arrive ([`EventReporter::received`]), as handler calls start and end
//! ([`EventReporter::start`], [`Call::finish`]), and as stream entries are retried or
//! dead-lettered and ticks skipped. With metrics and OTLP both off, a reporter records nothing
//! but still feeds an embedder's [`EventSink`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::events::{EventOutcome, EventSink};
use crate::limits::{DeadlinePassed, MemoryLimitReached};

mod health;
mod metrics;
mod otlp;
mod process;
mod server;

pub use health::ConnectionHealth;
pub use metrics::{FailureReason, SkipReason, StreamGauges};
pub use otlp::OtlpSignals;

use metrics::{ConnectionLabels, EventLabels, EventSeries, Metrics};

/// What to export, from the command line and the environment.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TelemetryOptions {
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (`--metrics-addr`); `None`: nowhere.
    pub metrics_addr: Option<SocketAddr>,
    /// Which OTLP signals to export (from `OTEL_*`); none by default.
    pub otlp: OtlpSignals,
    /// Link `wasi:otel/tracing` so components' own spans join their handler call's trace
    /// (`--experimental-wasi-otel`); off by default, as in Spin.
    pub wasi_otel: bool,
}

/// The host's metrics registry, connection health and OTLP exporters.
pub struct Telemetry {
    metrics: Arc<Metrics>,
    /// Whether events are recorded: only when something reads them.
    recording: bool,
    health: health::Health,
    otlp: Option<otlp::Otlp>,
    metrics_addr: Option<SocketAddr>,
}

impl Telemetry {
    /// Sets up what `options` asks for. OTLP's exporters run on the current tokio runtime.
    pub fn new(options: &TelemetryOptions) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let otlp = if options.otlp.any() {
            let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                anyhow::anyhow!("exporting over OTLP needs a tokio runtime to send from")
            })?;
            Some(otlp::Otlp::start(options.otlp, metrics.clone(), runtime)?)
        } else {
            None
        };
        Ok(Telemetry {
            recording: options.metrics_addr.is_some() || options.otlp.metrics,
            metrics,
            health: health::Health::default(),
            otlp,
            metrics_addr: options.metrics_addr,
        })
    }

    /// The reporter of one trigger's events for one component.
    pub fn reporter(
        &self,
        trigger_type: &'static str,
        trigger: &str,
        component: &str,
        sink: Option<EventSink>,
    ) -> EventReporter {
        let labels = EventLabels {
            trigger_type: trigger_type.to_owned(),
            trigger: trigger.to_owned(),
            component: component.to_owned(),
        };
        EventReporter(Arc::new(ReporterInner {
            series: self
                .recording
                .then(|| self.metrics.event_series(labels.clone())),
            tracing: self.otlp.as_ref().and_then(|otlp| otlp.tracing.clone()),
            duration: self.otlp.as_ref().and_then(|otlp| otlp.duration.clone()),
            attributes: [
                KeyValue::new("spin.trigger.type", trigger_type),
                KeyValue::new("spin.trigger.id", labels.trigger.clone()),
                KeyValue::new("spin.component", labels.component.clone()),
            ],
            labels,
            sink,
        }))
    }

    /// A Redis connection of a trigger, down until it first connects; `/readyz` waits for it.
    pub fn connection(
        &self,
        trigger_type: &str,
        triggers: &str,
        shown_address: &str,
    ) -> Arc<ConnectionHealth> {
        let labels = ConnectionLabels {
            trigger_type: trigger_type.to_owned(),
            trigger: triggers.to_owned(),
            address: shown_address.to_owned(),
        };
        let (connected, reconnects) = self.metrics.connection(&labels);
        let connection = Arc::new(ConnectionHealth::new(
            format!("{trigger_type} trigger(s) {triggers} at {shown_address}"),
            connected,
            reconnects,
        ));
        self.health.register(connection.clone());
        connection
    }

    /// The gauge of a Redis trigger's queue depth, when metrics are recorded.
    pub fn queue_depth(
        &self,
        trigger_type: &str,
        trigger: &str,
    ) -> Option<prometheus_client::metrics::gauge::Gauge> {
        self.recording
            .then(|| self.metrics.queue_depth(trigger_type, trigger))
    }

    /// A stream consumer group's backlog gauges, when metrics are recorded.
    pub fn stream_gauges(&self, trigger: &str, stream: &str, group: &str) -> Option<StreamGauges> {
        self.recording
            .then(|| self.metrics.stream_gauges(trigger, stream, group))
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` until `shutdown`, if `--metrics-addr` was
    /// given. Binding happens now, so a taken port fails the start.
    pub async fn serve(
        self: &Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<()> {
        match self.metrics_addr {
            Some(address) => server::serve(self.clone(), address, shutdown).await,
            None => Ok(()),
        }
    }

    /// Sends what the OTLP exporters still hold.
    pub async fn shutdown(&self) {
        if let Some(otlp) = &self.otlp {
            otlp.shutdown().await;
        }
    }
}

/// Why a handler call failed, for the `reason` label and the span.
pub fn failure_reason(error: &anyhow::Error) -> FailureReason {
    if error.downcast_ref::<DeadlinePassed>().is_some() {
        FailureReason::Timeout
    } else if error.downcast_ref::<MemoryLimitReached>().is_some() {
        FailureReason::Memory
    } else if error.downcast_ref::<wasmtime::Trap>().is_some() {
        FailureReason::Trap
    } else {
        FailureReason::Error
    }
}

/// Reports one trigger's events for one component. Cheap to clone.
#[derive(Clone)]
pub struct EventReporter(Arc<ReporterInner>);

struct ReporterInner {
    labels: EventLabels,
    series: Option<Arc<EventSeries>>,
    /// With traces exported: the tracer, and where guests' own spans go.
    tracing: Option<crate::call_trace::HandlerTracer>,
    duration: Option<opentelemetry::metrics::Histogram<f64>>,
    /// The span attributes every call of this trigger and component carries.
    attributes: [KeyValue; 3],
    sink: Option<EventSink>,
}

/// What a span says about one handler call beyond its trigger and component.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallInfo<'a> {
    /// The channel or stream it came from.
    pub destination: Option<&'a str>,
    /// The stream entry's id.
    pub message_id: Option<&'a str>,
    /// Which attempt at a stream entry this is.
    pub attempt: Option<u32>,
    /// A W3C `traceparent` the event carried: the span continues that trace.
    pub traceparent: Option<&'a str>,
}

impl EventReporter {
    /// `count` events arrived.
    pub fn received(&self, count: u64) {
        if let Some(series) = &self.0.series {
            series.received.inc_by(count);
        }
    }

    /// A stream entry's failed attempt will be tried again.
    pub fn retried(&self) {
        if let Some(counter) = self.0.series.as_ref().and_then(|s| s.retried.as_ref()) {
            counter.inc();
        }
    }

    /// A stream entry went to the dead-letter stream.
    pub fn dead_lettered(&self) {
        if let Some(counter) = self
            .0
            .series
            .as_ref()
            .and_then(|s| s.dead_lettered.as_ref())
        {
            counter.inc();
        }
    }

    /// A timer tick did not run here.
    pub fn skipped(&self, reason: SkipReason) {
        if let Some(series) = &self.0.series {
            series.skipped(reason);
        }
    }

    /// A coordinated tick's lease ran out while this host ran it: another host may run it
    /// too.
    pub fn lease_lost(&self) {
        if let Some(counter) = self.0.series.as_ref().and_then(|s| s.leases_lost.as_ref()) {
            counter.inc();
        }
    }

    /// A timer tick fired `lateness` after its scheduled time.
    pub fn late(&self, lateness: Duration) {
        if let Some(series) = &self.0.series {
            series.late(lateness);
        }
    }

    /// A handler call begins: counted in flight, and a span started when tracing.
    pub fn start(&self, info: CallInfo<'_>) -> Call<'_> {
        if let Some(series) = &self.0.series {
            series.in_flight.inc();
        }
        let span = self.0.tracing.as_ref().map(|tracing| {
            let tracer = &tracing.tracer;
            let inner = &self.0;
            let mut attributes = inner.attributes.to_vec();
            let is_redis = inner.labels.trigger_type != "timer";
            if is_redis {
                attributes.push(KeyValue::new("messaging.system", "redis"));
            }
            if let Some(destination) = info.destination {
                attributes.push(KeyValue::new(
                    "messaging.destination.name",
                    destination.to_owned(),
                ));
            }
            if let Some(id) = info.message_id {
                attributes.push(KeyValue::new("messaging.message.id", id.to_owned()));
            }
            if let Some(attempt) = info.attempt {
                attributes.push(KeyValue::new("spin.attempt", i64::from(attempt)));
            }
            let parent = match info.traceparent {
                Some(traceparent) => {
                    let carrier =
                        HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
                    TraceContextPropagator::new().extract(&carrier)
                }
                None => opentelemetry::Context::new(),
            };
            let name = match info.destination {
                Some(destination) => format!("{} {destination}", inner.labels.trigger_type),
                None => format!("{} {}", inner.labels.trigger_type, inner.labels.trigger),
            };
            tracer
                .span_builder(name)
                .with_kind(if is_redis {
                    SpanKind::Consumer
                } else {
                    SpanKind::Internal
                })
                .with_attributes(attributes)
                .start_with_context(tracer, &parent)
        });
        Call {
            reporter: self,
            started: Instant::now(),
            span,
        }
    }
}

/// `handler` (a handler call's future) run in `call`'s trace context: the spans of its
/// outbound calls are children of the call's span.
pub fn in_trace<F: std::future::Future>(
    handler: F,
    call: &Call<'_>,
) -> opentelemetry::context::WithContext<F> {
    opentelemetry::context::FutureExt::with_context(handler, call.trace())
}

/// One handler call under way; [`Call::finish`] reports how it ended.
pub struct Call<'r> {
    reporter: &'r EventReporter,
    started: Instant,
    span: Option<opentelemetry_sdk::trace::Span>,
}

impl Call<'_> {
    /// The context the handler call runs in: with tracing on, its span's context and the
    /// tracer, so the spans of its outbound calls and its guest's own are its children (see
    /// `call_trace`).
    /// [`in_trace`] runs the call's future in it.
    pub fn trace(&self) -> opentelemetry::Context {
        match (&self.span, &self.reporter.0.tracing) {
            (Some(span), Some(tracing)) => opentelemetry::Context::new()
                .with_remote_span_context(span.span_context().clone())
                .with_value(tracing.clone()),
            _ => opentelemetry::Context::new(),
        }
    }

    /// Records how the call ended (`error`, if it failed): counted handled or failed (with
    /// why), timed, its span ended, and the outcome sent to the embedder's sink.
    pub fn finish(mut self, error: Option<&anyhow::Error>) {
        let inner = &self.reporter.0;
        let duration = self.started.elapsed();
        let reason = error.map(failure_reason);
        if let Some(series) = &inner.series {
            match reason {
                None => series.handled.inc(),
                Some(reason) => series.failed(reason).inc(),
            };
            series.duration.observe(duration.as_secs_f64());
        }
        if let Some(histogram) = &inner.duration {
            histogram.record(duration.as_secs_f64(), &inner.attributes);
        }
        let one_line = error.map(crate::error_text::one_line);
        if let Some(mut span) = self.span.take() {
            span.set_attribute(KeyValue::new(
                "spin.result",
                reason.map_or("ok", FailureReason::as_str),
            ));
            if let Some(message) = &one_line {
                span.set_status(Status::error(message.clone()));
            } else {
                span.set_status(Status::Ok);
            }
            span.end();
        }
        if let Some(sink) = &inner.sink {
            sink.report(EventOutcome {
                trigger: inner.labels.trigger.clone(),
                component: inner.labels.component.clone(),
                result: one_line.map_or(Ok(()), Err),
                duration,
            });
        }
    }
}

impl Drop for Call<'_> {
    /// Finished or dropped (a call cancelled at shutdown), it is no longer in flight.
    fn drop(&mut self) {
        if let Some(series) = &self.reporter.0.series {
            series.in_flight.dec();
        }
    }
}

/// Logs a failed event: the one-line reason through `log` (a trap says which trap; a handler
/// error is its message), and the wasm backtrace, when there is one, at debug level.
pub fn log_failure(error: &anyhow::Error, component_id: &str, what: &str, log: impl FnOnce(&str)) {
    let memory = error.downcast_ref::<crate::limits::MemoryLimitReached>();
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => {
            match memory {
                Some(memory) => log(&format!("{trap} ({memory})")),
                None => log(&trap.to_string()),
            }
            tracing::debug!(component = component_id, "{what}: {error:?}");
        }
        None => log(&crate::error_text::one_line(error)),
    }
}
