// `async fn` with no argument: still the raw world, run to completion by the SDK's executor.
use spin_trigger_sdk::timer_component;

async fn work() -> u32 {
    1
}

#[timer_component]
async fn handle() {
    let _ = work().await;
}

fn main() {}
