//! Redis Streams: entries added pipelined to a stream that one or two hosts (one consumer
//! group, each host a consumer) read, timed from the first `XADD` until the group has read
//! every entry and acknowledged it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::common::RedisServer;
use crate::process;
use crate::redis_e2e::Run;

const STREAM: &str = "bench-stream";
const GROUP: &str = "bench";
const PIPELINE: usize = 1000;
/// Printed by the guest for every entry; the hosts' output is drained, not counted.
const MARKER: &str = "entry#";

/// `hosts` host processes in one group, each with `max_in_flight`, on a fresh stream.
pub fn hosts(
    server: &RedisServer,
    entries: usize,
    wasm: &Path,
    hosts: usize,
    max_in_flight: usize,
) -> anyhow::Result<Run> {
    let mut connection = server.client().get_connection()?;
    redis::cmd("DEL").arg(STREAM).query::<()>(&mut connection)?;
    let dir = tempfile::tempdir()?;
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "{GROUP}"

[[trigger.redis-stream]]
address = "{address}"
stream = "{STREAM}"
component = "print"
max_in_flight = {max_in_flight}

[component.print]
source = "{wasm}"
"#,
        address = server.url(),
        wasm = wasm.display(),
    );
    std::fs::write(dir.path().join("spin.toml"), manifest).context("writing spin.toml")?;
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
    let peak_rss_kib = running.iter().map(|host| host.peak_rss_kib()).sum();
    for host in running {
        host.stop()?;
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
