//! The host built for each release platform this machine can build (Linux x86_64 with glibc,
//! static x86_64 with musl, aarch64 cross-compiled with Debian's cross toolchain), and each
//! binary checked for the architecture and linkage its platform promises.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use object::Object;

use crate::plugin::Platform;
use crate::release::{cargo, run, run_output};

/// Builds the host for `platform` in release mode, installing the Rust target and, for a cross
/// build, Debian's C cross toolchain (ring and SQLite compile C) when missing.
pub fn build_host(root: &Path, platform: &Platform) -> anyhow::Result<PathBuf> {
    let this = Platform::this_machine()?;
    if platform.os != "linux" || this.os != "linux" {
        bail!(
            "`{}` is built on its own platform (the release workflow does); pass it with \
             --binary {}=<path>",
            platform.triple,
            platform.triple
        );
    }
    add_rust_target(platform.triple)?;
    let mut command = Command::new(cargo());
    command.current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "spin-trigger-host",
        "--bin",
        "spin-trigger-host",
        "--target",
        platform.triple,
    ]);
    let env_triple = platform.triple.replace('-', "_");
    match platform.triple {
        "x86_64-unknown-linux-musl" => {
            install_debian_packages(&["musl-gcc"], &["musl-tools"])?;
            command.env(format!("CC_{env_triple}"), "musl-gcc");
        }
        "aarch64-unknown-linux-gnu" if this.arch != "aarch64" => {
            // qemu-user: the aarch64 build is then run, not only inspected.
            // The C library's headers for the target come apart from the compiler (with
            // --no-install-recommends): ring's build needs them.
            install_debian_packages(
                &[
                    "aarch64-linux-gnu-gcc",
                    "qemu-aarch64",
                    "/usr/aarch64-linux-gnu/include/stdio.h",
                ],
                &[
                    "gcc-aarch64-linux-gnu",
                    "libc6-dev-arm64-cross",
                    "qemu-user",
                ],
            )?;
            command
                .env(format!("CC_{env_triple}"), "aarch64-linux-gnu-gcc")
                .env(format!("AR_{env_triple}"), "aarch64-linux-gnu-ar")
                .env(
                    format!("CARGO_TARGET_{}_LINKER", env_triple.to_uppercase()),
                    "aarch64-linux-gnu-gcc",
                );
        }
        _ => {}
    }
    run(&mut command).with_context(|| format!("building the host for {}", platform.triple))?;
    Ok(root
        .join("target")
        .join(platform.triple)
        .join("release")
        .join(platform.executable("spin-trigger-host")))
}

fn add_rust_target(triple: &str) -> anyhow::Result<()> {
    let installed = run_output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !installed.lines().any(|line| line.trim() == triple) {
        run(Command::new("rustup").args(["target", "add", triple]))?;
    }
    Ok(())
}

/// Installs Debian's `packages` unless every one of `present` is there already: a program on
/// PATH, or a file named by its absolute path.
fn install_debian_packages(present: &[&str], packages: &[&str]) -> anyhow::Result<()> {
    let there = |item: &&str| {
        if item.starts_with('/') {
            Path::new(item).is_file()
        } else {
            on_path(item)
        }
    };
    if present.iter().all(there) {
        return Ok(());
    }
    // As root, or through sudo (a CI runner's user).
    let root = run_output(Command::new("id").arg("-u"))?.trim() == "0";
    let apt_get = || {
        let mut command = Command::new(if root { "apt-get" } else { "sudo" });
        if !root {
            command.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        }
        command.env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    run(apt_get().arg("update")).context("apt-get update")?;
    run(apt_get()
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages))
    .with_context(|| format!("installing Debian's {}", packages.join(" ")))
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Checks that `binary` is an executable for `platform`: its format and architecture, and on
/// Linux its linkage (the glibc builds load through the dynamic loader, the musl build is
/// static). A binary this machine can run (its own, the static one, an aarch64 one under
/// `qemu-aarch64` where Debian's qemu-user is installed) must print its version.
pub fn check_binary(binary: &Path, platform: &Platform) -> anyhow::Result<()> {
    inspect_binary(binary, platform)?;
    if let Some(mut command) = runner(binary, platform)? {
        let version = run_output(command.arg("--version"))
            .with_context(|| format!("running {} --version", binary.display()))?;
        ensure!(
            version.starts_with("spin-trigger-host "),
            "{} --version printed `{}`",
            binary.display(),
            version.trim()
        );
        println!("{}: {}", platform.triple, version.trim());
    } else {
        println!(
            "{}: format and architecture checked; not run on this machine",
            platform.triple
        );
    }
    Ok(())
}

/// The format, architecture and linkage part of [`check_binary`].
fn inspect_binary(binary: &Path, platform: &Platform) -> anyhow::Result<()> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let file = object::File::parse(bytes.as_slice())
        .with_context(|| format!("{} is not an executable", binary.display()))?;
    let (format, architecture) = match (platform.os, platform.arch) {
        ("linux", "amd64") => (object::BinaryFormat::Elf, object::Architecture::X86_64),
        ("linux", "aarch64") => (object::BinaryFormat::Elf, object::Architecture::Aarch64),
        ("macos", "amd64") => (object::BinaryFormat::MachO, object::Architecture::X86_64),
        ("macos", "aarch64") => (object::BinaryFormat::MachO, object::Architecture::Aarch64),
        ("windows", "amd64") => (object::BinaryFormat::Pe, object::Architecture::X86_64),
        (os, arch) => bail!("no check for {os} on {arch}"),
    };
    ensure!(
        file.format() == format && file.architecture() == architecture,
        "{} is {:?} for {:?}, not {format:?} for {architecture:?} ({})",
        binary.display(),
        file.format(),
        file.architecture(),
        platform.triple
    );
    if platform.os == "linux" {
        let dynamic = file.section_by_name(".interp").is_some();
        let expect_static = platform.triple.ends_with("-musl");
        ensure!(
            dynamic != expect_static,
            "{} is {} linked; a {} build must be {}",
            binary.display(),
            if dynamic { "dynamically" } else { "statically" },
            platform.triple,
            if expect_static { "static" } else { "dynamic" }
        );
    }
    Ok(())
}

/// How this machine runs a binary for `platform`, if it can.
fn runner(binary: &Path, platform: &Platform) -> anyhow::Result<Option<Command>> {
    let this = Platform::this_machine()?;
    if platform.os != this.os {
        return Ok(None);
    }
    if platform.arch == this.arch {
        return Ok(Some(Command::new(binary)));
    }
    if platform.arch == "aarch64" && on_path("qemu-aarch64") {
        let mut command = Command::new("qemu-aarch64");
        command.args(["-L", "/usr/aarch64-linux-gnu"]).arg(binary);
        return Ok(Some(command));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test's own executable stands in for a glibc x86_64 host: it passes as one, and
    /// fails as the static build and as the aarch64 one, each saying why.
    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    #[test]
    fn a_binary_is_checked_for_its_platforms_architecture_and_linkage() {
        let exe = std::env::current_exe().unwrap();
        let inspect = |triple: &str| {
            let platform = Platform::from_triple(triple).unwrap();
            // Not run: the test executable does not print a host's version.
            inspect_binary(&exe, &platform)
        };
        inspect("x86_64-unknown-linux-gnu").unwrap();
        let error = inspect("x86_64-unknown-linux-musl")
            .unwrap_err()
            .to_string();
        assert!(error.contains("dynamically linked"), "{error}");
        let error = inspect("aarch64-unknown-linux-gnu")
            .unwrap_err()
            .to_string();
        assert!(error.contains("Aarch64"), "{error}");
        let error = inspect("x86_64-apple-darwin").unwrap_err().to_string();
        assert!(error.contains("MachO"), "{error}");
    }
}
