//! Spin's recorded trigger contract (`fixtures/spin-contract/`, what Spin 4.0.2 handed its
//! trigger plugins in real `spin up` runs), laid out again so a host binary can be started exactly
//! as Spin started the plugin: the contract suite runs the workspace's build, the release test the
//! binary unpacked from a plugin tarball.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Run, guest};

/// The recorded data, copied into the repository.
pub fn fixture_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/spin-contract")
        .join(case)
}

/// The guest standing in for each `.wasm` a recorded app names.
pub fn guest_for(wasm: &str) -> String {
    match wasm {
        "print.wasm" => guest("redis-print-guest"),
        "rec.wasm" => guest("stream-record-guest"),
        _ => guest("describe-guest"),
    }
}

/// The runtime config the recorded apps run with: `timer-full`'s greeter lists a `cache`
/// key-value store, which (on Spin as here) only a runtime config provides.
pub const RUNTIME_CONFIG: &str = "[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n";

/// A recorded case laid out in a temp dir: `app/` (Spin's `@APP@`), `work/` (`@WORK@`), and the
/// plugins' executables in `bin/` (by default the host binary linked under each plugin's name); `runtime-config.toml` in the root,
/// passed as `RUNTIME_CONFIG_FILE` (a user's `--runtime-config-file` wins over it).
pub struct Recorded {
    pub root: tempfile::TempDir,
    case: &'static str,
}

impl Recorded {
    /// The case run by this workspace's host binary under each plugin's name.
    pub fn new(case: &'static str) -> Self {
        let recorded = Recorded::without_plugins(case);
        let bin = recorded.root.path().join("bin");
        for plugin in ["trigger-timer", "trigger-redis-stream"] {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_spin-trigger-host"), bin.join(plugin))
                .unwrap();
        }
        recorded
    }

    /// The case run by the plugin executables `plugins` names (plugin name, executable), as a
    /// plugin installer unpacked them.
    pub fn with_plugins(case: &'static str, plugins: &[(&str, &Path)]) -> Self {
        let recorded = Recorded::without_plugins(case);
        let bin = recorded.root.path().join("bin");
        for (plugin, executable) in plugins {
            std::fs::copy(executable, bin.join(plugin)).unwrap();
        }
        recorded
    }

    fn without_plugins(case: &'static str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let recorded = Recorded { root, case };
        let fixture = fixture_dir(case);
        let app = recorded.app();
        copy_tree(&fixture.join("app"), &app);
        std::fs::create_dir_all(&app).unwrap();
        let manifest = std::fs::read_to_string(fixture.join("spin.toml")).unwrap();
        std::fs::write(app.join("spin.toml"), &manifest).unwrap();
        for line in manifest.lines() {
            if let Some(wasm) = line
                .trim()
                .strip_prefix("source = \"")
                .or_else(|| line.split("{ source = \"").nth(1))
                .and_then(|rest| rest.split('"').next())
                .filter(|source| source.ends_with(".wasm"))
            {
                std::fs::copy(guest_for(wasm), app.join(wasm)).unwrap();
            }
        }
        let work = recorded.work();
        std::fs::create_dir_all(&work).unwrap();
        let lock = recorded.fill(&std::fs::read_to_string(fixture.join("spin.lock.json")).unwrap());
        std::fs::write(work.join("spin.lock"), lock).unwrap();
        recorded.stage_working_dir_files();
        std::fs::write(recorded.runtime_config(), RUNTIME_CONFIG).unwrap();
        std::fs::create_dir_all(recorded.root.path().join("bin")).unwrap();
        recorded
    }

    pub fn app(&self) -> PathBuf {
        self.root.path().join("app")
    }

    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    pub fn runtime_config(&self) -> PathBuf {
        self.root.path().join("runtime-config.toml")
    }

    /// The recorded text with this layout's paths for Spin's placeholders.
    pub fn fill(&self, text: &str) -> String {
        text.replace("@APP@", &self.app().display().to_string())
            .replace("@WORK@", &self.work().display().to_string())
            .replace(
                "@SPIN_DATA_DIR@",
                &self.root.path().join("data").display().to_string(),
            )
            .replace("@SPIN@", "/usr/local/bin/spin")
    }

    /// What Spin staged under `SPIN_WORKING_DIR`, as `working-dir-files` lists it: each
    /// component's files under `assets/<component>/<guest path>`, copied from the app directory
    /// as the manifest's `files` place them (`static/` appears at `/www`).
    pub fn stage_working_dir_files(&self) {
        let Ok(listing) = std::fs::read_to_string(fixture_dir(self.case).join("working-dir-files"))
        else {
            return;
        };
        for line in listing.lines() {
            let Some(staged) = line.strip_prefix("./assets/") else {
                continue;
            };
            let (_component, guest_path) = staged.split_once('/').unwrap();
            let source = match guest_path.strip_prefix("www/") {
                Some(rest) => self.app().join("static").join(rest),
                None => self.app().join(guest_path),
            };
            let target = self.work().join("assets").join(staged);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&source, &target)
                .unwrap_or_else(|error| panic!("staging {}: {error}", source.display()));
        }
    }

    /// A recorded launch (`launch.json` has one, or a list under `launches`).
    pub fn launches(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(fixture_dir(self.case).join("launch.json")).unwrap();
        let launch: serde_json::Value = serde_json::from_str(&self.fill(&text)).unwrap();
        match launch.get("launches") {
            Some(launches) => launches.as_array().unwrap().clone(),
            None => vec![launch],
        }
    }

    /// The host started as Spin started `plugin` in `launch`, with `extra` arguments after the
    /// recorded ones (as `spin up` appends what the user passed).
    pub fn command(&self, plugin: &str, launch: &serde_json::Value, extra: &[&str]) -> Command {
        let mut command = Command::new(self.root.path().join("bin").join(plugin));
        command
            .current_dir(self.app())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "spin_trigger_host=info")
            .env("RUNTIME_CONFIG_FILE", self.runtime_config())
            .stdin(std::process::Stdio::null());
        for arg in launch["args"].as_array().unwrap() {
            command.arg(arg.as_str().unwrap());
        }
        command.args(extra);
        if let Some(env) = launch["env"].as_object() {
            for (name, value) in env {
                command.env(name, value.as_str().unwrap());
            }
        }
        command
    }

    /// The timer plugin as `spin up --test` launched it, plus `extra` arguments and environment.
    pub fn run_timer_plugin(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let launch = &self.launches()[0];
        self.command("trigger-timer", launch, extra)
            .envs(env.iter().copied())
            .output()
            .unwrap()
            .into()
    }

    /// The same app on `spin-trigger-host up --once`, with the same extra arguments.
    pub fn run_up(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let manifest = self.app().join("spin.toml").display().to_string();
        Command::new(env!("CARGO_BIN_EXE_spin-trigger-host"))
            .current_dir(self.app())
            .args([
                "up",
                "--once",
                "-f",
                &manifest,
                "--variable",
                "token=abc123",
            ])
            .args(extra)
            .env("RUNTIME_CONFIG_FILE", self.runtime_config())
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
            .into()
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).unwrap();
    for entry in entries {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The lines of `stdout` a component printed, without its prefix.
pub fn lines_of(stdout: &str, component: &str) -> Vec<String> {
    let prefix = format!("[{component}] ");
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

/// What `timer-full` under `spin up --test` must print: every timer ticks once; the greeter sees
/// its variables (the secret from `--variable`), its environment and its files at `/` and `/www`
/// (without the excluded `assets/skip.log`), read-only; a component without variables,
/// environment or files sees none, and the inline component runs under the id Spin generated
/// for it.
pub fn assert_timer_full_ran(run: &Run) {
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        lines_of(&run.stdout, "greeter"),
        [
            "tick 0",
            "var message=Hello, world",
            "var secret=abc123",
            "env LEVEL=3",
            "env MODE=test",
            "file /assets/a.txt: hi",
            "file /assets/sub/b.txt: x",
            "file /www/index.html: s",
            "write: refused",
        ],
        "the greeter's view: {}",
        run.stderr
    );
    for component in ["counter", "timer-trigger1-component"] {
        assert_eq!(
            lines_of(&run.stdout, component),
            ["tick 0", "write: refused"],
            "{component}"
        );
    }
}
