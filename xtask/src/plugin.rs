//! The Spin plugins `trigger-timer` and `trigger-redis-stream`: one program under two names. For
//! each, a tarball per platform (the executable, named as Spin runs it) and one manifest listing
//! them, as `spin plugins install` reads it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The plugins, each the host under the name Spin runs for `[[trigger.<type>]]`, with its
/// description. Spin runs its own built-in trigger for `[[trigger.redis]]`.
pub const PLUGINS: &[(&str, &str)] = &[
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
pub const SPIN_COMPATIBILITY: &str = ">=2.0";

/// A platform the host is released for: its Rust target, and Spin's names for its OS and
/// architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub triple: &'static str,
    pub os: &'static str,
    pub arch: &'static str,
    /// How its files are named: `linux-amd64`, `linux-amd64-static`.
    pub label: &'static str,
}

/// Every platform a release can carry. Spin installs the first package of a manifest that
/// matches its own OS and architecture, so the static (musl) x86_64 build comes first: it runs on
/// every Linux, where the glibc build (made on a current distribution) needs a glibc at least as
/// new; the glibc build stays in the manifest for whoever picks it by hand.
pub const PLATFORMS: &[Platform] = &[
    Platform {
        triple: "x86_64-unknown-linux-musl",
        os: "linux",
        arch: "amd64",
        label: "linux-amd64-static",
    },
    Platform {
        triple: "x86_64-unknown-linux-gnu",
        os: "linux",
        arch: "amd64",
        label: "linux-amd64",
    },
    Platform {
        triple: "aarch64-unknown-linux-gnu",
        os: "linux",
        arch: "aarch64",
        label: "linux-aarch64",
    },
    Platform {
        triple: "x86_64-apple-darwin",
        os: "macos",
        arch: "amd64",
        label: "macos-amd64",
    },
    Platform {
        triple: "aarch64-apple-darwin",
        os: "macos",
        arch: "aarch64",
        label: "macos-aarch64",
    },
    Platform {
        triple: "x86_64-pc-windows-msvc",
        os: "windows",
        arch: "amd64",
        label: "windows-amd64",
    },
];

/// The platforms a release built on this machine carries by default: the Linux ones.
pub const LINUX_TRIPLES: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-gnu",
];

impl Platform {
    /// The platform with Rust target `triple`.
    pub fn from_triple(triple: &str) -> anyhow::Result<Platform> {
        match PLATFORMS.iter().find(|platform| platform.triple == triple) {
            Some(platform) => Ok(*platform),
            None => bail!(
                "no release platform is the target `{triple}`; known: {}",
                PLATFORMS
                    .iter()
                    .map(|platform| platform.triple)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The platform this program was built for.
    pub fn this_machine() -> anyhow::Result<Platform> {
        let triple = match (std::env::consts::OS, std::env::consts::ARCH) {
            ("linux", "x86_64") => "x86_64-unknown-linux-gnu",
            ("linux", "aarch64") => "aarch64-unknown-linux-gnu",
            ("macos", "x86_64") => "x86_64-apple-darwin",
            ("macos", "aarch64") => "aarch64-apple-darwin",
            ("windows", "x86_64") => "x86_64-pc-windows-msvc",
            (os, arch) => bail!("Spin has no plugin packages for {os} on {arch}"),
        };
        Platform::from_triple(triple)
    }

    /// The executable's file name for a program called `name`.
    pub fn executable(&self, name: &str) -> String {
        if self.os == "windows" {
            format!("{name}.exe")
        } else {
            name.to_owned()
        }
    }
}

/// A host executable built for a platform.
#[derive(Debug, Clone)]
pub struct HostBinary {
    pub platform: Platform,
    pub path: PathBuf,
}

/// How the tarballs are named: by plugin alone (`trigger-timer.tar.gz`, one platform, for
/// `xtask plugin`) or by plugin, version and platform (a release's several).
pub enum TarballNames<'a> {
    ByPlugin,
    ByPlatform { version: &'a str },
}

impl TarballNames<'_> {
    fn name(&self, plugin: &str, platform: &Platform) -> String {
        match self {
            TarballNames::ByPlugin => format!("{plugin}.tar.gz"),
            TarballNames::ByPlatform { version } => {
                format!("{plugin}-v{version}-{}.tar.gz", platform.label)
            }
        }
    }
}

/// Writes plugin `name`'s tarball for each of `hosts` and its manifest listing them into `out`;
/// returns the manifest's path. A package's URL is `<url_base>/<tarball>`, or the tarball's own
/// `file://` URL without one.
pub fn package_plugin(
    (name, description): (&str, &str),
    version: &str,
    hosts: &[HostBinary],
    out: &Path,
    names: &TarballNames,
    url_base: Option<&str>,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize()?;
    let mut packages = Vec::new();
    for host in hosts {
        let tarball_name = names.name(name, &host.platform);
        let tarball = out.join(&tarball_name);
        write_tarball(&host.path, &host.platform.executable(name), &tarball)?;
        let url = match url_base {
            Some(base) => format!("{}/{tarball_name}", base.trim_end_matches('/')),
            None => format!("file://{}", tarball.display()),
        };
        packages.push(serde_json::json!({
            "os": host.platform.os,
            "arch": host.platform.arch,
            "url": url,
            "sha256": sha256_file(&tarball)?,
        }));
    }
    let manifest = serde_json::json!({
        "name": name,
        "description": description,
        "homepage": env!("CARGO_PKG_REPOSITORY"),
        "version": version,
        "spinCompatibility": SPIN_COMPATIBILITY,
        "license": env!("CARGO_PKG_LICENSE"),
        "packages": packages,
    });
    let path = out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)? + "\n")?;
    Ok(path)
}

/// A gzipped tar holding `binary` as `name`, mode 0755.
fn write_tarball(binary: &Path, name: &str, tarball: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let file = std::fs::File::create(tarball)
        .with_context(|| format!("creating {}", tarball.display()))?;
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

/// The file's sha256, in lowercase hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}
