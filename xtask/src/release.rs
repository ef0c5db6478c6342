//! `cargo xtask release <version>`: everything a release publishes, written into one directory.
//!
//! ```text
//! <out>/crates/        the crates as `cargo package` makes them (verified unless --no-verify)
//! <out>/hosts/<target>/spin-trigger-host   the host for each platform
//! <out>/plugins/       per plugin, a tarball per platform and one manifest listing them
//! <out>/templates/     the templates as one tarball (`spin templates install --tar`), and the
//!                      same tree under `git/` (`spin templates install --git`)
//! <out>/RELEASE_NOTES.md   the changelog's section, the compatibility table, the checksums
//! <out>/SHA256SUMS     every published file (crates, plugin tarballs and manifests, templates
//!                      tarball), by the name it is published under
//! ```
//!
//! A version other than the workspace's is first set everywhere it is written (the workspace's
//! crates, the SDK's pin on its macro crate, the templates' SDK requirement, `Cargo.lock`), and
//! the changelog's `Unreleased` section moves under it; the public API is checked against the
//! last release's (`host/tests/public_api.rs`) and recorded as this version's in `api/released/`.
//! Publishing is left to the public repository's release workflow, which runs this same command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::hosts;
use crate::plugin::{self, HostBinary, PLUGINS, Platform, TarballNames};
use crate::workspace_root;

/// The crates a release publishes, in dependency order.
pub const CRATES: [&str; 3] = [
    "spin-trigger-sdk-macro",
    "spin-trigger-sdk",
    "spin-trigger-host",
];

/// A release's version: `major.minor.patch`, numbers only (no pre-release or build part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub fn new(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Version> {
        let numbers: Vec<u64> = text
            .split('.')
            .map(|part| part.parse::<u64>())
            .collect::<Result<_, _>>()
            .ok()
            .filter(|numbers: &Vec<u64>| numbers.len() == 3)
            .with_context(|| format!("`{text}` is not a version (major.minor.patch)"))?;
        Ok(Version::new(numbers[0], numbers[1], numbers[2]))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What `cargo xtask release` was asked for.
#[derive(clap::Args)]
pub struct Request {
    /// The version released, `major.minor.patch`.
    pub version: String,
    /// Where to write the artifacts: a new or empty directory, or a previous release's (emptied
    /// first).
    #[arg(long, default_value = "target/release-artifacts")]
    pub out: PathBuf,
    /// A Rust target to release for (repeat); default: the three Linux ones.
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// An already built host for a target, `<target>=<path>` (repeat), used instead of
    /// building it.
    #[arg(long = "binary")]
    pub binaries: Vec<String>,
    /// Where the plugin tarballs will be published; default: their own file:// URLs.
    #[arg(long)]
    pub url_base: Option<String>,
    /// Package the crates without building each from its package.
    #[arg(long)]
    pub no_verify: bool,
    /// Write the artifacts of the workspace as it is, changing nothing in it (no version,
    /// changelog or API record): the release test's mode.
    #[arg(long)]
    pub artifacts_only: bool,
}

pub fn release(request: Request) -> anyhow::Result<()> {
    let root = workspace_root();
    let version = Version::parse(&request.version)?;
    let current = workspace_version(&root)?;
    if request.artifacts_only {
        ensure!(
            version == current,
            "--artifacts-only releases the workspace as it is, at {current}, not {version}"
        );
    } else {
        prepare_workspace(&root, &current, &version)?;
    }
    let version = version.to_string();
    let out = &request.out;
    if out.exists() {
        // Only ever a previous release's directory, whole or cut short: `--out .` must not
        // empty the workspace.
        const RELEASE_ENTRIES: [&str; 7] = [
            "crates",
            "hosts",
            "plugins",
            "templates",
            ".package",
            "RELEASE_NOTES.md",
            "SHA256SUMS",
        ];
        for entry in std::fs::read_dir(out).with_context(|| format!("listing {}", out.display()))? {
            let name = entry?.file_name();
            ensure!(
                RELEASE_ENTRIES.iter().any(|known| name == *known),
                "{} holds `{}`, so it is not a release's directory: choose a new or empty one",
                out.display(),
                name.to_string_lossy()
            );
        }
        std::fs::remove_dir_all(out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize()?;

    package_crates(&root, &out, request.no_verify)?;
    let hosts = host_binaries(&root, &out, &request)?;
    for (name, description) in PLUGINS {
        let manifest = plugin::package_plugin(
            (name, description),
            &version,
            &hosts,
            &out.join("plugins"),
            &TarballNames::ByPlatform { version: &version },
            request.url_base.as_deref(),
        )?;
        println!("wrote {}", manifest.display());
    }
    package_templates(&root, &out, &version)?;
    let sums = checksums(&out)?;
    write_release_notes(&root, &out, &version, &hosts, &sums)?;
    std::fs::write(out.join("SHA256SUMS"), &sums)?;
    println!(
        "release {version}: everything it publishes is in {}",
        out.display()
    );
    Ok(())
}

/// Readies the workspace for releasing `version`. Each step is decided by what the workspace
/// holds, not by whether the version was just set, so a release cut short (an API check that
/// asks for a larger bump, say) is finished by running the command again: the version set where
/// it is written; the changelog's `Unreleased` section moved under it unless it has a section;
/// the public API checked against the last release's and recorded, unless this version's is.
fn prepare_workspace(root: &Path, current: &Version, version: &Version) -> anyhow::Result<()> {
    if version != current {
        ensure!(
            version > current,
            "the release version {version} is not above the workspace's {current}"
        );
        set_version(root, current, version)?;
        println!("set the version to {version}");
    }
    if !read(&root.join("CHANGELOG.md"))?.contains(&format!("## [{version}]")) {
        move_unreleased_changelog(root, version)?;
        println!("moved the changelog's Unreleased section under {version}");
    }
    let recorded = LISTED_APIS.iter().all(|name| {
        root.join(format!("api/released/{name}-{version}.txt"))
            .is_file()
    });
    if !recorded {
        // The listings match the source, and the version is the bump their changes since the
        // last release need.
        run(Command::new(cargo()).current_dir(root).args([
            "test",
            "-p",
            "spin-trigger-host",
            "--test",
            "public_api",
        ]))
        .context("checking the public API against the last release's")?;
        record_released_api(root, version)?;
        println!("recorded the public API of {version} in api/released/");
    }
    Ok(())
}

/// `cargo xtask bump <version>`: the version set everywhere it is written, nothing else (for a
/// change that needs a larger version before its release, as the API check says).
pub fn bump(version: &str) -> anyhow::Result<()> {
    let root = workspace_root();
    let version = Version::parse(version)?;
    let current = workspace_version(&root)?;
    ensure!(
        version > current,
        "{version} is not above the workspace's {current}"
    );
    set_version(&root, &current, &version)?;
    println!("set the version to {version}");
    Ok(())
}

/// The crates whose public API is listed in `api/` (the host test `public_api` keeps the
/// listings current).
const LISTED_APIS: [&str; 2] = ["spin-trigger-host", "spin-trigger-sdk"];

/// `api/released/<crate>-<version>.txt`: the API a new version publishes, which later versions
/// are checked against; and `api/released/wit/`: each of this project's WIT packages it ships,
/// which must never change. Kept when they exist (a release made again).
fn record_released_api(root: &Path, version: &Version) -> anyhow::Result<()> {
    for name in LISTED_APIS {
        let released = root.join(format!("api/released/{name}-{version}.txt"));
        if !released.exists() {
            std::fs::copy(root.join(format!("api/{name}.txt")), &released)
                .with_context(|| format!("writing {}", released.display()))?;
        }
    }
    for (package, file) in crate::compatibility::wit_package_files(root)? {
        let Some(own) = package.strip_prefix("spin-trigger:") else {
            continue;
        };
        let released = root.join(format!("api/released/wit/spin-trigger-{own}.wit"));
        if !released.exists() {
            std::fs::copy(&file, &released)
                .with_context(|| format!("writing {}", released.display()))?;
        }
    }
    Ok(())
}

/// The version in the workspace's `[workspace.package]`.
pub fn workspace_version(root: &Path) -> anyhow::Result<Version> {
    let manifest: toml::Table = read(&root.join("Cargo.toml"))?
        .parse()
        .context("parsing Cargo.toml")?;
    let version = manifest
        .get("workspace")
        .and_then(|workspace| workspace.get("package"))
        .and_then(|package| package.get("version"))
        .and_then(|version| version.as_str())
        .context("Cargo.toml has no [workspace.package] version")?;
    Version::parse(version)
}

/// Each place the project's version is written, with the text it has there.
fn version_sites(version: &Version) -> Vec<(&'static str, String)> {
    vec![
        // The workspace's crates.
        ("Cargo.toml", format!("\nversion = \"{version}\"\n")),
        // The SDK's exact pin on its macro crate, released in lockstep.
        (
            "sdk/Cargo.toml",
            format!("spin-trigger-sdk-macro = {{ version = \"={version}\""),
        ),
        // The templates' requirement, `major.minor`.
        (
            "templates/timer-rust/content/Cargo.toml.tmpl",
            sdk_requirement(version),
        ),
        (
            "templates/redis-component-rust/content/Cargo.toml.tmpl",
            sdk_requirement(version),
        ),
        (
            "templates/redis-stream-rust/content/Cargo.toml.tmpl",
            sdk_requirement(version),
        ),
        // The README's install commands, against the latest release.
        ("README.md", format!("releases/download/v{version}\n")),
        (
            "README.md",
            format!("spin-trigger-templates-v{version}.tar.gz"),
        ),
    ]
}

fn sdk_requirement(version: &Version) -> String {
    format!("spin-trigger-sdk = \"{}.{}\"", version.major, version.minor)
}

/// Rewrites every version site from `current` to `next`, then the lock file. Every site is
/// checked before any is written, so a site that moved leaves the workspace as it was.
fn set_version(root: &Path, current: &Version, next: &Version) -> anyhow::Result<()> {
    // Sites in one file are rewritten in turn on the same text.
    let mut files: BTreeMap<&str, String> = BTreeMap::new();
    for ((path, old), (_, new)) in version_sites(current).into_iter().zip(version_sites(next)) {
        let text = match files.remove(path) {
            Some(text) => text,
            None => read(&root.join(path))?,
        };
        ensure!(
            text.matches(&old).count() == 1,
            "{path} should hold `{}` once; nothing was changed",
            old.trim()
        );
        files.insert(path, text.replace(&old, &new));
    }
    for (path, text) in files {
        std::fs::write(root.join(path), text).with_context(|| format!("writing {path}"))?;
    }
    run(Command::new(cargo())
        .current_dir(root)
        .args(["update", "--workspace", "--offline"]))
    .context("updating Cargo.lock to the new version")
}

/// Moves the changelog's `## [Unreleased]` entries under `## [<version>] - <date>`, leaving an
/// empty `Unreleased` section above.
fn move_unreleased_changelog(root: &Path, version: &Version) -> anyhow::Result<()> {
    let path = root.join("CHANGELOG.md");
    let text = read(&path)?;
    let heading = "## [Unreleased]\n";
    ensure!(
        text.contains(heading),
        "CHANGELOG.md has no `## [Unreleased]` section"
    );
    let date = run_output(Command::new("date").args(["-u", "+%Y-%m-%d"]))?;
    let moved = text.replacen(
        heading,
        &format!("{heading}\n## [{version}] - {}\n", date.trim()),
        1,
    );
    std::fs::write(&path, moved).context("writing CHANGELOG.md")
}

/// The changelog's section for `version`, or the `Unreleased` one while no section has its
/// name (a release of the version the workspace already has).
pub fn changelog_section(root: &Path, version: &str) -> anyhow::Result<String> {
    let text = read(&root.join("CHANGELOG.md"))?;
    let section = |heading: &str| {
        let start = text.find(heading)?;
        let body = &text[start + heading.len()..];
        let body = &body[body.find('\n')? + 1..];
        let end = body.find("\n## [").map_or(body.len(), |end| end + 1);
        Some(body[..end].trim().to_owned())
    };
    section(&format!("## [{version}]"))
        .or_else(|| section("## [Unreleased]"))
        .context("CHANGELOG.md has neither a section for the version nor an Unreleased one")
}

/// `cargo package` of the three crates, together, so the SDK is checked against the macro
/// crate's package; the `.crate` files go to `<out>/crates`. Without `no_verify`, each crate is
/// built from its package alone, as crates.io would serve it.
fn package_crates(root: &Path, out: &Path, no_verify: bool) -> anyhow::Result<()> {
    // A target directory of the release's own: packaging then never waits for another cargo
    // run on the workspace's (the verify step's build is the release's own too).
    let target = out.join(".package");
    let mut command = Command::new(cargo());
    command
        .current_dir(root)
        .args(["package", "--locked", "--allow-dirty"])
        .arg("--target-dir")
        .arg(&target);
    for name in CRATES {
        command.args(["-p", name]);
    }
    if no_verify {
        command.arg("--no-verify");
    }
    run(&mut command).context("packaging the crates")?;
    let crates = out.join("crates");
    std::fs::create_dir_all(&crates)?;
    for entry in std::fs::read_dir(target.join("package"))? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "crate")
        {
            std::fs::copy(&path, crates.join(path.file_name().context("a file name")?))?;
        }
    }
    // The packaging's (and the verify step's) build directory is not part of the release.
    std::fs::remove_dir_all(&target).ok();
    Ok(())
}

/// The host for each requested platform, built or given, checked for its architecture and
/// linkage, and copied to `<out>/hosts/<target>/`.
fn host_binaries(root: &Path, out: &Path, request: &Request) -> anyhow::Result<Vec<HostBinary>> {
    let mut given = BTreeMap::new();
    for binary in &request.binaries {
        let (triple, path) = binary
            .split_once('=')
            .with_context(|| format!("--binary `{binary}`: write it as <target>=<path>"))?;
        given.insert(triple.to_owned(), PathBuf::from(path));
    }
    let triples: Vec<String> = if request.platforms.is_empty() {
        plugin::LINUX_TRIPLES
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    } else {
        request.platforms.clone()
    };
    // In the plugin manifests' order (Spin takes the first package for its machine).
    let mut platforms: Vec<Platform> = triples
        .iter()
        .map(|triple| Platform::from_triple(triple))
        .collect::<anyhow::Result<_>>()?;
    platforms.sort_by_key(|platform| plugin::PLATFORMS.iter().position(|known| known == platform));
    for triple in given.keys() {
        ensure!(
            triples.contains(triple),
            "--binary for `{triple}`, which is not among the platforms released"
        );
    }
    let mut hosts = Vec::new();
    for platform in platforms {
        let built = match given.get(platform.triple) {
            Some(path) => path.clone(),
            None => hosts::build_host(root, &platform)?,
        };
        hosts::check_binary(&built, &platform)?;
        let dir = out.join("hosts").join(platform.triple);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(platform.executable("spin-trigger-host"));
        std::fs::copy(&built, &path)
            .with_context(|| format!("copying {} to {}", built.display(), path.display()))?;
        hosts.push(HostBinary { platform, path });
    }
    Ok(hosts)
}

/// The templates as `spin templates install` takes them: a `templates/` tree, under
/// `<out>/templates/git/` (a repository's layout, for `--git`) and as
/// `spin-trigger-templates-v<version>.tar.gz` (for `--tar`).
fn package_templates(root: &Path, out: &Path, version: &str) -> anyhow::Result<()> {
    let dir = out.join("templates");
    let tree = dir.join("git");
    copy_tree(&root.join("templates"), &tree.join("templates"))?;
    let tarball = dir.join(format!("spin-trigger-templates-v{version}.tar.gz"));
    let file = std::fs::File::create(&tarball)
        .with_context(|| format!("creating {}", tarball.display()))?;
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    builder.mode(tar::HeaderMode::Deterministic);
    builder
        .append_dir_all("templates", tree.join("templates"))
        .context("writing the templates tarball")?;
    builder.into_inner()?.finish()?;
    Ok(())
}

/// `sha256  name` for every file a release publishes, by the name it is published under (the
/// release page and crates.io serve files flat), so `sha256sum -c --ignore-missing SHA256SUMS`
/// checks what a user downloaded. The hosts are inside the plugin tarballs.
fn checksums(out: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    for dir in ["crates", "plugins", "templates"] {
        for entry in std::fs::read_dir(out.join(dir))? {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort_by_key(|path| path.file_name().map(ToOwned::to_owned));
    let mut sums = String::new();
    for path in files {
        let name = path.file_name().context("a file name")?.to_string_lossy();
        sums.push_str(&format!("{}  {name}\n", plugin::sha256_file(&path)?));
    }
    Ok(sums)
}

/// The release notes: the changelog's section, what the release was tried with, and the
/// checksums.
fn write_release_notes(
    root: &Path,
    out: &Path,
    version: &str,
    hosts: &[HostBinary],
    sums: &str,
) -> anyhow::Result<()> {
    let mut notes = format!("# spin-trigger {version}\n\n");
    notes.push_str(&changelog_section(root, version)?);
    notes.push_str("\n\n## Compatibility\n\n");
    notes.push_str(&crate::compatibility::table(root)?);
    notes.push_str("\n## Platforms\n\n| target | plugin package (os, arch) |\n| --- | --- |\n");
    for host in hosts {
        notes.push_str(&format!(
            "| `{}` | {}, {} |\n",
            host.platform.triple, host.platform.os, host.platform.arch
        ));
    }
    notes.push_str("\n## Checksums (sha256)\n\n```text\n");
    notes.push_str(sums);
    notes.push_str("```\n");
    std::fs::write(out.join("RELEASE_NOTES.md"), notes).context("writing RELEASE_NOTES.md")
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `command`, failing with what it was when it fails.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

/// Runs `command` and returns its standard output.
pub fn run_output(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release rewrites each site from the workspace's version: every one must hold it exactly
    /// once, or `cargo xtask release` would stop half-way.
    #[test]
    fn every_version_site_holds_the_workspace_version_once() {
        let root = workspace_root();
        let version = workspace_version(&root).unwrap();
        for (path, text) in version_sites(&version) {
            let file = read(&root.join(path)).unwrap();
            assert_eq!(
                file.matches(&text).count(),
                1,
                "{path} holds `{}` once",
                text.trim()
            );
        }
    }

    /// A site that moved stops the version change before any file is written.
    #[test]
    fn a_missing_version_site_changes_nothing() {
        let workspace = workspace_root();
        let root = tempfile::tempdir().unwrap();
        let current = workspace_version(&workspace).unwrap();
        for (path, _) in version_sites(&current) {
            let target = root.path().join(path);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(workspace.join(path), &target).unwrap();
        }
        let readme = root.path().join("README.md");
        let text = read(&readme).unwrap();
        std::fs::write(&readme, text.replace("releases/download/v", "releases/v")).unwrap();
        let before = read(&root.path().join("Cargo.toml")).unwrap();
        let next = Version::new(current.major, current.minor + 1, 0);
        let error = set_version(root.path(), &current, &next)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("README.md") && error.contains("nothing was changed"),
            "{error}"
        );
        assert_eq!(read(&root.path().join("Cargo.toml")).unwrap(), before);
    }

    #[test]
    fn a_release_moves_the_unreleased_changelog_under_its_version() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(
            root.path().join("CHANGELOG.md"),
            "# Changelog\n\n## [Unreleased]\n\n### Added\n\n- a thing\n\n## [0.1.0] - 2026-01-01\n\n- the first\n",
        )
        .unwrap();
        assert_eq!(
            changelog_section(root.path(), "0.2.0").unwrap(),
            "### Added\n\n- a thing",
            "before the move, the notes of a new version are the Unreleased section"
        );
        move_unreleased_changelog(root.path(), &Version::new(0, 2, 0)).unwrap();
        let text = read(&root.path().join("CHANGELOG.md")).unwrap();
        assert!(
            text.contains("## [Unreleased]\n\n## [0.2.0] - "),
            "an empty Unreleased section above the new one: {text}"
        );
        assert_eq!(
            changelog_section(root.path(), "0.2.0").unwrap(),
            "### Added\n\n- a thing"
        );
        assert_eq!(
            changelog_section(root.path(), "0.1.0").unwrap(),
            "- the first"
        );
    }
}
