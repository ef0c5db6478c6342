// A handler serving a stream reads the entry: its id, fields and attempt number.
use spin_trigger_sdk::redis::{Message, StreamEntry};
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(message: Message) -> anyhow::Result<()> {
    if let Some(StreamEntry { id, fields, attempt }) = &message.entry {
        anyhow::ensure!(*attempt <= 3, "entry {id} tried {attempt} times");
        let _ = fields.len();
    }
    let order = message.entry.as_ref().and_then(|entry| entry.field("order"));
    let _ = order.map(<[u8]>::len);
    Ok(())
}

fn main() {}
