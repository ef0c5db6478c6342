// An `async fn` taking UTF-8 text and returning `anyhow::Result<()>`.
use spin_trigger_sdk::redis_component;

#[redis_component]
async fn handle(text: String) -> anyhow::Result<()> {
    anyhow::ensure!(!text.is_empty(), "empty message");
    Ok(())
}

fn main() {}
