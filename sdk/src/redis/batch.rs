//! Stream entries in batches: the [`Batch`] a `#[redis_component]` handler takes, and the
//! marks it sets on entries that were not simply handled.

use std::fmt;

use super::{Message, millis};
use crate::__private::redis_batch::exports::spin_trigger::sdk0_5_0::redis_batch_handler as batch;
use crate::__private::{HandlerResult, block_on};

/// The messages of one batch, for a `#[redis_component]` handler that takes a `Batch`: a
/// `[[trigger.redis-stream]]` hands it up to `batch_size` entries (default 100) in one call.
///
/// Returning `Ok` acknowledges every entry except those marked: with [`Batch::fail`], tried
/// again, one attempt each, and sent to the dead-letter stream with their own error after their
/// last attempt; with [`Batch::retry_after`], tried again after a delay, waiting in Redis (see
/// [`Outcome::RetryAfter`](super::Outcome::RetryAfter)); with [`Batch::dead_letter`], sent to the dead-letter stream now.
/// Returning `Err` (or panicking) fails every entry of the batch. A later mark of a message
/// replaces an earlier one.
///
/// ```no_run
/// use spin_trigger_sdk::redis::Batch;
///
/// #[spin_trigger_sdk::redis_component]
/// fn on_orders(batch: Batch) -> anyhow::Result<()> {
///     for message in &batch {
///         if message.payload.is_empty() {
///             batch.fail(message, "an empty order");
///             continue;
///         }
///         println!("order {}", String::from_utf8_lossy(&message.payload));
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Batch {
    messages: Vec<Message>,
    marks: std::rc::Rc<std::cell::RefCell<Vec<(u32, batch::Decision)>>>,
}

impl Batch {
    /// The batch's messages, in stream order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Marks `message` (one of this batch's, or a clone of one) as failed with `error`: it is
    /// tried again, and the others are acknowledged. A message is found by its stream entry's
    /// id, else by its contents; one that is not in this batch marks nothing and says so on
    /// stderr.
    pub fn fail(&self, message: &Message, error: impl fmt::Display) {
        self.mark(message, batch::Decision::Failed(error.to_string()), "fail");
    }

    /// Marks the message at `index` as failed with `error`; an index past the end is ignored.
    pub fn fail_at(&self, index: usize, error: impl fmt::Display) {
        self.mark_at(index, batch::Decision::Failed(error.to_string()));
    }

    /// Marks `message` to be tried again after `delay`, waiting in Redis meanwhile (see
    /// [`Outcome::RetryAfter`](super::Outcome::RetryAfter)). Found as [`Batch::fail`] finds it.
    pub fn retry_after(&self, message: &Message, delay: std::time::Duration) {
        let decision = batch::Decision::RetryAfter(millis(delay));
        self.mark(message, decision, "retry_after");
    }

    /// Marks `message` to go to the dead-letter stream now, with `reason` as its `error`.
    /// Found as [`Batch::fail`] finds it.
    pub fn dead_letter(&self, message: &Message, reason: impl fmt::Display) {
        let decision = batch::Decision::DeadLetter(reason.to_string());
        self.mark(message, decision, "dead_letter");
    }

    fn mark(&self, message: &Message, decision: batch::Decision, what: &str) {
        let same_entry = |candidate: &Message| match (&candidate.entry, &message.entry) {
            (Some(candidate), Some(entry)) => candidate.id == entry.id,
            _ => candidate == message,
        };
        let index = self
            .messages
            .iter()
            .position(|candidate| std::ptr::eq(candidate, message))
            .or_else(|| self.messages.iter().position(same_entry));
        match index {
            Some(index) => self.mark_at(index, decision),
            None => eprintln!(
                "Batch::{what}: the message is not one of this batch's, so nothing was marked"
            ),
        }
    }

    fn mark_at(&self, index: usize, decision: batch::Decision) {
        if index < self.messages.len() {
            let mut marks = self.marks.borrow_mut();
            // The last mark of a message is the one that counts.
            marks.retain(|(marked, _)| *marked as usize != index);
            marks.push((index as u32, decision));
        }
    }
}

impl std::ops::Deref for Batch {
    type Target = [Message];

    fn deref(&self) -> &[Message] {
        &self.messages
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a Message;
    type IntoIter = std::slice::Iter<'a, Message>;

    fn into_iter(self) -> Self::IntoIter {
        self.messages.iter()
    }
}

/// The batch world's export: the host's messages as a [`Batch`], the handler's result and the
/// messages it marked back. Used by `#[redis_component]`.
#[doc(hidden)]
pub fn batch_redis_export<F>(
    messages: Vec<batch::Message>,
    handler: impl FnOnce(Batch) -> F,
) -> Result<Vec<batch::EntryDecision>, batch::Error>
where
    F: std::future::Future,
    F::Output: HandlerResult,
{
    let messages = messages
        .into_iter()
        .map(|message| from_wit!(message))
        .collect();
    let marks = std::rc::Rc::default();
    let batch = Batch {
        messages,
        marks: std::rc::Rc::clone(&marks),
    };
    block_on(handler(batch))
        .into_message_result()
        .map_err(|message| batch::Error { message })?;
    Ok(marks
        .take()
        .into_iter()
        .map(|(index, decision)| batch::EntryDecision { index, decision })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::StreamEntry;

    fn entry(id: &str) -> Message {
        Message {
            channel: "orders".into(),
            payload: b"x".to_vec(),
            pattern: None,
            entry: Some(StreamEntry {
                id: id.into(),
                fields: vec![("payload".into(), b"x".to_vec())],
                attempt: 1,
            }),
        }
    }

    fn marks(batch: &Batch) -> Vec<(u32, String)> {
        batch
            .marks
            .borrow()
            .iter()
            .map(|(index, decision)| (*index, format!("{decision:?}")))
            .collect()
    }

    #[test]
    fn failing_a_clone_of_a_message_marks_the_message() {
        let batch = Batch {
            messages: vec![entry("1-0"), entry("1-1"), entry("1-2")],
            marks: std::rc::Rc::default(),
        };
        let clone = batch.messages()[1].clone();
        batch.fail(&clone, "bad");
        batch.fail(&batch.messages()[2], "worse");
        batch.fail(&entry("9-9"), "not in this batch");
        assert_eq!(
            marks(&batch),
            [
                (1, r#"Decision::Failed("bad")"#.to_owned()),
                (2, r#"Decision::Failed("worse")"#.to_owned())
            ]
        );
    }

    #[test]
    fn the_last_mark_of_a_message_counts() {
        let batch = Batch {
            messages: vec![entry("1-0"), entry("1-1")],
            marks: std::rc::Rc::default(),
        };
        batch.fail(&batch.messages()[0], "bad");
        batch.retry_after(&batch.messages()[0], std::time::Duration::from_millis(1500));
        batch.dead_letter(&batch.messages()[1], "poison");
        assert_eq!(
            marks(&batch),
            [
                (0, "Decision::RetryAfter(1500)".to_owned()),
                (1, r#"Decision::DeadLetter("poison")"#.to_owned())
            ]
        );
    }
}
