use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(payload: String, channel: String) {
    let _ = (payload, channel);
}

fn main() {}
