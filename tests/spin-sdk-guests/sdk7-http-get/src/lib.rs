//! A Redis component written with spin-sdk 7 calling an HTTP API through `spin_sdk::http`
//! (`wasi:http/client@0.3.0`): each message is a URL; it GETs it and publishes
//! `<status> <body>` on the channel in its `reply_channel` variable, through spin-sdk's outbound
//! Redis at `redis_address`. A failed request is published as `error <code>`.

use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::redis::Connection;
use spin_sdk::{redis_subscriber, variables};

#[redis_subscriber]
async fn on_message(message: Vec<u8>) -> anyhow::Result<()> {
    let url = String::from_utf8(message)?;
    let reply = match spin_sdk::http::get(&url).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .bytes()
                .await
                .map_err(|error| anyhow::anyhow!("reading the body: {error:?}"))?;
            format!("{status} {}", String::from_utf8_lossy(&body))
        }
        Err(error) => format!("error {error:?}"),
    };
    let address = variables::get("redis_address").await?;
    let channel = variables::get("reply_channel").await?;
    let connection = Connection::open(&address).await?;
    connection.publish(&channel, reply.into_bytes()).await?;
    Ok(())
}
