//! A test guest for the host's timer tests. On each tick it prints one line the tests parse:
//! `tick seq=<n> scheduled=<ms> fired=<ms>`, then behaves as its variables say:
//! `sleep_ms` (sleep that long), `fail_on` / `trap_on` (comma-separated sequence numbers on which
//! to return an error / panic).

use spin_trigger_sdk::{timer::Tick, timer_component, variables};
use std::time::{Duration, UNIX_EPOCH};

fn listed(name: &str, sequence: u64) -> bool {
    variables::get(name)
        .unwrap_or_default()
        .split(',')
        .any(|item| item.trim().parse() == Ok(sequence))
}

fn millis(time: std::time::SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

#[timer_component]
fn probe(tick: Tick) -> Result<(), String> {
    println!(
        "tick seq={} scheduled={} fired={}",
        tick.sequence,
        millis(tick.scheduled_at),
        millis(tick.fired_at)
    );
    if let Ok(sleep) = variables::get("sleep_ms") {
        let millis: u64 = sleep
            .parse()
            .map_err(|_| format!("bad sleep_ms {sleep:?}"))?;
        std::thread::sleep(Duration::from_millis(millis));
    }
    if listed("trap_on", tick.sequence) {
        panic!("probe trapping on tick {}", tick.sequence);
    }
    if listed("fail_on", tick.sequence) {
        return Err(format!("probe failing on tick {}", tick.sequence));
    }
    Ok(())
}
