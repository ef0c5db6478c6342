// A batch handler: marks the entries it cannot handle, acknowledges the rest.
use spin_trigger_sdk::redis::Batch;
use spin_trigger_sdk::redis_component;

#[redis_component]
async fn handle(batch: Batch) -> anyhow::Result<()> {
    for (index, message) in batch.iter().enumerate() {
        if message.payload.is_empty() {
            batch.fail(message, "empty");
        } else if index > 1_000 {
            batch.fail_at(index, "too far");
        }
    }
    Ok(())
}

fn main() {}
