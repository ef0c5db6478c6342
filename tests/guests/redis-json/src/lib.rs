//! A test guest taking a `Json<Order>` payload: publishes `order <id> for <customer>` on the
//! channel in its `reply_channel` variable, at the address in `redis_address`.

use serde::Deserialize;
use spin_trigger_sdk::redis::{Connection, Json};
use spin_trigger_sdk::{redis_component, variables};

#[derive(Deserialize)]
struct Order {
    id: u64,
    customer: String,
}

#[redis_component]
fn on_order(Json(order): Json<Order>) -> Result<(), Box<dyn std::error::Error>> {
    let redis = Connection::open(&variables::get("redis_address")?)?;
    let reply = format!("order {} for {}", order.id, order.customer);
    redis.publish(&variables::get("reply_channel")?, reply)?;
    Ok(())
}
