//! Helpers shared by the host's integration tests, one file per concern: guests built once,
//! the SDK as packaged, the apps they run (one builder, `TestApp`), the host binary run as a user
//! runs it, `redis-server`s of their own, Spin's recorded plugin launches, and the Spin CLI where
//! there is one.

#![allow(dead_code, unused_imports)] // Each test binary uses a different subset.

use std::path::{Path, PathBuf};

pub mod certificates;
pub mod guests;
pub mod host_process;
pub mod http_server;
pub mod recorded;
pub mod redis_server;
pub mod sdk_package;
pub mod spin_cli;
pub mod test_app;

pub use certificates::*;
pub use guests::*;
pub use host_process::*;
pub use http_server::*;
pub use redis_server::*;
pub use sdk_package::*;
pub use spin_cli::*;
pub use test_app::*;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host crate sits in the workspace")
        .to_path_buf()
}

/// Where projects generated from our templates build.
pub const GENERATED_PROJECTS_TARGET: &str = "target/generated-projects";
/// Where guests built with Spin's own SDK build: the spin-sdk test guests and projects from
/// Spin's templates, which share spin-sdk's compiled dependencies.
pub const SPIN_SDK_TARGET: &str = "target/spin-sdk";
