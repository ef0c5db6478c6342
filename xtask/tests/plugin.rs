//! `xtask plugin`: for each plugin (`trigger-timer`, `trigger-redis-stream`), the tarball holds
//! the executable as Spin runs it, and the manifest says what Spin's plugin installer checks,
//! field by field, with the tarball's real sha256.

use std::io::Read;
use std::process::Command;

use sha2::{Digest, Sha256};

const PLUGINS: [&str; 2] = ["trigger-timer", "trigger-redis-stream"];

/// Packages every plugin into `out`; returns the manifests, in [`PLUGINS`] order.
fn package(out: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    // Any executable will do as the payload; this test's own xtask binary is at hand.
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["plugin", "--binary", env!("CARGO_BIN_EXE_xtask"), "--out"])
        .arg(out)
        .args(extra)
        .status()
        .unwrap();
    assert!(status.success());
    PLUGINS
        .iter()
        .map(|name| {
            let manifest = std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap();
            serde_json::from_str(&manifest).expect("the manifest is JSON")
        })
        .collect()
}

#[test]
fn the_manifest_describes_the_tarball_field_by_field() {
    let out = tempfile::tempdir().unwrap();
    let manifests = package(
        out.path(),
        &["--url-base", "https://example.com/releases/v0.1.0/"],
    );
    for (name, manifest) in PLUGINS.into_iter().zip(manifests) {
        check_manifest(out.path(), name, &manifest);
    }
}

fn check_manifest(out: &std::path::Path, name: &str, manifest: &serde_json::Value) {
    let tarball = std::fs::read(out.join(format!("{name}.tar.gz"))).unwrap();
    let sha256: String = Sha256::digest(&tarball)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();

    assert_eq!(manifest["name"], name);
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["spinCompatibility"], ">=2.0");
    assert_eq!(manifest["license"], "Apache-2.0");
    assert!(
        manifest["description"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    assert!(
        manifest["homepage"]
            .as_str()
            .is_some_and(|url| url.starts_with("https://"))
    );
    let packages = manifest["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1);
    let package = &packages[0];
    assert_eq!(package["os"], "linux");
    assert_eq!(
        package["arch"],
        if cfg!(target_arch = "aarch64") {
            "aarch64"
        } else {
            "amd64"
        }
    );
    assert_eq!(
        package["url"],
        format!("https://example.com/releases/v0.1.0/{name}.tar.gz")
    );
    assert_eq!(package["sha256"], sha256);
    let object = manifest.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "description",
            "homepage",
            "license",
            "name",
            "packages",
            "spinCompatibility",
            "version"
        ]
    );
}

#[test]
fn each_tarball_holds_the_executable_under_the_plugin_name() {
    let out = tempfile::tempdir().unwrap();
    let manifests = package(out.path(), &[]);
    for (name, manifest) in PLUGINS.into_iter().zip(manifests) {
        check_tarball(out.path(), name, &manifest);
    }
}

fn check_tarball(out: &std::path::Path, name: &str, manifest: &serde_json::Value) {
    let tarball = out.join(format!("{name}.tar.gz"));
    assert_eq!(
        manifest["packages"][0]["url"],
        format!("file://{}", tarball.canonicalize().unwrap().display())
    );
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&tarball).unwrap(),
    ));
    let mut entries = archive.entries().unwrap();
    let mut entry = entries.next().expect("one entry").unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some(name));
    assert_eq!(entry.header().mode().unwrap(), 0o755);
    let mut contents = Vec::new();
    entry.read_to_end(&mut contents).unwrap();
    assert_eq!(
        contents,
        std::fs::read(env!("CARGO_BIN_EXE_xtask")).unwrap()
    );
    drop(entry);
    assert!(entries.next().is_none(), "nothing else in the tarball");
}
