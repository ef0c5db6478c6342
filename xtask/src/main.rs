//! Project chores.
//!
//! `cargo xtask release <version> [--out DIR] [--platform TARGET].. [--binary TARGET=PATH]..
//! [--url-base URL] [--no-verify]` writes everything a release publishes into one directory (see
//! `release.rs`); publishing is left to the public repository's release workflow.
//! `cargo xtask bump <version>` only sets the version everywhere it is written.
//!
//! `cargo xtask plugin [--binary PATH] [--out DIR] [--url-base URL]` packages this machine's host
//! as the Spin plugins `trigger-timer` and `trigger-redis-stream`: for each, `<name>.tar.gz` (the
//! executable, named as Spin runs it) and the plugin manifest `<name>.json` that
//! `spin plugins install --file` reads.
//!
//! `cargo xtask bench [-- --quick | --only dispatch,http,key-value,redis,streams,start,memory,sizes]`
//! runs the host's benchmark (`host/benches/bench`) on a release build, after installing what it
//! needs.

mod compatibility;
mod hosts;
mod plugin;
mod release;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use clap::{Parser, Subcommand};

use plugin::{HostBinary, PLUGINS, Platform, TarballNames};
use release::{cargo, run};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write everything a release publishes (crates, hosts, plugins, templates, notes) into one
    /// directory, setting the version everywhere first when it is new.
    Release(release::Request),
    /// Set the version everywhere it is written, and nothing else.
    Bump {
        /// The new version, `major.minor.patch`.
        version: String,
    },
    /// Package this machine's host as the Spin plugins trigger-timer and trigger-redis-stream.
    Plugin {
        /// The host executable to package; default: build it with `cargo build --release`.
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Where to write the tarball and the manifest.
        #[arg(long, default_value = "target/plugin")]
        out: PathBuf,
        /// Where the tarballs will be published (a manifest's package URL is
        /// `<url-base>/<name>.tar.gz`); default: the tarball's own file:// URL.
        #[arg(long)]
        url_base: Option<String>,
    },
    /// Run the host's benchmark on a release build and print its tables.
    Bench {
        /// Passed to the benchmark: `--quick` (small counts), `--only <sections>`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Release(request) => release::release(request),
        Task::Bump { version } => release::bump(&version),
        Task::Plugin {
            binary,
            out,
            url_base,
        } => {
            let path = match binary {
                Some(binary) => binary,
                None => build_release_host()?,
            };
            let host = HostBinary {
                platform: Platform::this_machine()?,
                path,
            };
            for plugin in PLUGINS {
                let manifest = plugin::package_plugin(
                    *plugin,
                    env!("CARGO_PKG_VERSION"),
                    std::slice::from_ref(&host),
                    &out,
                    &TarballNames::ByPlugin,
                    url_base.as_deref(),
                )?;
                println!("wrote {}", manifest.display());
            }
            Ok(())
        }
        Task::Bench { args } => bench(&args),
    }
}

/// Installs what the benchmark needs (the wasm32-wasip2 target, redis-server) when missing, then
/// runs it with `cargo bench`, whose profile is the release one.
fn bench(args: &[String]) -> anyhow::Result<()> {
    let root = workspace_root();
    run(Command::new("bash")
        .current_dir(&root)
        .args(["-c", "source scripts/setup.sh"]))
    .context("installing what the benchmark needs")?;
    run(Command::new(cargo())
        .current_dir(&root)
        .args(["bench", "-p", "spin-trigger-host", "--bench", "bench", "--"])
        .args(args))
    .context("running the benchmark")
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn build_release_host() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    run(Command::new(cargo()).current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "spin-trigger-host",
    ]))
    .context("building the host")?;
    Ok(root.join("target/release/spin-trigger-host"))
}
