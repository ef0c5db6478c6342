// A handler that only needs to know a message came.
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle() {}

fn main() {}
