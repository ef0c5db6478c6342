use spin_trigger_sdk::redis::Message;
use spin_trigger_sdk::redis_component;

/// Runs for every entry added to the stream in spin.toml, in a fresh instance each time. An
/// error (or a trap) leaves the entry unacknowledged: it is retried, then moved to the
/// dead-letter stream. Each host of the consumer group gets its own share of the entries.
#[redis_component]
fn on_entry(message: Message) -> anyhow::Result<()> {
    let entry = message
        .entry
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("not from a stream"))?;
    println!(
        "{{project-name | kebab_case}} got entry {} (attempt {}): {}",
        entry.id,
        entry.attempt,
        String::from_utf8_lossy(&message.payload)
    );
    Ok(())
}
