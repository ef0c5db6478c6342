// The generated glue's own names never shadow the handler's: a handler may be called `message`.
use spin_trigger_sdk::redis::Message;
use spin_trigger_sdk::redis_component;

#[redis_component]
fn message(message: Message) {
    let _ = message.payload;
}

fn main() {}
