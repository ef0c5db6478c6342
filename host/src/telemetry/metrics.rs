//! The host's metrics, in one Prometheus registry: per trigger and component, what happened to
//! each event; per Redis connection, whether it is up; per stream, how far behind its group is;
//! and the process's own CPU, memory and file descriptors.
//!
//! Every series a trigger records into is made once, when the trigger is built, so recording an
//! event is a few atomic additions: no label lookup per event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::process::ProcessCollector;

/// Which trigger, of which type, running which component.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `timer`, `redis` or `redis-stream`.
    pub trigger_type: String,
    pub trigger: String,
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    #[prometheus(flatten)]
    event: EventLabels,
    reason: String,
}

/// One Redis connection of the triggers: a pub/sub server's, or a stream consumer's.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub trigger_type: String,
    /// The trigger ids using it, comma-separated.
    pub trigger: String,
    /// Its address, any password redacted.
    pub address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    trigger: String,
    stream: String,
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger_type: String,
    trigger: String,
}

/// Why a handler call failed, as the `reason` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// The handler returned an error.
    Error,
    /// The guest trapped (a panic, an out-of-bounds access, ...).
    Trap,
    /// It ran past its `handler_timeout`.
    Timeout,
    /// It needed more memory than its `max_memory`.
    Memory,
}

impl FailureReason {
    pub const ALL: [FailureReason; 4] = [
        FailureReason::Error,
        FailureReason::Trap,
        FailureReason::Timeout,
        FailureReason::Memory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Error => "error",
            FailureReason::Trap => "trap",
            FailureReason::Timeout => "timeout",
            FailureReason::Memory => "memory",
        }
    }
}

/// Why a timer tick did not run on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The previous tick's handler was still running.
    Overlap,
    /// Coordination (Redis) could not be reached, so no host could be sure to run it once.
    Coordination,
    /// An operator paused the trigger.
    Paused,
    /// It would have gone over the trigger's `max_per_second`.
    RateLimit,
}

impl SkipReason {
    const ALL: [SkipReason; 4] = [
        SkipReason::Overlap,
        SkipReason::Coordination,
        SkipReason::Paused,
        SkipReason::RateLimit,
    ];

    fn as_str(self) -> &'static str {
        match self {
            SkipReason::Overlap => "overlap",
            SkipReason::Coordination => "coordination",
            SkipReason::Paused => "paused",
            SkipReason::RateLimit => "rate_limit",
        }
    }
}

/// The metric families, registered once.
pub struct Metrics {
    registry: Registry,
    received: Family<EventLabels, Counter>,
    handled: Family<EventLabels, Counter>,
    failed: Family<ReasonLabels, Counter>,
    retried: Family<EventLabels, Counter>,
    dead_lettered: Family<EventLabels, Counter>,
    skipped: Family<ReasonLabels, Counter>,
    leases_lost: Family<EventLabels, Counter>,
    in_flight: Family<EventLabels, Gauge>,
    duration: Family<EventLabels, Histogram, fn() -> Histogram>,
    lateness: Family<EventLabels, Histogram, fn() -> Histogram>,
    connected: Family<ConnectionLabels, Gauge>,
    reconnects: Family<ConnectionLabels, Counter>,
    queue_depth: Family<TriggerLabels, Gauge>,
    stream_pending: Family<StreamLabels, Gauge>,
    stream_oldest_pending_age: Family<StreamLabels, Gauge<f64, AtomicU64>>,
    stream_lag: Family<StreamLabels, Gauge>,
    /// Every event series made, for the OTLP exporter to read.
    series: Mutex<Vec<Arc<EventSeries>>>,
}

/// Handler durations from 100 µs to about 100 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

/// Timer lateness from 1 ms to about 16 s.
fn lateness_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 8))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Metrics {
            received: Family::default(),
            handled: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            dead_lettered: Family::default(),
            skipped: Family::default(),
            leases_lost: Family::default(),
            in_flight: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            lateness: Family::new_with_constructor(lateness_histogram),
            connected: Family::default(),
            reconnects: Family::default(),
            queue_depth: Family::default(),
            stream_pending: Family::default(),
            stream_oldest_pending_age: Family::default(),
            stream_lag: Family::default(),
            series: Mutex::default(),
            registry: Registry::default(),
        };
        let mut registry = Registry::default();
        registry.register(
            "spin_trigger_events_received",
            "Events that reached a trigger: messages, stream entries (read or claimed), timer ticks due.",
            metrics.received.clone(),
        );
        registry.register(
            "spin_trigger_events_handled",
            "Handler calls that succeeded.",
            metrics.handled.clone(),
        );
        registry.register(
            "spin_trigger_events_failed",
            "Handler calls that failed, by reason: error, trap, timeout, memory.",
            metrics.failed.clone(),
        );
        registry.register(
            "spin_trigger_events_retried",
            "Stream entries tried again after a failed attempt.",
            metrics.retried.clone(),
        );
        registry.register(
            "spin_trigger_events_dead_lettered",
            "Stream entries moved to the dead-letter stream after their last attempt.",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "spin_trigger_events_skipped",
            "Timer ticks not run on this host, by reason: overlap, coordination.",
            metrics.skipped.clone(),
        );
        registry.register(
            "spin_trigger_timer_leases_lost",
            "Coordinated ticks whose lease ran out while this host ran them: another host may \
             have run them too (a possibly duplicated run).",
            metrics.leases_lost.clone(),
        );
        registry.register(
            "spin_trigger_instances_in_flight",
            "Handler calls running now.",
            metrics.in_flight.clone(),
        );
        registry.register(
            "spin_trigger_handler_duration_seconds",
            "How long handler calls took, instantiation included.",
            metrics.duration.clone(),
        );
        registry.register(
            "spin_trigger_timer_lateness_seconds",
            "How long after its scheduled time a timer tick fired.",
            metrics.lateness.clone(),
        );
        registry.register(
            "spin_trigger_redis_connected",
            "1 while a trigger's Redis connection is up, else 0.",
            metrics.connected.clone(),
        );
        registry.register(
            "spin_trigger_redis_reconnects",
            "Times a trigger's Redis connection came back after being lost.",
            metrics.reconnects.clone(),
        );
        registry.register(
            "spin_trigger_queue_depth",
            "Messages waiting in a Redis trigger's queue for a free handler.",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "spin_trigger_stream_pending_entries",
            "Entries the consumer group has delivered and not yet acknowledged (XINFO GROUPS pending).",
            metrics.stream_pending.clone(),
        );
        registry.register(
            "spin_trigger_stream_oldest_pending_age_seconds",
            "How long ago the oldest entry the consumer group has delivered and not acknowledged was added to the stream (from its id; 0 when none is pending).",
            metrics.stream_oldest_pending_age.clone(),
        );
        registry.register(
            "spin_trigger_stream_lag_entries",
            "Entries in the stream not yet delivered to the consumer group (XINFO GROUPS lag).",
            metrics.stream_lag.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The series one trigger's events are recorded in.
    pub fn event_series(&self, labels: EventLabels) -> Arc<EventSeries> {
        let reason = |reason: &str| ReasonLabels {
            event: labels.clone(),
            reason: reason.to_owned(),
        };
        let is_type = |name: &str| labels.trigger_type == name;
        let series = Arc::new(EventSeries {
            received: self.received.get_or_create_owned(&labels),
            handled: self.handled.get_or_create_owned(&labels),
            failed: FailureReason::ALL
                .map(|why| self.failed.get_or_create_owned(&reason(why.as_str()))),
            retried: is_type("redis-stream").then(|| self.retried.get_or_create_owned(&labels)),
            dead_lettered: is_type("redis-stream")
                .then(|| self.dead_lettered.get_or_create_owned(&labels)),
            skipped: is_type("timer").then(|| {
                SkipReason::ALL.map(|why| self.skipped.get_or_create_owned(&reason(why.as_str())))
            }),
            lateness: is_type("timer").then(|| self.lateness.get_or_create_owned(&labels)),
            leases_lost: is_type("timer").then(|| self.leases_lost.get_or_create_owned(&labels)),
            in_flight: self.in_flight.get_or_create_owned(&labels),
            duration: self.duration.get_or_create_owned(&labels),
            labels,
        });
        self.series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(series.clone());
        series
    }

    /// Every event series made so far.
    pub fn all_series(&self) -> Vec<Arc<EventSeries>> {
        self.series
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The up/down gauge and reconnect counter of one Redis connection.
    pub fn connection(&self, labels: &ConnectionLabels) -> (Gauge, Counter) {
        (
            self.connected.get_or_create_owned(labels),
            self.reconnects.get_or_create_owned(labels),
        )
    }

    /// The gauge of a Redis trigger's queue depth.
    pub fn queue_depth(&self, trigger_type: &str, trigger: &str) -> Gauge {
        self.queue_depth.get_or_create_owned(&TriggerLabels {
            trigger_type: trigger_type.to_owned(),
            trigger: trigger.to_owned(),
        })
    }

    /// The pending and lag gauges of one stream consumer's group.
    pub fn stream_gauges(&self, trigger: &str, stream: &str, group: &str) -> StreamGauges {
        let labels = StreamLabels {
            trigger: trigger.to_owned(),
            stream: stream.to_owned(),
            group: group.to_owned(),
        };
        StreamGauges {
            pending: self.stream_pending.get_or_create_owned(&labels),
            oldest_pending_age: self.stream_oldest_pending_age.get_or_create_owned(&labels),
            lag: self.stream_lag.get_or_create_owned(&labels),
        }
    }

    /// Everything, in the OpenMetrics text format Prometheus scrapes.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// A stream consumer group's backlog, as `XINFO GROUPS` last said it.
#[derive(Clone)]
pub struct StreamGauges {
    pub pending: Gauge,
    pub lag: Gauge,
    /// Seconds since the oldest pending entry was added (`XPENDING`'s smallest id).
    pub oldest_pending_age: Gauge<f64, AtomicU64>,
}

/// One trigger's event counters and histograms.
pub struct EventSeries {
    pub labels: EventLabels,
    pub received: Counter,
    pub handled: Counter,
    /// By [`FailureReason::ALL`]'s order.
    pub failed: [Counter; 4],
    /// Stream triggers only.
    pub retried: Option<Counter>,
    pub dead_lettered: Option<Counter>,
    /// Timer triggers only: by [`SkipReason`].
    skipped: Option<[Counter; SkipReason::ALL.len()]>,
    lateness: Option<Histogram>,
    /// Timer triggers only: coordinated ticks run past a lost lease.
    pub leases_lost: Option<Counter>,
    pub in_flight: Gauge,
    pub duration: Histogram,
}

impl EventSeries {
    pub fn failed(&self, reason: FailureReason) -> &Counter {
        // `ALL` lists the reasons in declaration order.
        &self.failed[reason as usize]
    }

    pub fn skipped(&self, reason: SkipReason) {
        if let Some(skipped) = &self.skipped {
            skipped[reason as usize].inc();
        }
    }

    /// Every skip so far, whatever the reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped
            .iter()
            .flatten()
            .map(|counter| counter.get())
            .sum()
    }

    pub fn late(&self, lateness: Duration) {
        if let Some(histogram) = &self.lateness {
            histogram.observe(lateness.as_secs_f64());
        }
    }
}
