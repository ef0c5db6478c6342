// Only a handler taking the whole `Message` can decide an outcome: a payload handler runs in
// Spin's raw world, which has no way to say "retry later".
use spin_trigger_sdk::redis::Outcome;
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(payload: String) -> Outcome {
    let _ = payload;
    Outcome::Handled
}

fn main() {}
