//! A Redis component written with spin-sdk 6 that uses Spin's key-value store
//! (`spin:key-value/key-value@3.0.0`), which the host does not provide: it must be refused at
//! start with an error naming that import.

use spin_sdk::key_value::Store;
use spin_sdk::redis_subscriber;

#[redis_subscriber]
async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    let store = Store::open_default().await?;
    store.set("last", &message).await?;
    Ok(())
}
