//! A timer component written the way Spin's own timer example writes one: plain wit-bindgen
//! against the raw `fermyon:example/spin-timer` world, no SDK. It runs on this project's host
//! unchanged.
//!
//! Run it: `cargo run -p spin-trigger-host -- up --build -f examples/timer-hello/spin.toml`

wit_bindgen::generate!({
    world: "fermyon:example/spin-timer",
    path: "../../../wit",
    generate_all,
});

use fermyon::spin2_0_0::variables;

struct RawTimer;

impl Guest for RawTimer {
    fn handle_timer_request() {
        let text = variables::get("message").unwrap_or_else(|error| format!("{error:?}"));
        println!("{text}");
    }
}

export!(RawTimer);
