//! `up --build`: runs each component's `[component.<id>.build]` commands before loading it.

use std::collections::BTreeSet;

use anyhow::{Context, bail};

use crate::app::App;

/// Runs every component's build commands in its `workdir`, in manifest order. A command shared
/// by several components (same command, same directory) runs once.
pub async fn build_components(app: &App) -> anyhow::Result<()> {
    let mut done = BTreeSet::new();
    for component in app.components.values() {
        let Some(build) = &component.build else {
            continue;
        };
        for command in &build.commands {
            if !done.insert((command.clone(), build.workdir.clone())) {
                continue;
            }
            tracing::info!(component = %component.id, workdir = %build.workdir.display(), "building: {command}");
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(&build.workdir)
                .status()
                .await
                .with_context(|| {
                    format!(
                        "building component `{}`: cannot run `{command}` in {}",
                        component.id,
                        build.workdir.display()
                    )
                })?;
            if !status.success() {
                bail!(
                    "building component `{}`: `{command}` in {} failed ({status})",
                    component.id,
                    build.workdir.display()
                );
            }
        }
    }
    Ok(())
}
