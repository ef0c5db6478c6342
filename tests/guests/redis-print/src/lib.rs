//! The Redis component the host's benchmark runs: prints each message's payload on one line, and
//! nothing for an empty payload (the dispatch figure's trivial call). A payload-only handler
//! exports Spin's raw Redis world, so Spin's built-in Redis trigger runs it too.

use spin_trigger_sdk::redis_component;

#[redis_component]
fn print(payload: Vec<u8>) {
    if !payload.is_empty() {
        println!("{}", String::from_utf8_lossy(&payload));
    }
}
