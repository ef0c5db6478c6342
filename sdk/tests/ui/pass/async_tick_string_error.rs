// `async fn` taking the tick and failing with a `String`.
use spin_trigger_sdk::timer::Tick;
use spin_trigger_sdk::timer_component;

#[timer_component]
async fn handle(_tick: Tick) -> Result<(), String> {
    Err("not today".to_owned())
}

fn main() {}
