//! Release `.wasm` sizes of the projects users start from: each of our templates' generated
//! project (against the SDK as `cargo package` makes it), and Spin's own `redis-rust` template's
//! (made and built by the real `spin new` and `spin build`).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use spin_templates::Template;

use crate::common::{self, workspace_root};

/// Builds a project for wasm32-wasip2 in release mode and returns its `.wasm` size.
fn built_size(project: &Path, name: &str, build: &mut Command) -> anyhow::Result<u64> {
    let status = build
        .current_dir(project)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .with_context(|| format!("building {name}"))?;
    if !status.success() {
        bail!("building {name} failed");
    }
    let wasm = project
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    Ok(std::fs::metadata(&wasm)
        .with_context(|| format!("reading {}", wasm.display()))?
        .len())
}

/// `(template, bytes)` for each of our templates.
pub fn ours() -> anyhow::Result<Vec<(String, u64)>> {
    let dir = tempfile::tempdir()?;
    let mut sizes = Vec::new();
    for (template, values) in [
        ("timer-rust", &[][..]),
        ("redis-component-rust", &[("redis-channel", "messages")][..]),
    ] {
        let name = format!("bench-{template}");
        let project = dir.path().join(&name);
        Template::load(workspace_root().join("templates").join(template))?
            .new_application(&name, &project, values)?;
        common::use_packaged_sdk(&project);
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"]);
        sizes.push((
            template.to_owned(),
            built_size(&project, &name, &mut build)?,
        ));
    }
    Ok(sizes)
}

/// Spin's `redis-rust` template's project, when a Spin CLI and Spin's templates are at hand.
pub fn spins_redis_rust(spin: &Path) -> anyhow::Result<Option<u64>> {
    let Some(templates) = common::spins_own_templates() else {
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let spin_command = |args: &[&str], cwd: &Path| -> anyhow::Result<()> {
        let output = Command::new(spin)
            .args(args)
            .current_dir(cwd)
            .env("SPIN_DATA_DIR", dir.path().join("spin-data"))
            .output()
            .with_context(|| format!("running spin {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "spin {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    let templates = templates.display().to_string();
    spin_command(&["templates", "install", "--dir", &templates], dir.path())?;
    let name = "bench-spin-redis";
    spin_command(
        &[
            "new",
            "-t",
            "redis-rust",
            name,
            "--accept-defaults",
            "--value",
            "redis-channel=messages",
        ],
        dir.path(),
    )?;
    let project = dir.path().join(name);
    common::share_target_dir(&project, common::SPIN_SDK_TARGET);
    let mut build = Command::new(spin);
    build
        .arg("build")
        .env("SPIN_DATA_DIR", dir.path().join("spin-data"))
        .stdout(std::process::Stdio::null());
    Ok(Some(built_size(&project, name, &mut build)?))
}
