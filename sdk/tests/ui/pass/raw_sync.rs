// No argument, returns `()`: Spin's raw timer world.
use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle() {
    println!("tick");
}

fn main() {}
