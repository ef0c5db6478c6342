//! A test guest for the host's timer tests. On each tick it prints one line the tests parse:
//! `tick seq=<n> scheduled=<ms> fired=<ms> attempt=<n> late=<bool>`, and
//! `schedule <the tick's schedule>`, then behaves as its variables say:
//! `sleep_ms` (sleep that long), `fail_on` / `trap_on` / `loop_on` / `alloc_mb_on`
//! (comma-separated sequence numbers on which to return an error / panic / spin forever /
//! allocate `alloc_mb` MiB), `faults_every` (every n-th tick, in turn: panic, spin forever,
//! allocate 1 GiB), and `read_files` (comma-separated guest paths to print as
//! `file <path>: <contents>` or `file <path>: unreadable`), `fail_attempts` (fail every tick's
//! attempts up to that number, after the sleep; each prints `failed seq=<n> attempt=<n>`). A run that returns prints
//! `done seq=<n>`.

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
        "tick seq={} scheduled={} fired={} attempt={} late={}",
        tick.sequence,
        millis(tick.scheduled_at),
        millis(tick.fired_at),
        tick.attempt,
        tick.late
    );
    println!("schedule {}", tick.schedule);
    for path in variables::get("read_files")
        .unwrap_or_default()
        .split(',')
        .filter(|path| !path.is_empty())
    {
        match std::fs::read_to_string(path) {
            Ok(contents) => println!("file {path}: {}", contents.trim_end()),
            Err(_) => println!("file {path}: unreadable"),
        }
    }
    if let Ok(sleep) = variables::get("sleep_ms") {
        let millis: u64 = sleep
            .parse()
            .map_err(|_| format!("bad sleep_ms {sleep:?}"))?;
        std::thread::sleep(Duration::from_millis(millis));
    }
    if let Some(every) = variables::get("faults_every")
        .ok()
        .and_then(|every| every.parse::<u64>().ok())
        .filter(|every| *every > 0 && tick.sequence.is_multiple_of(*every))
    {
        match (tick.sequence / every) % 3 {
            0 => panic!("probe trapping on tick {}", tick.sequence),
            1 => loop {
                std::hint::spin_loop();
            },
            _ => {
                let block = vec![1u8; 1 << 30];
                println!("allocated {} MiB", std::hint::black_box(block).len() >> 20);
            }
        }
    }
    if let Some(failing) = variables::get("fail_attempts")
        .ok()
        .and_then(|failing| failing.parse::<u32>().ok())
        .filter(|failing| tick.attempt <= *failing)
    {
        println!("failed seq={} attempt={}", tick.sequence, tick.attempt);
        return Err(format!(
            "probe failing attempt {} of {failing} on tick {}",
            tick.attempt, tick.sequence
        ));
    }
    if listed("loop_on", tick.sequence) {
        let mut spins = 0u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
    if listed("alloc_mb_on", tick.sequence) {
        let megabytes: usize = variables::get("alloc_mb")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(1024);
        let block = vec![1u8; megabytes << 20];
        println!("allocated {} MiB", std::hint::black_box(block).len() >> 20);
    }
    if listed("trap_on", tick.sequence) {
        panic!("probe trapping on tick {}", tick.sequence);
    }
    if listed("fail_on", tick.sequence) {
        return Err(format!("probe failing on tick {}", tick.sequence));
    }
    println!("done seq={}", tick.sequence);
    Ok(())
}
