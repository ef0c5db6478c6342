//! A timer component that reads its tick and can fail: prints the tick's sequence number and how
//! late it fired, prefixed by its `label` variable.
//!
//! Taking the `Tick` (or returning a `Result`) exports this project's richer timer world; an
//! `Err` is reported by the host with the component id, and the timer keeps running.
//!
//! Run it: `cargo run -p spin-trigger-host -- up --build -f examples/timer-hello/spin.toml`

use anyhow::Context;
use spin_trigger_sdk::{timer::Tick, timer_component, variables};

#[timer_component]
fn count(tick: Tick) -> anyhow::Result<()> {
    let label = variables::get("label").context("reading the `label` variable")?;
    println!(
        "{label} tick #{} ({} ms late)",
        tick.sequence,
        tick.lateness().as_millis()
    );
    Ok(())
}
