use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle(seconds: u64) {
    let _ = seconds;
}

fn main() {}
