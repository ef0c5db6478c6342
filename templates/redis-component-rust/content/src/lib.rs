use spin_trigger_sdk::redis_component;

/// Runs for every message published on the channel in spin.toml, in a fresh instance each time.
/// A payload that is not UTF-8 is reported as a handler error before this runs.
#[redis_component]
fn on_message(message: String) -> anyhow::Result<()> {
    println!("{{project-name | kebab_case}} received: {message}");
    Ok(())
}
