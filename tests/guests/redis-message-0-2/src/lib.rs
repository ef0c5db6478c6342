//! A component built against version 0.2.0 of this project's Redis world, as components built
//! before handlers decided their messages' outcomes were (plain wit-bindgen, no SDK): publishes
//! `<channel>|<payload>|<attempt>` (the attempt of a stream entry, else `-`) on the channel in
//! its `reply_channel` variable, at the address in `redis_address`. A payload of `fail` fails.
//! The host must keep running it.

wit_bindgen::generate!({
    world: "spin-trigger:sdk/redis@0.2.0",
    path: "../../../wit",
    generate_all,
});

use exports::spin_trigger::sdk0_2_0::redis_handler::{Error, Guest, Message};
use fermyon::spin2_0_0::{redis, variables};

struct Handler;

impl Guest for Handler {
    fn handle_message(message: Message) -> Result<(), Error> {
        let failed = |error: String| Error { message: error };
        let address =
            variables::get("redis_address").map_err(|error| failed(format!("{error:?}")))?;
        let reply_channel =
            variables::get("reply_channel").map_err(|error| failed(format!("{error:?}")))?;
        let attempt = message
            .entry
            .as_ref()
            .map_or("-".to_owned(), |entry| entry.attempt.to_string());
        let mut reply = format!("{}|", message.channel).into_bytes();
        reply.extend_from_slice(&message.payload);
        reply.extend_from_slice(format!("|{attempt}").as_bytes());
        redis::Connection::open(&address)
            .and_then(|connection| connection.publish(&reply_channel, &reply))
            .map_err(|error| failed(format!("{error:?}")))?;
        if message.payload == b"fail" {
            return Err(failed("asked to fail".into()));
        }
        Ok(())
    }
}

export!(Handler);
