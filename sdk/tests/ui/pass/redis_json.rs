// A JSON payload decoded into the handler's type, destructured in the argument pattern.
use serde::Deserialize;
use spin_trigger_sdk::redis::Json;
use spin_trigger_sdk::redis_component;

#[derive(Deserialize)]
struct Order {
    id: u64,
}

#[redis_component]
fn handle(Json(order): Json<Order>) {
    let _ = order.id;
}

fn main() {}
