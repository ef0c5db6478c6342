//! A Redis component written with spin-sdk, as Spin's `redis-rust` template writes them (built
//! against spin-sdk 6 here and against spin-sdk 7 by `sdk7-redis-reply`): it
//! exports `spin:redis/inbound-redis@3.0.0` (an `async func`) and replies to each message,
//! upper-cased, through spin-sdk's outbound Redis (`spin:redis/redis@3.0.0`), reading where to
//! from its variables (`spin:variables/variables@3.0.0`).

use spin_sdk::redis::Connection;
use spin_sdk::{redis_subscriber, variables};

#[redis_subscriber]
async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    if message == b"fail" {
        anyhow::bail!("asked to fail");
    }
    let address = variables::get("redis_address").await?;
    let channel = variables::get("reply_channel").await?;
    let connection = Connection::open(&address).await?;
    connection
        .publish(&channel, message.to_ascii_uppercase())
        .await?;
    Ok(())
}
