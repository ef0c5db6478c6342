use spin_trigger_sdk::{redis_component, timer_component};

#[timer_component]
fn tick() {}

#[redis_component]
fn message(payload: String) {
    let _ = payload;
}

fn main() {}
