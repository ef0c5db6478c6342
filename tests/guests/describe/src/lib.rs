//! A test guest for the recorded Spin contract and Spin's trigger options: on each tick it
//! describes what it sees, one line per fact, so a test can check what the host gave it.
//!
//! - `tick <sequence>`;
//! - `var <name>=<value>` for each of the variables `message`, `secret`, `greeting` and
//!   `redis_address` the component has;
//! - `env <NAME>=<value>` for its whole environment, sorted;
//! - `file <path>: <contents>` for every file under `/`, sorted;
//! - `write: ok` or `write: refused`, after trying to create `/written-by-guest.txt`;
//! - with a variable `alloc_mb`, `allocated <n> MiB` after allocating that much.

use spin_trigger_sdk::{timer::Tick, timer_component, variables};
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[timer_component]
fn describe(tick: Tick) {
    println!("tick {}", tick.sequence);
    for name in ["message", "secret", "greeting", "redis_address"] {
        if let Ok(value) = variables::get(name) {
            println!("var {name}={value}");
        }
    }
    let mut environment: Vec<(String, String)> = std::env::vars().collect();
    environment.sort();
    for (name, value) in environment {
        println!("env {name}={value}");
    }
    let mut files = Vec::new();
    files_under(Path::new("/"), &mut files);
    files.sort();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(contents) => println!("file {}: {}", file.display(), contents.trim_end()),
            Err(_) => println!("file {}: unreadable", file.display()),
        }
    }
    match std::fs::write("/written-by-guest.txt", "written") {
        Ok(()) => println!("write: ok"),
        Err(_) => println!("write: refused"),
    }
    if let Some(megabytes) = variables::get("alloc_mb")
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
    {
        let block = vec![1u8; megabytes << 20];
        println!("allocated {} MiB", std::hint::black_box(block).len() >> 20);
    }
}
