use spin_trigger_sdk::redis::Batch;
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(batch: &Batch) {
    let _ = batch;
}

fn main() {}
