// The generated glue's own names never shadow the handler's: a handler may be called `tick`.
use spin_trigger_sdk::timer::Tick;
use spin_trigger_sdk::timer_component;

#[timer_component]
fn tick(tick: Tick) {
    let _ = tick.sequence;
}

fn main() {}
