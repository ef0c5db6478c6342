use spin_trigger_sdk::timer::Tick;
use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle(tick: Tick, count: u32) {
    let _ = (tick, count);
}

fn main() {}
