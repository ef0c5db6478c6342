//! Property tests of the two loaders, on stable Rust: the manifest (`spin.toml`) and the locked
//! app (`SPIN_LOCKED_URL`) loaders take every manifest and locked app the tests use as seeds,
//! mutate them (bytes deleted, inserted, duplicated, values swapped for others), and must return
//! an app or an error that names the file — never panic.
//!
//! A short run is part of `cargo test` (2,000 cases per loader, or `PROPTEST_CASES`); a long run:
//! `PROPTEST_CASES=200000 cargo test --release -p spin-trigger-host --test fuzz_loaders`.
//! A failing input is shrunk and saved to `tests/fuzz_loaders.proptest-regressions`, which is
//! committed, so it is tried first on every later run: each crash found becomes a test.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use spin_trigger_host::{locked_app, manifest};

const MANIFEST_SEEDS: &[&str] = &[
    include_str!("fixtures/spin-timer-example.toml"),
    include_str!("fixtures/locked/both.spin.toml"),
    include_str!("fixtures/locked/redis.spin.toml"),
    include_str!("fixtures/locked/streams.spin.toml"),
    include_str!("fixtures/locked/timer.spin.toml"),
    include_str!("../../examples/timer-hello/spin.toml"),
    include_str!("../../examples/redis-echo/spin.toml"),
    include_str!("../../templates/redis-component-rust/content/spin.toml"),
    include_str!("../../templates/timer-rust/content/spin.toml"),
];

const LOCKED_SEEDS: &[&str] = &[
    include_str!("fixtures/locked/both.lock.json"),
    include_str!("fixtures/locked/redis.lock.json"),
    include_str!("fixtures/locked/streams.lock.json"),
    include_str!("fixtures/locked/timer.lock.json"),
];

/// Values a mutation may put in place of a token: other types, edge numbers, templates,
/// durations, sizes and text that is not UTF-8-safe to slice.
const REPLACEMENTS: &[&str] = &[
    "0",
    "-1",
    "1e309",
    "18446744073709551616",
    "\"\"",
    "\" \"",
    "true",
    "[]",
    "{}",
    "[[]]",
    "\"{{\"",
    "\"{{ x }}\"",
    "\"{{ a-b }}\"",
    "\"0ms\"",
    "\"1ns\"",
    "\"99999999999999s\"",
    "\"1KiB\"",
    "\"18446744073709551615GiB\"",
    "\"é\"",
    "\"\\u0000\"",
    "\"../..\"",
    "\"file:///\"",
    "\"redis://\"",
    "\"rediss://u:p@h:0\"",
    "nan",
    "inf",
    "null",
    ",",
    "=",
    "[trigger.x]",
    "[[trigger.redis-stream]]",
    "[application.trigger.timer]",
    "\n",
    "#",
];

/// One edit: at a position (a fraction of the text), of a kind, with some text.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: u16, len: u8 },
    Insert { at: u16, text: String },
    Replace { at: u16, len: u8, with: usize },
    DuplicateLine { at: u16 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<u16>(), "[ -~\n]{0,12}").prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<u16>(), 0u8..24, 0..REPLACEMENTS.len()).prop_map(|(at, len, with)| Edit::Replace {
            at,
            len,
            with
        }),
        any::<u16>().prop_map(|at| Edit::DuplicateLine { at }),
    ]
}

/// The byte offset `at` (out of `u16::MAX`) points to, moved back to a char boundary.
fn offset(text: &str, at: u16) -> usize {
    let mut offset = text.len() * usize::from(at) / usize::from(u16::MAX);
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn end_of(text: &str, start: usize, len: u8) -> usize {
    let mut end = (start + usize::from(len)).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut text = seed.to_owned();
    for edit in edits {
        match edit {
            Edit::Delete { at, len } => {
                let start = offset(&text, *at);
                let end = end_of(&text, start, *len);
                text.replace_range(start..end, "");
            }
            Edit::Insert { at, text: inserted } => {
                let at = offset(&text, *at);
                text.insert_str(at, inserted);
            }
            Edit::Replace { at, len, with } => {
                let start = offset(&text, *at);
                let end = end_of(&text, start, *len);
                text.replace_range(start..end, REPLACEMENTS[*with]);
            }
            Edit::DuplicateLine { at } => {
                let at = offset(&text, *at);
                let start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
                let end = text[at..]
                    .find('\n')
                    .map_or(text.len(), |newline| at + newline + 1);
                let line = text[start..end].to_owned();
                text.insert_str(end, &line);
            }
        }
    }
    text
}

/// The seeds as the tests load them: the fixtures' `@GUESTS@` placeholder made a real path.
fn seeds(raw: &[&str]) -> Vec<String> {
    raw.iter()
        .map(|seed| seed.replace("@GUESTS@", "/guests"))
        .collect()
}

fn mutated(raw: &[&str]) -> impl Strategy<Value = String> + use<> {
    (
        proptest::sample::select(seeds(raw)),
        proptest::collection::vec(edit(), 0..6),
    )
        .prop_map(|(seed, edits)| apply(&seed, &edits))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(2_000),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_manifest_loader_returns_an_app_or_an_error_naming_the_file(text in mutated(MANIFEST_SEEDS)) {
        if let Err(error) = manifest::parse(&text, Path::new("spin.toml"), Path::new("/app")) {
            let message = error.to_string();
            prop_assert!(message.starts_with("spin.toml: "), "{message}");
        }
    }

    #[test]
    fn the_locked_app_loader_returns_an_app_or_an_error_naming_the_file(text in mutated(LOCKED_SEEDS)) {
        if let Err(error) = locked_app::parse(&text, Path::new("lock.json"), Path::new("/app")) {
            let message = error.to_string();
            prop_assert!(message.starts_with("lock.json: "), "{message}");
        }
    }
}

#[test]
fn every_seed_loads_unmutated() {
    for seed in seeds(MANIFEST_SEEDS) {
        // The templates' manifests hold Liquid placeholders; they need not load as they are.
        if seed.contains("{{project-name") {
            continue;
        }
        manifest::parse(&seed, Path::new("spin.toml"), Path::new("/app"))
            .unwrap_or_else(|error| panic!("{error}\n{seed}"));
    }
    for seed in seeds(LOCKED_SEEDS) {
        locked_app::parse(&seed, Path::new("lock.json"), Path::new("/app"))
            .unwrap_or_else(|error| panic!("{error}\n{seed}"));
    }
}
