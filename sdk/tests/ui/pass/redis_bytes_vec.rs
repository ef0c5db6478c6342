// The payload as raw bytes: Spin's raw Redis world.
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(payload: Vec<u8>) {
    let _ = payload.len();
}

fn main() {}
