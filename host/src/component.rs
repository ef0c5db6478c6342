//! One component of an app as the host runs it: its source, variables, environment, files and
//! outbound hosts, whichever file (or builder) it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::variable_templates::Template;

/// One `[component.<id>]`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Component {
    /// The component's id.
    pub id: String,
    /// The `.wasm` component: a file (an absolute path) or bytes already in memory.
    pub source: ComponentSource,
    /// The component's variables: name to a template over application variables.
    pub variables: BTreeMap<String, Template>,
    /// Environment variables the guest sees; it sees none of the host's.
    pub environment: BTreeMap<String, String>,
    /// Spin's `allowed_outbound_hosts` entries; rendered and parsed at start-up.
    pub allowed_outbound_hosts: Vec<Template>,
    /// What the guest sees of the host's files, read-only.
    pub files: Vec<FileMount>,
    /// Glob patterns, relative to the app directory, of files `files` globs must leave out.
    pub exclude_files: Vec<String>,
    /// How `up --build` builds it.
    pub build: Option<BuildStep>,
    /// Key-value store labels the component may open (`key_value_stores`).
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open (`sqlite_databases`).
    pub sqlite_databases: Vec<String>,
}

/// One `files` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// `{ source = "assets", destination = "/assets" }`: a directory or a file at a guest path.
    Path {
        /// The host's file or directory, absolute.
        host_path: PathBuf,
        /// Where the guest sees it (absolute).
        guest_path: String,
    },
    /// `"static/**/*"`: every matching file, at its path relative to `base_dir`, under `/`.
    Glob {
        /// The app's directory, which `pattern` is relative to.
        base_dir: PathBuf,
        /// The glob pattern.
        pattern: String,
    },
}

/// How to build a component (`[component.<id>.build]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// Shell commands, run in order.
    pub commands: Vec<String>,
    /// Absolute directory to run them in.
    pub workdir: PathBuf,
}

/// Where a component's WebAssembly comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A `.wasm` file, by absolute path (the manifest's `source`).
    File(PathBuf),
    /// The component's bytes, as an embedder holds them.
    Bytes(Arc<[u8]>),
}

impl ComponentSource {
    /// The component's bytes: the file read, or the bytes held.
    pub fn read(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            ComponentSource::File(path) => std::fs::read(path).map(std::borrow::Cow::Owned),
            ComponentSource::Bytes(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
        }
    }

    /// The file, for a component read from one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ComponentSource::File(path) => Some(path),
            ComponentSource::Bytes(_) => None,
        }
    }
}

impl Default for ComponentSource {
    fn default() -> Self {
        ComponentSource::File(PathBuf::new())
    }
}

impl From<PathBuf> for ComponentSource {
    fn from(path: PathBuf) -> Self {
        ComponentSource::File(path)
    }
}

impl PartialEq<PathBuf> for ComponentSource {
    fn eq(&self, path: &PathBuf) -> bool {
        self.path() == Some(path.as_path())
    }
}

/// A file source shows as its path; bytes as their length, never their contents.
impl fmt::Display for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(path) => write!(f, "{}", path.display()),
            ComponentSource::Bytes(bytes) => write!(f, "a component of {} bytes", bytes.len()),
        }
    }
}

impl fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentSource::File(path) => f.debug_tuple("File").field(path).finish(),
            ComponentSource::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}
