//! The on-disk cache of compiled components, between runs: one file per component and engine
//! configuration, named by a digest of both, written whole or not at all. Also where Spin's
//! `--cache` (a wasmtime cache config file) points it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::component::ComponentSource;

/// The cache file in `dir` for a component with these bytes compiled by `engine`: named by
/// the bytes plus everything about the engine that affects the compiled code.
pub(super) fn file(dir: &Path, engine: &wasmtime::Engine, bytes: &[u8]) -> PathBuf {
    let mut engine_hasher = std::hash::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hasher);
    let mut digest = Sha256::new();
    digest.update(engine_hasher.finish().to_le_bytes());
    digest.update(bytes);
    dir.join(format!("{}.cwasm", hex(&digest.finalize())))
}

/// The component in cache `file`, if it exists and loads; an unusable entry is logged and
/// ignored.
pub(super) fn load(
    file: &Path,
    engine: &wasmtime::Engine,
    source: &ComponentSource,
) -> Option<Component> {
    if !file.exists() {
        return None;
    }
    // SAFETY: the file is one this host serialized into its own cache directory, under a
    // key that covers both the component's bytes and this engine's configuration.
    match unsafe { Component::deserialize_file(engine, file) } {
        Ok(component) => {
            tracing::debug!(%source, "loaded compiled component from cache");
            Some(component)
        }
        Err(error) => {
            tracing::warn!(file = %file.display(), "ignoring unusable cache entry: {error:#}");
            None
        }
    }
}

/// Writes to a temporary file then renames it, so a concurrent reader never sees half a file.
pub(super) fn store(component: &Component, file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().context("cache file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let serialized = component.serialize()?;
    let temporary = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, serialized)?;
    std::fs::rename(&temporary, file)?;
    Ok(())
}

/// Bytes as lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The compiled-component cache directory a wasmtime cache config file names (Spin's
/// `--cache`): its `[cache]` table's `directory`, or `None` when it sets `enabled = false`.
/// Without a `directory`, `default` stays; wasmtime's cleanup settings do not apply to this
/// host's cache and are ignored.
pub fn cache_dir_from_config_file(
    file: &Path,
    default: Option<PathBuf>,
) -> anyhow::Result<Option<PathBuf>> {
    #[derive(serde::Deserialize)]
    struct CacheConfigFile {
        cache: CacheSection,
    }
    #[derive(serde::Deserialize)]
    struct CacheSection {
        #[serde(default = "enabled_by_default")]
        enabled: bool,
        directory: Option<PathBuf>,
    }
    fn enabled_by_default() -> bool {
        true
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--cache: reading {}", file.display()))?;
    let config: CacheConfigFile = toml::from_str(&text)
        .with_context(|| format!("--cache: {} is not a wasmtime cache config", file.display()))?;
    Ok(match config.cache {
        CacheSection { enabled: false, .. } => None,
        CacheSection {
            directory: Some(directory),
            ..
        } => Some(directory),
        CacheSection {
            directory: None, ..
        } => default,
    })
}

#[cfg(test)]
mod tests {
    use super::cache_dir_from_config_file;

    #[test]
    fn a_wasmtime_cache_config_names_the_directory_or_turns_the_cache_off() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cache.toml");
        std::fs::write(
            &file,
            "[cache]\nenabled = true\ndirectory = \"/var/cache/app\"\n",
        )
        .unwrap();
        let cache = cache_dir_from_config_file(&file, None).unwrap();
        assert_eq!(cache, Some("/var/cache/app".into()));
        std::fs::write(&file, "[cache]\nenabled = false\n").unwrap();
        let cache = cache_dir_from_config_file(&file, Some("/default".into())).unwrap();
        assert_eq!(cache, None);
    }
}
