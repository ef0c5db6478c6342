//! The SDK as users get it: the crates as `cargo package` makes them, and generated projects
//! pointed at them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{GENERATED_PROJECTS_TARGET, workspace_root};

/// The SDK crates as `cargo package` makes them — what `cargo publish` would upload and a user's
/// build would download — unpacked, once per test process. Returns the directory holding
/// `spin-trigger-sdk-<version>/` and `spin-trigger-sdk-macro-<version>/`.
///
/// The directory is named after the packages' content, so test processes running at once share
/// it without racing and a changed SDK gets a fresh one.
pub fn packaged_sdk() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let package_target = root.join("target/sdk-package");
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["package", "--quiet", "--no-verify", "--allow-dirty"])
            .args(["-p", "spin-trigger-sdk-macro", "-p", "spin-trigger-sdk"])
            .arg("--target-dir")
            .arg(&package_target)
            .status()
            .expect("running cargo package");
        assert!(status.success(), "cargo package of the SDK crates failed");
        let version = env!("CARGO_PKG_VERSION");
        let crates: Vec<PathBuf> = ["spin-trigger-sdk-macro", "spin-trigger-sdk"]
            .iter()
            .map(|name| package_target.join(format!("package/{name}-{version}.crate")))
            .collect();
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        for file in &crates {
            let bytes = std::fs::read(file)
                .unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
            std::hash::Hash::hash(&bytes, &mut digest);
        }
        let unpacked = package_target.join(format!(
            "unpacked-{:016x}",
            std::hash::Hasher::finish(&digest)
        ));
        if !unpacked.exists() {
            let staging = package_target.join(format!("unpacking-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging).expect("creating the unpack directory");
            for file in &crates {
                let status = Command::new("tar")
                    .arg("-xzf")
                    .arg(file)
                    .arg("-C")
                    .arg(&staging)
                    .status()
                    .expect("running tar");
                assert!(status.success(), "unpacking {}", file.display());
            }
            // Another test process may have won the race; its copy is identical.
            if std::fs::rename(&staging, &unpacked).is_err() {
                let _ = std::fs::remove_dir_all(&staging);
            }
        }
        unpacked
    })
}

/// Points a generated project's SDK dependency (by version, as a user's is) at the packaged
/// crates, and shares its `target` (see [`share_target_dir`]).
pub fn use_packaged_sdk(project: &Path) {
    claim_crate_name(project);
    let cargo_toml = project.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&cargo_toml).expect("the project has a Cargo.toml");
    assert!(
        text.contains(&format!("spin-trigger-sdk = \"{}\"", sdk_requirement())),
        "depends on the SDK by version: {text}"
    );
    let packages = packaged_sdk();
    let version = env!("CARGO_PKG_VERSION");
    text.push_str(&format!(
        "\n[patch.crates-io]\n\
         spin-trigger-sdk = {{ path = \"{}\" }}\n\
         spin-trigger-sdk-macro = {{ path = \"{}\" }}\n",
        packages
            .join(format!("spin-trigger-sdk-{version}"))
            .display(),
        packages
            .join(format!("spin-trigger-sdk-macro-{version}"))
            .display(),
    ));
    std::fs::write(&cargo_toml, text).expect("writing Cargo.toml");
    share_target_dir(project, GENERATED_PROJECTS_TARGET);
}

/// Fails a test whose generated project is named like another's in the same test process: both
/// would write the same `.wasm` in the shared target directory, and one would run the other's.
fn claim_crate_name(project: &Path) {
    static NAMES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let name = project
        .file_name()
        .expect("a project directory")
        .to_string_lossy()
        .into_owned();
    let mut names = NAMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    assert!(
        !names.contains(&name),
        "two generated projects are named `{name}`: they share a target directory, so name them apart"
    );
    names.push(name);
}

/// Points a generated project's `target` at `shared` (relative to the workspace), a directory
/// several projects share so their common dependencies are compiled once; the project's
/// manifest's `source` still finds its `.wasm`. Each `.wasm` is named after its crate, so the
/// projects that share it (across tests that run at once) must name their components apart.
pub fn share_target_dir(project: &Path, shared: &str) {
    let shared = workspace_root().join(shared);
    std::fs::create_dir_all(&shared).expect("creating the shared target directory");
    std::os::unix::fs::symlink(&shared, project.join("target")).expect("linking target/");
}

/// The version requirement a generated project puts on the SDK: the workspace version's
/// `major.minor`, so any compatible release satisfies it.
pub fn sdk_requirement() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        panic!("the workspace version {version} is not major.minor.patch");
    };
    format!("{major}.{minor}")
}
