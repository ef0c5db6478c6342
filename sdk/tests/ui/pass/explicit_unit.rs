// `-> ()` written out is the same as no return type.
use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle() -> () {}

fn main() {}
