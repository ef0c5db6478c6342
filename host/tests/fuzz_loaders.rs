//! Property tests of the two loaders, on stable Rust: the manifest (`spin.toml`) and the locked
//! app (`SPIN_LOCKED_URL`) loaders take every manifest and locked app the tests use as seeds,
//! mutate them (bytes deleted, inserted, duplicated, values swapped for others), and must return
//! an app or an error that names the file — never panic. Then every numeric field, in the
//! manifest, the locked app and the builder alike, gets extreme values: the app loads with every
//! number in its documented range, or the error names the field.
//!
//! A short run is part of `cargo test` (2,000 cases per loader, or `PROPTEST_CASES`); a long run:
//! `PROPTEST_CASES=200000 cargo test --release -p spin-trigger-host --test fuzz_loaders`.
//! A failing input is shrunk and saved to `tests/fuzz_loaders.proptest-regressions`, which is
//! committed, so it is tried first on every later run: each crash found becomes a test.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use spin_trigger_host::app::{RedisConfig, StreamConfig, TimerConfig, TimerSchedule};
use spin_trigger_host::app_builder::{ComponentBuilder, TriggerBuilder};
use spin_trigger_host::internals::{
    DURATION_RANGE, MAX_ATTEMPTS_RANGE, MAX_IN_FLIGHT_RANGE, MEMORY_RANGE, SPEEDUP_RANGE,
    TABLE_ELEMENTS_RANGE,
};
use spin_trigger_host::{App, locked_app, manifest};

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

// Every number a user writes, pushed to its extremes: each numeric field of the manifest, the
// locked app and the builder gets 0, negatives, its type's maximum, the smallest positive float,
// infinities, NaN, the edges of its documented range (`spin_trigger_host::limits`) and random
// values. The app must load with every number in range (and the arithmetic the runtime does on
// them must not panic), or fail with an error naming the file and the field.

/// Values for numeric fields, as TOML and JSON write them.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "-9223372036854775808",
    "9223372036854775807",
    "18446744073709551615",
    "4294967295",
    "4294967296",
    "5e-324",
    "2.2250738585072014e-308",
    "1e-300",
    "1e300",
    "1.7976931348623157e308",
    "inf",
    "-inf",
    "nan",
    "0.001",
    "0.0009",
    "1000",
    "1001",
    "1000000",
    "1000001",
    "20000",
    "31536000",
    "31536001",
    "\"0ms\"",
    "\"1ms\"",
    "\"1ns\"",
    "\"999us\"",
    "\"365days\"",
    "\"366days\"",
    "\"18446744073709551615s\"",
    "\"64KiB\"",
    "\"65535\"",
    "\"4GiB\"",
    "\"4097MiB\"",
    "\"18446744073709551615GiB\"",
    "\"-1s\"",
];

/// A value for a numeric field: an extreme, or a random integer, float or duration.
fn numeric_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(EXTREMES).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|value| value.to_string()),
        1 => any::<u64>().prop_map(|value| value.to_string()),
        1 => any::<f64>()
            .prop_filter("finite", |value| value.is_finite())
            .prop_map(|value| format!("{value:e}")),
        1 => (any::<u64>(), proptest::sample::select(&["ns", "ms", "s", "m", "h", "days"][..]))
            .prop_map(|(value, unit)| format!("\"{value}{unit}\"")),
        1 => (any::<u64>(), proptest::sample::select(&["", "B", "KiB", "MiB", "GiB", "MB"][..]))
            .prop_map(|(value, unit)| format!("\"{value}{unit}\"")),
    ]
}

/// One numeric field of a manifest: the manifest with `@V@` where the value goes, and the
/// field's location.
struct NumericField {
    manifest: &'static str,
    location: &'static str,
}

impl NumericField {
    /// The field's name, as the manifest spells it.
    fn name(&self) -> &'static str {
        let line = self
            .manifest
            .lines()
            .find(|line| line.contains("@V@"))
            .expect("a field line");
        line.split(" = ").next().expect("a field name")
    }

    /// Whether `message` (after the file's name) names this field: at its location, or by its
    /// name in a message about its table (or, for `speedup`, about a timer it makes too fast).
    fn named_in(&self, message: &str) -> bool {
        message.starts_with(self.location) || message.contains(self.name())
    }
}

const MANIFEST_HEAD: &str = "spin_manifest_version = 2\n[application]\nname = \"numbers\"\n\
    [component.c]\nsource = \"c.wasm\"\n";

const NUMERIC_FIELDS: &[NumericField] = &[
    NumericField {
        manifest: "[application.trigger.timer]\nspeedup = @V@\n[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\n",
        location: "application.trigger.timer.speedup",
    },
    NumericField {
        manifest: "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = @V@\n",
        location: "trigger.timer[0].interval_secs",
    },
    NumericField {
        manifest: "[[trigger.timer]]\ncomponent = \"c\"\ninterval = @V@\n",
        location: "trigger.timer[0].interval",
    },
    NumericField {
        manifest: "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nhandler_timeout = @V@\n",
        location: "trigger.timer[0].handler_timeout",
    },
    NumericField {
        manifest: "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nmax_memory = @V@\n",
        location: "trigger.timer[0].max_memory",
    },
    NumericField {
        manifest: "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nmax_table_elements = @V@\n",
        location: "trigger.timer[0].max_table_elements",
    },
    NumericField {
        manifest: "[[trigger.redis]]\ncomponent = \"c\"\naddress = \"redis://127.0.0.1\"\nchannel = \"c\"\nmax_in_flight = @V@\n",
        location: "trigger.redis[0].max_in_flight",
    },
    NumericField {
        manifest: "[[trigger.redis-stream]]\ncomponent = \"c\"\naddress = \"redis://127.0.0.1\"\nstream = \"s\"\nmax_in_flight = @V@\n",
        location: "trigger.redis-stream[0].max_in_flight",
    },
    NumericField {
        manifest: "[[trigger.redis-stream]]\ncomponent = \"c\"\naddress = \"redis://127.0.0.1\"\nstream = \"s\"\nmax_attempts = @V@\n",
        location: "trigger.redis-stream[0].max_attempts",
    },
    NumericField {
        manifest: "[[trigger.redis-stream]]\ncomponent = \"c\"\naddress = \"redis://127.0.0.1\"\nstream = \"s\"\nclaim_idle = @V@\n",
        location: "trigger.redis-stream[0].claim_idle",
    },
];

/// Every number the app holds is in its documented range, and what the runtime computes from
/// them (a timer's effective interval, the instance pool's size) does not panic.
fn numbers_in_range(app: &App) -> Result<(), String> {
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
    for trigger in app.triggers() {
        let limits = &trigger.limits;
        if let Some(timeout) = limits.timeout {
            check(DURATION_RANGE.contains(&timeout), "handler_timeout")?;
        }
        if let Some(memory) = limits.max_memory {
            check(MEMORY_RANGE.contains(&memory), "max_memory")?;
        }
        if let Some(elements) = limits.max_table_elements {
            check(
                TABLE_ELEMENTS_RANGE.contains(&elements),
                "max_table_elements",
            )?;
        }
    }
    for (_, timer) in app.triggers_of::<TimerConfig>() {
        if let TimerSchedule::Interval { interval, speedup } = &timer.schedule {
            check(DURATION_RANGE.contains(interval), "interval")?;
            check(SPEEDUP_RANGE.contains(speedup), "speedup")?;
            check(
                timer.effective_interval() >= Some(*DURATION_RANGE.start()),
                "effective interval",
            )?;
        }
    }
    for (_, redis) in app.triggers_of::<RedisConfig>() {
        check(
            MAX_IN_FLIGHT_RANGE.contains(&redis.max_in_flight),
            "max_in_flight",
        )?;
    }
    for (_, stream) in app.triggers_of::<StreamConfig>() {
        check(
            MAX_IN_FLIGHT_RANGE.contains(&stream.max_in_flight),
            "max_in_flight",
        )?;
        check(
            MAX_ATTEMPTS_RANGE.contains(&stream.max_attempts),
            "max_attempts",
        )?;
        check(DURATION_RANGE.contains(&stream.claim_idle), "claim_idle")?;
    }
    app.max_live_instances();
    Ok(())
}

/// The field's value in a locked app: the trigger's `trigger_config` (or, for `speedup`, the
/// timer's metadata), as `spin up` writes it.
fn locked_app_with(field: &NumericField, value: &str) -> String {
    let name = field.name();
    let (trigger_type, config) = if field.manifest.contains("[[trigger.redis-stream]]") {
        (
            "redis-stream",
            "\"address\": \"redis://127.0.0.1\", \"stream\": \"s\"",
        )
    } else if field.manifest.contains("[[trigger.redis]]") {
        (
            "redis",
            "\"address\": \"redis://127.0.0.1\", \"channel\": \"c\"",
        )
    } else {
        ("timer", "\"interval_secs\": 1")
    };
    let (settings, config) = if name == "speedup" {
        (
            format!("\"timer\": {{ \"speedup\": {value} }}"),
            config.to_owned(),
        )
    } else if name == "interval_secs" || name == "interval" {
        (String::new(), format!("\"{name}\": {value}"))
    } else {
        (String::new(), format!("{config}, \"{name}\": {value}"))
    };
    format!(
        r#"{{
  "spin_lock_version": 1,
  "metadata": {{ "name": "numbers", "triggers": {{ {settings} }} }},
  "triggers": [
    {{ "id": "t", "trigger_type": "{trigger_type}", "trigger_config": {{ "component": "c", {config} }} }}
  ],
  "components": [
    {{ "id": "c", "source": {{ "content_type": "application/wasm", "source": "file:///app/c.wasm" }} }}
  ]
}}"#
    )
}

/// The same field set through the builder, its value as JSON (a TOML string stays a string).
fn built_with(field: &NumericField, value: &str) -> Result<App, String> {
    let name = field.name();
    let json: serde_json::Value = match value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(text) => serde_json::Value::String(text.to_owned()),
        None => match serde_json::from_str(value) {
            Ok(number) => number,
            // `inf`, `nan`: no JSON number; the builder is given them as floats.
            Err(_) => serde_json::Value::from(value.parse::<f64>().unwrap_or(f64::NAN)),
        },
    };
    let component = ComponentBuilder::from_file("c", "c.wasm");
    let builder = App::builder("numbers")
        .base_dir("/app")
        .component(component);
    let builder = if field.manifest.contains("[[trigger.redis-stream]]") {
        builder.trigger(
            TriggerBuilder::redis_stream("c", "s")
                .address("redis://127.0.0.1")
                .set(name, json),
        )
    } else if field.manifest.contains("[[trigger.redis]]") {
        builder.trigger(
            TriggerBuilder::redis("c", "c")
                .address("redis://127.0.0.1")
                .set(name, json),
        )
    } else if name == "speedup" {
        builder
            .trigger_setting("timer", "speedup", json)
            .trigger(TriggerBuilder::timer("c").set("interval_secs", 1))
    } else if name == "interval_secs" || name == "interval" {
        builder.trigger(TriggerBuilder::timer("c").set(name, json))
    } else {
        builder.trigger(
            TriggerBuilder::timer("c")
                .set("interval_secs", 1)
                .set(name, json),
        )
    };
    builder.build().map_err(|error| error.to_string())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_numeric_field_loads_in_range_or_is_refused_by_name(
        field in proptest::sample::select((0..NUMERIC_FIELDS.len()).collect::<Vec<_>>()),
        value in numeric_value(),
    ) {
        let field = &NUMERIC_FIELDS[field];
        let text = format!("{MANIFEST_HEAD}{}", field.manifest.replace("@V@", &value));
        match manifest::parse(&text, Path::new("spin.toml"), Path::new("/app")) {
            Ok(app) => prop_assert!(numbers_in_range(&app).is_ok(), "{:?} out of range:\n{text}", numbers_in_range(&app)),
            Err(error) => {
                let message = error.to_string();
                let named = message.strip_prefix("spin.toml: ").is_some_and(|rest| field.named_in(rest));
                prop_assert!(named, "{message}\n{text}");
            }
        }

        let locked = locked_app_with(field, &value);
        match locked_app::parse(&locked, Path::new("lock.json"), Path::new("/app")) {
            Ok(app) => prop_assert!(numbers_in_range(&app).is_ok(), "{:?} out of range:\n{locked}", numbers_in_range(&app)),
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.starts_with("lock.json: "), "{message}\n{locked}");
            }
        }

        match built_with(field, &value) {
            Ok(app) => prop_assert!(numbers_in_range(&app).is_ok(), "{:?} out of range: {value}", numbers_in_range(&app)),
            Err(message) => {
                let named = message
                    .strip_prefix("numbers (built in code): ")
                    .is_some_and(|rest| field.named_in(rest));
                prop_assert!(named, "{message}");
            }
        }
    }
}
