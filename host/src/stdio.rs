//! Component stdout/stderr: shown line by line prefixed with the component id (`[greeter] hi`)
//! for the components followed (all by default; `--follow <id>` picks, `--quiet` none), and,
//! with a log directory, also written as it is to `<log dir>/<component>_stdout.txt` and
//! `_stderr.txt`, as Spin writes them.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Which host stream a component stream goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The host's standard output.
    Stdout,
    /// The host's standard error.
    Stderr,
}

impl Target {
    fn suffix(self) -> &'static str {
        match self {
            Target::Stdout => "stdout",
            Target::Stderr => "stderr",
        }
    }
}

/// Which components' output reaches the terminal (Spin's `--follow` and `--quiet`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Follow {
    /// Every component's (the default).
    #[default]
    All,
    /// Only these components' (`--follow <id>`, repeatable).
    Named(BTreeSet<String>),
    /// No component's (`--quiet`).
    None,
}

impl Follow {
    /// From `--quiet` and the `--follow` ids.
    pub fn from_options(quiet: bool, follow: &[String]) -> Self {
        if quiet {
            Follow::None
        } else if follow.is_empty() {
            Follow::All
        } else {
            Follow::Named(follow.iter().cloned().collect())
        }
    }

    /// Whether `component_id`'s output reaches the terminal.
    pub fn follows(&self, component_id: &str) -> bool {
        match self {
            Follow::All => true,
            Follow::Named(ids) => ids.contains(component_id),
            Follow::None => false,
        }
    }

    /// A `--follow` id that names no component is an error listing those that exist, as in
    /// Spin.
    pub fn check<'a>(&self, components: impl IntoIterator<Item = &'a str>) -> anyhow::Result<()> {
        let Follow::Named(ids) = self else {
            return Ok(());
        };
        let existing: BTreeSet<&str> = components.into_iter().collect();
        let unknown: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !existing.contains(id))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "--follow names no component of this app: {}; its components are: {}",
            unknown.join(", "),
            existing.into_iter().collect::<Vec<_>>().join(", ")
        )
    }
}

/// Where component output goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputOptions {
    /// Which components reach the terminal (`--follow`, `--quiet`).
    pub follow: Follow,
    /// Where each component's output is also written, `None` for nowhere.
    pub log_dir: Option<PathBuf>,
}

impl OutputOptions {
    /// Creates the log directory, emptying the components' log files first when `truncate`
    /// (Spin's `--truncate-logs`).
    pub fn prepare_log_dir(&self, truncate: bool) -> anyhow::Result<()> {
        let Some(dir) = &self.log_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the log directory {}", dir.display()))?;
        if truncate {
            for entry in std::fs::read_dir(dir)
                .with_context(|| format!("reading the log directory {}", dir.display()))?
            {
                let path = entry?.path();
                let name = path.file_name().and_then(|name| name.to_str());
                if name.is_some_and(|name| {
                    name.ends_with("stdout.txt") || name.ends_with("stderr.txt")
                }) {
                    File::create(&path)
                        .with_context(|| format!("truncating {}", path.display()))?;
                }
            }
        }
        tracing::info!("logging component stdio to {}", dir.display());
        Ok(())
    }
}

/// A component's stdout or stderr, for [`wasmtime_wasi::WasiCtxBuilder::stdout`].
#[derive(Clone)]
pub struct ComponentOutput {
    /// The prefix for terminal lines; `None` when the component is not followed.
    prefix: Option<Arc<str>>,
    target: Target,
    /// The component's log file, opened once for appending.
    log_file: Option<Arc<File>>,
}

impl ComponentOutput {
    /// `component_id`'s output stream `target`, as `options` say; opens its log file.
    pub fn new(
        component_id: &str,
        target: Target,
        options: &OutputOptions,
    ) -> anyhow::Result<Self> {
        let log_file = match &options.log_dir {
            Some(dir) => Some(Arc::new(open_log(dir, component_id, target)?)),
            None => None,
        };
        Ok(ComponentOutput {
            prefix: options
                .follow
                .follows(component_id)
                .then(|| format!("[{component_id}] ").into()),
            target,
            log_file,
        })
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            output: self.clone(),
            pending: Vec::new(),
        }
    }
}

/// `<dir>/<component>_stdout.txt` (or `_stderr.txt`), for appending.
fn open_log(dir: &Path, component_id: &str, target: Target) -> anyhow::Result<File> {
    // Component ids are kebab-case, so they are file names as they are.
    let path = dir.join(format!("{component_id}_{}.txt", target.suffix()));
    File::options()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| {
            format!(
                "component `{component_id}`: opening its log file {}",
                path.display()
            )
        })
}

impl IsTerminal for ComponentOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }
}

/// Buffers a partial line until its newline (or the end of the instance), so lines from
/// concurrent components never interleave mid-line.
struct LineWriter {
    output: ComponentOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(bytes);
        if let Some(last_newline) = self.pending.iter().rposition(|&b| b == b'\n') {
            let complete: Vec<u8> = self.pending.drain(..=last_newline).collect();
            self.emit(&complete)?;
        }
        Ok(())
    }

    /// Writes whole lines to the log file as they are, and to the terminal each prefixed, in
    /// one write each so they stay together.
    fn emit(&self, lines: &[u8]) -> std::io::Result<()> {
        if let Some(mut file) = self.output.log_file.as_deref() {
            file.write_all(lines)?;
        }
        let Some(prefix) = &self.output.prefix else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(lines.len() + 16);
        for line in lines.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        match self.output.target {
            Target::Stdout => std::io::stdout().lock().write_all(&out),
            Target::Stderr => std::io::stderr().lock().write_all(&out),
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            // Nowhere to report a failed write of the last partial line at the end of an instance.
            let last = std::mem::take(&mut self.pending);
            let _ = self.emit(&last);
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes)
            .map_err(|error| wasmtime_wasi::p2::StreamError::LastOperationFailed(error.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        // A partial line waits for its newline; complete lines are already written.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.push(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
