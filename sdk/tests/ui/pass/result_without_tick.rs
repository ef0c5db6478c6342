// No argument but a `Result`: the richer world, so the error reaches the host.
use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
