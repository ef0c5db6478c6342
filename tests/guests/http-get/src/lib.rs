//! The component the benchmark's HTTP row measures: each message's payload is a URL, which it
//! GETs once through the SDK's client; a status other than 2xx is an error. A payload-only
//! handler, so it exports Spin's raw Redis world and imports nothing of ours but `wasi:http`.

use spin_trigger_sdk::{http, redis_component};

#[redis_component]
fn get(url: String) -> Result<(), String> {
    let response = http::get(&url).map_err(|error| error.to_string())?;
    if response.is_success() {
        Ok(())
    } else {
        Err(format!("GET {url} answered {}", response.status()))
    }
}
