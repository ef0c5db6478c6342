//! Benchmark of the timer hot path on a trivial guest (`tests/guests/noop`): compiling a
//! component, loading it from the compiled-component cache, and one tick (fresh store +
//! instantiate + call + drop). Prints numbers; asserts nothing.
//!
//! Run: `cargo run -p spin-trigger-host --example bench_tick [-- <ticks>]`
//! (dev profile: wasmtime and cranelift are optimised, this crate is not).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use spin_trigger_host::allowed_hosts::AllowedHosts;
use spin_trigger_host::app::Component;
use spin_trigger_host::engine::{Engine, EngineOptions, PreparedComponent};
use spin_trigger_host::timer::{Tick, TimerComponent};

fn main() -> anyhow::Result<()> {
    let ticks: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse())
        .transpose()
        .context("the argument is the number of ticks")?
        .unwrap_or(5_000);
    let source = build_noop_guest()?;
    let component = Component {
        id: "noop".into(),
        source: source.clone(),
        variables: BTreeMap::new(),
        environment: BTreeMap::new(),
        allowed_outbound_hosts: Vec::new(),
        files: Vec::new(),
        exclude_files: Vec::new(),
        build: None,
    };
    println!(
        "guest: {} ({} KiB)",
        source.display(),
        std::fs::metadata(&source)?.len() / 1024
    );

    let compile = median_of(5, || {
        let engine = Engine::new(EngineOptions {
            cache_dir: None,
            ..Default::default()
        })?;
        let started = Instant::now();
        prepare(&engine, &component)?;
        Ok(started.elapsed())
    })?;
    println!("compile (no cache):          {compile:>10.2?}  median of 5");

    let cache = tempfile::tempdir()?;
    let cached_options = EngineOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    prepare(&Engine::new(cached_options.clone())?, &component)?;
    let load = median_of(5, || {
        let engine = Engine::new(cached_options.clone())?;
        let started = Instant::now();
        prepare(&engine, &component)?;
        Ok(started.elapsed())
    })?;
    println!("load from the disk cache:    {load:>10.2?}  median of 5");

    let runtime = tokio::runtime::Runtime::new()?;
    let engine = Engine::new(cached_options)?;
    let timer = TimerComponent::new(Arc::new(prepare(&engine, &component)?))?;
    let mut samples = Vec::with_capacity(ticks);
    let started = Instant::now();
    runtime.block_on(async {
        for sequence in 0..ticks as u64 {
            let now = SystemTime::now();
            let tick = Tick {
                scheduled_at: now,
                fired_at: now,
                sequence,
            };
            let one = Instant::now();
            timer.fire(&engine, tick).await?;
            samples.push(one.elapsed());
        }
        anyhow::Ok(())
    })?;
    let total = started.elapsed();
    samples.sort();
    let percentile = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "tick (store + instantiate + call + drop), {ticks} ticks: p50 {:.1?}  p99 {:.1?}  mean {:.1?}  ({:.0} ticks/s)",
        percentile(0.50),
        percentile(0.99),
        total / ticks as u32,
        ticks as f64 / total.as_secs_f64()
    );
    if let Some(peak) = peak_rss_kib() {
        println!("peak RSS: {} MiB", peak / 1024);
    }
    Ok(())
}

/// The noop guest has no variables and no outbound hosts.
fn prepare(engine: &Engine, component: &Component) -> anyhow::Result<PreparedComponent> {
    engine.prepare(component, BTreeMap::new(), AllowedHosts::default())
}

fn median_of(
    runs: usize,
    mut measure: impl FnMut() -> anyhow::Result<Duration>,
) -> anyhow::Result<Duration> {
    let mut samples = (0..runs)
        .map(|_| measure())
        .collect::<anyhow::Result<Vec<_>>>()?;
    samples.sort();
    Ok(samples[runs / 2])
}

fn build_noop_guest() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--quiet",
            "-p",
            "noop-guest",
        ])
        .status()
        .context("running cargo to build the noop guest")?;
    if !status.success() {
        bail!("building the noop guest failed");
    }
    Ok(root
        .join("target/wasm32-wasip2/release/noop_guest.wasm")
        .canonicalize()?)
}

/// The process's peak resident set (VmHWM), in KiB, on Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
