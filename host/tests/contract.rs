//! Spin's trigger contract, replayed without a Spin CLI: `fixtures/spin-contract/` holds what
//! Spin 4.0.2 handed its trigger plugins in real `spin up` runs (the locked apps, the arguments
//! and environment of every launch, the files staged in `SPIN_WORKING_DIR`, and the table of
//! the common trigger options `spin up` forwards; its README says which is which). Each test
//! lays a recorded case out again — the app directory, the working directory with the staged
//! files, the locked app behind `SPIN_LOCKED_URL` — and starts the host binary exactly as Spin
//! started the plugin, under the plugin's name, in the app's directory.
//!
//! Then every common trigger option is given as `spin up` forwards it, in plugin mode and on
//! `spin-trigger-host up` alike, and its effect checked: output filtered, log files written or
//! truncated, the state directory moved, the memory cap hit, the cache unused, files writable in
//! a copy, variables read from files, the runtime config applied or a section it does not
//! provide named.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::recorded::{RUNTIME_CONFIG, Recorded, assert_timer_full_ran, fixture_dir, lines_of};
use common::{RedisServer, Run, guest};

#[test]
fn timer_full_under_test_ticks_every_timer_once_with_its_variables_environment_and_files() {
    let recorded = Recorded::new("timer-full");
    let run = recorded.run_timer_plugin(&[], &[]);
    assert_timer_full_ran(&run);
    // `spin up` passed an empty SPIN_LOCAL_APP_DIR from the app's directory: the state
    // directory is `.spin/` there, and component output is logged in its `logs/`.
    let log =
        std::fs::read_to_string(recorded.app().join(".spin/logs/greeter_stdout.txt")).unwrap();
    assert!(
        log.starts_with("tick 0\nvar message=Hello, world\n"),
        "{log}"
    );
}

#[test]
fn timer_full_loads_from_its_lock_as_from_its_spin_toml() {
    let recorded = Recorded::new("timer-full");
    let standalone = recorded.run_up(&[], &[]);
    let plugin = recorded.run_timer_plugin(&[], &[]);
    assert!(standalone.success, "{}", standalone.stderr);
    let sorted = |stdout: &str| stdout.lines().map(str::to_owned).collect::<BTreeSet<_>>();
    assert_eq!(sorted(&standalone.stdout), sorted(&plugin.stdout));
}

#[test]
fn mixed_runs_each_type_in_its_own_plugin_and_answers_launch_metadata() {
    let recorded = Recorded::new("mixed");
    let launches = recorded.launches();
    let server = RedisServer::start();
    let redis_address = [("SPIN_VARIABLE_REDIS_ADDRESS", server.url())];
    let redis_address: Vec<(&str, &str)> = redis_address
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();

    // 1. `--launch-metadata-only`: JSON on stderr, listing the flags this trigger takes.
    let first = &launches[0];
    assert_eq!(first["args"][0], "--launch-metadata-only");
    let metadata = recorded
        .command(first["plugin"].as_str().unwrap(), first, &[])
        .output()
        .unwrap();
    assert!(metadata.status.success());
    let longs = common::launch_metadata_long_flags(&metadata.stderr);
    for expected in ["--test", "--variable", "--quiet", "--runtime-config-file"] {
        assert!(
            longs.iter().any(|long| long == expected),
            "{expected} missing from {longs:?}"
        );
    }

    // 2. `trigger-redis-stream` runs the stream trigger only: every entry is handled and
    // acknowledged, no timer ticks, and the pub/sub channel is left to Spin.
    let mut client = server.client().get_connection().unwrap();
    let ids: BTreeSet<String> = (0..5)
        .map(|index| {
            redis::cmd("XADD")
                .arg("jobs")
                .arg("*")
                .arg("payload")
                .arg(format!("job {index}"))
                .query(&mut client)
                .unwrap()
        })
        .collect();
    let stream = &launches[1];
    assert_eq!(stream["plugin"], "trigger-redis-stream");
    let mut command = recorded.command("trigger-redis-stream", stream, &[]);
    command.envs(redis_address.iter().copied());
    let run = common::run_for(command, Duration::from_millis(1500));
    assert!(run.success, "{}", run.stderr);
    let handled: BTreeSet<String> = redis::cmd("SMEMBERS")
        .arg("handled")
        .query(&mut client)
        .unwrap();
    assert_eq!(handled, ids, "{}", run.stderr);
    // XPENDING's summary starts with the number of entries read and not acknowledged.
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg("jobs")
        .arg("workers")
        .query(&mut client)
        .unwrap();
    assert_eq!(
        pending.first(),
        Some(&redis::Value::Int(0)),
        "every entry acknowledged"
    );
    run.assert_stdout_lacks("[greeter]");
    assert!(
        !run.stderr.contains("subscribed"),
        "the pub/sub trigger is Spin's own: {}",
        run.stderr
    );

    // 3. `trigger-timer` runs the timer only (every 2 s, so within 2.5 s it ticks once).
    let timer = &launches[2];
    assert_eq!(timer["plugin"], "trigger-timer");
    let mut command = recorded.command("trigger-timer", timer, &[]);
    command.envs(redis_address.iter().copied());
    let before: u64 = redis::cmd("XLEN").arg("jobs").query(&mut client).unwrap();
    let run = common::run_for(command, Duration::from_millis(2500));
    assert!(run.success, "{}", run.stderr);
    run.assert_stdout_has("[greeter] tick");
    run.assert_stdout_lacks("[rec]");
    let after: u64 = redis::cmd("XLEN").arg("jobs").query(&mut client).unwrap();
    assert_eq!(before, after);
}

/// Two loopback ports in a row, both free now.
fn free_port_pair() -> u16 {
    loop {
        let port = common::free_port();
        let next = port
            .checked_add(1)
            .filter(|next| std::net::TcpListener::bind(("127.0.0.1", *next)).is_ok());
        if next.is_some() {
            return port;
        }
    }
}

#[test]
fn with_both_plugin_types_each_plugin_serves_metrics_on_its_own_port() {
    // `spin up --metrics-addr A` hands the flag to both of this host's plugins, each a process
    // of its own: the timer plugin serves A, the stream plugin the next port.
    let recorded = Recorded::new("mixed");
    let launches = recorded.launches();
    let server = RedisServer::start();
    let port = free_port_pair();
    let address = format!("127.0.0.1:{port}");
    let mut children = Vec::new();
    for (plugin, launch) in [
        ("trigger-redis-stream", &launches[1]),
        ("trigger-timer", &launches[2]),
    ] {
        let mut command = recorded.command(plugin, launch, &["--metrics-addr", &address]);
        command
            .env("SPIN_VARIABLE_REDIS_ADDRESS", server.url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        children.push(command.spawn().unwrap());
    }
    let scrape = |port: u16| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((200, body)) = common::http_get(port, "/metrics") {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nothing serves port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let timer = scrape(port);
    let stream = scrape(port + 1);
    for mut child in children {
        // SAFETY: signalling a child this test started and still owns.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert!(child.wait().unwrap().success());
    }
    assert!(timer.contains("trigger_type=\"timer\""), "{timer}");
    assert!(!timer.contains("trigger_type=\"redis-stream\""), "{timer}");
    assert!(stream.contains("trigger_type=\"redis-stream\""), "{stream}");
    assert!(!stream.contains("trigger_type=\"timer\""), "{stream}");
}

/// Spin's common trigger options, as the recorded table lists them (the first column's long
/// names).
fn recorded_common_options() -> Vec<String> {
    let readme = std::fs::read_to_string(fixture_dir("README.md")).unwrap();
    let table_start = readme
        .find("| option | value |")
        .expect("the options table");
    readme[table_start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            line.split('|')
                .nth(1)?
                .split('`')
                .find(|part| part.starts_with("--"))
                .map(str::to_owned)
        })
        .collect()
}

/// Each option with a value that exercises it, inside `dir`.
fn option_arguments(option: &str, dir: &Path) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    let value = match option {
        "--log-dir" => Some(path("logs")),
        "--cache" => {
            let file = dir.join("cache.toml");
            std::fs::write(
                &file,
                format!(
                    "[cache]\nenabled = true\ndirectory = \"{}\"\n",
                    path("wasmtime-cache")
                ),
            )
            .unwrap();
            Some(file.display().to_string())
        }
        "--follow" => Some("greeter".to_owned()),
        "--runtime-config-file" => {
            let file = dir.join("runtime-config.toml");
            std::fs::write(
                &file,
                format!("max_instance_memory = 134217728\n{RUNTIME_CONFIG}"),
            )
            .unwrap();
            Some(file.display().to_string())
        }
        "--state-dir" => Some(path("state")),
        "--key-value" => Some("seen=yes".to_owned()),
        "--sqlite" => Some("CREATE TABLE IF NOT EXISTS seen (id INTEGER)".to_owned()),
        "--max-instance-memory" => Some("134217728".to_owned()),
        "--variable" => {
            let file = dir.join("vars.json");
            std::fs::write(&file, r#"{"token": "from-json"}"#).unwrap();
            Some(format!("@{}", file.display()))
        }
        _ => None,
    };
    std::iter::once(option.to_owned()).chain(value).collect()
}

#[test]
fn every_recorded_common_option_is_taken_in_plugin_mode_and_on_up_alike() {
    let options = recorded_common_options();
    assert_eq!(options.len(), 16, "{options:?}");
    let recorded = Recorded::new("timer-full");
    let scratch = tempfile::tempdir().unwrap();
    for option in &options {
        let args = option_arguments(option, scratch.path());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let plugin = recorded.run_timer_plugin(&args, &[]);
        let standalone = recorded.run_up(&args, &[]);
        for (mode, run) in [("plugin", &plugin), ("up", &standalone)] {
            assert!(
                !run.stderr.contains("unexpected argument") && !run.stderr.contains("Usage:"),
                "{option} in {mode} mode: {}",
                run.stderr
            );
        }
        assert!(plugin.success, "{option} (plugin): {}", plugin.stderr);
        assert!(standalone.success, "{option} (up): {}", standalone.stderr);
    }
}

#[test]
fn quiet_and_follow_choose_whose_output_reaches_the_terminal_while_log_files_keep_all() {
    let recorded = Recorded::new("timer-full");
    let logs = recorded.root.path().join("logs");
    let log_dir = logs.display().to_string();
    let followed = recorded.run_timer_plugin(&["--follow", "counter", "-L", &log_dir], &[]);
    assert!(followed.success, "{}", followed.stderr);
    assert_eq!(lines_of(&followed.stdout, "counter").len(), 2);
    assert!(
        lines_of(&followed.stdout, "greeter").is_empty(),
        "{}",
        followed.stdout
    );
    let greeter_log = std::fs::read_to_string(logs.join("greeter_stdout.txt")).unwrap();
    assert!(greeter_log.contains("var secret=abc123\n"), "{greeter_log}");

    for quiet in ["--quiet", "-q"] {
        let run = recorded.run_timer_plugin(&[quiet], &[]);
        assert!(run.success, "{}", run.stderr);
        assert!(!run.stdout.contains('['), "{quiet}: {}", run.stdout);
    }
    let run = recorded.run_up(&["--quiet"], &[]);
    assert!(run.success && !run.stdout.contains('['), "{}", run.stdout);

    let unknown = recorded.run_timer_plugin(&["--follow", "nobody"], &[]);
    assert!(!unknown.success);
    unknown.assert_stderr_has("--follow names no component of this app: nobody; its components are: counter, greeter, timer-trigger1-component");
}

#[test]
fn log_files_go_where_log_dir_state_dir_and_the_runtime_config_say_and_truncate_on_request() {
    let recorded = Recorded::new("timer-full");
    let root = recorded.root.path();
    let logs = root.join("logs");
    let log_dir = logs.display().to_string();

    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("greeter_stdout.txt"), "from before\n").unwrap();
    assert!(
        recorded
            .run_timer_plugin(&["--log-dir", &log_dir], &[])
            .success
    );
    let appended = std::fs::read_to_string(logs.join("greeter_stdout.txt")).unwrap();
    assert!(appended.starts_with("from before\ntick 0\n"), "{appended}");
    assert!(
        recorded
            .run_timer_plugin(&["--log-dir", &log_dir, "--truncate-logs"], &[])
            .success
    );
    let truncated = std::fs::read_to_string(logs.join("greeter_stdout.txt")).unwrap();
    assert!(truncated.starts_with("tick 0\n"), "{truncated}");
    assert!(logs.join("counter_stderr.txt").is_file());

    // SPIN_LOG_DIR, as Spin reads it; and the standalone host writes the same files.
    let from_env = root.join("env-logs");
    let from_env_text = from_env.display().to_string();
    assert!(
        recorded
            .run_up(&[], &[("SPIN_LOG_DIR", &from_env_text)])
            .success
    );
    assert!(from_env.join("counter_stdout.txt").is_file());

    // --state-dir moves the default log directory to its `logs/`.
    let state = root.join("state");
    let state_text = state.display().to_string();
    assert!(
        recorded
            .run_timer_plugin(&["--state-dir", &state_text], &[])
            .success
    );
    assert!(state.join("logs/greeter_stdout.txt").is_file());

    // The runtime config's log_dir, below --log-dir.
    let config = root.join("runtime-config.toml");
    let configured = root.join("configured-logs");
    std::fs::write(
        &config,
        format!("log_dir = \"{}\"\n{RUNTIME_CONFIG}", configured.display()),
    )
    .unwrap();
    let config_text = config.display().to_string();
    assert!(
        recorded
            .run_timer_plugin(&[], &[("RUNTIME_CONFIG_FILE", &config_text)])
            .success
    );
    assert!(configured.join("greeter_stdout.txt").is_file());

    // An empty --log-dir writes no files at all.
    let fresh = Recorded::new("timer-full");
    assert!(fresh.run_timer_plugin(&["--log-dir", ""], &[]).success);
    assert!(!fresh.app().join(".spin/logs").exists());
}

#[test]
fn variables_come_from_files_as_spin_reads_them() {
    let recorded = Recorded::new("timer-full");
    let root = recorded.root.path();
    let token = root.join("token.txt");
    std::fs::write(&token, "from-a-file").unwrap();
    let json = root.join("vars.json");
    std::fs::write(&json, r#"{"greeting": "Hi", "token": "from-json"}"#).unwrap();
    let toml = root.join("vars.toml");
    std::fs::write(&toml, "greeting = \"Howdy\"\n").unwrap();

    let from_file = format!("token=@{}", token.display());
    let run = recorded.run_timer_plugin(&["--variable", &from_file], &[]);
    assert!(run.success, "{}", run.stderr);
    assert!(lines_of(&run.stdout, "greeter").contains(&"var secret=from-a-file".to_owned()));

    // The recorded `--variable token=abc123` comes first; the files after it win, the last
    // file last.
    let json_arg = format!("@{}", json.display());
    let toml_arg = format!("@{}", toml.display());
    let run = recorded.run_timer_plugin(&["--variable", &json_arg, "--variable", &toml_arg], &[]);
    assert!(run.success, "{}", run.stderr);
    let greeter = lines_of(&run.stdout, "greeter");
    assert!(
        greeter.contains(&"var secret=from-json".to_owned()),
        "{greeter:?}"
    );
    assert!(
        greeter.contains(&"var message=Howdy, world".to_owned()),
        "{greeter:?}"
    );

    // The runtime config's static provider sits below --variable.
    let config = root.join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "{RUNTIME_CONFIG}[[variables_provider]]\ntype = \"static\"\nvalues = {{ greeting = \"Static\" }}\n"
        ),
    )
    .unwrap();
    let config_text = config.display().to_string();
    let run = recorded.run_timer_plugin(&["--runtime-config-file", &config_text], &[]);
    assert!(run.success, "{}", run.stderr);
    assert!(lines_of(&run.stdout, "greeter").contains(&"var message=Static, world".to_owned()));

    let bad = recorded.run_timer_plugin(&["--variable", "@vars.yaml"], &[]);
    assert!(!bad.success);
    assert!(
        bad.stderr
            .contains("a variables file must end in .json or .toml"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_runtime_config_section_this_host_does_not_provide_is_named() {
    let recorded = Recorded::new("timer-full");
    let config = recorded.root.path().join("runtime-config-llm.toml");
    std::fs::write(
        &config,
        format!(
            "{RUNTIME_CONFIG}[llm_compute]\ntype = \"remote_http\"\nurl = \"http://127.0.0.1\"\n"
        ),
    )
    .unwrap();
    let config_text = config.display().to_string();
    for run in [
        recorded.run_timer_plugin(&["--runtime-config-file", &config_text], &[]),
        recorded.run_up(&["--runtime-config-file", &config_text], &[]),
    ] {
        assert!(!run.success);
        assert!(
            run.stderr
                .contains("[llm_compute]: this host does not provide AI models yet"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn transient_writes_go_to_a_copy_of_the_files() {
    let recorded = Recorded::new("timer-full");
    let run = recorded.run_timer_plugin(&["--allow-transient-write"], &[]);
    assert!(run.success, "{}", run.stderr);
    assert!(lines_of(&run.stdout, "greeter").contains(&"write: ok".to_owned()));
    // Not into Spin's staged files, nor the app's.
    let staged = recorded.work().join("assets/greeter");
    assert!(staged.join("assets/a.txt").is_file());
    assert!(!staged.join("written-by-guest.txt").exists());
    let standalone = recorded.run_up(&["--allow-transient-write"], &[]);
    assert!(lines_of(&standalone.stdout, "greeter").contains(&"write: ok".to_owned()));
    assert!(!recorded.app().join("written-by-guest.txt").exists());
}

#[test]
fn the_compile_cache_follows_disable_cache_and_a_wasmtime_cache_file() {
    // As recorded, the plugin caches compiled components in Spin's working directory.
    let recorded = Recorded::new("timer-full");
    assert!(recorded.run_timer_plugin(&[], &[]).success);
    assert!(recorded.work().join("compiled-components").is_dir());

    for (args, env) in [
        (&["--disable-cache"][..], &[][..]),
        (&[][..], &[("DISABLE_WASMTIME_CACHE", "true")][..]),
    ] {
        let fresh = Recorded::new("timer-full");
        let run = fresh.run_timer_plugin(args, env);
        assert!(run.success, "{}", run.stderr);
        assert!(!fresh.work().join("compiled-components").exists());
    }

    let fresh = Recorded::new("timer-full");
    let directory = fresh.root.path().join("wasmtime-cache");
    let config = fresh.root.path().join("cache.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\nenabled = true\ndirectory = \"{}\"\n",
            directory.display()
        ),
    )
    .unwrap();
    let config_text = config.display().to_string();
    assert!(
        fresh
            .run_timer_plugin(&["--cache", &config_text], &[])
            .success
    );
    assert!(!fresh.work().join("compiled-components").exists());
    let cached = std::fs::read_dir(&directory).unwrap().count();
    assert_eq!(
        cached, 1,
        "one compiled component: every .wasm is the same guest"
    );
}

/// The size of the one compiled component in `dir`.
fn compiled_size(dir: &Path) -> u64 {
    let entry = std::fs::read_dir(dir).unwrap().next().unwrap().unwrap();
    entry.metadata().unwrap().len()
}

#[test]
fn debug_info_compiles_guests_with_native_debug_info() {
    let plain = Recorded::new("timer-full");
    let debug = Recorded::new("timer-full");
    assert!(plain.run_timer_plugin(&[], &[]).success);
    let run = debug.run_timer_plugin(&["--debug-info"], &[]);
    assert!(run.success, "{}", run.stderr);
    let (plain_size, debug_size) = (
        compiled_size(&plain.work().join("compiled-components")),
        compiled_size(&debug.work().join("compiled-components")),
    );
    assert!(
        debug_size > plain_size,
        "with DWARF for the guest the compiled component grows: {plain_size} -> {debug_size}"
    );
}

/// An app whose one timer allocates `megabytes` on its first tick.
fn allocating_app(megabytes: u32) -> common::AppDir {
    common::TestApp::new("alloc")
        .trigger("timer", "alloc", "interval_secs = 1")
        .component(
            "alloc",
            &guest("describe-guest"),
            &format!("variables = {{ alloc_mb = \"{megabytes}\" }}"),
        )
        .write()
}

#[test]
fn max_instance_memory_caps_each_instance_from_the_flag_the_environment_or_the_runtime_config() {
    let app = allocating_app(48);
    let manifest = app.manifest();
    let up = |args: &[&str], env: &[(&str, &str)]| -> Run {
        let mut all = vec!["up", "--once", "-f", &manifest];
        all.extend_from_slice(args);
        common::run_host_with_env(&all, env)
    };
    let roomy = up(&["--max-instance-memory", "134217728"], &[]);
    assert!(roomy.success, "{}", roomy.stderr);
    roomy.assert_stdout_has("allocated 48 MiB");

    let config = app.path().join("runtime-config.toml");
    std::fs::write(&config, "max_instance_memory = 33554432\n").unwrap();
    let config_text = config.display().to_string();
    for (args, env) in [
        (&["--max-instance-memory", "33554432"][..], &[][..]),
        (&[][..], &[("SPIN_MAX_INSTANCE_MEMORY", "33554432")][..]),
        (&["--runtime-config-file", &config_text][..], &[][..]),
    ] {
        let capped = up(args, env);
        assert!(!capped.success, "{args:?} {env:?}: {}", capped.stdout);
        capped.assert_stdout_lacks("allocated");
        capped.assert_stderr_has("`alloc`");
    }
}

#[test]
fn disable_pooling_leaves_no_pool_of_reserved_memory() {
    let app = allocating_app(1);
    let manifest = app.manifest();
    let virtual_size = |extra: &[&str]| {
        let mut args = vec!["up", "-f", &manifest];
        args.extend_from_slice(extra);
        let host = common::HostProcess::start(&args, &[]);
        host.wait_until_ready();
        let size = host.vm_size_kib();
        host.stop();
        size
    };
    let pooled = virtual_size(&[]);
    let unpooled = virtual_size(&["--disable-pooling"]);
    // The pool reserves address space for every slot's memory up front (never resident).
    assert!(
        pooled > unpooled + (16 << 20),
        "pooled {pooled} KiB, unpooled {unpooled} KiB"
    );
}

#[test]
fn key_value_and_sqlite_options_fill_the_default_stores_even_where_no_component_lists_them() {
    let app = allocating_app(1);
    let manifest = app.manifest();
    let run = common::run_host(&[
        "up",
        "--once",
        "-f",
        &manifest,
        "--key-value",
        "seen=yes",
        "--sqlite",
        "CREATE TABLE migrated (id INTEGER)",
        "--experimental-wasi-otel",
    ]);
    assert!(run.success, "{}", run.stderr);
    let state = app.path().join(".spin");
    let key_value = rusqlite::Connection::open(state.join("sqlite_key_value.db")).unwrap();
    let seen: Vec<u8> = key_value
        .query_row(
            "SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'seen'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(seen, b"yes");
    let database = rusqlite::Connection::open(state.join("sqlite_db.db")).unwrap();
    let tables: i64 = database
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'migrated'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

/// The locked app's `metadata.key_value_stores` and `metadata.databases` decide what a
/// component may open: the greeter's `cache` store needs the runtime config, and its stores
/// and database are opened where Spin keeps them before anything runs.
#[test]
fn the_locked_apps_stores_and_databases_are_provided_where_spin_keeps_them() {
    let recorded = Recorded::new("timer-full");
    let empty = recorded.root.path().join("empty-runtime-config.toml");
    std::fs::write(&empty, "").unwrap();
    let run = recorded.run_timer_plugin(&["--runtime-config-file", empty.to_str().unwrap()], &[]);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("component `greeter` lists key-value store `cache` in key_value_stores"),
        "{}",
        run.stderr
    );

    let run = recorded.run_timer_plugin(&[], &[]);
    assert!(run.success, "{}", run.stderr);
    let state = recorded.app().join(".spin");
    assert!(state.join("sqlite_key_value.db").exists());
    assert!(state.join("sqlite_db.db").exists());
    // A relative `path` is taken from the runtime config file's directory.
    assert!(recorded.root.path().join("cache.db").exists());
}

/// Spin 4.1 (`4.1.0-pre0/`, read from Spin's source: see the fixtures' README) locks an app
/// whose HTTP trigger has middleware with `must_understand = ["component_host_requirements"]`
/// and the middleware on the HTTP component. The plugin gets that same lock: it runs its own
/// triggers and leaves the HTTP component, middleware and all, to Spin.
#[test]
fn spin_4_1_an_http_trigger_with_middleware_beside_a_timer_leaves_the_timer_running() {
    let recorded = Recorded::new("4.1.0-pre0/http-middleware");
    let run = recorded.run_timer_plugin(&[], &[]);
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        lines_of(&run.stdout, "tick").first().map(String::as_str),
        Some("tick 0"),
        "{}",
        run.stdout
    );
    assert!(lines_of(&run.stdout, "web").is_empty(), "{}", run.stdout);
}

/// A timer trigger with middleware: `spin up` would run it without what the middleware guards,
/// so the plugin refuses it, naming the component and the requirement, as Spin's own triggers
/// refuse a host requirement they lack; `spin registry push` asks the plugin to precompose it,
/// and gets a clear error (and nothing on stdout) until this host composes middleware.
#[test]
fn spin_4_1_a_timer_with_middleware_is_refused_at_start_and_at_precompose() {
    let recorded = Recorded::new("4.1.0-pre0/timer-middleware");
    let launches = recorded.launches();
    let up: Run = recorded
        .command("trigger-timer", &launches[0], &[])
        .output()
        .unwrap()
        .into();
    assert!(!up.success);
    up.assert_stderr_has(
        "components[0].host_requirements: component `guarded` requires what this host does not \
         support: middleware",
    );
    assert!(up.stdout.is_empty(), "{}", up.stdout);

    let push = recorded
        .command("trigger-timer", &launches[1], &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&push.stderr);
    assert!(!push.status.success(), "{stderr}");
    assert!(
        push.stdout.is_empty(),
        "{} bytes on stdout",
        push.stdout.len()
    );
    assert!(
        stderr.contains(
            "cannot precompose component `guarded`: its trigger dependencies (middleware) are \
             not composed by this host yet"
        ),
        "{stderr}"
    );
}

/// `--precompose-only` for a component without trigger dependencies writes its `.wasm`
/// unchanged, as Spin's own triggers do: under Spin 4.1's lock and under 4.0.2's recorded one
/// alike. Without an id, or with one the lock lacks, it says so.
#[test]
fn precompose_writes_a_component_without_trigger_dependencies_unchanged() {
    let precompose = |recorded: &Recorded, launch: &serde_json::Value, args: &[&str]| {
        let mut command = recorded.command("trigger-timer", launch, &[]);
        command.args(["--precompose-only"]).args(args);
        command.output().unwrap()
    };
    for (case, component, wasm) in [
        ("4.1.0-pre0/timer-middleware", "plain", "plain.wasm"),
        ("timer-full", "counter", "counter.wasm"),
    ] {
        let recorded = Recorded::new(case);
        let launch = &recorded.launches()[0];
        let output = precompose(&recorded, launch, &["--precompose-component-id", component]);
        assert!(
            output.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let source = std::fs::read(recorded.app().join(wasm)).unwrap();
        assert!(
            output.stdout == source,
            "{case}: {} bytes written, the source has {}",
            output.stdout.len(),
            source.len()
        );

        let missing = precompose(&recorded, launch, &[]);
        assert!(!missing.status.success());
        let stderr = String::from_utf8_lossy(&missing.stderr);
        assert!(
            stderr.contains("got --precompose-only but no --precompose-component-id"),
            "{stderr}"
        );
        let unknown = precompose(&recorded, launch, &["--precompose-component-id", "nope"]);
        assert!(!unknown.status.success());
        let stderr = String::from_utf8_lossy(&unknown.stderr);
        assert!(
            stderr.contains("component `nope` does not exist in the locked app"),
            "{stderr}"
        );
    }
}
