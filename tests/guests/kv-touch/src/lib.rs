//! The key-value component the host's benchmark measures: per message, one `get` and one `set`
//! of the key `last` in the default store (the payload becomes its value).

use spin_trigger_sdk::key_value::Store;
use spin_trigger_sdk::redis_component;

#[redis_component]
fn touch(payload: Vec<u8>) -> Result<(), String> {
    let store = Store::open_default().map_err(|error| error.to_string())?;
    store.get("last").map_err(|error| error.to_string())?;
    store
        .set("last", payload)
        .map_err(|error| error.to_string())
}
