//! A release installed the way users install it, from its artifacts alone (what
//! `cargo xtask release` writes): the plugin manifests checked against their tarballs; each
//! plugin unpacked as Spin's installer unpacks it and launched as Spin launches it (the recorded
//! contract); the templates installed from their tarball, every one generated, built against the
//! SDK resolved from the packaged `.crate` files through a registry of their own (not path
//! dependencies), and run by the released host. With a Spin CLI at hand (`SPIN_BIN`, else `spin`
//! on `PATH`) the same release goes through `spin plugins install --file`,
//! `spin templates install --tar`, `spin new`, `spin build` and `spin up --test`.
//!
//! The artifacts: `SPIN_TRIGGER_RELEASE_DIR` (a release made beforehand, every platform it
//! carries), else a release of the workspace's version for this machine's platform alone, made
//! by the xtask built with the tests and wrapping the host built with them (CI's case).
//! Generated projects build in a scratch directory outside the workspace; only their compiled
//! dependencies are shared with the template tests' (`target/generated-projects`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::recorded::{Recorded, assert_timer_full_ran};
use common::{HostProcess, RedisServer, Run, host_command_of, share_target_dir, spin_cli};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PLUGINS: [&str; 2] = ["trigger-timer", "trigger-redis-stream"];
const TEMPLATES: [&str; 3] = ["timer-rust", "redis-component-rust", "redis-stream-rust"];

/// This machine's Rust target and Spin's (os, arch) for it.
fn this_platform() -> (&'static str, &'static str, &'static str) {
    if cfg!(target_arch = "aarch64") {
        ("aarch64-unknown-linux-gnu", "linux", "aarch64")
    } else {
        ("x86_64-unknown-linux-gnu", "linux", "amd64")
    }
}

/// A release's output directory, and whether it was given (every platform) or made for these
/// tests (this machine's).
struct Release {
    dir: PathBuf,
    given: bool,
}

impl Release {
    fn get() -> Release {
        if let Some(dir) =
            std::env::var_os("SPIN_TRIGGER_RELEASE_DIR").filter(|dir| !dir.is_empty())
        {
            return Release {
                dir: PathBuf::from(dir),
                given: true,
            };
        }
        Release {
            dir: made_release(),
            given: false,
        }
    }
    fn manifest(&self, plugin: &str) -> serde_json::Value {
        let path = self.dir.join(format!("plugins/{plugin}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
        serde_json::from_str(&text).expect("a plugin manifest is JSON")
    }

    /// The tarball a manifest's package points at, found in the release by its file name (a
    /// published URL names where it will be uploaded).
    fn tarball(&self, package: &serde_json::Value) -> PathBuf {
        let url = package["url"].as_str().expect("a package has a url");
        let name = url.rsplit('/').next().expect("a url names a file");
        self.dir.join("plugins").join(name)
    }

    /// The host built for this machine, as the release carries it.
    fn host(&self) -> PathBuf {
        let (triple, _, _) = this_platform();
        self.dir.join(format!("hosts/{triple}/spin-trigger-host"))
    }

    fn templates_tarball(&self) -> PathBuf {
        self.dir.join(format!(
            "templates/spin-trigger-templates-v{VERSION}.tar.gz"
        ))
    }
}

/// A release of the workspace's version for this machine's platform, made by the xtask built
/// beside this test (`target/debug/xtask`) around the host built for the tests; once per build,
/// shared by the tests of every process.
fn made_release() -> PathBuf {
    let xtask = std::env::current_exe()
        .expect("the test's path")
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .join("xtask");
    assert!(
        xtask.is_file(),
        "{} is missing: build it with `cargo build -p xtask` (the test build does)",
        xtask.display()
    );
    let host = Path::new(env!("CARGO_BIN_EXE_spin-trigger-host"));
    let mut key = std::collections::hash_map::DefaultHasher::new();
    for file in [host, xtask.as_path()] {
        let metadata = std::fs::metadata(file).expect("reading a binary's metadata");
        std::hash::Hash::hash(&(metadata.len(), metadata.modified().ok()), &mut key);
    }
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = base.join(format!(
        "release-{VERSION}-{:016x}",
        std::hash::Hasher::finish(&key)
    ));
    // One process makes it; the others wait for it (a lock left by a killed run is waited out).
    let lock = base.join(format!(
        "release-{VERSION}-{:016x}.lock",
        std::hash::Hasher::finish(&key)
    ));
    if std::fs::File::create_new(&lock).is_err() {
        let waited = std::time::Instant::now();
        // Until the maker finishes, or gives up (its lock removed).
        while lock.exists() && waited.elapsed() < Duration::from_secs(300) {
            if dir.join("SHA256SUMS").is_file() {
                return dir;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if dir.join("SHA256SUMS").is_file() {
        return dir;
    }
    let staging = base.join(format!("release-staging-{}", std::process::id()));
    let (triple, _, _) = this_platform();
    let output = Command::new(&xtask)
        .args(["release", VERSION, "--platform", triple, "--no-verify"])
        .arg("--artifacts-only")
        .arg("--binary")
        .arg(format!("{triple}={}", host.display()))
        .arg("--out")
        .arg(&staging)
        // Where the tarballs will be once the directory is in place.
        .arg("--url-base")
        .arg(format!("file://{}/plugins", dir.display()))
        .output()
        .expect("running xtask release");
    if !output.status.success() {
        // The processes waiting for this one stop waiting, and make their own.
        let _ = std::fs::remove_file(&lock);
    }
    assert!(
        output.status.success(),
        "xtask release failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // A process that waited out a stale lock may have moved its identical copy into place.
    if std::fs::rename(&staging, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    dir
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("running sha256sum");
    assert!(output.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints the sum")
        .to_owned()
}

fn untar(tarball: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(into)
        .status()
        .expect("running tar");
    assert!(status.success(), "unpacking {}", tarball.display());
}

/// Every field Spin's plugin installer reads, and every package's sha256 against its tarball;
/// a full release lists the three Linux packages (the static amd64 build first, which Spin
/// installs, then the glibc amd64 and the aarch64 ones), a CI release this machine's.
#[test]
fn the_plugin_manifests_list_every_package_with_its_tarballs_sha256() {
    let release = Release::get();
    for plugin in PLUGINS {
        let manifest = release.manifest(plugin);
        assert_eq!(manifest["name"], plugin);
        assert_eq!(manifest["version"], VERSION);
        assert_eq!(manifest["license"], "Apache-2.0");
        let compatibility = manifest["spinCompatibility"].as_str().unwrap_or_default();
        assert!(
            compatibility.starts_with(">=")
                && compatibility[2..]
                    .split('.')
                    .all(|n| n.parse::<u32>().is_ok()),
            "spinCompatibility is a version requirement Spin reads: {manifest}"
        );
        for field in ["description", "homepage"] {
            assert!(
                manifest[field]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{plugin}: {field}"
            );
        }
        let packages = manifest["packages"].as_array().expect("packages");
        let platforms: Vec<(String, String)> = packages
            .iter()
            .map(|package| {
                let os = package["os"].as_str().unwrap_or_default().to_owned();
                let arch = package["arch"].as_str().unwrap_or_default().to_owned();
                assert!(
                    ["linux", "macos", "windows"].contains(&os.as_str())
                        && ["amd64", "aarch64"].contains(&arch.as_str()),
                    "an os and arch Spin knows: {package}"
                );
                let tarball = release.tarball(package);
                assert_eq!(
                    package["sha256"].as_str(),
                    Some(sha256(&tarball).as_str()),
                    "{plugin}: the sha256 of {}",
                    tarball.display()
                );
                (os, arch)
            })
            .collect();
        let linux: Vec<(&str, &str)> = platforms
            .iter()
            .filter(|(os, _)| os == "linux")
            .map(|(os, arch)| (os.as_str(), arch.as_str()))
            .collect();
        if release.given {
            assert_eq!(
                linux,
                [("linux", "amd64"), ("linux", "amd64"), ("linux", "aarch64")],
                "{plugin}: the three Linux packages"
            );
        } else {
            let (_, os, arch) = this_platform();
            assert_eq!(linux, [(os, arch)], "{plugin}");
        }
    }
    // SHA256SUMS covers every published file by the name it is published under (flat).
    let sums = std::fs::read_to_string(release.dir.join("SHA256SUMS")).unwrap();
    let mut named = Vec::new();
    for line in sums.lines() {
        let (sum, name) = line.split_once("  ").expect("`sum  name` lines");
        let path = ["crates", "plugins", "templates"]
            .iter()
            .map(|dir| release.dir.join(dir).join(name))
            .find(|path| path.is_file())
            .unwrap_or_else(|| panic!("SHA256SUMS names {name}, which the release lacks"));
        assert_eq!(sum, sha256(&path), "{name}");
        named.push(name.to_owned());
    }
    let mut published = vec![
        "trigger-timer.json".to_owned(),
        "trigger-redis-stream.json".to_owned(),
        format!("spin-trigger-templates-v{VERSION}.tar.gz"),
    ];
    for name in [
        "spin-trigger-sdk-macro",
        "spin-trigger-sdk",
        "spin-trigger-host",
    ] {
        published.push(format!("{name}-{VERSION}.crate"));
    }
    for plugin in PLUGINS {
        for package in release.manifest(plugin)["packages"].as_array().unwrap() {
            let url = package["url"].as_str().unwrap();
            published.push(url.rsplit('/').next().unwrap().to_owned());
        }
    }
    for name in &published {
        assert!(named.contains(name), "SHA256SUMS lists {name}: {sums}");
    }
    let notes = std::fs::read_to_string(release.dir.join("RELEASE_NOTES.md")).unwrap();
    for expected in [
        format!("# spin-trigger {VERSION}"),
        "## Compatibility".to_owned(),
        "Spin 4.0.2".to_owned(),
        "WIT `spin-trigger:sdk@0.3.0`".to_owned(),
        sums.clone(),
    ] {
        assert!(
            notes.contains(&expected),
            "the notes have `{expected}`:\n{notes}"
        );
    }
}

/// Each plugin as `spin plugins install` installs it: its package for this machine found in the
/// manifest, the tarball checked against the sha256 and unpacked; the executable inside then
/// runs Spin's recorded `spin up --test` launch of `timer-full`. Every package this machine runs
/// is tried: the one Spin picks (the first) and, in a full release, the glibc build after it.
#[test]
fn the_plugin_unpacked_from_its_tarball_runs_spins_recorded_launch() {
    let release = Release::get();
    let plugins_dir = tempfile::tempdir().unwrap();
    let (_, os, arch) = this_platform();
    // Per plugin, its packages for this machine, in the manifest's order.
    let mut packages: Vec<Vec<serde_json::Value>> = Vec::new();
    for plugin in PLUGINS {
        let manifest = release.manifest(plugin);
        let ours: Vec<serde_json::Value> = manifest["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|package| package["os"] == os && package["arch"] == arch)
            .cloned()
            .collect();
        assert!(
            !ours.is_empty(),
            "{plugin} has a package for {os}/{arch}: {manifest}"
        );
        packages.push(ours);
    }
    let variants = packages.iter().map(Vec::len).min().unwrap();
    for variant in 0..variants {
        let mut executables = Vec::new();
        for (plugin, ours) in PLUGINS.iter().zip(&packages) {
            let package = &ours[variant];
            let tarball = release.tarball(package);
            assert_eq!(package["sha256"].as_str(), Some(sha256(&tarball).as_str()));
            let installed = plugins_dir.path().join(format!("{plugin}-{variant}"));
            untar(&tarball, &installed);
            let executable = installed.join(plugin);
            assert!(
                executable.is_file(),
                "{} holds the executable `{plugin}`",
                tarball.display()
            );
            executables.push((*plugin, executable));
        }
        let plugins: Vec<(&str, &Path)> = executables
            .iter()
            .map(|(plugin, path)| (*plugin, path.as_path()))
            .collect();
        let recorded = Recorded::with_plugins("timer-full", &plugins);
        assert_timer_full_ran(&recorded.run_timer_plugin(&[], &[]));
    }
}

/// A Cargo registry of the release's `.crate` files, as an index in a local git repository and
/// the files beside it, written into `dir`; returns the index's URL. A generated project reaches
/// it through `[patch.crates-io] <crate> = { version, registry = "release" }`, so its
/// dependencies resolve as they would from crates.io, from the packaged files alone.
fn local_registry(release: &Path, dir: &Path) -> String {
    let crates = dir.join("crates");
    let index = dir.join("index");
    std::fs::create_dir_all(&crates).unwrap();
    std::fs::create_dir_all(&index).unwrap();
    for entry in std::fs::read_dir(release.join("crates")).unwrap() {
        let file = entry.unwrap().path();
        let Some(stem) = file
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".crate"))
            .map(str::to_owned)
        else {
            continue;
        };
        std::fs::copy(&file, crates.join(file.file_name().unwrap())).unwrap();
        let unpacked = dir.join("unpacked");
        untar(&file, &unpacked);
        let line = index_entry(&unpacked.join(&stem), &sha256(&file));
        let name = line["name"].as_str().unwrap().to_owned();
        let path = index.join(index_path(&name));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{line}\n")).unwrap();
    }
    let config = serde_json::json!({
        "dl": format!("file://{}/{{crate}}-{{version}}.crate", crates.display()),
    });
    std::fs::write(index.join("config.json"), config.to_string()).unwrap();
    for args in [
        &["init", "--quiet"][..],
        &["add", "--all"],
        &[
            "-c",
            "user.name=release-test",
            "-c",
            "user.email=release-test@localhost",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--quiet",
            "--message",
            "index",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(&index)
            .status()
            .expect("running git");
        assert!(status.success(), "git {}", args.join(" "));
    }
    format!("file://{}", index.display())
}

/// Where a crate's entry lives in a registry index (Cargo's layout by name length).
fn index_path(name: &str) -> PathBuf {
    match name.len() {
        1 => PathBuf::from("1").join(name),
        2 => PathBuf::from("2").join(name),
        3 => PathBuf::from("3").join(&name[..1]).join(name),
        _ => PathBuf::from(&name[..2]).join(&name[2..4]).join(name),
    }
}

/// A registry index line for the unpacked package at `dir`, its dependencies read by
/// `cargo metadata` (every one from crates.io: a packaged crate names no other source).
fn index_entry(dir: &Path, checksum: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(dir)
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = &metadata["packages"][0];
    let dependencies: Vec<serde_json::Value> = package["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        // Cargo never resolves a registry crate's dev-dependencies.
        .filter(|dependency| dependency["kind"] != "dev")
        .map(|dependency| {
            let renamed = dependency["rename"].as_str();
            serde_json::json!({
                "name": renamed.unwrap_or_else(|| dependency["name"].as_str().unwrap()),
                "package": renamed.map(|_| dependency["name"].clone()),
                "req": dependency["req"],
                "features": dependency["features"],
                "optional": dependency["optional"],
                "default_features": dependency["uses_default_features"],
                "target": dependency["target"],
                "kind": dependency["kind"].as_str().unwrap_or("normal"),
                "registry": "https://github.com/rust-lang/crates.io-index",
            })
        })
        .collect();
    serde_json::json!({
        "name": package["name"],
        "vers": package["version"],
        "deps": dependencies,
        "cksum": checksum,
        "features": package["features"],
        "yanked": false,
        "links": package["links"],
        "rust_version": package["rust_version"],
        "v": 2,
    })
}

/// A scratch directory outside the workspace for projects made from the release: the
/// registry of its crates, reached through `.cargo/config.toml`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(release: &Release) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let index = local_registry(&release.dir, &dir.path().join("registry"));
        std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        std::fs::write(
            dir.path().join(".cargo/config.toml"),
            format!("[registries.release]\nindex = \"{index}\"\n"),
        )
        .unwrap();
        Scratch { dir }
    }

    /// Points a generated project's SDK dependency (`spin-trigger-sdk = "<major.minor>"`, from
    /// crates.io as a user's is) at the release's registry, and shares the compiled
    /// dependencies of the template tests.
    fn use_released_sdk(&self, project: &Path) {
        let cargo_toml = project.join("Cargo.toml");
        let mut text = std::fs::read_to_string(&cargo_toml).unwrap();
        assert!(
            text.contains(&format!(
                "spin-trigger-sdk = \"{}\"",
                common::sdk_requirement()
            )),
            "the released template asks for this release's SDK: {text}"
        );
        text.push_str(&format!(
            "\n[patch.crates-io]\n\
             spin-trigger-sdk = {{ version = \"={VERSION}\", registry = \"release\" }}\n\
             spin-trigger-sdk-macro = {{ version = \"={VERSION}\", registry = \"release\" }}\n"
        ));
        std::fs::write(&cargo_toml, text).unwrap();
        share_target_dir(project, common::GENERATED_PROJECTS_TARGET);
    }
}

/// Every template from the release's tarball, as `spin templates install --tar` installs it,
/// generated, built against the SDK from the release's `.crate` files and run by the release's
/// host: a timer ticks; a pub/sub message and a stream entry are handled.
#[test]
fn every_template_from_the_tarball_builds_against_the_packaged_crates_and_runs() {
    let release = Release::get();
    let scratch = Scratch::new(&release);
    let installed = scratch.dir.path().join("installed-templates");
    untar(&release.templates_tarball(), &installed);
    let host = release.host();
    let server = RedisServer::start();
    let new_project = |template: &str, name: &str, values: &[(&str, &str)]| {
        let project = scratch.dir.path().join(name);
        spin_templates::Template::load(installed.join("templates").join(template))
            .expect("the released template loads")
            .new_application(name, &project, values)
            .expect("spin new");
        scratch.use_released_sdk(&project);
        project.join("spin.toml").display().to_string()
    };
    let run_host = |args: &[&str]| -> Run {
        host_command_of(&host, args)
            .output()
            .expect("running the released host")
            .into()
    };

    let timer = new_project("timer-rust", "released-timer", &[("schedule", "2")]);
    let run = run_host(&["up", "--build", "--once", "-f", &timer]);
    assert!(run.success, "the timer app builds and runs: {}", run.stderr);
    assert_eq!(
        run.stdout,
        "[released-timer] Hello from released-timer: tick 0\n"
    );

    let pubsub = new_project(
        "redis-component-rust",
        "released-orders",
        &[
            ("redis-address", &server.url()),
            ("redis-channel", "orders"),
        ],
    );
    let built = run_host(&["up", "--build", "--once", "-f", &pubsub]);
    assert!(built.success, "the pub/sub app builds: {}", built.stderr);
    let app = HostProcess::spawn(host_command_of(&host, &["up", "-f", &pubsub]));
    server.wait_for_subscribers("orders", 1);
    server.publish("orders", "order 42");
    assert!(app.wait_for_stdout_lines(" received: ", 1, Duration::from_secs(60)));
    let run = app.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "[released-orders] released-orders received: order 42\n"
    );

    let streams = new_project(
        "redis-stream-rust",
        "released-billing",
        &[
            ("redis-address", &server.url()),
            ("redis-stream", "billing"),
        ],
    );
    let built = run_host(&["up", "--build", "--once", "-f", &streams]);
    assert!(built.success, "the stream app builds: {}", built.stderr);
    let app = HostProcess::spawn(host_command_of(&host, &["up", "-f", &streams]));
    app.wait_until_ready();
    let mut connection = server.client().get_connection().unwrap();
    let id: String = redis::cmd("XADD")
        .arg("billing")
        .arg("*")
        .arg("payload")
        .arg("invoice 7")
        .query(&mut connection)
        .unwrap();
    assert!(app.wait_for_stdout_lines("got entry", 1, Duration::from_secs(60)));
    let run = app.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("[released-billing] released-billing got entry {id} (attempt 1): invoice 7\n")
    );
}

/// With a Spin CLI: the release installed through Spin's own commands and a timer app made,
/// built and run by it. Without one, says so and returns (`SPIN_TRIGGER_REQUIRE_SPIN=1` fails
/// instead).
#[test]
fn spin_installs_the_release_and_runs_a_new_timer_app() {
    let Some(spin) = spin_cli() else {
        assert!(
            std::env::var("SPIN_TRIGGER_REQUIRE_SPIN").as_deref() != Ok("1"),
            "SPIN_TRIGGER_REQUIRE_SPIN=1 but no Spin CLI was found"
        );
        eprintln!(
            "release through Spin NOT RUN: no Spin CLI found (set SPIN_BIN, or put `spin` on PATH)"
        );
        return;
    };
    let release = Release::get();
    let scratch = Scratch::new(&release);
    let data_dir = tempfile::tempdir().unwrap();
    let spin_run = |dir: &Path, args: &[&str]| -> Run {
        let run: Run = Command::new(&spin)
            .args(args)
            .current_dir(dir)
            .env("SPIN_DATA_DIR", data_dir.path())
            .env_remove("CARGO_TARGET_DIR")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running spin")
            .into();
        assert!(
            run.success,
            "`spin {}`:\n{}\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        run
    };
    let apps = scratch.dir.path();
    for plugin in PLUGINS {
        let manifest = release.dir.join(format!("plugins/{plugin}.json"));
        spin_run(
            apps,
            &[
                "plugins",
                "install",
                "--file",
                &manifest.display().to_string(),
                "--yes",
            ],
        );
    }
    let tarball = release.templates_tarball().display().to_string();
    let installed = spin_run(apps, &["templates", "install", "--tar", &tarball]);
    for template in TEMPLATES {
        assert!(installed.stdout.contains(template), "{}", installed.stdout);
    }
    spin_run(
        apps,
        &[
            "new",
            "-t",
            "timer-rust",
            "spin-released-timer",
            "--accept-defaults",
            "--value",
            "schedule=2",
        ],
    );
    let project = apps.join("spin-released-timer");
    scratch.use_released_sdk(&project);
    spin_run(&project, &["build"]);
    let run = spin_run(&project, &["up", "--test"]);
    assert!(
        run.stdout
            .contains("Hello from spin-released-timer: tick 0"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}
