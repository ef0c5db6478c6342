//! What a guest sees of the host's files: `files` and `exclude_files`, with Spin's meaning.
//!
//! A directory named by `{ source, destination }` is mounted as it is when it is all a component
//! has. A single file, and every file a glob matches (at its path relative to the app
//! directory), is copied into a staging directory per component, mounted at `/` (WASI mounts
//! directories, not files); beside those, directories are copied in too, so the guest sees one
//! tree from `/`, as Spin stages it. Globs are expanded when the component is prepared, after
//! any `--build`. Everything is read-only, unless transient writes are allowed: then every file
//! is copied into the staging directory and the guest may write there, for this run only, never
//! to the app's own files.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::component::{Component, FileMount};

/// The directories to mount for one component, and the staging directory they may include.
pub struct GuestFiles {
    /// Host directory and the guest path it appears at.
    mounts: Vec<(PathBuf, String)>,
    /// Removed when the component is dropped.
    _staging: Option<tempfile::TempDir>,
    writable: bool,
}

impl GuestFiles {
    /// Resolves `component`'s `files`, copying single files and glob matches into staging, and
    /// directories too when anything else is staged or the guest may write (`writable`).
    pub fn stage(component: &Component, writable: bool) -> anyhow::Result<Self> {
        let context = || format!("component `{}`: files", component.id);
        let excluded = component
            .exclude_files
            .iter()
            .map(|pattern| glob::Pattern::new(pattern))
            .collect::<Result<Vec<_>, _>>()
            .with_context(context)?;
        let mut mounts = Vec::new();
        let mut directories = Vec::new();
        let mut staging: Option<tempfile::TempDir> = None;
        for mount in &component.files {
            match mount {
                FileMount::Path {
                    host_path,
                    guest_path,
                } if host_path.is_dir() => {
                    directories.push((host_path.clone(), guest_path.clone()));
                }
                FileMount::Path {
                    host_path,
                    guest_path,
                } if host_path.is_file() => {
                    stage(&mut staging, host_path, Path::new(guest_path)).with_context(context)?;
                }
                FileMount::Path { host_path, .. } => {
                    bail!("{}: {} does not exist", context(), host_path.display())
                }
                FileMount::Glob { base_dir, pattern } => {
                    stage_matches(&mut staging, base_dir, pattern, &excluded)
                        .with_context(context)?;
                }
            }
        }
        // A directory is mounted as it is when it is all the guest sees; beside staged files it
        // is copied in too, so that the guest sees one tree from `/` as in Spin (which stages
        // everything), and so is every file when the guest may write.
        if staging.is_none() && !writable {
            mounts = directories;
        } else {
            for (host_path, guest_path) in &directories {
                for file in files_under(host_path).with_context(context)? {
                    let relative = file.strip_prefix(host_path).unwrap_or(&file);
                    stage(&mut staging, &file, &Path::new(guest_path).join(relative))
                        .with_context(context)?;
                }
            }
        }
        if let Some(dir) = &staging {
            mounts.push((dir.path().to_path_buf(), "/".to_owned()));
        }
        Ok(GuestFiles {
            mounts,
            _staging: staging,
            writable,
        })
    }

    /// Whether the guest may write to its files (in the staged copy).
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Each host directory to mount, and its guest path.
    pub fn mounts(&self) -> &[(PathBuf, String)] {
        &self.mounts
    }
}

/// Stages the files under `base_dir` matching `pattern` and none of `excluded`, each at its
/// path relative to `base_dir` from `/`.
fn stage_matches(
    staging: &mut Option<tempfile::TempDir>,
    base_dir: &Path,
    pattern: &str,
    excluded: &[glob::Pattern],
) -> anyhow::Result<()> {
    for path in glob::glob(&base_dir.join(pattern).to_string_lossy())? {
        let path = path?;
        let Ok(relative) = path.strip_prefix(base_dir) else {
            continue;
        };
        let excluded = excluded
            .iter()
            .any(|pattern| pattern.matches_path(relative));
        if path.is_file() && !excluded {
            stage(staging, &path, &Path::new("/").join(relative))?;
        }
    }
    Ok(())
}

/// Copies `from` to `guest_path` in the staging directory, creating it on first use.
fn stage(
    staging: &mut Option<tempfile::TempDir>,
    from: &Path,
    guest_path: &Path,
) -> anyhow::Result<()> {
    let dir = match staging {
        Some(dir) => dir,
        None => staging.insert(tempfile::tempdir().context("creating a staging directory")?),
    };
    let to = dir
        .path()
        .join(guest_path.strip_prefix("/").unwrap_or(guest_path));
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
    Ok(())
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    Ok(files)
}
