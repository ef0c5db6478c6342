//! A test guest forwarding each Redis message to a webhook: POSTs the payload to the variable
//! `webhook_url` from an `async fn` handler; a status other than 2xx is a handler error.

use spin_trigger_sdk::{http, redis_component, variables};

#[redis_component]
async fn forward(payload: Vec<u8>) -> anyhow::Result<()> {
    let url = variables::get("webhook_url")?;
    let response = http::Request::post(&url, payload)
        .header("content-type", "text/plain")
        .send()?;
    anyhow::ensure!(
        response.is_success(),
        "the webhook answered {}",
        response.status()
    );
    Ok(())
}
