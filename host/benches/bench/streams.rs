//! Redis Streams: entries added pipelined to a stream that one or two hosts (one consumer
//! group, each host a consumer) read, timed from the first `XADD` until the group has read
//! every entry and acknowledged it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bare::{Bare, Output};
use crate::common::RedisServer;
use crate::process;
use crate::redis_e2e::Run;

const STREAM: &str = "bench-stream";
const GROUP: &str = "bench";
const PIPELINE: usize = 1000;
/// Printed by the guest for every entry; the hosts' output is drained, not counted.
const MARKER: &str = "entry#";

/// `hosts` host processes in one group, each with `max_in_flight` (and `batch_size`, for a
/// component taking batches, and `max_per_second`), on a fresh stream.
pub fn hosts(
    server: &RedisServer,
    entries: usize,
    wasm: &Path,
    hosts: usize,
    max_in_flight: usize,
    (batch_size, max_per_second): (Option<usize>, Option<usize>),
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let batch_size = batch_size.map_or(String::new(), |size| format!("batch_size = {size}"))
        + &max_per_second.map_or(String::new(), |rate| format!("\nmax_per_second = {rate}"));
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "{GROUP}"

[[trigger.redis-stream]]
address = "{address}"
stream = "{STREAM}"
component = "print"
max_in_flight = {max_in_flight}
{batch_size}

[component.print]
source = "{wasm}"
"#,
        address = server.url(),
        wasm = wasm.display(),
    );
    std::fs::write(dir.path().join("spin.toml"), manifest).context("writing spin.toml")?;
    timed(server, entries, || {
        let mut running = Vec::new();
        for _ in 0..hosts {
            let mut host = process::start_host(
                &dir.path().join("spin.toml"),
                &dir.path().join("cache"),
                MARKER,
            )?;
            host.wait_ready(Duration::from_secs(120))?;
            running.push(host);
        }
        Ok(running)
    })
}

/// The bare streams floor: one process of this benchmark's own executable (run with
/// [`FLOOR_CONSUMER`]) reading with `XREADGROUP COUNT <max_in_flight>`, dispatching each entry
/// with the bare baseline, one at a time, and acknowledging the batch with one `XACK` in the
/// round trip of the next read. Like the host, it never holds more than `max_in_flight`
/// unacknowledged entries.
pub fn bare_floor(
    server: &RedisServer,
    entries: usize,
    wasm: &Path,
    max_in_flight: usize,
) -> anyhow::Result<Run> {
    timed(server, entries, || {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .arg(FLOOR_CONSUMER)
            .arg(server.url())
            .arg(wasm)
            .arg(max_in_flight.to_string());
        let mut floor =
            process::Watched::start(command, "the bare streams floor", MARKER, Some(FLOOR_READY))?;
        floor.wait_ready(Duration::from_secs(120))?;
        Ok(vec![floor])
    })
}

/// What the floor's consumer prints (on stderr) once it has joined the group.
const FLOOR_READY: &str = "bare stream consumer ready";

/// The argument that makes this executable the bare streams floor's consumer.
pub const FLOOR_CONSUMER: &str = "--bare-stream-consumer";

/// The bare streams floor's consumer: `<url> <wasm> <max_in_flight>` after
/// [`FLOOR_CONSUMER`]; runs until killed.
pub fn floor_consumer(url: &str, wasm: &Path, max_in_flight: &str) -> anyhow::Result<()> {
    use redis::streams::StreamReadReply;

    let max_in_flight: usize = max_in_flight.parse()?;
    let bare = Bare::new(wasm, Output::Inherit)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = redis::Client::open(url)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut connection)
            .await;
        if let Err(error) = created
            && error.code() != Some("BUSYGROUP")
        {
            return Err(error.into());
        }
        eprintln!("{FLOOR_READY}");
        let mut handled: Vec<String> = Vec::new();
        loop {
            let mut pipe = redis::pipe();
            if !handled.is_empty() {
                pipe.cmd("XACK")
                    .arg(STREAM)
                    .arg(GROUP)
                    .arg(&handled)
                    .ignore();
            }
            pipe.cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg("floor")
                .arg("COUNT")
                .arg(max_in_flight)
                .arg("BLOCK")
                .arg(500)
                .arg("STREAMS")
                .arg(STREAM)
                .arg(">");
            let (reply,): (Option<StreamReadReply>,) = pipe.query_async(&mut connection).await?;
            handled.clear();
            for entry in reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|key| key.ids)
            {
                let payload: Vec<u8> = entry.get("payload").unwrap_or_default();
                bare.handle(&payload).await?;
                handled.push(entry.id);
            }
        }
    })
}

/// Starts the consumers `start` makes, adds `entries` entries to a fresh stream, pipelined,
/// and times it until the group has acknowledged every one.
fn timed(
    server: &RedisServer,
    entries: usize,
    start: impl FnOnce() -> anyhow::Result<Vec<process::Watched>>,
) -> anyhow::Result<Run> {
    let mut connection = server.client().get_connection()?;
    redis::cmd("DEL").arg(STREAM).query::<()>(&mut connection)?;
    let running = start()?;
    let started = Instant::now();
    for first in (0..entries).step_by(PIPELINE) {
        let mut pipe = redis::pipe();
        for index in first..(first + PIPELINE).min(entries) {
            pipe.cmd("XADD")
                .arg(STREAM)
                .arg("*")
                .arg("payload")
                .arg(format!("{MARKER}{index}"))
                .ignore();
        }
        pipe.query::<()>(&mut connection)
            .context("adding entries")?;
    }
    let deadline = started + Duration::from_secs(60) + Duration::from_millis(entries as u64);
    while !all_acknowledged(&mut connection, entries)? {
        if Instant::now() > deadline {
            bail!("the group did not handle {entries} entries in time");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed();
    let peak_rss_kib = running.iter().map(|consumer| consumer.peak_rss_kib()).sum();
    for consumer in running {
        consumer.stop()?;
    }
    Ok(Run {
        elapsed,
        peak_rss_kib: Some(peak_rss_kib),
    })
}

/// Whether the group has read `entries` entries and has none pending (`XINFO GROUPS`).
fn all_acknowledged(connection: &mut redis::Connection, entries: usize) -> anyhow::Result<bool> {
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query(connection)?;
    let Some(group) = groups.first() else {
        return Ok(false);
    };
    // `entries-read` is nil until Redis knows it.
    let number = |field: &str| -> anyhow::Result<i64> {
        match group.get(field) {
            Some(value) => Ok(redis::from_redis_value::<Option<i64>>(value.clone())?.unwrap_or(0)),
            None => bail!("XINFO GROUPS has no `{field}`"),
        }
    };
    Ok(number("entries-read")? >= entries as i64 && number("pending")? == 0)
}
