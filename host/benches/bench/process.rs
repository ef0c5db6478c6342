//! Programs the benchmark runs as users do (the host binary, `spin up`): started in their own
//! process group, their output lines counted as they come, their peak memory read from /proc.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running program whose stdout is watched for lines holding a marker.
pub struct Watched {
    child: Child,
    name: String,
    marked: mpsc::Receiver<Instant>,
    ready: mpsc::Receiver<()>,
}

impl Watched {
    /// Starts `command`; every output line holding `marker` is timestamped, and one holding
    /// `ready_line` signals [`Watched::wait_ready`].
    pub fn start(
        mut command: Command,
        name: &str,
        marker: &'static str,
        ready_line: Option<&'static str>,
    ) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let (marked_sender, marked) = mpsc::channel();
        let (ready_sender, ready) = mpsc::channel();
        // Spin shows component output on its stderr; the host on its stdout.
        let stdout = child.stdout.take().context("piped stdout")?;
        let stderr = child.stderr.take().context("piped stderr")?;
        watch(
            stdout,
            marker,
            ready_line,
            marked_sender.clone(),
            ready_sender.clone(),
        );
        watch(stderr, marker, ready_line, marked_sender, ready_sender);
        Ok(Watched {
            child,
            name: name.to_owned(),
            marked,
            ready,
        })
    }

    pub fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        if self.ready.recv_timeout(within).is_err() {
            bail!(
                "{} did not report it was ready within {within:?}",
                self.name
            );
        }
        Ok(())
    }

    /// When the `count`-th marked line came, counting from the last call.
    pub fn wait_marked(&mut self, count: usize, within: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + within;
        let mut last = None;
        for seen in 0..count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.marked.recv_timeout(left) {
                Ok(at) => last = Some(at),
                Err(_) => bail!(
                    "{} printed {seen} of {count} expected lines within {within:?}",
                    self.name
                ),
            }
        }
        last.context("waited for no lines")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory of the program and every process it started, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        process_tree(self.pid())
            .into_iter()
            .filter_map(peak_rss_kib)
            .sum()
    }

    /// Stops the program with SIGINT to its process group (as Ctrl-C would) and waits.
    pub fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: signalling the process group of the child this benchmark started.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                // SAFETY: as above.
                unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling the process group of the child this benchmark started.
            unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// Reads `stream` line by line on a thread, timestamping lines holding `marker` and signalling
/// `ready` on lines holding `ready_line`. `BENCH_VERBOSE=1` echoes the other lines.
fn watch(
    stream: impl std::io::Read + Send + 'static,
    marker: &'static str,
    ready_line: Option<&'static str>,
    marked: mpsc::Sender<Instant>,
    ready: mpsc::Sender<()>,
) {
    let verbose = std::env::var_os("BENCH_VERBOSE").is_some();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.contains(marker) {
                let _ = marked.send(Instant::now());
            } else if ready_line.is_some_and(|ready_line| line.contains(ready_line)) {
                let _ = ready.send(());
            } else if verbose {
                eprintln!("  | {line}");
            }
        }
    });
}

/// A process's peak resident set (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
            // The fields after the command name, which is in parentheses and may hold spaces.
            let after_name = &stat[stat.rfind(')')? + 2..];
            let parent = after_name.split_whitespace().nth(1)?.parse().ok()?;
            Some((child, parent))
        })
        .collect();
    let mut tree = vec![pid];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            parents
                .iter()
                .filter(|(_, of)| *of == parent)
                .map(|(child, _)| *child),
        );
        index += 1;
    }
    tree
}

/// The line the host logs once its triggers run.
const HOST_READY: &str = "running; Ctrl-C to stop";

/// Starts the host binary built with this benchmark, `spin-trigger-host up -f <manifest>`,
/// caching compiled components in `cache_dir`, watching its output for `marker`.
pub fn start_host(
    manifest: &Path,
    cache_dir: &Path,
    marker: &'static str,
) -> anyhow::Result<Watched> {
    start_host_with(manifest, cache_dir, marker, &[])
}

/// [`start_host`] with `extra` arguments after the host's own.
pub fn start_host_with(
    manifest: &Path,
    cache_dir: &Path,
    marker: &'static str,
    extra: &[&str],
) -> anyhow::Result<Watched> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spin-trigger-host"));
    command
        .arg("up")
        .arg("-f")
        .arg(manifest)
        .arg("--cache-dir")
        .arg(cache_dir)
        .args(extra)
        .env("RUST_LOG", "spin_trigger_host=info")
        .env("NO_COLOR", "1");
    Watched::start(command, "the host", marker, Some(HOST_READY))
}
