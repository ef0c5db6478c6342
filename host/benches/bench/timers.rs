//! Timer apps run by the host binary: process start to the first tick handled (compiled cache
//! cold and warm), and the peak memory of an app of many timer components.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::process;

/// What the probe guest prints on each tick.
const TICK: &str = "tick seq=";

/// An app of `count` timer components, all running the probe guest every `interval`.
fn write_app(dir: &Path, probe: &Path, count: usize, interval: &str) -> anyhow::Result<()> {
    let mut manifest =
        String::from("spin_manifest_version = 2\n\n[application]\nname = \"bench-timers\"\n");
    for index in 0..count {
        manifest.push_str(&format!(
            "\n[[trigger.timer]]\ncomponent = \"probe-{index}\"\ninterval = \"{interval}\"\n\n\
             [component.probe-{index}]\nsource = \"{}\"\n",
            probe.display()
        ));
    }
    std::fs::write(dir.join("spin.toml"), manifest).context("writing spin.toml")
}

/// From spawning the host to its first tick's line.
fn time_to_first_tick(manifest: &Path, cache_dir: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut host = process::start_host(manifest, cache_dir, TICK)?;
    let first = host.wait_marked(1, Duration::from_secs(120))?;
    host.stop()?;
    Ok(first - started)
}

pub struct StartTimes {
    pub cold: Duration,
    pub warm: Duration,
}

/// Medians of `runs` starts each: with an empty compiled-component cache, then with the cache
/// that start filled.
pub fn start(probe: &Path, runs: usize) -> anyhow::Result<StartTimes> {
    let dir = tempfile::tempdir()?;
    // The first tick comes one interval after start: a short one, so it is start-up that counts.
    write_app(dir.path(), probe, 1, "1ms")?;
    let manifest = dir.path().join("spin.toml");
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for run in 0..runs {
        let cache = dir.path().join(format!("cache-{run}"));
        cold.push(time_to_first_tick(&manifest, &cache)?);
        warm.push(time_to_first_tick(&manifest, &cache)?);
    }
    Ok(StartTimes {
        cold: median(cold),
        warm: median(warm),
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Peak RSS, in KiB, of the host running `count` timer components through two rounds of ticks.
pub fn peak_rss_kib(probe: &Path, count: usize) -> anyhow::Result<u64> {
    let dir = tempfile::tempdir()?;
    write_app(dir.path(), probe, count, "1s")?;
    let mut host = process::start_host(
        &dir.path().join("spin.toml"),
        &dir.path().join("cache"),
        TICK,
    )?;
    host.wait_ready(Duration::from_secs(300))?;
    host.wait_marked(2 * count, Duration::from_secs(60))?;
    let peak = host.peak_rss_kib();
    host.stop()?;
    Ok(peak)
}
