//! A component built against version 0.3.0 of this project's Redis batch world, as batch
//! components built before handlers decided their entries' outcomes were (plain wit-bindgen,
//! no SDK): for each message of a batch publishes `<channel>|<payload>|<attempt>` on the channel
//! in its `reply_channel` variable, at the address in `redis_address`, and reports a message
//! whose payload is `fail` as failed. The host must keep running it.

wit_bindgen::generate!({
    world: "spin-trigger:sdk/redis-batch@0.3.0",
    path: "../../../wit",
    generate_all,
});

use exports::spin_trigger::sdk0_3_0::redis_batch_handler::{EntryFailure, Error, Guest, Message};
use fermyon::spin2_0_0::{redis, variables};

struct Handler;

impl Guest for Handler {
    fn handle_batch(messages: Vec<Message>) -> Result<Vec<EntryFailure>, Error> {
        let failed = |error: String| Error { message: error };
        let address =
            variables::get("redis_address").map_err(|error| failed(format!("{error:?}")))?;
        let reply_channel =
            variables::get("reply_channel").map_err(|error| failed(format!("{error:?}")))?;
        let connection =
            redis::Connection::open(&address).map_err(|error| failed(format!("{error:?}")))?;
        let mut failures = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            let attempt = message
                .entry
                .as_ref()
                .map_or("-".to_owned(), |entry| entry.attempt.to_string());
            let mut reply = format!("{}|", message.channel).into_bytes();
            reply.extend_from_slice(&message.payload);
            reply.extend_from_slice(format!("|{attempt}").as_bytes());
            connection
                .publish(&reply_channel, &reply)
                .map_err(|error| failed(format!("{error:?}")))?;
            if message.payload == b"fail" {
                failures.push(EntryFailure {
                    index: index as u32,
                    message: "asked to fail".into(),
                });
            }
        }
        Ok(failures)
    }
}

export!(Handler);
