// The whole message selects the richer world.
use spin_trigger_sdk::redis::Message;
use spin_trigger_sdk::redis_component;

#[redis_component]
fn handle(message: Message) -> Result<(), String> {
    let _ = (message.channel, message.pattern);
    Ok(())
}

fn main() {}
