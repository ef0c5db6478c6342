use spin_trigger_sdk::timer::Tick;
use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle(tick: &Tick) {
    let _ = tick;
}

fn main() {}
