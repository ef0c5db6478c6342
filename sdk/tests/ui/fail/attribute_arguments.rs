use spin_trigger_sdk::timer_component;

#[timer_component(interval = "1s")]
fn handle() {}

fn main() {}
