//! Embeds the host in a program of its own: an app with a timer and a Redis stream trigger,
//! built in code (no `spin.toml`), run on this program's tokio runtime, its events observed as
//! they end, then stopped with a grace period.
//!
//! The components are two of this workspace's examples: `timer-hello-greeter` (given as bytes)
//! ticks every 200 ms; `redis-echo` (given as a file) handles each entry of the stream
//! `requests` and publishes it upper-cased on `replies`. Run it, from the repository root, with
//! a `redis-server` listening:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p timer-hello-greeter -p redis-echo
//! cargo run -p embed-example -- redis://127.0.0.1:6379
//! ```
//!
//! It adds five entries to the stream, waits until every one is handled and the timer has
//! ticked twice, prints each event's outcome, and exits non-zero if that did not happen within
//! 30 seconds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use spin_trigger_host::app_builder::{ComponentBuilder, TriggerBuilder, Variable};
use spin_trigger_host::events::{EventOutcome, EventSink};
use spin_trigger_host::variables::Providers;
use spin_trigger_host::{App, EngineOptions, Runtime};

/// What the demo runs against.
pub struct Demo {
    /// The Redis server, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// Where the built components are (`target/wasm32-wasip2/release`).
    pub wasm_dir: PathBuf,
    /// How many entries to add to the stream.
    pub entries: usize,
}

/// What happened, from the events the host reported.
#[derive(Debug, Default)]
pub struct Report {
    /// Timer ticks handled.
    pub ticks: usize,
    /// Stream entries handled.
    pub entries_handled: usize,
    /// Every failed call, as the host reported it.
    pub failures: Vec<String>,
}

/// Builds the app, runs it until the timer has ticked twice and every entry is handled (or 30
/// seconds pass), and stops it.
pub async fn run(demo: &Demo) -> anyhow::Result<Report> {
    let greeter = std::fs::read(demo.wasm_dir.join("timer_hello_greeter.wasm")).context(
        "reading the greeter component: build it first (see this example's top comment)",
    )?;
    let app = App::builder("embed-demo")
        .variable("redis_address", Variable::with_default(&demo.redis_url))
        .component(
            ComponentBuilder::from_bytes("greeter", greeter)
                .variable("message", "Hello from an embedded timer"),
        )
        .component(
            ComponentBuilder::from_file("echo", demo.wasm_dir.join("redis_echo.wasm"))
                .variable("redis_address", "{{ redis_address }}")
                .allowed_outbound_host("{{ redis_address }}"),
        )
        .trigger(TriggerBuilder::timer("greeter").interval(Duration::from_millis(200)))
        .trigger(
            TriggerBuilder::redis_stream("echo", "requests")
                .address("{{ redis_address }}")
                .max_in_flight(2)
                .set("group", "embed-demo"),
        )
        .build()?;

    let (events, mut outcomes) = EventSink::channel();
    let variables = app.resolve_variables(&Providers::default())?;
    let mut options = EngineOptions::default();
    options.events = Some(events);
    let running = Runtime::new(&app, &variables, options)?.start();

    add_entries(&demo.redis_url, demo.entries)?;
    let mut report = Report::default();
    let watched = tokio::time::timeout(Duration::from_secs(30), async {
        while report.ticks < 2 || report.entries_handled < demo.entries {
            let Some(outcome) = outcomes.recv().await else {
                break;
            };
            record(&mut report, &outcome);
        }
    })
    .await;
    running.stop(Duration::from_secs(5)).await?;
    if watched.is_err() {
        anyhow::bail!("after 30 s: {report:?}");
    }
    Ok(report)
}

/// Prints one outcome and counts it.
fn record(report: &mut Report, outcome: &EventOutcome) {
    println!(
        "{} ran {} in {:?}: {}",
        outcome.trigger,
        outcome.component,
        outcome.duration,
        match &outcome.result {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("failed: {error}"),
        }
    );
    match (&outcome.result, outcome.component.as_str()) {
        (Ok(()), "greeter") => report.ticks += 1,
        (Ok(()), "echo") => report.entries_handled += 1,
        (Err(error), _) => report.failures.push(error.clone()),
        _ => {}
    }
}

/// Adds `count` entries to the stream `requests`, each with a `payload` field.
fn add_entries(redis_url: &str, count: usize) -> anyhow::Result<()> {
    let mut connection = redis::Client::open(redis_url)?
        .get_connection()
        .with_context(|| format!("connecting to {redis_url}"))?;
    for index in 0..count {
        redis::cmd("XADD")
            .arg("requests")
            .arg("*")
            .arg("payload")
            .arg(format!("request {index}"))
            .query::<String>(&mut connection)
            .context("XADD")?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let redis_url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let wasm_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip2/release");
    let report = run(&Demo {
        redis_url,
        wasm_dir,
        entries: 5,
    })
    .await?;
    println!(
        "{} ticks, {} entries handled, {} failures",
        report.ticks,
        report.entries_handled,
        report.failures.len()
    );
    Ok(())
}
