//! A component built against version 0.1.0 of this project's timer world, as components built
//! before the tick carried its schedule were (plain wit-bindgen, no SDK): prints
//! `tick 0.1.0 seq=<n>`. The host must keep running it.

wit_bindgen::generate!({
    world: "spin-trigger:sdk/timer@0.1.0",
    path: "../../../wit",
    generate_all,
});

use exports::spin_trigger::sdk0_1_0::timer_handler::{Error, Guest, Tick};

struct Handler;

impl Guest for Handler {
    fn handle_tick(tick: Tick) -> Result<(), Error> {
        println!("tick 0.1.0 seq={}", tick.sequence);
        Ok(())
    }
}

export!(Handler);
