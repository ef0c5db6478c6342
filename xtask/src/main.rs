//! Project chores.
//!
//! `cargo xtask plugin [--binary PATH] [--out DIR] [--url-base URL]` packages the host as the
//! Spin plugins `trigger-timer` and `trigger-redis-stream` (one program under two names): for
//! each, `<name>.tar.gz` (the executable, named as Spin runs it) and the plugin manifest
//! `<name>.json` that `spin plugins install --file` reads.
//!
//! `cargo xtask bench [-- --quick | --only dispatch,http,key-value,redis,streams,start,memory,sizes]` runs the host's
//! benchmark (`host/benches/bench`) on a release build, after installing what it needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};

/// The plugins, each the host under the name Spin runs for `[[trigger.<type>]]`, with its
/// description. Spin runs its own built-in trigger for `[[trigger.redis]]`.
const PLUGINS: &[(&str, &str)] = &[
    (
        "trigger-timer",
        "Runs Spin timer components built with spin-trigger-sdk",
    ),
    (
        "trigger-redis-stream",
        "Runs Spin Redis components on Redis Streams consumer groups ([[trigger.redis-stream]])",
    ),
];
/// Spin versions whose plugin protocol (locked app v0/v1, launch metadata) the host speaks.
const SPIN_COMPATIBILITY: &str = ">=2.0";

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Package the host as the Spin plugins trigger-timer and trigger-redis-stream.
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
        Task::Plugin {
            binary,
            out,
            url_base,
        } => {
            let binary = match binary {
                Some(binary) => binary,
                None => build_release_host()?,
            };
            for (name, description) in PLUGINS {
                let manifest =
                    package_plugin(name, description, &binary, &out, url_base.as_deref())?;
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
    let setup = Command::new("bash")
        .current_dir(&root)
        .args(["-c", "source scripts/setup.sh"])
        .status()
        .context("running scripts/setup.sh")?;
    if !setup.success() {
        bail!("scripts/setup.sh failed");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["bench", "-p", "spin-trigger-host", "--bench", "bench", "--"])
        .args(args)
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn build_release_host() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--release", "-p", "spin-trigger-host"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the host failed");
    }
    Ok(workspace_root().join("target/release/spin-trigger-host"))
}

/// Writes plugin `name`'s tarball and manifest into `out`; returns the manifest's path.
fn package_plugin(
    name: &str,
    description: &str,
    binary: &Path,
    out: &Path,
    url_base: Option<&str>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize()?;
    let tarball = out.join(format!("{name}.tar.gz"));
    write_tarball(binary, name, &tarball)?;
    let sha256 = hex(&Sha256::digest(std::fs::read(&tarball)?));
    let url = match url_base {
        Some(base) => format!("{}/{name}.tar.gz", base.trim_end_matches('/')),
        None => format!("file://{}", tarball.display()),
    };
    let manifest = serde_json::json!({
        "name": name,
        "description": description,
        "homepage": env!("CARGO_PKG_REPOSITORY"),
        "version": env!("CARGO_PKG_VERSION"),
        "spinCompatibility": SPIN_COMPATIBILITY,
        "license": env!("CARGO_PKG_LICENSE"),
        "packages": [{
            "os": spin_os()?,
            "arch": spin_arch()?,
            "url": url,
            "sha256": sha256,
        }],
    });
    let path = out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)? + "\n")?;
    Ok(path)
}

/// A gzipped tar holding the executable as `name`, mode 0755.
fn write_tarball(binary: &Path, name: &str, tarball: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let file = std::fs::File::create(tarball)?;
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes.as_slice())?;
    builder.into_inner()?.finish()?;
    Ok(())
}

/// Spin's names for operating systems and architectures.
fn spin_os() -> anyhow::Result<&'static str> {
    match std::env::consts::OS {
        "linux" => Ok("linux"),
        "macos" => Ok("macos"),
        "windows" => Ok("windows"),
        other => bail!("Spin has no plugin packages for {other}"),
    }
}

fn spin_arch() -> anyhow::Result<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("amd64"),
        "aarch64" => Ok("aarch64"),
        other => bail!("Spin has no plugin packages for {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
