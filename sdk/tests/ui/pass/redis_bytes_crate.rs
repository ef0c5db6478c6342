// The payload as `bytes::Bytes`.
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(payload: bytes::Bytes) -> Result<(), String> {
    if payload.is_empty() { Err("empty".into()) } else { Ok(()) }
}

fn main() {}
