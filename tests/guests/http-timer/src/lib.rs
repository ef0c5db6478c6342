//! A test guest calling an HTTP API from a timer through the SDK's client: on each tick it GETs
//! the variable `get_url` and decodes `{"count": n}` from it, then POSTs `{"seen": n}` as JSON to
//! `post_url`, and prints `get <status> count=<n>` and `post <status> <body>`. An error (a
//! refused host, a timeout) is printed as `error <message>` and returned. With `read_bytes`
//! set, it prints `read <len>` for the body of `get_url` instead of decoding it.

use spin_trigger_sdk::{http, timer_component, variables};

#[derive(serde::Deserialize)]
struct Count {
    count: u64,
}

#[timer_component]
fn tick() -> anyhow::Result<()> {
    call().inspect_err(|error| println!("error {error}"))
}

fn call() -> anyhow::Result<()> {
    let get_url = variables::get("get_url")?;
    if variables::get("read_bytes").is_ok_and(|value| value == "1") {
        let response = http::get(&get_url)?;
        println!("read {}", response.body().len());
        return Ok(());
    }
    let response = http::Request::get(&get_url)
        .header("x-guest", "http-timer")
        .send()?;
    let count: Count = response.json()?;
    println!("get {} count={}", response.status(), count.count);
    let Ok(post_url) = variables::get("post_url") else {
        return Ok(());
    };
    let posted = http::post_json(&post_url, &serde_json::json!({ "seen": count.count }))?;
    println!("post {} {}", posted.status(), posted.text()?);
    Ok(())
}
