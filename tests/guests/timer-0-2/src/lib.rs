//! A component built against version 0.2.0 of this project's timer world, as components built
//! before the tick carried its attempt were (plain wit-bindgen, no SDK): prints
//! `tick 0.2.0 seq=<n> schedule=<schedule>`. The host must keep running it.

wit_bindgen::generate!({
    world: "spin-trigger:sdk/timer@0.2.0",
    path: "../../../wit",
    generate_all,
});

use exports::spin_trigger::sdk0_2_0::timer_handler::{Error, Guest, Tick};

struct Handler;

impl Guest for Handler {
    fn handle_tick(tick: Tick) -> Result<(), Error> {
        println!(
            "tick 0.2.0 seq={} schedule={}",
            tick.sequence, tick.schedule
        );
        Ok(())
    }
}

export!(Handler);
