use spin_trigger_sdk::timer_component;

#[timer_component]
struct Handler;

fn main() {}
