use spin_trigger_sdk::redis_component;

#[redis_component(channel = "orders")]
fn handle(payload: String) {
    let _ = payload;
}

fn main() {}
