use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle() -> i32 {
    0
}

fn main() {}
