use spin_trigger_sdk::timer_component;

#[derive(Debug)]
struct NoDisplay;

#[timer_component]
fn handle() -> Result<(), NoDisplay> {
    Err(NoDisplay)
}

fn main() {}
