use spin_trigger_sdk::timer_component;

#[timer_component]
unsafe fn handle() {}

fn main() {}
