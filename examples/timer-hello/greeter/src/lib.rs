//! The smallest timer component: prints its `message` variable on every tick.
//!
//! A handler with no argument that returns `()` exports Spin's raw `spin-timer` world, so this
//! component runs unchanged on Spin's own timer trigger too.
//!
//! Run it: `cargo run -p spin-trigger-host -- up --build -f examples/timer-hello/spin.toml`

use spin_trigger_sdk::{timer_component, variables};

#[timer_component]
fn greet() {
    match variables::get("message") {
        Ok(message) => println!("{message}"),
        Err(error) => eprintln!("no message to print: {error}"),
    }
}
