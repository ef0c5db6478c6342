//! The host's benchmark. Run it with `cargo xtask bench` (a release build); `-- --quick` runs
//! small counts, to check that every figure is produced (CI does, with a dev build).
//!
//! In one run, side by side on the same machine, it prints markdown tables of:
//! - dispatch: one message through the host's own code path against a bare-wasmtime baseline;
//! - outbound HTTP: a handler making one GET to a loopback server, the host against bare
//!   wasmtime-wasi-http;
//! - key-value: a handler doing one `get` and one `set` on the default store, the host against
//!   the same two statements on a bare rusqlite connection;
//! - Redis end to end: messages published pipelined, to the last handler's return, for the host
//!   (`max_in_flight` 1 and the number of cores), the bare floor, a subscriber that does nothing
//!   (the ceiling) and, when a Spin CLI is found, Spin's own Redis trigger under `spin up`;
//! - Redis Streams: entries added pipelined, until one host or two (one consumer group) have
//!   handled and acknowledged every one;
//! - start: process start to the first tick handled, compiled-component cache cold and warm;
//! - peak RSS with one component and with an app of 100 timer components;
//! - release `.wasm` size of each template's generated project, and of Spin's `redis-rust`.
//!
//! It asserts nothing about speed: figures from a shared machine are compared as ratios.

#[path = "../../tests/common/mod.rs"]
mod common;

mod bare;
mod dispatch;
mod process;
mod redis_e2e;
mod sizes;
mod streams;
mod timers;

use std::path::Path;
use std::time::Duration;

use common::RedisServer;

/// How much to measure.
struct Counts {
    dispatch_calls: usize,
    http_calls: usize,
    key_value_calls: usize,
    messages: usize,
    stream_entries: usize,
    starts: usize,
    timer_components: usize,
}

const FULL: Counts = Counts {
    dispatch_calls: 20_000,
    http_calls: 2_000,
    key_value_calls: 5_000,
    messages: 100_000,
    stream_entries: 50_000,
    starts: 5,
    timer_components: 100,
};

const QUICK: Counts = Counts {
    dispatch_calls: 200,
    http_calls: 50,
    key_value_calls: 100,
    messages: 1_000,
    stream_entries: 1_000,
    starts: 1,
    timer_components: 100,
};

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --bench` passes nothing of its own.
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, url, wasm] = &args[..]
        && flag == redis_e2e::FLOOR_SUBSCRIBER
    {
        return redis_e2e::floor_subscriber(url, Path::new(wasm));
    }
    if let [_, flag, url, wasm, max_in_flight] = &args[..]
        && flag == streams::FLOOR_CONSUMER
    {
        return streams::floor_consumer(url, Path::new(wasm), max_in_flight);
    }
    let quick = args.iter().any(|arg| arg == "--quick");
    // `--only <sections>` (comma-separated: dispatch, http, key-value, redis, streams, start,
    // memory, sizes), while working on one.
    let only = args
        .iter()
        .position(|arg| arg == "--only")
        .and_then(|index| args.get(index + 1));
    let wanted = |section: &str| only.is_none_or(|only| only.split(',').any(|one| one == section));
    let counts = if quick { QUICK } else { FULL };
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let spin = common::spin_cli();
    if spin.is_none() && std::env::var("SPIN_TRIGGER_REQUIRE_SPIN").is_ok_and(|value| value == "1")
    {
        anyhow::bail!(
            "SPIN_TRIGGER_REQUIRE_SPIN=1 but no Spin CLI was found: set SPIN_BIN or put `spin` on PATH"
        );
    }

    println!(
        "# spin-trigger-host benchmark{}\n\nMachine: {cores} cores, {} GiB; host built with the `{}` profile.\n",
        if quick { " (quick: small counts)" } else { "" },
        memory_gib().map_or("?".into(), |gib| gib.to_string()),
        if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
    );
    let guests = common::guests_dir();
    let print_guest = guests.join("redis_print_guest.wasm");
    let probe_guest = guests.join("probe_guest.wasm");

    if wanted("dispatch") {
        dispatch_section(&print_guest, &counts)?;
    }
    if wanted("http") {
        http_section(&guests.join("http_get_guest.wasm"), &counts)?;
    }
    if wanted("key-value") {
        key_value_section(&guests.join("kv_touch_guest.wasm"), &counts)?;
    }
    let mut one_component_rss = None;
    if wanted("redis") {
        one_component_rss = redis_section(&print_guest, &counts, cores, spin.as_deref())?;
    }
    if wanted("streams") {
        streams_section(
            &print_guest,
            &guests.join("stream_batch_guest.wasm"),
            &counts,
        )?;
    }
    if wanted("start") {
        start_section(&probe_guest, &counts)?;
    }
    if wanted("memory") {
        memory_section(&probe_guest, &counts, one_component_rss)?;
    }
    if wanted("sizes") {
        sizes_section(spin.as_deref())?;
    }
    Ok(())
}

fn streams_section(print_guest: &Path, batch_guest: &Path, counts: &Counts) -> anyhow::Result<()> {
    let server = RedisServer::start();
    let entries = counts.stream_entries;
    const MAX_IN_FLIGHT: usize = 4;
    let floor = streams::bare_floor(&server, entries, print_guest, MAX_IN_FLIGHT)?;
    let one = streams::hosts(
        &server,
        entries,
        print_guest,
        1,
        MAX_IN_FLIGHT,
        (None, None),
    )?;
    let two = streams::hosts(
        &server,
        entries,
        print_guest,
        2,
        MAX_IN_FLIGHT,
        (None, None),
    )?;
    // A limit well under what one host does, so that the run takes about two seconds.
    let limit = (entries / 2).max(50);
    let limited = streams::hosts(
        &server,
        entries,
        print_guest,
        1,
        MAX_IN_FLIGHT,
        (None, Some(limit)),
    )?;
    let mut batched = Vec::new();
    for batch_size in [10, 100] {
        for hosts in [1, 2] {
            let run = streams::hosts(
                &server,
                entries,
                batch_guest,
                hosts,
                MAX_IN_FLIGHT,
                (Some(batch_size), None),
            )?;
            let name = format!(
                "{} batch handler, `batch_size = {batch_size}`",
                if hosts == 1 {
                    "one host,"
                } else {
                    "two hosts,"
                }
            );
            batched.push((name, run));
        }
    }
    // The pub/sub trigger with the same `max_in_flight`: what the stream trigger is held to.
    let pubsub = redis_e2e::host(&server, entries, print_guest, MAX_IN_FLIGHT, false)?;
    println!(
        "\n## Redis Streams: {entries} entries added pipelined, until the group has handled and acknowledged every one\n"
    );
    println!(
        "| consumers (`max_in_flight = {MAX_IN_FLIGHT}` each) | entries/s | × bare floor | × pub/sub | peak RSS, all |\n| --- | --- | --- | --- | --- |"
    );
    let rows = [
        (
            format!(
                "bare floor: `XREADGROUP COUNT {MAX_IN_FLIGHT}`, the bare baseline one at a time, one `XACK` per batch"
            ),
            &floor,
        ),
        ("one host, per-entry handler".to_owned(), &one),
        ("two hosts, per-entry handler".to_owned(), &two),
        (
            format!("one host, per-entry handler, `max_per_second = {limit}`"),
            &limited,
        ),
        (
            "pub/sub trigger, one host (messages published pipelined)".to_owned(),
            &pubsub,
        ),
    ];
    let rows = rows
        .into_iter()
        .chain(batched.iter().map(|(name, run)| (name.clone(), run)));
    for (name, run) in rows {
        let rate = run.rate(entries);
        println!(
            "| {name} | {:.1}k | {:.2}× | {:.2}× | {} |",
            rate / 1000.0,
            rate / floor.rate(entries),
            rate / pubsub.rate(entries),
            run.peak_rss_kib.map_or("—".into(), mib),
        );
    }
    // From the first `XADD` to the last acknowledgement: the bucket's first tenth of a second
    // and the last entry's handling ride on top of the limit.
    let limited_rate = limited.rate(entries);
    println!(
        "\nThe rate-limited host handled {limited_rate:.0} entries/s against `max_per_second = {limit}`: {:.2}× the limit.",
        limited_rate / limit as f64
    );
    Ok(())
}

fn dispatch_section(print_guest: &Path, counts: &Counts) -> anyhow::Result<()> {
    let dispatch = dispatch::run(print_guest, counts.dispatch_calls)?;
    println!(
        "## Dispatch: fresh store + instantiate + call + drop, {} calls each\n",
        counts.dispatch_calls
    );
    latency_table(
        ("host (`RedisComponent::handle`)", &dispatch.host),
        (
            "bare wasmtime (`InstancePre`, pooling, minimal WASI)",
            &dispatch.bare,
        ),
    );
    let metrics = dispatch::run_metrics(print_guest, counts.dispatch_calls)?;
    println!(
        "\n### Metrics on / off: the same dispatch with the trigger's reporting around it, {} calls each\n",
        counts.dispatch_calls
    );
    latency_table(
        ("metrics on (counters, gauge, histogram)", &metrics.host),
        ("metrics off", &metrics.bare),
    );
    Ok(())
}

/// A table of two paths' p50 and p99 latencies, each as a ratio to the second's.
fn latency_table(host: (&str, &dispatch::Latencies), bare: (&str, &dispatch::Latencies)) {
    let ratio = |host: Duration, bare: Duration| host.as_secs_f64() / bare.as_secs_f64();
    println!("| path | p50 | p99 | p50 ratio | p99 ratio |\n| --- | --- | --- | --- | --- |");
    for (name, latencies) in [host, bare] {
        println!(
            "| {name} | {:.1?} | {:.1?} | {:.2}× | {:.2}× |",
            latencies.percentile(0.5),
            latencies.percentile(0.99),
            ratio(latencies.percentile(0.5), bare.1.percentile(0.5)),
            ratio(latencies.percentile(0.99), bare.1.percentile(0.99)),
        );
    }
}

/// One outbound GET per call to a loopback server, the host against bare wasmtime-wasi-http.
fn http_section(http_guest: &Path, counts: &Counts) -> anyhow::Result<()> {
    let server = common::HttpServer::start(|_| common::Reply::json(r#"{"ok": true}"#));
    let calls = counts.http_calls;
    let figures = dispatch::run_http(http_guest, calls, &server.url("/ping"), &server.url(""))?;
    println!(
        "\n## Outbound HTTP: fresh instance + one GET to a loopback server + drop, {calls} calls each\n"
    );
    latency_table(
        (
            "host (pooled client, allowed_outbound_hosts checked)",
            &figures.host,
        ),
        (
            "bare wasmtime-wasi-http (its default sender: a connection per request)",
            &figures.bare,
        ),
    );
    println!(
        "\n{} connections served for {} requests.",
        server.connections(),
        server.requests().len()
    );
    Ok(())
}

/// One `get` and one `set` on the default key-value store per call, the host against a bare
/// rusqlite connection doing the same.
fn key_value_section(kv_guest: &Path, counts: &Counts) -> anyhow::Result<()> {
    let calls = counts.key_value_calls;
    println!(
        "\n## Key-value: fresh instance + one `get` + one `set` on the default store + drop, {calls} calls each\n"
    );
    for (multi_thread, runtime) in [
        (
            true,
            "multi-threaded runtime, as the host runs: SQLite work in place",
        ),
        (
            false,
            "current-thread runtime: SQLite work on the blocking pool",
        ),
    ] {
        let figures = dispatch::run_key_value(kv_guest, calls, multi_thread)?;
        println!("{runtime}:\n");
        latency_table(
            ("host (SQLite file, WAL)", &figures.host),
            (
                "bare rusqlite (the same two statements, no instance)",
                &figures.bare,
            ),
        );
        println!();
    }
    Ok(())
}

/// Returns the host's peak RSS with `max_in_flight = 1`.
fn redis_section(
    print_guest: &Path,
    counts: &Counts,
    cores: usize,
    spin: Option<&Path>,
) -> anyhow::Result<Option<u64>> {
    let server = RedisServer::start();
    let messages = counts.messages;
    let mut runs: Vec<(String, redis_e2e::Run)> = vec![
        (
            "ceiling: a subscriber that does nothing".into(),
            redis_e2e::ceiling(&server, messages)?,
        ),
        (
            "bare floor: a redis-crate subscriber dispatching with the bare baseline, one at a time".into(),
            redis_e2e::bare_floor(&server, messages, print_guest)?,
        ),
    ];
    let mut in_flight = vec![1, cores];
    in_flight.dedup();
    for max_in_flight in in_flight {
        // Metrics off, on, on, off: each row is the mean of its two runs, so a drift of the
        // machine over the four weighs on both alike.
        let host =
            |metrics| redis_e2e::host(&server, messages, print_guest, max_in_flight, metrics);
        let (off_first, on_first, on_second, off_second) =
            (host(false)?, host(true)?, host(true)?, host(false)?);
        runs.push((
            format!("`spin-trigger-host up`, `max_in_flight = {max_in_flight}`"),
            off_first.mean_with(&off_second),
        ));
        runs.push((
            format!("`spin-trigger-host up --metrics-addr`, `max_in_flight = {max_in_flight}`"),
            on_first.mean_with(&on_second),
        ));
    }
    let spin_rate = match spin {
        Some(spin) => {
            let run = redis_e2e::spin(&server, messages, print_guest, spin)?;
            let rate = run.rate(messages);
            runs.push((
                format!("`spin up` ({}), built-in Redis trigger", spin_version(spin)),
                run,
            ));
            Some(rate)
        }
        None => None,
    };
    let floor_rate = runs[1].1.rate(messages);
    println!(
        "\n## Redis end to end: {messages} messages published pipelined, to the last handler's return\n"
    );
    println!(
        "| subscriber | msgs/s | × Spin | × bare floor | peak RSS |\n| --- | --- | --- | --- | --- |"
    );
    for (name, run) in &runs {
        let rate = run.rate(messages);
        println!(
            "| {name} | {:.1}k | {} | {:.2}× | {} |",
            rate / 1000.0,
            spin_rate.map_or("—".into(), |spin| format!("{:.2}×", rate / spin)),
            rate / floor_rate,
            run.peak_rss_kib.map_or("—".into(), mib),
        );
    }
    // Each host row is followed by the same run with metrics served: the cost of metrics.
    for pair in runs.windows(2) {
        let [(off_name, off), (on_name, on)] = pair else {
            continue;
        };
        if on_name.contains("--metrics-addr") && !off_name.contains("--metrics-addr") {
            println!(
                "\nMetrics on / off, {}: {:.3}× the rate",
                off_name.trim_start_matches("`spin-trigger-host up`, "),
                on.rate(messages) / off.rate(messages)
            );
        }
    }
    if spin.is_none() {
        println!("\nSpin: NOT MEASURED — no Spin CLI found (set SPIN_BIN, or put `spin` on PATH).");
    }
    Ok(runs
        .iter()
        .find(|(name, _)| name.contains("max_in_flight = 1"))
        .and_then(|(_, run)| run.peak_rss_kib))
}

fn start_section(probe_guest: &Path, counts: &Counts) -> anyhow::Result<()> {
    let start = timers::start(probe_guest, counts.starts)?;
    println!(
        "\n## Start: process start to the first tick handled, median of {}\n",
        counts.starts
    );
    println!("| compiled-component cache | time |\n| --- | --- |");
    println!("| cold (compiles the component) | {:.1?} |", start.cold);
    println!("| warm | {:.1?} |", start.warm);
    Ok(())
}

fn memory_section(
    probe_guest: &Path,
    counts: &Counts,
    one_component: Option<u64>,
) -> anyhow::Result<()> {
    let timers_rss = timers::peak_rss_kib(probe_guest, counts.timer_components)?;
    println!("\n## Peak RSS of `spin-trigger-host up`\n");
    println!("| app | peak RSS |\n| --- | --- |");
    println!(
        "| 1 Redis component, after the end-to-end run | {} |",
        one_component.map_or("— (run with the redis section)".into(), mib)
    );
    println!(
        "| {} timer components, after two ticks each | {} |",
        counts.timer_components,
        mib(timers_rss)
    );
    Ok(())
}

fn sizes_section(spin: Option<&Path>) -> anyhow::Result<()> {
    println!("\n## Release `.wasm` size of a template's new project\n");
    println!("| template | size |\n| --- | --- |");
    for (template, bytes) in sizes::ours()? {
        println!("| {template} (ours) | {} |", kb(bytes));
    }
    match spin {
        Some(spin) => match sizes::spins_redis_rust(spin)? {
            Some(bytes) => println!("| redis-rust (Spin's) | {} |", kb(bytes)),
            None => println!("| redis-rust (Spin's) | NOT MEASURED — Spin's templates not found |"),
        },
        None => println!("| redis-rust (Spin's) | NOT MEASURED — no Spin CLI |"),
    }
    Ok(())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

fn memory_gib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib + (1 << 19)) >> 20)
}

fn spin_version(spin: &Path) -> String {
    std::process::Command::new(spin)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|version| !version.is_empty())
        .unwrap_or_else(|| "Spin".into())
}
