// The tick by its full path, and `anyhow::Result<()>`.
use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle(mut tick: spin_trigger_sdk::timer::Tick) -> anyhow::Result<()> {
    tick.sequence += 1;
    anyhow::ensure!(tick.sequence > 0, "never");
    Ok(())
}

fn main() {}
