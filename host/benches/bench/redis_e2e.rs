//! Redis end to end: messages published pipelined on one channel, timed from the first publish
//! to the last handler's return (its printed line, or the last message handled in process).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;

use crate::bare::{Bare, Output};
use crate::common::RedisServer;
use crate::process::{self, Watched};

const CHANNEL: &str = "bench";
/// Every payload starts with this, and the guest prints its payload: a line holding it is one
/// message handled.
const MARKER: &str = "payload#";
const PIPELINE: usize = 1000;

/// One subscriber's run.
pub struct Run {
    pub elapsed: Duration,
    /// Peak resident memory of the subscribing process, for those run as a process.
    pub peak_rss_kib: Option<u64>,
}

impl Run {
    pub fn rate(&self, messages: usize) -> f64 {
        messages as f64 / self.elapsed.as_secs_f64()
    }

    /// Two runs of the same thing as one: the mean time, the higher peak.
    pub fn mean_with(&self, other: &Run) -> Run {
        Run {
            elapsed: (self.elapsed + other.elapsed) / 2,
            peak_rss_kib: self.peak_rss_kib.max(other.peak_rss_kib),
        }
    }
}

/// Publishes `messages` payloads, `PIPELINE` per round trip; returns when publishing started.
fn publish_all(url: &str, messages: usize) -> anyhow::Result<Instant> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_connection().context("publisher connecting")?;
    let started = Instant::now();
    for first in (0..messages).step_by(PIPELINE) {
        let mut pipe = redis::pipe();
        for index in first..(first + PIPELINE).min(messages) {
            pipe.cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(format!("{MARKER}{index}"))
                .ignore();
        }
        pipe.query::<()>(&mut connection).context("publishing")?;
    }
    Ok(started)
}

fn wait_for_subscriber(server: &RedisServer, within: Duration) -> anyhow::Result<()> {
    let mut connection = server.client().get_connection()?;
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(CHANNEL)
            .query(&mut connection)?;
        if subscribers > 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing subscribed to `{CHANNEL}` within {within:?}")
}

/// How long to wait for a run before calling it failed.
fn patience(messages: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(messages as u64)
}

/// The ceiling: an in-process subscriber (one connection) that does nothing with a message.
pub fn ceiling(server: &RedisServer, messages: usize) -> anyhow::Result<Run> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut pubsub = server.client().get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        let url = server.url();
        let publisher = std::thread::spawn(move || publish_all(&url, messages));
        let mut stream = pubsub.on_message();
        for _ in 0..messages {
            let message = tokio::time::timeout(patience(messages), stream.next())
                .await
                .context("waiting for a message")?
                .context("the subscription ended")?;
            std::hint::black_box(message.get_payload_bytes());
        }
        let ended = Instant::now();
        let started = publisher
            .join()
            .map_err(|_| anyhow::anyhow!("the publisher panicked"))??;
        Ok(Run {
            elapsed: ended - started,
            peak_rss_kib: None,
        })
    })
}

/// The bare floor: a process subscribing with the redis crate and dispatching each message with
/// the bare baseline, one at a time, the guest's output going to its stdout as it does with the
/// host. It is this benchmark's own executable, run with [`FLOOR_SUBSCRIBER`].
pub fn bare_floor(server: &RedisServer, messages: usize, wasm: &Path) -> anyhow::Result<Run> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.arg(FLOOR_SUBSCRIBER).arg(server.url()).arg(wasm);
    let floor = Watched::start(command, "the bare floor", MARKER, None)?;
    watched_run(floor, server, messages)
}

/// The argument that makes this executable the bare floor's subscriber.
pub const FLOOR_SUBSCRIBER: &str = "--bare-floor-subscriber";

/// The bare floor's subscriber: `<url> <wasm>` after [`FLOOR_SUBSCRIBER`]; runs until killed.
pub fn floor_subscriber(url: &str, wasm: &Path) -> anyhow::Result<()> {
    let bare = Bare::new(wasm, Output::Inherit)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = redis::Client::open(url)?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        let mut stream = pubsub.on_message();
        while let Some(message) = stream.next().await {
            bare.handle(message.get_payload_bytes()).await?;
        }
        Ok(())
    })
}

/// An app with one Redis trigger on the bench channel; `extra` goes into the trigger's table.
fn write_app(dir: &Path, server: &RedisServer, wasm: &Path, extra: &str) -> anyhow::Result<()> {
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "bench"

[application.trigger.redis]
address = "{address}"

[[trigger.redis]]
channel = "{CHANNEL}"
component = "print"
{extra}

[component.print]
source = "{wasm}"
"#,
        address = server.url(),
        wasm = wasm.display(),
    );
    std::fs::write(dir.join("spin.toml"), manifest).context("writing spin.toml")
}

/// Runs a subscribing program until it has printed a line per message.
fn watched_run(program: Watched, server: &RedisServer, messages: usize) -> anyhow::Result<Run> {
    watched_run_then(program, server, messages, || {})
}

/// [`watched_run`], calling `before_stop` once every message is handled, while the program
/// still runs.
fn watched_run_then(
    mut program: Watched,
    server: &RedisServer,
    messages: usize,
    before_stop: impl FnOnce(),
) -> anyhow::Result<Run> {
    wait_for_subscriber(server, Duration::from_secs(120))?;
    let url = server.url();
    let publisher = std::thread::spawn(move || publish_all(&url, messages));
    let last = program.wait_marked(messages, patience(messages))?;
    let started = publisher
        .join()
        .map_err(|_| anyhow::anyhow!("the publisher panicked"))??;
    let peak = program.peak_rss_kib();
    before_stop();
    program.stop()?;
    Ok(Run {
        elapsed: last - started,
        peak_rss_kib: Some(peak),
    })
}

/// `spin-trigger-host up` with the trigger's `max_in_flight`; with `metrics`, also serving
/// `/metrics`, which is scraped at the end to check that it counted every message.
pub fn host(
    server: &RedisServer,
    messages: usize,
    wasm: &Path,
    max_in_flight: usize,
    metrics: bool,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    write_app(
        dir.path(),
        server,
        wasm,
        &format!("max_in_flight = {max_in_flight}"),
    )?;
    let port = crate::common::free_port();
    let address = format!("127.0.0.1:{port}");
    let extra: &[&str] = if metrics {
        &["--metrics-addr", &address]
    } else {
        &[]
    };
    let mut host = process::start_host_with(
        &dir.path().join("spin.toml"),
        &dir.path().join("cache"),
        MARKER,
        extra,
    )?;
    host.wait_ready(Duration::from_secs(120))?;
    let mut scraped = None;
    let run = watched_run_then(host, server, messages, || {
        scraped = metrics.then(|| crate::common::http_get(port, "/metrics"));
    })?;
    if let Some(scrape) = scraped {
        let (_, body) = scrape.context("scraping the host's /metrics")?;
        let received = body
            .lines()
            .find(|line| line.starts_with("spin_trigger_events_received_total{"))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok());
        anyhow::ensure!(
            received == Some(messages as f64),
            "the host's /metrics counted {received:?} messages received, not {messages}"
        );
    }
    Ok(run)
}

/// `spin up` with Spin's built-in Redis trigger, in its own `SPIN_DATA_DIR`.
pub fn spin(
    server: &RedisServer,
    messages: usize,
    wasm: &Path,
    spin: &Path,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    write_app(dir.path(), server, wasm, "")?;
    let mut command = std::process::Command::new(spin);
    command
        .current_dir(dir.path())
        .args(["up", "-f", "spin.toml"])
        .env("SPIN_DATA_DIR", dir.path().join("spin-data"));
    let spin = Watched::start(command, "spin up", MARKER, None)?;
    watched_run(spin, server, messages)
}
