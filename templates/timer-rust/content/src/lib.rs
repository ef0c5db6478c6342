use spin_trigger_sdk::timer::Tick;
use spin_trigger_sdk::timer_component;

/// Runs on the schedule in spin.toml (`interval_secs` or `cron`), in a fresh instance each time.
#[timer_component]
fn handle_tick(tick: Tick) -> anyhow::Result<()> {
    println!("Hello from {{project-name | kebab_case}}: tick {}", tick.sequence);
    Ok(())
}
