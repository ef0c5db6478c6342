use spin_trigger_sdk::timer::Tick;
use spin_trigger_sdk::timer_component;

/// Runs every `interval_secs` (see spin.toml), in a fresh instance each time.
#[timer_component]
fn handle_tick(tick: Tick) -> anyhow::Result<()> {
    println!("Hello from {{project-name | kebab_case}}: tick {}", tick.sequence);
    Ok(())
}
