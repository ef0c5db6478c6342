//! A Redis component: every message on channel `requests` is published upper-cased on channel
//! `replies`, through the outbound Redis API. The server address comes from the variable
//! `redis_address` (default `redis://127.0.0.1:6379`; set `SPIN_VARIABLE_REDIS_ADDRESS` to point
//! it elsewhere), which also feeds `allowed_outbound_hosts`.
//!
//! A payload-only handler exports Spin's raw Redis world, so this component also runs under
//! Spin's built-in Redis trigger.
//!
//! Run it, from the repository root, each in its own terminal:
//!
//! ```sh
//! redis-server --port 6379
//! cargo run -p spin-trigger-host -- up --build -f examples/redis-echo/spin.toml
//! redis-cli subscribe replies
//! redis-cli publish requests hello        # the subscriber prints HELLO
//! ```

use anyhow::Context;
use spin_trigger_sdk::redis::Connection;
use spin_trigger_sdk::{redis_component, variables};

#[redis_component]
fn echo(request: String) -> anyhow::Result<()> {
    let address = variables::get("redis_address")?;
    let redis = Connection::open(&address).with_context(|| format!("connecting to {address}"))?;
    redis.publish("replies", request.to_uppercase())?;
    Ok(())
}
