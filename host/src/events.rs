//! What happened to each event: the outcome of one handler call, reported to an embedder's
//! [`EventSink`] (set in [`EngineOptions::events`](crate::EngineOptions::events)) as it ends.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

/// The outcome of one handler call: a timer tick, a Redis message, or one attempt at a stream
/// entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventOutcome {
    /// The trigger's id.
    pub trigger: String,
    /// The component that handled it.
    pub component: String,
    /// `Ok`, or why the call failed (a trap, the handler's error, its deadline), on one line.
    pub result: Result<(), String>,
    /// How long the call took, instantiation included.
    pub duration: Duration,
}

/// Where event outcomes go: a callback, called on the runtime's threads as each call ends, so
/// it should return quickly (send to a channel, bump a counter).
///
/// ```
/// use spin_trigger_host::events::EventSink;
///
/// let (sink, mut outcomes) = EventSink::channel();
/// # drop(sink);
/// # async {
/// while let Some(outcome) = outcomes.recv().await {
///     println!("{} ran {} in {:?}: {:?}", outcome.trigger, outcome.component, outcome.duration, outcome.result);
/// }
/// # };
/// ```
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(EventOutcome) + Send + Sync>);

impl EventSink {
    /// Calls `callback` with each outcome.
    pub fn new(callback: impl Fn(EventOutcome) + Send + Sync + 'static) -> Self {
        EventSink(Arc::new(callback))
    }

    /// A sink and the channel its outcomes arrive on. Unbounded: read it, or outcomes pile up.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<EventOutcome>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let sink = EventSink::new(move |outcome| {
            // The receiver gone means nobody is listening any more; nothing to do.
            let _ = sender.send(outcome);
        });
        (sink, receiver)
    }

    /// Reports one outcome.
    pub(crate) fn report(&self, outcome: EventOutcome) {
        (self.0)(outcome)
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSink(..)")
    }
}
