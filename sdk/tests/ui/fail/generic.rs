use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle<T: Default>() {
    let _ = T::default();
}

fn main() {}
