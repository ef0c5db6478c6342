use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(count: u32) {
    let _ = count;
}

fn main() {}
