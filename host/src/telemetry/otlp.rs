//! OpenTelemetry over OTLP/HTTP, configured as Spin configures it: off unless an endpoint is
//! set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT` for one
//! signal), with the standard `OTEL_*` variables for the rest (headers, timeout, service name,
//! resource attributes, batch delay, export interval). `OTEL_SDK_DISABLED=true` turns it off.
//!
//! Spans: one per handler call (see [`super::Call`]). Metrics: the same counters and gauges as
//! `/metrics`, read from the same series when the exporter collects, plus the handler duration
//! histogram.

use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, Meter, MeterProvider};
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanProcessor,
};

use crate::call_trace::{GuestSpans, HandlerTracer};

/// How many guests' spans (`wasi:otel`) may wait for export: past it, more are dropped (the
/// host's own spans have a queue of their own).
const GUEST_SPAN_QUEUE: usize = 512;

use super::metrics::{EventSeries, FailureReason, Metrics};

/// The service name spans and metrics carry unless `OTEL_SERVICE_NAME` (or a `service.name`
/// in `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
const DEFAULT_SERVICE_NAME: &str = "spin-trigger-host";

/// Which signals the environment asks to export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtlpSignals {
    /// A span per handler call.
    pub traces: bool,
    /// The event counters, gauges and handler durations.
    pub metrics: bool,
}

impl OtlpSignals {
    /// What the `OTEL_*` variables ask for: traces when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, metrics likewise; nothing with
    /// `OTEL_SDK_DISABLED=true`. An error for a protocol other than `http/protobuf`.
    pub fn from_env() -> anyhow::Result<Self> {
        let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
        let disabled = std::env::var("OTEL_SDK_DISABLED")
            .is_ok_and(|value| value.trim().eq_ignore_ascii_case("true"));
        if disabled {
            return Ok(OtlpSignals::default());
        }
        let signals = OtlpSignals {
            traces: set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            metrics: set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        };
        if signals.traces || signals.metrics {
            for variable in [
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            ] {
                if let Ok(protocol) = std::env::var(variable)
                    && protocol.trim() != "http/protobuf"
                {
                    bail!(
                        "{variable}={protocol}: this host exports OTLP over HTTP with protobuf; set \
                         it to http/protobuf (or unset it) and point the endpoint at the collector's \
                         OTLP/HTTP port (usually 4318)"
                    );
                }
            }
        }
        Ok(signals)
    }

    /// Whether anything is exported.
    pub fn any(&self) -> bool {
        self.traces || self.metrics
    }
}

/// The exporters, while the host runs.
pub struct Otlp {
    /// With traces exported: the host's tracer, and where the spans guests end themselves go
    /// (`wasi:otel`), beside the tracer's.
    pub tracing: Option<HandlerTracer>,
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    /// Handler durations, recorded per call (OTLP has no histogram read at collection time).
    pub duration: Option<Histogram<f64>>,
}

impl Otlp {
    /// Starts the exporters `signals` asks for. Their requests run on `runtime`.
    pub fn start(
        signals: OtlpSignals,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<Otlp> {
        let client = OtlpClient::new(runtime)?;
        let resource = resource();
        let mut otlp = Otlp {
            tracing: None,
            tracer_provider: None,
            meter_provider: None,
            duration: None,
        };
        if signals.traces {
            let exporter = || {
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_http_client(client.clone())
                    .build()
                    .context("configuring the OTLP span exporter (OTEL_EXPORTER_OTLP_*)")
            };
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter()?)
                .with_resource(resource.clone())
                .build();
            let tracer = provider.tracer("spin-trigger-host");
            otlp.tracer_provider = Some(provider);
            let mut guest_spans = BatchSpanProcessor::builder(exporter()?)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_max_queue_size(GUEST_SPAN_QUEUE)
                        .build(),
                )
                .build();
            guest_spans.set_resource(&resource);
            otlp.tracing = Some(HandlerTracer {
                tracer,
                guest_spans: GuestSpans(Arc::new(guest_spans)),
            });
        }
        if signals.metrics {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_http_client(client)
                .build()
                .context("configuring the OTLP metric exporter (OTEL_EXPORTER_OTLP_*)")?;
            let provider = SdkMeterProvider::builder()
                .with_periodic_exporter(exporter)
                .with_resource(resource)
                .build();
            let meter = provider.meter("spin-trigger-host");
            register_observers(&meter, metrics);
            otlp.duration = Some(
                meter
                    .f64_histogram("spin_trigger_handler_duration")
                    .with_unit("s")
                    .with_description("How long handler calls took, instantiation included.")
                    .build(),
            );
            otlp.meter_provider = Some(provider);
        }
        Ok(otlp)
    }

    /// Sends what is still buffered and stops the exporters. It blocks, so it runs off the
    /// async threads.
    pub async fn shutdown(&self) {
        let (traces, metrics) = (self.tracer_provider.clone(), self.meter_provider.clone());
        let guest_spans = self
            .tracing
            .as_ref()
            .map(|tracing| tracing.guest_spans.clone());
        let stopped = tokio::task::spawn_blocking(move || {
            if let Some(provider) = traces
                && let Err(error) = provider.shutdown()
            {
                tracing::warn!("exporting the last spans over OTLP: {error}");
            }
            if let Some(GuestSpans(processor)) = guest_spans
                && let Err(error) = processor.shutdown()
            {
                tracing::warn!("exporting the last guest spans over OTLP: {error}");
            }
            if let Some(provider) = metrics
                && let Err(error) = provider.shutdown()
            {
                tracing::warn!("exporting the last metrics over OTLP: {error}");
            }
        });
        let _ = stopped.await;
    }
}

fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attributes| attributes.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name(DEFAULT_SERVICE_NAME).build()
    }
}

/// The attributes of one trigger's series.
fn attributes(series: &EventSeries) -> Vec<KeyValue> {
    vec![
        KeyValue::new("trigger_type", series.labels.trigger_type.clone()),
        KeyValue::new("trigger", series.labels.trigger.clone()),
        KeyValue::new("component", series.labels.component.clone()),
    ]
}

/// Observable counters and gauges over the series `/metrics` shows: one count, two exporters.
fn register_observers(meter: &Meter, metrics: Arc<Metrics>) {
    type Read = fn(&EventSeries) -> Option<u64>;
    let counters: [(&'static str, &'static str, Read); 5] = [
        (
            "spin_trigger_events_received",
            "Events that reached a trigger.",
            |series| Some(series.received.get()),
        ),
        (
            "spin_trigger_events_handled",
            "Handler calls that succeeded.",
            |series| Some(series.handled.get()),
        ),
        (
            "spin_trigger_events_retried",
            "Stream entries tried again after a failed attempt.",
            |series| series.retried.as_ref().map(|counter| counter.get()),
        ),
        (
            "spin_trigger_events_dead_lettered",
            "Stream entries moved to the dead-letter stream.",
            |series| series.dead_lettered.as_ref().map(|counter| counter.get()),
        ),
        (
            "spin_trigger_events_skipped",
            "Timer ticks not run on this host.",
            |series| (series.labels.trigger_type == "timer").then(|| series.skipped_total()),
        ),
    ];
    for (name, description, read) in counters {
        let metrics = metrics.clone();
        meter
            .u64_observable_counter(name)
            .with_description(description)
            .with_callback(move |observer| {
                for series in metrics.all_series() {
                    if let Some(value) = read(&series) {
                        observer.observe(value, &attributes(&series));
                    }
                }
            })
            .build();
    }
    let failures = metrics.clone();
    meter
        .u64_observable_counter("spin_trigger_events_failed")
        .with_description("Handler calls that failed, by reason: error, trap, timeout, memory.")
        .with_callback(move |observer| {
            for series in failures.all_series() {
                for reason in FailureReason::ALL {
                    let mut attributes = attributes(&series);
                    attributes.push(KeyValue::new("reason", reason.as_str()));
                    observer.observe(series.failed(reason).get(), &attributes);
                }
            }
        })
        .build();
    meter
        .i64_observable_gauge("spin_trigger_instances_in_flight")
        .with_description("Handler calls running now.")
        .with_callback(move |observer| {
            for series in metrics.all_series() {
                observer.observe(series.in_flight.get(), &attributes(&series));
            }
        })
        .build();
}

/// The exporters' HTTP client: the host's own pooled hyper-rustls client. The exporters call
/// it from their own threads, so each request is spawned onto the host's tokio runtime.
#[derive(Clone)]
struct OtlpClient {
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtlpClient")
    }
}

impl OtlpClient {
    fn new(runtime: tokio::runtime::Handle) -> anyhow::Result<Self> {
        let client = crate::host_api::outbound_http::build_client(None)
            .map_err(|message| anyhow::anyhow!("the OTLP exporter's HTTP client: {message}"))?;
        Ok(OtlpClient { client, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let request = request.map(Full::new);
        let exchange = async move {
            let response = client.request(request).await?;
            let (head, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(head, body))
        };
        self.runtime.spawn(exchange).await?
    }
}
