//! The release notes' compatibility table, read from what the tests run against: the Spin
//! versions the plugin protocol was recorded and declared for, the spin-sdk versions of the
//! test guests, and every WIT package and world in `wit/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;

use crate::plugin::SPIN_COMPATIBILITY;
use crate::release::read;

/// A Markdown table: what this release was tried with.
pub fn table(root: &Path) -> anyhow::Result<String> {
    let mut table = String::from("| | |\n| --- | --- |\n");
    table.push_str(&format!(
        "| Spin (the plugins' `spinCompatibility`) | `{SPIN_COMPATIBILITY}` |\n"
    ));
    table.push_str(&format!(
        "| Spin's plugin launch, as recorded and replayed by the tests | {} |\n",
        recorded_spin_version(root)?
    ));
    let sdks = spin_sdk_versions(root)?;
    table.push_str(&format!(
        "| components built with spin-sdk (tested) | {} |\n",
        sdks.into_iter().collect::<Vec<_>>().join(", ")
    ));
    for (package, worlds) in wit_packages(root)? {
        let worlds = if worlds.is_empty() {
            "interfaces only".to_owned()
        } else {
            worlds
                .iter()
                .map(|world| format!("`{world}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        table.push_str(&format!("| WIT `{package}` | {worlds} |\n"));
    }
    Ok(table)
}

/// "Spin 4.0.2", from the heading of the recorded contract's README.
fn recorded_spin_version(root: &Path) -> anyhow::Result<String> {
    let readme = read(&root.join("host/tests/fixtures/spin-contract/README.md"))?;
    let heading = readme.lines().next().unwrap_or_default();
    let version = heading
        .split_whitespace()
        .skip_while(|word| *word != "Spin")
        .nth(1)
        .context("the recorded contract's README names no Spin version in its heading")?;
    Ok(format!("Spin {version}"))
}

/// The spin-sdk requirements of the test guests built with Spin's own SDK.
fn spin_sdk_versions(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut versions = BTreeSet::new();
    let guests = root.join("tests/spin-sdk-guests");
    for entry in
        std::fs::read_dir(&guests).with_context(|| format!("listing {}", guests.display()))?
    {
        let manifest = entry?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("parsing {}", manifest.display()))?;
        if let Some(requirement) = table
            .get("dependencies")
            .and_then(|dependencies| dependencies.get("spin-sdk"))
            .and_then(|spin_sdk| {
                spin_sdk
                    .as_str()
                    .or_else(|| spin_sdk.get("version").and_then(|v| v.as_str()))
            })
        {
            versions.insert(requirement.to_owned());
        }
    }
    Ok(versions)
}

/// Every `package` in `wit/` with the worlds it declares.
fn wit_packages(root: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (package, file) in wit_package_files(root)? {
        let worlds = packages.entry(package).or_default();
        for line in read(&file)?.lines().map(str::trim) {
            if let Some(world) = line.strip_prefix("world ") {
                worlds.insert(world.trim_end_matches('{').trim().to_owned());
            }
        }
    }
    Ok(packages)
}

/// Each `.wit` file in `wit/` that declares a package, with the package (`name@version`).
pub fn wit_package_files(root: &Path) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    let mut files = Vec::new();
    wit_files(&root.join("wit"), &mut files)?;
    files.sort();
    let mut packages = Vec::new();
    for file in files {
        let text = read(&file)?;
        if let Some(package) = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("package "))
        {
            packages.push((package.trim_end_matches(';').trim().to_owned(), file));
        }
    }
    Ok(packages)
}

fn wit_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            wit_files(&path, files)?;
        } else if path.extension().is_some_and(|extension| extension == "wit") {
            files.push(path);
        }
    }
    Ok(())
}
