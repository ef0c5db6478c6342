use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(lines: Vec<String>) {
    let _ = lines;
}

fn main() {}
