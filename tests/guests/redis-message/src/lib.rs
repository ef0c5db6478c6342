//! A test guest taking the whole `Message` (the richer world): publishes
//! `<channel>|<pattern or ->|<payload>` on the channel in its `reply_channel` variable, at the
//! address in `redis_address` (or prints it, when `reply_channel` is `stdout`). A payload of `trap` panics; `fail` returns an error; `spin`
//! loops forever; `recurse` recurses until its stack overflows; `alloc:<n>` first fills `n` MiB
//! of memory; `hold`
//! counts itself into the key `active` for 300 ms and adds the count it saw to the set
//! `seen-active`, so a test can see how many handlers ran at once.

use spin_trigger_sdk::redis::{Connection, Message, Parameter};
use spin_trigger_sdk::{redis_component, variables};

#[redis_component]
async fn on_message(message: Message) -> Result<(), String> {
    let text = message.text().map_err(|error| error.to_string())?;
    match text {
        "trap" => panic!("asked to trap"),
        "fail" => return Err("asked to fail".to_owned()),
        "spin" => loop {
            std::hint::spin_loop();
        },
        "recurse" => {
            let depth = recurse(0);
            return Err(format!("returned from a recursion {depth} deep"));
        }
        _ => {}
    }
    if let Some(mebibytes) = text.strip_prefix("alloc:") {
        let mebibytes: usize = mebibytes.parse().map_err(|_| "alloc:<MiB>".to_owned())?;
        // Filled, so that the pages are really used; an allocation the host refuses aborts.
        let block = vec![1u8; mebibytes << 20];
        std::hint::black_box(&block);
    }
    let address = variables::get("redis_address").map_err(|error| error.to_string())?;
    if text == "hold" {
        hold(&address).map_err(|error| error.to_string())?;
    }
    let reply_channel = variables::get("reply_channel").map_err(|error| error.to_string())?;
    let reply = format!(
        "{}|{}|{text}",
        message.channel,
        message.pattern.as_deref().unwrap_or("-")
    );
    // `stdout` as the reply channel prints the reply instead: no round trip to a server.
    if reply_channel == "stdout" {
        println!("{reply}");
        return Ok(());
    }
    Connection::open(&address)
        .and_then(|redis| redis.publish(&reply_channel, reply))
        .map_err(|error| error.to_string())
}

/// Returns only past a depth no stack reaches: each call needs another frame, until the stack
/// runs out.
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return depth;
    }
    let frame = std::hint::black_box([depth; 16]);
    recurse(frame[0] + 1) + std::hint::black_box(frame[15])
}

fn hold(address: &str) -> Result<(), spin_trigger_sdk::redis::Error> {
    let redis = Connection::open(address)?;
    let active = redis.incr("active")?;
    redis.sadd("seen-active", &[&active.to_string()])?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    redis.execute("DECR", &[Parameter::Binary(b"active".to_vec())])?;
    Ok(())
}
