//! The Spin CLI and Spin's own templates, where this machine has them.

use std::path::PathBuf;

/// The Spin CLI to test with, if one is found: `SPIN_BIN`, else `spin` on `PATH`.
pub fn spin_cli() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SPIN_BIN").filter(|bin| !bin.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "SPIN_BIN={} is not a file", bin.display());
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    })
}

/// Spin's own templates (`redis-rust`, `http-rust`, ...): `SPIN_TEMPLATES_DIR`, a directory
/// holding `templates/` (a checkout of Spin's templates at the release under test). `None` when
/// it is not set.
pub fn spins_own_templates() -> Option<PathBuf> {
    std::env::var_os("SPIN_TEMPLATES_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}
