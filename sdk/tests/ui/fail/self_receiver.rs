use spin_trigger_sdk::timer_component;

struct Handler;

impl Handler {
    #[timer_component]
    fn handle(&self) {}
}

fn main() {}
