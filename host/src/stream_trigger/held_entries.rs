//! What a stream consumer holds across its turns and reconnections: the entries handed to
//! handlers, their reported ends, a batch gathering, and the attempts to write to Redis.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::handling::Settlement;
use super::reply::RawEntry;

/// The entries a consumer holds (handed to handlers, finished, gathering for a batch) and
/// the attempts to write to Redis: kept across reconnections.
pub(super) struct HeldEntries {
    /// Entries handed to handler tasks whose end Redis has not been told yet.
    pub(super) in_flight: HashSet<String>,
    /// Ends reported by handler tasks, not yet sent to Redis.
    pub(super) finished: Vec<Settlement>,
    /// Handler tasks (each a batch of entries, or one entry) whose entries are not settled yet:
    /// each holds one of the `max_in_flight` slots until then.
    pub(super) batches: usize,
    /// How many of those have reported their ends into `finished`.
    pub(super) finished_batches: usize,
    /// Entries read for a batch that is not full yet, waiting up to `batch_wait` (since
    /// `filling_since`) for more.
    pub(super) filling: Vec<RawEntry>,
    pub(super) filling_since: Option<Instant>,
    pub(super) done_sender: mpsc::UnboundedSender<Vec<Settlement>>,
    pub(super) done: mpsc::UnboundedReceiver<Vec<Settlement>>,
    /// Handler tasks report here each attempt they are about to make again.
    pub(super) retry_sender: mpsc::UnboundedSender<RetryStart>,
    pub(super) retries: mpsc::UnboundedReceiver<RetryStart>,
    /// Attempts reported and not yet written to Redis as the entries' delivery counts.
    pub(super) attempts_to_record: Vec<Attempt>,
    /// The retries waiting for those attempts to be written before they run.
    pub(super) retries_waiting: Vec<oneshot::Sender<()>>,
    /// Entries that were gathering for a batch when the connection was lost, with their
    /// delivery counts: read again, they get their counts back.
    pub(super) unattempted: HashMap<String, u32>,
}

/// An entry about to be tried again: its id and the attempt it is about to make.
pub(super) type Attempt = (String, u32);

/// A handler task's retry of some entries: it runs once `recorded` is told their attempts are
/// in Redis, so a host killed during the retry leaves the count the next host goes on from.
pub(super) struct RetryStart {
    pub(super) attempts: Vec<Attempt>,
    pub(super) recorded: oneshot::Sender<()>,
}

impl HeldEntries {
    pub(super) fn new() -> Self {
        let (done_sender, done) = mpsc::unbounded_channel();
        let (retry_sender, retries) = mpsc::unbounded_channel();
        HeldEntries {
            in_flight: HashSet::new(),
            finished: Vec::new(),
            batches: 0,
            finished_batches: 0,
            filling: Vec::new(),
            filling_since: None,
            done_sender,
            done,
            retry_sender,
            retries,
            attempts_to_record: Vec::new(),
            retries_waiting: Vec::new(),
            unattempted: HashMap::new(),
        }
    }

    /// Entries read again that were never attempted: their delivery counts as they were, here
    /// and (written in the next round trip) in Redis.
    pub(super) fn restore_unattempted(&mut self, entries: &mut [RawEntry]) {
        for entry in entries {
            if let Some(deliveries) = self.unattempted.remove(&entry.id) {
                entry.deliveries = deliveries;
                self.attempts_to_record.push((entry.id.clone(), deliveries));
            }
        }
    }

    /// Takes every end reported so far, without waiting.
    pub(super) fn collect_finished(&mut self) {
        while let Ok(done) = self.done.try_recv() {
            self.take_done(done);
        }
        while let Ok(retry) = self.retries.try_recv() {
            self.take_retry(retry);
        }
    }

    /// Takes one retry's attempts, to write in the next round trip.
    pub(super) fn take_retry(&mut self, retry: RetryStart) {
        self.attempts_to_record.extend(retry.attempts);
        self.retries_waiting.push(retry.recorded);
    }

    /// Takes one handler task's ends.
    pub(super) fn take_done(&mut self, done: Vec<Settlement>) {
        self.finished.extend(done);
        self.finished_batches += 1;
    }

    /// Slots that stay taken after the finished entries are settled.
    pub(super) fn busy(&self) -> usize {
        self.batches - self.finished_batches
    }
}
