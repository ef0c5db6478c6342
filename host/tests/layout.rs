//! The host's module layout: its import arrows run one way. Every `crate::` path in
//! `host/src` is an arrow from the top-level module it is written in (a module's children count
//! as the module) to the top-level module it names; no circle may form among them. A circle
//! means two modules each need the other, and that a reader cannot take in one before the other.
//! The crate documentation's "Layout" section lists every module after those it imports, which
//! the second check holds it to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading host/src") {
        let path = entry.expect("reading host/src").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file belongs to (`engine.rs`, `host_api/state.rs` → `host_api`);
/// `None` for the crate root and the binary.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The code of a file without comments, so that doc links are not taken for imports.
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment after each `crate::` in `code`, and each name in a `crate::{a, b::c}`
/// group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (index, _) in code.match_indices("crate::") {
        let rest = &code[index + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(body.split(',').map(|item| {
                item.trim()
                    .split("::")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            }));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names.retain(|name| !name.is_empty());
    names
}

/// Names the crate root re-exports (`pub use engine::EngineOptions;`), to the module they
/// come from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut reexports = BTreeMap::new();
    for line in code_of(lib).lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_end_matches(';');
        let Some((module, items)) = path.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.rsplit("::").next().unwrap_or("").trim();
            reexports.insert(name.to_owned(), module.to_owned());
        }
    }
    reexports
}

/// The import arrows between top-level modules.
fn arrows(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|file| top_module(src, file))
        .collect();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("reading lib.rs");
    let reexports = root_reexports(&lib);
    let mut arrows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = top_module(src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("reading a source file");
        for name in crate_paths(&code_of(&text)) {
            let to = if modules.contains(&name) {
                name
            } else if let Some(module) = reexports.get(&name) {
                module.clone()
            } else {
                continue;
            };
            if to != from {
                arrows.entry(from.clone()).or_default().insert(to);
            }
        }
        arrows.entry(from).or_default();
    }
    arrows
}

/// A circle through `start`, if there is one: the modules along it, `start` first and last.
fn circle_through(start: &str, arrows: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first, remembering how each module was reached.
    let mut reached_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut stack = vec![start];
    while let Some(module) = stack.pop() {
        for next in arrows.get(module).into_iter().flatten() {
            if next == start {
                let mut circle = vec![module.to_owned()];
                let mut at = module;
                while at != start {
                    at = reached_from[at];
                    circle.push(at.to_owned());
                }
                circle.reverse();
                circle.push(start.to_owned());
                return Some(circle);
            }
            if !reached_from.contains_key(next.as_str()) {
                reached_from.insert(next, module);
                stack.push(next);
            }
        }
    }
    None
}

#[test]
fn host_modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let arrows = arrows(&src);
    assert!(
        arrows.len() > 10,
        "found too few modules in {}: {arrows:?}",
        src.display()
    );
    let circles: Vec<String> = arrows
        .keys()
        .filter_map(|module| circle_through(module, &arrows))
        .map(|circle| circle.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "host/src modules import each other in a circle:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_check_finds_a_circle_and_reads_groups_and_reexports() {
    let code =
        "use crate::{engine::Engine, limits};\nlet x = crate::App::default();\n// crate::cli";
    assert_eq!(crate_paths(&code_of(code)), ["engine", "limits", "App"]);
    let reexports = root_reexports("pub use app::App;\npub use engine::{Engine, EngineOptions};\n");
    assert_eq!(reexports["App"], "app");
    assert_eq!(reexports["EngineOptions"], "engine");
    let arrows = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(circle_through("a", &arrows).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(circle_through("d", &arrows), None);
}

/// The modules in the order the crate documentation's "Layout" section lists them.
fn documented_order(lib: &str) -> Vec<String> {
    let section = lib
        .lines()
        .skip_while(|line| !line.starts_with("//! # Layout"))
        .take_while(|line| line.starts_with("//!"));
    let mut order = Vec::new();
    for line in section {
        for (index, part) in line.split('`').enumerate() {
            let is_name =
                !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if index % 2 == 1 && is_name && !order.iter().any(|known| known == part) {
                order.push(part.to_owned());
            }
        }
    }
    order
}

#[test]
fn the_documented_layout_lists_every_module_after_those_it_imports() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("reading lib.rs");
    let order = documented_order(&lib);
    let arrows = arrows(&src);
    let unlisted: Vec<&String> = arrows
        .keys()
        .filter(|module| !order.contains(module))
        .collect();
    assert!(
        unlisted.is_empty(),
        "modules the crate docs' Layout does not list: {unlisted:?}"
    );
    let rank = |module: &str| order.iter().position(|known| known == module);
    let upward: Vec<String> = arrows
        .iter()
        .flat_map(|(from, targets)| targets.iter().map(move |to| (from, to)))
        .filter(|(from, to)| rank(to) > rank(from))
        .map(|(from, to)| format!("{from} → {to}"))
        .collect();
    assert!(
        upward.is_empty(),
        "modules importing one listed after them in the crate docs' Layout: {upward:?}"
    );
}
